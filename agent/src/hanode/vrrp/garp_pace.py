"""GARP / NA pacing, pure: keepalived's garp_interval and gna_interval space the messages sent on one (base)
interface, whichever instance sends them; a garp_group with `interfaces` puts them on one timeline. As in
keepalived, the next message may go an interval after the last one actually went (timer_add_now after each
send), so a late wake-up never makes two messages closer than the interval.

submit() says whether a message goes now; otherwise it waits in its timeline's queue, and the shell calls due()
at that timeline's next_free_us to get the next one (and sends it)."""

from __future__ import annotations

from collections import deque
from typing import Any

from hanode.config.parse_garp import GarpPacing


class GarpPacer:
    def __init__(self, pacing: GarpPacing):
        self.pacing = pacing
        self.group_of = {name: group for group in pacing.groups for name in group.interfaces}
        self.next_free_us: dict[tuple[str, int], int] = {}
        self.queues: dict[tuple[str, int], deque[tuple[str, Any]]] = {}
        self.intervals_us: dict[tuple[str, int], int] = {}

    def timeline(self, ifname: str, family: int) -> tuple[tuple[str, int], int]:
        """(the timeline the interface's messages of this family share, their interval)."""
        group = self.group_of.get(ifname)
        if group is None:
            return (ifname, family), self.pacing.garp_interval_us if family == 4 else self.pacing.gna_interval_us
        key = "group:" + ",".join(group.interfaces) if group.shared else ifname
        return (key, family), group.garp_interval_us if family == 4 else group.gna_interval_us

    def submit(self, ifname: str, family: int, owner: str, message: Any, now_us: int) -> tuple[tuple[str, int], bool]:
        """(its timeline, True: send it now). False: it waits; the timeline's next_free_us says when to call due()."""
        key, interval_us = self.timeline(ifname, family)
        if not interval_us:
            return key, True
        self.intervals_us[key] = interval_us
        queue = self.queues.setdefault(key, deque())
        if not queue and self.next_free_us.get(key, now_us) <= now_us:
            self.next_free_us[key] = now_us + interval_us
            return key, True
        queue.append((owner, message))
        return key, False

    def due(self, key: tuple[str, int], now_us: int) -> Any | None:
        """The next waiting message of the timeline, if its time has come (the interval runs from now)."""
        queue = self.queues.get(key)
        if not queue or self.next_free_us.get(key, now_us) > now_us:
            return None
        self.next_free_us[key] = now_us + self.intervals_us[key]
        return queue.popleft()[1]

    def drop(self, owner: str) -> None:
        """An instance's waiting messages (its VIPs went)."""
        for key, queue in self.queues.items():
            self.queues[key] = deque(item for item in queue if item[0] != owner)

    def waiting(self, key: tuple[str, int]) -> bool:
        return bool(self.queues.get(key))
