"""The supervisor's config is parsed in a forked child and handed back pickled (config/forked_load.py): the same
LoadedConfig or ConfigError as load_config in this process; loaded here when a fork is not safe or fails."""

import os
import subprocess
import sys
import threading

import pytest

from hanode.config import forked_load, load, loaded as loaded_module
from hanode.config.load import load_config
from hanode.config.problems import ConfigError

GOOD = ("router_id: n1\nvrrp_instances:\n" + "".join(
    f"  VI_{i}:\n    interface: lo\n    virtual_router_id: {i}\n    priority: 100\n    version: 3\n    advert_int: 0.1\n"
    f"    virtual_ipaddresses: [198.51.100.{i}/32]\n" for i in range(1, 21)))


def _config(tmp_path, text):
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


@pytest.fixture
def forks(monkeypatch):
    """Counts the forks the loader makes (in this process)."""
    made = []
    real_fork = os.fork

    def counting_fork():
        pid = real_fork()
        if pid:
            made.append(pid)
        return pid

    monkeypatch.setattr(forked_load.os, "fork", counting_fork)
    return made


def test_the_forked_load_gives_what_load_config_gives_and_is_remembered(tmp_path, forks):
    path = _config(tmp_path, GOOD)
    loaded = forked_load.load_config_forked(path)
    assert len(forks) == 1
    here = load_config(path)
    assert (loaded.path, loaded.digest, loaded.raw, loaded.config) == (here.path, here.digest, here.raw, here.config)
    assert loaded.problems == here.problems
    assert len(loaded.config.vrrp_instances) == 20
    forked_load.load_config_forked(path)
    assert loaded_module.last_loaded().digest == loaded.digest
    assert loaded_module.loaded_here(loaded.digest) is loaded_module.last_loaded()


def test_a_bad_config_raises_the_same_problems(tmp_path, forks):
    path = _config(tmp_path, GOOD.replace("priority: 100", "priority: 300", 1))
    with pytest.raises(ConfigError) as forked:
        forked_load.load_config_forked(path)
    assert len(forks) == 1
    with pytest.raises(ConfigError) as here:
        load_config(path)
    assert str(forked.value) == str(here.value)
    assert "priority" in str(forked.value)


def test_an_unreadable_file_is_a_config_error_naming_it(tmp_path, forks):
    with pytest.raises(ConfigError) as exc:
        forked_load.load_config_forked(str(tmp_path / "missing.yaml"))
    assert "missing.yaml" in str(exc.value) and "cannot read" in str(exc.value)


def test_a_child_that_fails_otherwise_leaves_the_load_to_this_process(tmp_path, forks, monkeypatch, capfd):
    parent = os.getpid()
    real_load = load.load_config

    def fails_in_the_child(path, **kwargs):
        if os.getpid() != parent:
            raise RuntimeError("out of something")
        return real_load(path, **kwargs)

    monkeypatch.setattr(load, "load_config", fails_in_the_child)
    loaded = forked_load.load_config_forked(_config(tmp_path, GOOD))
    assert len(forks) == 1 and len(loaded.config.vrrp_instances) == 20
    assert "out of something" in capfd.readouterr().err


def test_no_fork_while_another_thread_runs(tmp_path, forks):
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        loaded = forked_load.load_config_forked(_config(tmp_path, GOOD))
    finally:
        release.set()
        thread.join()
    assert forks == [] and len(loaded.config.vrrp_instances) == 20


def test_the_process_that_asked_imports_neither_the_yaml_parser_nor_the_validation(tmp_path):
    """Only the child parses: the supervisor (and the VRRP process forked from it) do without PyYAML and the
    config parser's modules (~1.9 MB USS with 1,000 instances)."""
    path = _config(tmp_path, GOOD)
    code = ("import sys; from hanode.config.forked_load import load_config_forked;"
            f"loaded = load_config_forked({path!r}); assert len(loaded.config.vrrp_instances) == 20;"
            "print(sorted(m for m in ('yaml', 'hanode.config.load', 'hanode.config.parse', 'hanode.config.parse_vrrp')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
