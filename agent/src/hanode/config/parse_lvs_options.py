"""The IPVS options of a virtual server, real server and sorry server, named as keepalived's keywords:

    virtual server: hashed, flag-1, flag-2, flag-3, sh-port, sh-fallback, mh-port, mh-fallback (true/false),
                    persistence_engine: sip, tunnel_type / tunnel_port / tunnel_csum (lb_kind TUN),
                    ha_suspend (true/false: checks wait while no address of the service is on this host)
    real server:    lvs_method: NAT|DR|TUN, tunnel_type / tunnel_port / tunnel_csum, uthreshold, lthreshold
    sorry_server:   lvs_method (keepalived: sorry_server_lvs_method), tunnel_type / tunnel_port / tunnel_csum
    top level:      lvs_timeouts: {tcp: 7200, tcpfin: 120, udp: 300}   (seconds; nftables: conntrack timeouts)

keepalived writes the tunnel options after the method (`lvs_method TUN type gue port 6080 csum`); here they are
tunnel_type (ipip, gue, gre), tunnel_port (gue's port, required with gue and only there) and tunnel_csum
(nocsum, csum, remcsum; ipip takes none, gre no remcsum), checked as keepalived's parser checks them.
"""

from __future__ import annotations

from hanode.config.problems import Reader
from hanode.lvs.kernel import SCHED_FLAGS, TUN_CSUM, TUN_TYPES
from hanode.lvs.model import LB_KINDS, Tunnel

PERSISTENCE_ENGINES = ("sip",)        # the only IPVS persistence engine in Linux
LVS_MAX_TIMEOUT_S = 86400 * 31        # keepalived's LVS_MAX_TIMEOUT
_SCHED_OWNER = {"sh-port": "sh", "sh-fallback": "sh", "mh-port": "mh", "mh-fallback": "mh"}


def tunnel(reader: Reader, method: str | None) -> Tunnel | None:
    """tunnel_type / tunnel_port / tunnel_csum, or None when none is given."""
    if not any(reader.has(key) for key in ("tunnel_type", "tunnel_port", "tunnel_csum")):
        return None
    kind = reader.string("tunnel_type", "ipip", tuple(TUN_TYPES), upper=False)
    port = reader.integer("tunnel_port", 0, 1, 65535)
    csum = reader.string("tunnel_csum", "nocsum", tuple(TUN_CSUM), upper=False)
    if method is not None and method != "TUN":
        first = next(key for key in ("tunnel_type", "tunnel_port", "tunnel_csum") if reader.has(key))
        reader.problems.error(reader.at(first), f"applies to lvs_method TUN only, not {method}")
    if (kind == "gue") != bool(port):
        reader.problems.error(reader.at("tunnel_port"), "is required with tunnel_type gue and allowed only there "
                                                        "(keepalived: 'gue tunnels require port')")
    if kind == "ipip" and csum != "nocsum":
        reader.problems.error(reader.at("tunnel_csum"), "ipip tunnels have no checksum option")
    if kind == "gre" and csum == "remcsum":
        reader.problems.error(reader.at("tunnel_csum"), "gre tunnels have no remote checksum option")
    return Tunnel(kind or "ipip", port or 0, csum or "nocsum")


def method(reader: Reader, key: str = "lvs_method") -> str | None:
    return reader.string(key, None, LB_KINDS, upper=True)


def virtual_server_options(reader: Reader, lb_algo: str | None) -> dict:
    """The virtual server's scheduler flags, persistence engine and ha_suspend."""
    flags = []
    for name in SCHED_FLAGS:
        if not reader.boolean(name, False):
            continue
        owner = _SCHED_OWNER.get(name)
        if owner is not None and lb_algo != owner:
            reader.problems.error(reader.at(name), f"applies to lb_algo {owner} only, not {lb_algo} "
                                                   "(keepalived ignores it then)")
            continue
        flags.append(name)
    if reader.boolean("hashed", False):
        reader.problems.warn(reader.at("hashed"), "has no effect: IPVS hashes every service itself (keepalived "
                                                  "2.2.7 ignores it too)")
    return {"sched_flags": tuple(flags), "ha_suspend": bool(reader.boolean("ha_suspend", False)),
            "persistence_engine": reader.string("persistence_engine", None, PERSISTENCE_ENGINES, upper=False)}


def thresholds(reader: Reader) -> dict:
    upper = reader.integer("uthreshold", 0, 0, 2**32 - 1)
    lower = reader.integer("lthreshold", 0, 0, 2**32 - 1)
    if upper is not None and lower is not None and lower > upper:
        reader.problems.error(reader.at("lthreshold"), f"{lower} is above uthreshold {upper or '(none)'}: the "
                                                       "kernel refuses a lower threshold above the upper one")
    return {"uthreshold": upper or 0, "lthreshold": lower or 0}


def lvs_timeouts(reader: Reader) -> tuple[int | None, int | None, int | None] | None:
    if not reader.has("lvs_timeouts"):
        reader.used.add("lvs_timeouts")
        return None
    sub = Reader(reader.mapping("lvs_timeouts"), reader.at("lvs_timeouts"), reader.problems)
    values = tuple(sub.integer(key, None, 1, LVS_MAX_TIMEOUT_S) for key in ("tcp", "tcpfin", "udp"))
    sub.finish()
    if not any(values):
        reader.problems.error(reader.at("lvs_timeouts"), "give at least one of tcp, tcpfin, udp (seconds)")
        return None
    return values
