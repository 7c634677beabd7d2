"""The messaging layer, read side ([MS-PST] §2.4): folders, messages, recipients and attachments as MAPI objects."""

from __future__ import annotations

import codecs
import struct
from functools import cached_property
from typing import NamedTuple

from migrator.stores.pst.ltp import props as pt
from migrator.stores.pst.ltp.reader import Node, PropertyContext, TableContext
from migrator.stores.pst.messaging import format as msg_fmt
from migrator.stores.pst.messaging import props as p
from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb.reader import Layout, Ndb


def codec_name(codepage: object) -> str:
    """Return the Python codec for a Windows code page number, cp1252 when unknown."""
    if isinstance(codepage, int) and codepage > 0:
        name = "utf-8" if codepage == p.CODEPAGE_UTF8 else f"cp{codepage}"
        try:
            return codecs.lookup(name).name
        except LookupError:
            pass
    return "cp1252"


def entry_id_nid(entry_id: object) -> int | None:
    """Return the NID at the end of a PST EntryID (4 flag bytes, 16-byte store UID, NID), or None."""
    if isinstance(entry_id, bytes) and len(entry_id) == 24:
        return struct.unpack_from("<I", entry_id, 20)[0]
    return None


def table_nid(folder_nid: int, table_type: int) -> int:
    """Return the NID of a folder's hierarchy, contents or associated contents table."""
    return (folder_nid & ~0x1F) | table_type


# --- recipients and attachments -------------------------------------------------------------------------


class Recipient(NamedTuple):
    """One row of a message's recipient table."""

    kind: int  # RECIPIENT_TO / _CC / _BCC
    name: str
    address: str


class Attachment(NamedTuple):
    """One attachment: its properties, and its bytes or embedded message."""

    props: PropertyContext
    embedded: MapiMessage | None

    @property
    def method(self) -> int:
        """Return PidTagAttachMethod (1 by value, 5 embedded message, ...)."""
        value = self.props.get(p.PID_ATTACH_METHOD, p.ATTACH_BY_VALUE)
        return value if isinstance(value, int) else p.ATTACH_BY_VALUE

    @property
    def data(self) -> bytes:
        """Return the attachment's bytes (empty for embedded messages and references)."""
        if pt.tag_type(self.props.prop_type(p.PID_ATTACH_DATA) or 0) != pt.PT_BINARY:
            return b""
        return self.props.raw(p.PID_ATTACH_DATA) or b""

    def text(self, prop_id: int) -> str:
        """Return a string property of the attachment, '' when absent."""
        value = self.props.get(prop_id, "")
        return value if isinstance(value, str) else ""


class MapiMessage:
    """A message node (top-level, or embedded in an attachment): its PC, recipients and attachments."""

    def __init__(self, node: Node, layout: Layout) -> None:
        self.node = node
        self.layout = layout
        self.props = PropertyContext(node)
        self.props.codepage = codec_name(self.props.get(p.PID_MESSAGE_CODEPAGE) or self.props.get(
            p.PID_INTERNET_CODEPAGE))

    @property
    def nid(self) -> int:
        """Return the message's NID."""
        return self.node.nid

    def text(self, prop_id: int) -> str:
        """Return a string property, '' when absent."""
        value = self.props.get(prop_id, "")
        return value if isinstance(value, str) else ""

    @cached_property
    def recipients(self) -> list[Recipient]:
        """Return the rows of the recipient table, in table order."""
        if not self.node.has_subnode(msg_fmt.NID_RECIPIENT_TABLE):
            return []
        table = self._table(msg_fmt.NID_RECIPIENT_TABLE)
        return [_recipient(table, row) for row in table.rows()]

    @cached_property
    def attachments(self) -> list[Attachment]:
        """Return the message's attachments, in table order."""
        if not self.node.has_subnode(msg_fmt.NID_ATTACHMENT_TABLE):
            return []
        table = self._table(msg_fmt.NID_ATTACHMENT_TABLE)
        return [self._attachment(table.row_id(row)) for row in table.rows()]

    def _table(self, nid: int) -> TableContext:
        return TableContext(self.node.subnode(nid), self.layout, self.props.codepage)

    def _attachment(self, nid: int) -> Attachment:
        node = self.node.subnode(nid)
        props = PropertyContext(node, self.props.codepage)
        embedded = None
        embedded_method = props.get(p.PID_ATTACH_METHOD) == p.ATTACH_EMBEDDED_MSG
        if embedded_method and props.prop_type(p.PID_ATTACH_DATA) == pt.PT_OBJECT:
            object_ref = props.raw(p.PID_ATTACH_DATA) or b""
            if len(object_ref) >= 4:
                embedded = MapiMessage(node.subnode(struct.unpack_from("<I", object_ref)[0]), self.layout)
        return Attachment(props, embedded)


