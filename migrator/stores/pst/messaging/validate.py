"""Strict checks of a PST's LTP and messaging structures: heaps, BTHs, PCs, TCs, and folder/table coherence."""

from __future__ import annotations

from collections import defaultdict

from migrator.stores.pst import format as fmt
from migrator.stores.pst import props as p
from migrator.stores.pst.heap_writer import page_header_size
from migrator.stores.pst.ltp_reader import (
    BthHeader,
    Heap,
    Node,
    PropertyContext,
    TableContext,
    bth_header,
    hnid_size,
)
from migrator.stores.pst.ndb_reader import NbtEntry, Ndb, PstFormatError, is_internal
from migrator.stores.pst.validate_ndb import Findings, NdbFacts
from migrator.stores.pst.values_reader import fixed_size

_HEAP_NODE_TYPES = {
    fmt.NID_TYPE_NORMAL_FOLDER, fmt.NID_TYPE_SEARCH_FOLDER, fmt.NID_TYPE_NORMAL_MESSAGE,
    fmt.NID_TYPE_ASSOC_MESSAGE, fmt.NID_TYPE_HIERARCHY_TABLE, fmt.NID_TYPE_CONTENTS_TABLE,
    fmt.NID_TYPE_ASSOC_CONTENTS_TABLE, fmt.NID_TYPE_SEARCH_CONTENTS_TABLE, fmt.NID_TYPE_ATTACHMENT_TABLE,
    fmt.NID_TYPE_RECIPIENT_TABLE, fmt.NID_TYPE_ATTACHMENT,
}
_HEAP_NODES = {fmt.NID_MESSAGE_STORE, fmt.NID_NAME_TO_ID_MAP}
_CLIENTS = {fmt.HN_CLIENT_PC, fmt.HN_CLIENT_TC, fmt.HN_CLIENT_BTH, 0x6C, 0x8C, 0x9C, 0xA5, 0xAC}
"""Heap clients: PC, TC, BTH, and the table kinds libpff documents in Outlook's search and OST nodes."""


def check_heaps(ndb: Ndb, problems: list[str]) -> None:
    """Check the heap, BTH and PC/TC of every node (and message subnode) that holds one."""
    for entry in ndb.nodes():
        if entry.bid_data and (fmt.nid_type(entry.nid) in _HEAP_NODE_TYPES or entry.nid in _HEAP_NODES):
            _check_structure(Node(ndb, entry.nid, entry.bid_data, entry.bid_sub), ndb, f"node {entry.nid:#x}",
                             problems, depth=0)


def _check_structure(node: Node, ndb: Ndb, where: str, problems: list[str], depth: int) -> None:
    try:
        heap = Heap(node.blocks())
        _check_heap_pages(heap, where, problems)
        client = heap.header.client_signature
        if client not in _CLIENTS:
            problems.append(f"{where} has heap client signature {client:#x}")
        elif client == fmt.HN_CLIENT_PC:
            _check_pc(node, where, problems)
        elif client == fmt.HN_CLIENT_TC:
            _check_tc(node, ndb, where, problems)
        if depth < 4 and fmt.nid_type(node.nid) in (fmt.NID_TYPE_NORMAL_MESSAGE, fmt.NID_TYPE_ATTACHMENT):
            _check_message_subnodes(node, ndb, where, problems, depth)
    except PstFormatError as error:
        problems.append(f"{where}: {error}")


def _check_message_subnodes(node: Node, ndb: Ndb, where: str, problems: list[str], depth: int) -> None:
    for nid in node.subnode_ids():
        if fmt.nid_type(nid) in _HEAP_NODE_TYPES:
            _check_structure(node.subnode(nid), ndb, f"{where} subnode {nid:#x}", problems, depth + 1)


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
    if list(info.ends) != sorted(info.ends) or info.ends[fmt.TCI_BM] - info.ends[fmt.TCI_1B] != (len(tags) + 7) // 8:
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
        return 0, ends[fmt.TCI_4B]
    if size == 2:
        return ends[fmt.TCI_4B], ends[fmt.TCI_2B]
    return ends[fmt.TCI_2B], ends[fmt.TCI_1B]


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


# --- the mandatory nodes ([MS-PST] §2.7.1) -----------------------------------------------------------------

