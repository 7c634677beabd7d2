"""The lists, tables and properties layer, read side ([MS-PST] §2.3): HN, BTH, PC and TC.

A ``Node`` is what the NDB gives a structure: its data blocks and its subnodes. Everything above reads through it,
so a PC or TC works the same whether it is a top-level node or a subnode of a message.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from typing import NamedTuple

from migrator.stores.pst.ltp import format as ltp_fmt
from migrator.stores.pst.ltp import props as pt
from migrator.stores.pst.ltp.values_reader import decode_value, fixed_size
from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb.reader import Layout, Ndb, PstFormatError, SubnodeEntry


class Node:
    """A node or subnode: its data (a heap, a raw value) and its subnodes, read on demand."""

    def __init__(self, ndb: Ndb, nid: int, bid_data: int, bid_sub: int) -> None:
        self.ndb = ndb
        self.nid = nid
        self.bid_data = bid_data
        self.bid_sub = bid_sub
        self._subnodes: dict[int, SubnodeEntry] | None = None

    @classmethod
    def top(cls, ndb: Ndb, nid: int) -> Node:
        """Return the top-level node ``nid``; raise PstFormatError if the NBT has no such node."""
        entry = ndb.node(nid)
        if entry is None:
            raise PstFormatError(f"node {nid:#x} is missing from the node B-tree")
        return cls(ndb, nid, entry.bid_data, entry.bid_sub)

    def blocks(self) -> list[bytes]:
        """Return the payloads of the node's data blocks."""
        return list(self.ndb.data_blocks(self.bid_data))

    def data(self) -> bytes:
        """Return the node's data as one byte string."""
        # Streamed into one growing buffer, whose getvalue() hands it over without a copy: joining a list of
        # the blocks held a 200 MB value twice.
        joined = io.BytesIO()
        for block in self.ndb.data_blocks(self.bid_data):
            joined.write(block)
        return joined.getvalue()

    def data_size(self) -> int:
        """Return the size of the node's data without reading it all."""
        return self.ndb.data_size(self.bid_data)

    def subnode(self, nid: int) -> Node:
        """Return subnode ``nid``; raise PstFormatError when it does not exist."""
        entry = self._subnode_entries().get(nid & fmt.NID_MASK)
        if entry is None:
            raise PstFormatError(f"subnode {nid:#x} of node {self.nid:#x} is missing")
        return Node(self.ndb, entry.nid, entry.bid_data, entry.bid_sub)

    def has_subnode(self, nid: int) -> bool:
        """Return True when the node has subnode ``nid``."""
        return nid & fmt.NID_MASK in self._subnode_entries()

    def subnode_ids(self) -> list[int]:
        """Return the NIDs of the node's own subnodes."""
        return list(self._subnode_entries())

    def _subnode_entries(self) -> dict[int, SubnodeEntry]:
        if self._subnodes is None:
            self._subnodes = self.ndb.subnodes(self.bid_sub)
        return self._subnodes


# --- heap-on-node ---------------------------------------------------------------------------------------------


class HeapHeader(NamedTuple):
    """The HNHDR at the start of a heap's first block."""

    page_map_offset: int
    signature: int
    client_signature: int
    user_root: int


