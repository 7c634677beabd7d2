"""Gmail over IMAP: labels shown as folders, one message under one X-GM-MSGID in all of them.

Gmail (capability X-GM-EXT-1) shows each label as a folder and every message but spam and trash
again in the folder of all mail. Its own folders are known by their SPECIAL-USE attributes, never
by name: the prefix is ``[Gmail]`` or ``[Google Mail]`` and the names are in the account's
language. A store in labels mode names each message by its X-GM-MSGID, the same in every folder
and never renumbered, and lists its labels with it (X-GM-LABELS, in the FETCH of the listing).
Written to, a message goes up once: each further folder is a label added with
``UID STORE +X-GM-LABELS``. Nothing here expunges: in Gmail, removing a message from a label's
folder only removes that label.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from migrator.core.errors import FolderError
from migrator.core.folder import FolderIndex, Role
from migrator.core.listing import Listing
from migrator.core.message import Flag, Flags, FolderPath
from migrator.stores.base import AppendResult, Elsewhere, FolderScan
from migrator.stores.imap.commands import astring, uid_set
from migrator.stores.imap.flags import flags_from_imap
from migrator.stores.imap.parser import Value, as_int, as_list, as_text, flag_names, internaldate
from migrator.stores.imap.reading import fetched
from migrator.stores.imap.session import Session

CAPABILITY = "X-GM-EXT-1"
VALIDITY = "X-GM-MSGID"  # the validity of a folder whose messages are named by X-GM-MSGID: it never changes
_SCAN_ITEMS = b"(UID FLAGS RFC822.SIZE INTERNALDATE X-GM-MSGID X-GM-LABELS)"
_ID_ITEMS = b"(UID X-GM-MSGID)"
STARRED = "\\starred"  # a label that is the \Flagged flag, not a folder
SYSTEM_LABELS = {
    "\\inbox": Role.INBOX,
    "\\sent": Role.SENT,
    "\\draft": Role.DRAFTS,
    "\\important": Role.IMPORTANT,
    "\\trash": Role.TRASH,
    "\\spam": Role.JUNK,
    STARRED: Role.FLAGGED,
}
_LABEL_OF_ROLE = {role: label for label, role in SYSTEM_LABELS.items()}


def is_gmail(capabilities: Iterable[str]) -> bool:
    """Return True when a server's capabilities say it is Gmail."""
    return CAPABILITY in capabilities


class LabelFolders:
    """Where each label of an account shows as a folder, from the account's folder list."""

    def __init__(self, folders: Iterable[tuple[FolderPath, Role | None, str]]) -> None:
        """Take (path, role, server name) of each selectable folder."""
        self._by_role: dict[Role, FolderPath] = {}
        self._by_name: dict[str, FolderPath] = {}
        user_labels = set()
        for path, role, name in folders:
            if role is not None:
                self._by_role.setdefault(role, path)
            elif path != ("INBOX",):
                user_labels.add(path)
            self._by_name[name] = path
        self.user_labels = frozenset(user_labels)  # the folders of the user's own labels
        self._sets: dict[frozenset[FolderPath], frozenset[FolderPath]] = {}

    def path(self, label: str) -> FolderPath | None:
        """Return the folder that shows ``label`` (``\\Inbox``, ``Work/Projects``), or None where none does."""
        if label.startswith("\\"):
            role = SYSTEM_LABELS.get(label.lower())
            return None if role is None or role is Role.FLAGGED else self._by_role.get(role)
        return self._by_name.get(label)

    def paths(self, labels: Iterable[str]) -> frozenset[FolderPath]:
        """Return the folders of ``labels``, one shared set for each distinct set (an account has few)."""
        found = frozenset(path for label in labels if (path := self.path(label)) is not None)
        return self._sets.setdefault(found, found)


class LabelledScan(NamedTuple):
    """A folder listed with each message named by its X-GM-MSGID.

    ``validity`` is the folder's own UIDVALIDITY, which its fetches check; ``uids`` the folder's
    UID of each X-GM-MSGID, which its fetches ask for; ``user_labels`` the folders of the user's
    own labels, whose names a fetched message carries (``Message.labels``).
    """

    scan: FolderScan
    validity: str
    uids: dict[int, int]
    user_labels: frozenset[FolderPath] = frozenset()


def label_names(value: Value) -> tuple[str, ...]:
    """Return the labels of an X-GM-LABELS item (atoms such as ``\\Inbox``, strings for the user's own)."""
    return tuple(as_text(label) for label in as_list(value)) if value is not None else ()


