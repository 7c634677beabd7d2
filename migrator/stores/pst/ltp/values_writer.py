"""Encoding Python values as the bytes of MAPI property values in a PST (§2.3.3.4): pure functions."""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

from migrator.stores.pst.ltp import props as pt

_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class StreamedBinary:
    """A PT_BINARY value too big to hold whole: its length, and how to make its bytes again in pieces."""

    length: int
    pieces: Callable[[], Iterator[bytes]]

    def __len__(self) -> int:
        return self.length

    def __bytes__(self) -> bytes:
        return b"".join(self.pieces())


PropValue = (int | bool | str | bytes | datetime | uuid.UUID | list[str] | list[bytes] | list[int] | tuple[int, int]
             | StreamedBinary)


def filetime(moment: datetime) -> int:
    """Return ``moment`` (timezone-aware) as a FILETIME: 100 ns ticks since 1601-01-01 UTC."""
    delta = moment - _FILETIME_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def encode_value(prop_type: int, value: PropValue) -> bytes:
    """Return the stored bytes of ``value`` as ``prop_type``; raise ValueError for unsupported types."""
    if prop_type in _FIXED_FORMATS:
        return struct.pack(_FIXED_FORMATS[prop_type], value)
    if prop_type == pt.PT_SYSTIME:  # a datetime, or FILETIME ticks carried over exactly
        ticks = value if isinstance(value, int) else filetime(value)  # type: ignore[arg-type]
        return struct.pack("<Q", ticks)
    if prop_type == pt.PT_CLSID:
        return value.bytes_le  # type: ignore[union-attr]
    if prop_type == pt.PT_UNICODE:
        return value.encode("utf-16-le", "surrogatepass")  # type: ignore[union-attr]
    if prop_type == pt.PT_BINARY:
        return bytes(value)  # type: ignore[arg-type]
    if prop_type == pt.PT_OBJECT:
        return struct.pack("<II", *value)  # type: ignore[misc]  # (subnode NID, object size)
    if prop_type == pt.PT_MV_LONG:
        return struct.pack(f"<{len(value)}i", *value)  # type: ignore[arg-type, misc]  # a list[int], as PT_MV_LONG is
    if prop_type in (pt.PT_MV_UNICODE, pt.PT_MV_BINARY):
        item_type = prop_type & ~pt.MV_FLAG
        return encode_multi_valued([encode_value(item_type, item) for item in value])  # type: ignore[union-attr]
    raise ValueError(f"property type {prop_type:#06x} is not supported by the writer")


_FIXED_FORMATS = {
    pt.PT_SHORT: "<h",
    pt.PT_LONG: "<i",
    pt.PT_ERROR: "<I",
    pt.PT_BOOLEAN: "<?",
    pt.PT_LONGLONG: "<q",
    pt.PT_DOUBLE: "<d",
}


def encode_multi_valued(items: list[bytes]) -> bytes:
    """Return a variable-size multi-valued property: count, offsets from the start, then the items."""
    header_size = 4 + 4 * len(items)
    offsets = []
    position = header_size
    for item in items:
        offsets.append(position)
        position += len(item)
    return struct.pack(f"<I{len(items)}I", len(items), *offsets) + b"".join(items)


def is_fixed_inline(prop_type: int) -> bool:
    """Return True when a PC stores a value of ``prop_type`` inline in its 4-byte slot."""
    return pt.FIXED_TYPE_SIZES.get(prop_type, 99) <= 4


def inline_slot(prop_type: int, value: PropValue) -> int:
    """Return the 4-byte PC slot of an inline value, zero-extended (booleans and shorts sit in the low bytes)."""
    return int.from_bytes(encode_value(prop_type, value).ljust(4, b"\0"), "little")
