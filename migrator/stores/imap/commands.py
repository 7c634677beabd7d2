"""Pure encoders for IMAP command arguments: strings, flag lists, UID sets, dates."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import NamedTuple

from migrator.stores.imap.parser import MONTHS

_QUOTABLE = frozenset(range(0x20, 0x7F))
_BARE_LF = re.compile(rb"(?<!\r)\n")


class Literal(NamedTuple):
    """Bytes sent as an IMAP literal (``{n}`` then the bytes), for anything a quoted string cannot hold."""

    data: bytes


@dataclass(frozen=True)
class Secret:
    """A command argument (a password, a SASL token) sent as it is, shown in protocol traces as ***."""

    value: bytes | Literal = field(repr=False)  # nor in a repr, which a traceback or a log may show


def astring(text: str) -> bytes | Literal:
    """Return ``text`` as a quoted string, or as a Literal when it holds non-printable or 8-bit characters."""
    raw = text.encode("utf-8", "surrogateescape")
    if all(byte in _QUOTABLE for byte in raw):
        return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return Literal(raw)


def message_literal(raw: bytes) -> Literal:
    """Return a message as the Literal an APPEND sends: its line ends CRLF, each bare LF made one."""
    if raw.count(b"\n") == raw.count(b"\r\n"):
        return Literal(raw)  # the usual case, without a copy of what may be a large message
    return Literal(_BARE_LF.sub(b"\r\n", raw))


def flag_list(flags: Iterable[str]) -> bytes:
    """Return ``(\\Seen $Forwarded)`` for the given flag strings (already valid atoms)."""
    return b"(" + " ".join(flags).encode("ascii") + b")"


def uid_set(uids: Iterable[int]) -> bytes:
    """Return a compact UID set (``1:4,7,9:10``) for the given uids; raise ValueError when empty."""
    ordered = sorted(set(uids))
    if not ordered:
        raise ValueError("an IMAP UID set cannot be empty")
    ranges: list[str] = []
    start = previous = ordered[0]
    for uid in ordered[1:] + [None]:
        if uid is not None and uid == previous + 1:
            previous = uid
            continue
        ranges.append(str(start) if start == previous else f"{start}:{previous}")
        if uid is not None:
            start = previous = uid
    return ",".join(ranges).encode("ascii")


def internaldate(moment: datetime) -> bytes:
    """Return ``moment`` as a quoted IMAP date-time, in its own offset when that is whole minutes.

    Offsets with seconds (old local mean times) cannot be written in IMAP: those moments
    are written in UTC instead, which keeps the instant.
    """
    offset = moment.utcoffset()
    if offset is None or offset.seconds % 60 or offset.microseconds:
        moment = moment.astimezone(timezone.utc)
        offset = moment.utcoffset()
        assert offset is not None  # a moment in UTC has an offset, zero
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    text = (
        f'"{moment.day:02d}-{MONTHS[moment.month - 1]}-{moment.year:04d} '
        f'{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} {sign}{hours:02d}{minutes:02d}"'
    )
    return text.encode("ascii")
