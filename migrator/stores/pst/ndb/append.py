"""Appending to an existing Unicode PST in place, so that a kill at any moment leaves the previous file whole.

New blocks and B-tree pages go first into space the file's maps marked free when the append began
(``free_space.py``), then after the file's end (``ibFileEof``); the NBT and BBT change copy-on-write, so the old
trees stay as they were; the blocks and pages the new trees no longer use are freed in their AMaps, and reused
only by a later append; the header is written last. The order of ``NdbAppender.commit``, each step made durable
before the next:

1. blocks, B-tree pages (in the old free space, then past the old end) and the new intervals' maps; fsync;
2. when an old interval's map changes (space freed or reused): the old header with fAMapValid = INVALID_AMAP; fsync;
3. the AMaps (and FMaps) of those intervals: freed space marked free, reused space marked used; fsync;
4. the new header: new roots, end of file, free space, fAMapValid valid; fsync.

Killed before 4, the header still names the old trees, which nothing overwrote (what step 1 wrote below the old
end lies where the old maps, and so the old trees, have nothing): the file is the previous one, with bytes in its
free space (which the next append may write over), bytes after ``ibFileEof`` (which ``prepare`` cuts off) and,
after 2, maps marked untrustworthy (which ``prepare`` builds again from the B-trees, as §2.6.1.3.7 asks of the
next writer).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import BinaryIO

from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb.allocation import longest_zero_run, map_page, patch_fmap, set_bits, used_units
from migrator.stores.pst.ndb.btree_update import TreeUpdate
from migrator.stores.pst.ndb.free_space import FreeSpace
from migrator.stores.pst.ndb.header_writer import updated_header, with_amap_invalid, with_crcs
from migrator.stores.pst.ndb.reader import (
    NbtEntry,
    Ndb,
    PstFormatError,
    block_key,
    is_internal,
    parse_slblock,
    parse_xblock,
)
from migrator.stores.pst.ndb.writer import HeaderState, NdbWriter


class NdbAppender(NdbWriter):
    """An NdbWriter adding to the file ``base`` was read from: new data in its free space, then after its end; old
    trees changed on copy."""

    def __init__(self, file: BinaryIO, base: Ndb, scratch: str | None = None) -> None:
        header = base.header
        if not header.layout.unicode:
            raise PstFormatError("only a Unicode PST can be appended to")
        if header.amap_valid != fmt.AMAP_VALID:
            raise PstFormatError("its allocation maps are marked invalid; open it with prepare() first")
        intervals, rest = divmod(header.file_eof - fmt.FIRST_AMAP_OFFSET, fmt.AMAP_INTERVAL)
        if rest or intervals < 1:
            raise PstFormatError(f"its end of file {header.file_eof} is not at the end of an interval")
        super().__init__(file, scratch, first_interval=intervals)
        self.allocator.old_space = FreeSpace(file, intervals)
        self.base = base
        self.reserve_bids(header.bid_next_b - fmt.BID_STEP)
        self._next_page_bid = header.bid_next_p
        self._freed: dict[int, int] = {}  # block key -> file offset of blocks the new trees no longer use

    def has_node(self, nid: int) -> bool:
        """Return True when the node ``nid`` is in the file or was written now."""
        return super().has_node(nid) or self.base.node(nid) is not None

    def add_node(self, nid: int, bid_data: int, bid_sub: int, nid_parent: int) -> None:
        """Record a node; one the file has already is replaced, and its old blocks are freed."""
        old = self.base.node(nid)
        if old is not None and not super().has_node(nid):
            self.free_node(old)
        super().add_node(nid, bid_data, bid_sub, nid_parent)

    def replace_node_data(self, nid: int, bid_data: int) -> None:
        """Give the file's node ``nid`` new data, keeping its subnode tree: only its old data tree is freed."""
        old = self.base.node(nid)
        if old is None or super().has_node(nid):
            raise ValueError(f"node {nid:#x} is not in the file, or was written already")
        self.free_node(NbtEntry(nid, old.bid_data, 0, old.nid_parent))
        super().add_node(nid, bid_data, old.bid_sub, old.nid_parent)

    def free_node(self, node: NbtEntry, keep: frozenset[int] = frozenset()) -> None:
        """Free the blocks of ``node``'s data and subnode trees, but those in ``keep`` (the new node uses them)."""
        for bid in node_blocks(self.base, node.bid_data, node.bid_sub):
            if block_key(bid) in keep or block_key(bid) in self._freed:
                continue
            entry = self.base.block_entry(bid)
            if entry is None:
                raise PstFormatError(f"block {bid:#x} of node {node.nid:#x} is missing from the block B-tree")
            self._freed[block_key(bid)] = entry.ib | (self.base.layout.block_size_on_disk(entry.cb) << 48)

    def commit(self) -> None:
        """Make the additions part of the file, in the order the module docstring gives; fsync at each step."""
        header = self.base.header
        nbt = TreeUpdate(self.base, self, fmt.PTYPE_NBT, fmt.NBTENTRY.size)
        nbt_root = nbt.apply(header.nbt_root, list(self.node_entries()))
        bbt = TreeUpdate(self.base, self, fmt.PTYPE_BBT, fmt.BBTENTRY.size)
        bbt_root = bbt.apply(header.bbt_root, [(key, None) for key in sorted(self._freed)])
        bbt_root = bbt.append(bbt_root, self.block_entries())
        eof = self.allocator.finish()
        self.allocator.write_free_maps()
        self._sync()
        extents = [(packed & (1 << 48) - 1, packed >> 48) for packed in self._freed.values()]
        extents += [(ib, fmt.PAGE_SIZE) for ib in (*nbt.replaced, *bbt.replaced)]
        old_header = bytes(self.base.buffer[:fmt.HEADER_SIZE])
        reused = self.allocator.old_space.taken if self.allocator.old_space else {}
        change = 0
        if extents or reused:
            self._write_header(with_amap_invalid(old_header))
            change = write_old_maps(self.allocator.file, extents, reused)
            self._sync()
        state = HeaderState(
            file_eof=eof,
            amap_last=self.allocator.last_amap_offset,
            amap_free=header.amap_free + change + self.allocator.amap_free_bytes,
            nbt_root=nbt_root,
            bbt_root=bbt_root,
            bid_next_block=self._next_bid,
            bid_next_page=self._next_page_bid,
            last_nid_index=self.last_nid_index(),
        )
        self._write_header(updated_header(old_header, state))

    def _write_header(self, header: bytes) -> None:
        self.allocator.write(0, header)
        self._sync()

    def _sync(self) -> None:
        self.allocator.file.flush()
        os.fsync(self.allocator.file.fileno())


