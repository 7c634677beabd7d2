"""A fast MIME structure parser: headers through the standard library, bodies cut up in place.

The standard library's feed parser walks a message line by line, which takes seconds for a message with a
large attachment. Here only header blocks go through it; multipart bodies are cut at their boundaries with
one regular-expression scan, and leaf bodies stay as they are (decoded on demand by ``decoded_body``).
The result is an ordinary ``email.message.Message`` tree (compat32).

Parts are memoryview slices of the message, and a leaf keeps its slice until something asks for its
payload as a string: ``decoded_body`` decodes base64 straight from the slice, so a message with a big
attachment costs the decoded attachment and no copy of the encoded one.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterator
from email.message import Message
from email.parser import BytesHeaderParser

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_DELIMITER_REST = re.compile(rb"(--)?[ \t]*(?:\r?\n|$)")
_MAX_DEPTH = 50  # deeper nesting is treated as an opaque leaf


class Part(Message):
    """A part of the tree; a leaf holds its undecoded body as a slice of the message until asked for it.

    ``span`` is where a leaf's body lies in the whole message (start, end), kept when the slice is not.
    """

    body: memoryview | None = None
    span: tuple[int, int] = (0, 0)

    def get_payload(self, i=None, decode=False):  # noqa: ANN001, ANN201 - the standard library's signature
        """Return the payload as ``Message.get_payload`` does, making the string from the slice first."""
        if self.body is not None:
            self.set_payload(str(self.body, "ascii", "surrogateescape"))
            self.body = None
        return super().get_payload(i, decode)


def parse_message(raw: bytes | memoryview, depth: int = 0, start: int = 0) -> Part:
    """Return the MIME tree of ``raw`` (found at ``start`` in the whole message): multiparts with their parts,
    leaves with their undecoded body and its span."""
    view = memoryview(raw)
    head, body = split_head(view)
    body_start = start + len(view) - len(body)
    message = BytesHeaderParser(_class=Part).parsebytes(head)
    boundary = message.get_boundary() if message.get_content_maintype() == "multipart" else None
    if boundary and depth < _MAX_DEPTH:
        spans = multipart_spans(body, boundary.encode("ascii", "surrogateescape"))
        if spans is not None:
            message.set_payload([parse_message(body[s:e], depth + 1, body_start + s) for s, e in spans])
            if message.get_content_subtype() == "digest":
                for part in message.get_payload():
                    part.set_default_type("message/rfc822")  # RFC 2046 §5.1.5, as the standard parser does
            return message
    message.body = body
    message.span = (body_start, body_start + len(body))
    return message


def split_head(raw: memoryview) -> tuple[bytes, memoryview]:
    """Return (header block, body) of a message or part; a leading blank line means no headers."""
    if raw[:2] == b"\r\n":
        return b"", raw[2:]
    if raw[:1] == b"\n":
        return b"", raw[1:]
    match = _HEADER_END.search(raw)
    if match is None:
        return bytes(raw), raw[len(raw):]
    return bytes(raw[:match.start()]) + b"\n", raw[match.end():]


def split_multipart(body: bytes | memoryview, boundary: bytes) -> list[memoryview] | None:
    """Return the parts of a multipart body (RFC 2046 §5.1.1), or None when no delimiter line is found."""
    view = memoryview(body)
    spans = multipart_spans(view, boundary)
    return None if spans is None else [view[start:end] for start, end in spans]


def multipart_spans(body: bytes | memoryview, boundary: bytes) -> list[tuple[int, int]] | None:
    """Return (start, end) of each part of a multipart body, or None when no delimiter line is found."""
    view = memoryview(body)
    spans: list[tuple[int, int]] = []
    start = None
    for line_start, line_end, closing in delimiter_lines(view, boundary):
        if start is not None:
            spans.append((start, start + len(_strip_line_break(view[start:line_start]))))
        if closing:
            return spans
        start = line_end
    if start is None:
        return None
    spans.append((start, len(view)))  # no close delimiter: the last part runs to the end
    return spans


def delimiter_lines(body: memoryview, boundary: bytes) -> Iterator[tuple[int, int, bool]]:
    """Yield (start, end after its line break, is the close delimiter) for each delimiter line of ``body``."""
    marker = re.compile(re.escape(b"--" + boundary))  # a memoryview has no find()
    found = marker.search(body)
    while found is not None:
        position = found.start()
        if position == 0 or body[position - 1] == 0x0A:
            rest = _DELIMITER_REST.match(body, found.end())
            if rest is not None:
                yield position, rest.end(), rest.group(1) is not None
        found = marker.search(body, position + 1)


def _strip_line_break(part: memoryview) -> memoryview:
    # The line break before a delimiter belongs to the delimiter, not to the part.
    if part[-2:] == b"\r\n":
        return part[:-2]
    return part[:-1] if part[-1:] == b"\n" else part


def decoded_body(part: Message) -> bytes | None:
    """Return the body of a leaf decoded by its Content-Transfer-Encoding, as ``get_payload(decode=True)``.

    For base64 the standard library makes the payload a string, encodes it to bytes, splits it into lines
    and joins them before decoding: four working copies of what can be tens of megabytes. binascii decodes
    the part's slice of the message as it is, skipping line breaks and other stray characters as the
    standard library does; what it rejects (bad padding) takes the standard library's lenient path.
    """
    body = base64_body(part)
    if body is not None:
        try:
            return binascii.a2b_base64(body)
        except ValueError:  # bad padding: the lenient path below decides
            pass
    # With decode=True the payload is bytes (None for a multipart); the stubs allow any payload.
    return part.get_payload(decode=True)  # type: ignore[return-value]


def base64_body(part: Message) -> memoryview | None:
    """Return the still undecoded body of a base64 leaf (the slice of the message), else None."""
    body = part.body if isinstance(part, Part) else None
    if body is not None and str(part.get("content-transfer-encoding", "")).lower() == "base64":
        return body
    return None
