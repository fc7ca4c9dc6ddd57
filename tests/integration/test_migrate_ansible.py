"""The Ansible path: hanode.fleet.keepalived_to_hanode from the collection as ansible-galaxy builds it, in a real
playbook, agreeing with `hanode import-keepalived`: the filter runs the agent's own importer from the collection's
agent source (no copy of it in module_utils)."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hanode.lab.procs import hanode_argv, python_env
from hanode.migrate import keepalived
from hanode.migrate.keepalived import import_text

REPO = Path(__file__).resolve().parents[2]
SAMPLES = Path(__file__).parent / "keepalived_configs"
BIN = Path(sys.executable).parent
REPORT_LINE = re.compile(r"^.+?:(\d+): (.+?): (unsupported|deprecated|no meaning here|invalid): ")


def ansible_env(collections: Path, home: Path) -> dict:
    """Only the installed collection, none of the checkout's ansible.cfg, a home of its own."""
    cfg = home / "ansible.cfg"
    if not cfg.exists():
        cfg.write_text("[defaults]\n")
    env = dict(os.environ)
    env.update(ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_CONFIG=str(cfg), HOME=str(home),
               ANSIBLE_LOCAL_TEMP=str(home / "tmp"), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
               ANSIBLE_NOCOLOR="1", ANSIBLE_HOST_KEY_CHECKING="0")
    return env


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """The collection built by ansible-galaxy from this checkout and installed offline into a fresh path."""
    work = tmp_path_factory.mktemp("kimp-collection")
    env = ansible_env(work / "collections", work)
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", str(REPO), "--output-path", str(work / "dist")],
                   check=True, capture_output=True, text=True, env=env, timeout=120)
    [tarball] = glob.glob(str(work / "dist" / "hanode-fleet-*.tar.gz"))
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "-p", str(work / "collections"),
                    tarball], check=True, capture_output=True, text=True, env=env, timeout=120)
    return work


def test_the_built_collection_carries_the_agents_importer_and_no_copy(collection):
    installed = collection / "collections/ansible_collections/hanode/fleet"
    package = installed / "agent/src/hanode/migrate/keepalived"
    assert sorted(p.name for p in package.glob("*.py")) == sorted(p.name for p in Path(keepalived.__file__).parent.glob("*.py"))
    assert (installed / "plugins/plugin_utils/agent_source.py").is_file()
    assert not list((installed / "plugins/module_utils").glob("*keepalived*"))


PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Read the keepalived.conf
      ansible.builtin.slurp:
        src: "{{ conf }}"
      register: keepalived_conf

    - name: Translate it
      ansible.builtin.set_fact:
        keepalived_import: "{{ keepalived_conf.content | b64decode | hanode.fleet.keepalived_to_hanode(conf, 'n1') }}"

    - name: Keep the whole result
      ansible.builtin.copy:
        content: "{{ keepalived_import | to_nice_json }}"
        dest: "{{ out }}/result.json"
        mode: "0644"

    - name: Write the ha_node role variables
      ansible.builtin.copy:
        content: "{{ {'ha_node_config': keepalived_import.config}
                     | combine({'ha_node_router_id': keepalived_import.config.router_id}
                               if 'router_id' in keepalived_import.config else {}) | to_nice_yaml }}"
        dest: "{{ out }}/role_vars.yml"
        mode: "0644"
"""


def run_playbook(collection: Path, tmp_path: Path, conf: Path, playbook: str = PLAYBOOK) -> subprocess.CompletedProcess:
    (tmp_path / "play.yml").write_text(playbook)
    return subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", str(tmp_path / "play.yml"),
                           "-e", f"conf={conf}", "-e", f"out={tmp_path}",
                           "-e", f"ansible_python_interpreter={sys.executable}"], capture_output=True, text=True,
                          env=ansible_env(collection / "collections", collection), timeout=300, check=False)


@pytest.mark.parametrize("sample", ["unicast-tracking/node1.conf", "lvs-nat-http/keepalived.conf",
                                    "debian/keepalived.conf.conditional_conf"])
def test_a_playbook_turns_a_keepalived_conf_into_role_variables(collection, tmp_path, sample):
    conf = tmp_path / "keepalived.conf"
    conf.write_text((SAMPLES / sample).read_text().replace("@STATE@", str(tmp_path)))
    proc = run_playbook(collection, tmp_path, conf)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    assert result == json.loads(json.dumps(import_text(conf.read_text(), str(conf), "n1")))
    role_vars = yaml.safe_load((tmp_path / "role_vars.yml").read_text())
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump(role_vars["ha_node_config"], sort_keys=False))
    check = subprocess.run(hanode_argv() + ["check-config", str(tmp_path / "agent.yaml")], capture_output=True,
                           text=True, env=python_env(), timeout=60, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    cli = subprocess.run(hanode_argv() + ["import-keepalived", str(conf), "--config-id", "n1"], capture_output=True,
                         text=True, env=python_env(), timeout=60, check=False)
    assert yaml.safe_load(cli.stdout) == role_vars["ha_node_config"]      # the command and the filter agree
    reported = [m.groups() for m in (REPORT_LINE.match(line) for line in cli.stderr.splitlines()) if m]
    assert [(str(i["line"]), i["keyword"], i["category"]) for i in result["not_carried_over"]] == reported


def test_includes_are_reported_by_the_filter(collection, tmp_path):
    conf = tmp_path / "keepalived.conf"
    shutil.copytree(SAMPLES / "include-tree/conf.d", tmp_path / "conf.d")
    conf.write_text((SAMPLES / "include-tree/keepalived.conf").read_text())
    proc = run_playbook(collection, tmp_path, conf)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["complete"] is False
    [item] = result["not_carried_over"]
    assert (item["line"], item["keyword"], item["category"]) == (8, "include", "unsupported")
    assert "run `hanode import-keepalived` on the host" in item["reason"]


def test_a_parse_error_fails_the_task_naming_file_and_line(collection, tmp_path):
    conf = tmp_path / "broken.conf"
    conf.write_text("global_defs {\n  router_id r1\n}\n}\n")
    proc = run_playbook(collection, tmp_path, conf)
    assert proc.returncode != 0
    assert f"keepalived_to_hanode: {conf}:4: '}}' without a matching '{{'" in proc.stdout
