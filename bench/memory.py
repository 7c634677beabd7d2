"""Before each run, memory touched and freed, so that every run writes into memory used before.

On a virtual machine, the host may give the guest a page of memory only when the guest first
touches it. Writing 260 MB into the page cache took 0.8 s the first time and 0.11 s once the
pages had been used and freed (this machine, 2026-11-27). Every run leaves what it wrote in the
page cache until the session ends, so whichever run first needed fresh pages paid for them: the
run order, not the program, decided a good part of a cold run's time. Before each run the
session touches and frees enough memory for that run to write into.
"""

from __future__ import annotations

from collections.abc import Callable

HEADROOM = 2  # times the corpus: the copy's files, and the server's own files in IMAP -> IMAP


def recycle_memory(corpus_bytes: int, available: Callable[[], int] | None = None) -> int:
    """Touch and free memory for a run writing about ``corpus_bytes``; return how many bytes.

    At most half of what ``available()`` returns (``available_memory`` unless given) is touched.
    """
    size = min(HEADROOM * corpus_bytes, (available or available_memory)() // 2)
    if size > 0:
        block = bytearray(size)  # zero-filled, so every page is written once
        del block  # a block this large is a mapping of its own: freeing it gives its pages back
    return size


def available_memory() -> int:
    """Return the memory the kernel could give without swapping (MemAvailable), 0 if unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
