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
      (no destination to schedule: the rule is `counter` and the service is in @nodest)

Only NAT is possible (validate.py refuses the rest). Replies must come back through the director: the real
servers route via it (their default gateway), exactly as keepalived/IPVS NAT needs; no SNAT/masquerade is
added, so real servers see the client's address. Conntrack keeps established connections on the
destination chosen for their first packet, so moving slots (a weight change) never moves them.

Which slots a destination owns is kept by slots.SlotTable: a weight change touches O(change) slot elements and
the rule's modulus, never the whole map. (The kernel itself still spends time linear in the size of an
interval map on every transaction that touches it: ~1.5 ms of CPU with 10,000 runs on Linux 6.18, against
~0.05 ms for the weight map, a hash. A per-slot hash map would avoid that but needs sum(weights) elements.)
apply(ops) is one netlink transaction (nftnl.Batch) on a socket the backend keeps open: weight-map and
slot-map elements, the rule replaced in place by its handle, and the removal of services. Only new tables and
the chain/maps of a new service go through an `nft -f` script first (the `nft` tool reads every element of the
ruleset before it changes any, ~100 ms with 10,000).
dump() rebuilds the kernel-shaped state from `nft -j list table`: weights from the w_ maps; the slot maps,
rule handles and moduli for the backend's own bookkeeping. A destination whose slots do not match its weight
is reported with weight -1 (no desired weight), so the next plan sets it again; a service whose slot map is
not a clean 0..N-1 space (or whose modulus or @nodest entry disagrees) reports -1 for all its destinations
and has its slot map flushed and rebuilt by that change. Slots whose destination is missing from the weight
map (removed by hand) are taken back by an AddDest of that destination, or dropped at the next change of
the service.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from hanode.lvs import nftnl
from hanode.lvs.kernel import canonical_address, Dest, DestKey, Entry, KernelState, Service, ServiceKey
from hanode.lvs.plan import AddService, DelDest, DelService, EditService, Op, apply_ops
from hanode.lvs.slots import SlotError, SlotTable, slot_count

log = logging.getLogger("hanode.lvs")

TABLE = "hanode"
JHASH_SEED = 0x68616E6F  # "hano": fixed, so a reconcile never reshuffles sh/dh clients by itself
FAMILIES = {4: "ip", 6: "ip6"}
SCHEDULERS = ("rr", "wrr", "sh", "dh")
NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33
REPLY_TIMEOUT_S = 5           # the kernel answers while send() runs: this only guards against a bug


class NftError(RuntimeError):
    pass


def chain_name(key: ServiceKey) -> str:
    return f"svc_{key.protocol.lower()}_{key.address.replace(':', '-')}_{key.port}"


def _types(family: int) -> tuple[str, str]:
    return ("ipv4_addr", "ip") if family == 4 else ("ipv6_addr", "ip6")


@dataclass
class Slots:
    """What the backend knows of one service's kernel objects besides its weights."""
    table: SlotTable | None              # None: not trusted; flushed and rebuilt at the next change
    rule: tuple[str, int] | None         # (scheduler, modulus) the rule encodes, modulus 0 = `counter`
    handle: int | None                   # the rule's handle; None: flush the chain and append
    nodest: bool                         # the service is in @nodest
    orphans: set[DestKey] = field(default_factory=set)      # own slots, missing from the weight map


