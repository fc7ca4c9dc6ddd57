"""hanode.config: keepalived keywords in YAML, every problem with its field path; script and file security."""

from __future__ import annotations

import copy
import os
import shutil
import stat
from pathlib import Path

import pytest

from pure_helpers import VIP4, VIP6, config_raw, instance_raw
from hanode.config.load import load_config, parse_yaml
from hanode.config.model import Authentication, GarpSettings, Vip
from hanode.config.parse import parse_config
from hanode.config.problems import ConfigError
from hanode.config.security import check_config_security, resolve_command, script_problem, unsafe_writer

NOBODY = 65534


def parse(raw):
    return parse_config(copy.deepcopy(raw))


def errors(raw) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(raw)
    return str(info.value).splitlines()


def instance_errors(**overrides) -> list[str]:
    return errors(config_raw({"VI_1": instance_raw(**overrides)}))


def only(raw_instance=None, **kw):
    config, problems = parse(config_raw({"VI_1": raw_instance or instance_raw(**kw)}))
    return config.vrrp_instances["VI_1"], problems


# a good config ---------------------------------------------------------------------------------------

def test_a_full_instance_parses_into_the_model():
    raw = instance_raw(
        version=3, priority=150, advert_int=0.5, state="backup", preempt_delay=2.5,
        virtual_ipaddresses=[f"{VIP4}/24 dev eth0 label eth0:vip", {"address": "198.51.100.101", "prefix": 25}],
        virtual_ipaddress_excluded=["203.0.113.10/24 dev eth1"],
        unicast_src_ip="198.51.100.2", unicast_peers=["198.51.100.3", "198.51.100.4"],
        track_interfaces=["eth1", {"name": "eth2", "weight": -20}], track_scripts=["chk", {"name": "chk", "weight": 5}],
        notify_master="/usr/local/bin/to-master", notify="/usr/local/bin/notify",
        garp_master_delay=1, garp_master_refresh=60, v3_checksum_as_v2=True)
    config, problems = parse(config_raw({"VI_1": raw}, scripts={"chk": {"script": "killall -0 haproxy", "interval": 2,
                                                                        "weight": -10, "fall": 3, "rise": 2}}))
    vi = config.vrrp_instances["VI_1"]
    assert (vi.version, vi.priority, vi.advert_int_cs, vi.initial_state, vi.preempt_delay_ms) == (3, 150, 50, "BACKUP", 2500)
    assert vi.vips == (Vip(VIP4, 24, 4, dev="eth0", label="eth0:vip"), Vip("198.51.100.101", 25, 4))
    assert vi.excluded_vips == (Vip("203.0.113.10", 24, 4, dev="eth1"),)
    assert vi.unicast and vi.unicast_peers == ("198.51.100.3", "198.51.100.4")
    assert [(t.name, t.weight) for t in vi.track_interfaces] == [("eth1", 0), ("eth2", -20)]
    assert [(t.name, t.weight) for t in vi.track_scripts] == [("chk", None), ("chk", 5)]
    assert vi.notify.master == "/usr/local/bin/to-master" and vi.notify.generic == "/usr/local/bin/notify"
    assert vi.garp == GarpSettings(master_delay_ms=1000, master_refresh_ms=60_000)
    chk = config.vrrp_scripts["chk"]
    assert (chk.interval_ms, chk.timeout_ms, chk.weight, chk.rise, chk.fall) == (2000, 2000, -10, 2, 3)
    assert problems.errors == []


def test_defaults_follow_keepalived():
    vi, _problems = only(instance_raw())
    assert (vi.version, vi.priority, vi.advert_int_cs, vi.initial_state, vi.nopreempt) == (2, 100, 100, "BACKUP", False)
    assert vi.family == 4 and vi.authentication is None
    assert vi.garp == GarpSettings(master_delay_ms=5000, master_repeat=5, master_refresh_ms=0)


def test_a_script_given_as_a_string():
    config, _problems = parse(config_raw({"VI_1": instance_raw(track_scripts=["chk"])}, scripts={"chk": "/bin/true"}))
    assert config.vrrp_scripts["chk"].script == "/bin/true"
    assert config.vrrp_scripts["chk"].interval_ms == 1000


