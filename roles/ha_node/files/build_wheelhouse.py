# -*- coding: utf-8 -*-
# Copyright: hanode contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of the offline install: a wheel of the collection's own agent source plus wheels of its
dependencies, in a wheelhouse the role copies to the hosts (which then install with --no-index).

Dependencies are fetched per host platform (--platform TAG=HOSTS, the tag from hanode.fleet.ha_preflight:
'cp313-glibc2.41-x86_64' = CPython 3.13, glibc 2.41, x86_64) into deps/<tag>/, with pip's --python-version,
--abi and --platform (manylinux/musllinux tags the host's libc accepts), and cached there by tag. A platform
pip cannot serve is reported with the hosts that have it; nothing is copied to any host then.

The hosts' virtual environments are made without pip; pip runs from its wheel (tools/), which is faster
than ensurepip. The agent wheel is built here with the standard library (it is pure Python: a zip with METADATA, RECORD,
WHEEL and entry_points.txt), so no build backend has to be fetched. The dependencies come from
`pip download`, through whatever index, cache or --find-links the controller's pip is given
(--pip-arg); they are fetched once and reused from the wheelhouse afterwards.

Per platform, the agent's wheel, pip's and the dependencies' are bundled in one tar (agent-<digest>/bundles/),
copied to a host in one transfer.

Prints one JSON object: {"changed", "digest", "version", "agent_dir", "wheel", "pip_wheel",
"bundles": {tag: tar}, "unserved": {tag: why}, "problems": [one line per unserved platform, naming hosts]}.
"""

from __future__ import absolute_import, division, print_function

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
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


TAG_RE = re.compile(r"^(cp)(\d)(\d+)-(glibc|musl)(\d+)\.(\d+)-(\w+)$")
MANYLINUX_LEGACY = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


def pip_target_args(tag):
    """pip download's target for a host platform tag: 'cp313-glibc2.41-x86_64' -> --python-version 3.13,
    --implementation cp, --abi cp313, and every manylinux platform glibc 2.41 runs (2_41 down to 2_5, with the
    legacy names); musl 1.2 -> musllinux_1_2 .. 1_0. ValueError for a tag that is not of that form."""
    found = TAG_RE.match(tag)
    if not found:
        raise ValueError("unknown platform tag %r (expected like cp313-glibc2.41-x86_64)" % tag)
    impl, major, minor, libc, libc_major, libc_minor, arch = found.groups()
    args = ["--python-version", "%s.%s" % (major, minor), "--implementation", impl, "--abi", "%s%s%s" % (impl, major, minor)]
    platforms = []
    if libc == "glibc":
        for glibc_minor in range(int(libc_minor), 4, -1):
            platforms.append("manylinux_%s_%d_%s" % (libc_major, glibc_minor, arch))
            legacy = MANYLINUX_LEGACY.get((int(libc_major), glibc_minor))
            if legacy:
                platforms.append("%s_%s" % (legacy, arch))
    else:
        platforms = ["musllinux_%s_%d_%s" % (libc_major, m, arch) for m in range(int(libc_minor), -1, -1)]
    for platform in platforms:
        args += ["--platform", platform]
    return args


def fetch_deps(python, deps, deps_dir, tag, pip_args):
    """Downloads what deps_dir lacks for one platform; returns (changed, None) or (False, why)."""
    missing = deps_missing(deps, deps_dir)
    if not missing:
        return False, None
    cmd = [python, "-m", "pip", "download", "--disable-pip-version-check", "--quiet", "--only-binary=:all:",
           "--dest", deps_dir] + pip_target_args(tag) + pip_args + deps
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")] or proc.stderr.splitlines()[-2:]
        return False, "pip download of %s failed: %s" % (", ".join(missing), " ".join(errors).strip())
    return True, None


def prune(wheelhouse, keep_dir, keep=3):
    """Keeps the newest few agent builds (every source change makes one)."""
    builds = [os.path.join(wheelhouse, d) for d in os.listdir(wheelhouse) if d.startswith("agent-")]
    builds.sort(key=os.path.getmtime, reverse=True)
    for old in [b for b in builds if b != keep_dir][keep - 1:]:
        shutil.rmtree(old)


def platform_arg(text):
    tag, _sep, hosts = text.partition("=")
    pip_target_args(tag)  # refuses a malformed tag
    return tag, hosts


def agent_wheel(project, files, agent_dir, digest):
    """The agent's wheel for this source digest (built once); returns (path, built now)."""
    if not os.path.isdir(agent_dir):
        os.makedirs(agent_dir)
    wheels = [w for w in os.listdir(agent_dir) if w.endswith(".whl")]
    if wheels:
        return os.path.join(agent_dir, wheels[0]), False
    return build_wheel(project, files, agent_dir, digest), True


def pip_wheel(python, tools_dir, pip_args):
    """pip's own wheel, run from the wheel on the host (the venv is made --without-pip: ensurepip is slow).
    Returns (path, fetched now); raises RuntimeError when it cannot be fetched."""
    if not os.path.isdir(tools_dir):
        os.makedirs(tools_dir)
    fetched = False
    pips = sorted(w for w in os.listdir(tools_dir) if w.startswith("pip-") and w.endswith(".whl"))
    if not pips:
        cmd = [python, "-m", "pip", "download", "--disable-pip-version-check", "--quiet", "--no-deps",
               "--only-binary=:all:", "--dest", tools_dir] + pip_args + ["pip"]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError("pip download of pip failed:\n%s" % proc.stderr)
        pips = sorted(w for w in os.listdir(tools_dir) if w.startswith("pip-") and w.endswith(".whl"))
        fetched = True
    return os.path.join(tools_dir, pips[-1]), fetched


def bundle(bundles_dir, name, wheels):
    """One tar of every wheel a host of one platform needs (one copy to the host instead of one per file)."""
    if not os.path.isdir(bundles_dir):
        os.makedirs(bundles_dir)
    path = os.path.join(bundles_dir, name + ".tar")
    if os.path.exists(path):
        return path, False
    fd, tmp = tempfile.mkstemp(dir=bundles_dir, suffix=".tmp")
    os.close(fd)
    with tarfile.open(tmp, "w") as tar:
        for wheel in sorted(wheels):
            tar.add(wheel, arcname=os.path.basename(wheel))
    os.replace(tmp, path)
    return path, True


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", required=True, help="the agent project (holds pyproject.toml and src/)")
    parser.add_argument("--wheelhouse", required=True)
    parser.add_argument("--pip-arg", action="append", default=[], help="extra argument for pip download")
    parser.add_argument("--python", default=sys.executable, help="the Python whose pip downloads the dependencies")
    parser.add_argument("--platform", action="append", default=[], type=platform_arg, metavar="TAG=HOSTS",
                        help="a host platform to fetch the dependencies for, and the hosts that have it")
    args = parser.parse_args(argv)
    pyproject = os.path.join(args.source, "pyproject.toml")
    project = load_pyproject(pyproject)
    files = source_files(os.path.join(args.source, "src"))
    digest = source_digest(pyproject, files)
    agent_dir = os.path.join(args.wheelhouse, "agent-" + digest[:16])
    wheel, changed = agent_wheel(project, files, agent_dir, digest)
    prune(args.wheelhouse, agent_dir)
    try:
        pip_path, fetched = pip_wheel(args.python, os.path.join(args.wheelhouse, "tools"), args.pip_arg)
    except RuntimeError as exc:
        sys.stderr.write("%s" % exc)
        return 1
    changed = changed or fetched
    deps = list(project["project"].get("dependencies", []))
    bundles, unserved, problems = {}, {}, []
    for tag, hosts in args.platform:
        deps_dir = os.path.join(args.wheelhouse, "deps", tag)
        if not os.path.isdir(deps_dir):
            os.makedirs(deps_dir)
        fetched, why = fetch_deps(args.python, deps, deps_dir, tag, args.pip_arg)
        if why:
            unserved[tag] = why
            problems.append("%s (%s): %s" % (hosts or "?", tag, why))
            continue
        wheels = [wheel, pip_path] + [os.path.join(deps_dir, w) for w in os.listdir(deps_dir) if w.endswith(".whl")]
        bundles[tag], made = bundle(os.path.join(agent_dir, "bundles"), "%s-%s" % (digest[:16], tag), wheels)
        changed = changed or fetched or made
    print(json.dumps({"changed": changed, "digest": digest, "version": project["project"]["version"],
                      "agent_dir": agent_dir, "wheel": wheel, "pip_wheel": os.path.basename(pip_path),
                      "bundles": bundles, "unserved": unserved, "problems": problems}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
