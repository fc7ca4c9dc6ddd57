"""desired_state: keepalived's removal/inhibit, misc_dynamic weights, quorum with hysteresis, sorry server, alpha;
desired_update: the same result from the last one and the changed servers only."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from hanode.lvs.desired import QuorumState, RsHealth, desired_state, desired_update, service_key
from hanode.lvs.kernel import DestKey
from hanode.lvs.model import Check, LvsConfig, RealServer, SorryServer, VirtualServer, real_server_name

TCP = (Check(type="TCP_CHECK"),)


def vs(n: int = 3, weights=None, **kw) -> VirtualServer:
    weights = weights or [1] * n
    servers = tuple(RealServer(f"203.0.113.{11 + i}", 8080, weights[i], checks=TCP) for i in range(n))
    return VirtualServer(address="198.51.100.100", port=80, lb_algo="wrr", real_servers=servers, **kw)


def health(v: VirtualServer, *down: int, weights: dict[int, int] | None = None) -> dict:
    out = {}
    for i, rs in enumerate(v.real_servers):
        out[(v.name, real_server_name(rs))] = RsHealth(i not in down, (weights or {}).get(i),
                                                       "connect refused" if i in down else None)
    return out


def weights_of(v: VirtualServer, h: dict, previous=None):
    state, quorum = desired_state(LvsConfig(virtual_servers=(v,)), h, {v.name: previous} if previous else None)
    dests = state[service_key(v)].dests
    return {str(k): d.weight for k, d in dests.items()}, quorum[v.name]


def test_failed_server_is_removed():
    v = vs(3, [3, 2, 1])
    assert weights_of(v, health(v, 1))[0] == {"203.0.113.11:8080": 3, "203.0.113.13:8080": 1}


def test_inhibit_on_failure_keeps_it_with_weight_zero():
    v = vs(3, [3, 2, 1], inhibit_on_failure=True)
    assert weights_of(v, health(v, 1))[0] == {"203.0.113.11:8080": 3, "203.0.113.12:8080": 0, "203.0.113.13:8080": 1}


def test_real_server_inhibit_overrides_the_virtual_servers():
    v = vs(2)
    v = dataclasses.replace(v, real_servers=(dataclasses.replace(v.real_servers[0], inhibit_on_failure=True),
                                             v.real_servers[1]))
    assert weights_of(v, health(v, 0, 1))[0] == {"203.0.113.11:8080": 0}


def test_misc_dynamic_weight_replaces_the_configured_one():
    v = vs(2, [3, 3])
    dests, quorum = weights_of(v, health(v, weights={0: 7}))
    assert dests == {"203.0.113.11:8080": 7, "203.0.113.12:8080": 3}
    assert quorum.live_weight == 10


def test_nat_destination_defaults_to_the_service_port_and_method():
    v = VirtualServer(address="198.51.100.100", port=80, lb_kind="DR",
                      real_servers=(RealServer("203.0.113.11"),))
    state, _quorum = desired_state(LvsConfig(virtual_servers=(v,)), {})
    (dest,) = state[service_key(v)].dests.values()
    assert dest.key == DestKey("203.0.113.11", 80) and dest.fwd_method == "DR"


def test_quorum_hysteresis_goes_down_below_quorum_minus_h_and_up_at_quorum_plus_h():
    v = vs(6, quorum=4, hysteresis=1)                      # up -> down when < 3, down -> up when >= 5
    _weights, q = weights_of(v, health(v))
    assert q == QuorumState(True, 6, 3)
    _weights, q = weights_of(v, health(v, 0, 1, 2), q)      # 3 live: still up (3 is not < 3)
    assert q.up
    _weights, q = weights_of(v, health(v, 0, 1, 2, 3), q)   # 2 live: down
    assert q == QuorumState(False, 2, 5)
    _weights, q = weights_of(v, health(v, 0, 1), q)         # 4 live: stays down (needs 5)
    assert not q.up
    _weights, q = weights_of(v, health(v, 0), q)            # 5 live: up again
    assert q.up and q.threshold == 3


def test_first_evaluation_needs_quorum_plus_hysteresis():
    v = vs(6, quorum=4, hysteresis=1)
    assert not weights_of(v, health(v, 0, 1))[1].up          # 4 < 4 + 1 at start (keepalived's set_quorum_states)


def test_quorum_lost_without_weight_even_when_quorum_is_zero_plus_h():
    v = vs(2, quorum=1, hysteresis=5)
    _weights, q = weights_of(v, health(v), QuorumState(True, 2, -4))
    _weights, q = weights_of(v, health(v, 0, 1), q)
    assert not q.up and q.live_weight == 0


def test_sorry_server_replaces_the_pool_while_quorum_is_lost():
    v = vs(3, [1, 1, 1], quorum=2, sorry_server=SorryServer("203.0.113.50", 8080))
    dests, q = weights_of(v, health(v, 0, 1))
    assert not q.up and q.sorry_active
    assert dests == {"203.0.113.50:8080": 1}                 # the one live server leaves too (keepalived)
    dests, q = weights_of(v, health(v), q)
    assert q.up and not q.sorry_active
    assert dests == {"203.0.113.11:8080": 1, "203.0.113.12:8080": 1, "203.0.113.13:8080": 1}


def test_sorry_server_with_inhibit_and_inhibited_servers_stay_at_weight_zero():
    v = vs(2, [1, 1], quorum=2, inhibit_on_failure=True,
           sorry_server=SorryServer("203.0.113.50", 8080, inhibit=True))
    up, _quorum = weights_of(v, health(v))
    assert up == {"203.0.113.11:8080": 1, "203.0.113.12:8080": 1, "203.0.113.50:8080": 0}
    down, _quorum = weights_of(v, health(v, 0))
    assert down == {"203.0.113.11:8080": 0, "203.0.113.12:8080": 0, "203.0.113.50:8080": 1}


def test_quorum_lost_without_sorry_server_keeps_live_servers():
    v = vs(3, quorum=3)
    dests, q = weights_of(v, health(v, 0))
    assert not q.up and dests == {"203.0.113.12:8080": 1, "203.0.113.13:8080": 1}


def test_alpha_servers_start_down_until_health_says_up():
    v = vs(2, alpha=True)
    dests, q = weights_of(v, {})
    assert dests == {} and not q.up
    v2 = dataclasses.replace(v, real_servers=(dataclasses.replace(v.real_servers[0], checks=()), v.real_servers[1]))
    assert weights_of(v2, {})[0] == {"203.0.113.11:8080": 1}  # no checks: nothing to wait for


def test_without_alpha_servers_start_up():
    v = vs(2)
    assert weights_of(v, {})[0] == {"203.0.113.11:8080": 1, "203.0.113.12:8080": 1}


def test_fwmark_and_ipv6_services_are_keyed_like_the_kernel():
    mark = VirtualServer(fwmark=7, protocol="UDP", lb_algo="rr", real_servers=(RealServer("203.0.113.11"),))
    six = VirtualServer(address="2001:DB8:100::100", port=53, protocol="UDP", lb_algo="sh",
                        real_servers=(RealServer("2001:db8:203::11", 53),))
    state, _quorum = desired_state(LvsConfig(virtual_servers=(mark, six)), {})
    assert {str(k) for k in state} == {"FWM 7 IPv4", "UDP [2001:db8:100::100]:53"}
    assert state[service_key(mark)].dests == {DestKey("203.0.113.11", 0): state[service_key(mark)].dests[DestKey("203.0.113.11", 0)]}


def test_persistence_sets_flag_timeout_and_granularity():
    v = dataclasses.replace(vs(1), persistence_timeout_s=300, persistence_granularity="24")
    state, _quorum = desired_state(LvsConfig(virtual_servers=(v,)), {})
    service = state[service_key(v)].service
    assert (service.flags, service.timeout_s, service.netmask) == (1, 300, 24)


healths = st.one_of(st.none(), st.builds(RsHealth, st.booleans(), st.one_of(st.none(), st.integers(0, 5))))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=6), st.booleans(), st.booleans(), st.integers(0, 8),
       st.integers(0, 3), st.data())
def test_an_update_from_the_changed_servers_equals_the_full_computation(
        weights, inhibit, alpha, quorum, hysteresis, data):
    """Health flips, misc_dynamic weights, inhibit and alpha, across quorum changes with hysteresis: the
    incremental result is the full one, one change after another."""
    v = vs(len(weights), weights, inhibit_on_failure=inhibit, alpha=alpha, quorum=quorum, hysteresis=hysteresis)
    config = LvsConfig(virtual_servers=(v,))
    keys = [(v.name, real_server_name(rs)) for rs in v.real_servers]
    current = {k: h for k, h in zip(keys, data.draw(st.lists(healths, min_size=len(keys), max_size=len(keys))))
               if h is not None}
    state, quorum_states = desired_state(config, current)
    for _step in range(3):
        picked = data.draw(st.sets(st.integers(0, len(keys) - 1), max_size=len(keys)))
        for i in picked:
            current[keys[i]] = data.draw(st.builds(RsHealth, st.booleans(), st.one_of(st.none(), st.integers(0, 5))))
        changed = [(v, v.real_servers[i]) for i in sorted(picked)]
        full = desired_state(config, current, quorum_states)
        update = desired_update(config, state, quorum_states, {keys[i]: current[keys[i]] for i in picked}, changed)
        assert update == full
        state, quorum_states = update


def test_update_leaves_the_last_result_alone_and_gives_way_to_a_sorry_server():
    v = vs(3)
    config = LvsConfig(virtual_servers=(v,))
    state, quorum = desired_state(config, health(v))
    before = {k: dict(e.dests) for k, e in state.items()}
    new_state = desired_update(config, state, quorum, health(v, 1), [(v, v.real_servers[1])])[0]
    assert {k: dict(e.dests) for k, e in state.items()} == before
    assert len(new_state[service_key(v)].dests) == 2
    with_sorry = vs(3, sorry_server=SorryServer("203.0.113.50", 8080))
    config = LvsConfig(virtual_servers=(with_sorry,))
    state, quorum = desired_state(config, health(with_sorry))
    assert desired_update(config, state, quorum, health(with_sorry, 1), [(with_sorry, with_sorry.real_servers[1])]) is None
