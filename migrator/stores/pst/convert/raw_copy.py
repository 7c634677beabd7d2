"""What a PST keeps of a message's raw bytes: the bytes themselves, or a skeleton the rest is rebuilt into.

Most of a message's bytes are already in the PST as Outlook's properties: an attachment's bytes, the text
of its body. Stored a second time as the raw message, they doubled the file. A skeleton is the raw message
with each part body the PST can give back exactly cut out, and a reference in its place: "attachment 2 in
base64, lines of 76 characters ending in CRLF", "the plain body in UTF-8". Every reference is checked when
the message is written, by making its bytes from the values about to be stored and comparing them with the
original byte for byte; a body that does not come back exactly stays in the skeleton. What remains (the
headers, boundaries, the bodies kept) is compressed. The skeleton holds the message's size and CRC-32, and
a message rebuilt from it is checked against them.

Format: ``MSK1``, then ``z`` (zlib) or ``-`` (stored), then a JSON line ``{"size", "crc", "refs"}`` and the
kept bytes. A reference is ``[at, kind, index, charset, line, newline]``: the derived bytes start at ``at`` in
the original message; ``kind`` is ``a`` (attachment ``index``'s bytes), ``b`` (the plain body, encoded in
``charset``) or ``h`` (the HTML body, re-encoded from UTF-8 to ``charset``); ``line`` is -1 for the bytes as
they are, else base64 with lines of ``line`` characters (0: one line) joined by ``newline``.
"""

from __future__ import annotations

import binascii
import codecs
import io
import json
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from email.message import Message as EmailMessage
from typing import NamedTuple

from migrator.stores.pst.ltp.values_writer import StreamedBinary

MAGIC = b"MSK1"
MIN_REFERENCE = 64  # a shorter body is cheaper kept than referenced
COMPRESS_LEVEL = 1  # what is left is mostly headers: level 1 gives nearly all of level 6, several times faster
_LINE_GROUPS = 1024  # base64 lines encoded at a time
_LINE_END = re.compile(rb"\n")  # a memoryview has no find()
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


class RebuildError(ValueError):
    """A skeleton that does not give back the message it was made from."""


class Sources(NamedTuple):
    """The stored values a skeleton's references are rebuilt from (None: not stored)."""

    attachment: Callable[[int], bytes | StreamedBinary | None]
    body: str | None
    html: bytes | None


class Reference(NamedTuple):
    """One part body rebuilt from a stored value; see the module docstring."""

    at: int
    kind: str
    index: int  # type: ignore[assignment]  # in place of tuple.index, which nothing calls on a reference
    charset: str
    line: int
    newline: str

    def as_list(self) -> list[object]:
        """Return the reference as it is stored in the skeleton's JSON."""
        return [self.at, self.kind, self.index, self.charset, self.line, self.newline]


def derived(reference: Reference, sources: Sources) -> Iterator[bytes] | None:
    """Return the bytes ``reference`` stands for, in pieces, or None when its source is missing or unfit."""
    source = source_pieces(reference, sources)
    if source is None:
        return None
    if reference.line < 0:
        return iter(source)
    return base64_lines(source, reference.line, reference.newline.encode("ascii"))


def source_pieces(reference: Reference, sources: Sources) -> Iterable[bytes] | None:
    """Return the stored value a reference names, as bytes in pieces."""
    try:
        if reference.kind == "a":
            data = sources.attachment(reference.index)
            if isinstance(data, StreamedBinary):
                return data.pieces()
            return None if data is None else (data,)
        if reference.kind == "b" and sources.body is not None:
            return (sources.body.encode(reference.charset),)
        if reference.kind == "h" and sources.html is not None:
            return (sources.html.decode("utf-8").encode(reference.charset),)
    except (UnicodeError, LookupError):
        return None
    return None


