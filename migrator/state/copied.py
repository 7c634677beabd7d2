"""What earlier runs copied through one pair, held compactly: a run checks every listed message against it.

An incremental run that finds new mail in a folder asks, for each message the folder lists, whether an
earlier run copied it and with which flags. A dict of the state file's rows took about 400 bytes a
message, 40 MB for a folder of 100 000; numeric uids (IMAP, mbox offsets, PST node ids) are kept here
in sorted arrays, 13 bytes a message. The rest of a row (target uid, content key, time) is read from
the state file when it is needed, which is rarely.
"""

from __future__ import annotations

import array
from collections.abc import Iterable

from migrator.core.listing import Numbering, ascending, plain_number, sorted_position


class CopiedMessages:
    """The source uids recorded for one pair, each with the flags recorded with it."""

    def __init__(self, rows: Iterable[tuple[str, str]] = ()) -> None:
        """Hold ``rows`` of (uid, flags), in any order (ascending numbers cost no sorting)."""
        self._numbers = array.array("Q")  # ascending, once every row is in
        self._flag_numbers = array.array("I")
        self._names: dict[str, int] | None = None  # uid -> flag number, once a uid is not a plain number
        self._flag_texts: Numbering[str] = Numbering()
        for uid, flags in rows:
            self._add(uid, self._flag_texts.number(flags))
        self._sort_numbers()

    def __len__(self) -> int:
        return len(self._names) if self._names is not None else len(self._numbers)

    def __contains__(self, uid: object) -> bool:
        return isinstance(uid, str) and self._recorded(uid) is not None

    def flags(self, uid: str) -> str | None:
        """Return the flags recorded for ``uid`` (as the state file writes them), or None when it was not copied."""
        number = self._recorded(uid)
        return None if number is None else self._flag_texts.values[number]

    def _recorded(self, uid: str) -> int | None:
        """Return the number of the flags recorded for ``uid``, or None."""
        if self._names is not None:
            return self._names.get(uid)
        number = plain_number(uid)
        if number is None:
            return None
        index = sorted_position(self._numbers, number)
        return None if index is None else self._flag_numbers[index]

    def _add(self, uid: str, flag_number: int) -> None:
        number = plain_number(uid) if self._names is None else None
        if number is not None:
            self._numbers.append(number)
            self._flag_numbers.append(flag_number)
            return
        if self._names is None:
            self._names = dict(zip(map(str, self._numbers), self._flag_numbers))
            self._numbers, self._flag_numbers = array.array("Q"), array.array("I")
        self._names[uid] = flag_number

    def _sort_numbers(self) -> None:
        numbers = self._numbers
        if ascending(numbers):
            return
        order = sorted(range(len(numbers)), key=numbers.__getitem__)
        self._numbers = array.array("Q", (numbers[i] for i in order))
        self._flag_numbers = array.array("I", (self._flag_numbers[i] for i in order))
