"""plan(desired, actual, owned): every kind of change, idempotence, ownership and a safe order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hanode.lvs.kernel import SVC_F_PERSISTENT, Dest, DestKey, Service, ServiceKey, entry
from hanode.lvs.plan import (AddDest, AddService, DelDest, DelService, EditDest, EditService, apply_ops, describe, settled,
                             plan)

WEB = ServiceKey.for_address(4, "TCP", "198.51.100.100", 80)
DNS6 = ServiceKey.for_address(6, "UDP", "2001:db8:100::100", 53)
MARK = ServiceKey.for_fwmark(4, 7)
R1, R2, R3 = (DestKey(f"203.0.113.{i}", 8080) for i in (11, 12, 13))


def web(*dests: Dest, scheduler: str = "wrr", **kw):
    return {WEB: entry(Service(WEB, scheduler, **kw), list(dests))}


def test_same_state_plans_nothing():
    state = {**web(Dest(R1, 3), Dest(R2, 1)), DNS6: entry(Service(DNS6, "sh"), [Dest(DestKey("2001:db8:203::11", 53))])}
    assert plan(state, state, set(state)) == []
    assert plan(state, {k: entry(e.service, list(e.dests.values())) for k, e in state.items()}, set()) == []


def test_new_service_is_added_before_its_destinations():
    ops = plan(web(Dest(R2, 1), Dest(R1, 3)), {})
    assert ops == [AddService(Service(WEB, "wrr").normalized()), AddDest(WEB, Dest(R1, 3)), AddDest(WEB, Dest(R2, 1))]


def test_weight_change_is_one_in_place_edit():
    ops = plan(web(Dest(R1, 5), Dest(R2, 1)), web(Dest(R1, 3), Dest(R2, 1)), {WEB})
    assert ops == [EditDest(WEB, Dest(R1, 5), Dest(R1, 3))]
    assert describe(ops[0]) == "set dest TCP 198.51.100.100:80 -> 203.0.113.11:8080 weight 3 -> 5"


def test_forwarding_method_change_is_an_edit_too():
    ops = plan(web(Dest(R1, 1, "DR")), web(Dest(R1, 1, "NAT")), {WEB})
    assert ops == [EditDest(WEB, Dest(R1, 1, "DR"), Dest(R1, 1, "NAT"))]


def test_destination_added_and_removed_adds_first():
    ops = plan(web(Dest(R1), Dest(R3)), web(Dest(R1), Dest(R2)), {WEB})
    assert ops == [AddDest(WEB, Dest(R3)), DelDest(WEB, R2)]


def test_scheduler_and_persistence_changes_edit_the_service():
    ops = plan(web(Dest(R1), scheduler="sh", flags=SVC_F_PERSISTENT, timeout_s=300), web(Dest(R1)), {WEB})
    assert len(ops) == 1 and isinstance(ops[0], EditService)
    assert ops[0].service.scheduler == "sh" and ops[0].service.timeout_s == 300
    assert ops[0].before.scheduler == "wrr"


def test_owned_service_no_longer_desired_loses_dests_then_itself():
    actual = {**web(Dest(R1), Dest(R2)), MARK: entry(Service(MARK, "rr"), [Dest(DestKey("203.0.113.11", 0))])}
    ops = plan(web(Dest(R1), Dest(R2)), actual, {WEB, MARK})
    assert ops == [DelDest(MARK, DestKey("203.0.113.11", 0)), DelService(MARK)]


def test_services_not_owned_are_left_alone():
    foreign = {DNS6: entry(Service(DNS6, "rr"), [Dest(DestKey("2001:db8:203::11", 53))])}
    assert plan({}, foreign, {WEB}) == []
    assert plan(web(Dest(R1)), {**web(Dest(R1)), **foreign}, {WEB}) == []


def test_desired_service_that_exists_unowned_is_adopted_and_fixed():
    ops = plan(web(Dest(R1, 2)), web(Dest(R1, 1), Dest(R2)), set())
    assert ops == [EditDest(WEB, Dest(R1, 2), Dest(R1, 1)), DelDest(WEB, R2)]


def test_order_is_services_dests_edits_deletes():
    desired = {**web(Dest(R1, 2), Dest(R3)), DNS6: entry(Service(DNS6, "rr"), [Dest(DestKey("2001:db8:203::11", 53))])}
    actual = {**web(Dest(R1, 1), Dest(R2)), MARK: entry(Service(MARK, "rr"), [Dest(DestKey("203.0.113.11", 0))])}
    kinds = [type(op).__name__ for op in plan(desired, actual, {WEB, MARK})]
    assert kinds == ["AddService", "AddDest", "AddDest", "EditDest", "DelDest", "DelDest", "DelService"]


def test_non_persistent_service_ignores_timeout_and_netmask():
    assert plan(web(Dest(R1), timeout_s=0, netmask=24), web(Dest(R1)), {WEB}) == []


keys = st.sampled_from([WEB, DNS6, MARK])
dest_keys = st.builds(DestKey, st.sampled_from(["203.0.113.11", "203.0.113.12", "2001:db8:203::11"]),
                      st.integers(0, 3))
dests = st.builds(Dest, dest_keys, st.integers(0, 4), st.sampled_from(["NAT", "DR"]))
services = st.builds(lambda k, s, d: (k, entry(Service(k, s), d)), keys, st.sampled_from(["rr", "wrr", "sh"]),
                     st.lists(dests, max_size=4, unique_by=lambda d: d.key))
states = st.lists(services, max_size=3).map(dict)


@settings(max_examples=300, deadline=None)
@given(states, states, st.sets(keys))
def test_applying_the_plan_reaches_desired_and_touches_nothing_foreign(desired, actual, owned):
    ops = plan(desired, actual, owned)
    after = apply_ops(actual, ops)
    for key in desired:
        assert after[key] == desired[key]
    for key in actual:
        if key not in desired and key not in owned:
            assert after[key] == actual[key]
        if key not in desired and key in owned:
            assert key not in after
    assert plan(desired, after, owned) == []
    assert settled(desired, actual, ops) == after
    for op in ops:
        if isinstance(op, EditDest):
            assert op.before.key == op.dest.key and op.before != op.dest
