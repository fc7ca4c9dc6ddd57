"""nftables backend: IPVS-like NAT load balancing with DNAT, in tables hanode owns (`ip hanode`, `ip6 hanode`).

Layout of one family's table (everything in it belongs to hanode; nothing outside it is touched):

    map services  { type ipv4_addr . inet_proto . inet_service : verdict }   VIP . proto . port -> jump svc_*
    set nodest    { type ipv4_addr . inet_proto . inet_service }             services with nothing to schedule
    chain prerouting / output  (nat, dstnat)    ip daddr . meta l4proto . th dport vmap @services
    chain input / forward      (filter)         ... @nodest reject   (IPVS answers ICMP port unreachable too)
    per service (chain svc_<proto>_<addr>_<port>):
      map w_<chain>  { type ipv4_addr . inet_service : mark }   every destination and its weight (incl. 0)
      map d_<chain>  { typeof numgen ... : ip daddr . tcp dport; flags interval }  slot ranges -> destination
      chain <chain>: one rule, commented with the scheduler:
         rr   meta l4proto tcp dnat ip to numgen inc mod N map @d_...       one slot per destination of weight > 0
         wrr  the same with `weight` slots per destination
         sh   dnat ip to jhash ip saddr mod N seed S map @d_...            weighted, like IPVS sh
         dh   dnat ip to jhash ip daddr mod N seed S map @d_...

Only NAT is possible (validate.py refuses the rest). Replies must come back through the director: the real
servers route via it (their default gateway), exactly as keepalived/IPVS NAT needs; no SNAT/masquerade is
added, so real servers see the client's address. Conntrack keeps established connections on the
destination chosen for their first packet, so rebuilding a slot map (a weight change) never moves them.

dump() rebuilds the kernel-shaped state from `nft -j list table`; apply(ops) writes one `nft -f -` script:
one transaction per reconcile, all or nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Sequence

from hanode.lvs.kernel import canonical_address, Dest, DestKey, Entry, KernelState, Service, ServiceKey
from hanode.lvs.plan import AddDest, AddService, DelDest, DelService, EditDest, EditService, Op, apply_ops

log = logging.getLogger("hanode.lvs")

TABLE = "hanode"
JHASH_SEED = 0x68616E6F  # "hano": fixed, so a reconcile never reshuffles sh/dh clients by itself
FAMILIES = {4: "ip", 6: "ip6"}
SCHEDULERS = ("rr", "wrr", "sh", "dh")


class NftError(RuntimeError):
    pass


def chain_name(key: ServiceKey) -> str:
    return f"svc_{key.protocol.lower()}_{key.address.replace(':', '-')}_{key.port}"


def _types(family: int) -> tuple[str, str]:
    return ("ipv4_addr", "ip") if family == 4 else ("ipv6_addr", "ip6")


def _slots(service: Service, dests: dict[DestKey, Dest]) -> list[tuple[int, int, DestKey]]:
    """(first, last, dest) slot ranges for the scheduler; empty when nothing can be scheduled."""
    ranges = []
    start = 0
    for dk in sorted(dests):
        weight = dests[dk].weight
        if weight <= 0:
            continue
        size = 1 if service.scheduler == "rr" else weight
        ranges.append((start, start + size - 1, dk))
        start += size
    return ranges


class Script:
    """Builds one nft transaction."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        self.lines.append(line)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _svc_elem(key: ServiceKey) -> str:
    return f"{key.address} . {key.protocol.lower()} . {key.port}"


def _dest_elem(dk: DestKey) -> str:
    return f"{dk.address} . {dk.port}"


