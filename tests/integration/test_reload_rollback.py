"""A reload is all or nothing (issue 15): a valid config that one process fails to apply (it does not answer in
time, or dies while applying) sends every process back to the running config. Checked for a frozen process
(SIGSTOP: the apply timeout) and a process killed mid-apply (SIGKILL while it holds the new config unread),
each on the SIGHUP path and the socket path, the VRRP process and the checker each failing twice: afterwards
status and last_reload say why, the parent's generation is what every process applied, the VRRP priority and
the real server weight are the old ones, systemd got READY=1 again, the MASTER kept its VIP throughout, and
ha_config put the previous file back so that the file and the running config agree."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from hanode.control.client import request
from hanode.lab.procs import hanode_argv, wait_for
from helpers_ops import NotifySocket
from helpers_vrrp import VIP4, AddressSampler, new_lab, rewrite_config, status, wait_state

pytestmark = pytest.mark.netns

APPLY_TIMEOUT_S = 3
REPO = Path(__file__).resolve().parents[2]


def _config(priority: int, weight: int) -> dict:
    return {"router_id": "n1", "watchdog_timeout": 20,   # a frozen process meets the apply timeout, not the watchdog
            "vrrp_instances": {"VI_1": {"interface": "eth0", "virtual_router_id": 51, "priority": priority,
                                        "advert_int": 0.3, "version": 3, "state": "BACKUP",
                                        "virtual_ipaddresses": [f"{VIP4}/24"]}},
            "lb_backend": "nftables",
            "virtual_servers": [{"address": VIP4, "port": 80, "protocol": "TCP", "lb_algo": "rr", "lb_kind": "NAT",
                                 "real_servers": [{"address": "203.0.113.50", "port": 8080, "weight": weight}]}]}


OLD, NEW = _config(150, 1), _config(200, 5)


def _pid(handle, process: str) -> int:
    return status(handle)["agent"]["processes"][process]["pid"]


def _running_config(handle) -> tuple[int, int]:
    st = status(handle)
    return st["instances"]["VI_1"]["priority"], st["virtual_servers"][0]["real_servers"][0]["weight"]


def _settled(handle, generation: int) -> dict:
    """Waits until both processes run and have applied `generation`, the parent's; returns status."""
    def check():
        st = status(handle)
        procs = st["agent"]["processes"]
        done = (st["agent"]["config"]["generation"] == generation and not st["agent"]["stale"]
                and all(procs[p]["running"] and procs[p]["applied_generation"] == generation for p in procs))
        return st if done else None
    return wait_for(check, 20, what=f"every process on generation {generation}")


def _freeze_during_reload(handle, process: str, kill: bool, trigger) -> None:
    """SIGSTOPs the process, triggers the reload, and (kill) SIGKILLs it once the parent waits for it to apply
    (status skips a process that stopped beating, so it answers at once while the process is frozen)."""
    pid = _pid(handle, process)
    os.kill(pid, signal.SIGSTOP)
    wait_for(lambda: status(handle)["agent"]["stale"] == [process], 10, what=f"status to see {process} frozen")
    trigger()
    if kill:
        wait_for(lambda: ((status(handle)["agent"]["config"]["reloading"] or {}).get("waiting_for") == [process]),
                 10, what=f"the reload to wait for the {process} process")
        os.kill(pid, signal.SIGKILL)


