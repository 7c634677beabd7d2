"""The NDB layer of the writer: blocks, data trees, subnode trees, and the node and block B-trees (§2.2.2)."""

from __future__ import annotations

import array
import itertools
import os
import struct
import tempfile
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from typing import BinaryIO, NamedTuple

from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb.allocation import Allocator
from migrator.stores.pst.ndb.btree_pages import write_btree

_BLOCK_REFS = 2  # one for the BBT entry itself, one for the single structure that points at the block


class SubnodeEntry(NamedTuple):
    """One entry of a subnode tree: a local NID, its data and its own subnode tree."""

    nid: int
    bid_data: int
    bid_sub: int = 0


class HeaderState(NamedTuple):
    """The header fields the NDB layer fills in when the file is finished."""

    file_eof: int
    amap_last: int
    amap_free: int
    nbt_root: tuple[int, int]
    bbt_root: tuple[int, int]
    bid_next_block: int
    bid_next_page: int
    last_nid_index: dict[int, int]


class BlockEntries:
    """The BBT entries of the blocks written so far, in unlinked temporary files until the BBT is written.

    A 50 000-message PST has a million blocks: their entries in memory (18 bytes each, in arrays)
    were 16 MB, a third of the writer's peak. Written as they come, they are read back once, in
    order, since new BIDs only grow. Blocks copied from another file keep its BIDs and come in the
    order of its folders and messages, so their entries are written apart, each at the place its
    BID gives (CopiedEntries), and read back through in order too: sorting them in memory at the
    end took 75 MB at 50 000 messages.
    """

    def __init__(self, directory: str | None = None) -> None:
        self._file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - kept open until close()
        self._copied = CopiedEntries(directory)
        self._first_bid = 0  # of the new blocks: above every copied one, or else they are sorted together
        self._last_bid = 0
        self._in_order = True

    def add(self, bid: int, ib: int, size: int) -> None:
        """Record the new block ``bid`` of ``size`` payload bytes at file offset ``ib``."""
        if bid < self._last_bid:
            self._in_order = False
        self._first_bid = self._first_bid or bid
        self._last_bid = bid
        self._file.write(fmt.BBTENTRY.pack(bid, ib, size, _BLOCK_REFS))

    def add_copied(self, bid: int, ib: int, size: int) -> None:
        """Record block ``bid``, copied from another file with its BID, as ``add`` does."""
        self._copied.add(fmt.BBTENTRY.pack(bid, ib, size, _BLOCK_REFS), bid)

    def sorted_leaves(self) -> Iterator[tuple[int, bytes]]:
        """Yield (bid, packed BBT entry) for every block, by BID."""
        copied, new = self._copied.leaves(), _leaves(self._file)
        if self._in_order and (not self._first_bid or self._copied.last_bid < self._first_bid):
            return itertools.chain(copied, new)
        return iter(sorted(itertools.chain(copied, new)))  # BIDs are unique: only they are compared

    def close(self) -> None:
        """Drop the files (they have no names, so nothing is left behind)."""
        self._file.close()
        self._copied.close()


