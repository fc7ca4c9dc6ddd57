"""The status document is a contract (docs/status-schema.md): a real agent's `hanode status --json`, with VRRP
instances and a virtual server, every part of the document filled in (a sync group, IPv4 and IPv6, tracked
interface and script, a peer, foreign VRIDs, alert mail, the notify FIFO, a reload, real servers up and down, a
sorry server), has exactly the documented fields with the
documented types; and `hanode status` (text) shows the same states."""

from __future__ import annotations

import copy
import re
import subprocess

import pytest

from hanode.lab.procs import hanode_argv, python_env, wait_for
from helpers_checker import GATEWAY, real_server, virtual_server
from helpers_ops import FifoReader, load_status_schema, mail_settings, new_lab, status_schema_problems
from helpers_vrrp import VIP6, agent_config, instance, status, wait_state

pytestmark = pytest.mark.netns

FAST = {"version": 3, "advert_int": 0.3}


def _text_rows(text: str) -> dict[str, dict[str, str]]:
    """The instance table of `hanode status`: {instance: {column: cell}}."""
    lines = text.splitlines()
    header_at = next(i for i, line in enumerate(lines) if line.startswith("INSTANCE "))
    columns = lines[header_at].split()
    rows = {}
    for line in lines[header_at + 1:]:
        if not line.strip() or line.startswith("sync group"):
            break
        cells = re.split(r"\s{2,}", line.strip(), maxsplit=len(columns) - 1)
        rows[cells[0]] = dict(zip(columns, cells))
    return rows