def node_blocks(ndb: Ndb, bid_data: int, bid_sub: int) -> Iterator[int]:
    """Yield every block of a node: its data tree, its subnode tree and the trees of its subnodes."""
    yield from data_tree_blocks(ndb, bid_data)
    if bid_sub == 0:
        return
    yield bid_sub
    level, entries = parse_slblock(ndb.block(bid_sub), ndb.layout)
    for entry in entries:
        if level:
            yield from node_blocks(ndb, 0, entry.bid_data)
        else:
            yield from node_blocks(ndb, entry.bid_data, entry.bid_sub)


def data_tree_blocks(ndb: Ndb, bid: int) -> Iterator[int]:
    """Yield the blocks of a data tree: the block itself, and below an XBLOCK or XXBLOCK its children."""
    if bid == 0:
        return
    yield bid
    if is_internal(bid):
        for child in parse_xblock(ndb.block(bid), ndb.layout)[1]:
            yield from data_tree_blocks(ndb, child)


def write_old_maps(file: BinaryIO, freed: list[tuple[int, int]], reused: dict[int, bytearray]) -> int:
    """Write the AMaps (and FMaps) of the old intervals that changed: the (offset, size) ``freed`` extents marked
    free, and the bits of ``reused`` (by interval: the committed map with what was reused set) marked used.
    Return the bytes this frees, less those it takes (below 0 when more was reused than freed)."""
    by_interval: dict[int, list[tuple[int, int]]] = {index: [] for index in reused}
    for ib, size in freed:
        index = (ib - fmt.FIRST_AMAP_OFFSET) // fmt.AMAP_INTERVAL
        by_interval.setdefault(index, []).append((ib, size))
    change = 0
    runs: dict[int, int] = {}
    for index, pieces in sorted(by_interval.items()):
        start = fmt.interval_offset(index)
        file.seek(start)
        committed = file.read(fmt.PAGE_DATA_SIZE)
        bitmap = bytearray(reused.get(index, committed))
        if int.from_bytes(committed, "big") & ~int.from_bytes(bitmap, "big"):
            raise PstFormatError(f"the allocation map at {start:#x} changed while the file was appended to")
        for ib, size in pieces:
            clear_bits(bitmap, (ib - start) // fmt.BLOCK_ALIGN, (size + fmt.BLOCK_ALIGN - 1) // fmt.BLOCK_ALIGN)
        change += (used_units(committed) - used_units(bitmap)) * fmt.BLOCK_ALIGN
        file.seek(start)
        file.write(map_page(bytes(bitmap), fmt.PTYPE_AMAP, start))
        if index >= fmt.FMAP_FIRST:  # an FMap records the run, up to 255 units
            runs[index] = longest_zero_run(bitmap, 255)
    _patch_fmaps(file, runs)
    return change


def _patch_fmaps(file: BinaryIO, runs: dict[int, int]) -> None:
    by_fmap: dict[int, dict[int, int]] = {}
    for index, run in runs.items():
        if index >= fmt.FMAP_FIRST:
            fmap = index - (index - fmt.FMAP_FIRST) % fmt.FMAP_EVERY
            by_fmap.setdefault(fmap, {})[index] = run
    for fmap, patch in by_fmap.items():
        patch_fmap(file, fmap, patch)


def clear_bits(bitmap: bytearray, first: int, count: int) -> None:
    """Clear ``count`` bits of ``bitmap`` from bit ``first`` on, most significant bit first."""
    end = first + count
    while first < end and first % 8:
        bitmap[first // 8] &= ~(0x80 >> (first % 8)) & 0xFF
        first += 1
    whole = (end - first) // 8  # a freed table's blocks span thousands of bits: whole bytes at once
    bitmap[first // 8:first // 8 + whole] = bytes(whole)
    for bit in range(first + 8 * whole, end):
        bitmap[bit // 8] &= ~(0x80 >> (bit % 8)) & 0xFF


def prepare(file: BinaryIO) -> None:
    """Make an existing file ready to be appended to: cut off what a killed append left after ``ibFileEof``, and
    build the allocation maps again from the B-trees when a killed append left them marked invalid."""
    file.seek(0)
    header_bytes = file.read(fmt.HEADER_SIZE)
    file.seek(0, os.SEEK_END)
    size = file.tell()
    ndb = Ndb(header_bytes + bytes(0))  # the header alone: its fields say what to do
    eof = ndb.header.file_eof
    if not ndb.layout.unicode or size < eof:
        return  # not ours to change; the caller rebuilds such a file or refuses it
    if size > eof:
        file.truncate(eof)
        file.flush()
        os.fsync(file.fileno())
    if ndb.header.amap_valid != fmt.AMAP_VALID:
        rebuild_maps(file)


def rebuild_maps(file: BinaryIO) -> None:
    """Write every AMap again from the pages and blocks the B-trees use, then a header saying they are valid."""
    import mmap

    with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        ndb = Ndb(data)
        eof = ndb.header.file_eof
        intervals = (eof - fmt.FIRST_AMAP_OFFSET) // fmt.AMAP_INTERVAL
        bitmaps = [bytearray(fmt.PAGE_DATA_SIZE) for _ in range(intervals)]
        for index, bitmap in enumerate(bitmaps):
            set_bits(bitmap, 0, fmt.reserved_map_bytes(index) // fmt.BLOCK_ALIGN)
        for ib, size in _used_extents(ndb):
            index, offset = divmod(ib - fmt.FIRST_AMAP_OFFSET, fmt.AMAP_INTERVAL)
            set_bits(bitmaps[index], offset // fmt.BLOCK_ALIGN, (size + fmt.BLOCK_ALIGN - 1) // fmt.BLOCK_ALIGN)
        header = bytearray(data[:fmt.HEADER_SIZE])
    free = 0
    runs = {}
    for index, bitmap in enumerate(bitmaps):
        start = fmt.interval_offset(index)
        file.seek(start)
        file.write(map_page(bytes(bitmap), fmt.PTYPE_AMAP, start))
        free += fmt.AMAP_BITS - used_units(bitmap)
        runs[index] = longest_zero_run(bitmap, 255)
    _patch_fmaps(file, runs)
    file.flush()
    os.fsync(file.fileno())
    root = fmt.HDR_ROOT
    header[root + 20:root + 28] = (free * fmt.BLOCK_ALIGN).to_bytes(8, "little")  # cbAMapFree
    header[root + fmt.ROOT_AMAP_VALID] = fmt.AMAP_VALID
    file.seek(0)
    file.write(with_crcs(header))
    file.flush()
    os.fsync(file.fileno())


def _used_extents(ndb: Ndb) -> Iterator[tuple[int, int]]:
    """Yield (offset, size) of every B-tree page and every block the file's B-trees use."""
    for root, ptype in ((ndb.header.nbt_root, fmt.PTYPE_NBT), (ndb.header.bbt_root, fmt.PTYPE_BBT)):
        yield from _tree_pages(ndb, root, ptype)
    for entry in ndb.blocks():
        yield entry.ib, ndb.layout.block_size_on_disk(entry.cb)


def _tree_pages(ndb: Ndb, ref: tuple[int, int], ptype: int) -> Iterator[tuple[int, int]]:
    yield ref[1], fmt.PAGE_SIZE
    page = ndb.page(ref[1], ref[0], ptype)
    if page.level:
        for entry in page.entries:
            yield from _tree_pages(ndb, (entry[1], entry[2]), ptype)
