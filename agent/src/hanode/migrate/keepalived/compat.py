"""The keyword sets under the names the single-file importer (before the package split) gave its tables, read by
tests written against it (test_migrate_validate: the kitchen sink uses every keyword they hold). Each is derived
from the keyword tables: the keywords a block carries as plain values. UDP_CHECK's min_reply_length and
max_reply_length were read outside those tables then, and are left out here as they were."""

from __future__ import annotations

from hanode.migrate.keepalived.global_defs import GLOBAL_DEFS
from hanode.migrate.keepalived.real_server import CHECKER, CHECKS, REAL_SERVER
from hanode.migrate.keepalived.virtual_server import VIRTUAL_SERVER
from hanode.migrate.keepalived.vrrp import NOTIFY, VRRP_INSTANCE

_OUTSIDE = {"min_reply_length", "max_reply_length"}


class OldTables:
    _INSTANCE_VALUES = VRRP_INSTANCE.plain()
    _NOTIFY = NOTIFY
    _DEFAULTS = GLOBAL_DEFS.plain()
    _VS_VALUES = VIRTUAL_SERVER.plain()
    _RS_VALUES = REAL_SERVER.plain()
    _CHECK_VALUES = CHECKER.plain()
    _CHECKS = tuple(CHECKS)
    _KIND_VALUES = {kind: table.plain() - _OUTSIDE for kind, table in CHECKS.items()}
