"""Migration from keepalived: `hanode import-keepalived` (keepalived/ is the importer, a package of pure modules
driven by keyword tables; validate.py the proof against the agent's own config parser)."""
