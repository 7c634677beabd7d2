"""A message's metadata as migrator sees it: flags, received date, size and the stored raw bytes.

Migrator's own named properties (PS_MIGRATOR) win when present; otherwise the values come from Outlook's MAPI
properties (message flags, flag status, last verb, categories, delivery time).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import NamedTuple

from migrator.core.message import Flag, Flags
from migrator.stores.pst.convert.raw_copy import Sources, rebuild
from migrator.stores.pst.ltp import format as ltp_fmt
from migrator.stores.pst.ltp import props as pt
from migrator.stores.pst.ltp.values_writer import StreamedBinary
from migrator.stores.pst.messaging import props as p
from migrator.stores.pst.messaging.namemap_reader import PropertyName, lookup_ids
from migrator.stores.pst.messaging.reader import Attachment, MapiMessage

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ICON_REPLIED = 0x105
_ICON_FORWARDED = 0x106
_VERB_FLAGS = {
    p.VERB_REPLY_TO_SENDER: Flag.ANSWERED,
    p.VERB_REPLY_TO_ALL: Flag.ANSWERED,
    p.VERB_FORWARD: Flag.FORWARDED,
}
_ICON_FLAGS = {_ICON_REPLIED: Flag.ANSWERED, _ICON_FORWARDED: Flag.FORWARDED}
_FALLBACK_DATES = (
    p.PID_MESSAGE_DELIVERY_TIME,
    p.PID_CLIENT_SUBMIT_TIME,
    p.PID_CREATION_TIME,
    p.PID_LAST_MODIFICATION_TIME,
)


class NamedIds(NamedTuple):
    """The property ids this file gives migrator's named properties and Outlook's Keywords (absent: missing)."""

    migrator: dict[str, int]
    keywords: int | None

    @classmethod
    def from_names(cls, names: dict[int, PropertyName]) -> NamedIds:
        """Return the ids found in a decoded name-to-id map."""
        migrator = lookup_ids(names, p.PS_MIGRATOR, *p.MIGRATOR_NAMED_PROPS)
        keywords = lookup_ids(names, p.PS_PUBLIC_STRINGS, p.KEYWORDS_NAME).get(p.KEYWORDS_NAME)
        return cls(migrator, keywords)


def parse_iso_date(text: str) -> datetime | None:
    """Return the aware datetime of an ISO 8601 string with an offset, or None when it is not one."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def mapi_flags(message_flags: int, flag_status: int, last_verb: int, icon_index: int) -> frozenset[Flag]:
    """Return the system flags Outlook's MAPI properties express."""
    found = set()
    if message_flags & p.MSGFLAG_READ:
        found.add(Flag.SEEN)
    if message_flags & p.MSGFLAG_UNSENT:
        found.add(Flag.DRAFT)
    if flag_status == p.FLAG_STATUS_FOLLOWUP_FLAGGED:
        found.add(Flag.FLAGGED)
    for table, key in ((_VERB_FLAGS, last_verb), (_ICON_FLAGS, icon_index)):
        if key in table:
            found.add(table[key])
    return frozenset(found)


def mapi_date(message: MapiMessage) -> datetime:
    """Return a MAPI message's delivery, submit, creation or modification time (the first present), else 1970."""
    for prop_id in _FALLBACK_DATES:
        value = message.props.get(prop_id)
        if isinstance(value, datetime):
            return value
    return _EPOCH


def canonical_flags(text: str) -> frozenset[Flag]:
    """Return the system flags named in migrator's flags property (unknown names are ignored)."""
    names = {flag.value: flag for flag in Flag}
    return frozenset(names[word] for word in text.split() if word in names)


class MessageMeta:
    """Migrator's view of one MAPI message."""

    def __init__(self, message: MapiMessage, named: NamedIds) -> None:
        self.message = message
        self.named = named

    def _named(self, name: str) -> object:
        prop_id = self.named.migrator.get(name)
        return None if prop_id is None else self.message.props.get(prop_id)

    def raw_mime(self) -> bytes | None:
        """Return the original RFC 5322 bytes migrator stored, or None for messages written by others.

        Raise RebuildError when a skeleton does not give back the message it was made from.
        """
        prop_id = self.named.migrator.get(p.MIGRATOR_RAW)
        raw = None if prop_id is None else self.message.props.raw(prop_id)
        if raw is not None:
            return raw
        prop_id = self.named.migrator.get(p.MIGRATOR_SKELETON)
        kept = None if prop_id is None else self.message.props.raw(prop_id)
        return None if kept is None else rebuild(kept, stored_sources(self.message))

    def size(self) -> int | None:
        """Return the raw message's size when stored, else Outlook's PidTagMessageSize."""
        prop_id = self.named.migrator.get(p.MIGRATOR_RAW)
        if prop_id is not None and prop_id in self.message.props:
            return self.message.props.size(prop_id)
        size = self._named(p.MIGRATOR_SIZE)
        if not isinstance(size, int):
            size = self.message.props.get(p.PID_MESSAGE_SIZE)
        return size if isinstance(size, int) else None

    def received(self) -> datetime:
        """Return the received date: migrator's exact one, else delivery/submit/creation time, else 1970."""
        stored = self._named(p.MIGRATOR_RECEIVED)
        exact = parse_iso_date(stored) if isinstance(stored, str) else None
        return exact or mapi_date(self.message)

    def flags(self) -> Flags:
        """Return the message's flags and keywords."""
        stored = self._named(p.MIGRATOR_FLAGS)
        if isinstance(stored, str):
            return Flags(canonical_flags(stored), frozenset(_strings(self._named(p.MIGRATOR_KEYWORDS))))
        props = self.message.props
        system = mapi_flags(*(_int(props.get(pid)) for pid in (
            p.PID_MESSAGE_FLAGS, p.PID_FLAG_STATUS, p.PID_LAST_VERB_EXECUTED, p.PID_ICON_INDEX)))
        categories = props.get(self.named.keywords) if self.named.keywords is not None else None
        return Flags(system, frozenset(category_keyword(name) for name in _strings(categories)))


def stored_sources(message: MapiMessage) -> Sources:
    """Return the stored values of ``message`` a skeleton refers to: attachments' bytes and the bodies."""
    def attachment(index: int) -> bytes | StreamedBinary | None:
        attachments = message.attachments
        if index >= len(attachments) or attachments[index].method != p.ATTACH_BY_VALUE:
            return None
        return attachment_bytes(attachments[index])

    body = message.props.get(p.PID_BODY)
    html = message.props.raw(p.PID_HTML)
    return Sources(attachment, body if isinstance(body, str) else None, html)


def attachment_bytes(attachment: Attachment) -> bytes | StreamedBinary | None:
    """Return an attachment's bytes; a big one block by block, so that a message rebuilt around it does not
    hold it whole beside itself."""
    props = attachment.props
    if props.prop_type(p.PID_ATTACH_DATA) != pt.PT_BINARY:
        return None
    hnid = props.hnid(p.PID_ATTACH_DATA)
    if hnid is None or hnid == 0 or ltp_fmt.is_hid(hnid):
        return attachment.data
    node = props.node.subnode(hnid)
    return StreamedBinary(node.data_size(), lambda: node.ndb.data_blocks(node.bid_data))


def category_keyword(category: str) -> str:
    """Return an Outlook category as an IMAP keyword atom ("Green Category" -> "Green_Category")."""
    return "".join("_" if char.isspace() or char in '(){%*"\\]' else char for char in category)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str) and item]
    return []
