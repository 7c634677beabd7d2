"""Which pages of a file the kernel holds in its page cache, read with mincore(2) (Linux)."""

from __future__ import annotations

import ctypes
import mmap
import os
import sys
from pathlib import Path

import pytest


def cached_pages(path: Path) -> list[bool]:
    """Return, page by page, whether the file's content is in the page cache."""
    size = path.stat().st_size
    with open(path, "rb") as file, mmap.mmap(file.fileno(), size, access=mmap.ACCESS_COPY) as mapping:
        # A private mapping not written to shows the file's own pages; mapping them reads nothing.
        address = ctypes.addressof(ctypes.c_char.from_buffer(mapping))
        pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
        vector = (ctypes.c_ubyte * pages)()
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte))
        if libc.mincore(address, size, vector) != 0:
            raise OSError(ctypes.get_errno(), "mincore failed")
        return [bool(byte & 1) for byte in vector]


def _kernel_drops_synced_pages(directory: Path) -> bool:
    """Return True when, here, a synced file's pages leave the cache on POSIX_FADV_DONTNEED (not tmpfs)."""
    if not sys.platform.startswith("linux"):
        return False
    probe = directory / "pagecache-probe"
    fd = os.open(probe, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, b"x" * 4 * mmap.PAGESIZE)
        os.fsync(fd)
        was_cached = all(cached_pages(probe))
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return was_cached and not any(cached_pages(probe))
    finally:
        os.close(fd)
        probe.unlink()


def require_dropped_pages(directory: Path) -> None:
    """Skip the calling test where a synced file's pages stay cached on POSIX_FADV_DONTNEED (tmpfs, not Linux)."""
    if not _kernel_drops_synced_pages(directory):
        pytest.skip("this kernel or filesystem keeps synced pages cached (tmpfs, not Linux)")
