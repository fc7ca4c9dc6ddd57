"""keepalived's enable_script_security, and the same rule for the config file itself.

A script (or the config) is refused when it, or any directory above it, can be written by a user other
than root: a non-root user could otherwise make the agent run anything as root.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import stat

from hanode.config.model import AgentConfig
from hanode.config.problems import Problem

SCRIPT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def resolve_command(command: str) -> str | None:
    """The executable a script string runs (keepalived allows `killall -0 haproxy`)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if not words:
        return None
    if "/" in words[0]:
        return words[0]
    return shutil.which(words[0], path=SCRIPT_PATH)


def unsafe_writer(path: str) -> str | None:
    """Names the first of path and its parents that a non-root user can write, else None."""
    current = os.path.abspath(path)
    while True:
        try:
            st = os.stat(current)
        except OSError:
            return None
        sticky_dir = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
        if st.st_uid != 0:  # keepalived: any non-root owner, who can chmod it writable at will
            writable = " and writable by it" if st.st_mode & stat.S_IWUSR else ", who can make it writable"
            return f"{current} is owned by uid {st.st_uid}{writable}"
        if st.st_gid != 0 and st.st_mode & stat.S_IWGRP and not sticky_dir:
            return f"{current} is writable by group {st.st_gid}"
        if st.st_mode & stat.S_IWOTH and not sticky_dir:
            return f"{current} is writable by everyone"
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def script_problem(command: str) -> str | None:
    executable = resolve_command(command)
    if executable is None:
        return f"cannot find the program of {command!r}"
    if not os.path.isfile(executable):
        return f"{executable} does not exist or is not a file"
    if not os.access(executable, os.X_OK):
        return f"{executable} is not executable"
    writer = unsafe_writer(executable)
    if writer:
        return f"insecure script: {writer} (enable_script_security refuses scripts non-root users can change)"
    return None


def _scripts(config: AgentConfig):
    for name, script in config.vrrp_scripts.items():
        yield f"vrrp_scripts.{name}.script", script.script, script.user
    notify_keys = (("master", "notify_master"), ("backup", "notify_backup"), ("fault", "notify_fault"),
                   ("stop", "notify_stop"), ("generic", "notify"))
    for kind, items in (("vrrp_instances", config.vrrp_instances), ("vrrp_sync_groups", config.vrrp_sync_groups)):
        for name, item in items.items():
            for attr, key in notify_keys:
                command = getattr(item.notify, attr)
                if command:
                    yield f"{kind}.{name}.{key}", command, None
    for path, command in config.sections.get("scripts", ()):
        yield path, command, None


def _user_problem(user_spec: str) -> str | None:
    user = user_spec.split()[0]
    try:
        pwd.getpwnam(user)
    except KeyError:
        return f"user {user!r} does not exist"
    return None


def check_config_security(config_path: str, config: AgentConfig) -> list[Problem]:
    problems = []
    writer = unsafe_writer(config_path)
    if writer:
        problems.append(Problem(config_path, f"insecure config file: {writer}"))
    if config.script_user and (issue := _user_problem(config.script_user)):
        problems.append(Problem("script_user", issue))
    for path, command, user in _scripts(config):
        issue = script_problem(command)
        if issue:
            problems.append(Problem(path, issue, warning=not config.enable_script_security and "insecure" in issue))
        if user and (issue := _user_problem(user)):
            problems.append(Problem(path.rsplit(".", 1)[0] + ".user", issue))
    return problems
