"""Watchdog of one lab: `python -m hanode.lab.reaper PREFIX` with stdin the read end of a pipe.

The creator holds the only write end. Stdin reaches EOF when the creator closes it (after its own
teardown, the record is then gone and there is nothing to do) or when the creator dies in any way,
SIGKILL included: the reaper then destroys whatever the lab's registry record still names.
"""

from __future__ import annotations

import os
import sys

from hanode.lab import registry


def main(argv: list[str]) -> int:
    prefix = argv[0]
    while os.read(0, 4096):
        pass
    record = registry.load(prefix)
    if record is None:
        return 0
    registry.destroy(record)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
