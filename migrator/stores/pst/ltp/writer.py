"""Property contexts and table contexts (§2.3.3, §2.3.4) built on a heap, with big values in subnodes."""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from migrator.stores.pst.ltp import format as ltp_fmt
from migrator.stores.pst.ltp import props as pt
from migrator.stores.pst.ltp.heap_writer import Heap, build_bth
from migrator.stores.pst.ltp.values_writer import PropValue, StreamedBinary, encode_value, inline_slot, is_fixed_inline
from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb.writer import NdbWriter, SubnodeEntry

Properties = Mapping[int, PropValue]
"""Property values keyed by full tag (id << 16 | type)."""


@dataclass
class Subnodes:
    """The subnode tree of one node being written, and the external data bytes it holds."""

    ndb: NdbWriter
    entries: list[SubnodeEntry] = field(default_factory=list)
    data_bytes: int = 0
    _next_value_index: int = 1

    def add_value(self, data: bytes | StreamedBinary) -> int:
        """Store a value too big for the heap in its own subnode and return that subnode's NID."""
        nid = self.new_nid()
        pieces = data.pieces() if isinstance(data, StreamedBinary) else (data,)
        self.add(nid, self.ndb.write_data(pieces), 0, len(data))
        return nid

    def new_nid(self) -> int:
        """Return a fresh local NID for a subnode holding a big value or a row matrix."""
        nid = fmt.make_nid(fmt.NID_TYPE_LTP, self._next_value_index)
        self._next_value_index += 1
        return nid

    def add(self, nid: int, bid_data: int, bid_sub: int, data_bytes: int) -> None:
        """Record a subnode already written, holding ``data_bytes`` of external data in all."""
        self.entries.append(SubnodeEntry(nid, bid_data, bid_sub))
        self.data_bytes += data_bytes

    def write(self) -> int:
        """Write the subnode tree and return its BID (0 when there are no subnodes)."""
        return self.ndb.write_subnodes(self.entries)


def store_variable(heap: Heap, subnodes: Subnodes, data: bytes | StreamedBinary) -> int:
    """Return the HNID of a variable-size value: a heap allocation when small, else a subnode."""
    if not data:
        return 0
    if len(data) <= ltp_fmt.MAX_HEAP_ALLOC:
        return heap.allocate(bytes(data))
    return subnodes.add_value(data)


