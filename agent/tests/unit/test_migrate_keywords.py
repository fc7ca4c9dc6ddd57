"""The importer's keyword tables: the report's reasons come from them, `hanode import-keepalived --keywords` prints
them, and docs/keepalived-keywords.md is generated from them (and current)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hanode.cli.main import main
from hanode.migrate import keepalived
from hanode.migrate.keepalived import (checker_files, garp_group, global_defs, lexer, real_server, report, top, track_objects,
                                       trackers, virtual_server, vrrp)
from hanode.migrate.keepalived.table import CARRIED, Table

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "keepalived-keywords.md"

INSTANCE = "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n%s\n}\n"
SERVICE = "virtual_server 10.0.0.1 80 {\n%s\n  real_server 10.0.0.2 80 {\n  }\n}\n"
REAL = "virtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2 80 {\n%s\n  }\n}\n"
# where each table's keywords stand in a keepalived.conf, %s the keyword's line
PLACES = {
    top.TOP: "%s\n",
    global_defs.GLOBAL_DEFS: "global_defs {\n%s\n}\n",
    garp_group.GARP_GROUP: "garp_group {\n  interface eth0\n%s\n}\n",
    trackers.VRRP_SCRIPT: "vrrp_script chk {\n  script /bin/true\n%s\n}\n",
    track_objects.VRRP_TRACK_PROCESS: "vrrp_track_process p {\n  process nginx\n%s\n}\n",
    track_objects.TRACK_FILE: "track_file f {\n  file /run/f\n%s\n}\n",
    track_objects.VRRP_TRACK_FILE: "vrrp_track_file f {\n  file /run/f\n%s\n}\n",
    vrrp.VRRP_INSTANCE: INSTANCE,
    vrrp.AUTHENTICATION: INSTANCE % "  authentication {\n%s\n  }",
    trackers.VRRP_SYNC_GROUP: INSTANCE % "" + "vrrp_sync_group G {\n  group {\n    VI_1\n  }\n%s\n}\n",
    virtual_server.VIRTUAL_SERVER: SERVICE,
    real_server.REAL_SERVER: REAL,
    real_server.CHECKER: REAL % "    TCP_CHECK {\n%s\n    }",
    real_server.URL: REAL % "    HTTP_GET {\n      url {\n%s\n      }\n    }",
    real_server.SMTP_HOST: REAL % "    SMTP_CHECK {\n      host {\n%s\n      }\n    }",
    **{table: REAL % ("    %s {\n%%s\n    }" % kind) for kind, table in real_server.CHECKS.items()},
    checker_files.FILE_CHECK: REAL % "    FILE_CHECK {\n%s\n    }",
    checker_files.SSL: "SSL {\n%s\n}\n",
}
# tables of blocks that are not carried as a whole: their keywords are reported with the block
NOT_CARRIED_BLOCKS = {trackers.BFD_INSTANCE: (top.TOP, "bfd_instance"),
                      vrrp.TRACK_GROUP: (top.TOP, "track_group"),
                      real_server.BFD_CHECK: (real_server.REAL_SERVER, "BFD_CHECK")}
HANDLED_BY_THE_READER = {lexer.CONFIG_FILE, vrrp.VIP_OPTIONS,
                         virtual_server.VIRTUAL_SERVER_GROUP}     # its entries are addresses, not keywords


def translated(text: str):
    return keepalived.translate(keepalived.parse_text(text, "k.conf"))


def test_every_table_of_the_importer_is_listed():
    found = set()
    for module in (checker_files, garp_group, global_defs, lexer, real_server, top, track_objects, trackers, virtual_server, vrrp):
        for thing in vars(module).values():
            found |= {t for t in (thing.values() if isinstance(thing, dict) else [thing]) if isinstance(t, Table)}
    assert found == set(report.TABLES)
    assert set(PLACES) | set(NOT_CARRIED_BLOCKS) | HANDLED_BY_THE_READER == set(report.TABLES)


@pytest.mark.parametrize("table", list(PLACES), ids=lambda t: t.block)
def test_the_report_gives_the_tables_reason_for_every_keyword_not_carried(table):
    rows = [row for row in table.rows.values() if row.status != CARRIED and row.convert is None]
    for row in rows:
        result = translated(PLACES[table] % ("  %s 1" % row.keyword))
        reported = [(i.category, i.reason) for i in result.items if i.keyword == row.keyword]
        assert reported == [(row.status, row.text)], (table.block, row.keyword, result.items)


@pytest.mark.parametrize("table", list(PLACES), ids=lambda t: t.block)
def test_a_keyword_not_in_the_table_is_unknown_there(table):
    result = translated(PLACES[table] % "  no_such_keyword 1")
    [item] = [i for i in result.items if i.keyword == "no_such_keyword"]
    where = "TCP_CHECK" if table is real_server.CHECKER else table.where     # the common rows' placeholder
    assert item.reason.startswith("not a keepalived 2.2 keyword of %s " % where)


@pytest.mark.parametrize("table", list(NOT_CARRIED_BLOCKS), ids=lambda t: t.block)
def test_a_block_that_is_not_carried_is_reported_once_with_its_tables_reason(table):
    parent, keyword = NOT_CARRIED_BLOCKS[table]
    row = parent.rows[keyword]
    assert row.status != CARRIED
    place = REAL % "    TCP_CHECK {\n    }\n%s" if table is real_server.BFD_CHECK else PLACES[parent]  # not its only check
    text = place % ("  %s {\n%s\n  }" % (keyword, "\n".join("    %s 1" % k for k in table.rows)))
    result = translated(text)
    assert [(i.keyword, i.category, i.reason) for i in result.items] == [(keyword, row.status, row.text)]
    assert all(r.text.endswith(row.text) for r in table.rows.values())


def test_include_variants_in_text_without_files_are_reported_as_include_is():
    result = keepalived.translate(keepalived.parse_text("includer /etc/keepalived/conf.d/*.conf\n", "k.conf"))
    assert [tuple(i)[:4] for i in result.items] == [("k.conf", 1, "includer", "unsupported")]
    assert "was not read: only the text of one file was given" in result.items[0].reason


def test_keywords_lists_every_row_and_counts_them(capsys):
    assert main(["import-keepalived", "--keywords"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["block", "keyword", "status"]
    priority = [line.split(None, 3) for line in lines if line.split()[:2] == ["vrrp_instance", "priority"]]
    assert priority == [["vrrp_instance", "priority", "carried", "vrrp_instances.NAME.priority"]]
    use_vmac = [line for line in lines if line.split()[:2] == ["vrrp_instance", "use_vmac"]]
    assert use_vmac and use_vmac[0].split(None, 3)[3] == vrrp.VRRP_INSTANCE.rows["use_vmac"].text
    counts = report.counts()
    assert lines[-1] == "%d keywords: %d carried, %d unsupported, %d deprecated, %d no meaning here" % (
        sum(counts.values()), counts["carried"], counts["unsupported"], counts["deprecated"],
        counts["no meaning here"])
    assert len(lines) == 1 + sum(counts.values()) + 2


def test_import_still_needs_a_file(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["import-keepalived"])
    assert exit_info.value.code == 2
    assert "the following arguments are required: file" in capsys.readouterr().err


def test_the_docs_page_is_current():
    assert DOC.read_text() == report.markdown(), \
        "docs/keepalived-keywords.md is stale: run .venv/bin/python scripts/keepalived_keywords_doc.py"
