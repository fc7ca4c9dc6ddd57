"""A testinfra backend for namespace lab hosts: `netns://NAMESPACE` runs each command with
`ip netns exec NAMESPACE /bin/sh -c CMD` (testinfra's ansible backend would start one `ansible`
process per command)."""

from __future__ import annotations

import testinfra
import testinfra.backend
from testinfra.backend import base


class NetnsBackend(base.BaseBackend):
    NAME = "netns"

    def __init__(self, hostname: str, *args, **kwargs):
        self.netns = hostname
        super().__init__(hostname, **kwargs)

    @classmethod
    def get_hosts(cls, host, **kwargs):
        return [host]

    def run(self, command, *args, **kwargs):
        return self.run_local("ip netns exec %s /bin/sh -c %s", self.netns, self.get_command(command, *args))


testinfra.backend.BACKENDS["netns"] = "netns_testinfra.NetnsBackend"


def lab_host(netns: str):
    return testinfra.get_host("netns://" + netns)