def build_pc(values: Mapping[int, PropValue | StoredSlot], subnodes: Subnodes, size_tag: int | None = None
             ) -> list[bytes]:
    """Return the heap blocks of a property context holding ``values``.

    With ``size_tag`` (a PT_LONG tag present in ``values``), that property is set to the node's size: the
    bytes of its own blocks plus every external data byte in its subnodes (PidTagMessageSize, AttachSize).
    """
    heap = Heap(ltp_fmt.HN_CLIENT_PC)
    records = [(pt.tag_id(t), _pc_record(t, values[t], heap, subnodes)) for t in sorted(values, key=pt.tag_id)]
    bth = build_bth(heap, 2, 6, records)
    blocks = heap.block_payloads(bth.header)
    if size_tag is None:
        return blocks
    size = sum(len(block) for block in blocks) + subnodes.data_bytes
    position = [key for key, _ in records].index(pt.tag_id(size_tag))
    leaf = bth.leaves[position // bth.per_leaf]
    heap.patch(leaf, (position % bth.per_leaf) * 8 + 4, struct.pack("<I", size))
    return heap.block_payloads(bth.header)


class StoredSlot(NamedTuple):
    """A property kept as another property context stores it: its 4-byte slot (an inline value, or the NID of a
    subnode the new context keeps), or, for a value that context kept in its heap, the bytes to store again."""

    slot: int = 0
    heap_bytes: bytes | None = None


def _pc_record(prop_tag: int, value: PropValue | StoredSlot, heap: Heap, subnodes: Subnodes) -> bytes:
    prop_type = pt.tag_type(prop_tag)
    if isinstance(value, StoredSlot):
        slot = value.slot if value.heap_bytes is None else store_variable(heap, subnodes, value.heap_bytes)
        return struct.pack("<HI", prop_type, slot)
    if is_fixed_inline(prop_type):
        slot = inline_slot(prop_type, value)
    elif isinstance(value, StreamedBinary):
        slot = store_variable(heap, subnodes, value)
    else:
        slot = store_variable(heap, subnodes, encode_value(prop_type, value))
    return struct.pack("<HI", prop_type, slot)


class CopiedRow(NamedTuple):
    """A row taken from a table with the same columns: its bytes, and the value of each variable cell by offset.

    The fixed cells are kept as they are; the variable ones are stored again in the new table's heap.
    """

    row: bytes
    cells: tuple[tuple[int, bytes], ...]


def _copy_row(copied: CopiedRow, heap: Heap, subnodes: Subnodes) -> bytes:
    if not copied.cells:
        return copied.row
    row = bytearray(copied.row)
    for offset, value in copied.cells:
        hnid = heap.allocate(value) if len(value) <= ltp_fmt.MAX_HEAP_ALLOC else store_variable(heap, subnodes, value)
        row[offset:offset + 4] = hnid.to_bytes(4, "little")
    return bytes(row)


class CopiedTable(NamedTuple):
    """The rows of a table with the same columns, taken whole to start a new table: the heap that held their
    variable cells, cut back to those cells (so the HIDs in the rows stay valid), the rows' bytes and their ids.

    Only for rows whose variable cells are all in the heap, stored row by row as build_tc stores them.
    """

    heap: Heap
    rows: list[bytes]
    row_ids: list[int]


class Column(NamedTuple):
    """Where one column's cell sits in a row: byte offset, width and cell-existence bit."""

    tag: int
    offset: int
    width: int
    bit: int


class RowLayout(NamedTuple):
    """The columns of a table and the section ends (TCI_4b, TCI_2b, TCI_1b, TCI_bm = row size)."""

    columns: tuple[Column, ...]
    ends: tuple[int, int, int, int]

    @property
    def row_size(self) -> int:
        """Return the size of one row in bytes, cell-existence bitmap included."""
        return self.ends[ltp_fmt.TCI_BM]


def cell_width(prop_type: int) -> int:
    """Return the width of a cell of ``prop_type`` in a row: 8-byte values inline, variable ones as HNIDs."""
    size = pt.FIXED_TYPE_SIZES.get(prop_type)
    return size if size in (1, 2, 4, 8) else 4


@functools.lru_cache(maxsize=64)
def row_layout(tags: tuple[int, ...]) -> RowLayout:
    """Return the row layout of a table with ``tags`` (row id and row version columns are added)."""
    fixed = [pt.tag(pt.PID_LTP_ROW_ID, pt.PT_LONG), pt.tag(pt.PID_LTP_ROW_VER, pt.PT_LONG)]
    others = sorted({t for t in tags if t not in fixed}, key=lambda t: (-cell_width(pt.tag_type(t)), t))
    ordered = fixed + others
    columns = []
    offset = 0
    ends = {}
    for bit, column_tag in enumerate(ordered):
        width = cell_width(pt.tag_type(column_tag))
        columns.append(Column(column_tag, offset, width, bit))
        offset += width
        ends[width] = offset
    end_4 = max(ends.get(8, 0), ends.get(4, 0))
    end_2 = max(end_4, ends.get(2, 0))
    end_1 = max(end_2, ends.get(1, 0))
    bitmap_size = (len(columns) + 7) // 8
    return RowLayout(tuple(columns), (end_4, end_2, end_1, end_1 + bitmap_size))


def _encode_row(layout: RowLayout, row_id: int, values: Properties, heap: Heap, subnodes: Subnodes) -> bytes:
    row = bytearray(layout.row_size)
    present = {**values, pt.tag(pt.PID_LTP_ROW_ID, pt.PT_LONG): row_id, pt.tag(pt.PID_LTP_ROW_VER, pt.PT_LONG): 0}
    for column in layout.columns:
        if column.tag not in present:
            continue
        prop_type = pt.tag_type(column.tag)
        encoded = encode_value(prop_type, present[column.tag])
        if pt.FIXED_TYPE_SIZES.get(prop_type) != column.width:
            encoded = struct.pack("<I", store_variable(heap, subnodes, encoded))
        row[column.offset:column.offset + column.width] = encoded
        row[layout.ends[ltp_fmt.TCI_1B] + column.bit // 8] |= 0x80 >> (column.bit % 8)
    return bytes(row)


def build_tc(
    tags: Sequence[int], rows: Iterable[tuple[int, Properties | CopiedRow]], subnodes: Subnodes,
    copied: CopiedTable | None = None,
) -> list[bytes]:
    """Return the heap blocks of a table context with columns ``tags``, the ``copied`` rows, then ``rows``.

    ``rows`` (row id, values) is read once, each row encoded as it comes: a big folder's rows are never all in
    memory as values. A CopiedRow or CopiedTable must come from a table with the same ``tags``.
    """
    layout = row_layout(tuple(tags))
    heap = Heap(ltp_fmt.HN_CLIENT_TC) if copied is None else copied.heap
    encoded: list[bytes] = [] if copied is None else list(copied.rows)
    row_ids: list[int] = [] if copied is None else list(copied.row_ids)
    for row_id, values in rows:
        if isinstance(values, CopiedRow):
            encoded.append(_copy_row(values, heap, subnodes))
        else:
            encoded.append(_encode_row(layout, row_id, values, heap, subnodes))
        row_ids.append(row_id)
    index = sorted((row_id, struct.pack("<I", number)) for number, row_id in enumerate(row_ids))
    hid_index = build_bth(heap, 4, 4, index).header
    hnid_rows = _store_rows(encoded, layout.row_size, heap, subnodes)
    descriptors = b"".join(
        ltp_fmt.TCOLDESC.pack(c.tag, c.offset, c.width, c.bit) for c in sorted(layout.columns, key=lambda c: c.tag)
    )
    info = ltp_fmt.TCINFO_HEADER.pack(ltp_fmt.HN_CLIENT_TC, len(layout.columns), *layout.ends, hid_index, hnid_rows)
    return heap.block_payloads(heap.allocate(info + descriptors))


def _store_rows(encoded: list[bytes], row_size: int, heap: Heap, subnodes: Subnodes) -> int:
    total = row_size * len(encoded)
    if total == 0:
        return 0
    if total <= ltp_fmt.MAX_HEAP_ALLOC:
        return heap.allocate(b"".join(encoded))
    # Rows never span blocks, and every block but the last is full: readers locate row n by arithmetic.
    per_block = fmt.MAX_BLOCK_PAYLOAD // row_size
    blocks = [b"".join(encoded[i:i + per_block]) for i in range(0, len(encoded), per_block)]
    payloads = [block.ljust(fmt.MAX_BLOCK_PAYLOAD, b"\0") for block in blocks[:-1]] + blocks[-1:]
    nid = subnodes.new_nid()
    subnodes.add(nid, subnodes.ndb.write_block_list(payloads), 0, sum(len(b) for b in payloads))
    return nid
