"""The account behind the Gmail stand-in (harness/gmail.py): messages with labels, and folders as views of them.

Gmail stores each message once, with a set of labels; an IMAP folder is the set of messages
that carry one label, numbered by UIDs of its own. This module holds that model and nothing
of the wire: the server turns commands into calls on it, and tests seed and inspect it directly.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

# Labels as X-GM-LABELS names them. Starred is no label but the \Flagged flag: "\\Starred" stands for it.
INBOX, SENT, DRAFT, IMPORTANT, STARRED, SPAM, TRASH = (
    "\\Inbox", "\\Sent", "\\Draft", "\\Important", "\\Starred", "\\Spam", "\\Trash")
FLAGGED = "\\Flagged"
DELETED = "\\Deleted"
_HIDDEN_BY = (SPAM, TRASH)  # a message with either is in that folder only, out of All Mail and every label


@dataclass(frozen=True)
class SpecialNames:
    """The names of Gmail's own folders, which Gmail localises, under their parent ``prefix``."""

    prefix: str = "[Gmail]"
    all_mail: str = "All Mail"
    drafts: str = "Drafts"
    important: str = "Important"
    sent: str = "Sent Mail"
    spam: str = "Spam"
    starred: str = "Starred"
    trash: str = "Trash"


ENGLISH = SpecialNames()
# The names a German account shows (the prefix of accounts opened where "Gmail" was not the brand).
GERMAN = SpecialNames(prefix="[Google Mail]", all_mail="Alle Nachrichten", drafts="Entwürfe", important="Wichtig",
                      sent="Gesendet", spam="Spam", starred="Markiert", trash="Papierkorb")


@dataclass
class GmailMessage:
    """One stored message: Gmail's 64-bit ids, the bytes, the received date, flags and labels."""

    msgid: int
    thrid: int
    raw: bytes
    date: datetime
    flags: set[str] = field(default_factory=set)
    labels: set[str] = field(default_factory=set)
    modseq: int = 1

    @property
    def hidden(self) -> bool:
        """Return True when the message is in Spam or Trash, and so out of All Mail and every label folder."""
        return any(label in self.labels for label in _HIDDEN_BY)

    def visible_labels(self) -> list[str]:
        """Return the labels X-GM-LABELS shows: system labels first, then the user's, with \\Starred for \\Flagged."""
        labels = set(self.labels) | ({STARRED} if FLAGGED in self.flags else set())
        system = [name for name in (INBOX, SENT, DRAFT, IMPORTANT, STARRED, SPAM, TRASH) if name in labels]
        return system + sorted(label for label in labels if not label.startswith("\\"))


@dataclass
class Folder:
    """An IMAP folder: the messages ``holds`` accepts, each numbered by a UID of this folder.

    ``label`` is what a message gets when it is appended or copied here (None: nothing, as All
    Mail). ``deleted`` holds the messages marked \\Deleted here: Gmail keeps that mark per folder,
    since expunging it removes the message from this folder only.
    """

    name: str
    label: str | None
    holds: Callable[[GmailMessage], bool]
    validity: int
    special_use: str | None = None
    uidnext: int = 1
    uids: dict[int, int] = field(default_factory=dict)  # msgid: uid
    deleted: set[int] = field(default_factory=set)

    def refresh(self, messages: Iterable[GmailMessage]) -> None:
        """Number the messages that came in (in the order given) and forget those that left."""
        present = set()
        for message in messages:
            if self.holds(message):
                present.add(message.msgid)
                if message.msgid not in self.uids:
                    self.renumber(message.msgid)
        for msgid in set(self.uids) - present:
            del self.uids[msgid]
            self.deleted.discard(msgid)

    def renumber(self, msgid: int) -> int:
        """Give the message ``msgid`` the next UID here (a new UID, as Gmail gives a message appended again)."""
        self.uids[msgid] = self.uidnext
        self.uidnext += 1
        self.deleted.discard(msgid)
        return self.uids[msgid]

    def by_uid(self) -> dict[int, int]:
        """Return uid: msgid for the messages here."""
        return {uid: msgid for msgid, uid in self.uids.items()}


