"""The nftables backend's netlink batch (pure): per-destination weights and slots, scheduling rules and removed
services, as one nftnl.Batch (see nft.py)."""

from __future__ import annotations

from typing import Mapping, Sequence

from hanode.lvs import nftnl
from hanode.lvs.kernel import Dest, DestKey, Entry, ServiceKey
from hanode.lvs.nft_layout import JHASH_SEED, TABLE, Slots, chain_name
from hanode.lvs.plan import AddService, DelDest, DelService, EditService, Op
from hanode.lvs.slots import SlotTable, slot_count


def render_batch(batch: nftnl.Batch, ops: Sequence[Op], before: Mapping[ServiceKey, Entry],
                 after: Mapping[ServiceKey, Entry],
                 slots: dict[ServiceKey, Slots]) -> dict[tuple[int, str], ServiceKey]:
    """Adds to `batch` everything `ops` change per destination, updating `slots` (the bookkeeping the
    kernel will hold once the batch commits). Returns the services whose rule is rewritten, by
    (family, chain), for their handles."""
    touched: dict[ServiceKey, set[DestKey]] = {}
    rebuild: set[ServiceKey] = set()
    deleted: list[ServiceKey] = []
    for op in ops:
        if isinstance(op, DelService):
            if op.key in before:
                deleted.append(op.key)
        elif isinstance(op, (AddService, EditService)):
            touched.setdefault(op.service.key, set())
            if isinstance(op, EditService) and op.service.scheduler != op.before.scheduler:
                rebuild.add(op.service.key)
        elif op.service in after:                      # dests of a deleted service go with it
            touched.setdefault(op.service, set()).add(op.dest if isinstance(op, DelDest) else op.dest.key)
    parts = _Parts()
    rules: dict[tuple[int, str], ServiceKey] = {}
    for key, dks in touched.items():
        if key not in slots:                          # created by the structure script just now
            slots[key] = Slots(SlotTable(), (after[key].service.scheduler, 0), None, True)
        info = slots[key]
        _render_weights(parts, key, dks, before[key].dests if key in before else {}, after[key].dests)
        _render_slots(parts, key, dks, after[key], info, key in rebuild)
        if _render_rule(parts, key, after[key].service.scheduler, info):
            rules[key.family, chain_name(key)] = key
    parts.emit(batch)
    for key in deleted:
        _render_del_service(batch, key, slots.pop(key, None))
    return rules


class _Parts:
    """The messages of a batch in the order the kernel needs: element deletions, element additions, rules
    (removed services come last)."""

    def __init__(self) -> None:
        self.steps: dict[str, list] = {"del": [], "add": [], "rule": []}

    def elements(self, kind: str, family: int, set_name: str, elements: list[bytes], what: str) -> None:
        if elements:
            name = "delsetelem" if kind == "del" else "newsetelem"
            self.steps[kind].append(lambda b: b.elements(name, family, TABLE, set_name, elements, what))

    def add(self, kind: str, step) -> None:
        self.steps[kind].append(step)

    def emit(self, batch: nftnl.Batch) -> None:
        for kind in ("del", "add", "rule"):
            for step in self.steps[kind]:
                step(batch)


def _render_weights(parts: _Parts, key: ServiceKey, dks: set[DestKey], was: Mapping[DestKey, Dest],
                    now: Mapping[DestKey, Dest]) -> None:
    """The weight map: a changed entry is deleted and added (the kernel refuses to overwrite map data)."""
    chain = chain_name(key)
    deletes, adds = [], []
    for dk in sorted(dks):
        old, new = was.get(dk), now.get(dk)
        if old == new:
            continue
        if old is not None:
            deletes.append(nftnl.element(nftnl.dest_value(*dk)))
        if new is not None:
            adds.append(nftnl.element(nftnl.dest_value(*dk), nftnl.weight_value(new.weight)))
    parts.elements("del", key.family, f"w_{chain}", deletes, f"delete {len(deletes)} weights of {key}")
    parts.elements("add", key.family, f"w_{chain}", adds, f"set {len(adds)} weights of {key}")


