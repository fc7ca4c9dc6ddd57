"""Classic BPF socket filters that split received VRRP adverts between two sockets (pure: no I/O).

A BACKUP never has to act on an ordinary advert at once: it only re-arms its Master_Down timer, from the
advert's kernel arrival time (RFC 5798 6.4.2; a lower-priority advert with preempt is discarded and the timer
does the rest). So ordinary adverts go to a "bulk" socket that is read in batches, and only the adverts that
need action now wake the process, on an "urgent" socket:

- priority 0 (a MASTER leaving: the BACKUP's timer drops to Skew_Time), and
- any advert for a VRID this node is MASTER of (a better master to yield to, a split brain to answer).

The two filters are complements: every packet is accepted by exactly one of them (a packet too short to hold
a priority goes to the bulk socket, whose reader counts it). The VRRP header starts after the IPv4 header on
an IPv4 raw socket (IHL from the first byte) and at byte 0 on an IPv6 one.
"""

from __future__ import annotations

from typing import Iterable

# linux/filter.h, linux/bpf_common.h
LD, LDX, ALU, JMP, RET = 0x00, 0x01, 0x04, 0x05, 0x06
W, B = 0x00, 0x10
ABS, IND, LEN, MSH = 0x20, 0x40, 0x80, 0xA0
SUB, JEQ, JGT, JGE = 0x10, 0x10, 0x20, 0x30
K, X = 0x00, 0x08
ACCEPT = 0x40000   # bytes of the packet to keep: all of it
DROP = 0

Instruction = tuple[int, int, int, int]   # struct sock_filter: code, jt, jf, k
VRRP_PRIORITY_OFFSET = 2
VRRP_VRID_OFFSET = 1


def vrid_ranges(vrids: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted VRIDs as inclusive runs: {1, 2, 3, 7} -> [(1, 3), (7, 7)]."""
    ranges: list[tuple[int, int]] = []
    for vrid in sorted(set(vrids)):
        if ranges and vrid == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], vrid)
        else:
            ranges.append((vrid, vrid))
    return ranges


def advert_filter(family: int, master_vrids: Iterable[int], urgent: bool) -> list[Instruction]:
    """The urgent socket's filter (urgent=True) or the bulk socket's (its complement)."""
    if family not in (4, 6):
        raise ValueError(f"family: must be 4 or 6, got {family!r}")
    now, later = (ACCEPT, DROP) if urgent else (DROP, ACCEPT)
    program: list[Instruction] = []
    if family == 4:
        program.append((LDX | B | MSH, 0, 0, 0))          # X = 4 * (IHL of the IPv4 header)
    program += [
        (LD | W | LEN, 0, 0, 0),                           # A = packet length
        (ALU | SUB | X, 0, 0, 0),                          # A -= X (the VRRP message's length)
        (JMP | JGE | K, 1, 0, VRRP_PRIORITY_OFFSET + 1),   # too short to hold a priority: bulk counts it
        (RET | K, 0, 0, later),
        (LD | B | IND, 0, 0, VRRP_PRIORITY_OFFSET),        # A = priority
        (JMP | JEQ | K, 0, 1, 0),
        (RET | K, 0, 0, now),                              # priority 0: now
        (LD | B | IND, 0, 0, VRRP_VRID_OFFSET),            # A = VRID
    ]
    for low, high in vrid_ranges(master_vrids):            # each test is followed by its own return (short jumps)
        if low == high:
            program += [(JMP | JEQ | K, 0, 1, low), (RET | K, 0, 0, now)]
        else:
            program += [(JMP | JGE | K, 0, 2, low), (JMP | JGT | K, 1, 0, high), (RET | K, 0, 0, now)]
    program.append((RET | K, 0, 0, later))
    return program


def run(program: list[Instruction], packet: bytes) -> int:
    """A reference interpreter for the instructions used here (tests check the filters with it): the number
    of bytes the kernel would keep, 0 to drop. Out-of-bounds loads drop the packet, as in the kernel."""
    a = x = pc = 0
    while True:
        code, jt, jf, k = program[pc]
        pc += 1
        if code == LDX | B | MSH:
            if k >= len(packet):
                return 0
            x = (packet[k] & 0x0F) * 4
        elif code == LD | W | LEN:
            a = len(packet)
        elif code == ALU | SUB | X:
            a = (a - x) & 0xFFFFFFFF
        elif code == LD | B | IND:
            if x + k >= len(packet):
                return 0
            a = packet[x + k]
        elif code & 0x07 == JMP:
            taken = {JEQ: a == k, JGT: a > k, JGE: a >= k}[code & 0xF0]
            pc += jt if taken else jf
        elif code == RET | K:
            return k
        else:
            raise ValueError(f"instruction {code:#x} not supported by this interpreter")
