"""Routes, rules and static addresses in the kernel, each with its owner: added with keepalived's messages
(hanode.vrrp.rtnl_route, synchronous requests on the VRRP process's netlink socket), recorded in the owned file when
this agent added them, removed only when it did. A route or rule that was already there (EEXIST) is left to
whoever put it there, unless the owned file says it is this agent's (a restart while MASTER)."""

from __future__ import annotations

import errno
import logging
import os
import socket
from typing import Callable, Iterable

from hanode.config.iproute import Route, parse_route
from hanode.config.iprule import Rule, parse_rule
from hanode.config.ipnames import WordError
from hanode.config.model import Vip
from hanode.config.vip import parse_vip
from hanode.config.problems import Problems
from hanode.vrrp import rtnl_route
from hanode.vrrp.rtnl import RTM_DELADDR, RTM_NEWADDR, address_message
from hanode.vrrp.owned import OwnedFile
from hanode.vrrp.routes_plan import route_key, rule_key

log = logging.getLogger("hanode.vrrp.routes")
GONE = (errno.ESRCH, errno.ENOENT, errno.EADDRNOTAVAIL, errno.ENODEV)


def ifindex(name: str) -> int:
    return socket.if_nametoindex(name)


class RouteTable:
    def __init__(self, talk: Callable[[bytearray], int], owned: OwnedFile, names=None):
        self.talk, self.owned, self.names = talk, owned, names
        self.state: dict[str, dict[str, dict]] = {}     # owner -> key -> {"what", "state", "error"}

    def _note(self, owner: str, key: str, what: str, state: str, error: str | None = None) -> None:
        self.state.setdefault(owner, {})[key] = {"what": what, "state": state, "error": error}

    def _send(self, build: Callable[[], bytearray]) -> int:
        try:
            return self.talk(build())
        except OSError as exc:      # an interface that does not exist (if_nametoindex), a netlink timeout
            return exc.errno or errno.EIO

    # ---- adding ------------------------------------------------------------------------------------------------

    def add(self, owner: str, routes: Iterable[Route] = (), rules: Iterable[tuple[Rule, int]] = (),
            addresses: Iterable[Vip] = ()) -> None:
        """Addresses first (a route may use one as its source), then routes, then rules (keepalived's order)."""
        owned = self.owned.owned
        for vip in addresses:
            key = vip.text()
            code = self._send(lambda vip=vip: address_message(RTM_NEWADDR, vip, ifindex(vip.dev)))
            self._record(owner, key, f"address {key}", code, owned.addresses, key)
        for route in routes:
            key = route_key(owner, route.text)
            code = self._send(lambda route=route: rtnl_route.route_message(route, True, ifindex))
            self._record(owner, key, f"route {route.text}", code, owned.routes, route.text)
        for rule, priority in rules:
            key = rule_key(owner, rule, priority)
            code = self._send(lambda rule=rule, priority=priority: rtnl_route.rule_message(rule, priority, True))
            self._record(owner, key, f"rule {rule.text} (preference {priority})", code, owned.rules,
                         [owner, rule.text, priority])
        self.owned.save()

    def _record(self, owner: str, key: str, what: str, code: int, book: dict, value) -> None:
        if code == 0:
            book[key] = value
            self._note(owner, key, what, "added")
        elif code == errno.EEXIST:
            self._note(owner, key, what, "added" if key in book else "present")
            if key not in book:
                log.warning("%s: %s was already there: left to whoever added it (not removed later)", owner, what)
        else:
            self._note(owner, key, what, "error", os.strerror(code))
            log.error("%s: cannot add %s: %s", owner, what, os.strerror(code))

    # ---- removing ----------------------------------------------------------------------------------------------

    def remove(self, owner: str, keep: set[str] | None = None) -> None:
        """Removes what `owner` owns except the keys in `keep` (rules first, then routes, then addresses)."""
        keep = keep or set()
        owned = self.owned.owned
        for key, (rule_owner, text, priority) in list(owned.rules.items()):
            if rule_owner == owner and key not in keep:
                rule = self._parse(parse_rule, text)
                if rule is not None:
                    self._remove(owner, key, self._send(lambda r=rule, p=priority: rtnl_route.rule_message(r, p, False)))
                del owned.rules[key]
        for key, text in list(owned.routes.items()):
            if key.split("\t", 1)[0] == owner and key not in keep:
                route = self._parse(parse_route, text)
                if route is not None:
                    self._remove(owner, key, self._send(lambda r=route: rtnl_route.route_message(r, False, ifindex)))
                del owned.routes[key]
        if owner == "static":
            for key, text in list(owned.addresses.items()):
                if key not in keep:
                    vip = parse_vip(text, "", Problems())
                    if vip is not None and vip.dev:
                        self._remove(owner, key, self._send(
                            lambda v=vip: address_message(RTM_DELADDR, v, ifindex(v.dev))))
                    del owned.addresses[key]
        for key in [k for k in self.state.get(owner, {}) if k not in keep]:
            del self.state[owner][key]
        self.owned.save()

    def _remove(self, owner: str, key: str, code: int) -> None:
        if code and code not in GONE:
            log.error("%s: cannot remove %s: %s", owner, key.split("\t")[-1], os.strerror(code))

    def _parse(self, parse, text: str):
        try:
            return parse(text, self.names)[0]
        except WordError as exc:
            log.error("cannot read back %r from the owned file: %s", text, exc)
            return None

    def owners(self) -> set[str]:
        owned = self.owned.owned
        return ({k.split("\t", 1)[0] for k in owned.routes} | {v[0] for v in owned.rules.values()}
                | ({"static"} if owned.addresses else set()))

    def status(self, owner: str) -> list[dict]:
        return [dict(entry) for entry in self.state.get(owner, {}).values()]
