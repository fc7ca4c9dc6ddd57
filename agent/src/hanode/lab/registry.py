"""The machine-wide list of labs: one JSON file per lab under /run/hanode-lab/ (HANODE_LAB_REGISTRY).

A record names the lab's namespaces, its work directory and its creator (pid plus the process start
time, so a recycled pid is not mistaken for the creator). `clean()` destroys labs whose creator is
gone; persistent labs (`hanode lab up`) have no creator and go only with `down` or `clean --all`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from hanode.lab import netns
from hanode.lab.pids import process_start_ticks

DEFAULT_DIR = "/run/hanode-lab"


def registry_dir() -> Path:
    return Path(os.environ.get("HANODE_LAB_REGISTRY") or DEFAULT_DIR)


@dataclass
class LabRecord:
    prefix: str
    namespaces: list[str]
    workdir: str
    creator_pid: int | None
    creator_start_ticks: int | None
    created_unix: float = field(default_factory=time.time)
    persistent: bool = False
    keep_logs: bool = False
    hosts: dict = field(default_factory=dict)
    machines: dict = field(default_factory=dict)  # host lab (hanode.lab.hosts): name -> machine dir

    @property
    def path(self) -> Path:
        return registry_dir() / f"{self.prefix}.json"

    def creator_alive(self) -> bool:
        if self.creator_pid is None:
            return self.persistent
        return process_start_ticks(self.creator_pid) == self.creator_start_ticks

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)


def new_record(prefix: str, namespaces: list[str], workdir: str, *, persistent: bool,
               hosts: dict | None = None) -> LabRecord:
    pid = None if persistent else os.getpid()
    ticks = None if pid is None else process_start_ticks(pid)
    return LabRecord(prefix, list(namespaces), workdir, pid, ticks, persistent=persistent, hosts=hosts or {})


def claim(record: LabRecord) -> bool:
    """Writes the record if no lab holds this prefix yet; False when the prefix is taken."""
    rdir = registry_dir()
    rdir.mkdir(mode=0o755, parents=True, exist_ok=True)
    if any(netns.exists(ns) for ns in record.namespaces):
        return False
    try:
        fd = os.open(record.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(record.to_json())
    return True


def save(record: LabRecord) -> None:
    tmp = record.path.with_suffix(".tmp")
    tmp.write_text(record.to_json())
    os.replace(tmp, record.path)


def load(prefix: str) -> LabRecord | None:
    try:
        data = json.loads((registry_dir() / f"{prefix}.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    # Keep only the fields this version knows: a newer checkout may have written more (labs are shared by the machine).
    known = {f.name for f in fields(LabRecord)}
    return LabRecord(**{k: v for k, v in data.items() if k in known})


def load_all() -> list[LabRecord]:
    rdir = registry_dir()
    if not rdir.is_dir():
        return []
    records = [load(p.stem) for p in sorted(rdir.glob("*.json"))]
    return [r for r in records if r is not None]


def forget(prefix: str) -> None:
    (registry_dir() / f"{prefix}.json").unlink(missing_ok=True)


def destroy_namespaces(namespaces: list[str]) -> None:
    """Kills every process inside, then deletes the namespaces (in the order given)."""
    errors = []
    for ns in namespaces:
        try:
            netns.kill_all(ns)
        except Exception as exc:  # keep going: the other namespaces still have to go
            errors.append(exc)
    for ns in namespaces:
        netns.delete(ns)
    left = [ns for ns in namespaces if netns.exists(ns)]
    if errors or left:
        raise RuntimeError(f"teardown incomplete: namespaces left {left}; errors {errors}")


def release_machines(machines: dict) -> None:
    """Stops the host lab's containers (their processes, cgroups) before their namespaces go."""
    if machines:
        from hanode.lab.hosts.machine import release_all  # only host labs need it

        release_all(machines)


def destroy(record: LabRecord, keep_workdir: bool | None = None) -> None:
    """Removes everything a record names; the record goes last so a failed teardown stays visible."""
    release_machines(record.machines)
    destroy_namespaces(record.namespaces)
    keep = record.keep_logs if keep_workdir is None else keep_workdir
    if not keep and record.workdir:
        shutil.rmtree(record.workdir, ignore_errors=True)
    forget(record.prefix)


def clean(all_labs: bool = False) -> list[str]:
    """Destroys labs whose creator is gone (every lab with `all_labs`); returns their prefixes."""
    removed, failed = [], []
    for record in load_all():
        if all_labs or not record.creator_alive():
            try:
                destroy(record)
                removed.append(record.prefix)
            except Exception as exc:
                failed.append(f"{record.prefix}: {exc}")
    if failed:
        raise RuntimeError("could not clean " + "; ".join(failed))
    return removed
