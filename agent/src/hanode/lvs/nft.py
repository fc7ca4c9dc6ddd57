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
dump() reads the table back over the same netlink socket (nft_read.py: GETSETELEM / GETRULE dumps decoded
as they arrive; no `nft` process, no JSON document): weights from the w_ maps; the slot maps, rule handles and
moduli for the backend's own bookkeeping. A destination whose slots do not match its weight
is reported with weight -1 (no desired weight), so the next plan sets it again; a service whose slot map is
not a clean 0..N-1 space (or whose modulus or @nodest entry disagrees) reports -1 for all its destinations
and has its slot map flushed and rebuilt by that change. Slots whose destination is missing from the weight
map (removed by hand) are taken back by an AddDest of that destination, or dropped at the next change of
the service.

The modules: nft.py (this backend: runs `nft`, keeps the bookkeeping), nft_layout.py (names, bookkeeping, the
structure script and lvs_timeouts), nft_batch.py (the netlink batch), nft_read.py (reading the table back
over netlink), nft_parse.py (reading `nft -j list table`, for tests), nft_netlink.py (the socket); all but
this one and the socket are pure.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from typing import Sequence

from hanode.lvs import nft_read, nftnl
from hanode.lvs.kernel import KernelState, ServiceKey
from hanode.lvs.nft_batch import render_batch
from hanode.lvs.nft_layout import (FAMILIES, TABLE, NftError, Script, Slots, chain_name, render_structure,
                                   render_timeouts, timeout_policies)
from hanode.lvs.nft_netlink import NftNetlink
from hanode.lvs.nft_parse import check_slots, parse_slots, parse_table
from hanode.lvs.plan import AddService, Op, apply_ops

__all__ = ["NftBackend", "NftError", "Script", "Slots", "chain_name", "check_slots", "parse_slots", "parse_table",
           "render_batch", "render_structure", "render_timeouts", "timeout_policies"]

log = logging.getLogger("hanode.lvs")

DUMP_ATTEMPTS = 3                # a dump is done again while the ruleset's generation changes under it


class _Interrupted(Exception):
    """A netlink dump was interrupted by a change of the ruleset (NLM_F_DUMP_INTR): done again."""


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
        """The kernel's table read back over netlink (nft_read.py), each reply decoded as it arrives; done
        again when the ruleset changed meanwhile (its generation), as nft does."""
        if self.netlink is None:         # a dump of a backend that is not open (a one-off read): its own socket
            self.netlink = NftNetlink(self.netns)
            try:
                return await self.dump()
            finally:
                self.netlink.close()
                self.netlink = None
        for _attempt in range(DUMP_ATTEMPTS):
            generation = await self._generation()
            found = await self._read_tables()
            if found is not None and await self._generation() == generation:
                break
        else:
            raise NftError(f"the nftables ruleset kept changing during {DUMP_ATTEMPTS} dumps of table {TABLE}")
        tables, state, slots = found
        self.tables, self.state, self.slots = tables, state, slots
        return state

    async def _generation(self) -> int:
        got: list[int] = []
        seq = self.netlink.take_seq()
        code = await self.netlink.ask(nft_read.gen_request(seq), seq, lambda r: got.append(nft_read.gen_id(r)), False)
        if code or not got:
            raise NftError(f"cannot read the nftables generation: {os.strerror(code) if code else 'no answer'}")
        return got[0]

    async def _ask(self, request, on_reply, dump: bool = True, what: str = "") -> bool:
        """One request; False when the kernel answered ENOENT (no such table or set); raises on other errors."""
        seq = self.netlink.take_seq()
        code = await self.netlink.ask(request(seq), seq, on_reply, dump)
        if code == errno.EINTR:
            raise _Interrupted
        if code and code != errno.ENOENT:
            raise NftError(f"nftables dump of {what}: {os.strerror(code)} (errno {code})")
        return code == 0

    async def _read_tables(self) -> tuple[set[int], KernelState, dict[ServiceKey, Slots]] | None:
        """Every family's table; None when a dump was interrupted by a change of the ruleset."""
        tables: set[int] = set()
        state: KernelState = {}
        slots: dict[ServiceKey, Slots] = {}
        try:
            for family, fam in FAMILIES.items():
                where = f"table {fam} {TABLE}"
                if not await self._ask(lambda seq: nft_read.table_request(seq, family), lambda r: None, False, where):
                    continue
                tables.add(family)
                reader = nft_read.TableReader(family, self.state, self.slots)
                for set_name, on_reply in (("services", reader.add_services), ("nodest", reader.add_nodest)):
                    await self._ask(lambda seq: nft_read.elements_request(seq, family, set_name), on_reply,
                                    what=f"{where} set {set_name}")
                await self._ask(lambda seq: nft_read.rules_request(seq, family), reader.add_rule, what=f"{where} rules")
                for key, chain in reader.services:
                    reader.begin_service(key)
                    for set_name, on_reply in ((f"w_{chain}", reader.add_weights), (f"d_{chain}", reader.add_slots)):
                        await self._ask(lambda seq: nft_read.elements_request(seq, family, set_name), on_reply,
                                        what=f"{where} map {set_name}")
                    runs = reader.slot_runs()
                    await asyncio.sleep(0)       # the checks run between these steps (a few ms each at 8,000)
                    reader.end_service(key, chain, runs)
                    await asyncio.sleep(0)
                family_state, family_slots = reader.result()
                state.update(family_state)
                slots.update(family_slots)
        except _Interrupted:
            return None
        return tables, state, slots

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
