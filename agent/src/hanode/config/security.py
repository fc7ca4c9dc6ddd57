"""Who runs scripts, and keepalived's enable_script_security on resolved paths (and the same rule for the
config file).

The script user (keepalived 2.2.7): a script's own `user`, else the global `script_user`, else the user
`keepalived_script` when it exists. Where keepalived then falls back to root (with a warning), hanode refuses:
a script runs as root only when the config says so (`script_user: root`, or `user: root` on the script), and
that is warned about at every load.

A script is refused when anything a non-root user could change decides what runs: the program is resolved
component by component, every symlink followed, and every directory on the way, every symlink in the chain
and the file itself must be root's and not writable by a non-root group or by everyone (directories with the
sticky bit excepted, as keepalived does). keepalived checks the path as written and the realpath; hanode
checks the whole chain (a root-owned link in a root-owned directory pointing into a user's directory is
refused, naming that directory), checks it again before every run, and runs the file it checked.
"""

from __future__ import annotations

import grp
import os
import pwd
import shlex
import shutil
import stat
from dataclasses import dataclass

from hanode.config.model import AgentConfig
from hanode.config.problems import Problem

SCRIPT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SCRIPT_USER = "keepalived_script"   # keepalived's default script user, used when it exists
MAX_SYMLINKS = 40                           # as the kernel's path walk (ELOOP)


class ScriptRefused(Exception):
    """A script that must not run; the message says why (and names the path component)."""

    def __init__(self, message: str, insecure: bool = False):
        super().__init__(message)
        self.insecure = insecure   # True: the path could be changed by others (enable_script_security's matter)


@dataclass(frozen=True)
class ScriptUser:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class PreparedScript:
    """What to execute (the file that was checked), as whom, with which environment."""
    executable: str
    user: ScriptUser
    env: dict

    def popen_identity(self) -> dict:
        """subprocess keyword arguments: root runs as the agent; anyone else with only their own group."""
        if self.user.uid == 0 and self.user.gid == 0:
            return {}
        return {"user": self.user.uid, "group": self.user.gid, "extra_groups": []}


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


def script_user(spec: str | None) -> ScriptUser | None:
    """'user [group]' -> the identity; no spec: keepalived_script when it exists, else None (nobody: refused).
    ScriptRefused when a named user or group does not exist."""
    if not spec:
        try:
            entry = pwd.getpwnam(DEFAULT_SCRIPT_USER)
        except KeyError:
            return None
        return ScriptUser(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)
    words = spec.split()
    try:
        entry = pwd.getpwnam(words[0])
    except KeyError:
        raise ScriptRefused(f"user {words[0]!r} does not exist") from None
    gid = entry.pw_gid
    if len(words) > 1:
        try:
            gid = grp.getgrnam(words[1]).gr_gid
        except KeyError:
            raise ScriptRefused(f"group {words[1]!r} does not exist") from None
    return ScriptUser(entry.pw_name, entry.pw_uid, gid, entry.pw_dir)


def nobody_to_run_as() -> str:
    return (f"no script_user is set and the user {DEFAULT_SCRIPT_USER} does not exist: hanode does not run scripts "
            f"as root unless told to (create the user {DEFAULT_SCRIPT_USER}, as for keepalived, or set script_user; "
            "`script_user: root` runs them as root)")


def _others_can_change(st: os.stat_result) -> str | None:
    """Why a non-root user could change this directory, file or symlink, or None."""
    if stat.S_ISLNK(st.st_mode):          # a symlink's own mode means nothing; its directory is checked
        return f"is owned by uid {st.st_uid}" if st.st_uid != 0 else None
    if st.st_uid != 0:                    # keepalived: any non-root owner, who can chmod it writable at will
        writable = " and writable by it" if st.st_mode & stat.S_IWUSR else ", who can make it writable"
        return f"is owned by uid {st.st_uid}{writable}"
    sticky_dir = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
    if st.st_gid != 0 and st.st_mode & stat.S_IWGRP and not sticky_dir:
        return f"is writable by group {st.st_gid}"
    if st.st_mode & stat.S_IWOTH and not sticky_dir:
        return "is writable by everyone"
    return None


