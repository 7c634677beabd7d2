"""Adding messages to a PST migrator wrote, in place: the file's folders are read, new messages go after its end.

What the additions change is written again beside the old (the nodes and tables of the folders that gained
messages or subfolders, their parents' hierarchy tables, and when folders are new the store's node and receive
folder table); ``NdbAppender.commit`` then changes the B-trees copy-on-write and writes the header last, so a
run killed at any moment leaves the previous file. A file this cannot add to (ANSI, written by another program
or by a migrator with other named properties than these) raises NotAppendable: it is rebuilt instead.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from typing import BinaryIO

from migrator.core.message import Flags
from migrator.stores.pst.ltp import format as ltp_fmt
from migrator.stores.pst.ltp import props as pt
from migrator.stores.pst.ltp.heap_writer import Heap
from migrator.stores.pst.ltp.node_writer import write_pc_node
from migrator.stores.pst.ltp.reader import Heap as StoredHeap
from migrator.stores.pst.ltp.reader import Node, PropertyContext, TableContext, hnid_bytes
from migrator.stores.pst.ltp.values_writer import PropValue, encode_value
from migrator.stores.pst.ltp.writer import CopiedRow, CopiedTable, Properties, RowLayout, row_layout
from migrator.stores.pst.message_update import MESSAGE_FLAGS, rewrite_message
from migrator.stores.pst.messaging import format as msg_fmt
from migrator.stores.pst.messaging import props as p
from migrator.stores.pst.messaging.namemap_writer import name_to_id_map
from migrator.stores.pst.messaging.reader import name_map_streams, store_props, subfolder_nids
from migrator.stores.pst.messaging.table_columns import CONTENTS_COLUMNS
from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb.append import NdbAppender, prepare
from migrator.stores.pst.ndb.reader import Ndb, PstFormatError
from migrator.stores.pst.writer import (
    FIRST_MESSAGE_INDEX,
    FIRST_USER_FOLDER_INDEX,
    IPM_SUBTREE,
    FolderNode,
    PstWriter,
    _table_nid,
)

_NAME_STREAMS = (p.PID_NAMEID_STREAM_GUID, p.PID_NAMEID_STREAM_ENTRY, p.PID_NAMEID_STREAM_STRING)


class NotAppendable(Exception):
    """The file cannot be added to in place; the message says why."""


class AppendingWriter(PstWriter):
    """A PstWriter adding to the existing file ``file``: its folders as they are, new messages after its end."""

    def __init__(self, file: BinaryIO, scratch: str | None = None) -> None:
        """Open ``file`` (read and write); raise NotAppendable when it must be rebuilt instead, OSError."""
        try:
            prepare(file)
        except PstFormatError as error:
            raise NotAppendable(str(error)) from None
        self._map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            self.base = Ndb(self._map)
            if not self.base.layout.unicode:
                raise NotAppendable("it is an ANSI file")
            store = store_props(self.base)
            record_key = store.get(p.PID_RECORD_KEY)
            name = store.get(p.PID_DISPLAY_NAME, "")
            if not isinstance(record_key, bytes) or len(record_key) != 16:
                raise NotAppendable("its store has no record key")
            super().__init__(file, name if isinstance(name, str) else "", scratch, record_key,
                             NdbAppender(file, self.base, scratch))
            self._name_map_grows = self._check_name_map()
            self._load_folders()
            self._new_flags: dict[int, Flags] = {}
            self._row_patches: dict[int, dict[int, PropValue]] = {}
        except PstFormatError as error:
            self._map.close()
            raise NotAppendable(str(error)) from None
        except BaseException:
            self._map.close()
            raise

    def _check_name_map(self) -> bool:
        """Return True when the file's name map lacks named properties this writer adds at its end."""
        have = name_map_streams(self.base)
        wanted = name_to_id_map(list(self.named.values()))
        want = tuple(wanted[pt.tag(pid, pt.PT_BINARY)] for pid in _NAME_STREAMS)
        if have == want:
            return False
        if all(isinstance(new, bytes) and new.startswith(old) for old, new in zip(have, want, strict=True)):
            return True
        raise NotAppendable("its named properties are not the ones this version of migrator writes")

    def _load_folders(self) -> None:
        """Replace the folders of a new file by those of the file, nothing marked for writing."""
        self.folders.clear()
        self._by_path.clear()
        self._load(msg_fmt.NID_ROOT_FOLDER, msg_fmt.NID_ROOT_FOLDER, None)
        rgnid = self.base.header.rgnid
        self._next_folder_index = max(FIRST_USER_FOLDER_INDEX, rgnid[fmt.NID_TYPE_NORMAL_FOLDER] + 1)
        self._next_message_index = max(FIRST_MESSAGE_INDEX, rgnid[fmt.NID_TYPE_NORMAL_MESSAGE] + 1)

    def _load(self, nid: int, parent: int, path: tuple[str, ...] | None) -> None:
        values = PropertyContext(Node.top(self.base, nid))
        name, container = values.get(p.PID_DISPLAY_NAME, ""), values.get(p.PID_CONTAINER_CLASS)
        count, unread = values.get(p.PID_CONTENT_COUNT, 0), values.get(p.PID_CONTENT_UNREAD_COUNT, 0)
        folder = FolderNode(nid, name if isinstance(name, str) else "", parent,
                            container if isinstance(container, str) else None,
                            old_count=count if isinstance(count, int) else 0,
                            old_unread=unread if isinstance(unread, int) else 0,
                            pc_changed=False, contents_changed=False, hierarchy_changed=False, is_new=False)
        self._add_folder(folder)
        if path:
            self._by_path[path] = nid
        for child in subfolder_nids(self.base, nid):
            below = () if child == IPM_SUBTREE else None
            self._load(child, nid, below if path is None else (*path, self._name_of(child)))

    def _name_of(self, nid: int) -> str:
        name = PropertyContext(Node.top(self.base, nid)).get(p.PID_DISPLAY_NAME, "")
        return name if isinstance(name, str) else ""

    def _old_contents(self, folder: FolderNode) -> TableContext | None:
        """Return the folder's contents table as the file has it (None for a new folder); PstFormatError when its
        columns are not the ones this writer's rows have."""
        nid = _table_nid(folder.nid, fmt.NID_TYPE_CONTENTS_TABLE)
        if folder.is_new or self.base.node(nid) is None:
            return None
        table = TableContext(Node.top(self.base, nid), self.base.layout)
        found = sorted((c.tag, c.offset, c.size, c.bit) for c in table.info.columns)
        if found != sorted((c.tag, c.offset, c.width, c.bit) for c in row_layout(CONTENTS_COLUMNS).columns):
            raise PstFormatError(f"the contents table of folder {folder.nid:#x} has other columns")
        return table

    def old_table(self, folder: FolderNode) -> CopiedTable | None:
        """Return the folder's contents-table rows taken whole: their bytes as stored (a message whose flags
        changed patched) and the first allocations of the table's heap, which hold their variable cells in row
        order. None when the heap is not laid out so (a value in a subnode, another writer): old_rows then."""
        table = self._old_contents(folder)
        if table is None:
            return None
        layout = row_layout(CONTENTS_COLUMNS)
        rows = table.rows()
        cells = _variable_cells(layout, rows)
        blocks = None if cells is None else _first_allocations(table.heap, cells)
        if blocks is None:
            return None
        try:
            heap = Heap.resumed(ltp_fmt.HN_CLIENT_TC, blocks)
        except ValueError:
            return None
        row_ids = [int.from_bytes(row[:4], "little") for row in rows]
        if self._row_patches:
            rows = [self._patched(layout, row) for row in rows]
        return CopiedTable(heap, rows, row_ids)

    def old_rows(self, folder: FolderNode) -> Iterator[tuple[int, Properties | CopiedRow]]:
        """Yield the folder's contents-table rows as the file has them, to be copied into the new table."""
        table = self._old_contents(folder)
        if table is None:
            return
        layout = row_layout(CONTENTS_COLUMNS)
        bitmap = layout.ends[ltp_fmt.TCI_1B]  # where the cell-existence bitmap starts
        variable = [(c.offset, bitmap + c.bit // 8, 0x80 >> (c.bit % 8)) for c in layout.columns
                    if pt.FIXED_TYPE_SIZES.get(pt.tag_type(c.tag)) != c.width]
        heap, node, patched = table.heap, table.node, self._row_patches
        for row in table.rows():  # every row of a big folder: the loop is kept lean
            cells = []
            for offset, byte, bit in variable:
                if row[byte] & bit:
                    hnid = int.from_bytes(row[offset:offset + 4], "little")
                    if hnid:
                        cells.append((offset, heap.get(hnid) if ltp_fmt.is_hid(hnid) else hnid_bytes(heap, node, hnid)))
            row_id = int.from_bytes(row[:4], "little")
            yield row_id, CopiedRow(self._patched(layout, row) if row_id in patched else row, tuple(cells))

    def set_flags(self, nid: int, flags: Flags) -> None:
        """Give message ``nid`` of the file ``flags`` when the file is finished; ValueError if it has no such one."""
        node = self.base.node(nid) if fmt.nid_type(nid) == fmt.NID_TYPE_NORMAL_MESSAGE else None
        folder = None if node is None else self.folders.get(node.nid_parent)
        if folder is None:
            raise ValueError(f"the file has no message {nid:#x}")
        self._new_flags[nid] = flags
        if not folder.contents_changed:
            folder.contents_changed = True
            self._counts_changed(folder)

    def _write_flags(self) -> None:
        """Write the messages whose flags changed again, and note what their contents-table rows show now."""
        assert isinstance(self.ndb, NdbAppender)
        for nid, flags in self._new_flags.items():
            old = PropertyContext(Node.top(self.base, nid)).get(p.PID_MESSAGE_FLAGS, 0)
            new = rewrite_message(self.ndb, nid, self.named, flags)
            self._row_patches[nid] = new
            was_read = isinstance(old, int) and bool(old & p.MSGFLAG_READ)
            flags_now = new[MESSAGE_FLAGS]
            is_read = isinstance(flags_now, int) and bool(flags_now & p.MSGFLAG_READ)
            node = self.base.node(nid)
            assert node is not None  # set_flags checked it
            self.folders[node.nid_parent].old_unread += int(was_read) - int(is_read)

    def _patched(self, layout: RowLayout, row: bytes) -> bytes:
        """Return ``row`` with the fixed cells of a message whose flags changed set to its new values."""
        patch = self._row_patches.get(int.from_bytes(row[:4], "little"))
        if patch is None:
            return row
        changed = bytearray(row)
        for column in layout.columns:
            value = patch.get(column.tag)
            if value is not None and pt.FIXED_TYPE_SIZES.get(pt.tag_type(column.tag)) == column.width:
                changed[column.offset:column.offset + column.width] = encode_value(pt.tag_type(column.tag), value)
                changed[layout.ends[ltp_fmt.TCI_1B] + column.bit // 8] |= 0x80 >> (column.bit % 8)
        return bytes(changed)

    def has_changes(self) -> bool:
        """Return True when something was added or given new flags since the file was opened."""
        return any(f.pc_changed or f.contents_changed or f.hierarchy_changed for f in self.folders.values())

    def finish(self) -> None:
        """Write what changed and make it the file's content (see NdbAppender.commit)."""
        self._write_flags()
        if self._name_map_grows:
            write_pc_node(self.ndb, msg_fmt.NID_NAME_TO_ID_MAP, 0, name_to_id_map(list(self.named.values())))
        super().finish()

    def close(self) -> None:
        """Drop what was kept for the end and let go of the file's map."""
        super().close()
        if not self._map.closed:
            self._map.close()


def _variable_cells(layout: RowLayout, rows: list[bytes]) -> list[int] | None:
    """Return the non-zero HNIDs of the rows' variable cells, row by row in column order (the order build_tc
    stores them in); None when one is set in a cell its row marks absent (old_rows leaves such a cell alone)."""
    bitmap = layout.ends[ltp_fmt.TCI_1B]
    pieces, checks, position = [], [], 0
    for column in layout.columns:  # in offset order
        if pt.FIXED_TYPE_SIZES.get(pt.tag_type(column.tag)) != column.width:
            pieces.append(f"{column.offset - position}xI")
            checks.append((bitmap + column.bit // 8, 0x80 >> (column.bit % 8)))
            position = column.offset + 4
    unpack = struct.Struct("<" + "".join(pieces) + f"{layout.row_size - position}x").unpack_from
    cells = []
    for row in rows:
        for hnid, (byte, bit) in zip(unpack(row), checks):
            if hnid:
                if not row[byte] & bit:
                    return None
                cells.append(hnid)
    return cells


def _first_allocations(heap: StoredHeap, hids: list[int]) -> list[list[bytes]] | None:
    """Return the heap's first ``len(hids)`` allocations by block, or None unless ``hids`` names exactly them."""
    blocks: list[list[bytes]] = [[]]
    left = len(hids)
    for index, block in enumerate(heap.blocks):
        if left == 0:
            break
        offsets = heap.page_map(index)
        taken = min(left, len(offsets) - 1)
        if hids[len(hids) - left:len(hids) - left + taken] != [ltp_fmt.make_hid(index, i) for i in range(1, taken + 1)]:
            return None
        if offsets[taken] > len(block) or any(a > b for a, b in zip(offsets, offsets[1:taken + 1])):
            return None  # impossible bounds: old_rows reads the cells one by one and says which is damaged
        allocations = [block[offsets[i]:offsets[i + 1]] for i in range(taken)]
        if index:
            blocks.append(allocations)
        else:
            blocks[0] = allocations
        left -= taken
    return None if left else blocks
