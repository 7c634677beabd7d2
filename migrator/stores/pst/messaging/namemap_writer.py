"""The name-to-id map (§2.4.7) for the fixed set of named properties the writer uses: pure functions."""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

from migrator.stores.pst import format as fmt
from migrator.stores.pst import props as p
from migrator.stores.pst.prop_values import PropValue

_WELL_KNOWN_GUIDS = {p.PS_MAPI: p.NAMEID_GUID_INDEX_PS_MAPI, p.PS_PUBLIC_STRINGS: p.NAMEID_GUID_INDEX_PS_PUBLIC_STRINGS}


@dataclass(frozen=True)
class NamedProperty:
    """A string-named property of a property set, with the NPID the map gives it and its type."""

    guid: uuid.UUID
    name: str
    prop_type: int
    npid: int

    @property
    def tag(self) -> int:
        """Return the property tag to use for values of this named property."""
        return p.tag(self.npid, self.prop_type)


def writer_named_properties() -> dict[str, NamedProperty]:
    """Return the named properties the writer uses, keyed by name, with NPIDs from 0x8000 on."""
    wanted = [(p.PS_PUBLIC_STRINGS, p.KEYWORDS_NAME, p.PT_MV_UNICODE)]
    wanted += [(p.PS_MIGRATOR, name, prop_type) for name, prop_type in p.MIGRATOR_NAMED_PROPS.items()]
    return {
        name: NamedProperty(guid, name, prop_type, p.FIRST_NAMED_PROP_ID + index)
        for index, (guid, name, prop_type) in enumerate(wanted)
    }


def name_to_id_map(named: list[NamedProperty]) -> dict[int, PropValue]:
    """Return the properties of the name-to-id map PC (node 0x61) describing ``named``."""
    guids: list[uuid.UUID] = []
    strings = bytearray()
    entries = bytearray()
    buckets: dict[int, bytearray] = {}
    for prop in named:
        guid_index = _guid_index(prop.guid, guids)
        name = prop.name.encode("utf-16-le")
        offset = len(strings)
        strings += struct.pack("<I", len(name)) + name
        strings += bytes(-len(strings) % 4)
        kind = guid_index << 1 | 1  # N = 1: a string name
        index = prop.npid - p.FIRST_NAMED_PROP_ID
        entries += struct.pack("<IHH", offset, kind, index)
        name_crc = fmt.crc32(name)
        bucket = (name_crc ^ kind) % p.NAMEID_BUCKET_COUNT
        buckets.setdefault(bucket, bytearray()).extend(struct.pack("<IHH", name_crc, kind, index))
    values: dict[int, PropValue] = {
        p.tag(p.PID_NAMEID_BUCKET_COUNT, p.PT_LONG): p.NAMEID_BUCKET_COUNT,
        p.tag(p.PID_NAMEID_STREAM_GUID, p.PT_BINARY): b"".join(g.bytes_le for g in guids),
        p.tag(p.PID_NAMEID_STREAM_ENTRY, p.PT_BINARY): bytes(entries),
        p.tag(p.PID_NAMEID_STREAM_STRING, p.PT_BINARY): bytes(strings),
    }
    for bucket in range(p.NAMEID_BUCKET_COUNT):
        values[p.tag(p.PID_NAMEID_BUCKET_BASE + bucket, p.PT_BINARY)] = bytes(buckets.get(bucket, b""))
    return values


def _guid_index(guid: uuid.UUID, guids: list[uuid.UUID]) -> int:
    if guid in _WELL_KNOWN_GUIDS:
        return _WELL_KNOWN_GUIDS[guid]
    if guid not in guids:
        guids.append(guid)
    return p.NAMEID_FIRST_STREAM_GUID_INDEX + guids.index(guid)
