"""The node database layer of a PST file, read side ([MS-PST] §2.2): header, NBT/BBT, blocks and subnodes.

Reads Unicode (64-bit) and ANSI (32-bit) files, unencoded or permute-encoded. The parsers below take bytes and
return values; ``Ndb`` ties them to a buffer (an mmap of the file, or bytes in tests).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from migrator.stores.pst import format as fmt
from migrator.stores.pst import permute


class PstFormatError(ValueError):
    """The bytes are not a PST structure migrator can read; the message says which and why."""


@dataclass(frozen=True)
class Layout:
    """Sizes and struct layouts that differ between Unicode and ANSI files."""

    unicode: bool
    page_trailer: struct.Struct  # normalised by ``page_trailer`` below
    block_trailer: struct.Struct
    btpage_entries_size: int
    btentry: struct.Struct  # key, bid, ib
    bbtentry: struct.Struct  # bid, ib, cb, cRef
    nbtentry: struct.Struct  # nid, bidData, bidSub, nidParent
    bid: struct.Struct
    slblock_header: struct.Struct
    slentry: struct.Struct
    sientry: struct.Struct
    row_index_size: int  # size of the row number in a TC RowIndex record

    @property
    def page_data_size(self) -> int:
        """Return the bytes of a page before its trailer."""
        return fmt.PAGE_SIZE - self.page_trailer.size

    @property
    def max_block_payload(self) -> int:
        """Return the largest payload one block holds."""
        return fmt.MAX_BLOCK_SIZE - self.block_trailer.size

    def block_size_on_disk(self, payload_size: int) -> int:
        """Return the bytes a block with ``payload_size`` bytes occupies: payload + trailer, rounded to 64."""
        total = payload_size + self.block_trailer.size
        return (total + fmt.BLOCK_ALIGN - 1) // fmt.BLOCK_ALIGN * fmt.BLOCK_ALIGN


UNICODE = Layout(
    unicode=True,
    page_trailer=fmt.PAGE_TRAILER,
    block_trailer=fmt.BLOCK_TRAILER,
    btpage_entries_size=fmt.BTPAGE_ENTRIES_SIZE,
    btentry=fmt.BTENTRY,
    bbtentry=fmt.BBTENTRY,
    nbtentry=fmt.NBTENTRY,
    bid=struct.Struct("<Q"),
    slblock_header=fmt.SLBLOCK_HEADER,
    slentry=fmt.SLENTRY,
    sientry=fmt.SIENTRY,
    row_index_size=4,
)
ANSI = Layout(
    unicode=False,
    page_trailer=struct.Struct("<BBHII"),  # ptype, ptypeRepeat, wSig, bid, dwCRC
    block_trailer=struct.Struct("<HHII"),  # cb, wSig, bid, dwCRC
    btpage_entries_size=496,
    btentry=struct.Struct("<III"),
    bbtentry=struct.Struct("<IIHH"),
    nbtentry=struct.Struct("<IIII"),
    bid=struct.Struct("<I"),
    slblock_header=struct.Struct("<BBH"),
    slentry=struct.Struct("<III"),
    sientry=struct.Struct("<II"),
    row_index_size=2,
)


# --- header -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    """The fields of the file header a reader and the validator need."""

    layout: Layout
    version: int
    crypt_method: int
    crc_partial: int
    crc_full: int | None  # ANSI headers have no dwCRCFull
    bid_next_b: int
    bid_next_p: int
    file_eof: int
    amap_last: int
    amap_free: int
    pmap_free: int
    nbt_root: tuple[int, int]  # (bid, ib)
    bbt_root: tuple[int, int]
    amap_valid: int
    sentinel: int
    rgnid: tuple[int, ...]


_ANSI_ROOT = struct.Struct("<IIIIIIIIIBBH")


def parse_header(data: bytes) -> Header:
    """Return the header parsed from the first bytes of a file; raise PstFormatError if it is not a PST."""
    if len(data) < fmt.HEADER_SIZE:
        raise PstFormatError("it is too short to be a PST file")
    if data[:4] != fmt.MAGIC:
        raise PstFormatError("it is not a PST file (no !BDN signature)")
    version = struct.unpack_from("<H", data, fmt.HDR_VER)[0]
    if version in fmt.VERSIONS_ANSI:
        return _parse_ansi_header(data, version)
    if version in fmt.VERSIONS_UNICODE:
        return _parse_unicode_header(data, version)
    if version >= 36:
        raise PstFormatError(f"it uses the 4 KB-page format (version {version}) of Outlook OST files")
    raise PstFormatError(f"it has an unknown PST version {version}")


def _parse_unicode_header(data: bytes, version: int) -> Header:
    root = fmt.ROOT_STRUCT.unpack_from(data, fmt.HDR_ROOT)
    return Header(
        layout=UNICODE,
        version=version,
        crypt_method=data[fmt.HDR_CRYPT],
        crc_partial=struct.unpack_from("<I", data, fmt.HDR_CRC_PARTIAL)[0],
        crc_full=struct.unpack_from("<I", data, fmt.HDR_CRC_FULL)[0],
        bid_next_b=struct.unpack_from("<Q", data, fmt.HDR_BID_NEXT_B)[0],
        bid_next_p=struct.unpack_from("<Q", data, fmt.HDR_BID_NEXT_P)[0],
        file_eof=root[1],
        amap_last=root[2],
        amap_free=root[3],
        pmap_free=root[4],
        nbt_root=(root[5], root[6]),
        bbt_root=(root[7], root[8]),
        amap_valid=root[9],
        sentinel=data[fmt.HDR_SENTINEL],
        rgnid=struct.unpack_from(f"<{fmt.RGNID_COUNT}I", data, fmt.HDR_RGNID),
    )


def _parse_ansi_header(data: bytes, version: int) -> Header:
    root = _ANSI_ROOT.unpack_from(data, 164)
    return Header(
        layout=ANSI,
        version=version,
        crypt_method=data[461],
        crc_partial=struct.unpack_from("<I", data, fmt.HDR_CRC_PARTIAL)[0],
        crc_full=None,
        bid_next_b=struct.unpack_from("<I", data, 24)[0],
        bid_next_p=struct.unpack_from("<I", data, 28)[0],
        file_eof=root[1],
        amap_last=root[2],
        amap_free=root[3],
        pmap_free=root[4],
        nbt_root=(root[5], root[6]),
        bbt_root=(root[7], root[8]),
        amap_valid=root[9],
        sentinel=data[460],
        rgnid=struct.unpack_from(f"<{fmt.RGNID_COUNT}I", data, 36),
    )


# --- pages ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageTrailer:
    """A page trailer, the same fields in both layouts."""

    ptype: int
    ptype_repeat: int
    signature: int
    crc: int
    bid: int


def page_trailer(page: bytes, layout: Layout) -> PageTrailer:
    """Return the trailer of a 512-byte page."""
    values = layout.page_trailer.unpack_from(page, layout.page_data_size)
    if layout.unicode:
        ptype, repeat, sig, crc, bid = values
    else:
        ptype, repeat, sig, bid, crc = values
    return PageTrailer(ptype, repeat, sig, crc, bid)


@dataclass(frozen=True)
class BTPage:
    """One NBT or BBT page: its level and its entries as tuples of the layout's entry struct."""

    level: int
    entry_count: int
    max_entries: int
    entry_size: int
    entries: tuple[tuple[int, ...], ...]
    trailer: PageTrailer


