"""Finding the messages of an mbox in a buffer (an mmap of the file, or bytes): pure.

A message starts at a ``From `` line that begins the file or follows a line end. One that the
index names (index.py), and that fits its record, is read back exactly: without the lines
migrator added, unquoted. One that an older migrator wrote with a marker line (legacy.py) is
read exactly too. Any other is read as its dialect's programs read it (dialect.py), without its
From line and the blank line before the next one: mboxcl2 messages end where a valid
``Content-Length`` says, others (mboxo, mboxrd of other programs) at the next separator.

An append that was killed leaves the beginning of a message at the end of the file;
``kept_length`` finds where it starts, so that the next append can cut it off.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from migrator.core.message import Flags
from migrator.stores.mbox.dialect import Dialect
from migrator.stores.mbox.envelope import Buffer, from_line_date, starts_at
from migrator.stores.mbox.index import Record
from migrator.stores.mbox.legacy import marked
from migrator.stores.mbox.quoting import unquote_mboxrd
from migrator.stores.mbox.status import flags_from_headers

_BLANK_LINE = re.compile(rb"\n\r?\n")
_SEPARATOR = re.compile(rb"\n\r?\n(?=From )")
_CONTENT_LENGTH = re.compile(rb"^Content-Length:[ \t]*(\d+)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Entry:
    """Where one message lies in an mbox and what its headers say about it."""

    offset: int  # of its From line: the message's uid
    end: int  # where the next From line (or the end of the file) is
    start: int  # where the message's bytes begin
    stop: int  # and end
    quoted: bool  # written by migrator: mboxrd-quoted
    size: int
    flags: Flags | None  # None: a message its program takes as gone
    received: datetime | None
    crc: int | None = None  # of the message, when the index names it
    foreign: bool = False  # written by another program: read as its dialect says


def entries(buffer: Buffer, records: Mapping[int, Record], dialect: Dialect) -> Iterator[Entry]:
    """Yield every message of the mbox in ``buffer`` (those taken as gone too: their flags are None); raise
    ValueError if it does not start with a From line."""
    offset = 0
    while offset < len(buffer):
        entry = read_entry(buffer, offset, records, dialect)
        yield entry
        offset = entry.end


def read_entry(buffer: Buffer, offset: int, records: Mapping[int, Record], dialect: Dialect) -> Entry:
    """Return the message whose From line starts at ``offset``; raise ValueError if there is none."""
    body, received = _from_line(buffer, offset)
    record = records.get(offset)
    indexed = _indexed(buffer, body, record, dialect, received) if record is not None else None
    return indexed or _marked(buffer, offset, body, received) or foreign_entry(buffer, offset, body, dialect, received)


def message_at(buffer: Buffer, offset: int, records: Mapping[int, Record], dialect: Dialect) -> tuple[Entry, bytes]:
    """Return the message at ``offset`` and its bytes, exactly as they were before it went into the mbox;
    raise ValueError if no message starts there. One whose bytes are not those its record names (the
    file was changed in place since) is read as another program's."""
    entry = read_entry(buffer, offset, records, dialect)
    data = message_bytes(buffer, entry, dialect)
    if entry.crc is None or zlib.crc32(data) == entry.crc:
        return entry, data
    body, received = _from_line(buffer, offset)
    entry = foreign_entry(buffer, offset, body, dialect, received)
    return entry, message_bytes(buffer, entry, dialect)


def _from_line(buffer: Buffer, offset: int) -> tuple[int, datetime | None]:
    """Return where the From line at ``offset`` ends and the date it gives; raise ValueError if there is none."""
    if not starts_at(buffer, offset, b"From ") or (offset > 0 and buffer[offset - 1 : offset] != b"\n"):
        raise ValueError(f"no From line at offset {offset}")
    line_end = buffer.find(b"\n", offset)
    body = len(buffer) if line_end < 0 else line_end + 1
    return body, from_line_date(bytes(buffer[offset:body]))


def message_bytes(buffer: Buffer, entry: Entry, dialect: Dialect) -> bytes:
    """Return the message ``entry`` locates, exactly as it was before it went into the mbox."""
    data = bytes(buffer[entry.start : entry.stop])
    if entry.foreign:
        return dialect.foreign_bytes(data)
    return unquote_mboxrd(data) if entry.quoted else data