class NftBackend:
    name = "nftables"
    exclusive = True

    def __init__(self, netns: str | None = None, nft: str = "nft"):
        self.prefix = ["ip", "netns", "exec", netns] if netns else []
        self.nft = nft
        self.state: KernelState | None = None
        self.tables: set[int] = set()        # families whose table exists

    async def open(self) -> None:
        out, err, rc = await self._run(["--version"])
        if rc != 0:
            raise NftError(f"nft is not usable: {err.strip() or out.strip()}")

    async def close(self) -> None:
        pass

    async def _run(self, args: list[str], stdin: str | None = None) -> tuple[str, str, int]:
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.prefix, self.nft, *args, stdin=asyncio.subprocess.PIPE if stdin is not None else None,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        except OSError as exc:
            raise NftError(f"cannot run {self.nft}: {exc}") from exc
        out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
        return out.decode(errors="replace"), err.decode(errors="replace"), proc.returncode

    # ----- dump ----------------------------------------------------------------------------------

    async def dump(self) -> KernelState:
        state: KernelState = {}
        self.tables = set()
        for family, fam in FAMILIES.items():
            out, err, rc = await self._run(["-j", "list", "table", fam, TABLE])
            if rc != 0:
                if "No such file or directory" in err:
                    continue
                raise NftError(f"nft list table {fam} {TABLE}: {err.strip()}")
            self.tables.add(family)
            state.update(parse_table(json.loads(out), family))
        self.state = state
        return state

    # ----- apply ---------------------------------------------------------------------------------

    async def apply(self, ops: Sequence[Op]) -> list[str]:
        if not ops:
            return []
        if self.state is None:
            await self.dump()
        before = self.state
        after = apply_ops(before, list(ops))
        script = render_ops(ops, before, after, self.tables)
        out, err, rc = await self._run(["-f", "-"], script.text())
        if rc != 0:
            self.state = None
            return [f"nft transaction of {len(ops)} ops failed: {err.strip()}"]
        self.tables |= {op.service.key.family for op in ops if isinstance(op, AddService)}
        self.state = after
        return []

    async def release(self) -> None:
        """Deletes hanode's tables once no service is left in them."""
        state = await self.dump()
        script = Script()
        for family in sorted(self.tables):
            if not any(k.family == family for k in state):
                script.add(f"delete table {FAMILIES[family]} {TABLE}")
        if script.lines:
            _, err, rc = await self._run(["-f", "-"], script.text())
            if rc != 0:
                raise NftError(f"cannot delete the hanode tables: {err.strip()}")
        self.tables = set()
        self.state = None


# ----- rendering (pure) -------------------------------------------------------------------------------

def render_ops(ops: Sequence[Op], before: KernelState, after: KernelState, tables: set[int]) -> Script:
    script = Script()
    for family in sorted({op.service.key.family for op in ops if isinstance(op, AddService)} - tables):
        _render_table(script, family)
    touched: dict[ServiceKey, bool] = {}    # service -> its slot map must be rebuilt
    for op in ops:
        if isinstance(op, AddService):
            _render_add_service(script, op.service)
            touched[op.service.key] = True
        elif isinstance(op, EditService):
            touched[op.service.key] = True
        elif isinstance(op, (AddDest, EditDest, DelDest)):
            key = op.service
            if key in after:  # dests of a deleted service go with it
                _render_weight(script, key, op, key in before and _dk(op) in before[key].dests)
                touched.setdefault(key, False)
                touched[key] = touched[key] or _changes_slots(op, after[key].service)
    for key, rebuild in touched.items():
        if rebuild and key in after:
            _render_slots(script, after[key], key in before and not _slots(*before[key]))
    for op in ops:
        if isinstance(op, DelService) and op.key in before:
            _render_del_service(script, before[op.key])
    return script


def _dk(op: Op) -> DestKey:
    return op.dest if isinstance(op, DelDest) else op.dest.key


def _changes_slots(op: Op, service: Service) -> bool:
    if isinstance(op, EditDest) and service.scheduler == "rr":
        return (op.before.weight > 0) != (op.dest.weight > 0)
    return True


def _render_table(script: Script, family: int) -> None:
    addr_type, fam = _types(family)
    t = f"{fam} {TABLE}"
    script.add(f"add table {t}")
    script.add(f"add map {t} services {{ type {addr_type} . inet_proto . inet_service : verdict; }}")
    script.add(f"add set {t} nodest {{ type {addr_type} . inet_proto . inet_service; }}")
    script.add(f"add chain {t} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}")
    script.add(f"add chain {t} output {{ type nat hook output priority -100; policy accept; }}")
    script.add(f"add chain {t} input {{ type filter hook input priority filter; policy accept; }}")
    script.add(f"add chain {t} forward {{ type filter hook forward priority filter; policy accept; }}")
    lookup = f"{fam} daddr . meta l4proto . th dport"
    for chain in ("prerouting", "output"):
        script.add(f"add rule {t} {chain} {lookup} vmap @services")
    for chain in ("input", "forward"):
        script.add(f"add rule {t} {chain} {lookup} @nodest reject")


