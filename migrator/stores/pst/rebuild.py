"""Rebuilding an existing Unicode PST into a new one by copying its message blocks as they are.

An incremental run writes a new file: the messages already in the old one are carried over without being
decoded and re-encoded. Each message keeps its NID and its blocks keep their BIDs (so the node entries and
every data and subnode tree stay valid); only their file offsets, and so their trailers, change. Folders,
tables and the store scaffold are rebuilt by the writer as for a new file.
"""

from __future__ import annotations

from migrator.stores.pst.ltp import props as pt
from migrator.stores.pst.ltp.reader import Node, PropertyContext, TableContext
from migrator.stores.pst.ltp.values_writer import PropValue
from migrator.stores.pst.ltp.writer import Properties
from migrator.stores.pst.messaging.table_columns import CONTENTS_COLUMNS
from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb.reader import Ndb, PstFormatError, is_internal, parse_slblock, parse_xblock
from migrator.stores.pst.ndb.writer import NdbWriter
from migrator.stores.pst.reader import PstReader
from migrator.stores.pst.writer import PstWriter


def can_copy_blocks(source: PstReader) -> bool:
    """Return True when ``source``'s blocks can be copied as they are (a Unicode file)."""
    return source.ndb.layout.unicode


def copy_messages(source: PstReader, writer: PstWriter) -> None:
    """Copy every folder and message of ``source`` into ``writer`` (which has written nothing yet)."""
    ndb = source.ndb
    writer.ndb.reserve_bids(ndb.header.bid_next_b)
    blocks = BlockSource(ndb)
    copied = CopiedBids(ndb.header.bid_next_b)
    for folder in source.folders():
        if folder.damage is not None:  # its messages or subfolders would be lost from the new file
            raise PstFormatError(f"folder {'/'.join(folder.path)!r} is damaged: {folder.damage}")
        writer.ensure_folder(folder.path)
        contents = TableContext(Node.top(ndb, contents_table_nid(folder.nid)), ndb.layout)
        for row in contents.rows():
            nid = contents.row_id(row)
            entry = ndb.node(nid)
            if entry is None:
                continue  # a row without its message: nothing to carry over
            copy_tree(blocks, writer.ndb, entry.bid_data, copied)
            copy_tree(blocks, writer.ndb, entry.bid_sub, copied)
            writer.adopt_message(folder.path, nid, entry.bid_data, entry.bid_sub, row_values(ndb, nid))


def row_values(ndb: Ndb, nid: int) -> Properties:
    """Return the contents-table values of message ``nid``, read from the message itself (rows must match it)."""
    message = PropertyContext(Node.top(ndb, nid))
    values: dict[int, PropValue] = {}
    for tag in CONTENTS_COLUMNS:
        prop_id, prop_type = pt.tag_id(tag), pt.tag_type(tag)
        if message.prop_type(prop_id) != prop_type:
            continue
        if prop_type == pt.PT_SYSTIME:  # as stored: a datetime would lose the last 100 ns digit
            values[tag] = int.from_bytes(message.raw(prop_id) or bytes(8), "little")
        else:
            values[tag] = message.get(prop_id)  # type: ignore[assignment]
    return values


def contents_table_nid(folder_nid: int) -> int:
    """Return the NID of a folder's contents table."""
    return fmt.make_nid(fmt.NID_TYPE_CONTENTS_TABLE, fmt.nid_index(folder_nid))


class BlockSource:
    """The blocks of a file, each looked up in its BBT when copied (the B-tree's pages are cached by the Ndb).

    Loading the whole BBT into a dict first was quicker, but held 216 MB at 50 000 messages.
    """

    def __init__(self, ndb: Ndb) -> None:
        self.ndb = ndb

    def payload(self, bid: int) -> bytes:
        """Return the decoded payload of block ``bid``; raise PstFormatError when it is missing or damaged."""
        return self.ndb.block(bid)


class CopiedBids:
    """The blocks copied so far, a bit per BID below the file's bidNextB (a million blocks: 32 KB)."""

    def __init__(self, bid_next: int) -> None:
        self._bits = bytearray(bid_next // (fmt.BID_STEP * 8) + 1)

    def __contains__(self, bid: int) -> bool:
        index = bid // fmt.BID_STEP
        return index // 8 < len(self._bits) and bool(self._bits[index // 8] & (1 << index % 8))

    def add(self, bid: int) -> None:
        """Record ``bid`` as copied; one above bidNextB (a damaged file's) grows the bitmap."""
        index = bid // fmt.BID_STEP
        if index // 8 >= len(self._bits):
            self._bits.extend(bytes(index // 8 + 1 - len(self._bits)))
        self._bits[index // 8] |= 1 << index % 8


def copy_tree(blocks: BlockSource, target: NdbWriter, bid: int, copied: CopiedBids) -> None:
    """Copy block ``bid`` and, for a data tree or subnode tree, every block below it, keeping the BIDs."""
    if bid == 0 or bid in copied:
        return
    copied.add(bid)
    payload = blocks.payload(bid)
    for child in child_bids(payload, bid, blocks.ndb):
        copy_tree(blocks, target, child, copied)
    target.write_block(payload, internal=is_internal(bid), bid=bid)


def child_bids(payload: bytes, bid: int, ndb: Ndb) -> list[int]:
    """Return the blocks an internal block points to (none for a data block)."""
    if not is_internal(bid):
        return []
    if payload[0] == fmt.BTYPE_XBLOCK:
        return parse_xblock(payload, ndb.layout)[1]
    level, entries = parse_slblock(payload, ndb.layout)
    if level:
        return [entry.bid_data for entry in entries]
    return [bid for entry in entries for bid in (entry.bid_data, entry.bid_sub)]
