"""Strict mode and accept mode of a vrrp_instance, with keepalived 2.2.7's semantics (vrrp.c
vrrp_complete_instance):

- strict_mode (default: the top-level vrrp_strict) refuses unicast peers and an instance without VIPs (keepalived
  refuses the whole configuration); it ignores authentication, preempt_delay, and a state MASTER that is not the
  address owner (priority 255), each with a warning, as keepalived does ("... resetting");
- accept (default: true unless strict_mode; always true for the owner): when false, the agent drops traffic to
  and from the VIPs while it is MASTER (hanode.vrrp.noaccept). Strict mode with VRRP version 2 resets accept to
  false for a non-owner (RFC 3768 has no accept mode);
- preempt_delay with state MASTER is cleared with a warning, strict or not (keepalived clears it: such an
  instance would otherwise wait instead of preempting when it comes back from FAULT);
- promote_secondaries and skip_check_adv_addr (default: the top-level vrrp_skip_check_adv_addr) are carried;
- lower_prio_no_advert (default: the top-level vrrp_lower_prio_no_advert; strict mode forces it, warning when it
  was set false): a MASTER hearing a lower priority's advert does not answer with one of its own.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hanode.config.problems import Problems, Reader, join


def strict_fields(reader: Reader, fields: dict[str, Any], g: Any, path: str, problems: Problems) -> dict[str, Any]:
    """The strict/accept fields of an instance, and the fields strict mode resets (given in `fields`); g: the
    top-level defaults (parse_vrrp_net.VrrpGlobals)."""
    strict = reader.boolean("strict_mode", g.strict)
    accept = reader.boolean("accept", None)
    no_advert = reader.boolean("lower_prio_no_advert", None)
    if strict and no_advert is False:
        problems.warn(join(path, "lower_prio_no_advert"), "is forced by strict mode, as keepalived forces it (\"Strict "
                                                          "mode requires no lower priority advert\")")
    out: dict[str, Any] = {"strict_mode": strict,
                           "promote_secondaries": reader.boolean("promote_secondaries", False),
                           "skip_check_adv_addr": reader.boolean("skip_check_adv_addr", g.skip_check_adv_addr),
                           "lower_prio_no_advert": strict or (g.lower_prio_no_advert if no_advert is None
                                                              else no_advert)}
    owner = fields.get("priority") == 255
    if strict:
        _strict_resets(reader, fields, owner, path, problems, out)
    if fields.get("preempt_delay_ms") and "preempt_delay_ms" not in out and fields.get("initial_state") == "MASTER":
        problems.warn(join(path, "preempt_delay"), "is cleared with state MASTER, as keepalived clears it (\"preempt "
                                                   "delay will not work with initial state MASTER\")")
        out["preempt_delay_ms"] = 0
    auth = out.get("authentication", fields.get("authentication"))
    state = out.get("initial_state", fields.get("initial_state"))
    if auth is not None and auth.auth_type == "AH" and state == "MASTER" and not owner:
        problems.warn(join(path, "state"), "MASTER with AH authentication runs as BACKUP, as in keepalived (\"Initial "
                                           "state master is incompatible with AH\": it learns the sequence number "
                                           "from the master first)")
        out["initial_state"] = "BACKUP"
    if accept is None:
        accept = owner or not strict
    elif accept and strict and not owner and fields.get("version") == 2:
        problems.warn(join(path, "accept"), "is reset by strict_mode with VRRP version 2, as keepalived resets it "
                                            "(\"accept mode for VRRP version 2 does not comply with RFC3768\")")
        accept = False
    out["accept"] = accept or owner
    return out


def strict_net(net: Any, fields: dict[str, Any], path: str, problems: Problems) -> Any:
    """Strict mode's VMAC resets (keepalived: "cannot specify MAC address with strict mode - clearing", "xmit_base
    is incompatible with strict mode - resetting"): the RFC's MAC, adverts from the VMAC. net: InstanceNet."""
    if net.vmac is not None and net.vmac.mac:
        problems.warn(join(path, "use_vmac"), f"MAC {net.vmac.mac} is cleared by strict mode (the RFC's MAC is used), "
                                              "as keepalived clears it")
        net = replace(net, vmac=replace(net.vmac, mac=None, mac_uses_vrid=False))
    if fields.get("vmac_xmit_base"):
        problems.warn(join(path, "vmac_xmit_base"), "is reset by strict mode, as keepalived resets it")
        fields["vmac_xmit_base"] = False
    return net


def _strict_resets(reader: Reader, fields: dict[str, Any], owner: bool, path: str, problems: Problems,
                   out: dict[str, Any]) -> None:
    where = join(path, "strict_mode") if reader.has("strict_mode") else "vrrp_strict"
    if fields.get("unicast_peers"):
        problems.error(join(path, "unicast_peers"), f"not allowed with strict mode ({where}): keepalived refuses "
                                                    "the configuration (\"Unicast peers are not supported in strict "
                                                    "mode\")")
    if not fields.get("vips"):
        problems.error(join(path, "virtual_ipaddresses"), f"strict mode ({where}) needs at least one VIP, as "
                                                          "keepalived does")
    if fields.get("authentication") is not None:
        problems.warn(join(path, "authentication"), "is ignored in strict mode, as keepalived ignores it (\"Strict "
                                                    "mode does not support authentication\")")
        out["authentication"] = None
    if fields.get("initial_state") == "MASTER" and not owner:
        problems.warn(join(path, "state"), "MASTER without priority 255 runs as BACKUP in strict mode, as in "
                                           "keepalived (\"State MASTER must match being address owner\")")
        out["initial_state"] = "BACKUP"
    if fields.get("preempt_delay_ms"):
        problems.warn(join(path, "preempt_delay"), "is reset by strict mode, as keepalived resets it")
        out["preempt_delay_ms"] = 0
