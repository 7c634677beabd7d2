"""A whole PST being written: the store scaffold an empty Outlook file has, the folder tree and the messages.

Messages stream to disk as they are added; folders (their property contexts and tables) are written when
the file is finished, because their counts and contents tables depend on every message.
"""

from __future__ import annotations

import array
import itertools
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from migrator.core.message import Flag, FolderPath, Message
from migrator.stores.pst.convert.mapi_from_mime import mapi_from_message
from migrator.stores.pst.ltp import props as pt
from migrator.stores.pst.ltp.node_writer import write_pc_node, write_tc_node
from migrator.stores.pst.ltp.values_writer import PropValue
from migrator.stores.pst.ltp.writer import CopiedRow, CopiedTable, Properties
from migrator.stores.pst.messaging import format as msg_fmt
from migrator.stores.pst.messaging import props as p
from migrator.stores.pst.messaging.namemap_writer import name_to_id_map, writer_named_properties
from migrator.stores.pst.messaging.row_spill import RowSpill
from migrator.stores.pst.messaging.table_columns import (
    ASSOC_CONTENTS_COLUMNS,
    ATTACHMENT_COLUMNS,
    CONTENTS_COLUMNS,
    HIERARCHY_COLUMNS,
    RECIPIENT_COLUMNS,
    SEARCH_CONTENTS_COLUMNS,
)
from migrator.stores.pst.messaging.writer import write_message
from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb.append import NdbAppender
from migrator.stores.pst.ndb.header_writer import build_dlist, build_header
from migrator.stores.pst.ndb.writer import NdbWriter

IPM_SUBTREE = fmt.make_nid(fmt.NID_TYPE_NORMAL_FOLDER, 0x401)
SEARCH_ROOT = fmt.make_nid(fmt.NID_TYPE_NORMAL_FOLDER, 0x402)
DELETED_ITEMS = fmt.make_nid(fmt.NID_TYPE_NORMAL_FOLDER, 0x403)
SPAM_SEARCH_FOLDER = fmt.make_nid(fmt.NID_TYPE_SEARCH_FOLDER, 0x111)
FIRST_USER_FOLDER_INDEX = 0x404
FIRST_MESSAGE_INDEX = 0x10001
INBOX_NAME = "Inbox"
DELETED_ITEMS_NAME = "Deleted Items"
SENT_ITEMS_NAME = "Sent Items"
DRAFTS_NAME = "Drafts"
RECEIVE_FOLDER_TABLE = fmt.make_nid(fmt.NID_TYPE_RECEIVE_FOLDER_TABLE, 0x31)  # 0x62B
RECEIVE_FOLDER_NID = pt.tag(0x6605, pt.PT_LONG)  # the PST's own column: NID of the receiving folder
RECEIVE_FOLDER_COLUMNS = (pt.tag(p.PID_MESSAGE_CLASS, pt.PT_UNICODE), RECEIVE_FOLDER_NID)
# Empty tables every Outlook store has (outgoing queue 0x64C and three undocumented ones), with their columns.
_EMPTY_INTERNAL_TABLES = (
    (0x64C, (0x00390040, 0x0E100003, 0x0E140003)),
    (0x6B6, (0x0E330014, 0x0E370102, 0x0E380003)),
    (0x6D7, (0x001A001F, 0x0E300102, 0x0E310102, 0x0E330014, 0x0E340102, 0x0E380003, 0x0E3E0102)),
    (0x6F8, (0x0E330014, 0x30070040)),
)
MAIL_CONTAINER_CLASS = "IPF.Note"
_EMPTY_INTERNAL_NODES = (
    msg_fmt.NID_SEARCH_MANAGEMENT_QUEUE, msg_fmt.NID_SEARCH_ACTIVITY_LIST, msg_fmt.NID_SEARCH_DOMAIN_OBJECT,
    msg_fmt.NID_SEARCH_GATHERER_QUEUE, msg_fmt.NID_SEARCH_GATHERER_DESCRIPTOR, msg_fmt.NID_SEARCH_GATHERER_FOLDER_QUEUE,
)



