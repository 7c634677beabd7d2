"""Strict checks of a PST's LTP structures: heaps, BTHs, and the property and table contexts on them."""

from __future__ import annotations

from migrator.stores.pst.ltp import format as ltp_fmt
from migrator.stores.pst.ltp.heap_writer import page_header_size
from migrator.stores.pst.ltp.reader import (
    BthHeader,
    Heap,
    Node,
    PropertyContext,
    TableContext,
    bth_header,
    hnid_size,
)
from migrator.stores.pst.ltp.values_reader import fixed_size
from migrator.stores.pst.ndb.reader import Ndb

_CLIENTS = {ltp_fmt.HN_CLIENT_PC, ltp_fmt.HN_CLIENT_TC, ltp_fmt.HN_CLIENT_BTH, 0x6C, 0x8C, 0x9C, 0xA5, 0xAC}
"""Heap clients: PC, TC, BTH, and the table kinds libpff documents in Outlook's search and OST nodes."""


def check_heap_structure(node: Node, ndb: Ndb, where: str, problems: list[str]) -> None:
    """Check the heap of ``node`` and the PC or TC on it; raise PstFormatError where it is too damaged to walk."""
    heap = Heap(node.blocks())
    _check_heap_pages(heap, where, problems)
    client = heap.header.client_signature
    if client not in _CLIENTS:
        problems.append(f"{where} has heap client signature {client:#x}")
    elif client == ltp_fmt.HN_CLIENT_PC:
        _check_pc(node, where, problems)
    elif client == ltp_fmt.HN_CLIENT_TC:
        _check_tc(node, ndb, where, problems)


def _check_heap_pages(heap: Heap, where: str, problems: list[str]) -> None:
    for index, block in enumerate(heap.blocks):
        offsets = heap.page_map(index)
        map_offset = int.from_bytes(block[:2], "little")
        if offsets != sorted(offsets) or offsets[-1] > map_offset:
            problems.append(f"{where} heap block {index} has allocations out of order or over its page map")
        if offsets[0] != page_header_size(index):
            problems.append(f"{where} heap block {index} starts its allocations at {offsets[0]}")
        if map_offset % 2:
            problems.append(f"{where} heap block {index} has an odd page-map offset {map_offset}")


def _check_bth(heap: Heap, header: BthHeader, where: str, problems: list[str]) -> None:
    """Check a BTH's leaf keys ascend and each index record's key is its child's first key."""
    keys = _bth_keys(heap, header, header.root, header.index_levels, where, problems) if header.root else []
    if any(after <= before for before, after in zip(keys, keys[1:])):
        problems.append(f"{where} has BTH keys out of order")


def _bth_keys(heap: Heap, header: BthHeader, hid: int, level: int, where: str, problems: list[str]) -> list[int]:
    raw = heap.get(hid)
    size = header.key_size + (4 if level else header.entry_size)
    records = [raw[i:i + size] for i in range(0, len(raw) - size + 1, size)]
    keys = [int.from_bytes(record[:header.key_size], "little") for record in records]
    if not level:
        return keys
    found: list[int] = []
    for key, record in zip(keys, records):
        child = _bth_keys(heap, header, int.from_bytes(record[header.key_size:], "little"), level - 1, where, problems)
        if not child or child[0] != key:
            problems.append(f"{where} BTH index record {key:#x} does not match its child's first key")
        found += child
    return found


def _check_pc(node: Node, where: str, problems: list[str]) -> None:
    pc = PropertyContext(node)
    _check_bth(pc.heap, bth_header(pc.heap, pc.heap.header.user_root), f"{where} PC", problems)
    for prop_id, (prop_type, slot) in pc.records.items():
        size = fixed_size(prop_type)
        if size is not None and size <= 4:
            continue
        stored = hnid_size(pc.heap, node, slot)
        if size is not None and stored != size:
            problems.append(f"{where} property {prop_id:#06x} is {stored} bytes, its type needs {size}")


def _check_tc(node: Node, ndb: Ndb, where: str, problems: list[str]) -> None:
    table = TableContext(node, ndb.layout)
    info = table.info
    tags = [column.tag for column in info.columns]
    if tags != sorted(tags):
        problems.append(f"{where} table columns are not sorted by tag")
    bitmap_size = info.ends[ltp_fmt.TCI_BM] - info.ends[ltp_fmt.TCI_1B]
    if list(info.ends) != sorted(info.ends) or bitmap_size != (len(tags) + 7) // 8:
        problems.append(f"{where} table has impossible row offsets {info.ends}")
    for column in info.columns:
        start, end = _column_region(info.ends, column.size)
        if not start <= column.offset <= column.offset + column.size <= end or column.bit >= len(tags):
            problems.append(f"{where} table column {column.tag:#010x} lies outside its part of the row")
    cells = sorted((column.offset, column.offset + column.size) for column in info.columns)
    if any(next_start < end for (_, end), (next_start, _) in zip(cells, cells[1:])):
        problems.append(f"{where} table columns overlap")
    if len({column.bit for column in info.columns}) != len(tags):
        problems.append(f"{where} table columns share a cell-existence bit")
    _check_rows(table, where, problems)


def _column_region(ends: tuple[int, int, int, int], size: int) -> tuple[int, int]:
    """Return the part of a row that holds cells of ``size`` bytes (8 and 4 first, then 2, then 1)."""
    if size >= 4:
        return 0, ends[ltp_fmt.TCI_4B]
    if size == 2:
        return ends[ltp_fmt.TCI_4B], ends[ltp_fmt.TCI_2B]
    return ends[ltp_fmt.TCI_2B], ends[ltp_fmt.TCI_1B]


def _check_rows(table: TableContext, where: str, problems: list[str]) -> None:
    size = table.info.row_size
    blocks = table.row_blocks()
    if size and blocks and len(blocks[-1]) % size:
        problems.append(f"{where} row matrix ends with a partial row of {size} bytes")
    if any(len(block) != table.layout.max_block_payload for block in blocks[:-1]):
        problems.append(f"{where} row matrix has a block that is not full before the last")
    rows = table.rows()
    index = table.row_index()
    if table.info.row_index:
        _check_bth(table.heap, bth_header(table.heap, table.info.row_index), f"{where} RowIndex", problems)
    if len(index) != len(rows):
        problems.append(f"{where} RowIndex lists {len(index)} rows, the row matrix holds {len(rows)}")
    for row_id, number in index.items():
        if number >= len(rows) or table.row_id(rows[number]) != row_id:
            problems.append(f"{where} RowIndex maps row id {row_id:#x} to row {number}, which holds another row")
            return
