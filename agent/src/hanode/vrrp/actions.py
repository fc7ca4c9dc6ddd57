"""What the pure VRRP core asks the I/O shell to do: values, never calls."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from hanode.config.model import Vip


class State(str, Enum):
    INIT = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"
    FAULT = "FAULT"
    STOP = "STOP"


@dataclass(frozen=True)
class SendAdvert:
    priority: int


@dataclass(frozen=True)
class AddVips:
    vips: tuple[Vip, ...]


@dataclass(frozen=True)
class DelVips:
    vips: tuple[Vip, ...]


@dataclass(frozen=True)
class SendGarp:
    vips: tuple[Vip, ...]
    repeat: int


@dataclass(frozen=True)
class StateChanged:
    old: State
    new: State
    reason: str
    priority: int
    resumed: bool = False  # the VRRP process restarted and took back the state it had: nothing changed on the wire


@dataclass(frozen=True)
class GroupStateChanged:
    group: str
    old: State
    new: State
    reason: str


@dataclass(frozen=True)
class Conflict:
    """Another router claims MASTER for our VRID past the take-over exchange (split brain) or a foreign cluster."""
    peer: str
    peer_priority: int
    kind: str  # "split_brain" | "vrid_collision"
    detail: str


@dataclass(frozen=True)
class RxLowerPriority:
    """A MASTER heard an advert that loses to it (keepalived's MASTER_RX_LOWER_PRI: notify_master_rx_lower_pri)."""
    peer: str
    peer_priority: int
    priority: int


@dataclass(frozen=True)
class PriorityChanged:
    """The effective priority moved (reported with notify_priority_changes: MASTER_PRIORITY / BACKUP_PRIORITY)."""
    state: State
    priority: int


Action = (SendAdvert | AddVips | DelVips | SendGarp | StateChanged | GroupStateChanged | Conflict | RxLowerPriority
          | PriorityChanged)
