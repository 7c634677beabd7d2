"""The 564-byte Unicode PST header and the empty DList page, as a new file has them (§2.2.2.6, §2.2.2.7.4)."""

from __future__ import annotations

import struct

from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb.writer import HeaderState

DEFAULT_RGNID = {
    fmt.NID_TYPE_NORMAL_FOLDER: 0x400,
    fmt.NID_TYPE_SEARCH_FOLDER: 0x4000,
    fmt.NID_TYPE_NORMAL_MESSAGE: 0x10000,
    fmt.NID_TYPE_ASSOC_MESSAGE: 0x8000,
}
"""Last nidIndex per NID type in a fresh store; every other type starts at 0x400."""


def build_header(state: HeaderState, unique: int) -> bytes:
    """Return the header bytes for a finished file, both CRCs included."""
    header = bytearray(fmt.HEADER_SIZE)
    header[fmt.HDR_MAGIC:fmt.HDR_MAGIC + 4] = fmt.MAGIC
    header[fmt.HDR_MAGIC_CLIENT:fmt.HDR_MAGIC_CLIENT + 2] = fmt.MAGIC_CLIENT_PST
    struct.pack_into("<HHBB", header, fmt.HDR_VER, fmt.VERSION_UNICODE, fmt.VERSION_CLIENT, 1, 1)
    struct.pack_into("<Q", header, fmt.HDR_BID_NEXT_P, state.bid_next_page)
    struct.pack_into("<I", header, fmt.HDR_UNIQUE, unique)
    struct.pack_into(f"<{fmt.RGNID_COUNT}I", header, fmt.HDR_RGNID, *_rgnid(state.last_nid_index))
    root = fmt.ROOT_STRUCT.pack(
        0, state.file_eof, state.amap_last, state.amap_free, 0,
        *state.nbt_root, *state.bbt_root, fmt.AMAP_VALID, 0, 0,
    )
    header[fmt.HDR_ROOT:fmt.HDR_ROOT + len(root)] = root
    for fill_map in (fmt.HDR_RGBFM, fmt.HDR_RGBFP):
        header[fill_map:fill_map + fmt.FILL_MAP_SIZE] = bytes([fmt.FILL_LEVEL_FULL]) * fmt.FILL_MAP_SIZE
    header[fmt.HDR_SENTINEL] = fmt.SENTINEL
    header[fmt.HDR_CRYPT] = fmt.CRYPT_NONE
    struct.pack_into("<Q", header, fmt.HDR_BID_NEXT_B, state.bid_next_block)
    struct.pack_into("<I", header, fmt.HDR_CRC_PARTIAL, fmt.crc32(header[slice(*fmt.CRC_PARTIAL_RANGE)]))
    struct.pack_into("<I", header, fmt.HDR_CRC_FULL, fmt.crc32(header[slice(*fmt.CRC_FULL_RANGE)]))
    return bytes(header)


def _rgnid(last_nid_index: dict[int, int]) -> list[int]:
    values = [0x400] * fmt.RGNID_COUNT
    for nid_type, index in {**DEFAULT_RGNID, **last_nid_index}.items():
        values[nid_type] = max(index, DEFAULT_RGNID.get(nid_type, 0x400))
    return values


def build_dlist(bid: int) -> bytes:
    """Return an empty DList page (no entries) with BID ``bid``, as a fresh Outlook file has it."""
    body = fmt.DLIST_HEADER.pack(0, 0, 0, 0).ljust(fmt.PAGE_DATA_SIZE, b"\0")
    sig = fmt.signature(fmt.DLIST_OFFSET, bid)
    return body + fmt.PAGE_TRAILER.pack(fmt.PTYPE_DLIST, fmt.PTYPE_DLIST, sig, fmt.crc32(body), bid)


def updated_header(old: bytes, state: HeaderState, amap_valid: int = fmt.AMAP_VALID) -> bytes:
    """Return the header ``old`` of a file appended to, with the fields of ``state`` and new CRCs.

    What the writer does not change (fill maps, encryption, the creating platform) stays as it was;
    dwUnique moves on, as MS-PST asks of every change to the header; the NID high-water marks only grow.
    """
    header = bytearray(old[:fmt.HEADER_SIZE])
    struct.pack_into("<Q", header, fmt.HDR_BID_NEXT_P, state.bid_next_page)
    unique = struct.unpack_from("<I", header, fmt.HDR_UNIQUE)[0]
    struct.pack_into("<I", header, fmt.HDR_UNIQUE, (unique + 1) & 0xFFFFFFFF)
    rgnid = struct.unpack_from(f"<{fmt.RGNID_COUNT}I", header, fmt.HDR_RGNID)
    merged = [max(old_index, new) for old_index, new in zip(rgnid, _rgnid(state.last_nid_index), strict=True)]
    struct.pack_into(f"<{fmt.RGNID_COUNT}I", header, fmt.HDR_RGNID, *merged)
    root = fmt.ROOT_STRUCT.pack(
        0, state.file_eof, state.amap_last, state.amap_free, 0,
        *state.nbt_root, *state.bbt_root, amap_valid, 0, 0,
    )
    header[fmt.HDR_ROOT:fmt.HDR_ROOT + len(root)] = root
    struct.pack_into("<Q", header, fmt.HDR_BID_NEXT_B, state.bid_next_block)
    return with_crcs(header)


def with_amap_invalid(old: bytes) -> bytes:
    """Return the header ``old`` with fAMapValid set to INVALID_AMAP: its maps are about to change (§2.6.1.3.7)."""
    header = bytearray(old[:fmt.HEADER_SIZE])
    header[fmt.HDR_ROOT + fmt.ROOT_AMAP_VALID] = fmt.AMAP_INVALID
    return with_crcs(header)


def with_crcs(header: bytearray) -> bytes:
    """Return ``header`` with dwCRCPartial and dwCRCFull computed again."""
    struct.pack_into("<I", header, fmt.HDR_CRC_PARTIAL, fmt.crc32(header[slice(*fmt.CRC_PARTIAL_RANGE)]))
    struct.pack_into("<I", header, fmt.HDR_CRC_FULL, fmt.crc32(header[slice(*fmt.CRC_FULL_RANGE)]))
    return bytes(header)