def _render_slots(parts: _Parts, key: ServiceKey, dks: set[DestKey], entry: Entry, info: Slots,
                  rebuild: bool) -> None:
    """The slot map: the SlotTable's changes for the touched destinations (and orphans), or a rebuild for a
    damaged or fragmented map, on a scheduler change and to fill an empty map with many destinations (a
    trusted empty map has no destination with slots to keep); @nodest follows emptiness."""
    family, chain = key.family, chain_name(key)
    service, dests = entry
    table = info.table
    if table is None:
        parts.add("del", lambda b: b.flush_set(family, TABLE, f"d_{chain}", f"flush the slot map of {key}"))
        table = info.table = SlotTable()
    if rebuild or table.fragmented or (table.size == 0 and len(dks) > 64):      # a bulk fill: the plain layout
        table.rebuild({dk: slot_count(service.scheduler, d.weight) for dk, d in dests.items()})
    else:
        for dk in sorted(dks | info.orphans):
            dest = dests.get(dk)
            table.set_count(dk, slot_count(service.scheduler, dest.weight) if dest is not None else 0)
    info.orphans = set()
    removed, added = table.take_changes()
    parts.elements("del", family, f"d_{chain}",
                   [e for first, last, _owner in removed for e in nftnl.run_elements(first, last, None)],
                   f"delete {len(removed)} slot ranges of {key}")
    parts.elements("add", family, f"d_{chain}",
                   [e for first, last, dk in added for e in nftnl.run_elements(first, last, nftnl.dest_value(*dk))],
                   f"add {len(added)} slot ranges of {key}")
    empty = table.size == 0
    if info.nodest != empty:
        elem = [nftnl.element(nftnl.service_value(key.address, key.protocol, key.port))]
        parts.elements("add" if empty else "del", family, "nodest", elem,
                       f"{'add' if empty else 'delete'} {key} {'to' if empty else 'from'} @nodest")
        info.nodest = empty


def _render_rule(parts: _Parts, key: ServiceKey, scheduler: str, info: Slots) -> bool:
    """The scheduling rule, when its scheduler or modulus changes: replaced in place by its handle (or the
    chain flushed and the rule appended, when the handle is unknown). True when a rule is written."""
    size = info.table.size
    if info.rule == (scheduler, size):
        return False
    family, chain = key.family, chain_name(key)
    if size:
        exprs = nftnl.lb_expressions(family, key.protocol, scheduler, size, f"d_{chain}", JHASH_SEED)
    else:
        exprs = nftnl.counter_expressions()
    handle = info.handle
    if handle is None:
        parts.add("rule", lambda b: b.flush_chain(family, TABLE, chain, f"flush chain {chain}"))
    parts.add("rule", lambda b: b.rule(family, TABLE, chain, exprs, nftnl.comment(scheduler), handle,
                                       f"rule of {key}: {scheduler} mod {size}"))
    info.rule = (scheduler, size)
    return True


def _render_del_service(batch: nftnl.Batch, key: ServiceKey, info: Slots | None) -> None:
    family = key.family
    chain = chain_name(key)
    svc = [nftnl.element(nftnl.service_value(key.address, key.protocol, key.port))]
    batch.elements("delsetelem", family, TABLE, "services", svc, f"delete {key} from @services")
    if info is None or info.nodest:
        batch.elements("delsetelem", family, TABLE, "nodest", svc, f"delete {key} from @nodest")
    batch.flush_chain(family, TABLE, chain, f"flush chain {chain}")
    batch.delete_set(family, TABLE, f"d_{chain}", f"delete map d_{chain}")
    batch.delete_set(family, TABLE, f"w_{chain}", f"delete map w_{chain}")
    batch.delete_chain(family, TABLE, chain, f"delete chain {chain}")
