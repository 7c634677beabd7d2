"""The name-to-id map (§2.4.7) for the fixed set of named properties the writer uses: pure functions."""

from __future__ import annotations

import struct
import uuid
from typing import NamedTuple

from migrator.stores.pst.ltp import props as pt
from migrator.stores.pst.ltp.values_writer import PropValue
from migrator.stores.pst.messaging import props as p
from migrator.stores.pst.ndb import format as fmt

_WELL_KNOWN_GUIDS = {p.PS_MAPI: p.NAMEID_GUID_INDEX_PS_MAPI, p.PS_PUBLIC_STRINGS: p.NAMEID_GUID_INDEX_PS_PUBLIC_STRINGS}


class NamedProperty(NamedTuple):
    """A string-named property of a property set, with the NPID the map gives it and its type."""

    guid: uuid.UUID
    name: str
    prop_type: int
    npid: int

    @property
    def tag(self) -> int:
        """Return the property tag to use for values of this named property."""
        return pt.tag(self.npid, self.prop_type)


def writer_named_properties() -> dict[str, NamedProperty]:
    """Return the named properties the writer uses, keyed by name, with NPIDs from 0x8000 on."""
    wanted = [(p.PS_PUBLIC_STRINGS, p.KEYWORDS_NAME, pt.PT_MV_UNICODE)]
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
        pt.tag(p.PID_NAMEID_BUCKET_COUNT, pt.PT_LONG): p.NAMEID_BUCKET_COUNT,
        pt.tag(p.PID_NAMEID_STREAM_GUID, pt.PT_BINARY): b"".join(g.bytes_le for g in guids),
        pt.tag(p.PID_NAMEID_STREAM_ENTRY, pt.PT_BINARY): bytes(entries),
        pt.tag(p.PID_NAMEID_STREAM_STRING, pt.PT_BINARY): bytes(strings),
    }
    for bucket in range(p.NAMEID_BUCKET_COUNT):
        values[pt.tag(p.PID_NAMEID_BUCKET_BASE + bucket, pt.PT_BINARY)] = bytes(buckets.get(bucket, b""))
    return values


def _guid_index(guid: uuid.UUID, guids: list[uuid.UUID]) -> int:
    if guid in _WELL_KNOWN_GUIDS:
        return _WELL_KNOWN_GUIDS[guid]
    if guid not in guids:
        guids.append(guid)
    return p.NAMEID_FIRST_STREAM_GUID_INDEX + guids.index(guid)
