"""hanode import-keepalived FILE [--output agent.yaml] [--role-vars]: a keepalived.conf as a hanode agent config.
hanode import-keepalived --keywords: what the importer does with every keepalived keyword (its keyword tables).

Every keyword that is not carried over is printed to stderr as `FILE:LINE: keyword: why`. Exit status: 0 when
the translation is complete, 3 when something was not carried over (the output is still written), 1 when the
file cannot be read or parsed (nothing is written).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile

EXIT_COMPLETE, EXIT_ERROR, EXIT_INCOMPLETE = 0, 1, 3


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("import-keepalived", help="translate a keepalived.conf into an agent config",
                            description="Translate a keepalived.conf (and the files it includes) into a hanode agent "
                                        "config. Every keyword not carried over is listed on stderr with its line "
                                        "and why; exit 3 when there is any, 1 on a parse error.")
    parser.add_argument("file", nargs="?", help="the keepalived.conf to import")
    parser.add_argument("--output", "-o", help="write the YAML here (default: stdout)")
    parser.add_argument("--role-vars", action="store_true",
                        help="write the ha_node role variables (ha_node_config, ha_node_router_id) instead")
    parser.add_argument("--config-id", help="keepalived's -i: which '@ID' lines to keep "
                                            "(default: this host's name without domain, as keepalived)")
    parser.add_argument("--keywords", action="store_true",
                        help="list every keepalived keyword: block, keyword, status, what it becomes or why it is "
                             "not carried over (nothing is imported)")
    parser.set_defaults(func=lambda args: run(args, parser))


def run(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    if args.keywords:
        from hanode.migrate.keepalived.report import listing

        sys.stdout.write(listing())
        return EXIT_COMPLETE
    if args.file is None:
        if parser is not None:
            parser.error("the following arguments are required: file")
        return EXIT_ERROR
    return _import(args)


def _import(args: argparse.Namespace) -> int:
    from hanode.migrate.keepalived import KeepalivedParseError, parse_file
    from hanode.migrate.validate import MigrationError, validate

    hostname = socket.gethostname()
    config_id = args.config_id if args.config_id is not None else hostname.split(".")[0]
    try:
        parsed = parse_file(args.file, config_id=config_id)
        validated = validate(parsed, default_router_id=hostname)
    except OSError as exc:
        print(f"{args.file}: cannot read: {exc.strerror}", file=sys.stderr)
        return EXIT_ERROR
    except KeepalivedParseError as exc:
        print(f"{exc.file}:{exc.line}: error: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    except MigrationError as exc:
        print(f"{args.file}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    result = validated.translation
    text = render(result.config, args.file, len(result.items), args.role_vars)
    try:
        _write(text, args.output)
    except OSError as exc:
        print(f"{args.output}: cannot write: {exc.strerror}", file=sys.stderr)
        return EXIT_ERROR
    for line in sorted(result.items + validated.notes, key=lambda x: (x.file, x.line)):
        print(line, file=sys.stderr)
    for problem in _host_problems(validated, args.output):
        print(f"warning: on this host, hanode check-config would refuse {problem.path}: {problem.message}",
              file=sys.stderr)
    where = args.output or "stdout"
    if result.items:
        print(f"{args.file}: {len(result.items)} keyword(s) not carried over (listed above); the rest is in {where}",
              file=sys.stderr)
        return EXIT_INCOMPLETE
    print(f"{args.file}: translation complete; written to {where}", file=sys.stderr)
    return EXIT_COMPLETE


def render(config: dict, source: str, missing: int, role_vars: bool) -> str:
    import yaml

    header = [f"# hanode agent config imported from {source} by `hanode import-keepalived`."]
    if missing:
        header.append(f"# {missing} keepalived keyword(s) were not carried over: see the list the import printed.")
    if role_vars:
        header.append("# ha_node role variables: the agent config as ha_node_config, plus ha_node_router_id.")
        document = {"ha_node_config": config}
        if "router_id" in config:
            document["ha_node_router_id"] = config["router_id"]
    else:
        document = config
    body = yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True, width=120)
    return "\n".join(header) + "\n---\n" + body


def _write(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    directory = os.path.dirname(os.path.abspath(output))
    fd, tmp = tempfile.mkstemp(prefix=".import-", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _host_problems(validated, output: str | None) -> list:
    """check-config's checks on this host: scripts and users (the file itself is checked where it is written), and
    what the host's kernel must offer (macvlan for use_vmac, ipvlan for use_ipvlan, iproute2's names)."""
    from hanode.config.host import HostCaps
    from hanode.config.parse import parse_config
    from hanode.config.problems import ConfigError
    from hanode.config.security import check_config_security
    from hanode.lvs import caps

    problems = check_config_security(output or os.devnull, validated.config)
    found = [p for p in problems if not p.warning and not (output is None and p.path == os.devnull)]
    try:
        parse_config(validated.translation.config, host=HostCaps.from_facts(caps.gather()))
    except ConfigError as exc:
        found += exc.problems
    return found