class Heap:
    """A heap-on-node: allocations addressed by HID across the node's data blocks."""

    def __init__(self, blocks: list[bytes]) -> None:
        if not blocks or len(blocks[0]) < ltp_fmt.HNHDR.size:
            raise PstFormatError("a heap-on-node is empty")
        self.blocks = blocks
        self.header = HeapHeader(*ltp_fmt.HNHDR.unpack_from(blocks[0])[:4])
        if self.header.signature != ltp_fmt.HN_SIGNATURE:
            raise PstFormatError(f"a heap-on-node has signature {self.header.signature:#x}, not 0xec")
        self._maps: dict[int, list[int]] = {}

    def page_map(self, block_index: int) -> list[int]:
        """Return the allocation offsets of a block (cAlloc + 1 of them)."""
        if block_index not in self._maps:
            self._maps[block_index] = parse_page_map(self.blocks[block_index])
        return self._maps[block_index]

    def get(self, hid: int) -> bytes:
        """Return the bytes of allocation ``hid``; raise PstFormatError for a HID that does not exist."""
        if hid == 0:
            return b""
        block_index, alloc_index = ltp_fmt.hid_parts(hid)
        if block_index >= len(self.blocks):
            raise PstFormatError(f"HID {hid:#x} names heap block {block_index} of {len(self.blocks)}")
        offsets = self.page_map(block_index)
        if not 1 <= alloc_index < len(offsets):
            raise PstFormatError(f"HID {hid:#x} names allocation {alloc_index} of {len(offsets) - 1}")
        start, end = offsets[alloc_index - 1], offsets[alloc_index]
        if not start <= end <= len(self.blocks[block_index]):
            raise PstFormatError(f"HID {hid:#x} has impossible bounds {start}..{end}")
        return self.blocks[block_index][start:end]


def parse_page_map(block: bytes) -> list[int]:
    """Return the allocation offsets of the HNPAGEMAP a heap block points to."""
    (map_offset,) = struct.unpack_from("<H", block)
    if map_offset + ltp_fmt.HNPAGEMAP_HEADER.size > len(block):
        raise PstFormatError(f"a heap page map at {map_offset} lies beyond its block of {len(block)} bytes")
    count, _free = ltp_fmt.HNPAGEMAP_HEADER.unpack_from(block, map_offset)
    start = map_offset + ltp_fmt.HNPAGEMAP_HEADER.size
    if start + 2 * (count + 1) > len(block):
        raise PstFormatError(f"a heap page map lists {count} allocations beyond its block")
    return list(struct.unpack_from(f"<{count + 1}H", block, start))


# --- BTree-on-heap -------------------------------------------------------------------------------------------


class BthHeader(NamedTuple):
    """A BTHHEADER: key and entry sizes, index depth and the root's HID."""

    btype: int
    key_size: int
    entry_size: int
    index_levels: int
    root: int


def bth_header(heap: Heap, hid: int) -> BthHeader:
    """Return the BTH header at ``hid``; raise PstFormatError if it is not one."""
    raw = heap.get(hid)
    if len(raw) < ltp_fmt.BTHHEADER.size:
        raise PstFormatError(f"BTH header {hid:#x} is {len(raw)} bytes long")
    header = BthHeader(*ltp_fmt.BTHHEADER.unpack_from(raw))
    if header.btype != ltp_fmt.HN_CLIENT_BTH or header.key_size not in (2, 4, 8, 16) or header.entry_size > 32:
        raise PstFormatError(f"BTH header {hid:#x} has type {header.btype:#x} and key size {header.key_size}")
    return header


def bth_records(heap: Heap, header: BthHeader) -> Iterator[tuple[bytes, bytes]]:
    """Yield the (key, data) leaf records of a BTH in stored order."""
    if header.root:
        yield from _bth_level(heap, header, header.root, header.index_levels)


def _bth_level(heap: Heap, header: BthHeader, hid: int, level: int) -> Iterator[tuple[bytes, bytes]]:
    raw = heap.get(hid)
    size = header.key_size + (4 if level else header.entry_size)
    if len(raw) % size:
        raise PstFormatError(f"BTH records at {hid:#x} are {len(raw)} bytes, not a multiple of {size}")
    for start in range(0, len(raw), size):
        key, data = raw[start:start + header.key_size], raw[start + header.key_size:start + size]
        if level:
            yield from _bth_level(heap, header, int.from_bytes(data, "little"), level - 1)
        else:
            yield key, data


# --- values referenced by HNID ------------------------------------------------------------------------------


def hnid_bytes(heap: Heap, node: Node, hnid: int) -> bytes:
    """Return the bytes an HNID names: a heap allocation, or the data of a subnode."""
    if hnid == 0:
        return b""
    if ltp_fmt.is_hid(hnid):
        return heap.get(hnid)
    return node.subnode(hnid).data()


