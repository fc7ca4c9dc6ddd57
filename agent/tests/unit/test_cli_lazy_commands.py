"""`hanode COMMAND` imports only that command's module: the agent (`hanode run`) does not carry the lab's or the
clients' imports (asyncio with TLS among them) for its lifetime; `hanode --help` still lists every command."""

import subprocess
import sys

import pytest

from hanode.cli.main import COMMAND_MODULES, build_parser, main


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in COMMAND_MODULES:
        assert command in out


def test_unknown_command_names_the_choices(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["statu"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'statu'" in err and "check-config" in err


def test_a_command_parses_its_own_arguments():
    args = build_parser("run").parse_args(["run", "--config", "/tmp/x.yaml", "--log-level", "debug"])
    assert (args.command, args.config, args.log_level) == ("run", "/tmp/x.yaml", "debug")


def test_run_imports_neither_the_lab_nor_asyncio_before_it_starts():
    code = ("import sys; from hanode.cli.main import build_parser; build_parser('run');"
            "print(sorted(m for m in ('asyncio', 'ssl', 'hanode.lab.registry', 'hanode.control.client') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_loading_a_config_without_an_ssl_block_imports_neither_ssl_nor_the_health_checks(tmp_path):
    """The agent loads its config before deciding on asyncio without TLS (daemon/imports.py): the SSL block's
    check must not bring ssl, asyncio and every health check's module into a VRRP-only agent (~2 MB per node)."""
    path = tmp_path / "agent.yaml"
    path.write_text("router_id: n1\nvrrp_instances:\n  VI_1:\n    interface: lo\n    virtual_router_id: 51\n"
                    "    priority: 100\n    virtual_ipaddresses: [198.51.100.1/32]\n")
    path.chmod(0o600)
    code = ("import sys; from hanode.config.load import load_config;"
            f"loaded = load_config({str(path)!r}); assert 'VI_1' in loaded.config.vrrp_instances;"
            "print(sorted(m for m in sys.modules if m in ('ssl', 'asyncio') or m.startswith('hanode.health.checks')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
