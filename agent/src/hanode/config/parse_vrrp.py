"""vrrp_scripts, vrrp_instances and vrrp_sync_groups: keepalived keywords, checked with field paths."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Any, Mapping

from hanode.config.host import HostCaps
from hanode.config.model import (Authentication, GarpSettings, NotifyScripts, SyncGroup, TrackedInterface,
                                 TrackedScript, VrrpInstance, VrrpScript)
from hanode.config.parse_track import ref_reader, tracked_refs
from hanode.config.parse_vrrp_net import InstanceNet, VrrpGlobals, assign_vmacs, parse_instance_net
from hanode.config.parse_vrrp_notify import instance_fields
from hanode.config.parse_vrrp_strict import strict_fields, strict_net
from hanode.config.problems import MISSING, Problems, Reader, join
from hanode.config.vip import parse_vip

WEIGHT_MAX = 253


def parse_scripts(data: Mapping, path: str, problems: Problems) -> dict[str, VrrpScript]:
    scripts = {}
    for name, body in data.items():
        script = _parse_script(str(name), body, join(path, name), problems)
        if script is not None:
            scripts[str(name)] = script
    return scripts


def _parse_script(name: str, body: Any, path: str, problems: Problems) -> VrrpScript | None:
    if isinstance(body, str):
        body = {"script": body}
    reader = Reader(body, path, problems)
    command = reader.string("script")
    interval_s = reader.number("interval", 1, 0.01, 86400)
    timeout_s = reader.number("timeout", None, 0.01, 86400)
    script = VrrpScript(
        name=name, script=command or "",
        interval_ms=round(interval_s * 1000),
        timeout_ms=round((timeout_s if timeout_s is not None else interval_s) * 1000),
        weight=reader.integer("weight", 0, -WEIGHT_MAX, WEIGHT_MAX),
        rise=reader.integer("rise", 1, 1, 1000),
        fall=reader.integer("fall", 1, 1, 1000),
        user=reader.string("user", None),
        init_fail=reader.boolean("init_fail", False),
        weight_reverse=reader.boolean("weight_reverse", False),
    )
    reader.finish()
    return script if command else None


def parse_notify(reader: Reader) -> NotifyScripts:
    return NotifyScripts(
        master=reader.string("notify_master", None), backup=reader.string("notify_backup", None),
        fault=reader.string("notify_fault", None), stop=reader.string("notify_stop", None),
        generic=reader.string("notify", None))


def parse_instances(data: Mapping, path: str, problems: Problems, scripts: Mapping[str, VrrpScript],
                    vrrp_globals: VrrpGlobals | None = None, host: HostCaps | None = None,
                    trackers: tuple[Mapping, Mapping] = ({}, {})) -> dict[str, VrrpInstance]:
    """trackers: the vrrp_track_processes and track_files the instances may name."""
    g = vrrp_globals or VrrpGlobals()
    parsed = {}
    for name, body in data.items():
        found = _parse_instance(str(name), body, join(path, name), problems, scripts, g, host, trackers)
        if found is not None:
            parsed[str(name)] = found
    instances = assign_vmacs(parsed, g, path, problems)
    _check_unique_vrids(instances, path, problems)
    return instances


def _parse_instance(name: str, body: Any, path: str, problems: Problems, scripts: Mapping[str, VrrpScript],
                    g: VrrpGlobals, host: HostCaps | None,
                    trackers: tuple[Mapping, Mapping]) -> tuple[VrrpInstance, InstanceNet] | None:
    reader = Reader(body, path, problems)
    if not reader.ok:
        return None
    version = reader.integer("version", 2, 2, 3)
    interface = reader.string("interface")
    vips = reader.items("virtual_ipaddresses", lambda v, p: parse_vip(v, p, problems))
    family = _instance_family(reader, vips, version, problems)
    fields = dict(
        name=name, interface=interface or "", version=version, family=family, vips=vips,
        virtual_router_id=reader.integer("virtual_router_id", MISSING, 1, 255),
        priority=reader.integer("priority", 100, 1, 255),
        advert_int_cs=_advert_int_cs(reader, version, problems),
        initial_state=reader.string("state", "BACKUP", ("MASTER", "BACKUP"), upper=True),
        nopreempt=reader.boolean("nopreempt", False),
        preempt_delay_ms=round(reader.number("preempt_delay", 0, 0, 1000) * 1000),
        excluded_vips=reader.items("virtual_ipaddress_excluded", lambda v, p: parse_vip(v, p, problems)),
        track_interfaces=reader.items("track_interfaces", lambda v, p: _tracked_interface(v, p, problems)),
        track_scripts=reader.items("track_scripts", ref_reader(problems, scripts, "vrrp_script", WEIGHT_MAX, TrackedScript)),
        track_processes=tracked_refs(reader, "track_processes", trackers[0], "vrrp_track_process"),
        track_files=tracked_refs(reader, "track_files", trackers[1], "track_file"),
        dont_track_primary=reader.boolean("dont_track_primary", False),
        notify=parse_notify(reader),
        garp=_garp(reader),
        v3_checksum_as_v2=reader.boolean("v3_checksum_as_v2", False),
        smtp_alert=reader.boolean("smtp_alert", None),
        **instance_fields(reader),
    )
    fields.update(_unicast(reader, family, problems))
    fields["authentication"] = _authentication(reader, version, family, problems)
    net = parse_instance_net(reader, family=family, unicast=bool(fields["unicast_peers"]), g=g, problems=problems,
                             host=host)
    fields.update(net.fields)
    fields.update(strict_fields(reader, fields, g, path, problems))
    if fields.get("strict_mode"):
        fields["garp"] = _strict_garp(reader, fields["garp"], path, problems)
        net = strict_net(net, fields, path, problems)
    reader.finish()
    if interface is None or fields["virtual_router_id"] is None:
        return None
    instance = VrrpInstance(**fields)
    _check_instance(instance, path, problems)
    return instance, net


def _instance_family(reader: Reader, vips: tuple, version: int, problems: Problems) -> int:
    families = {vip.family for vip in vips}
    if len(families) > 1:
        problems.error(reader.at("virtual_ipaddresses"),
                       "mixes IPv4 and IPv6 addresses: one instance advertises one family "
                       "(put the other family in virtual_ipaddress_excluded or its own instance)")
    family = families.pop() if len(families) == 1 else _family_of(reader.data.get("unicast_src_ip"), 4)
    if family == 6 and version != 3:
        problems.error(reader.at("version"), "IPv6 needs VRRP version 3")
    return family


def _family_of(text: Any, default: int) -> int:
    try:
        return ipaddress.ip_address(str(text)).version
    except ValueError:
        return default


def _advert_int_cs(reader: Reader, version: int, problems: Problems) -> int:
    seconds = reader.number("advert_int", 1, 0.01, 40.95 if version == 3 else 255)
    centis = round(seconds * 100)
    if version == 2 and centis % 100:
        problems.error(reader.at("advert_int"), f"must be whole seconds with version 2, got {seconds} (fractional needs version: 3)")
        return max(100, centis - centis % 100)
    if abs(seconds * 100 - centis) > 1e-6:
        problems.error(reader.at("advert_int"), f"must be a multiple of 0.01 s, got {seconds}")
    return max(1, centis)


def _unicast(reader: Reader, family: int, problems: Problems) -> dict:
    src = reader.string("unicast_src_ip", None)
    peers = reader.items("unicast_peers", lambda v, p: _address(v, p, problems, family))
    if src is not None and _address(src, reader.at("unicast_src_ip"), problems, family) is None:
        src = None
    if src is not None and str(ipaddress.ip_address(src)) in peers:
        problems.error(reader.at("unicast_peers"), f"contains this node's own unicast_src_ip {src}")
    if len(set(peers)) != len(peers):
        problems.error(reader.at("unicast_peers"), "lists a peer twice")
    return {"unicast_src_ip": str(ipaddress.ip_address(src)) if src else None, "unicast_peers": peers}


def _address(value: Any, path: str, problems: Problems, family: int) -> str | None:
    try:
        address = ipaddress.ip_address(str(value))
    except ValueError:
        problems.error(path, f"{value!r} is not an IP address")
        return None
    if address.version != family:
        problems.error(path, f"{value} is IPv{address.version} but the instance is IPv{family}")
        return None
    return str(address)


def _authentication(reader: Reader, version: int, family: int, problems: Problems) -> Authentication | None:
    if not reader.has("authentication"):
        reader.used.add("authentication")
        return None
    sub = Reader(reader.mapping("authentication"), reader.at("authentication"), problems)
    auth_type = sub.string("auth_type", "PASS", ("PASS", "AH"), upper=True)
    password = sub.string("auth_pass")
    sub.finish()
    if auth_type == "AH" and family == 6:
        problems.error(sub.at("auth_type"), "AH authenticates VRRPv2 over IPv4 only (keepalived ignores it "
                                            "with IPv6)")
        return None
    if version == 3:
        problems.error(reader.at("authentication"), "VRRP version 3 has no authentication (RFC 5798); remove it or use version 2")
        return None
    if password is None:
        return None
    if len(password.encode()) > 8:
        problems.warn(sub.at("auth_pass"), "longer than 8 bytes: only the first 8 are used, as keepalived does")
    return Authentication(auth_type=auth_type or "PASS", auth_pass=password)


def _tracked_interface(value: Any, path: str, problems: Problems) -> TrackedInterface | None:
    if isinstance(value, str):
        return TrackedInterface(name=value)
    reader = Reader(value, path, problems)
    name = reader.string("name")
    weight = reader.integer("weight", 0, -WEIGHT_MAX, WEIGHT_MAX)
    reverse = reader.boolean("weight_reverse", False)
    reader.finish()
    return TrackedInterface(name=name, weight=weight, weight_reverse=reverse) if name else None


def _garp(reader: Reader) -> GarpSettings:
    return GarpSettings(
        master_delay_ms=round(reader.number("garp_master_delay", 5, 0, 3600) * 1000),
        master_repeat=reader.integer("garp_master_repeat", 5, 1, 255),
        master_refresh_ms=round(reader.number("garp_master_refresh", 0, 0, 86400) * 1000),
        master_refresh_repeat=reader.integer("garp_master_refresh_repeat", 1, 1, 255),
        interval_ms=round(reader.number("garp_interval", 0, 0, 1) * 1000),
        lower_prio_repeat=reader.integer("garp_lower_prio_repeat", 5, 0, 255),
        lower_prio_delay_ms=round(reader.number("garp_lower_prio_delay", 5, 0, 3600) * 1000),
    )


def _strict_garp(reader: Reader, garp: GarpSettings, path: str, problems: Problems) -> GarpSettings:
    """keepalived's strict mode sends no GARPs on a lower priority advert (garp_lower_prio_* reset to 0)."""
    for key in ("garp_lower_prio_repeat", "garp_lower_prio_delay"):
        if reader.data.get(key):
            problems.warn(join(path, key), "is reset to 0 by strict_mode, as keepalived resets it")
    return replace(garp, lower_prio_repeat=0, lower_prio_delay_ms=0)


