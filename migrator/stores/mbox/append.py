"""Appending a batch of messages to an mbox file held under its locks, with its index.

In order: what a killed append left at the end of the file is cut off (``kept_length``, or for
a file of an older migrator ``legacy.intact_length``); the keyword list of the file's first
message is rewritten in place if the batch brings new keywords (dialect.py); the batch's index
lines are made durable (index.py); the messages are written and fsynced; the index says the
append ended. A write that fails truncates the file back to its length before the batch.
"""

from __future__ import annotations

import logging
import mmap
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from migrator.core.message import Message
from migrator.stores.base import AppendResult
from migrator.stores.local.files import disk_error, forget_cached, reason, stops_writing, write_all
from migrator.stores.mbox import legacy
from migrator.stores.mbox.dialect import Dialect
from migrator.stores.mbox.envelope import Laid, lay_out
from migrator.stores.mbox.index import AppendIndex
from migrator.stores.mbox.reader import kept_length

log = logging.getLogger(__name__)

_FIRST_LINES = 2048  # bytes read to find a file's keyword list: a From line and the list itself


def append_batch(
    fd: int, path: Path, index: AppendIndex, dialect: Dialect, messages: Sequence[Message]
) -> list[AppendResult]:
    """Append ``messages`` to the mbox ``path``, open as ``fd`` and locked for writing; return one result per
    message; raise FolderError (the index cannot be written) or DiskError (the disk takes no more)."""
    size, clean, legacy_cut = _cut_unfinished(fd, path, index, dialect)
    keywords = frozenset().union(*(dialect.listed_keywords(m.flags) for m in messages))
    first_line = _keyword_list(dialect, path, keywords) if size == 0 else b""
    relisted = bool(size and keywords) and _relist(fd, path, dialect, keywords)
    prefix = b"" if clean else _separator_needed(fd, size)
    laid = lay_out(messages, dialect, size + len(prefix), first_line)
    index.intend(size, [item.record for item in laid])
    if legacy_cut:
        legacy.remove_length_file(path)  # the index records the length now
    # The pages the batch wrote leave the cache, and those the keyword list was read from.
    results = _write(fd, path, size, prefix, laid, forget_from=0 if relisted else size)
    if all(result.ok for result in results):
        index.end(os.fstat(fd).st_size)
    return results


def _cut_unfinished(fd: int, path: Path, index: AppendIndex, dialect: Dialect) -> tuple[int, bool, bool]:
    """Truncate the mbox to what the last append left whole (fsynced); return its length, whether it ends
    with a message migrator wrote (then nothing has to go between it and the next), and whether the length
    file of an older migrator was read instead of the index."""
    size = os.fstat(fd).st_size
    last = index.last_append()
    if last.begun is None:
        recorded = legacy.recorded_length(path)
        if recorded is None or not recorded < size:
            return size, False, recorded is not None
        length = _measured(fd, lambda buffer: legacy.intact_length(buffer, recorded))
    elif last.ended is not None or size <= last.begun:
        return size, bool(last.batch) and last.batch[-1].end == size == last.ended, False
    else:
        begun = last.begun
        length = _measured(fd, lambda buffer: kept_length(buffer, begun, last.batch, dialect))
    if length < size:
        os.ftruncate(fd, length)
        os.fsync(fd)
        log.warning("%s: cut off %d bytes, the beginning of a message a run that was stopped was writing",
                    path, size - length)
    return length, any(record.end == length for record in last.batch), last.begun is None


def _measured(fd: int, measure: Callable[[mmap.mmap], int]) -> int:
    """Return what ``measure`` finds in the mbox open as ``fd``, mapped read-only."""
    with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as buffer:
        return measure(buffer)


def _keyword_list(dialect: Dialect, path: Path, keywords: frozenset[str]) -> bytes:
    """Return the keyword list that starts the file's first message, warning about keywords left out."""
    line, held = dialect.keyword_list(keywords, int(time.time()))
    _warn_unlisted(path, keywords - held)
    return line


def _relist(fd: int, path: Path, dialect: Dialect, keywords: frozenset[str]) -> bool:
    """Add ``keywords`` to the keyword list of the file's first message in place, when migrator wrote it;
    return True (the file's first bytes were read)."""
    start = os.pread(fd, _FIRST_LINES, 0)
    line_start = start.find(b"\n") + 1
    line_end = start.find(b"\n", line_start) + 1
    relisted = dialect.relisted(start[line_start:line_end], keywords) if line_start and line_end else None
    if relisted is not None:
        line, held = relisted
        os.pwrite(fd, line, line_start)  # made durable with the batch; a keyword listed in vain harms nothing
        _warn_unlisted(path, keywords - held)
    return True


def _warn_unlisted(path: Path, left_out: frozenset[str]) -> None:
    if left_out:
        log.warning("%s: no room to list the keywords %s for Dovecot in the file's first message; "
                    "migrator keeps them, Dovecot will not show them", path, " ".join(sorted(left_out)))


def _write(
    fd: int, path: Path, old_size: int, prefix: bytes, laid: Sequence[Laid], forget_from: int
) -> list[AppendResult]:
    """Write ``prefix`` and the ``laid`` messages at the end of the locked file ``fd``, ``old_size`` long, and
    fsync it, then drop its pages from ``forget_from`` on from the cache; on a failure truncate it back;
    return one result per message."""
    offset = old_size
    try:
        os.lseek(fd, old_size, os.SEEK_SET)
        write_all(fd, prefix)
        offset += len(prefix)
        for item in laid:  # written one at a time: a batch is never held twice
            for piece in item.pieces():
                write_all(fd, piece)
                offset += len(piece)
        os.fsync(fd)
    except BaseException as e:
        os.ftruncate(fd, old_size)
        os.fsync(fd)
        if not isinstance(e, OSError):
            raise
        if stops_writing(e):
            kept = "it is back to its length before this batch, and what was copied is kept"
            raise disk_error(path, e, kept) from None
        error = f"cannot write to {path}: {reason(e)} (the file was restored to its previous length)"
        return [AppendResult(item.message, error=error) for item in laid]
    # To the last page, kept for the next batch, which reads the file's last two bytes.
    forget_cached(fd, forget_from - forget_from % mmap.PAGESIZE, offset - offset % mmap.PAGESIZE)
    return [AppendResult(item.message, uid=str(item.record.offset)) for item in laid]


def _separator_needed(fd: int, size: int) -> bytes:
    """Return what must come before a new From line so that a blank line precedes it."""
    if size == 0:
        return b""
    tail = os.pread(fd, 2, max(size - 2, 0))
    if tail.endswith(b"\n\n"):
        return b""
    return b"\n" if tail.endswith(b"\n") else b"\n\n"
