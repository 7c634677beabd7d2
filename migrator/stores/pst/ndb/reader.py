"""The node database layer of a PST file, read side ([MS-PST] §2.2): header, NBT/BBT, blocks and subnodes.

Reads Unicode (64-bit) and ANSI (32-bit) files, unencoded or permute-encoded. The parsers below take bytes and
return values; ``Ndb`` ties them to a buffer (an mmap of the file, or bytes in tests).
"""

from __future__ import annotations

import array
import mmap
import struct
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from functools import lru_cache
from typing import Any, NamedTuple

from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb import permute

_RELEASE_EVERY = 16 * 1024 * 1024  # bytes of a data tree read between two releases of the file's mapped pages
FileBytes = bytes | memoryview | mmap.mmap  # a whole PST file: read into memory, or mapped


class PstFormatError(ValueError):
    """The bytes are not a PST structure migrator can read; the message says which and why."""


class Layout(NamedTuple):
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


class Header(NamedTuple):
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
    if version >= fmt.VERSION_4K_PAGES:
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
        **_root_fields(root),
        sentinel=data[fmt.HDR_SENTINEL],
        rgnid=struct.unpack_from(f"<{fmt.RGNID_COUNT}I", data, fmt.HDR_RGNID),
    )


def _root_fields(root: tuple[int, ...]) -> dict[str, Any]:
    """Return the Header fields of the ROOT structure (MS-PST 2.2.2.5), in the same order in both layouts."""
    return {"file_eof": root[1], "amap_last": root[2], "amap_free": root[3], "pmap_free": root[4],
            "nbt_root": (root[5], root[6]), "bbt_root": (root[7], root[8]), "amap_valid": root[9]}


def _parse_ansi_header(data: bytes, version: int) -> Header:
    root = fmt.ANSI_ROOT_STRUCT.unpack_from(data, fmt.ANSI_HDR_ROOT)
    return Header(
        layout=ANSI,
        version=version,
        crypt_method=data[fmt.ANSI_HDR_CRYPT],
        crc_partial=struct.unpack_from("<I", data, fmt.HDR_CRC_PARTIAL)[0],
        crc_full=None,
        bid_next_b=struct.unpack_from("<I", data, fmt.ANSI_HDR_BID_NEXT_B)[0],
        bid_next_p=struct.unpack_from("<I", data, fmt.ANSI_HDR_BID_NEXT_P)[0],
        **_root_fields(root),
        sentinel=data[fmt.ANSI_HDR_SENTINEL],
        rgnid=struct.unpack_from(f"<{fmt.RGNID_COUNT}I", data, fmt.ANSI_HDR_RGNID),
    )


def header_crc_problems(header: Header, data: bytes) -> list[str]:
    """Return one sentence per header CRC that does not match the header bytes it covers."""
    problems = []
    for name, stored, (start, end) in (("dwCRCPartial", header.crc_partial, fmt.CRC_PARTIAL_RANGE),
                                        ("dwCRCFull", header.crc_full, fmt.CRC_FULL_RANGE)):
        computed = fmt.crc32(data[start:end])
        if stored is not None and stored != computed:
            problems.append(f"the header fails its CRC: {name} is {stored:#010x}, computed {computed:#010x}")
    return problems


# --- pages ----------------------------------------------------------------------------------------------------


class PageTrailer(NamedTuple):
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


class BTPage(NamedTuple):
    """One NBT or BBT page: its level, its entries' bytes and the key of each, masked as lookups compare keys.

    The Ndb keeps 4 096 pages: held as tuples of entries they took 15 MB, as their bytes and keys 4 MB.
    """

    level: int
    entry_count: int
    max_entries: int
    entry_size: int
    data: bytes  # the entries, each packed as ``entry_struct``
    keys: array.array
    children: array.array  # of a page above the leaves: each entry's child page, its BID then its offset
    trailer: PageTrailer
    entry_struct: struct.Struct

    @property
    def entries(self) -> tuple[tuple[int, ...], ...]:
        """Return every entry as a tuple of the layout's entry struct (unpacked again at each call)."""
        return tuple(self.entry_struct.iter_unpack(self.data))

    def entry(self, index: int) -> tuple[int, ...]:
        """Return entry ``index`` as a tuple of the layout's entry struct."""
        return self.entry_struct.unpack_from(self.data, index * self.entry_size)


