"""Which messages of a folder a run copies (profile ``filters``: since, before, size, unseen)."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from migrator.core.message import Flag, Flags


class MessageFilter(NamedTuple):
    """Limits on received date, size and flags; the default accepts every message."""

    since: datetime | None = None
    before: datetime | None = None
    max_size: int | None = None
    unseen_only: bool = False

    @property
    def is_open(self) -> bool:
        """Return True when the filter accepts every message."""
        return self == MessageFilter()

    @property
    def key(self) -> str:
        """Return the filter as text that differs between any two filters: empty when it accepts every message."""
        if self.is_open:
            return ""
        dates = (f"{name}={value.isoformat()}" for name, value in (("since", self.since), ("before", self.before))
                 if value is not None)
        size = [f"max_size={self.max_size}"] if self.max_size is not None else []
        return ",".join([*dates, *size, *(["unseen"] if self.unseen_only else [])])

    @property
    def empty_window(self) -> bool:
        """Return True when ``before`` is not later than ``since``: no message can pass."""
        return self.since is not None and self.before is not None and self.since >= self.before

    def accepts(self, flags: Flags, size: int | None, received: datetime | None) -> bool:
        """Return False when what is known already excludes the message (unknowns pass)."""
        if self.unseen_only and Flag.SEEN in flags:
            return False
        if self.max_size is not None and size is not None and size > self.max_size:
            return False
        if received is not None:
            if self.since is not None and received < self.since:
                return False
            if self.before is not None and received >= self.before:
                return False
        return True
