"""The shared test corpus: real-world messages plus generated edge cases, deterministic.

``corpus()`` returns ``migrator.core.message.Message`` objects (folder path, raw bytes, canonical
Flags, aware received date). ``server_safe()`` adapts a list to what Dovecot can hold over
IMAP exactly; ``seed_items()`` and ``expected_dump()`` translate messages to the shapes
``DovecotServer.seed`` takes and ``DovecotServer.dump`` returns, with a test-side flag
mapping that does not use migrator's IMAP code.
"""

from __future__ import annotations

import base64
import functools
import itertools
import random
import re
import sysconfig
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from migrator.core.message import Flag, Flags, FolderPath, Message

FOLDERS: tuple[FolderPath, ...] = (
    ("INBOX",),
    ("Projects",),
    ("Projects", "2024"),
    ("Projects", "2024", "Q1"),
    ("Work Stuff",),
    ("R&D",),
    ("v1.2 notes",),
    ("Entwürfe",),
    ("日本語",),
    ("📁 Stuff",),
)
"""Every folder the corpus uses; each holds at least one message."""

KEYWORDS: tuple[frozenset[str], ...] = (
    frozenset(), frozenset({"$Label1"}), frozenset(), frozenset({"work", "Important"}), frozenset(),
    frozenset({"$Label1", "work"}), frozenset(), frozenset({"Important"}),
)

ZONES = tuple(timezone(timedelta(minutes=m)) for m in (0, 14 * 60, -12 * 60, 5 * 60 + 45, -3 * 60 - 30, 60))
"""UTC, +14:00, -12:00, +05:45, -03:30, +01:00: received dates cycle through these offsets."""

SYSTEM_FLAG_COMBINATIONS: tuple[frozenset[Flag], ...] = tuple(
    frozenset(combo) for size in range(len(Flag) + 1) for combo in itertools.combinations(Flag, size))
"""All 2**6 = 64 subsets of the system flags; message i of the corpus gets subset i % 64."""

IMAP_FLAGS = {Flag.SEEN: "\\Seen", Flag.ANSWERED: "\\Answered", Flag.FLAGGED: "\\Flagged",
              Flag.DELETED: "\\Deleted", Flag.DRAFT: "\\Draft", Flag.FORWARDED: "$Forwarded"}
"""The test side's own mapping from canonical flags to IMAP flags (RFC 3501, RFC 5788 $Forwarded)."""

BEFORE_1970 = datetime(1965, 3, 14, 9, 26, 53, tzinfo=timezone(timedelta(hours=-5)))
IN_THE_FUTURE = datetime(2099, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=14)))
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
LARGE_ATTACHMENT_BYTES = 7_500_000
"""Binary size of the large attachment: about 10 MB once base64-encoded."""


def corpus(*, large: bool = False) -> list[Message]:
    """Return the corpus, in a fixed order; ``large`` adds one message of about 10 MB."""
    raws = list(_python_email_samples()) + list(_edge_cases())
    if large:
        raws.append(_large_message())
    raws.extend(_fillers(len(SYSTEM_FLAG_COMBINATIONS) - len(raws)))
    return [_message(index, raw) for index, raw in enumerate(raws)] + list(_odd_dates(len(raws)))


def _message(index: int, raw: bytes) -> Message:
    flags = Flags(SYSTEM_FLAG_COMBINATIONS[index % len(SYSTEM_FLAG_COMBINATIONS)], KEYWORDS[index % len(KEYWORDS)])
    base = datetime(2001, 5, 4, 14, 5, 44, tzinfo=timezone.utc) + timedelta(days=61 * index, seconds=3671 * index)
    received = base.astimezone(ZONES[index % len(ZONES)])
    return Message(raw=raw, flags=flags, received=received, folder=FOLDERS[index % len(FOLDERS)])


# --- real-world messages -----------------------------------------------------------------------

def python_email_data() -> Path | None:
    """Return CPython's test_email data directory when this Python ships it, else None."""
    directory = Path(sysconfig.get_paths()["stdlib"]) / "test" / "test_email" / "data"
    return directory if any(directory.glob("msg_*.txt")) else None


def _python_email_samples() -> Iterator[bytes]:
    directory = python_email_data()
    if directory is None:
        return
    for path in sorted(directory.glob("msg_*.txt")):
        yield path.read_bytes()


# --- generated edge cases ----------------------------------------------------------------------

def _headers(subject: str, eol: bytes = b"\r\n", extra: bytes = b"") -> bytes:
    lines = [b"From: Corpus Sender <sender@example.org>", b"To: rcpt@example.net",
             b"Subject: " + subject.encode(), b"Message-ID: <" + _slug(subject) + b"@corpus.test>",
             b"Date: Mon, 1 Jul 2024 10:00:00 +0000"]
    return eol.join(lines) + eol + extra


def _slug(text: str) -> bytes:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-").encode()


def _simple(subject: str, body: bytes, *, extra: bytes = b"", eol: bytes = b"\r\n") -> bytes:
    return _headers(subject, eol, extra) + eol + body


_FROM_LINES = b"From the start\r\n>From one\r\n>>From two\r\nFrom \r\n>From\r\n"
_UTF8_8BIT = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
_LATIN1 = b"Content-Type: text/plain; charset=iso-8859-1\r\n"
_LONG_HEADER_LINE = b"X-Long: " + b"x" * (10_000 - len(b"X-Long: ")) + b"\r\n"
_ENVELOPE_LINE = b"From sender@example.org Mon Jul  1 10:00:00 2024\r\n"


