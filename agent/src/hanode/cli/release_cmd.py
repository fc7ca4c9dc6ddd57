"""hanode release --config FILE: removes what a killed agent left in the kernel (its VIPs, the load-balancer
rules it owned). Refuses while an agent answers on the config's control socket. Prints one line per thing
removed (nothing when there was nothing to remove); the role's removal (ha_node_state: absent) runs it."""

from __future__ import annotations

import argparse
import asyncio
import sys


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("release", help="remove the VIPs and load-balancer rules a stopped agent left behind")
    parser.add_argument("--config", "-f", required=True, help="the agent's config")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hanode.config.load import load_config
    from hanode.config.problems import ConfigError
    from hanode.control.client import AgentUnavailable, request

    try:
        loaded = load_config(args.config, check_files=False)
    except ConfigError as exc:
        print(f"hanode release: {exc}", file=sys.stderr)
        return 1
    try:
        request(loaded.config.control_socket, {"cmd": "status"}, timeout_s=5.0)
        print(f"hanode release: an agent answers on {loaded.config.control_socket}: stop it first", file=sys.stderr)
        return 1
    except (AgentUnavailable, OSError):
        pass
    return asyncio.run(_release(loaded))


async def _release(loaded) -> int:
    from hanode.vrrp.netlink import Netlink

    status = 0
    netlink = Netlink()
    await netlink.open()
    try:
        await netlink.interfaces()
        for instance in loaded.config.vrrp_instances.values():
            for vip in instance.vips + instance.excluded_vips:
                if netlink.del_vip(vip, instance.interface):
                    print(f"removed VIP {vip.address}/{vip.prefixlen} from {vip.dev or instance.interface} ({instance.name})")
    except OSError as exc:
        print(f"hanode release: VIPs: {exc}", file=sys.stderr)
        status = 1
    finally:
        netlink.close()
    return max(status, await _release_rules(loaded))


async def _release_rules(loaded) -> int:
    from hanode.health.runner import owned_state_path
    from hanode.lvs.backend import BackendError, open_backend
    from hanode.lvs.reconciler import Reconciler

    lvs = loaded.config.sections.get("lvs")
    if lvs is None or not getattr(lvs, "virtual_servers", None):
        return 0
    try:
        backend = await open_backend(lvs)
    except (BackendError, OSError) as exc:
        print(f"hanode release: load-balancer rules: {exc}", file=sys.stderr)
        return 1
    try:
        result = await Reconciler(backend, state_path=owned_state_path(loaded.config.control_socket)).cleanup(keep=False)
    finally:
        await backend.close()
    for op in result.ops:
        print(f"removed load-balancer rule: {op}")
    for error in result.errors:
        print(f"hanode release: load-balancer rules: {error}", file=sys.stderr)
    return 0 if result.ok else 1
