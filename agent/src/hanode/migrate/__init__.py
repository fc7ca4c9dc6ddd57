"""Migration from keepalived: `hanode import-keepalived` (keepalived.py is the stdlib-only core, validate.py the
proof against the agent's own config parser)."""
