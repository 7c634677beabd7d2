"""Pure codecs for what a POP3 server sends: listings, message bytes, and the received date.

POP3 sends every line of a message ending in CRLF and byte-stuffs lines beginning with a
dot; poplib strips both. A message is therefore rebuilt as its lines joined by CRLF, the
exact bytes the server sent before stuffing. Whatever line endings the message had in the
server's mailbox, a POP3 client only ever sees CRLF; a final line without a newline
arrives with one added.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime

from migrator.core.contentkey import header_block

CRLF = b"\r\n"


def message_bytes(lines: Sequence[bytes]) -> bytes:
    """Return the message whose lines (without endings, unstuffed) are ``lines``, CRLF-terminated."""
    return b"".join(line + CRLF for line in lines)


def parse_listing(lines: Iterable[bytes]) -> dict[int, str]:
    """Return {message number: value} from UIDL or LIST lines ``b"N VALUE"``; raise ValueError."""
    listing: dict[int, str] = {}
    for line in lines:
        number, _, value = line.strip().partition(b" ")
        value = value.strip()
        if not number.isdigit() or not value:
            raise ValueError(f"unreadable listing line {line[:80]!r}")
        listing[int(number)] = value.decode("latin-1")
    return listing


def parse_sizes(lines: Iterable[bytes]) -> dict[int, int]:
    """Return {message number: size in octets} from LIST lines; raise ValueError."""
    sizes: dict[int, int] = {}
    for number, value in parse_listing(lines).items():
        if not value.split()[0].isdigit():
            raise ValueError(f"unreadable size {value[:40]!r} for message {number}")
        sizes[number] = int(value.split()[0])
    return sizes


def unique_keys(keys: Iterable[tuple[int, str]]) -> dict[int, str]:
    """Return {number: uid}: each content key, with ``#2``, ``#3``… added to repeats in order."""
    seen: dict[str, int] = {}
    uids: dict[int, str] = {}
    for number, key in keys:
        seen[key] = seen.get(key, 0) + 1
        uids[number] = key if seen[key] == 1 else f"{key}#{seen[key]}"
    return uids


def received_date(raw: bytes) -> datetime | None:
    """Return when the message reached its mailbox: the newest readable Received: date, else Date:.

    Servers add Received: headers on top, so the first one holds the final delivery; its date
    follows the last ';'. Returns None when neither header has a readable date.
    """
    headers = BytesHeaderParser().parsebytes(header_block(raw))
    for value in headers.get_all("Received") or ():
        found = _date(str(value).rpartition(";")[2])
        if found is not None:
            return found
    return _date(str(headers.get("Date", "")))


def _date(text: str) -> datetime | None:
    try:
        moment = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    # "-0000" means "zone unknown" (RFC 5322 3.3): read it as UTC rather than local time.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
