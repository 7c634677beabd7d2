"""What an mbox file holds around each message, for the programs that will read it.

A dialect says which lines migrator adds after a message's ``From `` line (its flags, where
those programs look for them), whether the message is quoted, and what ends it; how the flags
are read back from those lines; and how a message another program wrote is read. Every added
line is an ordinary header to every reader; only the index (index.py) says which of them
migrator added, so that they are left out again when migrator reads the message.

``MBOX`` is for Dovecot, mutt and most other readers (Thunderbird's is in
migrator/stores/thunderbird/mozilla.py):

- ``X-IMAPbase`` starts the first message of a file (see status.py), then ``Status``,
  ``X-Status`` and ``X-Keywords`` as status.py writes them;
- the message is stored as it is, unless a line starts with ``From ``: then it is mboxrd-quoted
  (readers that do not undo quoting show such a line as ``>From ``, as they would any mbox);
- a message ending without a newline gets ``Content-Length``, the length of its body, and one
  LF: Dovecot and mutt take a Content-Length that points at the next From line, and so show the
  message without a newline added. Every other message ends with its own LF and a blank line.
"""

from __future__ import annotations

import mmap
import re
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass

from migrator.core.message import Flags, Message
from migrator.stores.mbox.quoting import has_from_line, quotable_lines
from migrator.stores.mbox.status import flags_from_headers, imapbase_line, parse_imapbase, status_lines, x_keywords

_BODY_SEPARATOR = re.compile(rb"\n\r?\n")


@dataclass(frozen=True)
class Frame:
    """How one message is written: the lines added before it, its quoting, and what follows it."""

    head: bytes
    quoted: bool  # mboxrd-quoted (else stored as it is)
    stored: int  # its length as stored
    tail: int  # how many LFs follow it
    crc: int  # crc32 of the message itself


class Dialect(ABC):
    """The bytes around each message of an mbox file for one family of readers."""

    head_pattern: re.Pattern[bytes]  # what the lines migrator adds look like, all of them

    @abstractmethod
    def frame(self, message: Message) -> Frame:
        """Return how ``message`` is written."""

    @abstractmethod
    def flags(self, head: bytes) -> Flags | None:
        """Return the flags the lines migrator added (``head``) give; None when a program that may edit them
        in place has marked the message as gone."""

    @abstractmethod
    def foreign_flags(self, headers: bytes) -> Flags | None:
        """Return the flags of a message another program wrote, from its ``headers``; None when that
        program takes it as gone (it is then not read)."""

    def foreign_bytes(self, stored: bytes) -> bytes:
        """Return a message another program wrote, from the bytes the file holds, as that program reads it."""
        return stored

    def foreign_size(self, buffer: bytes | mmap.mmap, start: int, stop: int) -> int:
        """Return the size of the message another program wrote from ``start`` to ``stop``, as foreign_bytes
        gives it (without copying it)."""
        return stop - start

    def keyword_list(self, keywords: Iterable[str], validity: int) -> tuple[bytes, frozenset[str]]:
        """Return the line that starts the added lines of a file's first message to list the file's
        ``keywords`` (and the keywords it holds); none in this dialect."""
        return b"", frozenset(keywords)

    def relisted(self, line: bytes, keywords: Iterable[str]) -> tuple[bytes, frozenset[str]] | None:
        """Return the keyword list ``line`` (as keyword_list wrote it) with ``keywords`` added, and the
        keywords it then holds; None when ``line`` is not such a list or already holds them all."""
        return None

    def listed_keywords(self, flags: Flags) -> frozenset[str]:
        """Return the keywords of ``flags`` that the file's keyword list must hold."""
        return frozenset()

    def is_head(self, head: bytes) -> bool:
        """Return True when ``head`` looks like lines migrator adds in this dialect."""
        return self.head_pattern.fullmatch(head) is not None


class MboxDialect(Dialect):
    """Status lines as Dovecot and mutt read them (see the module docstring)."""

    head_pattern = re.compile(
        rb"(?:X-IMAPbase: [^\n]*\n)?(?:(?:Status|X-Status|X-Keywords|Content-Length): [^\n]*\n)*"
    )

    def frame(self, message: Message) -> Frame:
        """Return how ``message`` is written: status lines, mboxrd quoting if it holds a From line."""
        raw = message.raw
        quoted = has_from_line(raw)
        stored = len(raw) + (quotable_lines(raw) if quoted else 0)
        lines = status_lines(message.flags)
        tail = 1 if raw.endswith(b"\n") else 2
        body = body_start(raw) if tail == 2 else None
        if body is not None:
            lines.append(b"Content-Length: %d\n" % (len(raw) - body + (quotable_lines(raw[body:]) if quoted else 0)))
            tail = 1
        return Frame(b"".join(lines), quoted, stored, tail, zlib.crc32(raw))

    def flags(self, head: bytes) -> Flags:
        """Return the flags of the Status, X-Status and X-Keywords lines in ``head``."""
        return flags_from_headers(head)

    def foreign_flags(self, headers: bytes) -> Flags:
        """Return the flags of another program's message, from its Status lines."""
        return flags_from_headers(headers)

    def keyword_list(self, keywords: Iterable[str], validity: int) -> tuple[bytes, frozenset[str]]:
        """Return Dovecot's X-IMAPbase line listing ``keywords``."""
        return imapbase_line(validity, keywords)

    def relisted(self, line: bytes, keywords: Iterable[str]) -> tuple[bytes, frozenset[str]] | None:
        """Return the X-IMAPbase line ``line`` with ``keywords`` added, or None."""
        parsed = parse_imapbase(line)
        if parsed is None:
            return None
        validity, listed = parsed
        if listed.issuperset(keywords):
            return None
        return imapbase_line(validity, listed | frozenset(keywords))

    def listed_keywords(self, flags: Flags) -> frozenset[str]:
        """Return the keywords the X-Keywords line of ``flags`` names."""
        return x_keywords(flags)


def body_start(data: bytes | mmap.mmap, start: int = 0, stop: int | None = None) -> int | None:
    """Return where the body of the message ``data[start:stop]`` starts (after the blank line ending its
    header), or None without one; ``data`` may be an mmap."""
    stop = len(data) if stop is None else stop
    for blank in (b"\n", b"\r\n"):
        if data[start : min(start + len(blank), stop)] == blank:
            return start + len(blank)
    match = _BODY_SEPARATOR.search(data, start, stop)
    return match.end() if match else None


MBOX = MboxDialect()
