"""The nftables backend's table layout (pure): names, the bookkeeping kept per service, and the structure
script (`nft -f`): tables, the chain and maps of a new service, the lvs_timeouts policies. nft.py says how the
whole backend works."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from hanode.lvs.kernel import DestKey, Entry, Service, ServiceKey
from hanode.lvs.plan import AddService, Op
from hanode.lvs.slots import SlotTable

TABLE = "hanode"
JHASH_SEED = 0x68616E6F  # "hano": fixed, so a reconcile never reshuffles sh/dh clients by itself
FAMILIES = {4: "ip", 6: "ip6"}
SCHEDULERS = ("rr", "wrr", "sh", "dh")


class NftError(RuntimeError):
    pass


def chain_name(key: ServiceKey) -> str:
    return f"svc_{key.protocol.lower()}_{key.address.replace(':', '-')}_{key.port}"


def family_types(family: int) -> tuple[str, str]:
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


def svc_elem(key: ServiceKey) -> str:
    return f"{key.address} . {key.protocol.lower()} . {key.port}"


# ----- the structure script: tables, and the chain and maps of a new service ---------------------------------

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
    addr_type, fam = family_types(family)
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
    _addr_type, fam = family_types(family)
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
    addr_type, fam = family_types(key.family)
    t = f"{fam} {TABLE}"
    chain = chain_name(key)
    proto = key.protocol.lower()
    script.add(f"add chain {t} {chain}")
    script.add(f"add map {t} w_{chain} {{ type {addr_type} . inet_service : mark; }}")
    script.add(f"add map {t} d_{chain} {{ typeof numgen inc mod 1 : {fam} daddr . {proto} dport; flags interval; }}")
    script.add(f"add rule {t} {chain} counter comment \"{service.scheduler}\"")
    script.add(f"add element {t} nodest {{ {svc_elem(key)} }}")
    script.add(f"add element {t} services {{ {svc_elem(key)} : jump {chain} }}")