# every error names its field path ---------------------------------------------------------------------

@pytest.mark.parametrize("overrides, line", [
    ({"priority": 300}, "vrrp_instances.VI_1.priority: must be 1..255, got 300"),
    ({"priority": 0}, "vrrp_instances.VI_1.priority: must be 1..255, got 0"),
    ({"priority": "high"}, "vrrp_instances.VI_1.priority: must be an integer, got 'high'"),
    ({"virtual_router_id": 256}, "vrrp_instances.VI_1.virtual_router_id: must be 1..255, got 256"),
    ({"virtual_router_id": None}, "vrrp_instances.VI_1.virtual_router_id: is required"),
    ({"interface": None}, "vrrp_instances.VI_1.interface: is required"),
    ({"version": 4}, "vrrp_instances.VI_1.version: must be 2..3, got 4"),
    ({"state": "LEADER"}, "vrrp_instances.VI_1.state: must be one of MASTER, BACKUP, got 'LEADER'"),
    ({"nopreempt": "yes"}, "vrrp_instances.VI_1.nopreempt: must be true or false, got 'yes'"),
    ({"advert_int": 0}, "vrrp_instances.VI_1.advert_int: must be 0.01..255, got 0"),
    ({"advert_int": 1.5}, "vrrp_instances.VI_1.advert_int: must be whole seconds with version 2, got 1.5 "
                          "(fractional needs version: 3)"),
    ({"version": 3, "advert_int": 41}, "vrrp_instances.VI_1.advert_int: must be 0.01..40.95, got 41"),
    ({"version": 3, "advert_int": 0.015}, "vrrp_instances.VI_1.advert_int: must be a multiple of 0.01 s, got 0.015"),
    ({"preempt_delay": 1001}, "vrrp_instances.VI_1.preempt_delay: must be 0..1000, got 1001"),
    ({"prority": 100}, "vrrp_instances.VI_1.prority: unknown key (did you mean 'priority'?)"),
    ({"virtual_ipaddress": [VIP4]}, "vrrp_instances.VI_1.virtual_ipaddress: unknown key "
                                    "(did you mean 'virtual_ipaddresses'?)"),
    ({"use_vmac": "bad/name"}, "vrrp_instances.VI_1.use_vmac: 'bad/name' is not a valid interface name"),
    ({"virtual_ipaddresses": [f"{VIP6}/64"]}, "vrrp_instances.VI_1.version: IPv6 needs VRRP version 3"),
    ({"virtual_ipaddresses": [f"{VIP4}/24", f"{VIP6}/64"], "version": 3},
     "vrrp_instances.VI_1.virtual_ipaddresses: mixes IPv4 and IPv6 addresses"),
    ({"authentication": {"auth_type": "AH", "auth_pass": "x"}, "version": 3,
      "virtual_ipaddresses": [f"{VIP6}/64"]},
     "vrrp_instances.VI_1.authentication.auth_type: AH authenticates VRRPv2 over IPv4 only"),
    ({"authentication": {"auth_pass": "secret"}, "version": 3},
     "vrrp_instances.VI_1.authentication: VRRP version 3 has no authentication (RFC 5798)"),
    ({"authentication": {"auth_type": "PASS"}}, "vrrp_instances.VI_1.authentication.auth_pass: is required"),
    ({"authentication": {"auth_pass": "x", "auth_typ": "PASS"}},
     "vrrp_instances.VI_1.authentication.auth_typ: unknown key (did you mean 'auth_type'?)"),
    ({"unicast_src_ip": "198.51.100.2", "unicast_peers": ["198.51.100.3", "198.51.100.2"]},
     "vrrp_instances.VI_1.unicast_peers: contains this node's own unicast_src_ip 198.51.100.2"),
    ({"unicast_peers": ["198.51.100.3", "198.51.100.3"]}, "vrrp_instances.VI_1.unicast_peers: lists a peer twice"),
    ({"unicast_peers": ["198.51.100.300"]}, "vrrp_instances.VI_1.unicast_peers[0]: '198.51.100.300' is not an IP address"),
    ({"unicast_peers": ["2001:db8::3"]}, "vrrp_instances.VI_1.unicast_peers[0]: 2001:db8::3 is IPv6 but the instance is IPv4"),
    ({"nopreempt": True, "state": "MASTER"}, "vrrp_instances.VI_1.nopreempt: does not work with state MASTER"),
    ({"nopreempt": True, "priority": 255}, "vrrp_instances.VI_1.nopreempt: priority 255 is the address owner"),
    ({"track_scripts": ["chk_missing"]},
     "vrrp_instances.VI_1.track_scripts[0].name: no vrrp_script named 'chk_missing' (known: none)"),
    ({"track_interfaces": [{"name": "eth1", "weight": 254}]},
     "vrrp_instances.VI_1.track_interfaces[0].weight: must be -253..253, got 254"),
    ({"virtual_ipaddresses": [VIP4, VIP4]}, "vrrp_instances.VI_1.virtual_ipaddresses: lists an address twice"),
    ({"garp_master_repeat": 0}, "vrrp_instances.VI_1.garp_master_repeat: must be 1..255, got 0"),
])
def test_instance_errors_name_their_field(overrides, line):
    lines = instance_errors(**overrides)
    assert any(l.startswith(line) for l in lines), lines