def parse_btpage(page: bytes, layout: Layout) -> BTPage:
    """Return the B-tree page parsed from 512 bytes; raise PstFormatError if its counts are impossible."""
    count, max_entries, entry_size, level = page[layout.btpage_entries_size:layout.btpage_entries_size + 4]
    trailer = page_trailer(page, layout)
    entry = _entry_struct(trailer.ptype, level, layout)
    if entry.size != entry_size or count * entry_size > layout.btpage_entries_size:
        raise PstFormatError(f"B-tree page {trailer.bid:#x} has {count} entries of {entry_size} bytes")
    entries = tuple(entry.unpack_from(page, i * entry_size) for i in range(count))
    return BTPage(level, count, max_entries, entry_size, entries, trailer)


def _entry_struct(ptype: int, level: int, layout: Layout) -> struct.Struct:
    if ptype not in (fmt.PTYPE_NBT, fmt.PTYPE_BBT):
        raise PstFormatError(f"a B-tree page has page type {ptype:#x}")
    if level > 0:
        return layout.btentry
    return layout.nbtentry if ptype == fmt.PTYPE_NBT else layout.bbtentry


# --- entries ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NbtEntry:
    """A node: its NID, data block, subnode block and parent folder."""

    nid: int
    bid_data: int
    bid_sub: int
    nid_parent: int


