"""GARP / NA pacing, pure: keepalived's garp_interval and gna_interval space the messages sent on one (base)
interface, whichever instance sends them; a garp_group with `interfaces` puts them on one timeline. slot() says
when a message may go, and books the interval after it."""

from __future__ import annotations

from hanode.config.parse_garp import GarpPacing


class GarpPacer:
    def __init__(self, pacing: GarpPacing):
        self.pacing = pacing
        self.group_of = {name: group for group in pacing.groups for name in group.interfaces}
        self.next_free_us: dict[tuple[str, int], int] = {}

    def interval_us(self, ifname: str, family: int) -> tuple[str, int]:
        """(the timeline the interface's messages of this family share, their interval)."""
        group = self.group_of.get(ifname)
        if group is None:
            return ifname, self.pacing.garp_interval_us if family == 4 else self.pacing.gna_interval_us
        key = "group:" + ",".join(group.interfaces) if group.shared else ifname
        return key, group.garp_interval_us if family == 4 else group.gna_interval_us

    def slot(self, ifname: str, family: int, now_us: int) -> int:
        key, interval_us = self.interval_us(ifname, family)
        if not interval_us:
            return now_us
        at_us = max(now_us, self.next_free_us.get((key, family), now_us))
        self.next_free_us[(key, family)] = at_us + interval_us
        return at_us