@pytest.mark.parametrize("vip, line", [
    ("198.51.100.300/24", "'198.51.100.300/24' is not an IP address with an optional /prefix"),
    (f"{VIP4}/24 device eth0", "unknown word 'device'"),
    (f"{VIP4}/24 dev", "'dev' needs a value"),
    (f"{VIP4}/24 label vip1", "label 'vip1' must start with the interface name 'eth0' (e.g. eth0:vip)"),
    (f"{VIP4}/24 dev eth1 label eth0:vip", "label 'eth0:vip' must start with the interface name 'eth1'"),
    (f"{VIP4}/24 label eth0:a-very-long-label", "label 'eth0:a-very-long-label' is longer than 15 characters"),
    (f"{VIP4}/24 scope universe", "scope must be one of global, site, link, host, nowhere, got 'universe'"),
    (f"{VIP4}/24 dev this-name-is-too-long", "dev 'this-name-is-too-long' is not a valid interface name"),
    (f"{VIP4}/24 brd 198.51.100.999", "brd '198.51.100.999' is not an IPv4 address"),
    ({"address": VIP4, "prefix": 33, "dev": "eth0"}, None),
    ({"adress": VIP4}, None),
    (42, "must be a string like '198.51.100.100/24 dev eth0' or a mapping, got 42"),
])
def test_vip_errors_name_the_item(vip, line):
    lines = instance_errors(virtual_ipaddresses=[f"{VIP4}/24", vip])
    item = "vrrp_instances.VI_1.virtual_ipaddresses[1]"
    assert any(l.startswith(item) for l in lines), lines
    if line:
        assert any(l.startswith(f"{item}: {line}") for l in lines), lines


def test_vip_mapping_errors_name_the_key():
    lines = instance_errors(virtual_ipaddresses=[{"address": VIP4, "prefix": 33, "adress": "x"}])
    assert ("vrrp_instances.VI_1.virtual_ipaddresses[0]: '198.51.100.100/33' is not an IP address with an optional "
            "/prefix") in lines
    assert any(l.startswith("vrrp_instances.VI_1.virtual_ipaddresses[0].adress: unknown key (did you mean 'address'?)")
               for l in lines), lines


def test_ipv6_vip_cannot_have_a_label_or_brd():
    lines = instance_errors(version=3, virtual_ipaddresses=[f"{VIP6}/64 label eth0:v6", f"{VIP6}1/64 brd ::"])
    assert "vrrp_instances.VI_1.virtual_ipaddresses[0]: label applies to IPv4 addresses only" in lines
    assert "vrrp_instances.VI_1.virtual_ipaddresses[1]: brd applies to IPv4 addresses only" in lines


