"""What each backend can express, as config problems with field paths (pure).

IPVS holds everything keepalived configures. The nftables backend implements a subset with DNAT: rr and
wrr (numgen), sh and dh (jhash), NAT forwarding only, address services only, no persistence and no
one-packet scheduling (lvs_timeouts become conntrack timeout policies: nft.py). Anything else is refused with the field and the backend it needs.
"""

from __future__ import annotations

from hanode.config.problems import Problem
from hanode.lvs.model import LvsConfig, VirtualServer

NFT_ALGOS = ("rr", "wrr", "sh", "dh")
NFT_KINDS = ("NAT",)


def _needs(what: str, backend: str, why: str | None) -> str:
    text = f"{what} needs lb_backend: ipvs ({NFT_HELP})"
    if backend == "auto":
        text += f"; lb_backend auto uses nftables here because {why or 'this kernel has no IPVS'}"
    return text


NFT_HELP = "nftables implements rr, wrr, sh, dh with lb_kind NAT"


def nft_problems(config: LvsConfig, backend: str = "nftables", why: str | None = None,
                 explicit: dict[int, set[str]] | None = None) -> list[Problem]:
    """Problems of a config for the nftables backend. `backend` is what the user wrote (nftables or auto);
    `explicit[i]` names the keys virtual server i spelled out (to tell a default from a choice)."""
    problems = []
    for i, vs in enumerate(config.virtual_servers):
        keys = (explicit or {}).get(i)
        for field, message in _vs_nft_issues(vs, keys) + _options_nft_issues(vs):
            problems.append(Problem(f"virtual_servers[{i}].{field}", _needs(message, backend, why)))
    return problems


def _options_nft_issues(vs: VirtualServer) -> list[tuple[str, str]]:
    """Per-real-server forwarding, thresholds, scheduler flags, persistence engines and fwmark group entries."""
    issues = []
    if vs.sched_flags:
        issues.append((vs.sched_flags[0], f"the IPVS scheduler flag {vs.sched_flags[0]}"))
    if vs.persistence_engine:
        issues.append(("persistence_engine", f"the {vs.persistence_engine} persistence engine"))
    if any(m.fwmark is not None for m in vs.members):
        issues.append(("group", f"group {vs.group}'s fwmark entries (nftables has no fwmark services at all)"))
    if vs.sorry_server is not None and (vs.sorry_server.lvs_method or "NAT") not in NFT_KINDS:
        issues.append(("sorry_server.lvs_method", f"{vs.sorry_server.lvs_method} forwarding"))
    for j, rs in enumerate(vs.real_servers):
        if (rs.lvs_method or "NAT") not in NFT_KINDS:
            issues.append((f"real_servers[{j}].lvs_method", f"{rs.lvs_method} forwarding"))
        if rs.uthreshold or rs.lthreshold:
            field = "uthreshold" if rs.uthreshold else "lthreshold"
            issues.append((f"real_servers[{j}].{field}", "connection thresholds (IPVS counts each destination's "
                                                         "connections; nftables DNAT does not)"))
    return issues


def _vs_nft_issues(vs: VirtualServer, keys: set[str] | None) -> list[tuple[str, str]]:
    issues = []
    if vs.lb_algo not in NFT_ALGOS:
        default = keys is not None and "lb_algo" not in keys
        issues.append(("lb_algo", f"the default lb_algo {vs.lb_algo} (keepalived's)" if default else vs.lb_algo))
    if vs.lb_kind not in NFT_KINDS:
        issues.append(("lb_kind", f"{vs.lb_kind} forwarding"))
    if vs.fwmark is not None:
        issues.append(("fwmark", "a fwmark service"))
    if vs.persistence_timeout_s:
        issues.append(("persistence_timeout", "persistence"))
    if vs.ops:
        issues.append(("ops", "one-packet scheduling"))
    return issues


def backend_problems(config: LvsConfig, backend: str, why: str | None = None,
                     explicit: dict[int, set[str]] | None = None) -> list[Problem]:
    """Problems of `config` for the backend that will run it ("ipvs" or "nftables"); `why` says why auto
    chose it. IPVS takes every valid config."""
    if backend == "ipvs":
        return []
    return nft_problems(config, config.backend, why, explicit)