class Script:
    """Builds one nft transaction (tables and the chain/maps of new services)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        self.lines.append(line)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _svc_elem(key: ServiceKey) -> str:
    return f"{key.address} . {key.protocol.lower()} . {key.port}"


class NftBackend:
    name = "nftables"
    exclusive = True

    def __init__(self, netns: str | None = None, nft: str = "nft"):
        self.netns = netns
        self.prefix = ["ip", "netns", "exec", netns] if netns else []
        self.nft = nft
        self.state: KernelState | None = None
        self.slots: dict[ServiceKey, Slots] = {}
        self.tables: set[int] = set()        # families whose table exists
        self.timeouts: tuple[int | None, int | None, int | None] | None = None   # lvs_timeouts: tcp, tcpfin, udp
        self.netlink: _Netlink | None = None

    async def open(self) -> None:
        out, err, rc = await self._run(["--version"])
        if rc != 0:
            raise NftError(f"nft is not usable: {err.strip() or out.strip()}")
        self.netlink = _Netlink(self.netns)

    async def close(self) -> None:
        if self.netlink is not None:
            self.netlink.close()
            self.netlink = None

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
        slots: dict[ServiceKey, Slots] = {}
        self.tables = set()
        for family, fam in FAMILIES.items():
            out, err, rc = await self._run(["-j", "list", "table", fam, TABLE])
            if rc != 0:
                if "No such file or directory" in err:
                    continue
                raise NftError(f"nft list table {fam} {TABLE}: {err.strip()}")
            self.tables.add(family)
            doc = json.loads(out)
            weights = parse_table(doc, family)
            found = parse_slots(doc, family, weights)
            state.update(check_slots(weights, found))
            slots.update(found)
        self.state, self.slots = state, slots
        return state

    # ----- apply ---------------------------------------------------------------------------------

    async def apply(self, ops: Sequence[Op]) -> list[str]:
        if not ops:
            return []
        if self.netlink is None:
            raise NftError("the nftables backend is not open")
        if self.state is None:
            await self.dump()
        before = self.state
        after = apply_ops(before, list(ops))
        self.state = None                           # until the kernel confirms: a failure means "dump again"
        script = render_structure(ops, before, self.tables, self.timeouts)
        if script.lines:
            _out, err, rc = await self._run(["-f", "-"], script.text())
            if rc != 0:
                return [f"nft transaction of {len(ops)} ops failed: {err.strip()}"]
            self.tables |= {op.service.key.family for op in ops if isinstance(op, AddService)}
        batch = nftnl.Batch(self.netlink.next_seq())
        rules = render_batch(batch, ops, before, after, self.slots)
        errors, handles = await self.netlink.transact(batch)
        if errors:
            self.slots = {}
            return errors
        for where, handle in handles.items():
            key = rules.get(where)
            if key is not None:
                self.slots[key].handle = handle
        self.state = after
        return []

    async def set_timeouts(self, tcp_s: int | None, tcpfin_s: int | None, udp_s: int | None) -> None:
        """keepalived's lvs_timeouts as conntrack timeout policies for the connections to the services (in
        every table now, and in each table made later)."""
        self.timeouts = (tcp_s, tcpfin_s, udp_s)
        await self.dump()
        script = Script()
        for family in sorted(self.tables):
            render_timeouts(script, family, self.timeouts)
        if script.lines:
            _out, err, rc = await self._run(["-f", "-"], script.text())
            if rc != 0:
                raise NftError(f"cannot set the conntrack timeouts: {err.strip()}")

    async def release(self) -> None:
        """Deletes hanode's tables once no service is left in them."""
        state = await self.dump()
        script = Script()
        for family in sorted(self.tables):
            if not any(k.family == family for k in state):
                script.add(f"delete table {FAMILIES[family]} {TABLE}")
        if script.lines:
            _out, err, rc = await self._run(["-f", "-"], script.text())
            if rc != 0:
                raise NftError(f"cannot delete the hanode tables: {err.strip()}")
        self.tables = set()
        self.state = None
        self.slots = {}


# ----- the netlink socket ------------------------------------------------------------------------------

class _Netlink:
    """A NETLINK_NETFILTER socket (in the backend's namespace) that sends one batch at a time. The kernel
    handles a batch while send() runs; every message carries NLM_F_ACK, so the socket then holds one answer
    per message (0 or an errno) plus the echoes of rewritten rules."""

    def __init__(self, netns: str | None):
        try:
            if netns:
                from pyroute2.netns import create_socket
                self.sock = create_socket(netns, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER, flags=0)
            else:
                self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
            self.sock.setblocking(False)
            self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)     # errors without a copy of the request
            self.sock.bind((0, 0))
        except OSError as exc:
            raise NftError(f"cannot open a netfilter netlink socket: {exc}") from exc
        self.sndbuf = 0
        self._buffers(4 << 20)
        self.seq = 1

    def _buffers(self, size: int) -> None:
        for force, plain in ((SO_SNDBUFFORCE, socket.SO_SNDBUF), (SO_RCVBUFFORCE, socket.SO_RCVBUF)):
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, force, size)
            except OSError:
                self.sock.setsockopt(socket.SOL_SOCKET, plain, size)
        self.sndbuf = size

    def close(self) -> None:
        self.sock.close()

    def next_seq(self) -> int:
        return self.seq

    async def transact(self, batch: nftnl.Batch) -> tuple[list[str], dict[tuple[int, str], int]]:
        """Sends the batch; returns (errors, {(family, chain): handle} of hanode's rules the kernel echoed)."""
        data = batch.finish()
        self.seq = batch.seq
        if len(data) + 4096 > self.sndbuf:
            self._buffers(2 * len(data))
        self._drain_stale()
        try:
            self.sock.send(data)
        except OSError as exc:
            return [f"nftables batch of {batch.count} messages not sent: {exc}"], {}
        pending = set(batch.what)
        errors: list[str] = []
        handles: dict[tuple[int, str], int] = {}
        loop = asyncio.get_running_loop()
        while pending:
            try:
                data = self.sock.recv(1 << 20)
            except BlockingIOError:
                try:
                    data = await asyncio.wait_for(loop.sock_recv(self.sock, 1 << 20), REPLY_TIMEOUT_S)
                except asyncio.TimeoutError:
                    return errors + [f"no answer from the kernel for {len(pending)} of {batch.count} messages"], {}
            except OSError as exc:        # ENOBUFS: answers were lost; the reconciler dumps after any error
                return errors + [f"nftables answers lost ({exc}); the kernel state is unknown"], {}
            for reply in nftnl.parse_messages(data):
                if reply.type == nftnl.NLMSG_ERROR:
                    seq = nftnl.acked_seq(reply)
                    pending.discard(seq)
                    code = nftnl.error_code(reply)
                    if code:
                        errors.append(f"{batch.what.get(seq, f'message {seq}')}: {os.strerror(code)} (errno {code})")
                elif reply.type == nftnl.nft_type("newrule"):
                    family, table, chain, handle = nftnl.rule_of(reply)
                    if table == TABLE:
                        handles[family, chain] = handle
        if errors:
            return errors + [f"nftables transaction of {batch.count} messages aborted"], {}
        return [], handles

    def _drain_stale(self) -> None:
        while True:
            try:
                self.sock.recv(1 << 20)
            except (BlockingIOError, OSError):
                return