@pytest.mark.parametrize("text, expected", [
    (VIP4, Vip(VIP4, 32, 4)),
    (f"{VIP4}/24", Vip(VIP4, 24, 4)),
    (f"{VIP4}/24 dev eth1 label eth1:vip scope global brd 198.51.100.255",
     Vip(VIP4, 24, 4, dev="eth1", label="eth1:vip", scope="global", broadcast="198.51.100.255")),
    (f"{VIP4}/24 broadcast 198.51.100.255", Vip(VIP4, 24, 4, broadcast="198.51.100.255")),
    (f"{VIP4}/24 label eth0:1", Vip(VIP4, 24, 4, label="eth0:1")),
    ({"address": VIP4}, Vip(VIP4, 32, 4)),
    ({"address": f"{VIP4}/25"}, Vip(VIP4, 25, 4)),
    ({"address": VIP4, "prefix": 24, "dev": "eth1", "label": "eth1:x", "scope": "link", "broadcast": "198.51.100.255"},
     Vip(VIP4, 24, 4, dev="eth1", label="eth1:x", scope="link", broadcast="198.51.100.255")),
    ({"address": VIP4, "prefix": 24, "brd": "198.51.100.255"}, Vip(VIP4, 24, 4, broadcast="198.51.100.255")),
])
def test_vip_string_and_mapping_forms(text, expected):
    vi, _problems = only(instance_raw(virtual_ipaddresses=[text]))
    assert vi.vips == (expected,)


def test_vip_text_round_trips_keepalived_form():
    vip = Vip(VIP4, 24, 4, dev="eth1", label="eth1:vip", scope="global", broadcast="198.51.100.255")
    assert vip.text() == f"{VIP4}/24 dev eth1 label eth1:vip scope global brd 198.51.100.255"


def test_ipv6_instance():
    vi, _problems = only(instance_raw(version=3, virtual_ipaddresses=[VIP6, "2001:db8:100::101/64"]))
    assert vi.family == 6
    assert vi.vips == (Vip(VIP6, 128, 6), Vip("2001:db8:100::101", 64, 6))


def test_same_vrid_allowed_on_other_interfaces_and_families_only():
    raw = config_raw({
        "VI_1": instance_raw(),
        "VI_2": instance_raw(interface="eth1"),
        "VI_3": instance_raw(version=3, virtual_ipaddresses=[f"{VIP6}/64"]),
    })
    assert set(parse(raw)[0].vrrp_instances) == {"VI_1", "VI_2", "VI_3"}
    raw["vrrp_instances"]["VI_4"] = instance_raw(virtual_ipaddresses=["198.51.100.110/24"])
    assert errors(raw) == ["vrrp_instances.VI_4.virtual_router_id: 51 is already used by VI_1 on eth0 (IPv4)"]


def test_script_errors_name_their_field():
    raw = config_raw({"VI_1": instance_raw(track_scripts=["chk"])},
                     scripts={"chk": {"script": "/bin/true", "interval": 0, "rise": 0, "wieght": 2},
                              "chk2": {"interval": 1}})
    lines = errors(raw)
    assert "vrrp_scripts.chk.interval: must be 0.01..86400, got 0" in lines
    assert "vrrp_scripts.chk.rise: must be 1..1000, got 0" in lines
    assert "vrrp_scripts.chk.wieght: unknown key (did you mean 'weight'?)" in lines
    assert "vrrp_scripts.chk2.script: is required" in lines


@pytest.mark.parametrize("groups, line", [
    ({"G": {"group": ["VI_1", "VI_9"]}}, "vrrp_sync_groups.G.group[1]: no vrrp_instance named 'VI_9'"),
    ({"G": {"group": ["VI_1"]}, "H": {"group": ["VI_1"]}},
     "vrrp_sync_groups.H.group[0]: VI_1 is already in sync group G: an instance belongs to one group"),
    ({"G": {"group": []}}, "vrrp_sync_groups.G.group: is empty"),
    ({"G": {"members": ["VI_1"]}}, "vrrp_sync_groups.G.members: unknown key"),
])
def test_sync_group_errors(groups, line):
    lines = errors(config_raw(groups=groups))
    assert any(l.startswith(line) for l in lines), lines


