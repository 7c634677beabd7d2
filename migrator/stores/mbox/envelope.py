"""What migrator writes around each message in an mbox, and how it reads that back.

One message is written as::

    From <sender> <received: asctime in UTC> +0000
    X-Migrator-Mbox: 1 size=<bytes of the message> stored=<bytes of its quoted form> added=<n>
    <n lines: Status, X-Status, X-Keywords, see status.py>
    <the message, mboxrd-quoted, line endings untouched>
    <LF if the message does not end with one>
    <LF: the blank line before the next From line>

The marker line tells a message migrator wrote (read back exactly) from a foreign one
(kept as the file holds it). It records how many flag lines follow it, so that Status-like
headers already in the message stay; and the length of the quoted message, so that a
message without a final newline is recovered exactly and a scan can skip the body. The
sender is the message's Return-Path address (``MAILER-DAEMON`` without one); the date is
UTC, marked ``+0000`` after the year because Dovecot takes a From line without a zone for
its own local time. It keeps the second: the sub-second part of the received date is lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from migrator.contentkey import header_block
from migrator.message import Message
from migrator.stores.mbox.quoting import quote_mboxrd
from migrator.stores.mbox.status import status_lines

DEFAULT_SENDER = "MAILER-DAEMON"
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_RETURN_PATH = re.compile(rb"^Return-Path:[ \t]*<?([!-;=?-~]+)>?[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_MARKER = re.compile(rb"X-Migrator-Mbox: 1 size=(\d+) stored=(\d+) added=([0-3])\n")
_FROM_DATE = re.compile(
    rb"[A-Za-z]{3} +([A-Za-z]{3}) +(\d{1,2}) +(\d{1,2}):(\d\d)(?::(\d\d))?"
    rb"(?: +(?:[A-Z]{1,5}|([+-]\d{4})))? +(\d{4})(?: +([+-]\d{4}))?"
)


@dataclass(frozen=True)
class Marker:
    """What the marker line of a message migrator wrote says."""

    size: int
    stored: int
    added: int


def serialise(message: Message) -> list[bytes]:
    """Return the pieces that, written in order, hold ``message`` in an mbox (From line to blank line).

    Pieces rather than one joined copy: a 10 MB message then costs no second 10 MB.
    """
    quoted = quote_mboxrd(message.raw)  # the raw bytes themselves when no line needs quoting
    flag_lines = status_lines(message.flags)
    marker = b"X-Migrator-Mbox: 1 size=%d stored=%d added=%d\n" % (len(message.raw), len(quoted), len(flag_lines))
    ending = b"\n" if quoted.endswith(b"\n") else b"\n\n"
    return [from_line(message) + marker + b"".join(flag_lines), quoted, ending]


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


def parse_marker(buffer: bytes, position: int) -> Marker | None:
    """Return the marker line starting at ``position`` in ``buffer``, or None if there is none."""
    match = _MARKER.match(buffer, position)
    return Marker(*map(int, match.groups())) if match else None
