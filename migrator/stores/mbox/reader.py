"""Finding the messages of an mbox in a buffer (an mmap of the file, or bytes): pure.

A message starts at a ``From `` line that begins the file or follows a blank line. One that
migrator wrote (marker line, see envelope.py) is located by the lengths its marker records
and read back exactly. Any other is kept as the file holds it, without its From line and the
blank line before the next one: mboxcl2 messages end where a valid ``Content-Length`` says,
others (mboxo, mboxrd of other programs) at the next separator. Their ``>From `` lines stay
as they are, since mboxo quoting cannot be undone without guessing.

An append that was killed leaves the beginning of a message at the end of the file;
``intact_length`` finds where it starts, so that the next append can cut it off.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from migrator.message import Flags
from migrator.stores.mbox.envelope import from_line_date, parse_marker
from migrator.stores.mbox.quoting import unquote_mboxrd
from migrator.stores.mbox.status import flags_from_headers

_BLANK_LINE = re.compile(rb"\n\r?\n")
_SEPARATOR = re.compile(rb"\n\r?\n(?=From )")
_FLAG_LINE = re.compile(rb"(?:Status|X-Status|X-Keywords): [^\n]*\n")
_CONTENT_LENGTH = re.compile(rb"^Content-Length:[ \t]*(\d+)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_MARKER_START = b"X-Migrator-Mbox: 1 size="


@dataclass(frozen=True)
class Entry:
    """Where one message lies in an mbox and what its headers say about it."""

    offset: int  # of its From line: the message's uid
    end: int  # where the next From line (or the end of the file) is
    start: int  # where the message's bytes begin
    stop: int  # and end
    quoted: bool  # written by migrator: mboxrd-quoted
    size: int
    flags: Flags
    received: datetime | None


def entries(buffer: bytes) -> Iterator[Entry]:
    """Yield every message of the mbox in ``buffer``; raise ValueError if it does not start with a From line."""
    offset = 0
    while offset < len(buffer):
        entry = read_entry(buffer, offset)
        yield entry
        offset = entry.end


def read_entry(buffer: bytes, offset: int) -> Entry:
    """Return the message whose From line starts at ``offset``; raise ValueError if there is none."""
    if not _at(buffer, offset, b"From ") or (offset > 0 and buffer[offset - 1 : offset] != b"\n"):
        raise ValueError(f"no From line at offset {offset}")
    line_end = buffer.find(b"\n", offset)
    body = len(buffer) if line_end < 0 else line_end + 1
    received = from_line_date(bytes(buffer[offset:body]))
    return _ours(buffer, offset, body, received) or _foreign(buffer, offset, body, received)


def message_bytes(buffer: bytes, entry: Entry) -> bytes:
    """Return the message ``entry`` locates, exactly as it was before it went into the mbox."""
    data = bytes(buffer[entry.start : entry.stop])
    return unquote_mboxrd(data) if entry.quoted else data


def intact_length(buffer: bytes, start: int) -> int:
    """Return the length of the mbox in ``buffer`` without what an append begun at ``start`` and cut short
    left: the end of the last whole message written from ``start`` on, when nothing but the beginning of
    one more message as migrator writes it follows; else (other mail follows) ``len(buffer)``."""
    end = position = start
    while position < start + 2 and buffer[position : position + 1] == b"\n":
        position += 1  # the line an append adds first when the file does not end with a blank line
    while position < len(buffer):
        promised = _promised_end(buffer, position)
        if promised is None or promised > len(buffer):
            break
        end = position = promised
    return end if _unfinished(buffer, position) else len(buffer)


def _promised_end(buffer: bytes, offset: int) -> int | None:
    """Return where the message migrator wrote from ``offset`` ends once whole (past the end of ``buffer``
    when it was cut short), or None when no message of migrator's starts there."""
    line_end = buffer.find(b"\n", offset)
    marker = parse_marker(buffer, line_end + 1) if _at(buffer, offset, b"From ") and line_end >= 0 else None
    if marker is None:
        return None
    start = buffer.find(b"\n", line_end + 1) + 1
    for _ in range(marker.added):
        line = _FLAG_LINE.match(buffer, start)
        if line is None:
            return len(buffer) + 1 if buffer.find(b"\n", start) < 0 else None  # cut in a flag line, or changed
        start = line.end()
    stop = start + marker.stored
    ending = b"\n" if marker.stored and buffer[stop - 1 : stop] == b"\n" else b"\n\n"
    end = stop + len(ending)
    if end <= len(buffer) and buffer[stop:end] != ending:
        return None  # changed by another program
    return end