def test_sync_group_parses():
    config, _problems = parse(config_raw({"VI_1": instance_raw(), "VI_2": instance_raw(virtual_router_id=52)},
                                         groups={"G": {"group": ["VI_1", "VI_2"], "notify_master": "/bin/true"}}))
    assert config.vrrp_sync_groups["G"].group == ("VI_1", "VI_2")
    assert config.sync_group_of("VI_2").name == "G" and config.sync_group_of("VI_3") is None


@pytest.mark.parametrize("raw, line", [
    ({"router_id": "r", "vrrp_instance": {}}, "vrrp_instance: unknown key (did you mean 'vrrp_instances'?)"),
    ({"control_socket": "run/agent.sock"}, "control_socket: must be an absolute path, got 'run/agent.sock'"),
    ({"vrrp_instances": ["VI_1"]}, "vrrp_instances: must be a mapping, got a list"),
    ({"vrrp_instances": {"VI_1": "eth0"}}, "vrrp_instances.VI_1: must be a mapping, got a string"),
    ({"enable_script_security": "no"}, "enable_script_security: must be true or false, got 'no'"),
])
def test_top_level_errors(raw, line):
    assert line in errors(raw)


def test_top_level_must_be_a_mapping():
    assert errors(["a", "b"]) == ["(top level): must be a mapping, got a list"]


def test_config_error_lists_every_problem_at_once():
    raw = config_raw({"VI_1": instance_raw(priority=300, advert_int=1.5, prority=1),
                      "VI_2": instance_raw(virtual_router_id=0, interface=None)},
                     groups={"G": {"group": ["VI_9"]}}, routerid="x")
    with pytest.raises(ConfigError) as info:
        parse(raw)
    lines = str(info.value).splitlines()
    assert len(lines) == len(info.value.problems) == 7, lines
    assert [p.path for p in info.value.problems] == [
        "vrrp_instances.VI_1.priority", "vrrp_instances.VI_1.advert_int", "vrrp_instances.VI_1.prority",
        "vrrp_instances.VI_2.interface", "vrrp_instances.VI_2.virtual_router_id", "vrrp_sync_groups.G.group[0]",
        "routerid"]


def test_warnings_do_not_fail():
    raw = config_raw({"VI_1": instance_raw(virtual_ipaddresses=None, authentication={"auth_pass": "longer-than-8"})})
    config, problems = parse(raw)
    assert config.vrrp_instances["VI_1"].authentication == Authentication("PASS", "longer-than-8")
    assert [str(w) for w in problems.warnings] == [
        "warning: vrrp_instances.VI_1.authentication.auth_pass: longer than 8 bytes: only the first 8 are used, "
        "as keepalived does",
        "warning: vrrp_instances.VI_1.virtual_ipaddresses: is empty: this instance elects a master but moves no address"]
    assert problems.errors == []


def test_warnings_are_not_listed_in_a_config_error():
    raw = config_raw({"VI_1": instance_raw(virtual_ipaddresses=None, priority=0)})
    assert errors(raw) == ["vrrp_instances.VI_1.priority: must be 1..255, got 0"]


# YAML -----------------------------------------------------------------------------------------------

def test_yaml_syntax_error_has_a_line_number():
    with pytest.raises(ConfigError) as info:
        parse_yaml("vrrp_instances:\n  VI_1:\n    priority: [100\n    state: BACKUP\n", "hanode.yml")
    (problem,) = info.value.problems
    assert problem.path.startswith("hanode.yml line 4 column")


def test_yaml_tab_indentation_is_reported_with_its_line():
    with pytest.raises(ConfigError) as info:
        parse_yaml("router_id: a\nvrrp_instances:\n\tVI_1: {}\n", "hanode.yml")
    assert str(info.value).startswith("hanode.yml line 3 column 1: ")