def base64_lines(pieces: Iterable[bytes], line: int, newline: bytes) -> Iterator[bytes]:
    """Yield the base64 of the joined ``pieces`` in lines of ``line`` characters (0: one line) joined by
    ``newline``, with no line break after the last line; a group of lines at a time, however big the pieces."""
    group = (line // 4 * 3 if line else 57) * _LINE_GROUPS
    pending = b""
    first = True
    for piece in pieces:
        data = memoryview(pending + piece if pending else piece)
        whole = len(data) - len(data) % group
        for start in range(0, whole, group):
            yield _encoded(data[start:start + group], line, newline, first)
            first = False
        pending = data[whole:].tobytes()
    if pending or first:
        yield _encoded(pending, line, newline, first)


def _encoded(data: bytes | memoryview, line: int, newline: bytes, first: bool) -> bytes:
    text = binascii.b2a_base64(data, newline=False)
    if line and len(text) > line:
        text = _in_lines(text, line, newline)
    return text if first else newline + text


def _in_lines(text: bytes, line: int, newline: bytes) -> bytes:
    """Return ``text`` cut into lines of ``line`` bytes joined by ``newline``, column by column: a few dozen
    slice copies instead of one join item per line."""
    count = -(-len(text) // line)
    width = line + len(newline)
    out = bytearray(count * width)
    padded = text.ljust(count * line, b"=")
    for column in range(line):
        out[column::width] = padded[column::line]
    for offset, byte in enumerate(newline):
        out[line + offset::width] = bytes((byte,)) * count
    del out[len(text) + (count - 1) * len(newline):]
    return bytes(out)


def matched_length(pieces: Iterator[bytes], body: memoryview) -> int | None:
    """Return how many bytes at the start of ``body`` the pieces give exactly, or None when one differs."""
    position = 0
    for piece in pieces:
        end = position + len(piece)
        if end > len(body) or body[position:end].tobytes() != piece:  # bytes compare with memcmp
            return None
        position = end
    return position


# --- writing ---------------------------------------------------------------------------------------------


def skeleton(raw: bytes, leaves: list[tuple[EmailMessage, str, int]], sources: Sources) -> bytes:
    """Return the skeleton of ``raw``: its ``leaves`` (part, kind, index) whose bodies the ``sources`` give
    back exactly become references, checked byte for byte; the rest is kept, compressed if that is smaller."""
    view = memoryview(raw)
    references = [found for leaf in leaves if (found := reference_for(view, *leaf, sources)) is not None]
    spans = [reference.as_list() for reference, _ in references]
    header = json.dumps({"size": len(raw), "crc": zlib.crc32(raw), "refs": spans}, separators=(",", ":"))
    payload = bytearray(header.encode("ascii") + b"\n")  # then the kept bytes, without a copy of them first
    position = 0
    for reference, length in references:
        payload += view[position:reference.at]
        position = reference.at + length
    payload += view[position:]
    compressed = zlib.compress(payload, COMPRESS_LEVEL)
    return MAGIC + (b"z" + compressed if len(compressed) < len(payload) else b"-" + payload)


def reference_for(raw: memoryview, part: EmailMessage, kind: str, index: int,
                  sources: Sources) -> tuple[Reference, int] | None:
    """Return the reference for a leaf's body and the length it covers, when the sources give it exactly."""
    start, end = getattr(part, "span", (0, 0))
    body = raw[start:end]
    if len(body) < MIN_REFERENCE:
        return None
    charset = _codec(part.get_content_charset() or "us-ascii") if kind in ("b", "h") else ""
    if charset is None:
        return None
    if str(part.get("content-transfer-encoding", "")).strip().lower() == "base64":
        layout = base64_layout(body)
        if layout is None:
            return None
        line, newline = layout
    else:
        line, newline = -1, ""
    reference = Reference(start, kind, index, charset, line, newline)
    data = sources.attachment(index) if kind == "a" else None
    if isinstance(data, StreamedBinary) and line >= 0:
        length = canonical_length(body, line, newline.encode("ascii"), len(data))
    else:
        pieces = derived(reference, sources)
        length = None if pieces is None else matched_length(pieces, body)
    return None if not length or length < MIN_REFERENCE else (reference, length)


def canonical_length(body: memoryview, line: int, newline: bytes, decoded: int) -> int | None:
    """Return the length of the base64 at the start of ``body`` when encoding what it decodes to gives it back
    exactly (lines of ``line`` joined by ``newline``; ``decoded`` bytes), else None.

    For a big attachment, whose stored bytes are this very body decoded while written: checking the body is
    canonical base64 proves the same equality as encoding the decoded bytes again, without decoding it twice.
    It is checked a group of lines at a time, so that it costs no copy of the body.
    """
    end = _content_end(body)
    width = line + len(newline) if line else end
    breaks = (end - 1) // width if line else 0  # the lines before the last, each followed by a line break
    if end == 0 or not 0 < end - breaks * width <= (line or end):
        return None
    step = width * _LINE_GROUPS
    for start in range(0, end, step):
        final = start + step >= end
        if not _canonical_lines(body[start:min(start + step, end)].tobytes(), line, newline, final):
            return None
    last = _last_characters(body[max(0, end - 16):end].tobytes(), newline)
    pads = len(last) - len(last.rstrip(b"="))
    length = end - breaks * len(newline)
    if length % 4 or pads > 2 or last.count(b"=") != pads:
        return None
    if binascii.b2a_base64(binascii.a2b_base64(last), newline=False) != last:
        return None  # bits past the data in the last character: decoding loses them
    return end if length // 4 * 3 - pads == decoded else None


def _content_end(body: memoryview) -> int:
    end = len(body)
    while end and body[end - 1] in b"\r\n\t ":
        end -= 1
    return end


def _canonical_lines(chunk: bytes, line: int, newline: bytes, final: bool) -> bool:
    """Return True when ``chunk`` (whole lines from a line's start) has each line break where it belongs and
    only base64 characters between them; pads only at the end of the ``final`` chunk."""
    if line:
        width = line + len(newline)
        breaks = len(chunk) // width
        for offset, byte in enumerate(newline):
            mark = bytes((byte,))
            if chunk.count(mark) != breaks or chunk[line + offset::width][:breaks] != mark * breaks:
                return False  # a line break out of place
    rest = chunk.translate(None, _ALPHABET + newline)
    return not rest or (final and rest.strip(b"=") == b"" and b"=" not in chunk.rstrip(b"="))


def _last_characters(tail: bytes, newline: bytes) -> bytes:
    """Return the last four base64 characters of the body whose last 16 bytes are ``tail``."""
    return (tail.replace(newline, b"") if newline else tail)[-4:]


def base64_layout(body: memoryview) -> tuple[int, str] | None:
    """Return (line length, line break) of a base64 body, from its first line; None when not a multiple of 4."""
    found = _LINE_END.search(body)
    if found is None:
        return 0, ""
    end = found.start()
    newline = "\r\n" if end and body[end - 1] == 0x0D else "\n"
    line = end - len(newline) + 1
    return (line, newline) if line > 0 and line % 4 == 0 else None


def _codec(charset: str) -> str | None:
    try:
        return codecs.lookup(charset).name
    except LookupError:
        return None


# --- reading ---------------------------------------------------------------------------------------------


def rebuild(value: bytes, sources: Sources) -> bytes:
    """Return the message a skeleton stands for, checked against its size and CRC-32; raise RebuildError."""
    header, kept = _parts(value)
    out = io.BytesIO()  # getvalue() hands the bytes over without a copy
    position = 0  # in the original message
    taken = 0  # of the kept bytes
    crc = 0
    for at, kind, index, charset, line, newline in header["refs"]:
        count = at - position
        crc = _write(out, kept[taken:taken + count], crc)
        taken += count
        pieces = derived(Reference(at, kind, index, charset, line, newline), sources)
        if pieces is None:
            raise RebuildError(f"the stored copy refers to a missing {_NAMES.get(kind, kind)}")
        for piece in pieces:
            crc = _write(out, piece, crc)
        position = out.tell()
    crc = _write(out, kept[taken:], crc)
    if out.tell() != header["size"] or crc != header["crc"]:
        raise RebuildError("the stored copy does not rebuild into the message that was written")
    return out.getvalue()


def _write(out: io.BytesIO, data: bytes | memoryview, crc: int) -> int:
    out.write(data)
    return zlib.crc32(data, crc)


_NAMES = {"a": "attachment", "b": "plain text body", "h": "HTML body"}


def _parts(value: bytes) -> tuple[dict, memoryview]:
    if value[:4] != MAGIC or value[4:5] not in (b"z", b"-"):
        raise RebuildError("the stored copy is not a skeleton migrator can read")
    try:
        payload = zlib.decompress(value[5:]) if value[4:5] == b"z" else value[5:]
        end = payload.index(b"\n")
        header = json.loads(payload[:end])
    except (zlib.error, ValueError) as error:
        raise RebuildError(f"the stored copy is damaged: {error}") from None
    return header, memoryview(payload)[end + 1:]