def _indexed(buffer: Buffer, body: int, record: Record, dialect: Dialect, received: datetime | None) -> Entry | None:
    """Return the message ``record`` names if the file holds it as the record says, else None."""
    if record.start < body or record.end > len(buffer) or buffer[record.stop : record.end] != b"\n" * record.tail:
        return None
    end = record.end
    if buffer[end : end + 1] == b"\n":
        end += 1  # a blank line another program (or an append after a failed one) put before the next From line
    if not (end == len(buffer) or starts_at(buffer, end, b"From ")):
        return None
    head = bytes(buffer[body : record.start])
    if not dialect.is_head(head):
        return None
    return Entry(record.offset, end, record.start, record.stop, record.quoted, record.size, dialect.flags(head),
                 received, record.crc)


def _marked(buffer: Buffer, offset: int, body: int, received: datetime | None) -> Entry | None:
    found = marked(buffer, offset, body)
    if found is None:
        return None
    flags = flags_from_headers(bytes(buffer[found.head : found.start]))
    return Entry(offset, found.end, found.start, found.stop, True, found.size, flags, received)


def foreign_entry(buffer: Buffer, offset: int, body: int, dialect: Dialect, received: datetime | None) -> Entry:
    """Return the message another program wrote from ``offset`` (its headers start at ``body``)."""
    blank = _BLANK_LINE.search(buffer, body - 1)
    header_stop = blank.start() + 1 if blank else len(buffer)
    headers = bytes(buffer[body:header_stop])
    extent = _length_extent(buffer, blank.end(), headers) if blank else None
    end, stop = extent or _separator_extent(buffer, header_stop - 1)
    size = dialect.foreign_size(buffer, body, stop)
    return Entry(offset, end, body, stop, False, size, dialect.foreign_flags(headers), received, foreign=True)


def _length_extent(buffer: Buffer, body_start: int, headers: bytes) -> tuple[int, int] | None:
    """Return (end, stop) as a Content-Length header gives them, or None if it has none that fits."""
    match = _CONTENT_LENGTH.search(headers)
    if match is None:
        return None
    stop = body_start + int(match.group(1))
    if stop == len(buffer):
        return stop, stop
    if buffer[stop : stop + 1] == b"\n" and (stop + 1 == len(buffer) or starts_at(buffer, stop + 1, b"From ")):
        return stop + 1, stop
    return None


def _separator_extent(buffer: Buffer, search_from: int) -> tuple[int, int]:
    """Return (end, stop) up to the next separator, or to the end less a final blank line."""
    separator = _SEPARATOR.search(buffer, search_from)
    if separator is not None:
        return separator.end(), separator.start() + 1
    end = len(buffer)
    for blank in (b"\n\n", b"\n\r\n"):
        if end - len(blank) >= search_from and buffer[end - len(blank) : end] == blank:
            return end, end - len(blank) + 1
    return end, end


def kept_length(buffer: Buffer, begun: int, batch: Sequence[Record], dialect: Dialect) -> int:
    """Return the length of the mbox in ``buffer`` without what an append that began at ``begun``, meaning
    to write ``batch``, left unfinished: the end of its last whole message, when nothing but the beginning
    of the next one follows (the LFs before its From line, then a part of its From line, of the lines
    ``dialect`` adds and of the message); else, when anything else follows (mail another program appended
    since), ``len(buffer)``."""
    kept = begun
    for record in batch:
        if not _whole(buffer, record):
            return kept if _begun(buffer, kept, record, dialect) else len(buffer)
        kept = record.end
    return len(buffer) if kept < len(buffer) else kept


def _whole(buffer: Buffer, record: Record) -> bool:
    return (
        record.end <= len(buffer)
        and starts_at(buffer, record.offset, b"From ")
        and buffer[record.stop : record.end] == b"\n" * record.tail
    )


def _begun(buffer: Buffer, kept: int, record: Record, dialect: Dialect) -> bool:
    """Return True when ``buffer`` holds from ``kept`` only the beginning of the message ``record`` names."""
    if len(buffer) >= record.end or any(byte != 0x0A for byte in buffer[kept : min(record.offset, len(buffer))]):
        return False
    if record.offset >= len(buffer):
        return True
    line_end = buffer.find(b"\n", record.offset)
    if line_end < 0:
        return b"From ".startswith(bytes(buffer[record.offset : record.offset + 5]))
    head = bytes(buffer[line_end + 1 : min(record.start, len(buffer))])
    if not starts_at(buffer, record.offset, b"From ") or not dialect.is_head(head[: head.rfind(b"\n") + 1]):
        return False  # another program's message, appended where this one was to be
    # A message migrator writes quotes every line starting so: one found after it is another message.
    return buffer.find(b"\nFrom ", record.offset) < 0
