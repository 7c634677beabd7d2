"""Heap-on-node and BTree-on-heap builders (§2.3.1, §2.3.2): values in, heap block payloads out."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import NamedTuple

from migrator.stores.pst.ltp import format as ltp_fmt
from migrator.stores.pst.ndb import format as fmt

_FILL_THRESHOLDS = (3584, 2560, 2048, 1792, 1536, 1280, 1024, 768, 512, 256, 128, 64, 32, 16, 8)


def fill_level(free: int) -> int:
    """Return the 4-bit fill level of a heap block with ``free`` bytes left (0 = mostly empty, 15 = full)."""
    for level, threshold in enumerate(_FILL_THRESHOLDS):
        if free >= threshold:
            return level
    return 15


def page_header_size(block_index: int) -> int:
    """Return the size of the header that starts heap block ``block_index``."""
    if block_index == 0:
        return ltp_fmt.HNHDR.size
    first, every = ltp_fmt.HN_BITMAP_FIRST, ltp_fmt.HN_BITMAP_EVERY
    if block_index >= first and (block_index - first) % every == 0:
        return ltp_fmt.HNBITMAPHDR.size
    return ltp_fmt.HNPAGEHDR.size


class Heap:
    """A heap-on-node being built: allocations are appended, each block filled before the next is opened."""

    def __init__(self, client_signature: int) -> None:
        self.client_signature = client_signature
        self._blocks: list[list[bytes]] = [[]]
        self._used = [page_header_size(0)]

    @classmethod
    def resumed(cls, client_signature: int, blocks: list[list[bytes]]) -> Heap:
        """Return a heap holding the allocations ``blocks`` (by heap block, in HID order), as if allocate() had
        stored them one by one; raise ValueError when allocate() would have placed them in other blocks."""
        heap = cls(client_signature)
        if not blocks or any(not allocations for allocations in blocks[1:]):
            raise ValueError("a heap block other than the first holds no allocation")
        heap._blocks = [list(allocations) for allocations in blocks]
        heap._used = [page_header_size(i) + sum(map(len, allocations)) for i, allocations in enumerate(blocks)]
        for index, allocations in enumerate(heap._blocks):
            # The last allocation of each block fitted, and the first of the next one did not.
            count = len(allocations)
            page_map = ltp_fmt.HNPAGEMAP_HEADER.size + 2 * (count + 1)
            if count and (heap._used[index] + 1 + page_map > fmt.MAX_BLOCK_PAYLOAD or count >= 0x800
                          or max(map(len, allocations)) > ltp_fmt.MAX_HEAP_ALLOC):
                raise ValueError(f"heap block {index} is fuller than allocate() fills one")
            if index + 1 < len(blocks) and heap._fits(index, len(blocks[index + 1][0])):
                raise ValueError(f"heap block {index + 1} starts with an allocation that fitted in block {index}")
        return heap

    def allocate(self, data: bytes) -> int:
        """Store ``data`` (≤ 3,580 bytes) in the heap and return its HID."""
        size = len(data)
        if size > ltp_fmt.MAX_HEAP_ALLOC:
            raise ValueError(f"heap allocation of {size} bytes exceeds {ltp_fmt.MAX_HEAP_ALLOC}")
        index = len(self._blocks) - 1
        if not self._fits(index, size):  # a big table's rows come here by the hundred thousand: kept lean
            self._blocks.append([])
            index += 1
            self._used.append(page_header_size(index))
        allocations = self._blocks[index]
        allocations.append(data)
        self._used[index] += size
        return ltp_fmt.make_hid(index, len(allocations))

    def patch(self, hid: int, offset: int, data: bytes) -> None:
        """Overwrite ``data`` at ``offset`` inside the allocation ``hid`` (its size does not change)."""
        block, index = ltp_fmt.hid_parts(hid)
        allocation = self._blocks[block][index - 1]
        self._blocks[block][index - 1] = allocation[:offset] + data + allocation[offset + len(data):]

    def _fits(self, index: int, size: int) -> bool:
        count = len(self._blocks[index]) + 1
        page_map = ltp_fmt.HNPAGEMAP_HEADER.size + 2 * (count + 1)
        return self._used[index] + size + 1 + page_map <= fmt.MAX_BLOCK_PAYLOAD and count < 0x7FF

    def block_payloads(self, root_hid: int) -> list[bytes]:
        """Return the heap's blocks as node data payloads, with ``root_hid`` as hidUserRoot."""
        return [self._block_payload(i, root_hid) for i in range(len(self._blocks))]

    def _block_payload(self, index: int, root_hid: int) -> bytes:
        header_size = page_header_size(index)
        body = b"".join(self._blocks[index])
        map_offset = header_size + len(body) + (header_size + len(body)) % 2
        offsets = [header_size]
        for allocation in self._blocks[index]:
            offsets.append(offsets[-1] + len(allocation))
        page_map = ltp_fmt.HNPAGEMAP_HEADER.pack(len(self._blocks[index]), 0)
        page_map += struct.pack(f"<{len(offsets)}H", *offsets)
        header = self._page_header(index, map_offset, root_hid)
        return header + body + bytes(map_offset - header_size - len(body)) + page_map

    def _page_header(self, index: int, map_offset: int, root_hid: int) -> bytes:
        if index == 0:
            levels = self._fill_levels(0, 8, 4)
            return ltp_fmt.HNHDR.pack(map_offset, ltp_fmt.HN_SIGNATURE, self.client_signature, root_hid, levels)
        if page_header_size(index) == ltp_fmt.HNBITMAPHDR.size:
            return ltp_fmt.HNBITMAPHDR.pack(map_offset, self._fill_levels(index, ltp_fmt.HN_BITMAP_EVERY, 64))
        return ltp_fmt.HNPAGEHDR.pack(map_offset)

    def _fill_levels(self, first: int, count: int, size: int) -> bytes:
        nibbles = []
        for index in range(first, first + count):
            if index < len(self._blocks):
                nibbles.append(fill_level(fmt.MAX_BLOCK_PAYLOAD - self._used[index]))
            else:
                nibbles.append(0)
        return bytes(nibbles[i] | nibbles[i + 1] << 4 for i in range(0, len(nibbles), 2)).ljust(size, b"\0")