_MANDATORY = (
    fmt.NID_MESSAGE_STORE, fmt.NID_NAME_TO_ID_MAP, fmt.NID_ROOT_FOLDER, 0x12D, 0x12E, 0x12F,
    fmt.NID_SEARCH_MANAGEMENT_QUEUE, fmt.NID_SEARCH_ACTIVITY_LIST,
)
_TEMPLATES = (
    fmt.NID_HIERARCHY_TABLE_TEMPLATE, fmt.NID_CONTENTS_TABLE_TEMPLATE, fmt.NID_ASSOC_CONTENTS_TABLE_TEMPLATE,
    fmt.NID_SEARCH_CONTENTS_TABLE_TEMPLATE, fmt.NID_RECIPIENT_TABLE, fmt.NID_ATTACHMENT_TABLE,
)
_STORE_FOLDERS = {
    p.PID_IPM_SUBTREE_ENTRY_ID: "IPM subtree",
    p.PID_IPM_WASTEBASKET_ENTRY_ID: "Deleted Items",
    p.PID_FINDER_ENTRY_ID: "Search Root",
}


def check_required(ndb: Ndb, problems: list[str]) -> None:
    """Check the nodes every PST must have, the empty templates, and the store's special folders."""
    for nid in _MANDATORY + _TEMPLATES:
        if ndb.node(nid) is None:
            problems.append(f"mandatory node {nid:#x} is missing")
    for nid in _TEMPLATES:
        if ndb.node(nid) is not None and TableContext(Node.top(ndb, nid), ndb.layout).rows():
            problems.append(f"template table {nid:#x} has rows; templates hold columns only")
    if ndb.node(fmt.NID_MESSAGE_STORE) is None:
        return
    store = PropertyContext(Node.top(ndb, fmt.NID_MESSAGE_STORE))
    for prop_id in (p.PID_RECORD_KEY, p.PID_DISPLAY_NAME):
        if prop_id not in store:
            problems.append(f"the message store lacks property {prop_id:#06x}")
    for prop_id, name in _STORE_FOLDERS.items():
        entry_id = store.raw(prop_id)
        folder_nid = int.from_bytes(entry_id[20:24], "little") if entry_id and len(entry_id) == 24 else None
        if folder_nid is None or fmt.nid_type(folder_nid) != fmt.NID_TYPE_NORMAL_FOLDER or ndb.node(folder_nid) is None:
            problems.append(f"the message store's {name} EntryID ({prop_id:#06x}) names no folder")


# --- folders against the node tree --------------------------------------------------------------------------


def check_folders(ndb: Ndb, problems: Findings) -> None:
    """Check each folder's tables and counts against the nodes whose parent it is."""
    children: dict[int, list[NbtEntry]] = defaultdict(list)
    nodes = list(ndb.nodes())
    for entry in nodes:
        children[entry.nid_parent].append(entry)
    for entry in nodes:
        if fmt.nid_type(entry.nid) == fmt.NID_TYPE_NORMAL_FOLDER:
            try:
                _check_folder(ndb, entry.nid, children[entry.nid], problems)
            except PstFormatError as error:
                problems.append(f"folder {entry.nid:#x}: {error}")


def _check_folder(ndb: Ndb, nid: int, children: list[NbtEntry], problems: Findings) -> None:
    where = f"folder {nid:#x}"
    props = PropertyContext(Node.top(ndb, nid))
    messages = sorted(c.nid for c in children if fmt.nid_type(c.nid) == fmt.NID_TYPE_NORMAL_MESSAGE)
    folders = sorted(c.nid for c in children if fmt.nid_type(c.nid) == fmt.NID_TYPE_NORMAL_FOLDER and c.nid != nid)
    contents = _table_rows(ndb, nid, fmt.NID_TYPE_CONTENTS_TABLE, where, problems)
    hierarchy = _table_rows(ndb, nid, fmt.NID_TYPE_HIERARCHY_TABLE, where, problems)
    if contents is not None and sorted(contents) != messages:
        problems.append(f"{where} contents table lists {len(contents)} messages, {len(messages)} nodes name it parent")
    if hierarchy is not None:
        listed = sorted(n for n in hierarchy if fmt.nid_type(n) == fmt.NID_TYPE_NORMAL_FOLDER)
        if listed != folders:
            problems.append(f"{where} hierarchy table lists {len(listed)} folders, {len(folders)} nodes name it parent")
    count = props.get(p.PID_CONTENT_COUNT)
    if count is not None and count != len(messages):
        problems.append(f"{where} PidTagContentCount is {count}, the folder has {len(messages)} messages")
    subfolders = props.get(p.PID_SUBFOLDERS)
    if subfolders is not None and hierarchy is not None and bool(subfolders) != bool(hierarchy):
        problems.append(f"{where} PidTagSubfolders is {subfolders}, its hierarchy table has {len(hierarchy)} rows")
    for table_type, rows in ((fmt.NID_TYPE_CONTENTS_TABLE, contents), (fmt.NID_TYPE_HIERARCHY_TABLE, hierarchy)):
        if rows:
            _check_row_copies(ndb, (nid & ~0x1F) | table_type, where, problems)


