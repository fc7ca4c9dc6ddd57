"""Renders the hanode monitoring mixin: templates/*.yaml with the values of values.yaml (and of the files
given with --values, later ones winning) into alerts.yaml and rules.yaml.

    python3 monitoring/generate.py                                  # the shipped files, from the defaults
    python3 monitoring/generate.py --values mine.yaml --output DIR  # your thresholds
    python3 monitoring/generate.py --check                          # exit 1 when the shipped files are stale

A template names a value as ${name}. Every value must be used, every ${name} must have a value, durations
(keys ending in _for or _window) must be Prometheus durations and the other thresholds numbers.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
TEMPLATES = ("alerts.yaml", "rules.yaml")
PLACEHOLDER = re.compile(r"\$\{([a-z_]+)\}")
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
STRINGS = ("selector", "node_labels", "vrrp_group_labels")


class ValuesError(ValueError):
    """A values file or template problem, naming the key."""


def load_values(paths: list[Path]) -> dict:
    values = _read(HERE / "values.yaml")
    for path in paths:
        for key, value in _read(path).items():
            if key not in values:
                raise ValuesError(f"{path}: {key}: unknown key (known: {', '.join(sorted(values))})")
            values[key] = value
    for key, value in values.items():
        _check(key, value)
    return values


def _read(path: Path) -> dict:
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValuesError(f"{path}: a mapping of value names to values is expected")
    return data


def _check(key: str, value) -> None:
    if key.endswith(("_for", "_window")):
        if not isinstance(value, str) or not DURATION.match(value):
            raise ValuesError(f"{key}: {value!r} is not a Prometheus duration (e.g. 30s, 5m)")
    elif key in STRINGS:
        if not isinstance(value, str) or not value.strip():
            raise ValuesError(f"{key}: a non-empty string is expected")
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValuesError(f"{key}: {value!r} is not a number")


def render(template: str, values: dict, name: str = "template") -> str:
    missing = sorted({key for key in PLACEHOLDER.findall(template) if key not in values})
    if missing:
        raise ValuesError(f"{name}: no value for {', '.join('${' + key + '}' for key in missing)}")
    return PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), template)


def render_all(values: dict) -> dict[str, str]:
    out, used = {}, set()
    for name in TEMPLATES:
        template = (HERE / "templates" / name).read_text()
        used |= set(PLACEHOLDER.findall(template))
        out[name] = render(template, values, name)
        yaml.safe_load(out[name])  # a value that breaks the YAML fails here, not in Prometheus
    unused = sorted(set(values) - used)
    if unused:
        raise ValuesError(f"values not used by any template: {', '.join(unused)}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--values", action="append", type=Path, default=[], help="a values file (repeatable)")
    parser.add_argument("--output", type=Path, default=HERE, help="where to write alerts.yaml and rules.yaml")
    parser.add_argument("--check", action="store_true", help="compare with the files in --output instead")
    args = parser.parse_args(argv)
    try:
        files = render_all(load_values(args.values))
    except (ValuesError, OSError, yaml.YAMLError) as exc:
        print(f"generate: {exc}", file=sys.stderr)
        return 2
    stale = [name for name, text in files.items()
             if not (args.output / name).exists() or (args.output / name).read_text() != text]
    if args.check:
        for name in stale:
            print(f"generate: {args.output / name} is not what the templates and values give; "
                  "run python3 monitoring/generate.py", file=sys.stderr)
        return 1 if stale else 0
    args.output.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.output / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
