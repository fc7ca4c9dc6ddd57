# -*- coding: utf-8 -*-
# Copyright: hanode contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of the offline install: a wheel of the collection's own agent source plus wheels of its
dependencies, in a wheelhouse the role copies to the hosts (which then install with --no-index).

The hosts' virtual environments are made without pip; pip runs from its wheel (tools/), which is faster
than ensurepip. The agent wheel is built here with the standard library (it is pure Python: a zip with METADATA, RECORD,
WHEEL and entry_points.txt), so no build backend has to be fetched. The dependencies come from
`pip download`, through whatever index, cache or --find-links the controller's pip is given
(--pip-arg); they are fetched once and reused from the wheelhouse afterwards.

Prints one JSON object: {"changed", "digest", "version", "agent_dir", "deps_dir", "wheel"}.
"""

from __future__ import absolute_import, division, print_function

import argparse
import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile

EPOCH = (1980, 1, 1, 0, 0, 0)


def load_pyproject(path):
    try:
        import tomllib
    except ImportError:  # Python < 3.11 on the controller
        import tomli as tomllib
    with open(path, "rb") as handle:
        return tomllib.load(handle)


def source_files(src):
    out = []
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.endswith(".egg-info"))
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")):
                continue
            full = os.path.join(root, name)
            out.append((os.path.relpath(full, src).replace(os.sep, "/"), full))
    return out


def source_digest(pyproject_path, files):
    h = hashlib.sha256()
    for rel, full in [("pyproject.toml", pyproject_path)] + files:
        h.update(rel.encode() + b"\0")
        with open(full, "rb") as handle:
            h.update(hashlib.sha256(handle.read()).digest())
    return h.hexdigest()


def _record_hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(project, files, out_dir, digest):
    meta = project["project"]
    name, version = meta["name"], meta["version"]
    dist = re.sub(r"[-_.]+", "_", name).lower()
    info = "%s-%s.dist-info" % (dist, version)
    lines = ["Metadata-Version: 2.1", "Name: %s" % name, "Version: %s" % version,
             "Summary: %s" % meta.get("description", "")]
    if meta.get("requires-python"):
        lines.append("Requires-Python: %s" % meta["requires-python"])
    lines += ["Requires-Dist: %s" % dep for dep in meta.get("dependencies", [])]
    entries = {
        info + "/METADATA": "\n".join(lines) + "\n",
        info + "/WHEEL": "Wheel-Version: 1.0\nGenerator: hanode build_wheelhouse\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        info + "/entry_points.txt": "[console_scripts]\n" + "".join(
            "%s = %s\n" % kv for kv in sorted(meta.get("scripts", {}).items())),
        info + "/hanode_source_digest": digest + "\n",
    }
    wheel = os.path.join(out_dir, "%s-%s-py3-none-any.whl" % (dist, version))
    record = []
    fd, tmp = tempfile.mkstemp(dir=out_dir, suffix=".tmp")
    os.close(fd)
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, full in files:
            with open(full, "rb") as handle:
                data = handle.read()
            zf.writestr(zipfile.ZipInfo(rel, EPOCH), data)
            record.append("%s,%s,%d" % (rel, _record_hash(data), len(data)))
        for rel, text in sorted(entries.items()):
            data = text.encode()
            zf.writestr(zipfile.ZipInfo(rel, EPOCH), data)
            record.append("%s,%s,%d" % (rel, _record_hash(data), len(data)))
        record.append(info + "/RECORD,,")
        zf.writestr(zipfile.ZipInfo(info + "/RECORD", EPOCH), "\n".join(record) + "\n")
    os.replace(tmp, wheel)
    return wheel


def _canonical(name):
    return re.sub(r"[-_.]+", "_", name).lower()


def deps_missing(deps, deps_dir):
    have = set()
    for entry in os.listdir(deps_dir):
        if entry.endswith((".whl", ".tar.gz", ".zip")):
            have.add(_canonical(entry.split("-")[0]))
    return [d for d in deps if _canonical(re.split(r"[<>=!~; \[]", d, 1)[0]) not in have]


def prune(wheelhouse, keep_dir, keep=3):
    """Keeps the newest few agent builds (every source change makes one)."""
    builds = [os.path.join(wheelhouse, d) for d in os.listdir(wheelhouse) if d.startswith("agent-")]
    builds.sort(key=os.path.getmtime, reverse=True)
    for old in [b for b in builds if b != keep_dir][keep - 1:]:
        for name in os.listdir(old):
            os.unlink(os.path.join(old, name))
        os.rmdir(old)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", required=True, help="the agent project (holds pyproject.toml and src/)")
    parser.add_argument("--wheelhouse", required=True)
    parser.add_argument("--pip-arg", action="append", default=[], help="extra argument for pip download")
    parser.add_argument("--python", default=sys.executable, help="the Python whose pip downloads the dependencies")
    args = parser.parse_args(argv)
    pyproject = os.path.join(args.source, "pyproject.toml")
    project = load_pyproject(pyproject)
    files = source_files(os.path.join(args.source, "src"))
    digest = source_digest(pyproject, files)
    agent_dir = os.path.join(args.wheelhouse, "agent-" + digest[:16])
    deps_dir = os.path.join(args.wheelhouse, "deps")
    for directory in (agent_dir, deps_dir):
        if not os.path.isdir(directory):
            os.makedirs(directory)
    changed = False
    wheels = [w for w in os.listdir(agent_dir) if w.endswith(".whl")]
    if wheels:
        wheel = os.path.join(agent_dir, wheels[0])
    else:
        wheel = build_wheel(project, files, agent_dir, digest)
        changed = True
    prune(args.wheelhouse, agent_dir)
    deps = list(project["project"].get("dependencies", []))
    missing = deps_missing(deps, deps_dir)
    if missing:
        cmd = [args.python, "-m", "pip", "download", "--disable-pip-version-check", "--quiet", "--only-binary=:all:",
               "--dest", deps_dir] + args.pip_arg + deps
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
        if proc.returncode != 0:
            sys.stderr.write("pip download of %s failed (give the controller an index, a cache or --find-links "
                             "through ha_node_controller_pip_args):\n%s" % (", ".join(missing), proc.stderr))
            return 1
        changed = True
    # pip itself, run from its wheel on the host: the venv is made --without-pip (ensurepip is slow).
    tools_dir = os.path.join(args.wheelhouse, "tools")
    if not os.path.isdir(tools_dir):
        os.makedirs(tools_dir)
    pips = sorted(w for w in os.listdir(tools_dir) if w.startswith("pip-") and w.endswith(".whl"))
    if not pips:
        cmd = [args.python, "-m", "pip", "download", "--disable-pip-version-check", "--quiet", "--no-deps",
               "--only-binary=:all:", "--dest", tools_dir] + args.pip_arg + ["pip"]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
        if proc.returncode != 0:
            sys.stderr.write("pip download of pip failed:\n%s" % proc.stderr)
            return 1
        pips = sorted(w for w in os.listdir(tools_dir) if w.startswith("pip-") and w.endswith(".whl"))
        changed = True
    print(json.dumps({"changed": changed, "digest": digest, "version": project["project"]["version"],
                      "agent_dir": agent_dir, "deps_dir": deps_dir, "wheel": wheel, "tools_dir": tools_dir,
                      "pip_wheel": pips[-1]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
