"""vrrp_track_process, pure: which processes match a tracker, how many of them run, and when a change of quorum is
reported (fork_delay / terminate_delay). keepalived 2.2.7's track_process.c, event for event: the I/O shell
(vrrp/procmon.py) feeds it the kernel's proc connector events (fork, exec, comm, exit) and what /proc says.

Matching (keepalived's): the process name is compared with the comm (/proc/PID/stat, at most 15 characters);
with full_command, with argv[0] of /proc/PID/cmdline, and the arguments after it by param_match: exact (the same
arguments), partial (the given ones first, whole words), initial (as partial, the last one may be the start of a
word). A child forked by a matching process counts as one more (keepalived's), until it execs something else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from hanode.config.model import TrackProcess


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    comm: str
    cmdline: bytes   # /proc/PID/cmdline as it is: NUL-separated, NUL-terminated ("" for a zombie or a kernel thread)


def matches(spec: TrackProcess, comm: str, cmdline: bytes) -> bool:
    if not spec.full_command:
        return comm == spec.process
    argv0, sep, params = cmdline.partition(b"\0")
    if not sep or argv0.decode(errors="surrogateescape") != spec.process:
        return False
    return spec.param_match == "none" or _params_match(spec, params)


def _params_match(spec: TrackProcess, params: bytes) -> bool:
    """keepalived's check_params: its words are each NUL-terminated, as they stand in cmdline."""
    wanted = b"".join(p.encode(errors="surrogateescape") + b"\0" for p in spec.params)
    if spec.param_match == "exact":
        return params == wanted
    if len(params) < len(wanted):
        return False
    if spec.param_match == "partial":
        return params.startswith(wanted)
    return params.startswith(wanted[:-1])   # initial


def has_quorum(spec: TrackProcess, count: int) -> bool:
    return count >= spec.quorum and (spec.quorum_max is None or count <= spec.quorum_max)


class ProcessTable:
    """The matching processes of every tracker, and the quorum each reports. Each input returns the quorum
    changes to report now, as (tracker, up) pairs; a change that has a delay is reported by due() once it has
    lasted that long (and not at all if it went back before)."""

    def __init__(self, specs: Mapping[str, TrackProcess]):
        self.specs = dict(specs)
        self.pids: dict[int, set[str]] = {}
        self.counts: dict[str, int] = {name: 0 for name in self.specs}
        self.reported: dict[str, bool] = {}
        self.pending: dict[str, int] = {}    # tracker -> when its change is reported (µs)

    def scan(self, procs: Iterable[ProcInfo], now_us: int, initial: bool) -> list[tuple[str, bool]]:
        """Every process there is (at start: reported at once, no delay; later, after lost events: as changes)."""
        self.pids.clear()
        self.counts = {name: 0 for name in self.specs}
        for proc in procs:
            self._classify(proc.pid, proc.comm, proc.cmdline, None)
        if initial:
            self.pending.clear()
            self.reported = {name: has_quorum(spec, self.counts[name]) for name, spec in self.specs.items()}
            return sorted(self.reported.items())
        return self._settle(self.specs, now_us)

    def exec(self, proc: ProcInfo, now_us: int) -> list[tuple[str, bool]]:
        touched = self._classify(proc.pid, proc.comm, proc.cmdline, None)
        return self._settle(touched, now_us)

    def comm(self, pid: int, comm: str, now_us: int) -> list[tuple[str, bool]]:
        """A changed comm (prctl PR_SET_NAME): only the trackers that match on it look again."""
        touched = self._classify(pid, comm, b"", lambda spec: not spec.full_command)
        return self._settle(touched, now_us)

    def fork(self, parent: int, child: int, now_us: int) -> list[tuple[str, bool]]:
        names = self.pids.get(parent)
        if not names or child in self.pids:
            return []
        self.pids[child] = set(names)
        for name in names:
            self.counts[name] += 1
        return self._settle(names, now_us)

    def exit(self, pid: int, now_us: int) -> list[tuple[str, bool]]:
        names = self.pids.pop(pid, set())
        for name in names:
            self.counts[name] -= 1
        return self._settle(names, now_us)

    def due(self, now_us: int) -> list[tuple[str, bool]]:
        changes = []
        for name, at_us in sorted(self.pending.items()):
            if at_us <= now_us:
                del self.pending[name]
                up = has_quorum(self.specs[name], self.counts[name])
                if up != self.reported.get(name):
                    self.reported[name] = up
                    changes.append((name, up))
        return changes

    def next_deadline_us(self) -> int | None:
        return min(self.pending.values(), default=None)

    def _classify(self, pid: int, comm: str, cmdline: bytes, which) -> set[str]:
        """Looks at one process again with the trackers `which` selects (None: all); returns the trackers whose
        count changed."""
        had = self.pids.get(pid, set())
        now = set(had)
        for name, spec in self.specs.items():
            if which is not None and not which(spec):
                continue
            if matches(spec, comm, cmdline):
                now.add(name)
            else:
                now.discard(name)
        for name in now - had:
            self.counts[name] += 1
        for name in had - now:
            self.counts[name] -= 1
        if now:
            self.pids[pid] = now
        else:
            self.pids.pop(pid, None)
        return now ^ had

    def _settle(self, names: Iterable[str], now_us: int) -> list[tuple[str, bool]]:
        changes = []
        for name in sorted(names):
            spec = self.specs[name]
            up = has_quorum(spec, self.counts[name])
            if up == self.reported.get(name):
                self.pending.pop(name, None)    # back as it was before its delay ran out: nothing to report
                continue
            if name in self.pending:
                continue
            delay_ms = spec.fork_delay_ms if up else spec.terminate_delay_ms
            if delay_ms:
                self.pending[name] = now_us + delay_ms * 1000
            else:
                self.reported[name] = up
                changes.append((name, up))
        return changes
