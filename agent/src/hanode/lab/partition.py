"""Network partitions in a lab: frames between chosen switch ports dropped by an nftables bridge-family set in
the switch namespace (created on first use). Lab.partition / Lab.heal name hosts; this names their ports."""

from __future__ import annotations

from collections.abc import Iterable

from hanode.lab import netns

NFT_TABLE = "hanode_lab"


class Partitions:
    def __init__(self, switch_netns: str):
        self.switch_netns = switch_netns
        self.blocked: set[tuple[str, str]] = set()
        self._table_ready = False

    def block(self, side_a: Iterable[str], side_b: Iterable[str]) -> None:
        """Drops every frame between a port of side_a and a port of side_b, both ways."""
        self._ensure_table()
        new = _pairs(side_a, side_b) - self.blocked
        if new:
            netns.nft(self.switch_netns, f"add element bridge {NFT_TABLE} blocked {{ {_elements(new)} }}\n")
            self.blocked |= new

    def unblock(self, side_a: Iterable[str], side_b: Iterable[str]) -> None:
        gone = _pairs(side_a, side_b) & self.blocked
        if gone:
            netns.nft(self.switch_netns, f"delete element bridge {NFT_TABLE} blocked {{ {_elements(gone)} }}\n")
            self.blocked -= gone

    def clear(self) -> None:
        if self._table_ready:
            netns.nft(self.switch_netns, f"flush set bridge {NFT_TABLE} blocked\n")
        self.blocked.clear()

    def _ensure_table(self) -> None:
        if self._table_ready:
            return
        netns.nft(self.switch_netns, f"""
table bridge {NFT_TABLE} {{
    set blocked {{ type ifname . ifname; }}
    chain forward {{
        type filter hook forward priority 0; policy accept;
        iifname . oifname @blocked counter drop
    }}
}}
""")
        self._table_ready = True


def _pairs(side_a: Iterable[str], side_b: Iterable[str]) -> set[tuple[str, str]]:
    side_b = list(side_b)
    return {pair for a in side_a for b in side_b for pair in ((a, b), (b, a))}


def _elements(pairs: Iterable[tuple[str, str]]) -> str:
    return ", ".join(f'"{i}" . "{o}"' for i, o in sorted(pairs))
