"""Flags in mbox headers, as Dovecot and mutt read them: Status, X-Status, X-Keywords, X-IMAPbase.

``Status: RO`` is a read message, ``Status: O`` an unread one that is no longer new;
``X-Status`` holds A (answered), F (flagged), T (draft) and D (deleted); ``X-Keywords``
holds the keywords separated by spaces, forwarded as ``$Forwarded`` (as IMAP has it).
A keyword holding a space, a comma, ``%`` or a control character has them written ``%NN``.
Dovecot reads a keyword from X-Keywords only when the ``X-IMAPbase`` header of the file's
first message lists it (``X-IMAPbase: UIDVALIDITY LAST-UID KEYWORD...``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from migrator.core.message import Flag, Flags

FORWARDED_KEYWORD = "$Forwarded"
_X_STATUS = {"A": Flag.ANSWERED, "F": Flag.FLAGGED, "T": Flag.DRAFT, "D": Flag.DELETED}
_X_STATUS_ORDER = "AFTD"
_FLAG_HEADER = re.compile(rb"^(status|x-status|x-keywords):[ \t]*([^\r\n]*)", re.IGNORECASE | re.MULTILINE)
_KEYWORD_SPECIAL = re.compile(rb"[\x00-\x20,%\x7f]")
_PERCENT = re.compile(rb"%([0-9A-Fa-f]{2})")
_KEYWORD_SPLIT = re.compile(rb"[ \t,]+")


def status_lines(flags: Flags) -> list[bytes]:
    """Return the Status, X-Status (when needed) and X-Keywords (when needed) lines for ``flags``."""
    lines = [b"Status: RO\n" if Flag.SEEN in flags else b"Status: O\n"]
    x_status = "".join(c for c in _X_STATUS_ORDER if _X_STATUS[c] in flags)
    if x_status:
        lines.append(b"X-Status: " + x_status.encode("ascii") + b"\n")
    keywords = x_keywords(flags)
    if keywords:
        lines.append(b"X-Keywords: " + encode_keywords(keywords) + b"\n")
    return lines


def x_keywords(flags: Flags) -> frozenset[str]:
    """Return the keywords the X-Keywords line of ``flags`` names (forwarded among them)."""
    return flags.keywords | ({FORWARDED_KEYWORD} if Flag.FORWARDED in flags else frozenset())


def flags_from_headers(headers: bytes) -> Flags:
    """Return the Flags that the first Status, X-Status and X-Keywords lines of ``headers`` give."""
    values: dict[bytes, bytes] = {}
    for match in _FLAG_HEADER.finditer(headers):
        values.setdefault(match.group(1).lower(), match.group(2))
    system = {Flag.SEEN} if b"R" in values.get(b"status", b"") else set()
    system.update(_X_STATUS[c] for c in values.get(b"x-status", b"").decode("latin-1") if c in _X_STATUS)
    keywords = set()
    for keyword in decode_keywords(values.get(b"x-keywords", b"")):
        if keyword.lower() == FORWARDED_KEYWORD.lower():
            system.add(Flag.FORWARDED)
        else:
            keywords.add(keyword)
    return Flags(frozenset(system), frozenset(keywords))


def encode_keywords(keywords: Iterable[str]) -> bytes:
    """Return the X-Keywords value for ``keywords``: sorted, separated by spaces."""
    encoded = (_KEYWORD_SPECIAL.sub(lambda m: b"%%%02X" % m.group()[0], k.encode("utf-8", "surrogateescape"))
               for k in keywords)
    return b" ".join(sorted(encoded))


def decode_keywords(value: bytes) -> frozenset[str]:
    """Return the keywords of an X-Keywords value (undoes encode_keywords)."""
    words = (w for w in _KEYWORD_SPLIT.split(value.strip()) if w)
    return frozenset(_PERCENT.sub(lambda m: bytes([int(m.group(1), 16)]), w).decode("utf-8", "surrogateescape")
                     for w in words)


# --- X-IMAPbase: the keywords Dovecot may read from X-Keywords -------------------------------

IMAPBASE_LENGTH = 512  # of the whole line: room kept for keywords, so that it is rewritten in place
_IMAPBASE = re.compile(rb"X-IMAPbase: (\d+) (\d{10})((?: [^ \n]+)*) +\n")


def imapbase_line(validity: int, keywords: Iterable[str]) -> tuple[bytes, frozenset[str]]:
    """Return Dovecot's ``X-IMAPbase`` line (UIDVALIDITY, last UID, keywords), padded with spaces to
    IMAPBASE_LENGTH bytes, and the keywords it holds: those that fit, in sorted order."""
    line = b"X-IMAPbase: %d 0000000000" % validity
    held = set()
    for keyword in sorted(keywords):
        word = b" " + encode_keywords([keyword])
        if len(line) + len(word) + 2 > IMAPBASE_LENGTH:  # a space and the LF must still fit
            continue
        line += word
        held.add(keyword)
    return line.ljust(IMAPBASE_LENGTH - 1) + b"\n", frozenset(held)


def parse_imapbase(line: bytes) -> tuple[int, frozenset[str]] | None:
    """Return the UIDVALIDITY and keywords of an ``X-IMAPbase`` line migrator wrote, or None if it is not one."""
    match = _IMAPBASE.fullmatch(line)
    if match is None or len(line) != IMAPBASE_LENGTH:
        return None
    return int(match.group(1)), decode_keywords(match.group(3))
