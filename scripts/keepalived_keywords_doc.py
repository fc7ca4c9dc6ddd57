"""Writes docs/keepalived-keywords.md from the importer's keyword tables (hanode.migrate.keepalived.report).

    .venv/bin/python scripts/keepalived_keywords_doc.py            # regenerate the page
    .venv/bin/python scripts/keepalived_keywords_doc.py --check    # exit 1 when the page is not current

agent/tests/unit/test_migrate_keywords.py runs the check in `make test`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hanode.migrate.keepalived.report import markdown

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "keepalived-keywords.md"
REGENERATE = ".venv/bin/python scripts/keepalived_keywords_doc.py"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether the page is current")
    args = parser.parse_args(argv)
    text = markdown()
    current = DOC.read_text() if DOC.exists() else None
    if args.check:
        if current != text:
            print("%s is not what the keyword tables give: run %s" % (DOC.relative_to(ROOT), REGENERATE),
                  file=sys.stderr)
            return 1
        return 0
    if current != text:
        DOC.write_text(text)
        print("wrote %s" % DOC.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
