"""A probe of how fast the filesystem under the work directory creates files right now.

On ext4, files created in the minutes after a mass deletion get their inodes several times
more slowly (the kernel passes over the recently freed ones), and every run here creates
thousands of files: such a spell slows runs for reasons of their own. The report gives the
probe's time, so that a reader can tell a slow spell from a slow run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PROBE_FILES = 5000
# Measured on the machine of the README's table: about 0.2 s when quiet, 0.5-4.6 s in the
# seven minutes after 20 000 files were deleted.
SLOW_SECONDS = 0.5


def file_creation_seconds(directory: Path, count: int = PROBE_FILES) -> float:
    """Create ``count`` small files in the new ``directory`` and return how long it took.

    The files stay: deleting them would start the very spell the probe looks for. The
    session removes them with the rest of its work directory.
    """
    directory.mkdir(parents=True, mode=0o700)
    start = time.perf_counter()
    for number in range(count):
        fd = os.open(directory / str(number), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"probe\n")
        finally:
            os.close(fd)
    return time.perf_counter() - start


def describe_probe(seconds: float) -> str:
    """Return the report's sentence about a probe that took ``seconds``."""
    verdict = "quiet" if seconds <= SLOW_SECONDS else "SLOW: runs that write files are slower too; see bench/README.md"
    return f"Creating {PROBE_FILES} files before the runs took {seconds:.2f} s ({verdict})."