def parse_btpage(page: bytes, layout: Layout) -> BTPage:
    """Return the B-tree page parsed from 512 bytes; raise PstFormatError if its counts are impossible."""
    count, max_entries, entry_size, level = page[layout.btpage_entries_size:layout.btpage_entries_size + 4]
    trailer = page_trailer(page, layout)
    entry = _entry_struct(trailer.ptype, level, layout)
    if entry.size != entry_size or count * entry_size > layout.btpage_entries_size:
        raise PstFormatError(f"B-tree page {trailer.bid:#x} has {count} entries of {entry_size} bytes")
    data = bytes(page[:count * entry_size])
    entries = list(entry.iter_unpack(data))
    mask = _KEY_MASKS[trailer.ptype]
    keys = array.array("Q", (values[0] & mask for values in entries))
    children = array.array("Q", (field for values in entries for field in values[1:3]) if level else ())
    return BTPage(level, count, max_entries, entry_size, data, keys, children, trailer, entry)


_KEY_MASKS = {fmt.PTYPE_NBT: fmt.NID_MASK, fmt.PTYPE_BBT: ~1 & (1 << 64) - 1}  # lookups compare keys so masked


_TREE_NAMES = {fmt.PTYPE_NBT: "NBT", fmt.PTYPE_BBT: "BBT"}


def page_problems(page: bytes, layout: Layout, ptype: int, bid: int, ib: int) -> list[str]:
    """Return one sentence per way the B-tree page at ``ib`` disagrees with its trailer and its BREF (``bid``)."""
    trailer = page_trailer(page, layout)
    where = f"{_TREE_NAMES[ptype]} page {bid:#x} at offset {ib:#x}"
    if trailer.ptype != ptype or trailer.ptype_repeat != ptype:
        return [f"{where} has page type {trailer.ptype:#x}/{trailer.ptype_repeat:#x}, not {ptype:#x}"]
    problems = []
    if trailer.bid != bid:
        problems.append(f"{where} has trailer BID {trailer.bid:#x} (back pointer mismatch)")
    signature, crc = fmt.signature(ib, trailer.bid), fmt.crc32(page[:layout.page_data_size])
    problems.extend(_trailer_problems(where, (trailer.signature, signature), (trailer.crc, crc)))
    return problems


def _trailer_problems(where: str, signature: tuple[int, int], crc: tuple[int, int]) -> list[str]:
    """Return a sentence for a stored signature or CRC that differs from the computed one (pairs: stored, computed)."""
    problems = []
    if signature[0] != signature[1]:
        problems.append(f"{where} fails its signature: its trailer has wSig {signature[0]:#06x}, "
                        f"computed {signature[1]:#06x}")
    if crc[0] != crc[1]:
        problems.append(f"{where} fails its CRC: its trailer has CRC {crc[0]:#010x}, its data {crc[1]:#010x}")
    return problems


def _entry_struct(ptype: int, level: int, layout: Layout) -> struct.Struct:
    if ptype not in (fmt.PTYPE_NBT, fmt.PTYPE_BBT):
        raise PstFormatError(f"a B-tree page has page type {ptype:#x}")
    if level > 0:
        return layout.btentry
    return layout.nbtentry if ptype == fmt.PTYPE_NBT else layout.bbtentry


# --- entries ------------------------------------------------------------------------------------------------


class NbtEntry(NamedTuple):
    """A node: its NID, data block, subnode block and parent folder."""

    nid: int
    bid_data: int
    bid_sub: int
    nid_parent: int


class BbtEntry(NamedTuple):
    """A block: its BID, file offset, payload size and reference count."""

    bid: int
    ib: int
    cb: int
    ref_count: int


class BlockTrailer(NamedTuple):
    """A block trailer, the same fields in both layouts (a tuple: one is built for every block read)."""

    cb: int
    signature: int
    crc: int
    bid: int


def block_trailer(data: FileBytes, offset: int, layout: Layout) -> BlockTrailer:
    """Return the block trailer at ``offset`` of ``data`` (the file, or one block as on disk)."""
    cb, signature, first, second = layout.block_trailer.unpack_from(data, offset)
    crc, bid = (first, second) if layout.unicode else (second, first)
    return BlockTrailer(cb, signature, crc, bid)


