"""An action of the engine for the I/O shell, with the instance config it belongs to. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from hanode.config.model import VrrpInstance
from hanode.vrrp import fsm
from hanode.vrrp.actions import Action


@dataclass(frozen=True)
class Output:
    instance: str
    action: Action
    config: VrrpInstance
    params: fsm.Params