def _recipient(table: TableContext, row: bytes) -> Recipient:
    kind = table.value(row, p.PID_RECIPIENT_TYPE, p.RECIPIENT_TO)
    name = table.value(row, p.PID_DISPLAY_NAME, "") or table.value(row, p.PID_RECIPIENT_DISPLAY_NAME, "")
    address = table.value(row, p.PID_SMTP_ADDRESS, "") or table.value(row, p.PID_EMAIL_ADDRESS, "")
    return Recipient(int(kind) & 0xF if isinstance(kind, int) else p.RECIPIENT_TO, str(name), str(address))


# --- folders ------------------------------------------------------------------------------------------------


def folder_name(ndb: Ndb, nid: int) -> str:
    """Return the display name of folder ``nid``; raise PstFormatError if it is missing or malformed."""
    name = PropertyContext(Node.top(ndb, nid)).get(p.PID_DISPLAY_NAME, "")
    return name if isinstance(name, str) else ""


def table_row_ids(ndb: Ndb, folder_nid: int, table_type: int) -> list[int]:
    """Return the row ids (child NIDs) of a folder's table, [] when the folder has no such table."""
    nid = table_nid(folder_nid, table_type)
    if ndb.node(nid) is None:
        return []
    table = TableContext(Node.top(ndb, nid), ndb.layout)
    return [table.row_id(row) for row in table.rows()]


def subfolder_nids(ndb: Ndb, folder_nid: int) -> list[int]:
    """Return the NIDs of the normal folders listed in a folder's hierarchy table."""
    rows = table_row_ids(ndb, folder_nid, fmt.NID_TYPE_HIERARCHY_TABLE)
    return [nid for nid in rows if fmt.nid_type(nid) == fmt.NID_TYPE_NORMAL_FOLDER]


def message_nids(ndb: Ndb, folder_nid: int) -> list[int]:
    """Return the NIDs of the messages listed in a folder's contents table."""
    return table_row_ids(ndb, folder_nid, fmt.NID_TYPE_CONTENTS_TABLE)


def message_count(ndb: Ndb, folder_nid: int) -> int:
    """Return how many messages a folder's contents table lists (len of message_nids, without reading them)."""
    nid = table_nid(folder_nid, fmt.NID_TYPE_CONTENTS_TABLE)
    if ndb.node(nid) is None:
        return 0
    return TableContext(Node.top(ndb, nid), ndb.layout).row_count()


def read_message(ndb: Ndb, nid: int) -> MapiMessage:
    """Return message ``nid``; raise PstFormatError if it is missing or malformed."""
    return MapiMessage(Node.top(ndb, nid), ndb.layout)


def store_props(ndb: Ndb) -> PropertyContext:
    """Return the message store's PC (node 0x21); raise PstFormatError if it is missing."""
    return PropertyContext(Node.top(ndb, msg_fmt.NID_MESSAGE_STORE))


def name_map_streams(ndb: Ndb) -> tuple[bytes, bytes, bytes]:
    """Return the GUID, entry and string streams of the name-to-id map (empty when the file has none)."""
    if ndb.node(msg_fmt.NID_NAME_TO_ID_MAP) is None:
        return b"", b"", b""
    props = PropertyContext(Node.top(ndb, msg_fmt.NID_NAME_TO_ID_MAP))
    streams = (p.PID_NAMEID_STREAM_GUID, p.PID_NAMEID_STREAM_ENTRY, p.PID_NAMEID_STREAM_STRING)
    return tuple(props.raw(pid) or b"" for pid in streams)  # type: ignore[return-value]

