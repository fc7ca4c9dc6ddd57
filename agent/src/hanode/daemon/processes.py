"""Starting, configuring, restarting and watching the supervised processes (a part of the Supervisor).

A config reaches a child as one `config` message with its generation; the child answers `applied` (or
`applied` with an `error`). A child that answers with an error, goes away, or says nothing within the apply
timeout fails the apply (ApplyFailed), which the reload turns into a return to the running config."""

from __future__ import annotations

import asyncio
import logging
import os
import time

from hanode.config.loaded import LoadedConfig
from hanode.daemon.beat import beat_period_s
from hanode.daemon.child import Child
from hanode.daemon.logs import fields
from hanode.daemon.wanted import child_wanted, config_keeper

log = logging.getLogger("hanode.supervisor")

APPLY_TIMEOUT_S = 30.0  # a child that has not applied a config by then is killed (HANODE_APPLY_TIMEOUT_S overrides)
LONG_RUN_S = 60.0


class ApplyFailed(Exception):
    """A child did not apply a config: it went away, answered with an error, or did not answer in time."""

    def __init__(self, child: str, reason: str):
        super().__init__(f"{child} process {reason}")
        self.child = child


def apply_timeout_s(environ: dict[str, str] | None = None) -> float:
    value = (os.environ if environ is None else environ).get("HANODE_APPLY_TIMEOUT_S")
    try:
        return max(0.1, float(value)) if value else APPLY_TIMEOUT_S
    except ValueError:
        return APPLY_TIMEOUT_S


def restart_delay_s(ran_s: float, failures: int) -> float:
    """keepalived's respawn policy: immediately after a long run, else 1, 2, 4 ... capped at 60 s."""
    if ran_s > LONG_RUN_S:
        return 0.0
    return float(min(60, 2 ** max(0, failures - 1)))


