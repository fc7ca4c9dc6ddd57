"""The importer's only file I/O: a keepalived.conf and the files its `include` lines name, read from disk the way
keepalived finds them. Everything else of the importer works on text."""

from __future__ import annotations

import glob
import os
import stat

from hanode.migrate.keepalived.lexer import expand_braces, parse_text
from hanode.migrate.keepalived.model import Parsed


def read_includes(pattern: str, including_file: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Files of an include as keepalived finds them: relative to the including file's directory, sorted per
    pattern, directories and executable files skipped. The messages say what keepalived's include checks
    (lib/parser.c) would flag, each with its check: R (a file it cannot read), M (a file named without a
    wildcard is missing), W (a wildcard matched nothing), B (one of several {a,b} alternatives is missing)."""
    base = os.path.dirname(including_file)
    files: list[tuple[str, str]] = []
    messages: list[tuple[str, str]] = []
    missing, unmatched = [], []
    for alternative in expand_braces(pattern):
        full = alternative if os.path.isabs(alternative) or not base else os.path.join(glob.escape(base), alternative)
        found = sorted(glob.glob(full))
        if not found:
            (unmatched if glob.has_magic(alternative) else missing).append(alternative)
        for path in found:
            _read_one(path, files, messages)
    braces = "{" in pattern
    if not files and missing:
        messages.append(("B" if braces else "M", "%s: no such file (%s)" % (pattern, ", ".join(missing))))
    elif not files and unmatched:
        messages.append(("W", "%s matched no file" % pattern))
    elif missing:
        messages.append(("B", "%s: some files are missing (%s)" % (pattern, ", ".join(missing))))
    return files, messages


def _read_one(path: str, files: list[tuple[str, str]], messages: list[tuple[str, str]]) -> None:
    try:
        st = os.stat(path)
    except OSError as exc:
        messages.append(("R", "%s skipped: %s" % (path, exc.strerror)))
        return
    if stat.S_ISDIR(st.st_mode):
        messages.append(("R", "%s skipped: a directory" % path))
        return
    if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o111:
        messages.append(("R", "%s skipped: not a regular non-executable file" % path))
        return
    try:
        with open(path, "rb") as handle:
            files.append((path, handle.read().decode("utf-8", "replace")))
    except OSError as exc:
        messages.append(("R", "%s skipped: %s" % (path, exc.strerror)))


def parse_file(path: str, config_id: str | None = None) -> Parsed:
    """Parses a keepalived.conf and the files it includes. OSError when the file cannot be read."""
    with open(path, "rb") as handle:
        text = handle.read().decode("utf-8", "replace")
    return parse_text(text, path, read_includes, config_id, os.getcwd())
