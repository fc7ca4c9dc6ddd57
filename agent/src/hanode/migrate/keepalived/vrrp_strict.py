"""Strict mode, accept mode and what keepalived 2.2.7 resets once an instance is read (vrrp.c
vrrp_complete_instance): the rows of vrrp_instance and global_defs, and finish_strict, run after the instance's
own keywords and global_defs' defaults."""

from __future__ import annotations

from typing import Any

from hanode.migrate.keepalived.model import INVALID, NO_MEANING, Node
from hanode.migrate.keepalived.table import Row, Scope, carried, value
from hanode.migrate.keepalived.translator import Translator, join

_STRICT_TEXT = ("keepalived's strict mode: no unicast peers, no authentication (dropped), no preempt_delay, "
                "state follows priority 255, no_accept unless the owner (nftables rules the agent owns)")


def _bare(key: str, setting: bool = True):
    """A keyword keepalived reads without a value (it ignores any word after it)."""
    def convert(tr: Translator, node: Node, scope: Scope) -> None:
        if node.args:
            tr.skip(node, NO_MEANING, "extra words %r are ignored by keepalived" % " ".join(node.args))
        tr.put(scope.out, key, setting, node, scope.path)
    return convert


INSTANCE_ROWS: list[Row] = [
    value("strict_mode", "flag", text=_STRICT_TEXT),
    carried("accept", "accept", _bare("accept"), "accept: true (the VIPs answer on a master that is not the owner)"),
    carried("no_accept", "accept", _bare("accept", False), "accept: false: while MASTER and not the owner, the agent drops "
            "traffic to and from its VIPs (nftables table inet hanode_noaccept; neighbour discovery passes)"),
    carried("promote_secondaries", "promote_secondaries", _bare("promote_secondaries"),
            "the agent sets net.ipv4.conf.IF.promote_secondaries=1 while it runs"),
    value("skip_check_adv_addr", "flag", text="a BACKUP does not re-check the address list of adverts from the "
          "master it already follows"),
    value("lower_prio_no_advert", "flag", text="a MASTER does not answer a lower priority's advert (strict mode "
          "forces it)"),
]

GLOBAL_ROWS: list[Row] = [
    carried("vrrp_strict", "vrrp_strict", _bare("vrrp_strict"), "strict_mode of every instance that sets none"),
    carried("vrrp_skip_check_adv_addr", "vrrp_skip_check_adv_addr", _bare("vrrp_skip_check_adv_addr"),
            "skip_check_adv_addr of every instance that sets none"),
    value("vrrp_lower_prio_no_advert", "flag", text="lower_prio_no_advert of every instance that sets none"),
]


def finish_strict(tr: Translator, out: dict[str, Any], path: str, block: Node, config: dict[str, Any]) -> None:
    """keepalived's resets, in vrrp_complete_instance's order, reported where the dropped keyword stood."""
    strict = out.get("strict_mode", config.get("vrrp_strict", False))
    owner = out.get("priority") == 255
    if strict and out.get("unicast_peers"):
        tr.skip(block, INVALID, "strict mode and unicast peers: keepalived refuses the configuration (\"Unicast "
                "peers are not supported in strict mode\"); carried over without strict mode",
                "vrrp_instance " + path.split(".", 1)[1])
        out.pop("strict_mode", None)
        if config.get("vrrp_strict"):
            out["strict_mode"] = False
            tr.record(join(path, "strict_mode"), block)
        strict = False
    if strict and out.get("state") == "MASTER" and not owner:
        _drop(tr, out, path, "state", "strict mode: state MASTER needs priority 255 (\"State MASTER must match "
                                      "being address owner\"); keepalived starts it as BACKUP")
    if strict and "authentication" in out:
        _drop(tr, out, path, "authentication", "strict mode ignores authentication (\"Strict mode does not support "
                                               "authentication. Ignoring.\"), so a strict keepalived sends none")
    if (out.get("authentication") or {}).get("auth_type") == "AH" and out.get("state") == "MASTER" and not owner:
        _drop(tr, out, path, "state", "with AH authentication keepalived starts it as BACKUP (\"Initial state master "
                                      "is incompatible with AH authentication - clearing\")")
    if out.get("nopreempt") and (out.get("state") == "MASTER" or owner):
        _drop(tr, out, path, "nopreempt", "with state MASTER keepalived clears it (\"nopreempt will not work with "
              "initial state MASTER - clearing\")" if out.get("state") == "MASTER" else
              "priority 255 always preempts: keepalived resets nopreempt")
    if "preempt_delay" in out and (out.get("state") == "MASTER" or strict or out.get("nopreempt")):
        why = ("with state MASTER keepalived clears it (\"preempt delay will not work with initial state MASTER\")"
               if out.get("state") == "MASTER" else "strict mode: keepalived resets it (\"preempt_delay is "
               "incompatible with strict mode\")" if strict else "with nopreempt keepalived resets it")
        _drop(tr, out, path, "preempt_delay", why)
    for key in ("down_timer_adverts", "garp_lower_prio_delay", "garp_lower_prio_repeat"):
        if not strict or key not in out or out[key] == (3 if key == "down_timer_adverts" else 0):
            continue
        if tr.source(join(path, key))[0] is tr.defaults.get(key, (None, None))[1]:
            del out[key]            # global_defs' default: keepalived does not apply it to a strict instance
            tr.provenance.pop(join(path, key), None)
        else:
            _drop(tr, out, path, key, "strict mode: keepalived resets it (\"... incompatible with strict mode - "
                                      "resetting\")")
    if strict and out.get("vmac_xmit_base"):
        _drop(tr, out, path, "vmac_xmit_base", "strict mode: keepalived resets it (\"xmit_base is incompatible with "
                                               "strict mode - resetting\")")
    if strict and out.get("lower_prio_no_advert") is False:
        _drop(tr, out, path, "lower_prio_no_advert", "strict mode: keepalived forces it (\"Strict mode requires no "
                                                     "lower priority advert\")")
    if strict and out.get("accept") and not owner and out.get("version", config.get("vrrp_version", 2)) == 2:
        _drop(tr, out, path, "accept", "strict mode with VRRP version 2: keepalived resets accept (\"accept mode for "
                                       "VRRP version 2 does not comply with RFC3768\"); no_accept applies")


def _drop(tr: Translator, out: dict[str, Any], path: str, key: str, why: str) -> None:
    node, label = tr.source(join(path, key))
    tr.skip(node, NO_MEANING, why, label)
    tr.provenance.pop(join(path, key), None)
    del out[key]