def test_yaml_duplicate_key_names_both_lines():
    text = "router_id: a\nvrrp_instances:\n  VI_1:\n    priority: 100\n    interface: eth0\n    priority: 150\n"
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "hanode.yml")
    assert str(info.value) == "hanode.yml line 6 column 5: key 'priority' appears twice (first on line 4)"


def test_yaml_duplicate_instance_is_refused():
    text = "vrrp_instances:\n  VI_1: {}\n  VI_1: {}\n"
    with pytest.raises(ConfigError, match="line 3 .*'VI_1' appears twice"):
        parse_yaml(text, "hanode.yml")


def test_yaml_unhashable_key_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        parse_yaml("router_id: a\n? [a, b]\n: 1\n", "hanode.yml")
    assert str(info.value) == "hanode.yml line 2 column 3: a key must be a plain value, not a list"


def test_yaml_is_safe():
    with pytest.raises(ConfigError):
        parse_yaml("a: !!python/object/apply:os.system ['true']\n", "hanode.yml")


def test_load_config_reads_parses_and_digests(tmp_path):
    path = tmp_path / "hanode.yml"
    path.write_text("router_id: lab1\nvrrp_instances:\n  VI_1:\n    interface: eth0\n    virtual_router_id: 51\n"
                    f"    virtual_ipaddresses: [{VIP4}/24]\n")
    loaded = load_config(str(path), check_files=False)
    assert loaded.config.router_id == "lab1"
    assert loaded.config.vrrp_instances["VI_1"].vips == (Vip(VIP4, 24, 4),)
    assert len(loaded.digest) == 64


