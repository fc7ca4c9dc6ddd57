"""Reading `nft -j list table` back (pure; the backend reads its table over netlink, nft_read.py, and tests
read `nft -j` with this to compare): the services and weights, the slot maps, rules and @nodest the
backend keeps its bookkeeping from, and the checks that send a damaged service to be rebuilt (see nft.py)."""

from __future__ import annotations

import functools
import logging

from hanode.lvs.kernel import canonical_address, Dest, DestKey, Entry, KernelState, Service, ServiceKey
from hanode.lvs.nft_layout import FAMILIES, SCHEDULERS, TABLE, NftError, Slots
from hanode.lvs.slots import SlotError, SlotTable, slot_count

log = logging.getLogger("hanode.lvs")

_canonical = functools.lru_cache(maxsize=1 << 16)(canonical_address)     # a dump of 10,000 stays fast


def _index(doc: dict) -> tuple[dict[str, list], dict[str, list[dict]]]:
    sets: dict[str, list] = {}
    rules: dict[str, list[dict]] = {}
    for item in doc.get("nftables", []):
        for kind in ("map", "set"):
            if kind in item:
                sets[item[kind]["name"]] = item[kind].get("elem", [])
        if "rule" in item:
            rules.setdefault(item["rule"]["chain"], []).append(item["rule"])
    return sets, rules


# nft prints a protocol by number where /etc/protocols is missing (minimal hosts without netbase).
_PROTOCOL_NUMBERS = {"6": "tcp", "17": "udp", "132": "sctp"}


def _protocol(value) -> str:
    return _PROTOCOL_NUMBERS.get(str(value), str(value))


def _services(sets: dict[str, list], family: int) -> list[tuple[ServiceKey, str]]:
    out = []
    for key_expr, verdict in sets.get("services", []):
        address, proto, port = key_expr["concat"]
        out.append((ServiceKey.for_address(family, _protocol(proto), str(address), int(port)), verdict["jump"]["target"]))
    return out


def parse_table(doc: dict, family: int) -> KernelState:
    """Services and the weights of their destinations, from the w_ maps."""
    sets, rules = _index(doc)
    state: KernelState = {}
    for key, chain in _services(sets, family):
        scheduler = next((r.get("comment") for r in rules.get(chain, []) if r.get("comment") in SCHEDULERS), None)
        if scheduler is None:
            raise NftError(f"table {FAMILIES[family]} {TABLE}: chain {chain} has no scheduler rule (edited by hand?)")
        dests = {}
        for dkey, weight in sets.get(f"w_{chain}", []):
            daddr, dport = dkey["concat"]
            dk = DestKey(_canonical(str(daddr)), int(dport))
            dests[dk] = Dest(dk, int(weight), "NAT")
        state[key] = Entry(Service(key, scheduler).normalized(), dests)
    return state


def parse_slots(doc: dict, family: int, weights: KernelState | None = None) -> dict[ServiceKey, Slots]:
    """Per service: its slot map as a SlotTable (None when it is not one clean space), its rule's scheduler,
    modulus and handle (None when the chain does not hold exactly one rule hanode writes), @nodest.
    `weights` (parse_table's result) lends its DestKey objects, so a dump holds one per destination."""
    sets, rules = _index(doc)
    nodest = set()
    for elem in sets.get("nodest", []):
        address, proto, port = elem["concat"]
        nodest.add(ServiceKey.for_address(family, _protocol(proto), str(address), int(port)))
    out = {}
    for key, chain in _services(sets, family):
        known = weights[key].dests if weights and key in weights else {}
        runs = []
        for slot_expr, dest_expr in sets.get(f"d_{chain}", []):
            first, last = slot_expr["range"] if isinstance(slot_expr, dict) else (slot_expr, slot_expr)
            daddr, dport = dest_expr["concat"]
            dk = DestKey(_canonical(str(daddr)), int(dport))
            dest = known.get(dk)
            runs.append((int(first), int(last), dest.key if dest is not None else dk))
        try:
            table: SlotTable | None = SlotTable.from_runs(runs)
        except SlotError as exc:
            log.warning("nftables: slot map d_%s is damaged (%s); it is rebuilt at the next change", chain, exc)
            table = None
        chain_rules = rules.get(chain, [])
        rule = _rule_of(chain_rules[0]) if len(chain_rules) == 1 else None
        handle = chain_rules[0].get("handle") if rule is not None else None
        out[key] = Slots(table, rule, handle, key in nodest)
    return out


def _rule_of(rule: dict) -> tuple[str, int] | None:
    """(scheduler, modulus) of a rule hanode wrote; None for anything else."""
    scheduler = rule.get("comment")
    if scheduler not in SCHEDULERS:
        return None
    exprs = rule.get("expr", [])
    if len(exprs) == 1 and "counter" in exprs[0]:
        return scheduler, 0
    for expr in exprs:
        if "dnat" in expr:
            selector = expr["dnat"].get("addr", {}).get("map", {}).get("key", {})
            found = selector.get("numgen") or selector.get("jhash")
            if isinstance(found, dict) and isinstance(found.get("mod"), int):
                return scheduler, found["mod"]
    return None


def check_slots(state: KernelState, slots: dict[ServiceKey, Slots]) -> KernelState:
    """The weights as the planner must see them: -1 for a destination whose slots do not match its weight,
    and for every destination of a service whose slot map, rule or @nodest entry is damaged (its slot
    table is then dropped: the next change flushes and rebuilds it). Records the orphans."""
    out: KernelState = {}
    for key, (service, dests) in state.items():
        info = slots[key]
        table = info.table
        problem = _service_problem(service, info)
        if problem:
            log.warning("nftables: %s %s; it is rewritten at the next reconcile", key, problem)
            info.table = None
            out[key] = Entry(service, {dk: d._replace(weight=-1) for dk, d in dests.items()})
            continue
        counts = table.counts()
        info.orphans = {dk for dk in counts if dk not in dests}
        fixed = {}
        for dk, dest in dests.items():
            if counts.get(dk, 0) != slot_count(service.scheduler, dest.weight):
                dest = dest._replace(weight=-1)
            fixed[dk] = dest
        out[key] = Entry(service, fixed)
    return out


def _service_problem(service: Service, info: Slots) -> str | None:
    if info.table is None:
        return "has a damaged slot map"
    if info.rule is None:
        return "has no single rule of hanode's"
    if info.rule != (service.scheduler, info.table.size):
        return f"has a rule for {info.rule[1]} slots, its map holds {info.table.size}"
    if info.nodest != (info.table.size == 0):
        return "is in @nodest with slots" if info.nodest else "has no slot and is missing from @nodest"
    return None


def state_of(docs: list[tuple[int, dict]]) -> tuple[KernelState, dict[ServiceKey, Slots]]:
    """The kernel state and the backend's bookkeeping from each family's `nft -j list table` document (the
    backend itself reads the table over netlink, nft_read.py; tests compare both)."""
    state: KernelState = {}
    slots: dict[ServiceKey, Slots] = {}
    for family, doc in docs:
        weights = parse_table(doc, family)
        found = parse_slots(doc, family, weights)
        state.update(check_slots(weights, found))
        slots.update(found)
    return state, slots
