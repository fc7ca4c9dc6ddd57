# -*- coding: utf-8 -*-
# Copyright: hanode contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ha_config's work: decide (current, desired, changed, diff), then act (validate, write atomically,
reload, wait until the agent reports the new config applied)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import re
import shlex
import tempfile

from ansible_collections.hanode.fleet.plugins.module_utils import _yaml
from ansible_collections.hanode.fleet.plugins.module_utils._agent_client import (
    AgentClient, AgentError, config_digests, summary)

HEADER = ["Managed by Ansible (hanode.fleet.ha_config): local changes are overwritten.",
          "Validate with: hanode check-config FILE"]
# Config keys whose values are secrets: never in a result, a diff or a log.
SECRET_KEYS = frozenset(["auth_pass"])
MASK = "********"
_SECRET_LINE = re.compile(r"^(\s*(?:- )?(?:%s):[ \t]*)(\S.*)$" % "|".join(sorted(SECRET_KEYS)), re.M)


def secrets(value):
    """Every secret value in a config (values of SECRET_KEYS at any depth), as strings."""
    found = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key in SECRET_KEYS and item not in (None, ""):
                found.add(u"%s" % item)
            else:
                found |= secrets(item)
    elif isinstance(value, list):
        for item in value:
            found |= secrets(item)
    return found


def mask(text):
    """The rendered config with every secret's value replaced (for diffs)."""
    return _SECRET_LINE.sub(lambda m: m.group(1) + MASK, text) if text else text


def render(config):
    return _yaml.dump(config, header=HEADER)


def digest(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_text(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except (IOError, OSError):
        return None


def decide(current_text, desired_text, status, reload_wanted):
    """Pure: what has to happen. status is None when no agent answers."""
    write = current_text != desired_text
    running_digest, applied_digest = config_digests(status)
    want = digest(desired_text)
    stale = status is not None and (running_digest != want or applied_digest != want)
    reload_needed = bool(reload_wanted and status is not None and (write or stale))
    reasons = []
    if write:
        reasons.append("the config file differs" if current_text is not None else "the config file does not exist")
    if status is not None and stale and not write:
        reasons.append("the agent runs config %s, the file is %s" % ((running_digest or "?")[:12], want[:12]))
    return {"write": write, "reload": reload_needed, "changed": write or reload_needed, "digest": want,
            "reasons": reasons}


class ConfigPush:
    """The side effects, driven by an AnsibleModule."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.client = AgentClient(self.params["socket"], timeout_s=10.0)

    def status_or_none(self):
        try:
            return self.client.status()
        except AgentError:
            return None

    def validator(self):
        """argv with '%s' for the file, or None when the validator is missing (check mode only)."""
        command = self.params["validate"]
        if not command:
            return None
        if "%s" not in command:
            self.module.fail_json(msg="validate must contain %%s for the file to check, got %r" % command)
        argv = shlex.split(command)
        exe = argv[0] if os.path.isabs(argv[0]) else self.module.get_bin_path(argv[0])
        if not exe or not os.path.exists(exe):
            if self.module.check_mode:
                self.module.warn("cannot validate the config: %s is not installed yet (check mode)" % argv[0])
                return None
            self.module.fail_json(msg="cannot validate the config: %s not found (install the agent or set validate)" % argv[0])
        return [exe] + argv[1:]

    def validate(self, path, argv):
        cmd = [a.replace("%s", path) for a in argv]
        rc, out, err = self.module.run_command(cmd)
        if rc != 0:
            problems = [line for line in (out + err).splitlines() if line.strip()]
            self.module.fail_json(msg="the agent refuses the rendered config: %s" % "; ".join(problems),
                                  problems=problems, rc=rc, cmd=cmd)

    def write_temp(self, directory, text):
        """A 0600 file (mkstemp's mode: the config holds secrets from its first byte on)."""
        fd, tmp = tempfile.mkstemp(prefix=".hanode-", suffix=".yaml", dir=directory)
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        return tmp

    def install(self, tmp, path):
        """Renames the 0600 temp file (same directory) over path: atomic, and never readable by others
        (atomic_move would give a new file the umask's mode until set_fs_attributes fixes it)."""
        os.rename(tmp, path)

    def check_only(self, text):
        """Check mode: validate in Ansible's own temp dir; nothing managed is touched."""
        argv = self.validator()
        if argv is None:
            return
        tmp = self.write_temp(self.module.tmpdir, text)
        try:
            self.validate(tmp, argv)
        finally:
            os.unlink(tmp)

    def write(self, path, text):
        directory = os.path.dirname(path) or "."
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        argv = self.validator()
        tmp = self.write_temp(directory, text)
        try:
            if argv:
                self.validate(tmp, argv)
            self.install(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def reload(self, path, previous_text, want):
        try:
            reply = self.client.reload(timeout_s=self.params["timeout"])
        except AgentError as exc:
            self.module.fail_json(msg="reload failed: %s" % exc, path=path)
        if not reply.get("ok"):
            # refused (invalid) or rolled back (a process failed to apply it): the old config runs, so the old
            # file goes back and the file and the running config agree
            restored = self._restore(path, previous_text)
            what = ("could not apply the new config and went back to the old one" if reply.get("rolled_back")
                    else "refused the new config and keeps running the old one")
            self.module.fail_json(msg="the agent %s%s: %s" % (
                what, " (the previous file is restored)" if restored else "",
                "; ".join(reply.get("errors") or [u"%s" % reply.get("error")])),
                errors=reply.get("errors"), rolled_back=bool(reply.get("rolled_back")), path=path)
        try:
            return self.client.wait_for(lambda st: config_digests(st) == (want, want), self.params["timeout"],
                                        "the agent to apply config %s" % want[:12])
        except AgentError as exc:
            self.module.fail_json(msg=u"%s" % exc, path=path)

    def _restore(self, path, previous_text):
        if previous_text is None:
            return False
        tmp = self.write_temp(os.path.dirname(path) or ".", previous_text)
        self.install(tmp, path)
        return True


def run(module):
    params = module.params
    path = params["path"]
    module.no_log_values.update(secrets(params["config"]))
    desired = render(params["config"])
    current = read_text(path)
    if current:
        module.no_log_values.update(m.group(2) for m in _SECRET_LINE.finditer(current))
    push = ConfigPush(module)
    status = push.status_or_none()
    decision = decide(current, desired, status, params["reload"])
    result = {"changed": decision["changed"], "path": path, "digest": decision["digest"],
              "reasons": decision["reasons"], "agent_running": status is not None, "reloaded": False}
    if module._diff:
        result["diff"] = {"before": mask(current) or "", "after": mask(desired), "before_header": path, "after_header": path}
    if module.check_mode:
        if decision["write"]:
            push.check_only(desired)
    else:
        if decision["write"]:
            push.write(path, desired)
        if decision["reload"]:
            status = push.reload(path, current, decision["digest"])
            result["reloaded"] = True
    file_args = module.load_file_common_arguments(params, path=path)
    if os.path.exists(path) or not module.check_mode:
        result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"], diff=None)
    if status is not None:
        result["instances"] = summary(status)
    return result
