"""What the agent's processes import, and what they can do without (memory is per process: see
docs/benchmarks.md, "VRRP at scale")."""

from __future__ import annotations

import gc
import sys


def asyncio_without_tls() -> None:
    """Imports asyncio without OpenSSL: asyncio loads the ssl module (libssl and libcrypto, ~1.4 MB of PSS per
    process) for TLS transports that the agent's parent and VRRP process never open. Every asyncio module
    imports ssl under `try/except ImportError` and then runs without TLS support; afterwards ssl imports
    normally again for whoever needs it directly (smtplib for alert mail). No effect once asyncio is loaded
    (the health checker, whose SSL_GET uses TLS, does not call this)."""
    if "asyncio" in sys.modules or "ssl" in sys.modules:
        return
    sys.modules["ssl"] = None   # type: ignore[assignment]  # `import ssl` raises ImportError meanwhile
    try:
        import asyncio  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    finally:
        del sys.modules["ssl"]


M_MMAP_THRESHOLD = -3        # mallopt(): blocks from this size up get pages of their own (glibc)
MMAP_THRESHOLD_BYTES = 128 * 1024


def _libc():
    import ctypes  # pylint: disable=import-outside-toplevel

    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def fixed_mmap_threshold() -> None:
    """Large blocks (a status or config message's JSON text: 1.6 MB at 1,000 instances) get pages of their own,
    unmapped when freed. glibc's default raises this threshold to the largest block freed so far, after which
    such blocks come from the heap and leave it fragmented: measured at 1,000 instances, the supervisor kept
    ~2.5 MB more after answering status. Set once at start; inherited by forked children."""
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def release_free_memory() -> None:
    """Hands the C heap's free pages back to the kernel (glibc's malloc_trim). Parsing a config builds and
    drops far more than it keeps (a 1,000-instance config peaks ~12 MB above what stays); glibc keeps those
    pages mapped otherwise, in the parent and in each child that parsed it. Called after a config is applied;
    a no-op where the C library has no malloc_trim."""
    gc.collect()
    release_free_heap()


def release_free_heap() -> None:
    """malloc_trim alone (no collection): after a status answer, whose JSON passes through malloc's heap (its
    blocks are too large for pymalloc and too small for a mapping of their own) and leaves free pages in it,
    ~0.5 MB per process at 1,000 instances, kept mapped otherwise."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def asyncio_has_tls() -> bool:
    """Whether this process's asyncio can open TLS connections (it cannot after asyncio_without_tls())."""
    from asyncio import sslproto  # pylint: disable=import-outside-toplevel

    return sslproto.ssl is not None
