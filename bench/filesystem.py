"""A probe of how fast the filesystem under the work directory creates files right now.

On ext4, files created in the minutes after a mass deletion get their inodes several times
more slowly (the kernel passes over the recently freed ones), and every run here creates
thousands of files: such a spell slows runs for reasons of their own. The session waits
for a spell to pass before its first run, and the report gives the probe's time and the
wait, so that a reader can tell a slow spell from a slow run.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PROBE_FILES = 5000
# Measured on the machine of the README's table: about 0.2 s when quiet, 0.5-4.6 s in the
# seven minutes after 20 000 files were deleted; quiet probes took 0.17-0.35 s on 2026-11-27.
SLOW_SECONDS = 0.35
# The kernel passes over an inode freed in the last minute, or in the last six while its
# inode table block is not yet written back: a spell is over within about seven minutes.
WAIT_STEP_SECONDS = 30.0
MOST_WAIT_SECONDS = 8 * 60.0
# A session's own deletion of its work directory can slow the next session in block groups
# the probe's one directory does not reach: runs under bench/out took 2.5-2.8 s right after
# one (runs under another directory: 1.6-1.8 s), 1.4-1.6 s seven minutes later.
DELETION_SPELL_SECONDS = 7 * 60.0
DELETION_MARK = "last-deletion"


@dataclass(frozen=True)
class Probe:
    """The last probe's time and how long the session waited for a slow spell to pass."""

    seconds: float
    waited: float = 0.0


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


def synced_file_creation_seconds(directory: Path) -> float:
    """Write back what is dirty, then return the time to create PROBE_FILES files in ``directory``.

    Inode tables written back shorten the kernel's memory of recent deletions to a minute.
    """
    os.sync()
    return file_creation_seconds(directory)


def wait_until_quiet(
    directory: Path,
    probe: Callable[[Path], float] = synced_file_creation_seconds,
    sleep: Callable[[float], None] = time.sleep,
) -> Probe:
    """Probe in new subdirectories of ``directory`` until a probe is quick or MOST_WAIT_SECONDS have passed."""
    waited = 0.0
    while True:
        seconds = probe(directory / f"file-creation-probe-{time.time_ns()}")
        if seconds <= SLOW_SECONDS or waited >= MOST_WAIT_SECONDS:
            return Probe(seconds, waited)
        sleep(WAIT_STEP_SECONDS)
        waited += WAIT_STEP_SECONDS


def remove_work(directory: Path, mark: Path) -> None:
    """Remove a session's work ``directory`` and write the time into ``mark`` for the next session."""
    shutil.rmtree(directory, ignore_errors=True)
    mark.write_text(f"{time.time()}\n")


def wait_after_deletion(
    mark: Path, sleep: Callable[[float], None] = time.sleep, now: Callable[[], float] = time.time
) -> float:
    """Wait until DELETION_SPELL_SECONDS have passed since the time in ``mark``; return how long it waited."""
    try:
        deleted = float(mark.read_text())
    except (OSError, ValueError):
        return 0.0
    remaining = min(deleted + DELETION_SPELL_SECONDS - now(), DELETION_SPELL_SECONDS)
    if remaining <= 0:
        return 0.0
    sleep(remaining)
    return remaining


def describe_probe(probe: Probe) -> str:
    """Return the report's sentence about ``probe``."""
    slow = "SLOW: runs that write files are slower too; see bench/README.md"
    verdict = "quiet" if probe.seconds <= SLOW_SECONDS else slow
    wait = f", after waiting {probe.waited:.0f} s for a slow spell to pass" if probe.waited else ""
    return f"Creating {PROBE_FILES} files before the runs took {probe.seconds:.2f} s ({verdict}{wait})."
