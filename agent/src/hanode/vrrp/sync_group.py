"""The engine's sync groups and tracking (vrrp_sync_groups, track_*): members that change state together, share
their faults and trackers, re-announce together and wait for each other before a takeover (keepalived's
vrrp_sync.c). Pure: no I/O, no clock. A mixin of engine.Engine, whose state (instances, config, deadlines,
group_states, want_master, tracked, ...) it reads and steps through Engine._step.
"""

from __future__ import annotations

from hanode.config.model import VrrpInstance
from hanode.vrrp import fsm
from hanode.vrrp.actions import GroupStateChanged, PriorityChanged, State, StateChanged
from hanode.vrrp.output import Output
from hanode.vrrp.timers import master_down_interval_us
from hanode.vrrp.track import Observed, evaluate, with_group_trackers


class SyncGroups:
    def _group_garps(self, name: str, now_us: int) -> list[Output]:
        """A MASTER re-announcing its VIPs against a lower-priority master: the other MASTERs of its sync group
        re-announce theirs too (keepalived 2.2.7's vrrp_state_master_rx, each with its own garp_lower_prio_repeat
        and delay), so that clients of every member converge on this node."""
        group = self.config.sync_group_of(name)
        outputs: list[Output] = []
        for member in group.group if group else ():
            inst = self.instances.get(member)
            if member == name or inst is None:
                continue
            outputs += [Output(member, a, inst.config, inst.params)
                        for a in fsm.conflict_garps(inst.params, inst.state, now_us)]
            self.deadlines.lower(member, self._earliest(member))
        return outputs

    def _sync_group(self, name: str, change: StateChanged, now_us: int) -> list[Output]:
        group = self.config.sync_group_of(name)
        if group is None or change.new not in (State.MASTER, State.BACKUP):
            return []
        outputs: list[Output] = []
        reason = f"sync group {group.name}: {name} became {change.new.value}"
        for member in group.group:
            if member != name and member in self.instances:
                outputs += self._step(member, fsm.ForceState(change.new, reason), now_us, propagate=False)
        return outputs

    def _group_states(self, name: str, now_us: int) -> list[Output]:
        group = self.config.sync_group_of(name)
        if group is None:
            return []
        states = {self.instances[m].state.state for m in group.group if m in self.instances}
        if State.FAULT in states:
            new = State.FAULT
        elif states == {State.MASTER}:
            new = State.MASTER
        elif State.INIT in states or State.STOP in states:
            new = State.INIT if State.INIT in states else State.STOP
        else:
            new = State.BACKUP
        old = self.group_states.get(group.name, State.INIT)
        if new == old:
            return []
        self.group_states[group.name] = new
        inst = self.instances[name]
        change = GroupStateChanged(group=group.name, old=old, new=new, reason=f"{name} is {inst.state.state.value}")
        return [Output(name, change, inst.config, inst.params)]

    def tracked_config(self, name: str) -> VrrpInstance:
        """The instance's config with its sync group's trackers (track.with_group_trackers), made once per config."""
        cfg = self.instances[name].config
        cached = self.tracked.get(name)
        if cached is None or cached[0] is not cfg:
            group = self.config.sync_group_of(name)
            owner = group is not None and any(m in self.config.vrrp_instances and self.config.vrrp_instances[m].is_owner
                                              for m in group.group)
            cached = self.tracked[name] = (cfg, with_group_trackers(cfg, group, self.config.vrrp_scripts,
                                                                    self.config.track_files, owner))
        return cached[1]

    def _retrack(self, now_us: int) -> list[Output]:
        links = {n: i.up for n, i in self.interfaces.items()}
        outputs: list[Output] = []
        pending: dict[str, tuple[str, ...]] = {}
        observed = Observed(self.config.vrrp_track_processes, self.process_up, self.config.track_files,
                            self.file_values)
        for name, inst in self.instances.items():
            tracking = evaluate(self.tracked_config(name), links, self.config.vrrp_scripts, self.health, observed)
            inst.own_faults = tracking.fault_reasons
            if inst.params.primary_address is None:
                inst.own_faults += (f"no IPv{inst.config.family} source address on {inst.config.interface}",)
            pending[name] = tracking.pending
            if tracking.effective_priority != inst.state.effective_priority:
                outputs += self._step(name, fsm.SetPriority(tracking.effective_priority), now_us)
                if inst.config.notify_priority_changes and self.started:   # not the start's first tracking
                    outputs.append(Output(name, PriorityChanged(inst.state.state, inst.state.effective_priority),
                                          inst.config, inst.params))
        for name, inst in self.instances.items():
            reasons = inst.own_faults + self._group_faults(name)
            if reasons != inst.state.fault_reasons:
                outputs += self._step(name, fsm.SetFault(reasons), now_us)
        if self.started:
            for name, inst in self.instances.items():
                if inst.state.state == State.INIT and not pending[name]:
                    resume = self.resume.pop(name, None) == State.MASTER.value  # the first start only
                    outputs += self._step(name, fsm.Start(resume_master=resume), now_us)
        return outputs

    def _group_faults(self, name: str) -> tuple[str, ...]:
        group = self.config.sync_group_of(name)
        if group is None:
            return ()
        reasons = []
        for member in group.group:
            other = self.instances.get(member)
            if member != name and other is not None and other.own_faults:
                reasons.append(f"sync group {group.name}: {member} in FAULT ({'; '.join(other.own_faults)})")
        return tuple(reasons)

    def _held_in_backup(self, name: str, inst, now_us: int) -> bool:
        """keepalived's sync group rule (vrrp_sync_can_goto_master): a BACKUP whose down timer ran out becomes
        MASTER only when every other member wants to as well, preferring BACKUP to thrashing; until then it
        waits with its timer re-armed. Without it, one member's lowered priority flips the group every few s."""
        st = inst.state
        group = self.config.sync_group_of(name)
        if group is None or st.state != State.BACKUP or st.master_down_at_us is None or st.master_down_at_us > now_us:
            return False
        if self.group_states.get(group.name) == State.MASTER:
            return False
        others = [m for m in group.group if m != name and m in self.instances]
        if all(self._wants_master(m, now_us) for m in others):
            return False
        self.want_master.add(name)
        st.master_down_at_us = now_us + master_down_interval_us(st.effective_priority, st.master_adver_int_cs,
                                                                inst.params.version, inst.params.down_timer_adverts)
        return True

    def _wants_master(self, name: str, now_us: int) -> bool:
        st = self.instances[name].state
        if st.state == State.MASTER or name in self.want_master:
            return True
        return st.state == State.BACKUP and st.master_down_at_us is not None and st.master_down_at_us <= now_us