def block_problems(entry: BbtEntry, trailer: BlockTrailer, payload: bytes) -> list[str]:
    """Return one sentence per way block ``entry``, whose stored bytes are ``payload``, disagrees with its trailer."""
    signature, crc = fmt.signature(entry.ib, trailer.bid), fmt.crc32(payload)
    same_block = trailer.cb == entry.cb and block_key(trailer.bid) == block_key(entry.bid)
    if same_block and trailer.signature == signature and trailer.crc == crc:
        return []  # every block read comes here: no sentence is built for a sound one
    where = f"block {entry.bid:#x} at offset {entry.ib:#x}"
    problems = []
    if trailer.cb != entry.cb:
        problems.append(f"{where} holds {trailer.cb} bytes by its trailer, {entry.cb} by the block B-tree")
    if block_key(trailer.bid) != block_key(entry.bid):
        problems.append(f"{where} has trailer BID {trailer.bid:#x}")
    problems.extend(_trailer_problems(where, (trailer.signature, signature), (trailer.crc, crc)))
    return problems


class SubnodeEntry(NamedTuple):
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
    """The node database of one PST file held in ``buffer`` (bytes or an mmap).

    Every page and block read is checked against its trailer (type, back pointer, signature, CRC), so damaged
    bytes raise PstFormatError instead of being returned; ``verify=False`` skips that, for the validator, which
    reads on past damage to report all of it.
    """

    def __init__(self, buffer: FileBytes, *, verify: bool = True) -> None:
        self.buffer = buffer
        header_bytes = bytes(buffer[: fmt.HEADER_SIZE])
        self.header = parse_header(header_bytes)
        self.layout = self.header.layout
        self.verify = verify
        if self.header.crypt_method not in (fmt.CRYPT_NONE, fmt.CRYPT_PERMUTE):
            raise PstFormatError(
                f"it uses Outlook's high encryption (method {self.header.crypt_method}), which migrator cannot decode;"
                " set the data file's encryption to 'compressible' in Outlook or export it to a new PST"
            )
        damage = header_crc_problems(self.header, header_bytes) if verify else []
        if damage:
            raise PstFormatError(f"{damage[0]}; repair the file with Outlook's scanpst.exe")
        self.page = lru_cache(maxsize=4096)(self._read_page)

    def _read_page(self, ib: int, bid: int, ptype: int) -> BTPage:
        if ib + fmt.PAGE_SIZE > len(self.buffer):
            raise PstFormatError(f"a B-tree page at offset {ib:#x} lies beyond the end of the file")
        raw = bytes(self.buffer[ib:ib + fmt.PAGE_SIZE])
        damage = page_problems(raw, self.layout, ptype, bid, ib) if self.verify else []
        if damage:
            raise PstFormatError(damage[0])
        return parse_btpage(raw, self.layout)

    # B-tree lookups descend from the root by bisection, as Outlook's do: a page's entries are sorted by key.
    # Keys are compared with the NID mask / reserved bit cleared.

    def node(self, nid: int) -> NbtEntry | None:
        """Return the NBT entry of ``nid``, or None when the file has no such node."""
        found = self._lookup(self.header.nbt_root, fmt.PTYPE_NBT, nid & fmt.NID_MASK)
        return _nbt_entry(found) if found else None

    def block_entry(self, bid: int) -> BbtEntry | None:
        """Return the BBT entry of ``bid``, or None when the file has no such block."""
        found = self._lookup(self.header.bbt_root, fmt.PTYPE_BBT, block_key(bid))
        return BbtEntry(*found[:4]) if found else None

    def _lookup(self, root: tuple[int, int], ptype: int, key: int) -> tuple[int, ...] | None:
        """Return the leaf entry whose key, masked as the page's keys are (_KEY_MASKS), is ``key``."""
        bid, ib = root
        for _ in range(fmt.MAX_BTREE_LEVELS + 1):
            page = self.page(ib, bid, ptype)
            keys = page.keys
            if page.level == 0:
                index = bisect_left(keys, key)
                return page.entry(index) if index < len(keys) and keys[index] == key else None
            index = bisect_right(keys, key)
            if index == 0:
                return None
            bid, ib = page.children[2 * index - 2], page.children[2 * index - 1]
        raise PstFormatError("a B-tree is deeper than 8 levels")

    def nodes(self) -> Iterator[NbtEntry]:
        """Yield every NBT entry in key order."""
        for entry in self._leaf_entries(self.header.nbt_root, fmt.PTYPE_NBT, 0):
            yield _nbt_entry(entry)

    def blocks(self) -> Iterator[BbtEntry]:
        """Yield every BBT entry in key order."""
        for entry in self._leaf_entries(self.header.bbt_root, fmt.PTYPE_BBT, 0):
            yield BbtEntry(*entry[:4])

    def _leaf_entries(self, bref: tuple[int, int], ptype: int, depth: int) -> Iterator[tuple[int, ...]]:
        if depth > fmt.MAX_BTREE_LEVELS:
            raise PstFormatError("a B-tree is deeper than 8 levels")
        page = self.page(bref[1], bref[0], ptype)
        if page.level == 0:
            yield from page.entries
            return
        for entry in page.entries:
            yield from self._leaf_entries((entry[1], entry[2]), ptype, depth + 1)

    # --- blocks

    def block(self, bid: int) -> bytes:
        """Return the payload of block ``bid``, decoded; raise PstFormatError if it is missing, cut off or damaged."""
        entry = self.block_entry(bid)
        if entry is None:
            raise PstFormatError(f"block {bid:#x} is missing from the block B-tree")
        return self.payload(entry)

    def payload(self, entry: BbtEntry) -> bytes:
        """Return the payload of the block ``entry`` names, decoded; raise PstFormatError if cut off or damaged."""
        end = entry.ib + self.layout.block_size_on_disk(entry.cb)
        if end > len(self.buffer):
            raise PstFormatError(f"block {entry.bid:#x} lies beyond the end of the file (truncated?)")
        payload = bytes(self.buffer[entry.ib:entry.ib + entry.cb])
        if self.verify:
            trailer = block_trailer(self.buffer, end - self.layout.block_trailer.size, self.layout)
            damage = block_problems(entry, trailer, payload)
            if damage:
                raise PstFormatError(damage[0])
        if self.header.crypt_method == fmt.CRYPT_PERMUTE and not is_internal(entry.bid):
            return permute.decode(payload)
        return payload

    def data_blocks(self, bid: int) -> Iterator[bytes]:
        """Yield the payloads of a node's data one block at a time: one block, or the leaves of its XBLOCK tree.

        Raise PstFormatError if a block is damaged or the leaves do not add up to the size the tree's root states.
        """
        if bid == 0:
            return
        if not is_internal(bid):
            yield self.block(bid)
            return
        total, children = parse_xblock(self.block(bid), self.layout)
        found = unreleased = 0
        for leaf in self._leaves(children, levels_left=1):
            found += len(leaf)
            unreleased += len(leaf)
            if unreleased >= _RELEASE_EVERY:
                self._release_pages()
                unreleased = 0
            yield leaf
        if found != total:
            raise PstFormatError(f"data tree {bid:#x} holds {found} bytes, its root says {total}")

    def _release_pages(self) -> None:
        # The file's pages a big value was read from stay mapped, and counted in the process's memory, until let
        # go: a 200 MB attachment held 200 MB of them beside its copy. They stay in the page cache.
        if isinstance(self.buffer, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
            self.buffer.madvise(mmap.MADV_DONTNEED)

    def _leaves(self, bids: list[int], levels_left: int) -> Iterator[bytes]:
        for bid in self._leaf_bids(bids, levels_left):
            yield self.block(bid)

    def xblock_children(self, bid: int) -> list[int]:
        """Return the child BIDs listed in XBLOCK/XXBLOCK ``bid``."""
        return parse_xblock(self.block(bid), self.layout)[1]

    def block_sizes(self, bid: int) -> Iterator[int]:
        """Yield the payload size of each block of a node's data, in order, reading the XBLOCKs and the BBT only.

        Raise PstFormatError if a block is missing.
        """
        if bid == 0:
            return
        for leaf in self._leaf_bids([bid], levels_left=2):
            entry = self.block_entry(leaf)
            if entry is None:
                raise PstFormatError(f"block {leaf:#x} is missing from the block B-tree")
            yield entry.cb

    def _leaf_bids(self, bids: list[int], levels_left: int) -> Iterator[int]:
        for bid in bids:
            if not is_internal(bid):
                yield bid
            elif levels_left == 0:
                raise PstFormatError(f"data tree block {bid:#x} nests deeper than an XXBLOCK")
            else:
                yield from self._leaf_bids(self.xblock_children(bid), levels_left - 1)

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
