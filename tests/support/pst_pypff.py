"""Read a PST with the libpff Python binding (pypff, from libpff-python) into the readers' common description.

pypff walks folders through the hierarchy tables and messages through the contents tables, and reads raw MAPI
properties; pffexport (an older libpff) and readpst walk the node B-tree instead. Property ids are written out
here from [MS-OXPROPS] rather than taken from migrator, so that a wrong id in migrator cannot hide itself.
"""

from __future__ import annotations

import hashlib
import struct
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType

from migrator.core.message import Flag
from tests.support.pst_exports import Export, Exported
from tests.support.tools import unavailable

PID_RECIPIENT_TYPE = 0x0C15
PID_SENDER_EMAIL_ADDRESS = 0x0C1F
PID_MESSAGE_FLAGS = 0x0E07
PID_LAST_VERB_EXECUTED = 0x1081
PID_FLAG_STATUS = 0x1090
PID_DISPLAY_NAME = 0x3001
PID_EMAIL_ADDRESS = 0x3003
PID_ATTACH_FILENAME = 0x3704
PID_ATTACH_METHOD = 0x3705
PID_IPM_SUBTREE_ENTRY_ID = 0x35E0
PID_SMTP_ADDRESS = 0x39FE
PID_SENDER_SMTP_ADDRESS = 0x5D01
STRING_TYPES = (0x001F, 0x001E)
MSGFLAG_READ, MSGFLAG_UNSENT = 0x01, 0x08
FLAG_STATUS_FLAGGED = 2
VERBS = {102: Flag.ANSWERED, 103: Flag.ANSWERED, 104: Flag.FORWARDED}
ATTACH_EMBEDDED_MESSAGE = 5
RECIPIENT_KINDS = {1: "to", 2: "cc", 3: "bcc"}


def pypff_module() -> ModuleType:
    """Return the pypff module; skip the test (fail it under CI) when libpff-python is not installed."""
    try:
        import pypff
    except ImportError:
        unavailable("needs pypff: pip install libpff-python (it is in the test extra)")
    return pypff


def pypff_export(pst: Path) -> Export:
    """Return what pypff reads from ``pst``: every folder below the top of the store and its messages."""
    pst_file = pypff_module().file()
    pst_file.open(str(pst))
    try:
        export: Export = {}
        _walk(_top_of_store(pst_file), (), export)
        return export
    finally:
        pst_file.close()


def _top_of_store(pst_file: object) -> object:
    # The store names its IPM subtree by entry id (whose last 4 bytes are the folder's node id), not by name:
    # Outlook calls it "Top of Personal Folders", "Top of Outlook data file" or a localised name.
    entry_id = _properties(pst_file.message_store)[PID_IPM_SUBTREE_ENTRY_ID].data
    wanted = struct.unpack_from("<I", entry_id, len(entry_id) - 4)[0]
    root = pst_file.get_root_folder()
    for folder in (root.get_sub_folder(i) for i in range(root.number_of_sub_folders)):
        if folder.identifier == wanted:
            return folder
    raise AssertionError(f"pypff finds no folder {wanted:#x}, the IPM subtree the store names")


def _walk(folder: object, path: tuple[str, ...], export: Export) -> None:
    export[path] = [_message(folder.get_sub_message(i)) for i in range(folder.number_of_sub_messages)]
    for child in (folder.get_sub_folder(i) for i in range(folder.number_of_sub_folders)):
        _walk(child, (*path, child.name or ""), export)


def _message(message: object) -> Exported:
    props = _properties(message)
    attachments, embedded = _attachments(message)
    body = message.plain_text_body
    return Exported(
        subject=message.subject or "",
        body=body.decode("utf-8", "replace") if body else "",
        attachments=attachments,
        sender=_text(props, PID_SENDER_SMTP_ADDRESS) or _text(props, PID_SENDER_EMAIL_ADDRESS),
        recipients=_recipients(message),
        sent=_utc(message.client_submit_time),
        received=_utc(message.delivery_time),
        flags=_flags(props),
        embedded=embedded,
    )


def _properties(item: object) -> dict[int, object]:
    """Return the record entries of an item's first record set by property id (the property's tag >> 16)."""
    return _properties_of(item.get_record_set(0)) if item.number_of_record_sets else {}


def _text(props: dict[int, object], prop_id: int) -> str:
    entry = props.get(prop_id)
    return entry.data_as_string or "" if entry is not None and entry.value_type in STRING_TYPES else ""


def _integer(props: dict[int, object], prop_id: int) -> int:
    entry = props.get(prop_id)
    return entry.data_as_integer if entry is not None and entry.value_type == 0x0003 else 0


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(tzinfo=timezone.utc)


def _flags(props: dict[int, object]) -> frozenset[Flag]:
    message_flags = _integer(props, PID_MESSAGE_FLAGS)
    found = {flag for bit, flag in ((MSGFLAG_READ, Flag.SEEN), (MSGFLAG_UNSENT, Flag.DRAFT)) if message_flags & bit}
    if _integer(props, PID_FLAG_STATUS) == FLAG_STATUS_FLAGGED:
        found.add(Flag.FLAGGED)
    verb = VERBS.get(_integer(props, PID_LAST_VERB_EXECUTED))
    return frozenset(found | ({verb} if verb else set()))


def _recipients(message: object) -> tuple[str, ...]:
    table = message.recipients  # one record set per row
    count = 0 if table is None else table.number_of_record_sets
    rows = [_properties_of(table.get_record_set(i)) for i in range(count)]
    found = [f"{RECIPIENT_KINDS.get(_integer(row, PID_RECIPIENT_TYPE), '?')}:"
             f"{_text(row, PID_SMTP_ADDRESS) or _text(row, PID_EMAIL_ADDRESS)}" for row in rows]
    return tuple(sorted(found))


def _properties_of(record_set: object) -> dict[int, object]:
    return {entry.entry_type: entry for entry in record_set.entries}


def _attachments(message: object) -> tuple[dict[str, str], tuple[str, ...]]:
    """Return (file name -> sha256 of the bytes, the display names of attached messages)."""
    files: dict[str, str] = {}
    embedded = []
    for attachment in (message.get_attachment(i) for i in range(message.number_of_attachments)):
        props = _properties(attachment)
        if _integer(props, PID_ATTACH_METHOD) == ATTACH_EMBEDDED_MESSAGE:
            # pypff gives no way into an attached message: its display name (the subject) is what it shows
            embedded.append(_text(props, PID_DISPLAY_NAME))
            continue
        name = attachment.long_filename or _text(props, PID_ATTACH_FILENAME) or _text(props, PID_DISPLAY_NAME)
        data = attachment.read_buffer(attachment.size) if attachment.size else b""
        assert len(data) == attachment.size, f"pypff read {len(data)} of the {attachment.size} bytes of {name}"
        files[name] = hashlib.sha256(data).hexdigest()
    return files, tuple(sorted(embedded))
