"""mboxrd quoting: how a line that looks like a message separator is kept inside a message.

mboxrd adds one ``>`` to every line matching ``^>*From `` when writing and removes one when
reading, so any message survives exactly, whatever ``From `` and ``>From `` lines it holds.
(mboxo quotes only ``From `` and cannot be undone exactly; mboxcl2 does not quote at all and
relies on ``Content-Length``.) Lines end at LF; a CR before it is part of the line.

A message without a ``From `` line needs no quoting at all, and most readers (Dovecot, mutt,
Python's mailbox) never undo it: such a message is best stored as it is, ``>From `` lines and
all. Thunderbird undoes mboxrd quoting in the body, so for it every ``>*From `` line is quoted.
"""

from __future__ import annotations

import re

_QUOTABLE = re.compile(rb"^(>*From )", re.MULTILINE)
_QUOTED = re.compile(rb"^>(>*From )", re.MULTILINE)
_FROM_LINE = re.compile(rb"^From ", re.MULTILINE)


def quote_mboxrd(raw: bytes) -> bytes:
    """Return ``raw`` with one more ``>`` before every line matching ``^>*From ``."""
    return _QUOTABLE.sub(rb">\1", raw)


def unquote_mboxrd(stored: bytes) -> bytes:
    """Return ``stored`` with one ``>`` taken from every line matching ``^>+From `` (undoes quote_mboxrd)."""
    return _QUOTED.sub(rb"\1", stored)


def quotable_lines(raw: bytes) -> int:
    """Return how many bytes quote_mboxrd adds to ``raw`` (one per line matching ``^>*From ``)."""
    return sum(1 for _ in _QUOTABLE.finditer(raw))


def has_from_line(raw: bytes) -> bool:
    """Return True when a line of ``raw`` starts with ``From `` and would be read as a separator."""
    return _FROM_LINE.search(raw) is not None