def hnid_size(heap: Heap, node: Node, hnid: int) -> int:
    """Return the size of the value an HNID names, reading only the data tree's root for subnodes."""
    if hnid == 0:
        return 0
    if ltp_fmt.is_hid(hnid):
        return len(heap.get(hnid))
    return node.subnode(hnid).data_size()


# --- property context ----------------------------------------------------------------------------------------


class PropertyContext:
    """A PC: properties by id, decoded on request (strings in 8-bit files with ``codepage``)."""

    def __init__(self, node: Node, codepage: str = "cp1252") -> None:
        self.node = node
        self.heap = Heap(node.blocks())
        if self.heap.header.client_signature != ltp_fmt.HN_CLIENT_PC:
            raise PstFormatError(f"node {node.nid:#x} is not a property context")
        header = bth_header(self.heap, self.heap.header.user_root)
        if header.key_size != 2 or header.entry_size != 6:
            raise PstFormatError(f"node {node.nid:#x} has a PC with {header.key_size}-byte keys")
        self.records: dict[int, tuple[int, int]] = {}
        for key, data in bth_records(self.heap, header):
            prop_type, slot = struct.unpack("<HI", data)
            self.records[int.from_bytes(key, "little")] = (prop_type, slot)
        self.codepage = codepage

    def __contains__(self, prop_id: int) -> bool:
        return prop_id in self.records

    def prop_type(self, prop_id: int) -> int | None:
        """Return the type of property ``prop_id``, or None when absent."""
        record = self.records.get(prop_id)
        return record[0] if record else None

    def raw(self, prop_id: int) -> bytes | None:
        """Return the stored bytes of property ``prop_id``, or None when absent."""
        record = self.records.get(prop_id)
        if record is None:
            return None
        prop_type, slot = record
        size = fixed_size(prop_type)
        if size is not None and size <= 4:
            return slot.to_bytes(4, "little")[:size]
        return hnid_bytes(self.heap, self.node, slot)

    def size(self, prop_id: int) -> int | None:
        """Return the stored size of property ``prop_id`` without reading a big value, or None when absent."""
        record = self.records.get(prop_id)
        if record is None:
            return None
        prop_type, slot = record
        size = fixed_size(prop_type)
        return size if size is not None and size <= 4 else hnid_size(self.heap, self.node, slot)

    def get(self, prop_id: int, default: object = None) -> object:
        """Return the decoded value of property ``prop_id``, or ``default`` when absent."""
        raw = self.raw(prop_id)
        if raw is None:
            return default
        return decode_value(self.records[prop_id][0], raw, self.codepage)

    def hnid(self, prop_id: int) -> int | None:
        """Return the HNID slot of a variable-size property (PtypObject values point at subnodes)."""
        record = self.records.get(prop_id)
        return record[1] if record else None


# --- table context ------------------------------------------------------------------------------------------


class Column(NamedTuple):
    """A TCOLDESC: property tag, offset and size in the row, cell-existence bit."""

    tag: int
    offset: int
    size: int
    bit: int


class TableInfo(NamedTuple):
    """A TCINFO: the column layout, the RowIndex BTH and where the row matrix is."""

    ends: tuple[int, int, int, int]  # end offsets of 8/4-byte, 2-byte, 1-byte columns and of the bitmap
    row_index: int
    rows_hnid: int
    columns: tuple[Column, ...]

    @property
    def row_size(self) -> int:
        """Return the bytes one row takes."""
        return self.ends[ltp_fmt.TCI_BM]


def parse_table_info(raw: bytes) -> TableInfo:
    """Return the TCINFO parsed from its heap allocation; raise PstFormatError if it is not one."""
    if len(raw) < ltp_fmt.TCINFO_HEADER.size:
        raise PstFormatError("a table's TCINFO is too short")
    btype, count, *ends, row_index, rows_hnid = ltp_fmt.TCINFO_HEADER.unpack_from(raw)
    if btype != ltp_fmt.HN_CLIENT_TC or len(raw) < ltp_fmt.TCINFO_HEADER.size + count * ltp_fmt.TCOLDESC.size:
        raise PstFormatError(f"a table's TCINFO has type {btype:#x} and {count} columns")
    columns = tuple(
        Column(*ltp_fmt.TCOLDESC.unpack_from(raw, ltp_fmt.TCINFO_HEADER.size + i * ltp_fmt.TCOLDESC.size))
        for i in range(count)
    )
    return TableInfo(tuple(ends), row_index, rows_hnid, columns)