class CopiedEntries:
    """BBT entries by BID, in an unlinked temporary file: the entry of BID ``b`` at ``b // BID_STEP`` entries in.

    Entries are set in pages of the file kept in memory, at most ``MAX_PAGES`` at a time (1 MB); BIDs
    copied near each other in time are near each other in the file they come from, so few pages are
    read and written again. Places no BID took read back as zeros and are passed over.
    """

    PAGE_ENTRIES = 170
    PAGE_BYTES = PAGE_ENTRIES * fmt.BBTENTRY.size  # 4 080
    MAX_PAGES = 256

    def __init__(self, directory: str | None = None) -> None:
        self._directory = directory
        self._file: BinaryIO | None = None  # made for the first entry: most files copy nothing
        self._pages: dict[int, bytearray] = {}
        self.last_bid = 0

    def add(self, entry: bytes, bid: int) -> None:
        """Set the packed ``entry`` of block ``bid``."""
        slot = bid // fmt.BID_STEP
        number, index = divmod(slot, self.PAGE_ENTRIES)
        page = self._pages.get(number)
        if page is None:
            if len(self._pages) >= self.MAX_PAGES:
                self._flush()
            page = self._pages[number] = self._read_page(number)
        size = fmt.BBTENTRY.size
        page[index * size:(index + 1) * size] = entry
        self.last_bid = max(self.last_bid, bid)

    def _read_page(self, number: int) -> bytearray:
        if self._file is None:
            self._file = tempfile.TemporaryFile(dir=self._directory)  # noqa: SIM115 - closed by close()
        stored = os.pread(self._file.fileno(), self.PAGE_BYTES, number * self.PAGE_BYTES)
        return bytearray(stored.ljust(self.PAGE_BYTES, b"\0"))

    def _flush(self) -> None:
        assert self._file is not None  # a page in memory was read from it
        for number, page in sorted(self._pages.items()):
            os.pwrite(self._file.fileno(), page, number * self.PAGE_BYTES)
        self._pages.clear()

    def leaves(self) -> Iterator[tuple[int, bytes]]:
        """Yield (bid, packed BBT entry) of every entry set, by BID."""
        if self._file is None:
            return iter(())
        self._flush()
        return (leaf for leaf in _leaves(self._file) if leaf[0])

    def close(self) -> None:
        """Drop the file."""
        self._pages.clear()
        if self._file is not None:
            self._file.close()


