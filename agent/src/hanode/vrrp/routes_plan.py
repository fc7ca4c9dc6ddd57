"""Which routes, rules and static addresses the VRRP process wants in the kernel, per owner (pure): "static"
(static_ipaddress / static_routes / static_rules: from start to stop) and each instance (virtual_routes /
virtual_rules: while it is MASTER). Rules without a preference are numbered as keepalived numbers them: from
16384 down, one counter per family, static rules first, then the instances in config order."""

from __future__ import annotations

from hanode.config.iprule import FIRST_PRIORITY, Rule
from hanode.config.model import AgentConfig

STATIC = "static"


def numbered_rules(config: AgentConfig) -> dict[str, tuple[tuple[Rule, int], ...]]:
    """owner -> ((rule, the preference it is added with), ...)."""
    next_priority = {4: FIRST_PRIORITY, 6: FIRST_PRIORITY}
    static = config.sections.get(STATIC)
    owners = [(STATIC, static.rules if static else ())]
    owners += [(name, inst.virtual_rules) for name, inst in config.vrrp_instances.items()]
    out: dict[str, tuple[tuple[Rule, int], ...]] = {}
    for owner, rules in owners:
        numbered = []
        for rule in rules:
            priority = rule.priority
            if priority is None:
                priority = next_priority[rule.family]
                next_priority[rule.family] -= 1
            numbered.append((rule, priority))
        out[owner] = tuple(numbered)
    return out


def route_key(owner: str, text: str) -> str:
    return f"{owner}\t{text}"


def rule_key(owner: str, rule: Rule, priority: int) -> str:
    return f"{owner}\t{priority}\t{rule.text}"
