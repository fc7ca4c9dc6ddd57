"""The importer's only file I/O: a keepalived.conf and the files its `include` lines name, read from disk the way
keepalived finds them. Everything else of the importer works on text."""

from __future__ import annotations

import glob
import os
import stat

from hanode.migrate.keepalived.lexer import expand_braces, parse_text
from hanode.migrate.keepalived.model import Parsed


def read_includes(pattern: str, including_file: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Files of an include as keepalived finds them: relative to the including file's directory, sorted per
    pattern, directories and executable files skipped."""
    base = os.path.dirname(including_file)
    files, messages = [], []
    for alternative in expand_braces(pattern):
        full = alternative if os.path.isabs(alternative) or not base else os.path.join(glob.escape(base), alternative)
        for path in sorted(glob.glob(full)):
            try:
                st = os.stat(path)
            except OSError as exc:
                messages.append("%s skipped: %s" % (path, exc.strerror))
                continue
            if stat.S_ISDIR(st.st_mode):
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o111:
                messages.append("%s skipped: not a regular non-executable file (keepalived skips it too)" % path)
                continue
            try:
                with open(path, "rb") as handle:
                    files.append((path, handle.read().decode("utf-8", "replace")))
            except OSError as exc:
                messages.append("%s skipped: %s" % (path, exc.strerror))
    if not files and not messages:
        messages.append("%s matched no file (keepalived skips it too)" % pattern)
    return files, messages


def parse_file(path: str, config_id: str | None = None) -> Parsed:
    """Parses a keepalived.conf and the files it includes. OSError when the file cannot be read."""
    with open(path, "rb") as handle:
        text = handle.read().decode("utf-8", "replace")
    return parse_text(text, path, read_includes, config_id)