class GmailAccount:
    """Messages and folders of one Gmail account; every change goes through here so the folders follow it."""

    def __init__(self, names: SpecialNames = ENGLISH) -> None:
        self.names = names
        self.messages: dict[int, GmailMessage] = {}
        self.folders: dict[str, Folder] = {}
        self.user_labels: set[str] = set()
        self.modseq = 1
        self._validities = itertools.count(1)
        self._msgids = itertools.count(0x17B0_0000_0000_0001)  # 64-bit ids of the size Gmail gives
        self._system_folders()

    # --- folders ----------------------------------------------------------------------

    def _system_folders(self) -> None:
        n = self.names
        self._add_folder("INBOX", INBOX, lambda m: INBOX in m.labels and not m.hidden)
        for name, label, use, holds in (
            (n.all_mail, None, "\\All", lambda m: not m.hidden),
            (n.drafts, DRAFT, "\\Drafts", lambda m: DRAFT in m.labels and not m.hidden),
            (n.important, IMPORTANT, "\\Important", lambda m: IMPORTANT in m.labels and not m.hidden),
            (n.sent, SENT, "\\Sent", lambda m: SENT in m.labels and not m.hidden),
            (n.spam, SPAM, "\\Junk", lambda m: SPAM in m.labels and TRASH not in m.labels),
            (n.starred, STARRED, "\\Flagged", lambda m: FLAGGED in m.flags and not m.hidden),
            (n.trash, TRASH, "\\Trash", lambda m: TRASH in m.labels),
        ):
            self._add_folder(f"{n.prefix}/{name}", label, holds, use)

    def _add_folder(self, name: str, label: str | None, holds: Callable[[GmailMessage], bool],
                    special_use: str | None = None) -> Folder:
        folder = Folder(name, label, holds, next(self._validities), special_use)
        folder.refresh(self.messages.values())
        self.folders[name] = folder
        return folder

    def add_label(self, label: str) -> None:
        """Make the user label ``label`` (and its parents, as Gmail nests labels) with a folder each."""
        parts = label.split("/")
        for depth in range(1, len(parts) + 1):
            name = "/".join(parts[:depth])
            if name not in self.user_labels:
                self.user_labels.add(name)
                self._add_folder(name, name, _labelled(name))

    def remove_label(self, label: str) -> None:
        """Delete the user label ``label`` and its folder; its messages keep their other labels."""
        self.user_labels.discard(label)
        del self.folders[label]
        for message in self.messages.values():
            if label in message.labels:
                self._change(message, labels=message.labels - {label})

    def folder(self, name: str) -> Folder | None:
        """Return the folder ``name`` (INBOX in any case), or None."""
        return self.folders.get("INBOX" if name.upper() == "INBOX" else name)

    # --- messages ---------------------------------------------------------------------

    def add_message(self, raw: bytes, labels: Iterable[str] = (INBOX,), flags: Iterable[str] = (),
                    date: datetime | None = None, thrid: int | None = None) -> int:
        """Store a message with ``labels`` (user labels are made as needed) and return its X-GM-MSGID."""
        msgid = next(self._msgids)
        message = GmailMessage(msgid, thrid or msgid, raw, date or datetime.now(timezone.utc), set(flags))
        self.messages[msgid] = message
        self.set_labels(message, set(labels) | ({STARRED} if FLAGGED in message.flags else set()))
        return msgid

    def find_copy(self, raw: bytes) -> GmailMessage | None:
        """Return the stored message with the same Message-ID and bytes as ``raw``: Gmail keeps such mail once."""
        wanted = message_id(raw)
        if wanted is None:
            return None
        return next((m for m in self.messages.values() if m.raw == raw and message_id(m.raw) == wanted), None)

    def set_flags(self, message: GmailMessage, flags: set[str]) -> None:
        """Replace the message's flags (\\Deleted, which folders keep, is not one)."""
        self._change(message, flags=flags - {DELETED})

    def set_labels(self, message: GmailMessage, labels: set[str]) -> None:
        """Replace the message's labels; \\Starred sets or clears the \\Flagged flag instead."""
        flags = message.flags | {FLAGGED} if STARRED in labels else message.flags - {FLAGGED}
        self._change(message, labels=labels - {STARRED}, flags=flags)

    def file_into(self, message: GmailMessage, folder: Folder) -> None:
        """Give the message the label of ``folder`` (APPEND or COPY there)."""
        if folder.label == STARRED:
            self._change(message, flags=message.flags | {FLAGGED})
        elif folder.label is not None:
            self._change(message, labels=message.labels | {folder.label})

    def expunge(self, folder: Folder, msgids: Iterable[int]) -> None:
        """Expunge ``msgids`` from ``folder`` as Gmail does by default.

        From a label folder only its label goes (the message stays in All Mail and its other
        labels); from All Mail nothing goes, as the default "archive the message" keeps what is
        expunged from its last visible folder; from Spam or Trash the message is deleted for good.
        """
        for msgid in list(msgids):
            message = self.messages[msgid]
            folder.deleted.discard(msgid)
            if folder.label in (SPAM, TRASH):
                del self.messages[msgid]
            elif folder.label == STARRED:
                self._change(message, flags=message.flags - {FLAGGED})
            elif folder.label is not None:
                self._change(message, labels=message.labels - {folder.label})
        self._refresh()

    def _change(self, message: GmailMessage, *, labels: set[str] | None = None, flags: set[str] | None = None) -> None:
        for label in labels or ():
            if not label.startswith("\\"):
                self.add_label(label)
        if labels is not None:
            message.labels = labels
        if flags is not None:
            message.flags = flags
        self.modseq += 1
        message.modseq = self.modseq
        self._refresh()

    def _refresh(self) -> None:
        ordered = sorted(self.messages.values(), key=lambda m: m.msgid)
        for folder in self.folders.values():
            folder.refresh(ordered)

    def contents(self, folder_name: str) -> list[GmailMessage]:
        """Return the messages of a folder in UID order."""
        folder = self.folder(folder_name)
        if folder is None:
            raise KeyError(folder_name)
        return [self.messages[msgid] for _uid, msgid in sorted(folder.by_uid().items())]


def _labelled(label: str) -> Callable[[GmailMessage], bool]:
    """Return the test of a user label's folder: the message has the label and is in neither Spam nor Trash."""
    return lambda message: label in message.labels and not message.hidden


def message_id(raw: bytes) -> bytes | None:
    """Return the Message-ID header's value (stripped) of ``raw``, or None."""
    header = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    for line in header.splitlines():
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() == b"message-id":
            return value.strip()
    return None