def _table_rows(ndb: Ndb, nid: int, table_type: int, where: str, problems: list[str]) -> list[int] | None:
    table_id = (nid & ~0x1F) | table_type
    if ndb.node(table_id) is None:
        problems.append(f"{where} has no table node {table_id:#x}")
        return None
    table = TableContext(Node.top(ndb, table_id), ndb.layout)
    return [table.row_id(row) for row in table.rows()]


_ROW_BOOKKEEPING = {p.PID_LTP_ROW_ID, p.PID_LTP_ROW_VER}


def _check_row_copies(ndb: Ndb, table_nid: int, where: str, problems: Findings) -> None:
    """Check each table row's cells equal the properties of the object the row stands for."""
    table = TableContext(Node.top(ndb, table_nid), ndb.layout)
    for row in table.rows():
        child = table.row_id(row)
        if ndb.node(child) is None:
            continue  # reported as a count mismatch
        props = PropertyContext(Node.top(ndb, child))
        for tag in table.columns:
            cell = table.cell_raw(row, tag)
            if cell is None or p.tag_id(tag) in _ROW_BOOKKEEPING or props.prop_type(p.tag_id(tag)) != p.tag_type(tag):
                continue  # columns the object does not carry are computed by the table (change keys, status)
            if cell != props.raw(p.tag_id(tag)):
                ours, theirs = table.cell(row, tag), props.get(p.tag_id(tag))
                text = f"{where} row of {child:#x} has {tag:#010x} = {ours!r}, the object has {theirs!r}"
                # Outlook updates the row's copy of the message size lazily; nothing else may differ.
                problems.leftover(text) if p.tag_id(tag) == p.PID_MESSAGE_SIZE else problems.append(text)


def check_message_sizes(ndb: Ndb, facts: NdbFacts, problems: list[str]) -> None:
    """Check PidTagMessageSize of e-mail messages = the payload bytes of all their external blocks."""
    for entry in ndb.nodes():
        if fmt.nid_type(entry.nid) != fmt.NID_TYPE_NORMAL_MESSAGE or not entry.bid_data:
            continue
        try:
            props = PropertyContext(Node.top(ndb, entry.nid))
            message_class = props.get(p.PID_MESSAGE_CLASS, "")
            stated = props.get(p.PID_MESSAGE_SIZE)
            if stated is None or not str(message_class).startswith("IPM.Note"):
                continue  # Outlook's older contact and list items use a different, smaller figure
            actual = _external_bytes(ndb, entry.bid_data, entry.bid_sub, facts)
        except PstFormatError:
            continue  # the structure checks report why
        if stated != actual:
            problems.append(f"message {entry.nid:#x} PidTagMessageSize is {stated}, its blocks hold {actual} bytes")


def _external_bytes(ndb: Ndb, bid_data: int, bid_sub: int, facts: NdbFacts) -> int:
    total = _data_bytes(ndb, bid_data, facts)
    for entry in ndb.subnodes(bid_sub).values():
        total += _external_bytes(ndb, entry.bid_data, entry.bid_sub, facts)
    return total


def _data_bytes(ndb: Ndb, bid: int, facts: NdbFacts) -> int:
    if bid == 0:
        return 0
    if not is_internal(bid):
        return facts.blocks[bid & ~1].cb if bid & ~1 in facts.blocks else 0
    return sum(_data_bytes(ndb, child, facts) for child in ndb.xblock_children(bid))