def _edge_cases() -> Iterator[bytes]:
    yield _simple("From lines CRLF", _FROM_LINES)
    yield _simple("From lines LF", _FROM_LINES.replace(b"\r\n", b"\n"), eol=b"\n")
    yield _simple("Bare LF", b"line one\nline two\n\nlast\n", eol=b"\n")
    yield _simple("CRLF", b"line one\r\nline two\r\n")
    yield _simple("Mixed line endings", b"lf only\ncrlf\r\nlf again\n")
    yield _simple("8-bit UTF-8 \u00e4\u00f6\u00fc \u65e5\u672c", "Gr\u00fc\u00dfe \U0001F4C1\r\n".encode(),
                  extra=_UTF8_8BIT)
    yield _simple("Latin-1", b"Gr\xfc\xdfe\r\n", extra=_LATIN1)
    yield _simple("Invalid UTF-8", b"bad \xff\xfe \xc3\x28 \xed\xa0\x80 end\r\n")
    yield _simple("Long header", b"body\r\n", extra=_LONG_HEADER_LINE)
    yield _simple("No trailing newline", b"the last line has no end")
    yield _simple("Empty body", b"")
    yield _headers("Headers only, no blank line")
    yield _simple("NUL byte", b"before\x00after\r\n")
    yield _ENVELOPE_LINE + _simple("Starts with From", b"body\r\n")
    yield _simple("Whitespace", b"\tindented  \r\ntrailing   \r\n \r\n")


@functools.lru_cache(maxsize=1)
def _large_message() -> bytes:
    payload = random.Random(20240701).randbytes(LARGE_ATTACHMENT_BYTES)
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    boundary = b"corpus-boundary-1"
    mime = b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"" + boundary + b"\"\r\n"
    text_part = b"--" + boundary + b"\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n"
    attachment = (b"--" + boundary + b"\r\nContent-Type: application/octet-stream\r\n"
                  b"Content-Transfer-Encoding: base64\r\n"
                  b"Content-Disposition: attachment; filename=\"random.bin\"\r\n\r\n" + encoded)
    return _simple("Large attachment", text_part + attachment + b"--" + boundary + b"--\r\n", extra=mime)


def _fillers(count: int) -> Iterator[bytes]:
    # Enough messages for every one of the 64 flag combinations to appear at least once.
    for number in range(count):
        yield _simple(f"Flag matrix filler {number}", f"filler {number}\r\n".encode())


def _odd_dates(start: int) -> Iterator[Message]:
    dated = (("Before 1970", BEFORE_1970), ("Date line", datetime(2000, 1, 1, 0, 30, tzinfo=ZONES[1])),
             ("West of UTC", datetime(2012, 2, 29, 23, 59, 59, tzinfo=ZONES[2])),
             ("Nepal time", datetime(2019, 6, 30, 5, 45, tzinfo=ZONES[3])), ("In the future", IN_THE_FUTURE))
    for offset, (subject, received) in enumerate(dated):
        message = _message(start + offset, _simple(f"Dated {subject}", b"when?\r\n"))
        yield replace(message, received=received)


# --- adapting to a real server -----------------------------------------------------------------

def server_safe(messages: Iterable[Message], *, separator: str = "/") -> list[Message]:
    """Return ``messages`` changed so that Dovecot over IMAP gives back exactly the same thing.

    What Dovecot cannot hold, and why each rule is here:
    - 0-byte messages: APPEND of an empty literal is refused -> dropped.
    - NUL bytes: Dovecot returns them as 0x80 -> such messages are dropped.
    - bare LF line ends: IMAP serves messages with CRLF, so LF is sent as CRLF to begin with.
    - received before 1970: read back wrong in later sessions -> moved forward by 4-year steps.
    - received in the future: replaced by the upload time -> moved back by 80-year steps.
    - a folder name containing the server's hierarchy separator cannot be named -> the
      separator in names becomes "_".
    """
    safe = []
    for message in messages:
        if not message.raw or b"\x00" in message.raw:
            continue
        safe.append(replace(message, raw=crlf(message.raw), received=_storable_date(message.received),
                            folder=tuple(part.replace(separator, "_") for part in message.folder)))
    return safe


def crlf(raw: bytes) -> bytes:
    """Return ``raw`` with every bare LF turned into CRLF (existing CRLF kept)."""
    return re.sub(rb"(?<!\r)\n", b"\r\n", raw)


def _storable_date(received: datetime) -> datetime:
    four_years = timedelta(days=4 * 365 + 1)  # keeps the time of day and the UTC offset
    while received < _UNIX_EPOCH:
        received += four_years
    while received > datetime.now(timezone.utc):
        received -= 20 * four_years
    return received


# --- seeding and comparing ---------------------------------------------------------------------

def imap_flags(flags: Flags) -> frozenset[str]:
    """Return canonical Flags as IMAP flag strings (keywords as they are)."""
    return frozenset(IMAP_FLAGS[flag] for flag in flags.system) | flags.keywords


def seed_items(messages: Iterable[Message]) -> list[tuple[FolderPath, bytes, frozenset[str], datetime]]:
    """Return messages in the (folder, raw, IMAP flags, internaldate) form ``DovecotServer.seed`` takes."""
    return [(m.folder, m.raw, imap_flags(m.flags), m.received) for m in messages]


def expected_dump(messages: Iterable[Message]) -> dict[str, list[tuple[bytes, frozenset[str], datetime]]]:
    """Return what ``DovecotServer.dump(include_empty=False)`` gives after seeding ``messages`` in order."""
    expected: dict[str, list[tuple[bytes, frozenset[str], datetime]]] = {}
    for message in messages:
        entry = (message.raw, imap_flags(message.flags), message.received)
        expected.setdefault("/".join(message.folder), []).append(entry)
    return expected

