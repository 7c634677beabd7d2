"""Folders as stores describe them: a path, a special-use role, and cheap statistics."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from migrator.message import FolderPath


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


@dataclass(frozen=True)
class Folder:
    """A folder of a store; ``role`` is None for ordinary folders."""

    path: FolderPath
    role: Role | None = None
    selectable: bool = True

    @property
    def name(self) -> str:
        """Return the folder's path joined with '/' for display (never for storage)."""
        return "/".join(self.path)


@dataclass(frozen=True)
class FolderStats:
    """Message count and total size of a folder."""

    messages: int
    size: int