def _check_instance(instance: VrrpInstance, path: str, problems: Problems) -> None:
    if instance.nopreempt and instance.initial_state == "MASTER":
        problems.error(join(path, "nopreempt"), "does not work with state MASTER (keepalived silently drops it); use state BACKUP")
    if instance.is_owner and instance.nopreempt:
        problems.error(join(path, "nopreempt"), "priority 255 is the address owner, which always preempts")
    if not instance.vips:
        problems.warn(join(path, "virtual_ipaddresses"), "is empty: this instance elects a master but moves no address")
    if len(instance.vips) > 255:
        problems.error(join(path, "virtual_ipaddresses"), "at most 255 addresses fit in an advert; use virtual_ipaddress_excluded for more")
    if len({(v.address, v.dev) for v in instance.vips}) != len(instance.vips):
        problems.error(join(path, "virtual_ipaddresses"), "lists an address twice")


def _check_unique_vrids(instances: Mapping[str, VrrpInstance], path: str, problems: Problems) -> None:
    seen: dict[tuple, str] = {}
    for name, inst in instances.items():
        key = (inst.interface, inst.family, inst.virtual_router_id)
        if key in seen:
            problems.error(join(join(path, name), "virtual_router_id"),
                           f"{inst.virtual_router_id} is already used by {seen[key]} on {inst.interface} (IPv{inst.family})")
        else:
            seen[key] = name