class BthRef(NamedTuple):
    """Where a BTH was stored: its header's HID, and the HIDs of its leaves with their record capacity."""

    header: int
    leaves: tuple[int, ...]
    per_leaf: int


def build_bth(heap: Heap, key_size: int, data_size: int, records: Sequence[tuple[int, bytes]]) -> BthRef:
    """Store a BTH of ``records`` (key, data bytes) sorted by key in ``heap``; return where it went."""
    level = 0
    hid_root = 0
    leaves: list[int] = []
    per_leaf = ltp_fmt.MAX_HEAP_ALLOC // (key_size + data_size)
    entries = [(key, key.to_bytes(key_size, "little") + data) for key, data in records]
    while entries:
        per_allocation = ltp_fmt.MAX_HEAP_ALLOC // len(entries[0][1])
        parents = []
        for i in range(0, len(entries), per_allocation):
            group = entries[i:i + per_allocation]
            hid = heap.allocate(b"".join(packed for _, packed in group))
            parents.append((group[0][0], group[0][0].to_bytes(key_size, "little") + struct.pack("<I", hid)))
        if level == 0:
            leaves = [struct.unpack("<I", packed[key_size:])[0] for _, packed in parents]
        if len(parents) == 1:
            hid_root = leaves[0] if level == 0 else struct.unpack("<I", parents[0][1][key_size:])[0]
            break
        entries = parents
        level += 1
    header = heap.allocate(ltp_fmt.BTHHEADER.pack(ltp_fmt.HN_CLIENT_BTH, key_size, data_size, level, hid_root))
    return BthRef(header, tuple(leaves), per_leaf)
