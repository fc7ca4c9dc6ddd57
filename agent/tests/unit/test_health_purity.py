"""The health checker's pure modules never reach the clock, the network or processes (same walker as
test_purity.py, applied to every pure module of hanode.health)."""

from __future__ import annotations

import pytest
from test_purity import SRC, impurities, module_file

HEALTH_PURE = ["hanode.health.hysteresis", "hanode.health.spec", "hanode.health.httpwire", "hanode.health.dnswire",
               "hanode.health.status", "hanode.health.filecheck", "hanode.health.regex",
               "hanode.health.suspend", "hanode.health.duequeue"]


@pytest.mark.parametrize("module", HEALTH_PURE)
def test_health_pure_module_imports_nothing_impure(module):
    assert module_file(module, SRC), f"{module} is listed as pure but does not exist"
    assert impurities(module) == []


def test_the_adapters_are_not_pure():
    """The walker sees the adapters' sockets: the list above is not vacuously clean."""
    assert impurities("hanode.health.checks.fast")
