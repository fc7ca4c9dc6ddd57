"""Run with Python 3.8 (scripts/ansible_checks.sh): the module_utils that run on managed hosts compile and work
on 3.8 with the standard library only (no Ansible, no PyYAML)."""

import os
import py_compile
import sys

COLLECTIONS = sys.argv[1]
ROOT = os.path.join(COLLECTIONS, "ansible_collections", "hanode", "fleet")
sys.path.insert(0, COLLECTIONS)

for directory in ("plugins/module_utils", "plugins/modules"):
    for name in sorted(os.listdir(os.path.join(ROOT, directory))):
        if name.endswith(".py"):
            py_compile.compile(os.path.join(ROOT, directory, name), doraise=True)

from ansible_collections.hanode.fleet.plugins.module_utils import _cluster, _config_push, _control, _plan, _yaml  # noqa: E402

models = {h: {"cluster": "c", "priority": p, "interfaces": {"eth0": ["198.51.100.%d/24" % i]},
              "instances": {"VI_1": {"interface": "eth0", "virtual_router_id": 51, "unicast": True,
                                     "virtual_ipaddresses": ["198.51.100.100/24"]}}}
          for h, p, i in (("a", 150, 11), ("b", 100, 12))}
built = _cluster.build(models)
assert built["errors"] == [], built["errors"]
assert built["configs"]["a"]["vrrp_instances"]["VI_1"]["unicast_peers"] == ["198.51.100.12"]
text = _config_push.render(built["configs"]["a"])
assert "unicast_src_ip: \"198.51.100.11\"" in text, text
assert _plan.rollout_order(["a", "b"], {"a": {"instances": {"VI_1": {"state": "MASTER"}}}}) == ["b", "a"]
assert _control.decide({"instances": {"VI_1": {"state": "MASTER"}}}, "drained")["command"] == ("drain", {"instances": None})
assert _yaml.dump({"k": [1]}) == "k:\n  - 1\n"
print("module_utils OK on Python %d.%d" % sys.version_info[:2])
