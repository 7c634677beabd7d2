"""A fast MIME structure parser: headers through the standard library, bodies split with bytes searches.

The standard library's feed parser walks a message line by line, which takes seconds for a message with a
large attachment. Here only header blocks go through it; multipart bodies are cut at their boundaries with
one regular-expression scan, and leaf bodies stay as they are (decoded on demand by ``get_payload``).
The result is an ordinary ``email.message.Message`` tree (compat32).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import Message
from email.parser import BytesHeaderParser

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_DELIMITER_REST = re.compile(rb"(--)?[ \t]*(?:\r?\n|$)")
_MAX_DEPTH = 50  # deeper nesting is treated as an opaque leaf


def parse_message(raw: bytes, depth: int = 0) -> Message:
    """Return the MIME tree of ``raw``: multiparts with their parts, leaves with their undecoded body."""
    head, body = split_head(raw)
    message = BytesHeaderParser().parsebytes(head)
    boundary = message.get_boundary() if message.get_content_maintype() == "multipart" else None
    if boundary and depth < _MAX_DEPTH:
        parts = split_multipart(body, boundary.encode("ascii", "surrogateescape"))
        if parts is not None:
            message.set_payload([parse_message(part, depth + 1) for part in parts])
            return message
    message.set_payload(body.decode("ascii", "surrogateescape"))
    return message


def split_head(raw: bytes) -> tuple[bytes, bytes]:
    """Return (header block, body) of a message or part; a leading blank line means no headers."""
    if raw.startswith((b"\r\n", b"\n")):
        return b"", raw[2:] if raw.startswith(b"\r\n") else raw[1:]
    match = _HEADER_END.search(raw)
    if match is None:
        return raw, b""
    return raw[:match.start()] + b"\n", raw[match.end():]


def split_multipart(body: bytes, boundary: bytes) -> list[bytes] | None:
    """Return the parts of a multipart body (RFC 2046 §5.1.1), or None when no delimiter line is found."""
    parts = []
    start = None
    for line_start, line_end, closing in delimiter_lines(body, boundary):
        if start is not None:
            parts.append(_strip_line_break(body[start:line_start]))
        if closing:
            return parts
        start = line_end
    if start is None:
        return None
    parts.append(body[start:])  # no close delimiter: the last part runs to the end
    return parts


def delimiter_lines(body: bytes, boundary: bytes) -> Iterator[tuple[int, int, bool]]:
    """Yield (start, end after its line break, is the close delimiter) for each delimiter line of ``body``."""
    marker = b"--" + boundary
    position = body.find(marker)
    while position >= 0:
        if position == 0 or body[position - 1] == 0x0A:
            rest = _DELIMITER_REST.match(body, position + len(marker))
            if rest is not None:
                yield position, rest.end(), bool(rest.group(1))
        position = body.find(marker, position + 1)


def _strip_line_break(part: bytes) -> bytes:
    # The line break before a delimiter belongs to the delimiter, not to the part.
    if part.endswith(b"\r\n"):
        return part[:-2]
    return part[:-1] if part.endswith(b"\n") else part
