"""hanode import-keepalived: output, report lines on stderr, exit status 0 / 3 / 1."""

from __future__ import annotations

import os

import yaml

from hanode.cli.main import main
from hanode.config.load import load_config

COMPLETE = """global_defs {
  router_id lb-1
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 150
  notify_master /bin/true
  virtual_ipaddress {
    198.51.100.100/24 dev eth0 label eth0:vip
  }
}
"""
INCOMPLETE = COMPLETE.replace("  priority 150\n", "  priority 150\n  track_src_ip\n  old_unicast_checksum\n")


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def run(capsys, *argv):
    code = main(["import-keepalived", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_complete_translation_exits_0_and_check_config_accepts_it(tmp_path, capsys):
    # script_user root: the notify script then runs as root in both (hanode refuses root unless told to)
    src = write(tmp_path, "keepalived.conf", COMPLETE.replace("router_id lb-1\n", "router_id lb-1\n  script_user root\n"))
    out_path = str(tmp_path / "agent.yaml")
    code, out, err = run(capsys, src, "--output", out_path)
    assert code == 0 and out == ""
    assert err.strip() == f"{src}: translation complete; written to {out_path}"
    assert oct(os.stat(out_path).st_mode & 0o777) == "0o644"
    loaded = load_config(out_path)                # what `hanode check-config` runs, file security included
    assert loaded.config.router_id == "lb-1"
    assert loaded.config.vrrp_instances["VI_1"].vips[0].text() == "198.51.100.100/24 dev eth0 label eth0:vip"
    assert main(["check-config", "--quiet", out_path]) == 0


def test_incomplete_translation_exits_3_lists_every_keyword_and_still_writes(tmp_path, capsys):
    src = write(tmp_path, "keepalived.conf", INCOMPLETE)
    code, out, err = run(capsys, src)
    assert code == 3
    # (this host has no keepalived_script user: a warning says check-config would refuse to run notify as root)
    lines = [line for line in err.splitlines() if not line.startswith("warning: on this host")]
    assert lines[0] == f"{src}:9: track_src_ip: unsupported: hanode has no such option"
    assert lines[1] == f"{src}:10: old_unicast_checksum: unsupported: hanode speaks only the current unicast checksum"
    assert lines[2] == f"{src}: 2 keyword(s) not carried over (listed above); the rest is in stdout"
    assert out.startswith("# hanode agent config imported from")
    assert "# 2 keepalived keyword(s) were not carried over" in out
    config = yaml.safe_load(out)
    assert config["vrrp_instances"]["VI_1"]["priority"] == 150
    assert "track_src_ip" not in out.split("---", 1)[1]


def test_role_vars(tmp_path, capsys):
    src = write(tmp_path, "keepalived.conf", COMPLETE)
    code, out, _err = run(capsys, src, "--role-vars")
    assert code == 0
    data = yaml.safe_load(out)
    assert list(data) == ["ha_node_config", "ha_node_router_id"]
    assert data["ha_node_router_id"] == "lb-1"
    assert data["ha_node_config"]["vrrp_instances"]["VI_1"]["virtual_router_id"] == 51


def test_parse_error_exits_1_names_file_and_line_and_writes_nothing(tmp_path, capsys):
    src = write(tmp_path, "keepalived.conf", COMPLETE + "}\n")
    out_path = tmp_path / "agent.yaml"
    code, out, err = run(capsys, src, "-o", str(out_path))
    assert code == 1 and out == ""
    assert err.strip() == f"{src}:14: error: '}}' without a matching '{{'"
    assert not out_path.exists()


def test_unreadable_file_exits_1(tmp_path, capsys):
    code, _out, err = run(capsys, str(tmp_path / "missing.conf"))
    assert code == 1 and "cannot read: No such file or directory" in err


def test_includes_are_followed_and_reported_by_their_own_file(tmp_path, capsys):
    (tmp_path / "conf.d").mkdir()
    write(tmp_path, "conf.d/vi1.conf", COMPLETE.replace("global_defs {\n  router_id lb-1\n}\n", "")
          .replace("  priority 150\n", "  priority 150\n  track_src_ip\n"))
    src = write(tmp_path, "keepalived.conf", "global_defs {\n  router_id lb-1\n}\ninclude conf.d/*.conf\n")
    code, out, err = run(capsys, src)
    assert code == 3
    assert err.splitlines()[0].startswith(f"{tmp_path}/conf.d/vi1.conf:6: track_src_ip: unsupported: ")
    assert yaml.safe_load(out)["vrrp_instances"]["VI_1"]["virtual_router_id"] == 51


def test_scripts_this_host_would_refuse_are_warned_about(tmp_path, capsys):
    src = write(tmp_path, "keepalived.conf", COMPLETE.replace("/bin/true", "/nonexistent/notify.sh"))
    code, _out, err = run(capsys, src)
    assert code == 0
    assert ("warning: on this host, hanode check-config would refuse vrrp_instances.VI_1.notify_master: "
            "/nonexistent/notify.sh does not exist or is not a file") in err


def test_config_id_selects_conditional_lines(tmp_path, capsys):
    src = write(tmp_path, "keepalived.conf", COMPLETE.replace("  priority 150\n", "@n1 priority 150\n@n2 priority 100\n"))
    for node, priority in (("n1", 150), ("n2", 100)):
        code, out, err = run(capsys, src, "--config-id", node)
        assert code == 0
        assert yaml.safe_load(out)["vrrp_instances"]["VI_1"]["priority"] == priority
        assert "line skipped" in err
