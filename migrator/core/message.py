"""The canonical message model every store translates to and from."""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import NamedTuple

from migrator.core.contentkey import content_key_from_headers, crlf_size, header_block

FolderPath = tuple[str, ...]
"""A folder as its sequence of Unicode names, outermost first; INBOX is ``("INBOX",)``."""


class Flag(enum.Enum):
    """The system flags every store knows how to keep."""

    SEEN = "seen"
    ANSWERED = "answered"
    FLAGGED = "flagged"
    DELETED = "deleted"
    DRAFT = "draft"
    FORWARDED = "forwarded"


class Flags(NamedTuple):
    """System flags plus free-form keywords (IMAP keywords such as ``$Junk`` or ``work``)."""

    system: frozenset[Flag] = frozenset()
    keywords: frozenset[str] = frozenset()

    @classmethod
    def of(cls, *system: Flag, keywords: tuple[str, ...] | frozenset[str] = ()) -> Flags:
        """Return Flags built from the given system flags and keywords."""
        return cls(frozenset(system), frozenset(keywords))

    def __contains__(self, flag: object) -> bool:
        return flag in self.system

    def __bool__(self) -> bool:
        return bool(self.system or self.keywords)

    def encode(self) -> str:
        """Return the flags as one stable string (system flags as ``\\name``), for the state file."""
        return _encoded(self)

    @classmethod
    def decode(cls, text: str) -> Flags:
        """Return the Flags that ``encode`` wrote as ``text``."""
        words = text.split()
        system = frozenset(Flag(w[1:]) for w in words if w.startswith("\\"))
        return cls(system, frozenset(w for w in words if not w.startswith("\\")))

    def describe(self) -> str:
        """Return a short human-readable listing, system flags first."""
        names = sorted(f.value for f in self.system) + sorted(self.keywords)
        return " ".join(names) if names else "-"


NO_FLAGS = Flags()


@functools.lru_cache(maxsize=1024)
def _encoded(flags: Flags) -> str:
    # Cached: every copied message's flags are encoded for the state file, and a mailbox
    # has few distinct sets of them.
    return " ".join(sorted("\\" + f.value for f in flags.system) + sorted(flags.keywords))


@dataclass(frozen=True)
class Message:
    """One message: raw bytes kept exactly, plus the metadata a mailbox keeps beside them.

    ``uid`` is the store's own identifier of the message inside its folder (an IMAP UID,
    a Maildir unique name, an mbox offset, an EML file name); it is empty for a message
    not yet written anywhere.
    """

    raw: bytes
    flags: Flags = NO_FLAGS
    received: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    folder: FolderPath = ("INBOX",)
    uid: str = ""
    # An IMAP server's RFC822.SIZE: the CRLF size by the protocol's definition, so the
    # key needs no pass over the bytes (counting line endings is a tenth of a copy's CPU).
    reported_crlf_size: int | None = field(default=None, compare=False, repr=False)
    # Gmail's user labels of the message ("Work/Projects"), for a target that keeps them beside the folder it
    # is written to: a PST's categories. Empty for every other source.
    labels: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.received.tzinfo is None:
            raise ValueError("received date must be timezone-aware")

    @property
    def size(self) -> int:
        """Return the size of the raw message in bytes."""
        return len(self.raw)

    @functools.cached_property
    def crlf_size(self) -> int:
        """Return the size the message has with CRLF line endings (what IMAP servers count)."""
        if self.reported_crlf_size is not None:
            return self.reported_crlf_size
        return crlf_size(self.raw)

    @functools.cached_property
    def content_key(self) -> str:
        """Return the message's content key (see contentkey.py), computed once."""
        return content_key_from_headers(header_block(self.raw), self.crlf_size)


class MessageRef(NamedTuple):
    """What a cheap listing of a folder knows about a message, before its body is fetched."""

    uid: str
    flags: Flags = NO_FLAGS
    size: int | None = None
    received: datetime | None = None