def test_load_config_reports_file_and_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path / "missing.yml"))
    bad = tmp_path / "bad.yml"
    bad.write_text("vrrp_instances:\n  VI_1:\n    priority: 300\n    interface: eth0\n    virtual_router_id: 51\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(bad), check_files=False)
    assert str(info.value) == "vrrp_instances.VI_1.priority: must be 1..255, got 300"


# security: real files in tmp_path (tests run as root, as the agent does) ----------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")


def make_script(directory: Path, name: str = "check.sh", mode: int = 0o755) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / name
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(mode)
    return script


@pytest.fixture
def safe_dir(tmp_path):
    directory = tmp_path / "scripts"
    directory.mkdir()
    directory.chmod(0o755)
    return directory


@needs_root
def test_root_owned_script_in_a_root_only_directory_is_safe(safe_dir):
    assert script_problem(str(make_script(safe_dir))) is None
    assert unsafe_writer(str(safe_dir)) is None


@needs_root
def test_script_owned_by_another_user_is_refused(safe_dir):
    script = make_script(safe_dir)
    os.chown(script, NOBODY, NOBODY)
    assert script_problem(str(script)) == (f"insecure script: {script} is owned by uid {NOBODY} and writable by it "
                                           "(enable_script_security refuses scripts non-root users can change)")


@needs_root
def test_script_owned_by_another_user_is_refused_even_read_only(safe_dir):
    script = make_script(safe_dir, mode=0o555)
    os.chown(script, NOBODY, NOBODY)          # the owner can chmod it back at any time
    assert "insecure script" in (script_problem(str(script)) or "")


@needs_root
def test_group_writable_script_is_refused_unless_the_group_is_root(safe_dir):
    script = make_script(safe_dir, mode=0o775)
    assert script_problem(str(script)) is None           # group root
    os.chown(script, 0, NOBODY)
    assert f"{script} is writable by group {NOBODY}" in script_problem(str(script))


@needs_root
@pytest.mark.parametrize("mode, writer", [(0o777, "is writable by everyone"), (0o775, f"is writable by group {NOBODY}")])
def test_script_in_a_group_or_world_writable_directory_is_refused(tmp_path, mode, writer):
    directory = tmp_path / "open"
    script = make_script(directory)
    if mode == 0o775:
        os.chown(directory, 0, NOBODY)
    directory.chmod(mode)
    assert f"{directory} {writer}" in script_problem(str(script))


@needs_root
def test_script_in_a_directory_owned_by_another_user_is_refused(tmp_path):
    directory = tmp_path / "theirs"
    script = make_script(directory)
    os.chown(directory, NOBODY, NOBODY)
    directory.chmod(0o755)
    assert f"{directory} is owned by uid {NOBODY}" in script_problem(str(script))


@needs_root
def test_sticky_world_writable_directory_is_allowed(tmp_path):
    directory = tmp_path / "sticky"
    script = make_script(directory)
    directory.chmod(0o777 | stat.S_ISVTX)
    assert script_problem(str(script)) is None


def test_commands_resolve_through_path_like_keepalived():
    killall = shutil.which("killall", path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    assert killall is not None, "psmisc (killall) is part of the test toolchain"
    assert resolve_command("killall -0 haproxy") == killall
    assert script_problem("killall -0 haproxy") is None
    assert resolve_command("'/usr/local/bin/my check' --fast") == "/usr/local/bin/my check"


def test_missing_or_unexecutable_programs_are_refused(safe_dir):
    assert script_problem("no-such-program-hanode --x") == "cannot find the program of 'no-such-program-hanode --x'"
    assert script_problem(f"{safe_dir}/missing.sh") == f"{safe_dir}/missing.sh does not exist or is not a file"
    plain = make_script(safe_dir, "plain.sh", mode=0o644)
    assert script_problem(str(plain)) == f"{plain} is not executable"
    assert script_problem("'unclosed") == "cannot find the program of \"'unclosed\""


def write_config(path: Path, script: str, **top) -> Path:
    top.setdefault("script_user", "root")   # scripts run as root only when the config says so
    lines = [f"{k}: {v}" for k, v in top.items()]
    lines += ["vrrp_scripts:", f"  chk: {script!r}", "vrrp_instances:", "  VI_1:", "    interface: eth0",
              "    virtual_router_id: 51", f"    virtual_ipaddresses: [{VIP4}/24]", "    track_scripts: [chk]",
              f"    notify_master: {script!r}"]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


@needs_root
def test_config_file_writable_by_another_user_is_refused(safe_dir):
    path = write_config(safe_dir / "hanode.yml", str(make_script(safe_dir)))
    assert load_config(str(path)).config.vrrp_instances["VI_1"]
    os.chown(path, NOBODY, NOBODY)
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert str(info.value) == f"{path}: insecure config file: {path} is owned by uid {NOBODY} and writable by it"


@needs_root
def test_insecure_scripts_refuse_the_config_naming_every_use(safe_dir):
    script = make_script(safe_dir)
    os.chown(script, NOBODY, NOBODY)
    path = write_config(safe_dir / "hanode.yml", str(script))
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    refused = [p.path for p in info.value.problems if not p.warning]
    assert refused == ["vrrp_scripts.chk.script", "vrrp_instances.VI_1.notify_master"]


@needs_root
def test_without_script_security_an_insecure_script_is_a_warning(safe_dir):
    script = make_script(safe_dir)
    os.chown(script, NOBODY, NOBODY)
    path = write_config(safe_dir / "hanode.yml", str(script), enable_script_security="false")
    loaded = load_config(str(path))
    assert [p.path for p in loaded.problems.warnings] == ["vrrp_scripts.chk.script", "vrrp_instances.VI_1.notify_master",
                                                          "script_user"]


def test_a_missing_script_is_an_error_even_without_script_security(safe_dir):
    path = write_config(safe_dir / "hanode.yml", f"{safe_dir}/gone.sh", enable_script_security="false")
    with pytest.raises(ConfigError, match="vrrp_scripts.chk.script: .*gone.sh does not exist"):
        load_config(str(path))


def test_unknown_script_user_is_refused(safe_dir):
    config, _problems = parse_config({"script_user": "no-such-user-hanode", "vrrp_instances": {}})
    problems = check_config_security(str(write_config(safe_dir / "x.yml", "/bin/true")), config)
    assert [str(p) for p in problems] == ["script_user: user 'no-such-user-hanode' does not exist"]