def scan_folder(session: Session, path: FolderPath, folders: LabelFolders) -> LabelledScan:
    """Return the folder's messages by X-GM-MSGID with their flags (starred: flagged) and labels; raise FolderError."""
    box = session.select(path, fresh=True)
    listing = Listing()
    labels: dict[str, frozenset[FolderPath]] = {}
    uids: dict[int, int] = {}
    if box.exists:
        for items in fetched(session, path, b"1:*", _SCAN_ITEMS):
            message_id = as_int(items["X-GM-MSGID"])
            names = label_names(items.get("X-GM-LABELS"))
            flags = flags_from_imap(flag_names(items.get("FLAGS", [])))
            if any(name.lower() == STARRED for name in names):
                flags = starred(flags)
            listing.add(
                str(message_id), flags,
                as_int(items["RFC822.SIZE"]) if "RFC822.SIZE" in items else None,
                internaldate(items["INTERNALDATE"]) if "INTERNALDATE" in items else None,
            )
            labels[str(message_id)] = folders.paths(names)
            uids[message_id] = as_int(items["UID"])
    return LabelledScan(FolderScan(VALIDITY, listing, labels=labels), box.validity, uids, folders.user_labels)


def user_labels(scan: LabelledScan, uid: str) -> frozenset[str]:
    """Return the names of the user's own labels of message ``uid`` (``Work/Projects``), as the scan found them."""
    paths = scan.scan.labels.get(uid, frozenset()) if scan.scan.labels is not None else frozenset()
    return frozenset("/".join(path) for path in paths if path in scan.user_labels)


def starred(flags: Flags) -> Flags:
    """Return ``flags`` with \\Flagged, which is what Gmail's star is."""
    return flags if Flag.FLAGGED in flags else Flags(flags.system | {Flag.FLAGGED}, flags.keywords)


def label_of(path: FolderPath, folders: FolderIndex, session: Session) -> bytes | None:
    """Return the label that puts a message into the folder ``path``, as STORE writes it; None for all mail."""
    folder = folders.get(path)
    role = Role.INBOX if path == ("INBOX",) else (folder.role if folder is not None else None)
    if role is Role.ALL:
        return None  # every message is there already
    if role in _LABEL_OF_ROLE:
        return _LABEL_OF_ROLE[role].title().encode()  # \\Inbox, \\Sent, \\Draft...
    name = astring(session.server_name(path))  # modified UTF-7: printable ASCII, so a quoted string
    if not isinstance(name, bytes):
        raise FolderError(f"cannot name the label of {'/'.join(path)} on {session.where} in a STORE command")
    return name


def add_labels(session: Session, path: FolderPath, copies: Sequence[Elsewhere],
               folders: FolderIndex) -> list[AppendResult]:
    """Show each of ``copies`` in ``path`` too, by adding the folder's label; return one result each, in order.

    One STORE and one FETCH per folder the messages are in, then one FETCH in ``path`` for their
    UIDs there (a SEARCH for any not among the new ones). Adding a label twice does nothing, so
    this can be repeated after a lost connection.
    """
    label = label_of(path, folders, session)
    if label is None and not folders.selectable(path):
        return [AppendResult(copy.message, error=f"no folder {'/'.join(path)} to label") for copy in copies]
    uidnext = session.status(path, b"(UIDNEXT)")["UIDNEXT"]
    results: dict[int, AppendResult] = {}
    message_ids: dict[int, int] = {}  # index in copies -> X-GM-MSGID
    for source, indexes in _by_folder(copies).items():
        uids = {int(copies[i].uid): i for i in indexes}
        session.select(source, write=True)
        if label is not None:
            stored = session.protocol.run(b"UID STORE " + uid_set(uids) + b" +X-GM-LABELS.SILENT (" + label + b")")
            if not stored.result.ok:
                for i in indexes:
                    results[i] = AppendResult(copies[i].message, error=f"the server said {stored.result.said()!r}")
                continue
        for items in fetched(session, source, uid_set(uids), _ID_ITEMS):
            if (index := uids.get(as_int(items["UID"]))) is not None:
                message_ids[index] = as_int(items["X-GM-MSGID"])
    found = _uids_in(session, path, uidnext, set(message_ids.values()))
    for index, message_id in message_ids.items():
        results[index] = AppendResult(copies[index].message, uid=found.get(message_id))
    return [results.get(i) or AppendResult(copy.message, error="the message was not found where it was written")
            for i, copy in enumerate(copies)]


def _by_folder(copies: Sequence[Elsewhere]) -> dict[FolderPath, list[int]]:
    groups: dict[FolderPath, list[int]] = {}
    for index, copy in enumerate(copies):
        groups.setdefault(copy.folder, []).append(index)
    return groups


def _uids_in(session: Session, path: FolderPath, uidnext: int, message_ids: set[int]) -> dict[int, str]:
    """Return the UID in ``path`` of each of ``message_ids``: among those from ``uidnext`` on, else by SEARCH."""
    found: dict[int, str] = {}
    if not message_ids or not session.select(path, fresh=True).exists:
        return found
    for items in fetched(session, path, b"%d:*" % uidnext, _ID_ITEMS):
        message_id = as_int(items["X-GM-MSGID"])
        if message_id in message_ids and as_int(items["UID"]) >= uidnext:
            found[message_id] = str(as_int(items["UID"]))
    for message_id in message_ids - set(found):  # labelled already, before this run knew of it
        reply = session.protocol.run(b"UID SEARCH X-GM-MSGID %d" % message_id)
        numbers = [as_int(n) for response in reply.of_kind("SEARCH") for n in response.data]
        if numbers:
            found[message_id] = str(numbers[0])
    return found
