"""The stdlib YAML emitter: every document reads back (PyYAML, as the agent reads it) as what was dumped."""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.hanode.fleet.plugins.module_utils import _yaml

TRICKY_STRINGS = ["eth0", "eth0:vip", "198.51.100.100", "198.51.100.100/24 dev eth0 label eth0:vip", "2001:db8::1",
                  "2001:10", "10:20", "yes", "No", "on", "OFF", "true", "null", "~", "", " lead", "trail ", "a: b",
                  "a #b", "#c", "- x", "[x]", "{x}", "*ref", "&anchor", "!tag", "%dir", "@at", "`tick`", "'q'", '"dq"',
                  "multi\nline", "tab\there", "ünïcode", "1e3", "0x1F", "0o17", "1_000", ".5", "-.inf", ".nan", "=",
                  "<<", "/usr/local/bin/chk_web --flag", "killall -0 haproxy", "a:", "?", "1.0", "2026-11-21"]


@pytest.mark.parametrize("text", TRICKY_STRINGS)
def test_every_string_reads_back_as_the_same_string(text):
    assert yaml.safe_load(_yaml.dump({"k": text})) == {"k": text}


@pytest.mark.parametrize("value", [0, 1, -3, 255, 1.5, 0.1, 0.01, 1e-05, 123456.789, 3.0, True, False, None])
def test_scalars_keep_their_type(value):
    loaded = yaml.safe_load(_yaml.dump({"k": value}))["k"]
    assert loaded == value and type(loaded) is type(value)


def test_a_whole_agent_config_round_trips_and_keeps_key_order():
    config = {
        "router_id": "lb1", "control_socket": "/run/hanode/agent.sock", "vrrp_scripts": {},
        "vrrp_instances": {"VI_1": {"interface": "eth0", "virtual_router_id": 51, "priority": 150, "advert_int": 0.2,
                                    "virtual_ipaddresses": ["198.51.100.100/24 dev eth0", {"address": "2001:db8::100", "prefix": 64}],
                                    "authentication": {"auth_type": "PASS", "auth_pass": "s3cret!"},
                                    "track_scripts": [{"name": "chk", "weight": -20}], "unicast_peers": []}},
        "virtual_servers": [{"address": "198.51.100.100", "port": 80,
                             "real_servers": [{"address": "203.0.113.11", "port": 8080, "checks": [{"type": "TCP_CHECK"}]}]}],
    }
    text = _yaml.dump(config, header=["managed"])
    assert text.startswith("# managed\n")
    assert yaml.safe_load(text) == config
    assert [line.split(":")[0] for line in text.splitlines() if line and not line[0] in "# "] == list(config)


def test_the_same_config_always_gives_the_same_bytes():
    config = {"b": 1, "a": [1, {"x": "z"}], "c": {}}
    assert _yaml.dump(config) == _yaml.dump(dict(config))
    assert _yaml.dump(config) == "b: 1\na:\n  - 1\n  - x: z\nc: {}\n"


def test_a_non_mapping_is_refused():
    with pytest.raises(TypeError):
        _yaml.dump(["x"])