@dataclass(frozen=True)
class BbtEntry:
    """A block: its BID, file offset, payload size and reference count."""

    bid: int
    ib: int
    cb: int
    ref_count: int


@dataclass(frozen=True)
class SubnodeEntry:
    """A subnode of a node: its local NID, data block and own subnode block."""

    nid: int
    bid_data: int
    bid_sub: int


def block_key(bid: int) -> int:
    """Return the BID as BBT lookups compare it (bit 0 is reserved and ignored)."""
    return bid & ~1


def is_internal(bid: int) -> bool:
    """Return True for XBLOCK/XXBLOCK/SLBLOCK/SIBLOCK ids (never encoded)."""
    return bool(bid & fmt.BID_INTERNAL)


# --- the database ---------------------------------------------------------------------------------------------


class Ndb:
    """The node database of one PST file held in ``buffer`` (bytes or an mmap)."""

    def __init__(self, buffer: bytes | memoryview) -> None:
        self.buffer = buffer
        self.header = parse_header(bytes(buffer[: fmt.HEADER_SIZE]))
        self.layout = self.header.layout
        if self.header.crypt_method not in (fmt.CRYPT_NONE, fmt.CRYPT_PERMUTE):
            raise PstFormatError(
                f"it uses Outlook's high encryption (method {self.header.crypt_method}), which migrator cannot decode;"
                " set the data file's encryption to 'compressible' in Outlook or export it to a new PST"
            )
        self.page = lru_cache(maxsize=4096)(self._read_page)

    def _read_page(self, ib: int) -> BTPage:
        if ib + fmt.PAGE_SIZE > len(self.buffer):
            raise PstFormatError(f"a B-tree page at offset {ib:#x} lies beyond the end of the file")
        return parse_btpage(bytes(self.buffer[ib:ib + fmt.PAGE_SIZE]), self.layout)

    # B-tree lookups descend from the root; keys are compared with the NID mask / reserved bit cleared.

    def node(self, nid: int) -> NbtEntry | None:
        """Return the NBT entry of ``nid``, or None when the file has no such node."""
        found = self._lookup(self.header.nbt_root[1], nid & fmt.NID_MASK, fmt.NID_MASK)
        return _nbt_entry(found) if found else None

    def block_entry(self, bid: int) -> BbtEntry | None:
        """Return the BBT entry of ``bid``, or None when the file has no such block."""
        found = self._lookup(self.header.bbt_root[1], block_key(bid), ~1)
        return BbtEntry(*found[:4]) if found else None

    def _lookup(self, ib: int, key: int, mask: int) -> tuple[int, ...] | None:
        for _ in range(fmt.MAX_BTREE_LEVELS + 1):
            page = self.page(ib)
            keys = [entry[0] & mask for entry in page.entries]
            if page.level == 0:
                return next((e for e, k in zip(page.entries, keys) if k == key), None)
            child = [e for e, k in zip(page.entries, keys) if k <= key]
            if not child:
                return None
            ib = child[-1][2]
        raise PstFormatError("a B-tree is deeper than 8 levels")

    def nodes(self) -> Iterator[NbtEntry]:
        """Yield every NBT entry in key order."""
        for entry in self._leaf_entries(self.header.nbt_root[1], 0):
            yield _nbt_entry(entry)

    def blocks(self) -> Iterator[BbtEntry]:
        """Yield every BBT entry in key order."""
        for entry in self._leaf_entries(self.header.bbt_root[1], 0):
            yield BbtEntry(*entry[:4])

    def _leaf_entries(self, ib: int, depth: int) -> Iterator[tuple[int, ...]]:
        if depth > fmt.MAX_BTREE_LEVELS:
            raise PstFormatError("a B-tree is deeper than 8 levels")
        page = self.page(ib)
        if page.level == 0:
            yield from page.entries
            return
        for entry in page.entries:
            yield from self._leaf_entries(entry[2], depth + 1)

    # --- blocks

    def block(self, bid: int) -> bytes:
        """Return the payload of block ``bid``, decoded; raise PstFormatError if it is missing or cut off."""
        entry = self.block_entry(bid)
        if entry is None:
            raise PstFormatError(f"block {bid:#x} is missing from the block B-tree")
        if entry.ib + entry.cb > len(self.buffer):
            raise PstFormatError(f"block {bid:#x} lies beyond the end of the file (truncated?)")
        payload = bytes(self.buffer[entry.ib:entry.ib + entry.cb])
        if self.header.crypt_method == fmt.CRYPT_PERMUTE and not is_internal(bid):
            return permute.decode(payload)
        return payload

    def data_blocks(self, bid: int, levels_left: int = 2) -> list[bytes]:
        """Return the payloads of a node's data: one block, or the leaves of its XBLOCK/XXBLOCK tree."""
        if bid == 0:
            return []
        if not is_internal(bid):
            return [self.block(bid)]
        if levels_left == 0:
            raise PstFormatError(f"data tree block {bid:#x} nests deeper than an XXBLOCK")
        return [leaf for child in self.xblock_children(bid) for leaf in self.data_blocks(child, levels_left - 1)]

    def xblock_children(self, bid: int) -> list[int]:
        """Return the child BIDs listed in XBLOCK/XXBLOCK ``bid``."""
        return parse_xblock(self.block(bid), self.layout)[1]

    def data_size(self, bid: int) -> int:
        """Return the total bytes of a node's data without reading the leaves."""
        if bid == 0:
            return 0
        if is_internal(bid):
            return parse_xblock(self.block(bid), self.layout)[0]
        entry = self.block_entry(bid)
        if entry is None:
            raise PstFormatError(f"block {bid:#x} is missing from the block B-tree")
        return entry.cb

    def subnodes(self, bid: int, top: bool = True) -> dict[int, SubnodeEntry]:
        """Return the subnodes listed under SLBLOCK/SIBLOCK ``bid``, by local NID."""
        if bid == 0:
            return {}
        level, entries = parse_slblock(self.block(bid), self.layout)
        if level == 0:
            return {entry.nid: entry for entry in entries}
        if not top:
            raise PstFormatError(f"subnode block {bid:#x} is an SIBLOCK below an SIBLOCK")
        found: dict[int, SubnodeEntry] = {}
        for entry in entries:
            found.update(self.subnodes(entry.bid_data, top=False))
        return found


