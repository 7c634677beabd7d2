"""What the Gmail stand-in (harness/gmail.py) reads and writes on the wire, as pure functions.

Command arguments into tokens, sequence sets into numbers, FETCH body sections into the
bytes they name, labels and mailbox names into strings Gmail would send. No sockets here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.imapwire import mutf7_encode, quote

Token = str | bytes | list["Token"]  # an atom or quoted string, a literal's bytes, a parenthesised list

_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n")
_SECTION = re.compile(r"(BODY|BODY\.PEEK|RFC822|RFC822\.HEADER|RFC822\.TEXT)(?:\[(.*)\])?(?:<(\d+)(?:\.(\d+))?>)?",
                      re.IGNORECASE | re.DOTALL)
_BARE_LABEL = re.compile(r"[A-Za-z0-9_.-]+")


class CommandSyntaxError(ValueError):
    """A command the stand-in cannot read: it answers BAD."""


def tokens(data: bytes) -> list[Token]:
    """Return the arguments of a command (the wire bytes after its name, literals inline); raise CommandSyntaxError."""
    parsed, _ = _sequence(data, 0, None)
    return parsed


def _sequence(data: bytes, pos: int, closing: bytes | None) -> tuple[list[Token], int]:
    items: list[Token] = []
    while pos < len(data):
        char = data[pos:pos + 1]
        if char == b" ":
            pos += 1
        elif char == closing:
            return items, pos + 1
        elif char == b"(":
            inner, pos = _sequence(data, pos + 1, b")")
            items.append(inner)
        elif char == b'"':
            text, pos = _quoted(data, pos + 1)
            items.append(text)
        elif _LITERAL.match(data, pos):
            match = _LITERAL.match(data, pos)
            assert match is not None
            end = match.end() + int(match.group(1))
            items.append(data[match.end():end])
            pos = end
        else:
            atom, pos = _atom(data, pos)
            items.append(atom)
    if closing is not None:
        raise CommandSyntaxError("a parenthesis is not closed")
    return items, pos


def _quoted(data: bytes, pos: int) -> tuple[str, int]:
    out = bytearray()
    while pos < len(data):
        char = data[pos]
        if char == 0x5C and pos + 1 < len(data):  # a backslash quotes the next character
            out.append(data[pos + 1])
            pos += 2
        elif char == 0x22:
            return out.decode("utf-8", "replace"), pos + 1
        else:
            out.append(char)
            pos += 1
    raise CommandSyntaxError("a quoted string is not closed")


def _atom(data: bytes, pos: int) -> tuple[str, int]:
    # Brackets may hold spaces and parentheses: BODY.PEEK[HEADER.FIELDS (DATE FROM)]<0.100> is one item.
    start, depth = pos, 0
    while pos < len(data):
        char = data[pos:pos + 1]
        if depth == 0 and char in (b" ", b"(", b")"):
            break
        depth += (char == b"[") - (char == b"]")
        pos += 1
    if pos == start:
        raise CommandSyntaxError(f"unexpected {data[pos:pos + 1]!r}")
    return data[start:pos].decode("utf-8", "replace"), pos


def text_of(token: Token) -> str:
    """Return a token that must be a string (a literal is decoded as UTF-8); raise CommandSyntaxError."""
    if isinstance(token, bytes):
        return token.decode("utf-8", "replace")
    if isinstance(token, str):
        return token
    raise CommandSyntaxError("a list where a string was expected")


def list_of(token: Token) -> list[str]:
    """Return a parenthesised list of strings, or a single string as a list of one."""
    return [text_of(item) for item in token] if isinstance(token, list) else [text_of(token)]


def selected(sequence_set: str, numbers: list[int]) -> list[int]:
    """Return the members of ``numbers`` (ascending) that ``sequence_set`` names; ``*`` is the largest.

    As RFC 3501 says, ``n:*`` names the largest number even when it is below ``n``.
    """
    largest = numbers[-1] if numbers else 0
    ranges = []
    for part in sequence_set.split(","):
        low, _, high = part.partition(":")
        try:
            first = largest if low == "*" else int(low)
            last = first if not high else largest if high == "*" else int(high)
        except ValueError:
            raise CommandSyntaxError(f"not a sequence set: {sequence_set}") from None
        ranges.append((min(first, last), max(first, last)))
    return [n for n in numbers if any(low <= n <= high for low, high in ranges)]


def compact_set(numbers: list[int]) -> str:
    """Return ascending ``numbers`` as a short sequence set (``1:3,7``)."""
    parts: list[str] = []
    for number in numbers:
        if parts and number == int(parts[-1].rsplit(":", 1)[-1]) + 1:
            parts[-1] = parts[-1].split(":")[0] + f":{number}"
        else:
            parts.append(str(number))
    return ",".join(parts)


@dataclass(frozen=True)
class Section:
    """A FETCH item that returns bytes: which part, whether it leaves \\Seen alone, and a partial range."""

    name: str  # as the response names it: BODY[HEADER.FIELDS (DATE)]<0>, RFC822.HEADER
    part: str  # "", HEADER, TEXT, HEADER.FIELDS (..), HEADER.FIELDS.NOT (..)
    peek: bool
    start: int | None = None
    length: int | None = None


def section(item: str) -> Section | None:
    """Return the Section a FETCH item names, or None when it names no bytes; raise CommandSyntaxError."""
    match = _SECTION.fullmatch(item)
    if not match or (match.group(1).upper() in ("BODY", "BODY.PEEK") and match.group(2) is None):
        return None
    kind = match.group(1).upper()
    if kind.startswith("RFC822"):
        part = {"RFC822": "", "RFC822.HEADER": "HEADER", "RFC822.TEXT": "TEXT"}[kind]
        return Section(kind, part, peek=kind == "RFC822.HEADER")
    part = match.group(2).upper()
    if not re.fullmatch(r"|HEADER|TEXT|HEADER\.FIELDS(\.NOT)? \(.*\)", part):
        raise CommandSyntaxError(f"the stand-in reads no section {part}")
    start = None if match.group(3) is None else int(match.group(3))
    length = None if match.group(4) is None else int(match.group(4))
    name = f"BODY[{part}]" + ("" if start is None else f"<{start}>")
    return Section(name, part, kind == "BODY.PEEK", start, length)


def section_bytes(raw: bytes, wanted: Section) -> bytes:
    """Return the bytes of ``raw`` that ``wanted`` names."""
    header, body = split_message(raw)
    if wanted.part == "HEADER":
        data = header
    elif wanted.part == "TEXT":
        data = body
    elif wanted.part.startswith("HEADER.FIELDS"):
        names = {name.lower() for name in wanted.part.split("(", 1)[1].rstrip(")").split()}
        data = header_fields(header, names, exclude=wanted.part.startswith("HEADER.FIELDS.NOT"))
    else:
        data = raw
    if wanted.start is None:
        return data
    end = None if wanted.length is None else wanted.start + wanted.length
    return data[wanted.start:end]


def split_message(raw: bytes) -> tuple[bytes, bytes]:
    """Return the header (with the empty line that ends it) and the body of ``raw``."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return raw, b""
    return raw[:end + 4], raw[end + 4:]


def header_fields(header: bytes, names: set[str], *, exclude: bool) -> bytes:
    """Return the header fields of ``header`` named in ``names`` (lower case), or all others, and an empty line."""
    fields: list[bytes] = []
    for line in header.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        elif line:
            fields.append(line)
    kept = [f for f in fields if (f.split(b":", 1)[0].strip().decode("latin-1").lower() in names) != exclude]
    return b"".join(f + b"\r\n" for f in kept) + b"\r\n"


def label_string(label: str) -> str:
    """Return a label as X-GM-LABELS sends it: a bare atom for plain names, else quoted (``"\\\\Inbox"``)."""
    encoded = mutf7_encode(label)
    return encoded if _BARE_LABEL.fullmatch(encoded) else quote(encoded)


def literal(data: bytes) -> bytes:
    """Return ``data`` as an IMAP literal."""
    return b"{%d}\r\n" % len(data) + data