def _render_add_service(script: Script, service: Service) -> None:
    key = service.key
    addr_type, fam = _types(key.family)
    t = f"{fam} {TABLE}"
    chain = chain_name(key)
    proto = key.protocol.lower()
    script.add(f"add chain {t} {chain}")
    script.add(f"add map {t} w_{chain} {{ type {addr_type} . inet_service : mark; }}")
    script.add(f"add map {t} d_{chain} {{ typeof numgen inc mod 1 : {fam} daddr . {proto} dport; flags interval; }}")
    script.add(f"add element {t} services {{ {_svc_elem(key)} : jump {chain} }}")


def _render_weight(script: Script, key: ServiceKey, op: Op, existed: bool) -> None:
    _, fam = _types(key.family)
    target = f"{fam} {TABLE} w_{chain_name(key)}"
    dk = _dk(op)
    if existed:
        script.add(f"delete element {target} {{ {_dest_elem(dk)} }}")
    if not isinstance(op, DelDest):
        script.add(f"add element {target} {{ {_dest_elem(dk)} : {op.dest.weight} }}")


def _render_slots(script: Script, entry: Entry, was_nodest: bool) -> None:
    service, dests = entry
    key = service.key
    _, fam = _types(key.family)
    t = f"{fam} {TABLE}"
    chain = chain_name(key)
    slots = _slots(service, dests)
    script.add(f"flush chain {t} {chain}")
    script.add(f"flush map {t} d_{chain}")
    svc = _svc_elem(key)
    if slots:
        elements = ", ".join((f"{a}" if a == b else f"{a}-{b}") + f" : {_dest_elem(dk)}" for a, b, dk in slots)
        script.add(f"add element {t} d_{chain} {{ {elements} }}")
        total = slots[-1][1] + 1
        script.add(f"add rule {t} {chain} meta l4proto {key.protocol.lower()} dnat {fam} to "
                   f"{_selector(service.scheduler, fam, total)} map @d_{chain} comment \"{service.scheduler}\"")
        if was_nodest:
            script.add(f"delete element {t} nodest {{ {svc} }}")
    else:
        script.add(f"add rule {t} {chain} counter comment \"{service.scheduler}\"")
        if not was_nodest:
            script.add(f"add element {t} nodest {{ {svc} }}")


def _selector(scheduler: str, fam: str, total: int) -> str:
    if scheduler == "sh":
        return f"jhash {fam} saddr mod {total} seed {JHASH_SEED:#x}"
    if scheduler == "dh":
        return f"jhash {fam} daddr mod {total} seed {JHASH_SEED:#x}"
    return f"numgen inc mod {total}"


def _render_del_service(script: Script, entry: Entry) -> None:
    key = entry.service.key
    _, fam = _types(key.family)
    t = f"{fam} {TABLE}"
    chain = chain_name(key)
    script.add(f"delete element {t} services {{ {_svc_elem(key)} }}")
    if not _slots(*entry):
        script.add(f"delete element {t} nodest {{ {_svc_elem(key)} }}")
    script.add(f"flush chain {t} {chain}")
    script.add(f"delete chain {t} {chain}")
    script.add(f"delete map {t} d_{chain}")
    script.add(f"delete map {t} w_{chain}")


# ----- parsing `nft -j list table` (pure) ------------------------------------------------------------

def parse_table(doc: dict, family: int) -> KernelState:
    maps: dict[str, list] = {}
    rules: dict[str, list[dict]] = {}
    for item in doc.get("nftables", []):
        if "map" in item:
            maps[item["map"]["name"]] = item["map"].get("elem", [])
        elif "rule" in item:
            rules.setdefault(item["rule"]["chain"], []).append(item["rule"])
    state: KernelState = {}
    for key_expr, verdict in maps.get("services", []):
        address, proto, port = key_expr["concat"]
        chain = verdict["jump"]["target"]
        key = ServiceKey.for_address(family, str(proto), str(address), int(port))
        scheduler = next((r.get("comment") for r in rules.get(chain, []) if r.get("comment") in SCHEDULERS), None)
        if scheduler is None:
            raise NftError(f"table {FAMILIES[family]} {TABLE}: chain {chain} has no scheduler rule (edited by hand?)")
        dests = {}
        for dkey, weight in maps.get(f"w_{chain}", []):
            daddr, dport = dkey["concat"]
            dk = DestKey(canonical_address(str(daddr)), int(dport))
            dests[dk] = Dest(dk, int(weight), "NAT")
        state[key] = Entry(Service(key, scheduler).normalized(), dests)
    return state