def test_status_json_matches_the_documented_schema_and_the_text_view(lab_factory):
    schema = load_status_schema()
    lab = new_lab(lab_factory, nodes=2, clients=1, real_servers=2, real_server_gateway=GATEWAY)
    n1, n2 = lab.nodes
    (c1,) = lab.clients
    r1, r2 = lab.real_servers
    lab.start_http_server(r1, port=8080)  # r2 serves nothing: down
    fifo = FifoReader(n1.dir / "events.fifo")
    try:
        instances = {"VI_1": instance(51, 150, track_interfaces=["eth0"], track_scripts=["chk"], **FAST),
                     "VI_6": instance(61, 150, vips=(VIP6,), **FAST),
                     "VI_B": instance(70, 100, vips=("198.51.100.107",), **FAST)}
        config = agent_config("n1", instances, vrrp_sync_groups={"G1": {"group": ["VI_1", "VI_6"]}},
                              vrrp_scripts={"chk": {"script": "/bin/true", "interval": 1}},
                              notify_fifo=str(fifo.path), **mail_settings(c1, "n1"),  # no SMTP server: mail fails
                              lb_backend="nftables", virtual_servers=[virtual_server(
                                  [real_server(r1), real_server(r2)],
                                  sorry_server={"address": "203.0.113.50", "port": 8080})])
        a1 = lab.start_agent(n1, config, timeout=20)
        # n2: the master of VI_B (a peer in n1's status) and a VRID n1 does not know.
        a2 = lab.start_agent(n2, agent_config("n2", {"VI_B": instance(70, 200, vips=("198.51.100.107",), **FAST),
                                                     "VI_X": instance(90, 100, vips=("198.51.100.109",), **FAST)}))
        wait_state(a1, "MASTER", "VI_1", timeout=10)
        wait_state(a1, "MASTER", "VI_6")
        wait_state(a2, "MASTER", "VI_B", timeout=10)
        wait_state(a1, "BACKUP", "VI_B")
        wait_for(lambda: (s := status(a1))["vrrp"]["foreign_vrids"] and s["agent"]["alerts"]["failed_attempts"]
                 and s["instances"]["VI_B"]["peers"] and s["instances"]["VI_1"]["trackers"]["scripts"][0]["ok"]
                 and [rs["health"] for rs in s["virtual_servers"][0]["real_servers"]] == ["up", "down"]
                 and s["lvs"]["last_reconcile"], 20,
                 what="foreign VRIDs, a failed mail, a peer, the script's first result, real servers checked")
        a1.reload()  # unchanged: last_reload filled in

        document = a1.status()  # through the real CLI: `hanode status --json`
        assert status_schema_problems(document, schema) == []
        # The parts that vary were really there (so their tables were checked).
        agent = document["agent"]
        assert document["schema_version"] == 1 and agent["pid"] == a1.pid and agent["router_id"] == "n1"
        assert agent["config"]["last_reload"] == {"ok": True, "at": agent["config"]["last_reload"]["at"],
                                                  "changed": False, "digest": agent["config"]["digest"]}
        assert agent["alerts"]["last_error"] and agent["events"]["fifo"]["path"] == str(fifo.path)
        assert sorted(agent["processes"]) == ["checker", "vrrp"]
        assert all(p["running"] and p["restarts"] == 0 for p in agent["processes"].values())
        (vs,) = document["virtual_servers"]
        assert (vs["name"], vs["backend"], vs["in_kernel"], vs["sorry_server"]) == \
            ("198.51.100.100:80/TCP", "nftables", True, "203.0.113.50:8080")
        up, down = vs["real_servers"]
        assert (up["health"], up["kernel_weight"], down["health"], down["kernel_weight"]) == ("up", 1, "down", None)
        assert down["failure_reason"] and down["last_check"]["ok"] is False and up["checks"][0]["last"]["ok"] is True
        assert document["lvs"]["backend"] == "nftables" and document["lvs"]["last_reconcile"]["ok"] is True
        vi1, vi6, vib = (document["instances"][n] for n in ("VI_1", "VI_6", "VI_B"))
        assert (vi1["family"], vi6["family"]) == ("ipv4", "ipv6") and vi1["sync_group"] == "G1"
        assert vi1["trackers"]["interfaces"] == [{"name": "eth0", "weight": 0, "weight_reverse": False, "up": True}]
        assert vib["peers"][n2.ipv4]["priority"] == 200 and vib["state"] == "BACKUP"
        assert document["sync_groups"] == {"G1": {"state": "MASTER", "members": ["VI_1", "VI_6"]}}
        assert [f["vrid"] for f in document["vrrp"]["foreign_vrids"]] == [90]
        assert agent["events"]["published"] == agent["events"]["fifo"]["written"]

        # The check fails on what it must catch (a field added, renamed, or of another type).
        for mutate, problem in [
            (lambda d: d["instances"]["VI_1"].__setitem__("new_field", 1), "VI_1.new_field: not documented"),
            (lambda d: d["instances"]["VI_1"].pop("effective_priority"), "VI_1.effective_priority: missing"),
            (lambda d: d["instances"]["VI_1"]["stats"].__setitem__("advert_rcvd", "7"), "advert_rcvd: '7' is not"),
            (lambda d: d["instances"]["VI_1"].__setitem__("state", "PRIMARY"), "VI_1.state: 'PRIMARY' is not"),
            (lambda d: d["agent"]["processes"]["vrrp"].__setitem__("pid", True), "vrrp.pid: True is not"),
            (lambda d: d["virtual_servers"][0]["real_servers"][1].__setitem__("health", "sick"),
             "virtual_servers[0].real_servers[1].health: 'sick' is not"),
            (lambda d: d["lvs"]["last_reconcile"].pop("ops"), "lvs.last_reconcile.ops: missing"),
        ]:
            broken = copy.deepcopy(document)
            mutate(broken)
            found = status_schema_problems(broken, schema)
            assert len(found) == 1 and problem in found[0], (problem, found)

        # `hanode status` (text) shows the same.
        text = subprocess.run(hanode_argv() + ["status", "--socket", str(a1.socket_path)], capture_output=True,
                              text=True, timeout=30, env=python_env(), check=True).stdout
        rows = _text_rows(text)
        current = a1.status()
        assert set(rows) == set(current["instances"])
        for name, entry in current["instances"].items():
            row = rows[name]
            assert row["STATE"] == entry["state"] and row["PRIO"] == str(entry["priority"])
            assert row["EFF"] == str(entry["effective_priority"]) and row["VRID"] == str(entry["virtual_router_id"])
            assert row["IF"] == entry["interface"] and row["MASTER"] == str(entry["master_address"])
            assert row["VIPS"] == ",".join(v.split("/")[0] + "/" + v.split("/")[1].split()[0] for v in entry["vips"])
        assert f"hanode {current['agent']['version']} on n1  pid {a1.pid}" in text
        assert "sync group G1: MASTER (VI_1, VI_6)" in text
        assert f"virtual server 198.51.100.100:80/TCP: {current['virtual_servers'][0]['summary']}" in text
        assert current["virtual_servers"][0]["summary"].startswith("1/2 real servers up, quorum up")
    finally:
        fifo.close()