class _Background(threading.Thread):
    """Runs fn in a thread; .result() re-raises what it raised."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn, self.value, self.error = fn, None, None

    def run(self) -> None:
        try:
            self.value = self.fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            self.error = exc

    def result(self, timeout: float = 60):
        self.join(timeout)
        if self.error is not None:
            raise self.error
        return self.value


def _ha_config(handle, config: dict) -> dict:
    """The real ha_config module, in this process, against the running agent; its JSON result."""
    collections = REPO / ".cache" / "collections"
    link = collections / "ansible_collections" / "hanode" / "fleet"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("../../../.."))
    sys.path.insert(0, str(collections))
    from ansible.module_utils.testing import patch_module_args
    from ansible_collections.hanode.fleet.plugins.modules import ha_config

    args = {"config": dict(config, control_socket=str(handle.socket_path)), "path": str(handle.config_path),
            "socket": str(handle.socket_path), "validate": " ".join(hanode_argv() + ["check-config", "%s"]),
            "timeout": 30}
    out = io.StringIO()
    with patch_module_args(args), contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        ha_config.main()
    return json.loads(out.getvalue())


def _check_rolled_back(handle, generation: int, error: str, notify: NotifySocket, since: float) -> dict:
    st = _settled(handle, generation)
    last = st["agent"]["config"]["last_reload"]
    assert last["ok"] is False and last["rolled_back"] is True, last
    assert error in last["errors"][0], last
    assert last["digest"] == st["agent"]["config"]["digest"] == st["agent"]["config"]["applied_digest"]
    assert _running_config(handle) == (150, 1)
    assert st["instances"]["VI_1"]["state"] == "MASTER"
    reloading = notify.with_key("RELOADING", since)
    assert reloading and any(d.t > reloading[0].t for d in notify.with_key("READY", since)), "no READY=1 after"
    return last


def test_a_reload_a_process_fails_to_apply_rolls_every_process_back(lab_factory, monkeypatch):
    lab = new_lab(lab_factory, nodes=1, clients=0)
    (n1,) = lab.nodes
    notify = NotifySocket(n1.dir / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify.path))
    monkeypatch.setenv("HANODE_APPLY_TIMEOUT_S", str(APPLY_TIMEOUT_S))
    try:
        a1 = lab.start_agent(n1, OLD, timeout=20)
        wait_state(a1, "MASTER", timeout=15)
        first = _ha_config(a1, OLD)   # the file as ha_config renders it: the baseline ha_config goes back to
        assert first.get("failed") is not True and first["reloaded"] is True, first
        generation = _settled(a1, 2)["agent"]["config"]["generation"]
        old_text = a1.config_path.read_text()
        path = str(a1.socket_path)
        with AddressSampler(n1, VIP4, pid=a1.pid) as sampler:
            # 1. SIGHUP, the checker frozen: the VRRP process applied priority 200 and goes back to 150.
            since = notify_time(notify)
            rewrite_config(a1, NEW)
            _freeze_during_reload(a1, "checker", kill=False, trigger=lambda: a1.send_signal(signal.SIGHUP))
            generation += 2
            _check_rolled_back(a1, generation, f"checker process did not apply generation {generation - 1} within "
                                               f"{APPLY_TIMEOUT_S:g} s", notify, since)

            # 2. The socket (ha_config), the checker killed while it holds the new config: the file goes back too.
            since = notify_time(notify)
            a1.config_path.write_text(old_text)
            run = _Background(lambda: _ha_config(a1, NEW))
            _freeze_during_reload(a1, "checker", kill=True, trigger=run.start)
            result = run.result()
            generation += 2
            assert result["failed"] is True and result["rolled_back"] is True, result
            assert result["msg"].startswith("the agent could not apply the new config and went back to the old one "
                                            "(the previous file is restored): checker process exited"), result
            last = _check_rolled_back(a1, generation, f"checker process exited while applying generation "
                                                      f"{generation - 1} (killed by signal 9)", notify, since)
            assert a1.config_path.read_text() == old_text
            assert _sha256(a1.config_path) == last["digest"], "the file and the running config disagree"

            # 3. The socket, the VRRP process frozen: killed at the timeout, it comes back as MASTER (resumed).
            since = notify_time(notify)
            rewrite_config(a1, NEW)
            run = _Background(lambda: request(path, {"cmd": "reload"}, timeout_s=60))
            _freeze_during_reload(a1, "vrrp", kill=False, trigger=run.start)
            reply = run.result()
            generation += 2
            assert reply["ok"] is False and reply["rolled_back"] is True and reply["generation"] == generation
            _check_rolled_back(a1, generation, f"vrrp process did not apply generation {generation - 1} within "
                                               f"{APPLY_TIMEOUT_S:g} s", notify, since)

            # 4. SIGHUP, the VRRP process killed while it holds the new config.
            since = notify_time(notify)
            _freeze_during_reload(a1, "vrrp", kill=True, trigger=lambda: a1.send_signal(signal.SIGHUP))
            generation += 2
            _check_rolled_back(a1, generation, f"vrrp process exited while applying generation {generation - 1} "
                                               "(killed by signal 9)", notify, since)
        assert len(sampler.samples) > 100 and not sampler.errors
        assert sampler.missing == [], f"the VIP was missing for {len(sampler.missing)} samples"
        st = status(a1)
        assert st["agent"]["processes"]["vrrp"]["restarts"] == 2 and st["agent"]["processes"]["checker"]["restarts"] == 2
        transitions = [(e["from"], e["to"]) for e in _events(path) if e.get("event") == "transition"]
        assert transitions == [("INIT", "BACKUP"), ("BACKUP", "MASTER")] + [("INIT", "MASTER")] * 2, transitions

        # A reload that works afterwards applies everywhere.
        assert "reloaded: applied" in a1.reload().stdout
        _settled(a1, generation + 1)
        assert _running_config(a1) == (200, 5)
    finally:
        notify.close()


def notify_time(notify: NotifySocket) -> float:
    """The arrival time of the latest datagram (0 before any): what happens next comes after it."""
    return notify.datagrams[-1].t + 1e-6 if notify.datagrams else 0.0


def _sha256(path: Path) -> str:
    import hashlib
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _events(path: str) -> list[dict]:
    from hanode.control.client import stream
    return list(stream(path, {"cmd": "events"}, timeout_s=5.0))