class Processes:
    """Mixed into Supervisor: uses its children, tasks, loaded config, generation, reload lock, systemd notifier
    and publish()."""

    async def _start_first(self, name: str) -> None:
        """At start: a child that does not apply the config is killed; _supervise restarts it with back-off."""
        try:
            await self._start_child(name, self.loaded, self.generation, resume={})
        except ApplyFailed as exc:
            log.error("%s; restarting it", exc)
            self.children[name].kill()

    async def _start_child(self, name: str, loaded: LoadedConfig, generation: int, resume: dict[str, str]) -> None:
        child = self.children[name]
        await child.start()
        self.tasks[name] = asyncio.get_running_loop().create_task(self._supervise(name))
        await self._apply_to(name, loaded, generation, resume)

    async def _stop_child(self, name: str) -> None:
        task = self.tasks.pop(name, None)
        if task:
            task.cancel()
        await self.children[name].stop()

    async def _apply_to(self, name: str, loaded: LoadedConfig, generation: int,
                        resume: dict[str, str] | None = None) -> None:
        """Sends the config to one child and waits until it reports it applied; ApplyFailed when it answers
        with an error, goes away, or says nothing within the apply timeout."""
        child = self.children[name]
        key = (name, generation)
        future = asyncio.get_running_loop().create_future()
        self.apply_waiters[key] = future
        try:
            # a child forked after this config was loaded has it parsed already (daemon/fork.py): not sent again
            raw = None if child.inherited_digest == loaded.digest else loaded.raw
            if not child.send({"type": "config", "config": raw, "digest": loaded.digest,
                               "generation": generation, "router_id": loaded.config.router_id,
                               "resume": resume or {}}):
                raise ApplyFailed(name, f"is not running (generation {generation} not applied)")
            await asyncio.wait({future, child.gone}, timeout=self.apply_timeout_s,
                               return_when=asyncio.FIRST_COMPLETED)
            if future.done():
                if future.result().get("error"):
                    raise ApplyFailed(name, f"could not apply generation {generation}: {future.result()['error']}")
                if name == "checker":
                    self.relay_states()
                if name == config_keeper(loaded):
                    self.applied = {"digest": loaded.digest, "generation": generation, "at": time.time()}
                return
            if child.gone.done():
                raise ApplyFailed(name, f"exited while applying generation {generation}{await _exit_text(child)}")
            raise ApplyFailed(name, f"did not apply generation {generation} within {self.apply_timeout_s:g} s")
        finally:
            self.apply_waiters.pop(key, None)

    def relay_states(self) -> None:
        """The checker owns the kernel's connection-sync state and follows VRRP states: it gets every
        instance's state after each transition and after each config it applied."""
        checker = self.children.get("checker")
        if checker is not None and checker.running:
            checker.send({"type": "vrrp_states", "states": dict(self.instance_states)})

    async def _apply(self, loaded: LoadedConfig, generation: int, skip: frozenset[str] = frozenset()) -> None:
        """Starts or stops the children the config needs or not, and applies it to the running ones."""
        for name, child in self.children.items():
            wanted = child_wanted(name, loaded)
            restarting = name in self.tasks and not self.tasks[name].done()
            if name in skip or (wanted and not child.running and restarting):
                continue  # _supervise starts it after its back-off, with the running config and states to resume
            if wanted and not child.running:
                await self._start_child(name, loaded, generation, resume={})
            elif not wanted and child.running:
                await self._stop_child(name)
                if name == "vrrp":   # its instances are gone with it: the checker no longer follows them
                    self.instance_states.clear()
                    self.relay_states()
            elif wanted:
                await self._apply_to(name, loaded, generation)
        self._applied_without_children(loaded, generation)

    def _applied_without_children(self, loaded: LoadedConfig, generation: int) -> None:
        """A config that runs no process (neither VRRP nor the checker) is applied once the processes it does
        not want are stopped: status says so (ha_config waits for applied_digest)."""
        if config_keeper(loaded) is None:
            self.applied = {"digest": loaded.digest, "generation": generation, "at": time.time()}

    async def _supervise(self, name: str) -> None:
        child = self.children[name]
        while True:
            code = await child.wait()
            if self.stop_event.is_set() or child.stopping:
                return
            ran_s = time.monotonic() - child.started_at
            self.failures[name] = 0 if ran_s > LONG_RUN_S else self.failures[name] + 1
            delay = restart_delay_s(ran_s, self.failures[name])
            child.restarts += 1
            resume = dict(self.instance_states) if name == "vrrp" else {}
            event = {"event": "process_restart", "process": name, "exit_status": code, "ran_s": round(ran_s, 3),
                     "delay_s": delay}
            if child.hung_s is not None:
                event["hung_s"] = round(child.hung_s, 3)
            event["resume"] = resume
            log.error("%s process exited with status %s after %.1f s; restarting in %.0f s", name, code, ran_s, delay,
                      extra={"fields": {key: value for key, value in event.items() if key not in ("ran_s", "resume")}})
            self.publish(event)
            await child.close()
            await asyncio.sleep(delay)
            async with self.reload_lock:  # a reload in progress decides which config the new process gets
                if not child_wanted(name, self.loaded):   # a reload meanwhile left it nothing to run
                    log.info("%s process not restarted: the config no longer needs it", name)
                    return
                try:
                    await child.start()
                    await self._apply_to(name, self.loaded, self.generation, resume)
                except ApplyFailed as exc:
                    log.error("%s process did not come back: %s", name, exc)
                    child.kill()
                except OSError as exc:
                    log.error("%s process did not come back: %s", name, exc)

    def _set_watchdog_limits(self) -> None:
        """Each child's watchdog timeout and beat period (daemon/beat.py), from the running config and systemd's
        watchdog interval; at start and after each reload."""
        timeout_s = self.loaded.config.sections["ops"].watchdog_timeout_ms / 1000
        period_s = beat_period_s(timeout_s, self.systemd.watchdog_interval_s)
        for child in self.children.values():
            child.set_limits(timeout_s, period_s)

    def _on_alarm(self, child: Child) -> None:
        """A child's dead man's switch went off: it has not beaten for its limit (then it is hung: kill it,
        _supervise restarts it), or the switch was armed early (then it is moved to the real deadline). When
        this loop itself was stalled (it woke well after the deadline), the round is skipped: the children's loops
        were held up alike and get a beat period to catch up."""
        child.alarm.consume()
        if not child.running:
            return
        now = time.monotonic()
        if child.killed_at is not None:   # killed for its silence and still there (not reaped yet, unkillable)
            if now - child.killed_at >= child.timeout_s:
                child.killed_at = now
                child.proc.kill()
            child.alarm.arm_at(child.killed_at + child.timeout_s)
            return
        deadline = child.last_heartbeat + child.limit_s
        if now < deadline:
            child.stall_excused = False
            child.alarm.arm_at(deadline)
            return
        if now - deadline > child.timeout_s / 2 and not child.stall_excused:
            log.warning("supervisor loop stalled for %.1f s: not judging heartbeats this round", now - deadline)
            child.stall_excused = True
            child.alarm.arm_at(now + child.period_s)
            return
        silent_s = now - child.last_heartbeat
        log.error("%s process sent no heartbeat for %.1f s: killing it", child.name, silent_s,
                  extra=fields(event="process_hung", process=child.name))
        self.publish({"event": "process_hung", "process": child.name, "silent_s": round(silent_s, 3)})
        child.killed_at, child.hung_s = now, silent_s
        child.proc.kill()
        child.alarm.arm_at(now + child.timeout_s)


async def _exit_text(child: Child) -> str:
    """' (exit status N)' once the process is reaped (it is, within moments of its messages ending)."""
    try:
        code = await asyncio.wait_for(asyncio.shield(child.proc.wait()), 1.0)
    except asyncio.TimeoutError:
        return ""
    return f" (killed by signal {-code})" if code < 0 else f" (exit status {code})"
