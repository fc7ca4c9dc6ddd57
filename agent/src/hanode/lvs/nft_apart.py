"""Reading `nft -j list table` in a short-lived helper process (the nftables backend's dump of a large table).

The JSON document of a table of 8,000 destinations is ~10x the kernel state made from it; parsed in the checker,
it left that process ~11 MB larger for good (pymalloc arenas kept part-used by the objects made meanwhile;
docs/benchmarks.md, "Checker memory"). Parsed in `python -m hanode.lvs.nft_apart`, which gets the documents'
text on stdin and answers the result pickled on stdout, the checker only allocates the result, as it unpickles
it. (Not a fork of the checker: other threads run there, asyncio's executor.) When the helper cannot run or
fails in another way than the parse itself, the text is parsed in this process as before."""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import sys
from typing import Any

from hanode.lvs.kernel import KernelState, ServiceKey
from hanode.lvs.nft_layout import Slots
from hanode.lvs.nft_parse import check_slots, parse_slots, parse_table

log = logging.getLogger("hanode.lvs")


def state_of(docs: list[tuple[int, dict]]) -> tuple[KernelState, dict[ServiceKey, Slots]]:
    """The kernel state and the backend's bookkeeping from each family's `nft -j list table` document."""
    state: KernelState = {}
    slots: dict[ServiceKey, Slots] = {}
    for family, doc in docs:
        weights = parse_table(doc, family)
        found = parse_slots(doc, family, weights)
        state.update(check_slots(weights, found))
        slots.update(found)
    return state, slots


async def parsed_apart(texts: list[tuple[int, str]]) -> Any:
    """state_of([(family, json.loads(text)) ...]) for `texts` [(family, text) ...], done in a helper
    process; the parse's own exception (ValueError, NftError) is raised here as it would be in this process."""
    try:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "hanode.lvs.nft_apart",
                                                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        data, _err = await proc.communicate(pickle.dumps(texts, protocol=pickle.HIGHEST_PROTOCOL))
        kind, value = pickle.loads(data) if proc.returncode == 0 and data else ("failed", proc.returncode)
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        kind, value = "failed", exc
    if kind == "ok":
        return value
    if kind == "error":
        raise value
    log.warning("the nft dump's helper process failed (%s): parsing it here", value)
    return parsed_here(texts)


def parsed_here(texts: list[tuple[int, str]]) -> Any:
    return state_of([(family, json.loads(text)) for family, text in texts])


def main() -> int:
    texts = pickle.loads(sys.stdin.buffer.read())
    try:
        result: tuple[str, Any] = ("ok", parsed_here(texts))
    except Exception as exc:  # noqa: BLE001 - raised again in the checker
        result = ("error", exc)
    sys.stdout.buffer.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    return 0


if __name__ == "__main__":
    sys.exit(main())