def _leaves(file: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """Yield (bid, packed BBT entry) for the entries of ``file``, as they are in it."""
    size = fmt.BBTENTRY.size
    file.seek(0)
    while chunk := file.read(size * 4096):
        for i in range(0, len(chunk), size):
            entry = chunk[i:i + size]
            yield int.from_bytes(entry[:8], "little"), entry


class NodeIds:
    """The NIDs of the nodes written so far, to refuse a node written twice.

    Messages get ever larger NIDs, so most come in ascending order and are found by bisection
    in an array (4 bytes each); only the others (folders and tables, written at the end, and
    nodes copied from another file) go into a set. A set of every NID took 3.7 MB at 50 000
    messages.
    """

    def __init__(self) -> None:
        self._ascending = array.array("I")
        self._others: set[int] = set()

    def __contains__(self, nid: int) -> bool:
        if nid in self._others:
            return True
        index = bisect_left(self._ascending, nid)
        return index < len(self._ascending) and self._ascending[index] == nid

    def add(self, nid: int) -> None:
        """Record ``nid``, which must not be recorded yet."""
        if self._ascending and nid <= self._ascending[-1]:
            self._others.add(nid)
        else:
            self._ascending.append(nid)


class NdbWriter:
    """Writes blocks to a file as they come and keeps only the node B-tree entries in memory."""

    def __init__(self, file: BinaryIO, scratch: str | None = None, first_interval: int = 0) -> None:
        """Write to ``file``; the block entries wait in a temporary file in directory ``scratch``.

        ``first_interval`` above 0 appends to a file that has that many intervals (see ``append.py``).
        """
        self.allocator = Allocator(file, first_interval)
        self._next_bid = fmt.FIRST_BLOCK_BID
        self._next_page_bid = 1
        self._blocks = BlockEntries(scratch)
        # NBT entries as parallel arrays (24 bytes a node; a dict of tuples took about 200).
        self._nids = array.array("I")
        self._node_data = array.array("Q")
        self._node_subs = array.array("Q")
        self._node_parents = array.array("I")
        self._node_ids = NodeIds()

    # --- blocks and data trees ----------------------------------------------------------------------------

    def write_block(self, payload: bytes | memoryview, internal: bool = False, bid: int | None = None) -> int:
        """Write one block (payload ≤ 8,176 bytes) with its trailer and return its BID.

        ``bid`` keeps the id of a block copied from another file (see ``reserve_bids``).
        """
        copied = bid is not None
        if bid is None:
            bid = self._next_bid | (fmt.BID_INTERNAL if internal else 0)
            self._next_bid += fmt.BID_STEP
        size = fmt.block_size_on_disk(len(payload))
        ib = self.allocator.allocate(size, fmt.BLOCK_ALIGN)
        padding = bytes(size - len(payload) - fmt.BLOCK_TRAILER.size)
        trailer = fmt.BLOCK_TRAILER.pack(len(payload), fmt.signature(ib, bid), fmt.crc32(payload), bid)
        self.allocator.write(ib, bytes(payload) + padding + trailer)
        if copied:
            self._blocks.add_copied(bid, ib, len(payload))
        else:
            self._blocks.add(bid, ib, len(payload))
        return bid

    def write_data(self, pieces: Iterable[bytes | memoryview]) -> int:
        """Return the BID of the bytes of ``pieces`` joined, stored as one block or as a data tree of full blocks.

        Blocks are written as the pieces come, so a big value never needs to be whole in memory.
        """
        return self._write_tree([(self.write_block(block), len(block)) for block in full_blocks(pieces)])

    def write_block_list(self, payloads: Sequence[bytes | memoryview]) -> int:
        """Return the BID of the node data made of exactly these data blocks, in order."""
        return self._write_tree([(self.write_block(payload), len(payload)) for payload in payloads])

    def _write_tree(self, refs: list[tuple[int, int]]) -> int:
        if len(refs) == 1:
            return refs[0][0]
        level = 1
        while True:
            refs = self._write_xblock_level(refs, level)
            if len(refs) == 1:
                return refs[0][0]
            level += 1

    def _write_xblock_level(self, refs: list[tuple[int, int]], level: int) -> list[tuple[int, int]]:
        if level > 2:
            raise ValueError("a data stream this large does not fit an XXBLOCK data tree")
        parents = []
        for i in range(0, len(refs), fmt.MAX_XBLOCK_ENTRIES):
            group = refs[i:i + fmt.MAX_XBLOCK_ENTRIES]
            total = sum(size for _, size in group)
            header = fmt.XBLOCK_HEADER.pack(fmt.BTYPE_XBLOCK, level, len(group), total)
            body = struct.pack(f"<{len(group)}Q", *(bid for bid, _ in group))
            parents.append((self.write_block(header + body, internal=True), total))
        return parents

    def write_subnodes(self, entries: Sequence[SubnodeEntry]) -> int:
        """Return the BID of an SLBLOCK (or SIBLOCK over SLBLOCKs) holding ``entries``; 0 when empty."""
        if not entries:
            return 0
        ordered = sorted(entries, key=lambda e: e.nid)
        leaves = []
        for i in range(0, len(ordered), fmt.MAX_SLBLOCK_ENTRIES):
            group = ordered[i:i + fmt.MAX_SLBLOCK_ENTRIES]
            body = b"".join(fmt.SLENTRY.pack(e.nid, e.bid_data, e.bid_sub) for e in group)
            header = fmt.SLBLOCK_HEADER.pack(fmt.BTYPE_SLBLOCK, 0, len(group))
            leaves.append((group[0].nid, self.write_block(header + body, internal=True)))
        if len(leaves) == 1:
            return leaves[0][1]
        if len(leaves) > fmt.MAX_SIBLOCK_ENTRIES:
            raise ValueError("too many subnodes for one SIBLOCK")
        body = b"".join(fmt.SIENTRY.pack(nid, bid) for nid, bid in leaves)
        header = fmt.SLBLOCK_HEADER.pack(fmt.BTYPE_SLBLOCK, 1, len(leaves))
        return self.write_block(header + body, internal=True)

    def reserve_bids(self, next_bid: int) -> None:
        """Make new blocks take BIDs from ``next_bid`` on, above those of blocks copied from another file."""
        self._next_bid = max(self._next_bid, next_bid - next_bid % fmt.BID_STEP + fmt.BID_STEP)

    # --- nodes --------------------------------------------------------------------------------------------

    def add_node(self, nid: int, bid_data: int, bid_sub: int, nid_parent: int) -> None:
        """Record a top-level node for the NBT."""
        if nid in self._node_ids:
            raise ValueError(f"node {nid:#x} written twice")
        self._node_ids.add(nid)
        self._nids.append(nid)
        self._node_data.append(bid_data)
        self._node_subs.append(bid_sub)
        self._node_parents.append(nid_parent)

    def has_node(self, nid: int) -> bool:
        """Return True when the node ``nid`` was already written."""
        return nid in self._node_ids

    def close(self) -> None:
        """Drop the block entries kept for the BBT (after finish, or when abandoning the file)."""
        self._blocks.close()

    # --- finishing ----------------------------------------------------------------------------------------

    def node_entries(self) -> Iterator[tuple[int, bytes]]:
        """Yield (nid, packed NBT entry) of every node recorded, by NID."""
        return (
            (
                self._nids[i],
                fmt.NBTENTRY.pack(self._nids[i], self._node_data[i], self._node_subs[i], self._node_parents[i]),
            )
            for i in sorted(range(len(self._nids)), key=self._nids.__getitem__)
        )

    def block_entries(self) -> Iterator[tuple[int, bytes]]:
        """Yield (bid, packed BBT entry) of every block written, by BID."""
        return self._blocks.sorted_leaves()

    def finish(self) -> HeaderState:
        """Write the NBT and BBT pages and the allocation maps; return the header fields they determine."""
        nbt_root = write_btree(self, self.node_entries(), fmt.PTYPE_NBT, fmt.NBTENTRY.size)
        bbt_root = write_btree(self, self._blocks.sorted_leaves(), fmt.PTYPE_BBT, fmt.BBTENTRY.size)
        eof = self.allocator.finish()
        self.allocator.write_free_maps()
        return HeaderState(
            file_eof=eof,
            amap_last=self.allocator.last_amap_offset,
            amap_free=self.allocator.amap_free_bytes,
            nbt_root=nbt_root,
            bbt_root=bbt_root,
            bid_next_block=self._next_bid,
            bid_next_page=self._next_page_bid,
            last_nid_index=self._last_nid_index(),
        )

    def last_nid_index(self) -> dict[int, int]:
        """Return the highest NID index of each NID type recorded."""
        return self._last_nid_index()

    def _last_nid_index(self) -> dict[int, int]:
        last: dict[int, int] = {}
        for nid in self._nids:
            last[fmt.nid_type(nid)] = max(last.get(fmt.nid_type(nid), 0), fmt.nid_index(nid))
        return last

    def write_page(self, body: bytes, ptype: int) -> tuple[int, int]:
        """Write a 512-byte B-tree page whose first 496 bytes are ``body``; return its (bid, ib)."""
        bid = self._next_page_bid
        self._next_page_bid += 1
        ib = self.allocator.allocate(fmt.PAGE_SIZE, fmt.PAGE_SIZE)
        trailer = fmt.PAGE_TRAILER.pack(ptype, ptype, fmt.signature(ib, bid), fmt.crc32(body), bid)
        self.allocator.write(ib, body + trailer)
        return bid, ib


def full_blocks(pieces: Iterable[bytes | memoryview]) -> Iterator[bytes | memoryview]:
    """Yield the bytes of ``pieces`` joined, cut into full block payloads and a shorter last one (at least one)."""
    step = fmt.MAX_BLOCK_PAYLOAD
    pending = bytearray()
    yielded = False
    for piece in pieces:
        view = memoryview(piece)
        if pending:
            taken = step - len(pending)
            pending += view[:taken]
            view = view[taken:]
            if len(pending) < step:
                continue
            yield bytes(pending)
            yielded = True
            pending.clear()
        whole = len(view) - len(view) % step
        for start in range(0, whole, step):
            yield view[start:start + step]
            yielded = True
        pending += view[whole:]
    if pending or not yielded:
        yield bytes(pending)