# ----- the structure script (pure): tables, and the chain and maps of a new service -----------------------

def render_structure(ops: Sequence[Op], before: Mapping[ServiceKey, Entry], tables: set[int],
                     timeouts: tuple[int | None, int | None, int | None] | None = None) -> Script:
    """New tables (with the lvs_timeouts policies) and, per new service, its chain, maps, `services` entry
    and an empty rule (`counter`, the service in @nodest): a consistent empty service, which the netlink batch
    then fills."""
    script = Script()
    for family in sorted({op.service.key.family for op in ops if isinstance(op, AddService)} - tables):
        _render_table(script, family)
        if timeouts is not None:
            render_timeouts(script, family, timeouts)
    for op in ops:
        if isinstance(op, AddService) and op.service.key not in before:
            _render_add_service(script, op.service)
    return script


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


# keepalived's lvs_timeouts (IPVS's tcp, tcpfin, udp) as conntrack timeout policy states
TIMEOUT_STATES = {"tcp": (("established",), ("fin_wait", "close_wait", "last_ack", "time_wait")),
                  "udp": (("unreplied", "replied"),)}


def timeout_policies(timeouts: tuple[int | None, int | None, int | None]) -> dict[str, dict[str, int]]:
    """{protocol: {conntrack state: seconds}}: tcp -> established; tcpfin (IPVS: a connection after a FIN)
    -> fin_wait, close_wait, last_ack, time_wait; udp -> unreplied and replied. A value not given leaves
    its states at the kernel's defaults."""
    tcp_s, tcpfin_s, udp_s = timeouts
    out: dict[str, dict[str, int]] = {}
    for proto, values in (("tcp", (tcp_s, tcpfin_s)), ("udp", (udp_s,))):
        policy = {state: value for states, value in zip(TIMEOUT_STATES[proto], values) if value
                  for state in states}
        if policy:
            out[proto] = policy
    return out


def render_timeouts(script: Script, family: int, timeouts: tuple[int | None, int | None, int | None]) -> None:
    """ct timeout objects `lvs_tcp` / `lvs_udp` and, in nat chains that run just before hanode's own (a nat
    chain sees a connection's first packet only), `ct timeout set` for connections to a service: made again
    in one transaction, so a changed value replaces the old policy (the kernel cannot edit one in place)."""
    _addr_type, fam = _types(family)
    t = f"{fam} {TABLE}"
    for chain, hook in (("timeouts_in", "prerouting"), ("timeouts_out", "output")):
        script.add(f"add chain {t} {chain} {{ type nat hook {hook} priority -101; policy accept; }}")
        script.add(f"flush chain {t} {chain}")
    policies = timeout_policies(timeouts)
    for proto in ("tcp", "udp"):
        policy = policies.get(proto)
        if policy is None:
            continue
        body = ", ".join(f"{state}: {value}" for state, value in policy.items())
        definition = f"{{ protocol {proto}; l3proto {fam}; policy = {{ {body} }}; }}"
        script.add(f"add ct timeout {t} lvs_{proto} {definition}")
        script.add(f"delete ct timeout {t} lvs_{proto}")
        script.add(f"add ct timeout {t} lvs_{proto} {definition}")
        for chain in ("timeouts_in", "timeouts_out"):
            script.add(f"add rule {t} {chain} meta l4proto {proto} {fam} daddr . meta l4proto . th dport @services "
                       f"ct timeout set \"lvs_{proto}\"")


def _render_add_service(script: Script, service: Service) -> None:
    key = service.key
    addr_type, fam = _types(key.family)
    t = f"{fam} {TABLE}"
    chain = chain_name(key)
    proto = key.protocol.lower()
    script.add(f"add chain {t} {chain}")
    script.add(f"add map {t} w_{chain} {{ type {addr_type} . inet_service : mark; }}")
    script.add(f"add map {t} d_{chain} {{ typeof numgen inc mod 1 : {fam} daddr . {proto} dport; flags interval; }}")
    script.add(f"add rule {t} {chain} counter comment \"{service.scheduler}\"")
    script.add(f"add element {t} nodest {{ {_svc_elem(key)} }}")
    script.add(f"add element {t} services {{ {_svc_elem(key)} : jump {chain} }}")


# ----- the netlink batch (pure): weights, slots, rules, removed services ----------------------------------

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


# ----- parsing `nft -j list table` (pure) ------------------------------------------------------------

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
