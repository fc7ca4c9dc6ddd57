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

The modules: nft.py (this backend: runs `nft`, keeps the bookkeeping), nft_layout.py (names, bookkeeping, the
structure script and lvs_timeouts), nft_batch.py (the netlink batch), nft_parse.py (reading the dump back),
nft_netlink.py (the socket); all but this one and the socket are pure.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Sequence

from hanode.lvs import nftnl
from hanode.lvs.kernel import KernelState, ServiceKey
from hanode.lvs.nft_batch import render_batch
from hanode.lvs.nft_layout import (FAMILIES, TABLE, NftError, Script, Slots, chain_name, render_structure,
                                   render_timeouts, timeout_policies)
from hanode.lvs.nft_apart import parsed_apart, parsed_here
from hanode.lvs.nft_netlink import NftNetlink
from hanode.lvs.nft_parse import check_slots, parse_slots, parse_table
from hanode.lvs.plan import AddService, Op, apply_ops

__all__ = ["NftBackend", "NftError", "Script", "Slots", "chain_name", "check_slots", "parse_slots", "parse_table",
           "render_batch", "render_structure", "render_timeouts", "timeout_policies"]

log = logging.getLogger("hanode.lvs")

PARSE_APART_BYTES = 256 * 1024   # a dump's JSON larger than this (~500 destinations) is parsed in a helper process


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
        self.netlink: NftNetlink | None = None

    async def open(self) -> None:
        out, err, rc = await self._run(["--version"])
        if rc != 0:
            raise NftError(f"nft is not usable: {err.strip() or out.strip()}")
        self.netlink = NftNetlink(self.netns)

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
        texts = []
        self.tables = set()
        for family, fam in FAMILIES.items():
            out, err, rc = await self._run(["-j", "list", "table", fam, TABLE])
            if rc != 0:
                if "No such file or directory" in err:
                    continue
                raise NftError(f"nft list table {fam} {TABLE}: {err.strip()}")
            self.tables.add(family)
            texts.append((family, out))
        # the JSON parsed in a short-lived helper process when it is large (lvs/nft_apart.py: memory)
        apart = sum(len(text) for _family, text in texts) > PARSE_APART_BYTES
        state, slots = await parsed_apart(texts) if apart else parsed_here(texts)
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