def parse_sync_groups(data: Mapping, path: str, problems: Problems, instances: Mapping[str, VrrpInstance],
                      scripts: Mapping[str, VrrpScript] | None = None,
                      trackers: tuple[Mapping, Mapping] = ({}, {})) -> dict[str, SyncGroup]:
    groups: dict[str, SyncGroup] = {}
    owner: dict[str, str] = {}
    for name, body in data.items():
        gpath = join(path, name)
        reader = Reader(body, gpath, problems)
        members = reader.items("group", lambda v, p: str(v))
        notify = parse_notify(reader)
        smtp_alert = reader.boolean("smtp_alert", None)
        tracking = _group_trackers(reader, scripts or {}, trackers)
        reader.finish()
        for i, member in enumerate(members):
            mpath = join(reader.at("group"), i)
            if member not in instances:
                problems.error(mpath, f"no vrrp_instance named {member!r}")
            elif member in owner:
                problems.error(mpath, f"{member} is already in sync group {owner[member]}: an instance belongs to one group")
            else:
                owner[member] = str(name)
        if not members:
            problems.error(reader.at("group"), "is empty")
        groups[str(name)] = SyncGroup(name=str(name), group=members, notify=notify, smtp_alert=smtp_alert, **tracking)
    return groups


def _group_trackers(reader: Reader, scripts: Mapping[str, VrrpScript], trackers: tuple[Mapping, Mapping]) -> dict:
    """A sync group's own trackers, as an instance names them (hanode.vrrp.track.with_group_trackers)."""
    problems = reader.problems
    return dict(
        track_interfaces=reader.items("track_interfaces", lambda v, p: _tracked_interface(v, p, problems)),
        track_scripts=reader.items("track_scripts", ref_reader(problems, scripts, "vrrp_script", WEIGHT_MAX, TrackedScript)),
        track_processes=tracked_refs(reader, "track_processes", trackers[0], "vrrp_track_process"),
        track_files=tracked_refs(reader, "track_files", trackers[1], "track_file"),
        tracking_weight=reader.boolean("sync_group_tracking_weight", False),
        notify_priority_changes=reader.boolean("notify_priority_changes", None))
