"""The nftables backend's NETLINK_NETFILTER socket: one batch at a time, answers read back; dumps of the table
(nft_read.py) handed over one recv buffer at a time (see nft.py)."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from typing import Callable

from hanode.lvs import nftnl
from hanode.lvs.nft_layout import TABLE, NftError

NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33
NLM_F_DUMP_INTR = 0x10
REPLY_TIMEOUT_S = 5           # the kernel answers while send() runs: this only guards against a bug


class NftNetlink:
    """A NETLINK_NETFILTER socket (in the backend's namespace) that sends one batch at a time. The kernel
    handles a batch while send() runs; every message carries NLM_F_ACK, so the socket then holds one answer
    per message (0 or an errno) plus the echoes of rewritten rules."""

    def __init__(self, netns: str | None):
        try:
            if netns:
                from pyroute2.netns import create_socket
                self.sock = create_socket(netns, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER, flags=0)
            else:
                self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
            self.sock.setblocking(False)
            self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)     # errors without a copy of the request
            self.sock.bind((0, 0))
        except OSError as exc:
            raise NftError(f"cannot open a netfilter netlink socket: {exc}") from exc
        self.sndbuf = 0
        self._buffers(4 << 20)
        self.seq = 1

    def _buffers(self, size: int) -> None:
        for force, plain in ((SO_SNDBUFFORCE, socket.SO_SNDBUF), (SO_RCVBUFFORCE, socket.SO_RCVBUF)):
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, force, size)
            except OSError:
                self.sock.setsockopt(socket.SOL_SOCKET, plain, size)
        self.sndbuf = size

    def close(self) -> None:
        self.sock.close()

    def next_seq(self) -> int:
        return self.seq

    async def transact(self, batch: nftnl.Batch) -> tuple[list[str], dict[tuple[int, str], int]]:
        """Sends the batch; returns (errors, {(family, chain): handle} of hanode's rules the kernel echoed)."""
        data = batch.finish()
        self.seq = batch.seq
        if len(data) + 4096 > self.sndbuf:
            self._buffers(2 * len(data))
        self._drain_stale()
        try:
            self.sock.send(data)
        except OSError as exc:
            return [f"nftables batch of {batch.count} messages not sent: {exc}"], {}
        pending = set(batch.what)
        errors: list[str] = []
        handles: dict[tuple[int, str], int] = {}
        while pending:
            try:
                data = await self._recv(1 << 20)
            except OSError as exc:        # ENOBUFS: answers were lost; the reconciler dumps after any error
                return errors + [f"nftables answers lost ({exc}); the kernel state is unknown"], {}
            if data is None:
                return errors + [f"no answer from the kernel for {len(pending)} of {batch.count} messages"], {}
            for reply in nftnl.parse_messages(data):
                if reply.type == nftnl.NLMSG_ERROR:
                    seq = nftnl.acked_seq(reply)
                    pending.discard(seq)
                    code = nftnl.error_code(reply)
                    if code:
                        errors.append(f"{batch.what.get(seq, f'message {seq}')}: {os.strerror(code)} (errno {code})")
                elif reply.type == nftnl.nft_type("newrule"):
                    family, table, chain, handle = nftnl.rule_of(reply)
                    if table == TABLE:
                        handles[family, chain] = handle
        if errors:
            return errors + [f"nftables transaction of {batch.count} messages aborted"], {}
        return [], handles

    def take_seq(self) -> int:
        seq = self.seq
        self.seq = (self.seq + 1) & 0xFFFFFFFF or 1
        return seq

    async def ask(self, request: bytes, seq: int, on_reply: Callable[[nftnl.Reply], None], dump: bool) -> int:
        """Sends one request (a dump when `dump`) and hands each answer to on_reply as it arrives, one recv
        buffer at a time (a dump of 8,000 elements is never held whole). Returns 0, or the errno the kernel
        answered (ENOENT: no such table or set); EINTR when the dump was interrupted by a change. The event
        loop runs between two buffers: a dump of 8,000 destinations (~100 ms of decoding) never holds it
        for more than one buffer's worth."""
        self._drain_stale()
        try:
            self.sock.send(request)
        except OSError as exc:
            raise NftError(f"nftables request not sent: {exc}") from exc
        interrupted = False
        while True:
            try:
                data = await self._recv(1 << 16)
            except OSError as exc:
                raise NftError(f"nftables dump lost ({exc})") from exc
            if data is None:
                raise NftError("no answer from the kernel to an nftables dump")
            for reply in nftnl.parse_messages(data):
                if reply.seq != seq:
                    continue
                if reply.type == nftnl.NLMSG_ERROR:
                    return nftnl.error_code(reply)
                if reply.type == nftnl.NLMSG_DONE:
                    code = nftnl.error_code(reply) if len(reply.payload) >= 4 else 0
                    return code or (errno.EINTR if interrupted else 0)
                interrupted |= bool(reply.flags & NLM_F_DUMP_INTR)
                on_reply(reply)
                if not dump:
                    return 0
            await asyncio.sleep(0)      # checks run between two recv buffers (~500 elements, a few ms each)

    async def _recv(self, size: int) -> bytes | None:
        """The next buffer of answers, waiting for it up to REPLY_TIMEOUT_S (None: the kernel said nothing).
        OSError (ENOBUFS: answers lost) is the caller's."""
        try:
            return self.sock.recv(size)
        except BlockingIOError:
            try:
                return await asyncio.wait_for(asyncio.get_running_loop().sock_recv(self.sock, size), REPLY_TIMEOUT_S)
            except asyncio.TimeoutError:
                return None

    def _drain_stale(self) -> None:
        while True:
            try:
                self.sock.recv(1 << 20)
            except (BlockingIOError, OSError):
                return
