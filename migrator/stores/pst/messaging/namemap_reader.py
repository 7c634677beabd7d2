"""Reading the name-to-id map (node 0x61, [MS-PST] §2.4.7): which named property each id 0x8000+ stands for."""

from __future__ import annotations

import struct
import uuid
from typing import NamedTuple

from migrator.stores.pst.ltp.values_reader import decode_unicode
from migrator.stores.pst.messaging import props as p
from migrator.stores.pst.ndb.reader import PstFormatError

_NAMEID = struct.Struct("<IHH")  # dwPropertyID (or string offset), wGuid (N bit + GUID index), wPropIdx


class PropertyName(NamedTuple):
    """A named property: its property set and either a string name or a numeric long id."""

    guid: uuid.UUID | None
    name: str | int


def parse_name_map(guid_stream: bytes, entry_stream: bytes, string_stream: bytes) -> dict[int, PropertyName]:
    """Return property id -> name from the three streams of the map; raise PstFormatError if malformed."""
    guids = [uuid.UUID(bytes_le=guid_stream[i:i + 16]) for i in range(0, len(guid_stream) - 15, 16)]
    names: dict[int, PropertyName] = {}
    for start in range(0, len(entry_stream) - _NAMEID.size + 1, _NAMEID.size):
        value, guid_word, index = _NAMEID.unpack_from(entry_stream, start)
        name: str | int = _string_at(string_stream, value) if guid_word & 1 else value
        names[p.FIRST_NAMED_PROP_ID + index] = PropertyName(_guid(guid_word >> 1, guids), name)
    return names


def _guid(index: int, guids: list[uuid.UUID]) -> uuid.UUID | None:
    if index == p.NAMEID_GUID_INDEX_PS_MAPI:
        return p.PS_MAPI
    if index == p.NAMEID_GUID_INDEX_PS_PUBLIC_STRINGS:
        return p.PS_PUBLIC_STRINGS
    position = index - p.NAMEID_FIRST_STREAM_GUID_INDEX
    return guids[position] if 0 <= position < len(guids) else None


def _string_at(stream: bytes, offset: int) -> str:
    if offset + 4 > len(stream):
        raise PstFormatError(f"a named property's string offset {offset} lies beyond the string stream")
    (length,) = struct.unpack_from("<I", stream, offset)
    return decode_unicode(stream[offset + 4:offset + 4 + length])


def lookup_ids(names: dict[int, PropertyName], guid: uuid.UUID, *wanted: str) -> dict[str, int]:
    """Return, for each wanted string name in property set ``guid``, its property id (absent names omitted)."""
    found = {}
    for prop_id, name in names.items():
        if name.guid == guid and name.name in wanted:
            found[str(name.name)] = prop_id
    return found
