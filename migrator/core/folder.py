"""Folders as stores describe them: a path, a special-use role, and cheap statistics."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from migrator.core.message import FolderPath


class Role(enum.Enum):
    """Special-use roles (RFC 6154) plus INBOX, which every store has."""

    INBOX = "inbox"
    SENT = "sent"
    DRAFTS = "drafts"
    TRASH = "trash"
    JUNK = "junk"
    ARCHIVE = "archive"
    ALL = "all"
    FLAGGED = "flagged"
    IMPORTANT = "important"  # Gmail's \Important (its own SPECIAL-USE extension)


USUAL_NAMES: dict[Role, tuple[str, ...]] = {
    Role.SENT: ("Sent", "Sent Items", "Sent Messages", "Sent Mail", "INBOX/Sent", "[Gmail]/Sent Mail"),
    Role.DRAFTS: ("Drafts", "Draft", "INBOX/Drafts", "[Gmail]/Drafts"),
    Role.TRASH: ("Trash", "Deleted Items", "Deleted Messages", "INBOX/Trash", "[Gmail]/Trash", "[Gmail]/Bin"),
    Role.JUNK: ("Junk", "Spam", "Junk E-mail", "Junk Email", "Bulk Mail", "INBOX/Junk", "INBOX/Spam", "[Gmail]/Spam"),
    Role.ARCHIVE: ("Archive", "Archives", "INBOX/Archive"),
    Role.ALL: ("All Mail", "[Gmail]/All Mail"),
    Role.FLAGGED: ("Flagged", "Starred", "[Gmail]/Starred"),
}
"""Where stores without special-use attributes keep each role, most common first ('/' between levels)."""

_ROLE_OF_NAME = {name.casefold(): role for role, names in USUAL_NAMES.items() for name in names}


def role_by_name(path: FolderPath) -> Role | None:
    """Return the role a folder's usual name implies (INBOX, "Sent Items", "[Gmail]/Spam"...), or None."""
    name = "/".join(path).casefold()
    if name == "inbox":
        return Role.INBOX
    return _ROLE_OF_NAME.get(name)


class Folder(NamedTuple):
    """A folder of a store; ``role`` is None for ordinary folders.

    ``version`` changes whenever a message arrives, leaves or changes flags (IMAP: UIDVALIDITY,
    UIDNEXT, MESSAGES and HIGHESTMODSEQ); None where a store cannot tell without a scan.
    """

    path: FolderPath
    role: Role | None = None
    selectable: bool = True
    version: str | None = None

    @property
    def name(self) -> str:
        """Return the folder's path joined with '/' for display (never for storage)."""
        return "/".join(self.path)


class FolderIndex:
    """A store's folders by path, as listed once and kept up to date as folders are created.

    Finding a folder costs the same among 5 000 as among 10: listing again after every
    folder created made the copy of each folder cost in proportion to their number.
    """

    def __init__(self, folders: Iterable[Folder]) -> None:
        self._by_path = {folder.path: folder for folder in folders}

    def __iter__(self) -> Iterator[Folder]:
        return iter(self._by_path.values())

    def get(self, path: FolderPath) -> Folder | None:
        """Return the folder at ``path``, or None."""
        return self._by_path.get(path)

    def selectable(self, path: FolderPath) -> bool:
        """Return True when ``path`` is a folder that can hold messages."""
        folder = self._by_path.get(path)
        return folder is not None and folder.selectable

    def created(self, path: FolderPath, *, selectable: bool = True) -> None:
        """Record that ``path`` was created (or found there), a folder without a role."""
        self._by_path[path] = Folder(path, selectable=selectable)


class FolderStats(NamedTuple):
    """Message count and total size of a folder."""

    messages: int
    size: int
