"""Strict checks of a PST's messaging structures: the nodes that hold heaps, the mandatory nodes, folders and tables."""

from __future__ import annotations

from collections import defaultdict

from migrator.stores.pst.ltp import props as pt
from migrator.stores.pst.ltp.reader import Node, PropertyContext, TableContext
from migrator.stores.pst.ltp.validate import check_heap_structure
from migrator.stores.pst.messaging import format as msg_fmt
from migrator.stores.pst.messaging import props as p
from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb.reader import NbtEntry, Ndb, PstFormatError, is_internal
from migrator.stores.pst.ndb.validate import Findings, NdbFacts

_HEAP_NODE_TYPES = {
    fmt.NID_TYPE_NORMAL_FOLDER, fmt.NID_TYPE_SEARCH_FOLDER, fmt.NID_TYPE_NORMAL_MESSAGE,
    fmt.NID_TYPE_ASSOC_MESSAGE, fmt.NID_TYPE_HIERARCHY_TABLE, fmt.NID_TYPE_CONTENTS_TABLE,
    fmt.NID_TYPE_ASSOC_CONTENTS_TABLE, fmt.NID_TYPE_SEARCH_CONTENTS_TABLE, fmt.NID_TYPE_ATTACHMENT_TABLE,
    fmt.NID_TYPE_RECIPIENT_TABLE, fmt.NID_TYPE_ATTACHMENT,
}
_HEAP_NODES = {msg_fmt.NID_MESSAGE_STORE, msg_fmt.NID_NAME_TO_ID_MAP}


def check_heaps(ndb: Ndb, problems: list[str]) -> None:
    """Check the heap, BTH and PC/TC of every node (and message subnode) that holds one."""
    for entry in ndb.nodes():
        if entry.bid_data and (fmt.nid_type(entry.nid) in _HEAP_NODE_TYPES or entry.nid in _HEAP_NODES):
            _check_structure(Node(ndb, entry.nid, entry.bid_data, entry.bid_sub), ndb, f"node {entry.nid:#x}",
                             problems, depth=0)


def _check_structure(node: Node, ndb: Ndb, where: str, problems: list[str], depth: int) -> None:
    try:
        check_heap_structure(node, ndb, where, problems)
        if depth < 4 and fmt.nid_type(node.nid) in (fmt.NID_TYPE_NORMAL_MESSAGE, fmt.NID_TYPE_ATTACHMENT):
            _check_message_subnodes(node, ndb, where, problems, depth)
    except PstFormatError as error:
        problems.append(f"{where}: {error}")


def _check_message_subnodes(node: Node, ndb: Ndb, where: str, problems: list[str], depth: int) -> None:
    for nid in node.subnode_ids():
        if fmt.nid_type(nid) in _HEAP_NODE_TYPES:
            _check_structure(node.subnode(nid), ndb, f"{where} subnode {nid:#x}", problems, depth + 1)


# --- the mandatory nodes ([MS-PST] §2.7.1) -----------------------------------------------------------------

_MANDATORY = (
    msg_fmt.NID_MESSAGE_STORE, msg_fmt.NID_NAME_TO_ID_MAP, msg_fmt.NID_ROOT_FOLDER, 0x12D, 0x12E, 0x12F,
    msg_fmt.NID_SEARCH_MANAGEMENT_QUEUE, msg_fmt.NID_SEARCH_ACTIVITY_LIST,
)
_TEMPLATES = (
    msg_fmt.NID_HIERARCHY_TABLE_TEMPLATE, msg_fmt.NID_CONTENTS_TABLE_TEMPLATE,
    msg_fmt.NID_ASSOC_CONTENTS_TABLE_TEMPLATE, msg_fmt.NID_SEARCH_CONTENTS_TABLE_TEMPLATE,
    msg_fmt.NID_RECIPIENT_TABLE, msg_fmt.NID_ATTACHMENT_TABLE,
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
    if ndb.node(msg_fmt.NID_MESSAGE_STORE) is None:
        return
    store = PropertyContext(Node.top(ndb, msg_fmt.NID_MESSAGE_STORE))
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


_ROW_BOOKKEEPING = {pt.PID_LTP_ROW_ID, pt.PID_LTP_ROW_VER}


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
            prop_id = pt.tag_id(tag)
            if cell is None or prop_id in _ROW_BOOKKEEPING or props.prop_type(prop_id) != pt.tag_type(tag):
                continue  # columns the object does not carry are computed by the table (change keys, status)
            if cell != props.raw(prop_id):
                ours, theirs = table.cell(row, tag), props.get(prop_id)
                text = f"{where} row of {child:#x} has {tag:#010x} = {ours!r}, the object has {theirs!r}"
                # Outlook updates the row's copy of the message size lazily; nothing else may differ.
                problems.leftover(text) if prop_id == p.PID_MESSAGE_SIZE else problems.append(text)


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
