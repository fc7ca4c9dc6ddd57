"""The proof of a translation: the agent's own config parser (what `hanode check-config` runs) must accept it.

Whatever the agent refuses is traced back, through the translation's provenance, to the keepalived keyword it
came from; that keyword is reported as not carried over (with the agent's message) and the file is translated
again without it, until the agent accepts the result. Nothing the agent refuses is ever claimed as carried over.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hanode.config.model import AgentConfig
from hanode.config.parse import parse_config
from hanode.config.problems import ConfigError, Problem
from hanode.migrate.keepalived import Node, Note, Parsed, Translation, translate

_LAST_STEP = re.compile(r"(\.[^.\[]+|\[\d+\])$")
_KEY = re.compile(r"\b([a-z][a-z0-9_]*)\b")


class MigrationError(Exception):
    """The agent refused something the importer cannot trace back to a keepalived keyword (an importer bug)."""


@dataclass(frozen=True)
class Validated:
    translation: Translation   # the accepted translation, with every refused keyword among its items
    config: AgentConfig        # what the agent made of it
    notes: list[Note]          # the translation's notes plus the agent's warnings, by file and line


def _candidates(path: str) -> list[str]:
    """'a.b[2].c' -> ['a.b[2].c', 'a.b[2]', 'a.b', 'a']."""
    out = [path]
    while True:
        shorter = _LAST_STEP.sub("", path)
        if shorter == path or not shorter:
            return out
        out.append(shorter)
        path = shorter


def attribute(problem: Problem, provenance: dict[str, list[tuple[Node, str]]]) -> list[tuple[Node, str]]:
    """The keywords a problem of the agent comes from: the nearest field on its path that a keyword produced, else
    a sibling field its message names (e.g. 'smtp_server: is required when notification_email is set')."""
    for candidate in _candidates(problem.path):
        if candidate in provenance:
            return provenance[candidate]
    parent = _LAST_STEP.sub("", problem.path) if _LAST_STEP.search(problem.path) else ""
    for word in _KEY.findall(problem.message):
        sibling = f"{parent}.{word}" if parent else word
        if sibling in provenance:
            return provenance[sibling]
    return []


def _reason(problem: Problem) -> str:
    return f"hanode check-config refuses it: {problem.path}: {problem.message}"


def validate(parsed: Parsed, *, default_router_id: str = "hanode", max_passes: int = 64) -> Validated:
    """Translates until the agent accepts; MigrationError when a refusal cannot be traced to a keyword."""
    exclude: dict[int, str] = {}
    for _pass in range(max_passes):
        result = translate(parsed, exclude)
        try:
            config, problems = parse_config(result.config, default_router_id=default_router_id)
        except ConfigError as exc:
            before = len(exclude)
            for problem in exc.problems:
                for node, _label in attribute(problem, result.provenance):
                    exclude.setdefault(node.seq, _reason(problem))
            if len(exclude) == before:
                raise MigrationError("the agent refuses the translation and the importer cannot tell which keyword "
                                     "caused it:\n" + "\n".join(str(p) for p in exc.problems)) from None
            continue
        return Validated(result, config, _merge_notes(result, problems.warnings, parsed))
    raise MigrationError(f"the agent still refuses the translation after {max_passes} passes")


def _merge_notes(result: Translation, warnings: list[Problem], parsed: Parsed) -> list[Note]:
    notes = list(result.notes)
    fallback = parsed.nodes[0].file if parsed.nodes else "keepalived.conf"
    for problem in warnings:
        sources = attribute(problem, result.provenance)
        message = f"hanode check-config warns: {problem.path}: {problem.message}"
        if sources:
            node, label = sources[0]
            notes.append(Note(node.file, node.line, label, message))
        else:
            notes.append(Note(fallback, 0, problem.path, message))
    return sorted(notes, key=lambda n: (n.file, n.line))