def _unfinished(buffer: bytes, offset: int) -> bool:
    """Return True when ``buffer`` holds from ``offset`` nothing, or only the beginning of one message as
    migrator writes it: a From line or a part of one, then a marker line or a part of one, then less than
    its marker promises."""
    if offset >= len(buffer):
        return True
    line_end = buffer.find(b"\n", offset)
    if line_end < 0:
        return b"From ".startswith(bytes(buffer[offset : offset + 5]))
    if not _at(buffer, offset, b"From ") or buffer.find(b"\nFrom ", line_end) >= 0:
        return False  # another message follows: a message of ours quotes every line starting so
    promised = _promised_end(buffer, offset)
    if promised is not None:
        return promised > len(buffer)
    marker_part = bytes(buffer[line_end + 1 : line_end + 1 + len(_MARKER_START)])
    return buffer.find(b"\n", line_end + 1) < 0 and _MARKER_START.startswith(marker_part)


def _ours(buffer: bytes, offset: int, body: int, received: datetime | None) -> Entry | None:
    marker = parse_marker(buffer, body)
    if marker is None:
        return None
    start = buffer.find(b"\n", body) + 1
    flag_lines = []
    for _ in range(marker.added):
        line = _FLAG_LINE.match(buffer, start)
        if line is None:
            return None
        flag_lines.append(line.group())
        start = line.end()
    stop = start + marker.stored
    ending = b"\n" if marker.stored and buffer[stop - 1 : stop] == b"\n" else b"\n\n"
    end = stop + len(ending)
    if buffer[stop:end] != ending or not (end == len(buffer) or _at(buffer, end, b"From ")):
        return None  # changed by another program since: read it as a foreign message
    return Entry(offset, end, start, stop, True, marker.size, flags_from_headers(b"".join(flag_lines)), received)


def _foreign(buffer: bytes, offset: int, body: int, received: datetime | None) -> Entry:
    blank = _BLANK_LINE.search(buffer, body - 1)
    header_stop = blank.start() + 1 if blank else len(buffer)
    headers = bytes(buffer[body:header_stop])
    extent = _length_extent(buffer, blank.end(), headers) if blank else None
    end, stop = extent or _separator_extent(buffer, header_stop - 1)
    return Entry(offset, end, body, stop, False, stop - body, flags_from_headers(headers), received)


def _length_extent(buffer: bytes, body_start: int, headers: bytes) -> tuple[int, int] | None:
    """Return (end, stop) as a Content-Length header gives them, or None if it has none that fits."""
    match = _CONTENT_LENGTH.search(headers)
    if match is None:
        return None
    stop = body_start + int(match.group(1))
    if stop == len(buffer):
        return stop, stop
    if buffer[stop : stop + 1] == b"\n" and (stop + 1 == len(buffer) or _at(buffer, stop + 1, b"From ")):
        return stop + 1, stop
    return None


def _separator_extent(buffer: bytes, search_from: int) -> tuple[int, int]:
    """Return (end, stop) up to the next separator, or to the end less a final blank line."""
    separator = _SEPARATOR.search(buffer, search_from)
    if separator is not None:
        return separator.end(), separator.start() + 1
    end = len(buffer)
    for blank in (b"\n\n", b"\n\r\n"):
        if end - len(blank) >= search_from and buffer[end - len(blank) : end] == blank:
            return end, end - len(blank) + 1
    return end, end


def _at(buffer: bytes, position: int, text: bytes) -> bool:
    # An mmap has no startswith().
    return buffer[position : position + len(text)] == text
