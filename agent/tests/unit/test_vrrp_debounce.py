"""interface_up_down_delays: hanode.vrrp.debounce shows a link change once it has lasted its delay, never one that
went back before; the config key's forms and errors."""

from __future__ import annotations

import copy

import pytest

from hanode.config.parse import parse_config
from hanode.config.problems import ConfigError
from hanode.vrrp.debounce import LinkDebounce

MS = 1000


def test_a_bounce_shorter_than_the_delay_is_never_shown():
    d = LinkDebounce({"eth1": (500 * MS, 1000 * MS)})
    assert d.apply({"eth1": True}, 0) == {"eth1": True}               # first sight: as it is
    assert d.apply({"eth1": False}, 10 * MS) == {"eth1": True}
    assert d.next_deadline_us() == 510 * MS
    assert d.apply({"eth1": True}, 300 * MS) == {"eth1": True}
    assert d.next_deadline_us() is None


def test_down_after_the_down_delay_and_up_after_the_up_delay():
    d = LinkDebounce({"eth1": (500 * MS, 1000 * MS)})
    d.apply({"eth1": True}, 0)
    d.apply({"eth1": False}, 0)
    assert d.apply({"eth1": False}, 499 * MS) == {"eth1": True}
    assert d.apply({"eth1": False}, 500 * MS) == {"eth1": False}
    d.apply({"eth1": True}, 600 * MS)
    assert d.apply({"eth1": True}, 1599 * MS) == {"eth1": False}
    assert d.apply({"eth1": True}, 1600 * MS) == {"eth1": True}


def test_interfaces_without_delays_and_gone_ones_are_shown_as_they_are():
    d = LinkDebounce({"eth1": (0, 0)})
    d.apply({"eth0": True, "eth1": True}, 0)
    assert d.apply({"eth0": False, "eth1": False}, 1) == {"eth0": False, "eth1": False}
    assert d.apply({"eth0": False}, 2) == {"eth0": False}


def parse(raw):
    return parse_config(copy.deepcopy({"router_id": "a", **raw}))[0]


def test_config_forms():
    delays = parse({"interface_up_down_delays": {"eth1": 0.5, "eth2": [1, 2.000001]}}).sections[
        "interface_up_down_delays"]
    assert delays == {"eth1": (500_000, 500_000), "eth2": (1_000_000, 2_000_001)}


@pytest.mark.parametrize("value", [256, [1, 2, 3], "fast", [-1], True])
def test_bad_delays_are_refused(value):
    with pytest.raises(ConfigError) as err:
        parse({"interface_up_down_delays": {"eth1": value}})
    assert [p.path for p in err.value.problems] == ["interface_up_down_delays.eth1"]