def _nbt_entry(values: tuple[int, ...]) -> NbtEntry:
    return NbtEntry(values[0] & fmt.NID_MASK, values[1], values[2], values[3])


def parse_xblock(payload: bytes, layout: Layout) -> tuple[int, list[int]]:
    """Return (total size, child BIDs) of an XBLOCK or XXBLOCK payload."""
    if len(payload) < fmt.XBLOCK_HEADER.size:
        raise PstFormatError("an XBLOCK is shorter than its header")
    btype, level, count, total = fmt.XBLOCK_HEADER.unpack_from(payload)
    size = layout.bid.size
    if btype != fmt.BTYPE_XBLOCK or level not in (1, 2) or fmt.XBLOCK_HEADER.size + count * size > len(payload):
        raise PstFormatError(f"an XBLOCK has type {btype}, level {level} and {count} entries")
    start = fmt.XBLOCK_HEADER.size
    children = [layout.bid.unpack_from(payload, start + i * size)[0] for i in range(count)]
    return total, children


def parse_slblock(payload: bytes, layout: Layout) -> tuple[int, list[SubnodeEntry]]:
    """Return (level, entries) of an SLBLOCK (level 0) or SIBLOCK (level 1; bid_data = the child SLBLOCK)."""
    header = layout.slblock_header
    if len(payload) < header.size:
        raise PstFormatError("a subnode block is shorter than its header")
    btype, level, count = header.unpack_from(payload)[:3]
    entry = layout.slentry if level == 0 else layout.sientry
    if btype != fmt.BTYPE_SLBLOCK or level > 1 or header.size + count * entry.size > len(payload):
        raise PstFormatError(f"a subnode block has type {btype}, level {level} and {count} entries")
    entries = []
    for i in range(count):
        values = entry.unpack_from(payload, header.size + i * entry.size)
        bid_sub = values[2] if level == 0 else 0
        entries.append(SubnodeEntry(values[0] & fmt.NID_MASK, values[1], bid_sub))
    return level, entries