class TableContext:
    """A TC: its columns and rows; cells decoded on request."""

    def __init__(self, node: Node, layout: Layout, codepage: str = "cp1252") -> None:
        self.node = node
        self.layout = layout
        self.codepage = codepage
        self.heap = Heap(node.blocks())
        if self.heap.header.client_signature != ltp_fmt.HN_CLIENT_TC:
            raise PstFormatError(f"node {node.nid:#x} is not a table context")
        self.info = parse_table_info(self.heap.get(self.heap.header.user_root))
        self.columns = {column.tag: column for column in self.info.columns}
        self.tags_by_id = {pt.tag_id(column.tag): column.tag for column in self.info.columns}

    def row_index(self) -> dict[int, int]:
        """Return the RowIndex: row id -> row number."""
        header = bth_header(self.heap, self.info.row_index) if self.info.row_index else None
        if header is None:
            return {}
        return {
            int.from_bytes(key, "little"): int.from_bytes(data[: self.layout.row_index_size], "little")
            for key, data in bth_records(self.heap, header)
        }

    def row_blocks(self) -> list[bytes]:
        """Return the row matrix as its blocks (rows never span blocks)."""
        hnid = self.info.rows_hnid
        if hnid == 0:
            return []
        if ltp_fmt.is_hid(hnid):
            return [self.heap.get(hnid)]
        return self.node.subnode(hnid).blocks()

    def rows(self) -> list[bytes]:
        """Return every row's bytes in matrix order."""
        size = self.info.row_size
        if size == 0:
            return []
        return [block[i:i + size] for block in self.row_blocks() for i in range(0, len(block) - size + 1, size)]

    def row_count(self) -> int:
        """Return how many rows ``rows`` returns, from the sizes of the row matrix's blocks (none is read)."""
        size, hnid = self.info.row_size, self.info.rows_hnid
        if size == 0 or hnid == 0:
            return 0
        if ltp_fmt.is_hid(hnid):
            return len(self.heap.get(hnid)) // size
        subnode = self.node.subnode(hnid)
        return sum(block_size // size for block_size in self.node.ndb.block_sizes(subnode.bid_data))

    def cell(self, row: bytes, tag: int, default: object = None) -> object:
        """Return the decoded value of column ``tag`` in ``row``, or ``default`` when the cell is empty."""
        raw = self.cell_raw(row, tag)
        return default if raw is None else decode_value(pt.tag_type(tag), raw, self.codepage)

    def value(self, row: bytes, prop_id: int, default: object = None) -> object:
        """Return the decoded cell of property ``prop_id`` whatever its column's type, or ``default``."""
        tag = self.tags_by_id.get(prop_id)
        return default if tag is None else self.cell(row, tag, default)

    def cell_raw(self, row: bytes, tag: int) -> bytes | None:
        """Return the stored bytes of column ``tag`` in ``row``, or None when the column or cell is absent."""
        column = self.columns.get(tag)
        if column is None or not self.cell_exists(row, column):
            return None
        data = row[column.offset:column.offset + column.size]
        size = fixed_size(pt.tag_type(tag))
        if size is not None and size <= 8:
            return data[:size]
        return hnid_bytes(self.heap, self.node, int.from_bytes(data, "little"))

    def cell_exists(self, row: bytes, column: Column) -> bool:
        """Return True when the row's cell-existence bitmap marks ``column`` present."""
        position = self.info.ends[ltp_fmt.TCI_1B] + column.bit // 8
        return position < len(row) and bool(row[position] & (0x80 >> (column.bit % 8)))

    def row_id(self, row: bytes) -> int:
        """Return the row id (PidTagLtpRowId, the first 4 bytes)."""
        return int.from_bytes(row[:4], "little")
