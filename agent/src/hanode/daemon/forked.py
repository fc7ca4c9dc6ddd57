"""What a process forked from the supervisor does first and last, whatever it runs (daemon/fork.py: a child
process; config/forked_load.py: the config loader). No asyncio here: the loader runs before `hanode run` has
decided how to import it."""

from __future__ import annotations

import os
import signal
import sys
from typing import NoReturn


def drop_inherited_handlers() -> None:
    """The supervisor's signal handlers (its event loop's, with their wake-up fd) are not the child's."""
    signal.set_wakeup_fd(-1)
    for signum in signal.valid_signals():
        if callable(signal.getsignal(signum)):
            signal.signal(signum, signal.SIG_DFL)


def exit_now(code: int) -> NoReturn:
    """Ends the forked process with `code`, its output flushed, without running the supervisor's cleanup."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)   # pylint: disable=protected-access
