"""`hanode lab up|down|clean|list`: namespace labs by hand (also `python -m hanode.lab.cli ...`)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from hanode.lab import registry


def register(subparsers) -> None:
    lab = subparsers.add_parser("lab", help="build and remove network-namespace labs",
                                description="Network-namespace labs for tests, the demo and benchmarks.")
    sub = lab.add_subparsers(dest="lab_command", metavar="ACTION")
    sub.required = True

    up = sub.add_parser("up", help="build a lab that stays until `hanode lab down NAME`")
    up.add_argument("--nodes", type=int, default=2)
    up.add_argument("--clients", type=int, default=1)
    up.add_argument("--real-servers", type=int, default=0)
    up.add_argument("--name", metavar="PREFIX", help="lab prefix (default: hn + 6 random hex digits)")
    up.add_argument("--real-server-gateway", metavar="IP", help="default route of the real servers")
    up.add_argument("--host-os", metavar="OS,OS,...",
                    help="nodes are real hosts (systemd, sshd) of these images, one per node, e.g. "
                         "debian12,debian13,debian13; --nodes is then their count")
    up.add_argument("--json", action="store_true", help="print the lab as JSON")
    up.set_defaults(func=cmd_up)

    power = sub.add_parser("power", help="power a host of a host lab off (pull the plug, or --clean) or on")
    power.add_argument("name", metavar="NAME")
    power.add_argument("host", metavar="HOST")
    power.add_argument("state", choices=["on", "off"])
    power.add_argument("--clean", action="store_true", help="power off by a clean shutdown inside the host")
    power.set_defaults(func=cmd_power)

    down = sub.add_parser("down", help="remove a lab: its processes, namespaces and work dir")
    down.add_argument("name", metavar="NAME")
    down.add_argument("--keep-logs", action="store_true")
    down.set_defaults(func=cmd_down)

    clean = sub.add_parser("clean", help="remove labs whose creator process is gone")
    clean.add_argument("--all", action="store_true", help="remove every registered lab, live or not")
    clean.set_defaults(func=cmd_clean)

    lst = sub.add_parser("list", help="list registered labs")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_list)


def cmd_up(args: argparse.Namespace) -> int:
    if args.host_os:
        from hanode.lab.hosts.fleet import HostLab

        lab = HostLab(args.host_os.split(","), args.clients, args.real_servers, prefix=args.name, persistent=True,
                      real_server_gateway=args.real_server_gateway, log=lambda line: print(line, file=sys.stderr))
    else:
        from hanode.lab.lab import Lab

        lab = Lab(args.nodes, args.clients, args.real_servers, prefix=args.name, persistent=True,
                  real_server_gateway=args.real_server_gateway)
    lab.up()
    if args.json:
        record = registry.load(lab.prefix)
        print(json.dumps({"prefix": lab.prefix, "workdir": str(lab.dir), "switch": lab.switch.netns,
                          "hosts": record.hosts if record else {}, "machines": record.machines if record else {},
                          "timings": lab.timings}, indent=1))
    else:
        print(lab.describe())
        print(f"(up in {lab.timings['up_s']:.2f}s; remove with: hanode lab down {lab.prefix})")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    record = registry.load(args.name)
    if record is None:
        print(f"hanode lab down: no lab {args.name} in {registry.registry_dir()}", file=sys.stderr)
        return 1
    registry.destroy(record, keep_workdir=args.keep_logs or None)
    print(f"removed {args.name}")
    return 0


def cmd_power(args: argparse.Namespace) -> int:
    from hanode.lab.hosts.fleet import HostLab

    lab = HostLab.attach(args.name)
    if args.state == "off":
        lab.power_off(args.host, hard=not args.clean)
        print(f"{args.host} is off")
    else:
        print(f"{args.host} is on (boot id {lab.power_on(args.host)})")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    try:
        removed = registry.clean(all_labs=args.all)
    except RuntimeError as exc:
        print(f"hanode lab clean: {exc}", file=sys.stderr)
        return 1
    for prefix in removed:
        print(f"removed {prefix}")
    if not removed:
        print("nothing to clean")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    records = registry.load_all()
    if args.json:
        print(json.dumps([{"prefix": r.prefix, "creator_pid": r.creator_pid, "alive": r.creator_alive(),
                           "persistent": r.persistent, "workdir": r.workdir, "namespaces": r.namespaces,
                           "hosts": r.hosts} for r in records], indent=1))
        return 0
    if not records:
        print("no labs")
    for r in records:
        owner = "persistent" if r.persistent else f"pid {r.creator_pid} ({'alive' if r.creator_alive() else 'gone'})"
        age = time.time() - r.created_unix
        hosts = " ".join(sorted(r.hosts))
        print(f"{r.prefix}  {owner:<20} {age:7.0f}s  {hosts}  {r.workdir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hanode")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    register(sub)
    args = parser.parse_args(["lab", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
