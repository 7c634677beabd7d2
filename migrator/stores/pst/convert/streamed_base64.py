"""A big base64 body decoded in pieces as it is written, so a 10 MB attachment is never in memory decoded whole.

The raw message is written to the PST as well (migrator's exact copy), so decoding an attachment whole
held the message and the decoded attachment at once: the largest item of a PST run's peak memory.

The pieces join to exactly what ``binascii.a2b_base64`` gives for the whole body. It decodes group
by group of four alphabet characters and skips everything else, so the body can be cut anywhere
between groups, up to the first pad character. From there the last incomplete group and the rest
go through one call, as they would in the whole: that call alone decides bad padding, which is
known before anything is written.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterator

from migrator.stores.pst.ltp.values_writer import StreamedBinary

ENCODED_PIECE = 64 * 1024  # encoded bytes decoded at a time
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_SKIPPED = bytes(sorted(set(range(256)) - set(_ALPHABET + b"=")))  # what the decoder passes over
_PAD = re.compile(rb"=")
_MAX_TAIL = 64 * 1024  # a pad far before the end: decode whole, the way the standard library does


def streamed_base64(body: memoryview, piece: int = ENCODED_PIECE) -> StreamedBinary | None:
    """Return the decoded ``body`` as a stream of pieces, or None when it must be decoded whole.

    None means a pad character well before the end, or padding the decoder rejects; the caller's
    whole-body path handles those as it always did.
    """
    pad = _PAD.search(body)
    end = pad.start() if pad else len(body)
    before_pad = body[:end]
    characters = sum(len(_alphabet_only(before_pad[i:i + piece])) for i in range(0, end, piece))
    whole_groups = characters - characters % 4
    tail = _last_characters(before_pad, characters % 4) + bytes(body[end:])
    if len(tail) > _MAX_TAIL:
        return None
    try:
        decoded_tail = binascii.a2b_base64(tail)
    except ValueError:
        return None
    return StreamedBinary(whole_groups // 4 * 3 + len(decoded_tail),
                          lambda: _pieces(before_pad, whole_groups, decoded_tail, piece))


def _pieces(body: memoryview, characters: int, decoded_tail: bytes, piece: int) -> Iterator[bytes]:
    # Each call decodes whole groups only; the characters of a group cut by a piece boundary wait.
    waiting = b""
    for i in range(0, len(body), piece):
        text = waiting + _alphabet_only(body[i:i + piece])
        usable = min(len(text) - len(text) % 4, characters)
        if usable:
            yield binascii.a2b_base64(text[:usable])
        characters -= usable
        waiting = text[usable:]
        if not characters:
            break
    if decoded_tail:
        yield decoded_tail


def _alphabet_only(encoded: memoryview) -> bytes:
    return bytes(encoded).translate(None, _SKIPPED)


def _last_characters(body: memoryview, count: int) -> bytes:
    found = b""
    position = len(body)
    while len(found) < count:
        position -= 1
        if body[position] in _ALPHABET:
            found = bytes(body[position:position + 1]) + found
    return found
