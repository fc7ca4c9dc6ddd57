"""Config problems with their field paths, and a reader that records them instead of raising."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

MISSING = object()


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        prefix = "warning: " if self.warning else ""
        return f"{prefix}{self.path}: {self.message}"


class ConfigError(Exception):
    """Raised with every problem found; str() is one line per problem."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = [p for p in problems if not p.warning]
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class Problems:
    items: list[Problem] = field(default_factory=list)

    def error(self, path: str, message: str) -> None:
        self.items.append(Problem(path, message))

    def warn(self, path: str, message: str) -> None:
        self.items.append(Problem(path, message, warning=True))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.items if not p.warning]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.items if p.warning]


def join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)


class Reader:
    """Reads typed fields from one mapping; remembers which keys were used to report unknown ones."""

    def __init__(self, data: Any, path: str, problems: Problems):
        self.path = path
        self.problems = problems
        self.ok = isinstance(data, Mapping)
        if not self.ok:
            problems.error(path or "(top level)", f"must be a mapping, got {type_name(data)}")
        self.data: Mapping = data if self.ok else {}
        self.used: set[str] = set()

    def at(self, key: str) -> str:
        return join(self.path, key)

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = None) -> Any:
        self.used.add(key)
        return self.data.get(key, default)

    def _get(self, key: str, default: Any) -> Any:
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            if default is MISSING:
                self.problems.error(self.at(key), "is required")
            return MISSING if default is MISSING else default
        return self.data[key]

    def integer(self, key: str, default: Any = MISSING, lo: int | None = None, hi: int | None = None) -> Any:
        value = self._get(key, default)
        if value is MISSING or value is default:
            return None if value is MISSING else value
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems.error(self.at(key), f"must be an integer, got {value!r}")
            return default if default is not MISSING else None
        return self._range(key, value, lo, hi, default)

    def number(self, key: str, default: Any = MISSING, lo: float | None = None, hi: float | None = None) -> Any:
        value = self._get(key, default)
        if value is MISSING or value is default:
            return None if value is MISSING else value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.problems.error(self.at(key), f"must be a number, got {value!r}")
            return default if default is not MISSING else None
        return self._range(key, value, lo, hi, default)

    def _range(self, key: str, value: Any, lo: Any, hi: Any, default: Any) -> Any:
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f"{lo}..{hi}" if lo is not None and hi is not None else (f">= {lo}" if lo is not None else f"<= {hi}")
            self.problems.error(self.at(key), f"must be {bounds}, got {value}")
            return default if default is not MISSING else None
        return value

    def boolean(self, key: str, default: Any = False) -> Any:
        value = self._get(key, default)
        if value is MISSING or value is default:
            return None if value is MISSING else value
        if not isinstance(value, bool):
            self.problems.error(self.at(key), f"must be true or false, got {value!r}")
            return default
        return value

    def string(self, key: str, default: Any = MISSING, choices: Iterable[str] | None = None,
               upper: bool = False) -> Any:
        value = self._get(key, default)
        if value is MISSING or value is default:
            return None if value is MISSING else value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            self.problems.error(self.at(key), f"must be a non-empty string, got {value!r}")
            return default if default is not MISSING else None
        if upper:
            value = value.upper()
        if choices is not None and value not in choices:
            self.problems.error(self.at(key), f"must be one of {', '.join(choices)}, got {value!r}")
            return default if default is not MISSING else None
        return value

    def items(self, key: str, parse_item: Callable[[Any, str], Any]) -> tuple:
        """A list whose items are parsed by parse_item(value, path); a scalar counts as a list of one."""
        value = self._get(key, [])
        if value is MISSING:
            return ()
        if not isinstance(value, list):
            value = [value]
        parsed = (parse_item(item, join(self.at(key), i)) for i, item in enumerate(value))
        return tuple(p for p in parsed if p is not None)

    def mapping(self, key: str) -> Mapping:
        value = self._get(key, {})
        if value is MISSING:
            return {}
        if not isinstance(value, Mapping):
            self.problems.error(self.at(key), f"must be a mapping, got {type_name(value)}")
            return {}
        return value

    def finish(self) -> None:
        """Reports every key that no field read."""
        if not self.ok:
            return
        known = sorted(self.used)
        for key in self.data:
            if key in self.used:
                continue
            hint = difflib.get_close_matches(str(key), known, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            self.problems.error(self.at(str(key)), f"unknown key{extra}")
