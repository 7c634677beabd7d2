"""The bytes around each message migrator writes into an mbox, and its From line.

One message is written as::

    From <sender> <received: asctime in UTC> +0000
    <the lines its dialect adds (dialect.py): its flags, where the file's readers look for them>
    <the message, quoted as its dialect says, line endings untouched>
    <one LF, or two: see dialect.py>

and its index line (index.py) records where each part lies. The sender is the message's
Return-Path address (``MAILER-DAEMON`` without one); the date is UTC, marked ``+0000`` after
the year because Dovecot takes a From line without a zone for its own local time. It keeps the
second: the sub-second part of the received date is lost.
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from migrator.core.contentkey import header_block
from migrator.core.message import Message
from migrator.stores.mbox.dialect import Dialect, Frame
from migrator.stores.mbox.index import Record
from migrator.stores.mbox.quoting import quote_mboxrd

Buffer = bytes | mmap.mmap  # an mbox being read: mapped, or (in tests) bytes
DEFAULT_SENDER = "MAILER-DAEMON"
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_RETURN_PATH = re.compile(rb"^Return-Path:[ \t]*<?([!-;=?-~]+)>?[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_FROM_DATE = re.compile(
    rb"[A-Za-z]{3} +([A-Za-z]{3}) +(\d{1,2}) +(\d{1,2}):(\d\d)(?::(\d\d))?"
    rb"(?: +(?:[A-Z]{1,5}|([+-]\d{4})))? +(\d{4})(?: +([+-]\d{4}))?"
)


@dataclass(frozen=True)
class Laid:
    """One message of an append, laid out: what it is written as, and the index record saying so."""

    message: Message
    envelope: bytes  # its From line and the lines the dialect adds
    frame: Frame
    record: Record

    def pieces(self) -> list[bytes]:
        """Return the bytes to write for it, in order (pieces rather than one copy: a 10 MB message then
        costs no second 10 MB, and its quoted form exists only while it is written)."""
        raw = self.message.raw
        return [self.envelope, quote_mboxrd(raw) if self.frame.quoted else raw, b"\n" * self.frame.tail]


def lay_out(messages: Sequence[Message], dialect: Dialect, offset: int, first_line: bytes = b"") -> list[Laid]:
    """Return ``messages`` laid out one after another from ``offset``; ``first_line`` starts the added lines
    of the first (the keyword list of a file's first message)."""
    laid = []
    for message in messages:
        frame = dialect.frame(message)
        envelope = from_line(message) + first_line + frame.head
        first_line = b""
        record = Record(offset, len(envelope), frame.stored, frame.tail, len(message.raw), frame.crc, frame.quoted)
        laid.append(Laid(message, envelope, frame, record))
        offset = record.end
    return laid


def from_line(message: Message) -> bytes:
    """Return the ``From `` line (with its LF) for ``message``."""
    sender = envelope_sender(message.raw).encode("ascii")
    return b"From %s %s +0000\n" % (sender, asctime(message.received).encode("ascii"))


def envelope_sender(raw: bytes) -> str:
    """Return the Return-Path address of ``raw``, or MAILER-DAEMON when it has none that fits a From line."""
    match = _RETURN_PATH.search(header_block(raw))
    return match.group(1).decode("ascii") if match else DEFAULT_SENDER


def asctime(moment: datetime) -> str:
    """Return ``moment`` in UTC as asctime() writes it (``Thu Nov  6 17:20:42 2024``)."""
    utc = moment.astimezone(timezone.utc)
    return f"{_DAYS[utc.weekday()]} {_MONTHS[utc.month - 1]} {utc.day:2d} {utc:%H:%M:%S} {utc.year:04d}"


def from_line_date(line: bytes) -> datetime | None:
    """Return the date of a ``From `` line (UTC unless it gives a zone), or None when it has none."""
    match = _FROM_DATE.search(line, 5)
    if match is None:
        return None
    month, day, hour, minute, second, zone_before, year, zone_after = match.groups()
    try:
        moment = datetime(
            int(year), _MONTHS.index(month.decode().title()) + 1, int(day), int(hour), int(minute), int(second or 0)
        )
    except ValueError:
        return None
    return moment.replace(tzinfo=_zone(zone_before or zone_after))


def _zone(offset: bytes | None) -> timezone:
    if offset is None:
        return timezone.utc
    minutes = int(offset[1:3]) * 60 + int(offset[3:5])
    return timezone(timedelta(minutes=-minutes if offset[:1] == b"-" else minutes))


def starts_at(buffer: Buffer, position: int, text: bytes) -> bool:
    """Return True when ``buffer`` (bytes or an mmap, which has no startswith) holds ``text`` at ``position``."""
    return buffer[position : position + len(text)] == text