@dataclass
class FolderNode:
    """A folder of the file being written, with where the contents-table rows of its messages are kept."""

    nid: int
    name: str
    parent: int
    container_class: str | None = MAIL_CONTAINER_CLASS
    children: list[int] = field(default_factory=list)
    row_offsets: array.array = field(default_factory=lambda: array.array("Q"))  # in the writer's RowSpill
    unread: int = 0
    # A folder the file had before an append: its messages and unread ones then, and what must be written
    # again (a new folder is written whole).
    old_count: int = 0
    old_unread: int = 0
    pc_changed: bool = True
    contents_changed: bool = True
    hierarchy_changed: bool = True
    is_new: bool = True

    @property
    def count(self) -> int:
        """Return how many messages the folder holds, those it had before an append included."""
        return self.old_count + len(self.row_offsets)


def pst_folder_name(path: FolderPath, depth: int) -> str:
    """Return the PST name of the folder at ``depth`` of ``path``: the top-level INBOX becomes 'Inbox'."""
    name = path[depth]
    return INBOX_NAME if depth == 0 and name.upper() == "INBOX" else name


class PstWriter:
    """Builds one new Unicode PST in ``file``: call add_message for each message, then finish."""

    def __init__(self, file: BinaryIO, display_name: str, scratch: str | None = None,
                 record_key: bytes | None = None, ndb: NdbWriter | None = None) -> None:
        """Write to ``file``; contents-table rows and block entries wait in temporary files in ``scratch``.

        ``record_key`` is the store's identity, kept when a file is written again (a new one otherwise):
        message entry ids are made from it, and a rerun tells by it that the file is the one it wrote.
        """
        self.file = file
        self.display_name = display_name
        self.ndb = ndb or NdbWriter(file, scratch)
        self.named = writer_named_properties()
        self.record_key = record_key or os.urandom(16)
        self.folders: dict[int, FolderNode] = {}
        self._rows = RowSpill(scratch)
        self._by_path: dict[FolderPath, int] = {}
        self._next_folder_index = FIRST_USER_FOLDER_INDEX
        self._next_message_index = FIRST_MESSAGE_INDEX
        self._add_folder(FolderNode(msg_fmt.NID_ROOT_FOLDER, "", msg_fmt.NID_ROOT_FOLDER, None))
        self._add_folder(FolderNode(IPM_SUBTREE, "Top of Personal Folders", msg_fmt.NID_ROOT_FOLDER, None))
        self._add_folder(FolderNode(SEARCH_ROOT, "Search Root", msg_fmt.NID_ROOT_FOLDER, None))
        self._add_folder(FolderNode(DELETED_ITEMS, DELETED_ITEMS_NAME, IPM_SUBTREE))
        self._by_path[(DELETED_ITEMS_NAME,)] = DELETED_ITEMS

    def _add_folder(self, folder: FolderNode) -> None:
        self.folders[folder.nid] = folder
        if folder.parent != folder.nid:
            parent = self.folders[folder.parent]
            parent.children.append(folder.nid)
            if folder.is_new:  # the parent's hierarchy table and subfolder flag, and its own row above
                parent.pc_changed = parent.hierarchy_changed = True
                self._counts_changed(parent)

    def _counts_changed(self, folder: FolderNode) -> None:
        """Mark what shows ``folder``'s counts or flags for writing: its own node and its row in its parent."""
        folder.pc_changed = True
        if folder.parent != folder.nid:
            self.folders[folder.parent].hierarchy_changed = True

    def ensure_folder(self, path: FolderPath) -> int:
        """Return the NID of the folder at ``path`` under the IPM subtree, creating it and its parents."""
        parent = IPM_SUBTREE
        for depth in range(len(path)):
            key = tuple(pst_folder_name(path, d) for d in range(depth + 1))
            if key not in self._by_path:
                nid = fmt.make_nid(fmt.NID_TYPE_NORMAL_FOLDER, self._next_folder_index)
                self._next_folder_index += 1
                self._add_folder(FolderNode(nid, key[-1], parent))
                self._by_path[key] = nid
            parent = self._by_path[key]
        return parent

    def message_count(self, path: FolderPath) -> int | None:
        """Return how many messages the folder at ``path`` holds so far, or None when there is no such folder."""
        nid = self._by_path.get(tuple(pst_folder_name(path, d) for d in range(len(path))))
        return None if nid is None else self.folders[nid].count

    def folder_paths(self) -> list[FolderPath]:
        """Return the paths of the user's folders, parents first, with 'Inbox' given back as 'INBOX'."""
        return [(("INBOX",) + key[1:]) if key[0] == INBOX_NAME else key for key in self._by_path]

    def add_message(self, path: FolderPath, message: Message, nid: int | None = None) -> int:
        """Write ``message`` into the folder at ``path`` and return its NID (``nid`` keeps a known one)."""
        folder = self.folders[self.ensure_folder(path)]
        if nid is None:
            nid = fmt.make_nid(fmt.NID_TYPE_NORMAL_MESSAGE, self._next_message_index)
        self._claim_message_nid(nid)
        row = write_message(self.ndb, nid, folder.nid, mapi_from_message(message, self.named))
        folder.row_offsets.append(self._rows.add(nid, row))
        if not folder.contents_changed:
            folder.contents_changed = True
            self._counts_changed(folder)
        if Flag.SEEN not in message.flags:
            folder.unread += 1
        return nid

    def adopt_message(self, path: FolderPath, nid: int, bid_data: int, bid_sub: int, row: Properties) -> None:
        """Add a message whose blocks were copied as they are, with its contents-table ``row``."""
        folder = self.folders[self.ensure_folder(path)]
        self._claim_message_nid(nid)
        self.ndb.add_node(nid, bid_data, bid_sub, folder.nid)
        folder.row_offsets.append(self._rows.add(nid, row))
        flags = row.get(pt.tag(p.PID_MESSAGE_FLAGS, pt.PT_LONG), 0)
        if not (isinstance(flags, int) and flags & p.MSGFLAG_READ):
            folder.unread += 1

    def _claim_message_nid(self, nid: int) -> None:
        if self.ndb.has_node(nid) or fmt.nid_type(nid) != fmt.NID_TYPE_NORMAL_MESSAGE:
            raise ValueError(f"message node {nid:#x} cannot be written twice")
        self._next_message_index = max(self._next_message_index, fmt.nid_index(nid) + 1)

    @property
    def bytes_written(self) -> int:
        """Return how far into the file the writer has got (a close estimate of the final size)."""
        return self.ndb.allocator.cursor

    def finish(self) -> None:
        """Write the folders, the store scaffold, the B-trees, the maps and finally the header; fsync."""
        if isinstance(self.ndb, NdbAppender):
            self._finish_append(self.ndb)
            return
        self._write_scaffold()
        for folder in self.folders.values():
            self._write_folder(folder)
        state = self.ndb.finish()
        self.file.seek(fmt.DLIST_OFFSET)
        self.file.write(build_dlist(state.bid_next_page))
        self.file.seek(0)
        self.file.write(build_header(state, random.getrandbits(32)))
        self.file.flush()
        os.fsync(self.file.fileno())
        self.close()

    def _finish_append(self, ndb: NdbAppender) -> None:
        """Write what the additions changed, then the B-trees, maps and header as ``NdbAppender.commit`` does."""
        if any(folder.is_new for folder in self.folders.values()):  # the store names some special folders
            write_pc_node(self.ndb, msg_fmt.NID_MESSAGE_STORE, 0, self._store_properties())
            write_tc_node(self.ndb, RECEIVE_FOLDER_TABLE, 0, RECEIVE_FOLDER_COLUMNS, self._receive_folder_rows())
            self.folders[msg_fmt.NID_ROOT_FOLDER].pc_changed = True
        for folder in self.folders.values():
            self._write_folder(folder)
        ndb.commit()
        self.close()

    def close(self) -> None:
        """Drop the rows and block entries kept until the end (finish does it; call it when abandoning the file)."""
        self._rows.close()
        self.ndb.close()

    def _write_folder(self, folder: FolderNode) -> None:
        """Write the folder's node and tables (of a folder the file had, those that changed)."""
        if folder.pc_changed:
            values = self._hierarchy_row(folder)
            if folder.nid == msg_fmt.NID_ROOT_FOLDER and (DRAFTS_NAME,) in self._by_path:
                drafts = self._entry_id(self._by_path[(DRAFTS_NAME,)])
                values[pt.tag(p.PID_IPM_DRAFTS_ENTRY_ID, pt.PT_BINARY)] = drafts
            write_pc_node(self.ndb, folder.nid, folder.parent, values)
        if folder.hierarchy_changed:
            hierarchy = [(child, self._hierarchy_row(self.folders[child])) for child in folder.children]
            if folder.nid == msg_fmt.NID_ROOT_FOLDER:
                hierarchy.append((SPAM_SEARCH_FOLDER, self._search_folder_properties()))
            hierarchy_nid = _table_nid(folder.nid, fmt.NID_TYPE_HIERARCHY_TABLE)
            write_tc_node(self.ndb, hierarchy_nid, 0, HIERARCHY_COLUMNS, hierarchy)
        if folder.contents_changed:
            copied = self.old_table(folder)
            old = iter(()) if copied is not None else self.old_rows(folder)
            contents = itertools.chain(old, self._rows.rows(folder.row_offsets))
            nid = _table_nid(folder.nid, fmt.NID_TYPE_CONTENTS_TABLE)
            write_tc_node(self.ndb, nid, 0, CONTENTS_COLUMNS, contents, copied)
        if folder.is_new:
            assoc = _table_nid(folder.nid, fmt.NID_TYPE_ASSOC_CONTENTS_TABLE)
            write_tc_node(self.ndb, assoc, 0, ASSOC_CONTENTS_COLUMNS, [])

    def old_table(self, folder: FolderNode) -> CopiedTable | None:
        """Return the contents-table rows the folder had before an append, taken whole; None when there are
        none (a new file) or they must go row by row (old_rows)."""
        return None

    def old_rows(self, folder: FolderNode) -> Iterator[tuple[int, Properties | CopiedRow]]:
        """Yield the contents-table rows the folder had before an append (none in a new file)."""
        return iter(())

    def _hierarchy_row(self, folder: FolderNode) -> dict[int, PropValue]:
        values: dict[int, PropValue] = {
            pt.tag(p.PID_DISPLAY_NAME, pt.PT_UNICODE): folder.name,
            pt.tag(p.PID_CONTENT_COUNT, pt.PT_LONG): folder.count,
            pt.tag(p.PID_CONTENT_UNREAD_COUNT, pt.PT_LONG): folder.old_unread + folder.unread,
            pt.tag(p.PID_SUBFOLDERS, pt.PT_BOOLEAN): bool(folder.children),
            pt.tag(p.PID_PST_HIDDEN_COUNT, pt.PT_LONG): 0,
            pt.tag(p.PID_PST_HIDDEN_UNREAD, pt.PT_LONG): 0,
        }
        if folder.container_class:
            values[pt.tag(p.PID_CONTAINER_CLASS, pt.PT_UNICODE)] = folder.container_class
        return values

    def _search_folder_properties(self) -> dict[int, PropValue]:
        return {
            pt.tag(p.PID_DISPLAY_NAME, pt.PT_UNICODE): "SPAM Search Folder 2",
            pt.tag(p.PID_CONTENT_COUNT, pt.PT_LONG): 0,
            pt.tag(p.PID_CONTENT_UNREAD_COUNT, pt.PT_LONG): 0,
            pt.tag(p.PID_SUBFOLDERS, pt.PT_BOOLEAN): False,
        }

    def _entry_id(self, nid: int) -> bytes:
        return bytes(4) + self.record_key + nid.to_bytes(4, "little")

    def _write_scaffold(self) -> None:
        write_pc_node(self.ndb, msg_fmt.NID_MESSAGE_STORE, 0, self._store_properties())
        named = list(self.named.values())
        write_pc_node(self.ndb, msg_fmt.NID_NAME_TO_ID_MAP, 0, name_to_id_map(named))
        for nid in _EMPTY_INTERNAL_NODES:
            self.ndb.add_node(nid, 0, 0, 0)
        templates = (
            (msg_fmt.NID_HIERARCHY_TABLE_TEMPLATE, HIERARCHY_COLUMNS),
            (msg_fmt.NID_CONTENTS_TABLE_TEMPLATE, CONTENTS_COLUMNS),
            (msg_fmt.NID_ASSOC_CONTENTS_TABLE_TEMPLATE, ASSOC_CONTENTS_COLUMNS),
            (msg_fmt.NID_SEARCH_CONTENTS_TABLE_TEMPLATE, SEARCH_CONTENTS_COLUMNS),
            (msg_fmt.NID_ATTACHMENT_TABLE, ATTACHMENT_COLUMNS), (msg_fmt.NID_RECIPIENT_TABLE, RECIPIENT_COLUMNS),
        )
        for nid, columns in templates:
            write_tc_node(self.ndb, nid, 0, columns, [])
        for nid, internal_columns in _EMPTY_INTERNAL_TABLES:
            write_tc_node(self.ndb, nid, 0, internal_columns, [])
        write_tc_node(self.ndb, RECEIVE_FOLDER_TABLE, 0, RECEIVE_FOLDER_COLUMNS, self._receive_folder_rows())
        self._write_spam_search_folder()

    def _receive_folder_rows(self) -> list[tuple[int, Properties]]:
        """Return the receive-folder table: where Outlook delivers each message class (the Inbox)."""
        inbox = self._by_path.get((INBOX_NAME,), IPM_SUBTREE)
        targets = (("", inbox), ("IPM", inbox), ("Report.IPM", inbox), ("IPC", msg_fmt.NID_ROOT_FOLDER))
        return [
            (number + 1, {pt.tag(p.PID_MESSAGE_CLASS, pt.PT_UNICODE): message_class, RECEIVE_FOLDER_NID: nid})
            for number, (message_class, nid) in enumerate(targets)
        ]

    def _write_spam_search_folder(self) -> None:
        write_pc_node(self.ndb, SPAM_SEARCH_FOLDER, msg_fmt.NID_ROOT_FOLDER, self._search_folder_properties())
        index = fmt.nid_index(SPAM_SEARCH_FOLDER)
        self.ndb.add_node(fmt.make_nid(fmt.NID_TYPE_SEARCH_UPDATE_QUEUE, index), 0, 0, 0)
        self.ndb.add_node(fmt.make_nid(fmt.NID_TYPE_SEARCH_CRITERIA_OBJECT, index), 0, 0, 0)
        contents = fmt.make_nid(fmt.NID_TYPE_SEARCH_CONTENTS_TABLE, index)
        write_tc_node(self.ndb, contents, 0, SEARCH_CONTENTS_COLUMNS, [])

    def _store_properties(self) -> dict[int, PropValue]:
        values = self._store_scaffold_properties()
        if (SENT_ITEMS_NAME,) in self._by_path:
            sent_items = self._entry_id(self._by_path[(SENT_ITEMS_NAME,)])
            values[pt.tag(p.PID_IPM_SENTMAIL_ENTRY_ID, pt.PT_BINARY)] = sent_items
        return values

    def _store_scaffold_properties(self) -> dict[int, PropValue]:
        return {
            pt.tag(p.PID_RECORD_KEY, pt.PT_BINARY): self.record_key,
            pt.tag(p.PID_DISPLAY_NAME, pt.PT_UNICODE): self.display_name,
            pt.tag(p.PID_VALID_FOLDER_MASK, pt.PT_LONG): 0x89,
            pt.tag(p.PID_IPM_SUBTREE_ENTRY_ID, pt.PT_BINARY): self._entry_id(IPM_SUBTREE),
            pt.tag(p.PID_IPM_WASTEBASKET_ENTRY_ID, pt.PT_BINARY): self._entry_id(DELETED_ITEMS),
            pt.tag(p.PID_FINDER_ENTRY_ID, pt.PT_BINARY): self._entry_id(SEARCH_ROOT),
            pt.tag(p.PID_PST_BEST_BODY, pt.PT_BOOLEAN): True,
            pt.tag(p.PID_PST_CONFIG_FLAGS, pt.PT_LONG): 0x000E0011,
            pt.tag(p.PID_PST_PASSWORD, pt.PT_LONG): 0,
        }


def _table_nid(folder_nid: int, table_type: int) -> int:
    return fmt.make_nid(table_type, fmt.nid_index(folder_nid))