def _executable(st: os.stat_result, user: ScriptUser) -> bool:
    """Whether the user (its uid and one group, as scripts run) may execute the file or search the directory."""
    if user.uid == 0:
        return stat.S_ISDIR(st.st_mode) or bool(st.st_mode & 0o111)
    if st.st_uid == user.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == user.gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


class _Walk:
    """One resolution of a path, component by component, following every symlink."""

    def __init__(self, path: str, user: ScriptUser | None, secure: bool):
        self.path, self.user, self.secure = path, user, secure
        self.links: list[str] = []

    def fail(self, message: str, insecure: bool = False) -> ScriptRefused:
        through = f" (reached through {', '.join(self.links)})" if self.links else ""
        return ScriptRefused(message + through, insecure)

    def check(self, where: str, st: os.stat_result) -> None:
        problem = _others_can_change(st) if self.secure else None
        if problem:
            kind = "symlink " if stat.S_ISLNK(st.st_mode) else ""
            raise self.fail(f"{kind}{where} {problem}", insecure=True)
        if self.user and stat.S_ISDIR(st.st_mode) and not _executable(st, self.user):
            mode = stat.S_IMODE(st.st_mode)
            raise self.fail(f"{where} cannot be searched by user {self.user.name} (mode {mode:04o})")

    def lstat(self, where: str) -> os.stat_result:
        try:
            return os.lstat(where)
        except (FileNotFoundError, NotADirectoryError):
            missing = "" if where == self.path else f" ({where} is missing)"
            raise self.fail(f"{self.path} does not exist or is not a file{missing}") from None
        except OSError as exc:
            raise self.fail(f"cannot inspect {where}: {exc.strerror}") from None

    def resolve(self) -> str:
        if not os.path.isabs(self.path):
            raise self.fail(f"{self.path} is not an absolute path")
        pending = [part for part in self.path.split("/") if part][::-1]
        current = "/"
        self.check(current, self.lstat(current))
        st = None
        while pending:
            name = pending.pop()
            if name == ".":
                continue
            if name == "..":
                current = os.path.dirname(current)
                continue
            where = os.path.join(current, name)
            st = self.lstat(where)
            if stat.S_ISLNK(st.st_mode):
                self.check(where, st)
                if len(self.links) >= MAX_SYMLINKS:
                    raise self.fail(f"more than {MAX_SYMLINKS} symlinks")
                target = os.readlink(where)
                self.links.append(f"{where} -> {target}")
                current = "/" if target.startswith("/") else current
                pending.extend(part for part in reversed(target.split("/")) if part)
                continue
            if pending and not stat.S_ISDIR(st.st_mode):
                raise self.fail(f"{where} is not a directory")
            self.check(where, st)
            current = where
        if st is None or not stat.S_ISREG(st.st_mode):
            raise self.fail(f"{self.path} does not exist or is not a file")
        return current


def resolve_script(path: str, user: ScriptUser | None = None, secure: bool = True) -> str:
    """The file `path` runs, every symlink followed; ScriptRefused naming the first component that is missing,
    that others could change (secure), or that the user cannot search or execute."""
    walk = _Walk(path, user, secure)
    resolved = walk.resolve()
    st = os.stat(resolved)
    runner = user or ScriptUser("root", 0, 0, "/root")
    if not _executable(st, runner):
        raise walk.fail(f"{path} is not executable" + (f" by user {runner.name}" if runner.uid else ""))
    return resolved


