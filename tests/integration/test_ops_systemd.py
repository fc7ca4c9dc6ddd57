"""systemd's notify protocol (Type=notify, WatchdogSec) against a datagram socket the test owns: READY=1 once
the first config is applied, STATUS= on every transition, WATCHDOG=1 every WATCHDOG_USEC/2 while the children
are alive (held back while the VRRP child is frozen), RELOADING=1 + MONOTONIC_USEC then READY=1 around a
reload, STOPPING=1 on SIGTERM."""

from __future__ import annotations

import os
import signal
import statistics
import time

import pytest

from hanode.lab.procs import wait_for
from helpers_ops import NotifySocket, new_lab
from helpers_vrrp import agent_config, instance, rewrite_config, status, wait_state

pytestmark = pytest.mark.netns

WATCHDOG_USEC = 1_000_000  # pings every 0.5 s


def _pings(sock: NotifySocket, since: float, until: float | None = None) -> list[float]:
    return [d.t for d in sock.with_key("WATCHDOG", since) if until is None or d.t <= until]


def test_notify_protocol_ready_status_watchdog_reload_stopping(lab_factory, monkeypatch):
    lab = new_lab(lab_factory, nodes=1, clients=0)
    (n1,) = lab.nodes
    sock = NotifySocket(n1.dir / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(sock.path))
    monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_USEC))

    # watchdog_timeout 6 s: the frozen child below is not killed while the test watches the pings pause.
    def config(priority: int) -> dict:
        return agent_config("n1", {"VI_1": instance(priority=priority, version=3, advert_int=0.3)}, watchdog_timeout=6)
    try:
        a1 = lab.start_agent(n1, config(100))
        ready = wait_for(lambda: sock.with_key("READY"), 10, what="READY=1")[0]
        first = status(a1)
        digest = first["agent"]["config"]["digest"]
        # READY=1 comes once the first config is applied: the instance exists and reported its first state.
        assert ready.fields["READY"] == "1" and ready.fields["MAINPID"] == str(a1.pid)
        assert ready.fields["STATUS"] == f"VI_1 BACKUP; config {digest[:12]}"
        before_ready = [d for d in sock.datagrams if d.t < ready.t]
        assert [d.fields for d in before_ready] == [{"STATUS": f"VI_1 BACKUP; config {digest[:12]}"}]
        assert first["agent"]["config"]["applied_generation"] == 1

        wait_state(a1, "MASTER", timeout=10)
        master = wait_for(lambda: [d for d in sock.with_key("STATUS") if "MASTER" in d.fields["STATUS"]], 5,
                          what="STATUS= with MASTER")
        assert master[0].fields == {"STATUS": f"VI_1 MASTER; config {digest[:12]}"}

        # WATCHDOG=1 every WATCHDOG_USEC / 2.
        watch_from = time.monotonic()
        pings = wait_for(lambda: len(p := _pings(sock, watch_from)) >= 5 and p, 10, what="5 watchdog pings")
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        print(f"\nMEASURE WATCHDOG=1 interval: median {statistics.median(gaps) * 1000:.0f} ms "
              f"(WATCHDOG_USEC/2 = {WATCHDOG_USEC / 2e3:.0f} ms), max {max(gaps) * 1000:.0f} ms")
        assert 0.4 < statistics.median(gaps) < 0.7 and max(gaps) < 1.2, gaps

        # A frozen VRRP child holds the pings back; they come back when it runs again (not restarted).
        pid = status(a1)["agent"]["processes"]["vrrp"]["pid"]
        os.kill(pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:
            wait_for(lambda: time.monotonic() - stopped_at > 3.5, 10, interval=0.1, what="3.5 s frozen")
            held = _pings(sock, stopped_at + 1.5, time.monotonic())
        finally:
            os.kill(pid, signal.SIGCONT)
        resumed_at = time.monotonic()
        late = wait_for(lambda: _pings(sock, resumed_at), 5, what="WATCHDOG=1 after SIGCONT")[0]
        last_before = max([t for t in _pings(sock, watch_from) if t < stopped_at + 1.5], default=stopped_at)
        print(f"MEASURE WATCHDOG=1 held back {late - last_before:.2f} s while the VRRP child was frozen "
              f"{resumed_at - stopped_at:.2f} s; first ping {(late - resumed_at) * 1000:.0f} ms after SIGCONT")
        assert held == [], "WATCHDOG=1 kept coming while the VRRP child was frozen"
        assert status(a1)["agent"]["processes"]["vrrp"]["restarts"] == 0

        # A reload that changes the config: RELOADING=1 with MONOTONIC_USEC, then READY=1.
        rewrite_config(a1, config(120))
        reload_from = time.monotonic()
        a1.reload()
        reload_until = time.monotonic()
        reloading = wait_for(lambda: sock.with_key("RELOADING", reload_from), 5, what="RELOADING=1")
        assert len(reloading) == 1
        stamp_s = int(reloading[0].fields["MONOTONIC_USEC"]) / 1e6
        assert reload_from - 0.05 <= stamp_s <= reload_until, (reload_from, stamp_s, reload_until)
        again = wait_for(lambda: sock.with_key("READY", reloading[0].t), 5, what="READY=1 after the reload")
        new_digest = status(a1)["agent"]["config"]["digest"]
        assert new_digest != digest
        assert again[0].fields["STATUS"].endswith(f"config {new_digest[:12]}")
        # A reload that changes nothing is no reload for systemd.
        quiet_from = time.monotonic()
        a1.reload()
        assert sock.with_key("RELOADING", quiet_from) == []
        # But every SIGHUP is answered with RELOADING=1 then READY=1, whatever it changed: Type=notify-reload
        # (systemd 253+) sends SIGHUP itself and `systemctl reload` waits for them.
        hup_from = time.monotonic()
        os.kill(a1.pid, signal.SIGHUP)
        hup = wait_for(lambda: sock.with_key("RELOADING", hup_from), 5, what="RELOADING=1 after SIGHUP")
        assert int(hup[0].fields["MONOTONIC_USEC"]) / 1e6 >= hup_from - 0.05
        wait_for(lambda: sock.with_key("READY", hup[0].t), 5, what="READY=1 after SIGHUP")
        assert status(a1)["agent"]["config"]["digest"] == new_digest

        # SIGTERM: STOPPING=1, clean exit.
        stop_from = time.monotonic()
        assert a1.stop() == 0
        stopping = wait_for(lambda: sock.with_key("STOPPING", stop_from), 5, what="STOPPING=1")
        assert stopping[0].fields == {"STOPPING": "1"}
        assert _pings(sock, stopping[0].t + 0.1) == []
    finally:
        sock.close()
