"""Helpers shared by the pure-core unit tests: a fake clock, config builders, interfaces and adverts on the wire.

A module of its own (not conftest.py) so that `from pure_helpers import ...` finds it even when pytest runs the
unit and integration suites in one session (each has a conftest.py)."""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path
from typing import Any

if importlib.util.find_spec("hanode") is None:  # a checkout whose agent is not installed in this Python
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from hanode.config.model import AgentConfig  # noqa: E402
from hanode.config.parse import parse_config  # noqa: E402
from hanode.vrrp.engine import InterfaceInfo, Received  # noqa: E402
from hanode.vrrp.packet import (AUTH_NONE, AUTH_PASS, IPV4_MCAST_GROUP, IPV6_MCAST_GROUP, Advert,  # noqa: E402
                                encode_advert, password_bytes)

# Lab addresses only (198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32).
OWN4, PEER4, LOW4, HIGH4 = "198.51.100.2", "198.51.100.3", "198.51.100.1", "198.51.100.9"
VIP4 = "198.51.100.100"
OWN6, PEER6 = "fe80::2", "fe80::3"
VIP6 = "2001:db8:100::100"


class FakeClock:
    """Monotonic microseconds that move only when a test says so."""

    def __init__(self, start_us: int = 1_000_000_000):
        self.now_us = start_us

    def advance(self, *, us: int = 0, ms: int = 0, s: int = 0) -> int:
        self.now_us += us + ms * 1000 + s * 1_000_000
        return self.now_us

    def __call__(self) -> int:
        return self.now_us


# config ------------------------------------------------------------------------------------------

def instance_raw(**overrides: Any) -> dict:
    """One vrrp_instance as it appears in the YAML file; None removes a key."""
    body: dict[str, Any] = {"interface": "eth0", "virtual_router_id": 51, "priority": 100,
                            "virtual_ipaddresses": [f"{VIP4}/24"]}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def config_raw(instances: dict | None = None, scripts: dict | None = None, groups: dict | None = None,
               **top: Any) -> dict:
    raw: dict[str, Any] = {"router_id": "lab1"}
    raw["vrrp_instances"] = {"VI_1": instance_raw()} if instances is None else instances
    if scripts:
        raw["vrrp_scripts"] = scripts
    if groups:
        raw["vrrp_sync_groups"] = groups
    raw.update(top)
    return raw


def make_config(instances: dict | None = None, scripts: dict | None = None, groups: dict | None = None,
                **top: Any) -> AgentConfig:
    config, _problems = parse_config(copy.deepcopy(config_raw(instances, scripts, groups, **top)))
    return config


# interfaces and packets --------------------------------------------------------------------------

def iface(name: str = "eth0", up: bool = True, ipv4: tuple[str, ...] = (OWN4,), ll: str | None = OWN6,
          index: int = 2) -> InterfaceInfo:
    return InterfaceInfo(name=name, index=index, up=up, mac="02:00:00:00:00:02", ipv4=ipv4, ipv6_link_local=ll)


def links(*infos: InterfaceInfo) -> dict[str, InterfaceInfo]:
    return {i.name: i for i in infos} if infos else {"eth0": iface()}


def wire_advert(src: str, priority: int, *, vrid: int = 51, version: int = 2, family: int = 4,
                interval_cs: int = 100, addresses: tuple[str, ...] = (VIP4,), password: str | None = None,
                auth_type: int | None = None, interface: str = "eth0", ttl: int | None = 255,
                dst: str | None = None) -> Received:
    """An advert as the raw socket hands it to the engine (VRRP message bytes, checksum filled in)."""
    if auth_type is None:
        auth_type = AUTH_PASS if password is not None else AUTH_NONE
    advert = Advert(version=version, vrid=vrid, priority=priority, max_advert_int_cs=interval_cs,
                    addresses=addresses, auth_type=auth_type,
                    auth_data=password_bytes(password) if password is not None else b"")
    dst = dst or (IPV4_MCAST_GROUP if family == 4 else IPV6_MCAST_GROUP)
    payload = encode_advert(advert, family=family, src=src, dst=dst)
    return Received(interface=interface, family=family, src=src, dst=dst, ttl=ttl, payload=payload)


def fake_pwait2(clock: list[float], waits: list):
    """Stands in for epoll_pwait2: moves the fake clock by the timeout it is given, reports nothing ready."""
    from hanode.daemon.pwait import _Timespec   # pylint: disable=import-outside-toplevel

    def pwait2(_epfd, _events, _maxevents, timeout, _sigmask, _size):
        spec = None if timeout is None else _Timespec.from_address(timeout)
        waited = None if spec is None else spec.tv_sec + spec.tv_nsec / 1e9
        waits.append(waited)
        clock[0] += waited or 0
        return 0
    return pwait2
