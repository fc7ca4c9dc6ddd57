"""load_config in a short-lived forked process, for the agent's long-lived supervisor.

Parsing a config builds and drops far more than it keeps: for 1,000 VRRP instances the YAML parser and the
validation peak ~11.5 MB traced for ~2.3 MB of result. Done in the supervisor itself, that garbage leaves
pymalloc's arenas part-used for good (a part-used arena is never returned), and the VRRP process forked from
the supervisor inherits them. Done in a child that hands back its result pickled, the supervisor only allocates
the result, densely, as it unpickles it: measured in a process that imports what the supervisor imports, 2.3 MB
less after loading a 1,000-instance config (docs/benchmarks.md, "Memory: what each change bought").

The result is the same LoadedConfig (and the same ConfigError) as load_config's in this process. Where a fork
is not safe (another thread runs: it could hold a lock the child needs) or the child fails in another way than a
ConfigError, the config is loaded here as before. No asyncio here: `hanode run` loads its config before it
decides how to import asyncio (daemon/imports.py)."""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
import traceback

from hanode.config.loaded import LoadedConfig, remember_loaded
from hanode.config.problems import ConfigError
from hanode.daemon.forked import drop_inherited_handlers, exit_now


def load_config_forked(path: str) -> LoadedConfig:
    """What load_config(path) returns or raises, the work done in a forked child (see the module's doc)."""
    if threading.active_count() != 1:
        return _load_here(path)
    result = _in_child(path)
    if result is None:   # the child died, or failed in a way a ConfigError does not say: load it here
        return _load_here(path)
    kind, value = result
    if kind == "error":
        raise ConfigError(value)
    remember_loaded(value)
    return value


def _load_here(path: str) -> LoadedConfig:
    """load_config in this process (its modules, the YAML parser's among them, imported only then)."""
    from hanode.config import load  # pylint: disable=import-outside-toplevel

    return load.load_config(path)


def _in_child(path: str) -> tuple[str, object] | None:
    """("ok", LoadedConfig) or ("error", problems) from a forked child; None when it gave neither."""
    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    # no signal reaches the child before it has dropped the supervisor's handlers (its event loop's wake-up fd)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _child(path, write_fd, blocked)   # never returns
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    _pid, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0 or not data:
        return None
    return pickle.loads(data)


def _child(path: str, write_fd: int, mask: set[signal.Signals]) -> None:
    code = 1
    try:
        drop_inherited_handlers()
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        try:
            result: tuple[str, object] = ("ok", _load_here(path))
        except ConfigError as exc:
            result = ("error", exc.problems)
        data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(data)
        code = 0
    except BaseException:  # noqa: BLE001 - the parent loads the config itself and meets the error there
        traceback.print_exc()
    finally:
        exit_now(code)
