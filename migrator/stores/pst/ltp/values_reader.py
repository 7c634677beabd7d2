"""Decoding the stored bytes of MAPI property values ([MS-PST] §2.3.3.4, [MS-OXCDATA] §2.11): pure functions."""

from __future__ import annotations

import struct
import uuid
from datetime import datetime, timedelta, timezone

from migrator.stores.pst.ltp import props as pt
from migrator.stores.pst.ndb.reader import PstFormatError

_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)

_FORMATS = {
    pt.PT_SHORT: "<h",
    pt.PT_LONG: "<i",
    pt.PT_FLOAT: "<f",
    pt.PT_DOUBLE: "<d",
    pt.PT_CURRENCY: "<q",
    pt.PT_APPTIME: "<d",
    pt.PT_ERROR: "<I",
    pt.PT_LONGLONG: "<q",
}


def fixed_size(prop_type: int) -> int | None:
    """Return the size of a fixed-width type, or None for variable-size and multi-valued types."""
    return pt.FIXED_TYPE_SIZES.get(prop_type)


def from_filetime(ticks: int) -> datetime:
    """Return the UTC datetime of a FILETIME (100 ns ticks since 1601), clamped to datetime's range."""
    try:
        return _FILETIME_EPOCH + timedelta(microseconds=ticks // 10)
    except OverflowError:
        return datetime.max.replace(tzinfo=timezone.utc)


def decode_string8(raw: bytes, codepage: str) -> str:
    """Return an 8-bit string property as text, without the NUL terminator some writers keep."""
    return raw.rstrip(b"\0").decode(codepage, errors="replace")


def decode_unicode(raw: bytes) -> str:
    """Return a UTF-16LE string property as text (unpaired surrogates replaced)."""
    text = raw[: len(raw) // 2 * 2].decode("utf-16-le", errors="replace")
    return text.rstrip("\0")


def decode_value(prop_type: int, raw: bytes, codepage: str = "cp1252") -> object:
    """Return the Python value of ``raw`` stored as ``prop_type``; raise PstFormatError if it is malformed."""
    try:
        if prop_type & pt.MV_FLAG:
            return _decode_multi(prop_type & ~pt.MV_FLAG, raw, codepage)
        return _decode_single(prop_type, raw, codepage)
    except (struct.error, ValueError) as error:
        raise PstFormatError(f"property of type {prop_type:#06x} is malformed: {error}") from error


def _decode_single(prop_type: int, raw: bytes, codepage: str) -> object:
    if prop_type in _FORMATS:
        return struct.unpack_from(_FORMATS[prop_type], raw)[0]
    if prop_type == pt.PT_BOOLEAN:
        return raw[:1] != b"\0"
    if prop_type == pt.PT_SYSTIME:
        return from_filetime(struct.unpack_from("<Q", raw)[0])
    if prop_type == pt.PT_CLSID:
        return uuid.UUID(bytes_le=raw[:16])
    if prop_type == pt.PT_UNICODE:
        return decode_unicode(raw)
    if prop_type == pt.PT_STRING8:
        return decode_string8(raw, codepage)
    return raw  # binary, object and anything unknown stay bytes


def _decode_multi(item_type: int, raw: bytes, codepage: str) -> list[object]:
    size = fixed_size(item_type)
    if size is not None:
        return [_decode_single(item_type, raw[i:i + size], codepage) for i in range(0, len(raw) - size + 1, size)]
    if not raw:
        return []
    (count,) = struct.unpack_from("<I", raw)
    offsets = list(struct.unpack_from(f"<{count}I", raw, 4)) + [len(raw)]
    if offsets != sorted(offsets) or offsets[-1] > len(raw):
        raise ValueError("multi-valued offsets are out of order")
    return [_decode_single(item_type, raw[offsets[i]:offsets[i + 1]], codepage) for i in range(count)]
