"""mbox files as migrator wrote them before the index (index.py): read exactly, and their killed appends cut off.

Each message was written with a marker line after its From line::

    X-Migrator-Mbox: 1 size=<bytes of the message> stored=<bytes of its quoted form> added=<n>
    <n lines: Status, X-Status, X-Keywords>
    <the message, mboxrd-quoted> <LF if it does not end with one> <LF>

and the length of the file was kept in the hidden file ``.NAME.length`` beside it. Such a file
still reads back exactly, and the first append of this version cuts off what an append of the
older one left unfinished (``intact_length``) before it starts the index.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from migrator.stores.mbox.envelope import Buffer, starts_at

_MARKER = re.compile(rb"X-Migrator-Mbox: 1 size=(\d+) stored=(\d+) added=([0-3])\n")
_MARKER_START = b"X-Migrator-Mbox: 1 size="
_FLAG_LINE = re.compile(rb"(?:Status|X-Status|X-Keywords): [^\n]*\n")
_LENGTH_LINE = 32  # bytes read from a length file: one line of digits


@dataclass(frozen=True)
class Marked:
    """Where the parts of a message with a marker line lie, from its From line at ``offset``."""

    offset: int
    head: int  # where its flag lines start
    start: int  # where the message starts
    stop: int  # and ends
    end: int  # where the next From line is
    size: int


def marked(buffer: Buffer, offset: int, body: int) -> Marked | None:
    """Return the message with a marker line at ``body`` (its From line at ``offset``), if it is intact."""
    promised = _promised(buffer, offset, body)
    if promised is None or promised.end > len(buffer):
        return None
    if not (promised.end == len(buffer) or starts_at(buffer, promised.end, b"From ")):
        return None  # changed by another program since: read as its message
    return promised


def _promised(buffer: Buffer, offset: int, body: int) -> Marked | None:
    """Return where the message with a marker at ``body`` lies once whole (past the end of ``buffer`` when it
    was cut short), or None when no such message starts there or another program changed it."""
    match = _MARKER.match(buffer, body)
    if match is None:
        return None
    size, stored, added = map(int, match.groups())
    start = match.end()
    for _ in range(added):
        line = _FLAG_LINE.match(buffer, start)
        if line is None:
            return None if buffer.find(b"\n", start) >= 0 else Marked(offset, 0, 0, 0, len(buffer) + 1, size)
        start = line.end()
    stop = start + stored
    ending = b"\n" if stored and buffer[stop - 1 : stop] == b"\n" else b"\n\n"
    end = stop + len(ending)
    if end <= len(buffer) and buffer[stop:end] != ending:
        return None
    return Marked(offset, match.end(), start, stop, end, size)


def recorded_length(path: Path) -> int | None:
    """Return the length the legacy length file of the mbox ``path`` records, or None without one."""
    try:
        fd = os.open(path.with_name(f".{path.name}.length"), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        text = os.pread(fd, _LENGTH_LINE, 0).strip()
    finally:
        os.close(fd)
    return int(text) if text.isdigit() else None


def remove_length_file(path: Path) -> None:
    """Remove the legacy length file of the mbox ``path``, which the index replaces (a failure leaves it unread)."""
    try:
        os.unlink(path.with_name(f".{path.name}.length"))
    except OSError:
        pass


def intact_length(buffer: Buffer, start: int) -> int:
    """Return the length of the mbox in ``buffer`` without what an append begun at ``start`` and cut short
    left: the end of the last whole message written from ``start`` on, when nothing but the beginning of
    one more message with a marker follows; else (other mail follows) ``len(buffer)``."""
    end = position = start
    while position < start + 2 and buffer[position : position + 1] == b"\n":
        position += 1  # the line an append adds first when the file does not end with a blank line
    while position < len(buffer):
        promised = _promised_from(buffer, position)
        if promised is None or promised.end > len(buffer):
            break
        end = position = promised.end
    return end if _unfinished(buffer, position) else len(buffer)


def _promised_from(buffer: Buffer, offset: int) -> Marked | None:
    line_end = buffer.find(b"\n", offset)
    if not starts_at(buffer, offset, b"From ") or line_end < 0:
        return None
    return _promised(buffer, offset, line_end + 1)


def _unfinished(buffer: Buffer, offset: int) -> bool:
    """Return True when ``buffer`` holds from ``offset`` nothing, or only the beginning of one message with
    a marker: a From line or a part of one, then a marker line or a part of one, then less than it promises."""
    if offset >= len(buffer):
        return True
    line_end = buffer.find(b"\n", offset)
    if line_end < 0:
        return b"From ".startswith(bytes(buffer[offset : offset + 5]))
    if not starts_at(buffer, offset, b"From ") or buffer.find(b"\nFrom ", line_end) >= 0:
        return False  # another message follows: a message of ours quotes every line starting so
    promised = _promised_from(buffer, offset)
    if promised is not None:
        return promised.end > len(buffer)
    marker_part = bytes(buffer[line_end + 1 : line_end + 1 + len(_MARKER_START)])
    return buffer.find(b"\n", line_end + 1) < 0 and _MARKER_START.startswith(marker_part)
