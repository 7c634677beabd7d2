"""Writing one message node: its property context, recipient table, attachment table and attachments (§2.4.5).

Folders are written by the file writer (``pst/writer.py``) when the file is finished, because their tables
depend on every message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from migrator.stores.pst.ltp import props as pt
from migrator.stores.pst.ltp.node_writer import add_pc_subnode, add_tc_subnode
from migrator.stores.pst.ltp.values_writer import PropValue
from migrator.stores.pst.ltp.writer import Properties, Subnodes, build_pc
from migrator.stores.pst.messaging import format as msg_fmt
from migrator.stores.pst.messaging import props as p
from migrator.stores.pst.messaging.table_columns import ATTACHMENT_COLUMNS, CONTENTS_COLUMNS, RECIPIENT_COLUMNS
from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb.writer import NdbWriter

MESSAGE_SIZE = pt.tag(p.PID_MESSAGE_SIZE, pt.PT_LONG)
ATTACH_SIZE = pt.tag(p.PID_ATTACH_SIZE, pt.PT_LONG)
ATTACH_OBJECT = pt.tag(p.PID_ATTACH_DATA, pt.PT_OBJECT)
EMBEDDED_MESSAGE_NID = fmt.make_nid(fmt.NID_TYPE_NORMAL_MESSAGE, 1)
_FIRST_ATTACHMENT_INDEX = 0x401
_RECIPIENT_EXTRA_COLUMNS = (pt.tag(p.PID_SMTP_ADDRESS, pt.PT_UNICODE),)


@dataclass
class MapiAttachment:
    """One attachment: its properties, and an embedded message when it is attached as a message."""

    props: dict[int, PropValue]
    embedded: MapiMessage | None = None


@dataclass
class MapiMessage:
    """A message as MAPI sees it: properties, recipient rows and attachments."""

    props: dict[int, PropValue]
    recipients: list[dict[int, PropValue]] = field(default_factory=list)
    attachments: list[MapiAttachment] = field(default_factory=list)


def write_message(ndb: NdbWriter, nid: int, folder_nid: int, message: MapiMessage) -> Properties:
    """Write ``message`` as node ``nid`` in the folder ``folder_nid``; return its contents-table row values."""
    subnodes = Subnodes(ndb)
    values = write_message_parts(subnodes, message)
    blocks = build_pc(values, subnodes, MESSAGE_SIZE)
    values[MESSAGE_SIZE] = sum(len(block) for block in blocks) + subnodes.data_bytes
    ndb.add_node(nid, ndb.write_block_list(blocks), subnodes.write(), folder_nid)
    return {tag: values[tag] for tag in CONTENTS_COLUMNS if tag in values}


def write_embedded(owner: Subnodes, message: MapiMessage) -> int:
    """Write an attached message as a message node among ``owner``'s subnodes; return its size."""
    inner = Subnodes(owner.ndb)
    values = write_message_parts(inner, message)
    return add_pc_subnode(owner, EMBEDDED_MESSAGE_NID, values, MESSAGE_SIZE, inner)


def write_message_parts(subnodes: Subnodes, message: MapiMessage) -> dict:
    """Write the recipient and attachment subnodes; return the message properties with a size slot."""
    rows = [(number, row) for number, row in enumerate(message.recipients)]
    add_tc_subnode(subnodes, msg_fmt.NID_RECIPIENT_TABLE, RECIPIENT_COLUMNS + _RECIPIENT_EXTRA_COLUMNS, rows)
    if message.attachments:
        attachment_rows = [
            write_attachment(subnodes, fmt.make_nid(fmt.NID_TYPE_ATTACHMENT, _FIRST_ATTACHMENT_INDEX + i), a)
            for i, a in enumerate(message.attachments)
        ]
        add_tc_subnode(subnodes, msg_fmt.NID_ATTACHMENT_TABLE, ATTACHMENT_COLUMNS, attachment_rows)
    return {**message.props, MESSAGE_SIZE: 0}


def write_attachment(owner: Subnodes, nid: int, attachment: MapiAttachment) -> tuple[int, Properties]:
    """Write one attachment object as subnode ``nid``; return its attachment-table row."""
    values = dict(attachment.props)
    inner = Subnodes(owner.ndb)
    if attachment.embedded is not None:
        values[ATTACH_OBJECT] = (EMBEDDED_MESSAGE_NID, write_embedded(inner, attachment.embedded))
    values[ATTACH_SIZE] = add_pc_subnode(owner, nid, values, ATTACH_SIZE, inner)
    return nid, {tag: values[tag] for tag in ATTACHMENT_COLUMNS if tag in values}
