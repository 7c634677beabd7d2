"""Flags as Thunderbird keeps them in its mbox files: X-Mozilla-Status, X-Mozilla-Status2, X-Mozilla-Keys.

Thunderbird writes these three headers first after the From line of every message it stores,
and edits them in place: ``X-Mozilla-Status`` holds the low 16 bits of its message flags in 4
hex digits, ``X-Mozilla-Status2`` the high 16 bits in 8, and ``X-Mozilla-Keys`` the keywords
(its tags) separated by spaces and padded with spaces to at least 80 characters, so that tags
can be added without moving the rest of the file. The bits (nsMsgMessageFlags.idl):

- Read 0x1 (seen), Replied 0x2 (answered), Marked 0x4 (flagged), Forwarded 0x1000;
- Expunged 0x8: deleted from the folder, its bytes left until Thunderbird compacts the file;
  such a message is gone for Thunderbird, so it is not read;
- IMAPDeleted 0x200000 (in Status2): marked deleted (IMAP's \\Deleted) but still there.

Thunderbird has no flag for a draft (a draft is a message in the Drafts folder): migrator
keeps one as the keyword ``$Draft``. A message without X-Mozilla-Status (mail another program
put there) has the flags its Status and X-Status lines give (status.py).

Thunderbird reads its mbox files as mboxrd: it removes one ``>`` from each body line matching
``^>+From ``. So migrator quotes every such line, and reads another program's message in such
a file the way Thunderbird shows it.
"""

from __future__ import annotations

import mmap
import re
import zlib

from migrator.core.message import Flag, Flags, Message
from migrator.stores.mbox.dialect import Dialect, Frame, body_start
from migrator.stores.mbox.quoting import quotable_lines, unquote_mboxrd
from migrator.stores.mbox.status import decode_keywords, encode_keywords, flags_from_headers

READ, REPLIED, MARKED, EXPUNGED, FORWARDED = 0x1, 0x2, 0x4, 0x8, 0x1000
IMAP_DELETED = 0x200000
DRAFT_KEYWORD = "$Draft"
KEYS_WIDTH = 80  # Thunderbird's blank X-Mozilla-Keys value
_BITS = {Flag.SEEN: READ, Flag.ANSWERED: REPLIED, Flag.FLAGGED: MARKED, Flag.FORWARDED: FORWARDED,
         Flag.DELETED: IMAP_DELETED}
_HEADER = re.compile(rb"^(x-mozilla-status2?|x-mozilla-keys):[ \t]*([^\r\n]*)", re.IGNORECASE | re.MULTILINE)
_QUOTED_BODY_LINE = re.compile(rb"^>+From ", re.MULTILINE)


def mozilla_lines(flags: Flags) -> bytes:
    """Return the X-Mozilla-Status, X-Mozilla-Status2 and X-Mozilla-Keys lines for ``flags``."""
    bits = sum(bit for flag, bit in _BITS.items() if flag in flags)
    keywords = flags.keywords | ({DRAFT_KEYWORD} if Flag.DRAFT in flags else frozenset())
    keys = encode_keywords(keywords).ljust(KEYS_WIDTH)
    status, status2 = bits & 0xFFFF, bits & 0xFFFF0000
    return b"X-Mozilla-Status: %04x\nX-Mozilla-Status2: %08x\nX-Mozilla-Keys: %s\n" % (status, status2, keys)


def mozilla_flags(headers: bytes) -> Flags | None:
    """Return the flags the X-Mozilla headers in ``headers`` give (Status lines without them); None for a
    message Thunderbird expunged."""
    values: dict[bytes, bytes] = {}
    for match in _HEADER.finditer(headers):
        values.setdefault(match.group(1).lower(), match.group(2))
    if b"x-mozilla-status" not in values:
        return flags_from_headers(headers)
    bits = _hex(values[b"x-mozilla-status"]) & 0xFFFF | _hex(values.get(b"x-mozilla-status2", b"")) & 0xFFFF0000
    if bits & EXPUNGED:
        return None
    system = {flag for flag, bit in _BITS.items() if bits & bit}
    keywords = set(decode_keywords(values.get(b"x-mozilla-keys", b"")))
    if DRAFT_KEYWORD in keywords:
        keywords.discard(DRAFT_KEYWORD)
        system.add(Flag.DRAFT)
    return Flags(frozenset(system), frozenset(keywords))


def _hex(value: bytes) -> int:
    try:
        return int(value.strip() or b"0", 16)
    except ValueError:
        return 0


class ThunderbirdDialect(Dialect):
    """What Thunderbird writes around a message in its mbox files (see the module docstring)."""

    head_pattern = re.compile(
        rb"X-Mozilla-Status: [0-9a-fA-F ]{4}\nX-Mozilla-Status2: [0-9a-fA-F ]{8}\nX-Mozilla-Keys: [^\n]*\n"
    )

    def frame(self, message: Message) -> Frame:
        """Return how ``message`` is written: the X-Mozilla lines, mboxrd quoting, a blank line after it."""
        raw = message.raw
        added = quotable_lines(raw)
        tail = 1 if raw.endswith(b"\n") else 2
        return Frame(mozilla_lines(message.flags), added > 0, len(raw) + added, tail, zlib.crc32(raw))

    def flags(self, head: bytes) -> Flags | None:
        """Return the flags of the X-Mozilla lines migrator wrote (Thunderbird may have changed them in place
        since); None when Thunderbird expunged the message."""
        return mozilla_flags(head)

    def foreign_flags(self, headers: bytes) -> Flags | None:
        """Return the flags of a message Thunderbird wrote; None when it expunged it."""
        return mozilla_flags(headers)

    def foreign_bytes(self, stored: bytes) -> bytes:
        """Return a message Thunderbird wrote as it shows it: one ``>`` less on each quoted body line."""
        body = body_start(stored)
        return stored if body is None else stored[:body] + unquote_mboxrd(stored[body:])

    def foreign_size(self, buffer: bytes | mmap.mmap, start: int, stop: int) -> int:
        """Return the size foreign_bytes gives the message from ``start`` to ``stop``."""
        body = body_start(buffer, start, stop)
        unquoted = 0 if body is None else sum(1 for _ in _QUOTED_BODY_LINE.finditer(buffer, body, stop))
        return stop - start - unquoted


THUNDERBIRD = ThunderbirdDialect()