def prepare_script(argv: list[str], user_spec: str | None, secure: bool = True) -> PreparedScript:
    """Everything needed to run argv now, or ScriptRefused: who runs it, and the checked file."""
    if not argv:
        raise ScriptRefused("the command is empty")
    user = script_user(user_spec)
    if user is None:
        raise ScriptRefused(nobody_to_run_as())
    program = argv[0] if "/" in argv[0] else shutil.which(argv[0], path=SCRIPT_PATH)
    if program is None:
        raise ScriptRefused(f"cannot find {argv[0]} in {SCRIPT_PATH}")
    try:
        executable = resolve_script(program, user, secure)
    except ScriptRefused as exc:
        kind = "insecure script" if exc.insecure else "script"
        raise ScriptRefused(f"{kind} {argv[0]}: {exc}", exc.insecure) from None
    env = {"PATH": SCRIPT_PATH, "LANG": "C.UTF-8", "HOME": user.home, "USER": user.name, "LOGNAME": user.name}
    return PreparedScript(executable, user, env)


# the config's scripts, checked at load --------------------------------------------------------------------

def unsafe_writer(path: str) -> str | None:
    """Names the first component of path (resolved) that a non-root user could change, else None."""
    try:
        _Walk(os.path.abspath(path), None, True).resolve()
    except ScriptRefused as exc:
        return str(exc) if exc.insecure else None
    return None


def script_problem(command: str, user: ScriptUser | None = None) -> str | None:
    """What is wrong with the script (run as `user`; None: root), or None."""
    issue = _script_issue(command, user)
    return issue[0] if issue else None


def _script_issue(command: str, user: ScriptUser | None) -> tuple[str, bool] | None:
    """(what is wrong, whether it is a matter of others being able to change it), or None."""
    executable = resolve_command(command)
    if executable is None:
        return f"cannot find the program of {command!r}", False
    try:
        resolve_script(executable, user)
    except ScriptRefused as exc:
        if exc.insecure:
            return (f"insecure script: {exc} (enable_script_security refuses scripts non-root users can change)",
                    True)
        return str(exc), False
    return None


def _scripts(config: AgentConfig):
    """(field path, command, the script's own user) of every script in the config."""
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
    for name, inst in config.vrrp_instances.items():
        if inst.notify_master_rx_lower_pri:
            yield f"vrrp_instances.{name}.notify_master_rx_lower_pri", inst.notify_master_rx_lower_pri, None
    startup, ops = config.sections.get("startup"), config.sections.get("ops")
    for key, owner in (("startup_script", startup), ("shutdown_script", startup), ("notify_fifo_script", ops)):
        command = getattr(owner, key, None)
        if command:
            yield key, command, None
    yield from config.sections.get("scripts", ())   # virtual servers' notify and quorum scripts, MISC_CHECK


def _listed(paths: list[str]) -> str:
    return ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


def check_config_security(config_path: str, config: AgentConfig) -> list[Problem]:
    problems = []
    writer = unsafe_writer(config_path)
    if writer:
        problems.append(Problem(config_path, f"insecure config file: {writer}"))
    try:
        script_user(config.script_user)
    except ScriptRefused as exc:
        problems.append(Problem("script_user", str(exc)))
    unasked, as_root = [], []
    for path, command, own_user in _scripts(config):
        try:
            user = script_user(own_user or config.script_user)
        except ScriptRefused as exc:
            if own_user:
                problems.append(Problem(path.rsplit(".", 1)[0] + ".user", str(exc)))
            continue
        if user is None:
            unasked.append(path)
        elif user.uid == 0:
            as_root.append(path)
        issue = _script_issue(command, user)
        if issue:
            message, insecure = issue
            problems.append(Problem(path, message, warning=insecure and not config.enable_script_security))
    if unasked:
        problems.append(Problem("script_user", f"{_listed(unasked)} would run as root: {nobody_to_run_as()}"))
    if as_root:
        problems.append(Problem("script_user", f"{_listed(as_root)} run as root (script_user or the script's user "
                                               "says so): whatever the script does, it does with every privilege",
                                warning=True))
    return problems
