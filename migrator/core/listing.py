"""A folder listing held compactly: a run keeps one for each folder it copies, and folders hold 100 000 messages.

A MessageRef with its uid string, size and date is about 200 bytes; here a message takes about 40 bytes in
arrays, and its MessageRef is made again when it is looked at. Numeric uids (IMAP, mbox offsets, PST node ids)
are kept as numbers; a listing with any other uid keeps the uid strings.
"""

from __future__ import annotations

import array
from bisect import bisect_left
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from itertools import compress
from typing import Generic, TypeVar

from migrator.core.message import Flags, MessageRef

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_WALL_CLOCK_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
_SECOND = 1_000_000
_NO_SIZE = -1
_NO_DATE = -(2**63)  # offset markers: no date, and a date without a time zone
_NO_ZONE = _NO_DATE + 1
_MAX_NUMBER = 2**64 - 1


class Listing(Sequence[MessageRef]):
    """The MessageRefs of one folder, in the order given, packed into arrays."""

    def __init__(self, refs: Iterable[MessageRef] = ()) -> None:
        """Pack ``refs``; the MessageRefs themselves are not kept."""
        self._numbers = array.array("Q")
        self._names: list[str] | None = None  # every uid, once one is not a plain number
        self._sizes = array.array("q")
        self._flag_numbers = array.array("I")
        self._flag_sets: Numbering[Flags] = Numbering()
        self._micros = array.array("q")  # the date's wall-clock time, in microseconds from 1970-01-01 00:00
        self._offset_micros = array.array("q")  # its UTC offset
        for ref in refs:
            self.append(ref)

    @classmethod
    def of(cls, refs: Iterable[MessageRef]) -> Listing:
        """Return ``refs`` as a Listing: itself when it is one already."""
        return refs if isinstance(refs, Listing) else cls(refs)

    def append(self, ref: MessageRef) -> None:
        """Add ``ref`` at the end."""
        self.add(ref.uid, ref.flags, ref.size, ref.received)

    def add(self, uid: str, flags: Flags, size: int | None, received: datetime | None) -> None:
        """Add the message a MessageRef of these fields would describe, without making one."""
        self._append_uid(uid)
        self._sizes.append(_NO_SIZE if size is None else size)
        self._flag_numbers.append(self._flag_sets.number(flags))
        if received is None:
            self._micros.append(0)
            self._offset_micros.append(_NO_DATE)
            return
        offset = received.utcoffset()
        self._micros.append((received.replace(tzinfo=timezone.utc) - _EPOCH) // _MICROSECOND)
        self._offset_micros.append(_NO_ZONE if offset is None else offset // _MICROSECOND)

    def where(self, keep: Callable[[MessageRef], bool]) -> Listing:
        """Return a Listing of the refs for which ``keep`` is true, in order: this one when it keeps them all."""
        return self._kept(keep(ref) for ref in self)

    def where_uid(self, keep: Callable[[str], bool]) -> Listing:
        """Return ``where`` for a test of the uid alone, which needs no MessageRef made."""
        return self._kept(keep(uid) for uid in self.uids())

    def total_size(self) -> int:
        """Return the sum of the known sizes."""
        return sum(size for size in self._sizes if size != _NO_SIZE)

    def uids(self) -> Iterator[str]:
        """Yield the uids in order."""
        return iter(self._names) if self._names is not None else map(str, self._numbers)

    def find(self, number: int) -> int | None:
        """Return the position of the uid ``number`` in a listing whose uids ascend, or None when it is not there."""
        return sorted_position(self._numbers, number)

    def uids_ascend(self) -> bool:
        """Return True when the uids are numbers in strictly ascending order."""
        return self._names is None and ascending(self._numbers)

    def __len__(self) -> int:
        return len(self._sizes)

    def __getitem__(self, position: int) -> MessageRef:  # type: ignore[override]  # no slices: nothing asks
        if position < 0:
            position += len(self)
        if not 0 <= position < len(self):
            raise IndexError("listing index out of range")
        return MessageRef(
            self.uid_at(position), self.flags_at(position), self.size_at(position), self._received(position)
        )

    def uid_at(self, position: int) -> str:
        """Return the uid at ``position`` (0 or more) without making its MessageRef."""
        return self._names[position] if self._names is not None else str(self._numbers[position])

    def flags_at(self, position: int) -> Flags:
        """Return the flags at ``position`` (0 or more) without making its MessageRef."""
        return self._flag_sets.values[self._flag_numbers[position]]

    def size_at(self, position: int) -> int | None:
        """Return the size at ``position`` (0 or more) without making its MessageRef."""
        size = self._sizes[position]
        return None if size == _NO_SIZE else size

    def __iter__(self) -> Iterator[MessageRef]:
        return map(self.__getitem__, range(len(self)))

    def _kept(self, decisions: Iterable[bool]) -> Listing:
        # A first copy of a folder keeps every message: sharing the listing saves a second one.
        chosen = bytearray(decisions)
        if all(chosen):
            return self
        kept = Listing()
        for position in compress(range(len(self)), chosen):
            kept._copy_from(self, position)
        return kept

    def _received(self, position: int) -> datetime | None:
        offset = self._offset_micros[position]
        if offset == _NO_DATE:
            return None
        wall_clock = self._micros[position]
        if offset != _NO_ZONE and not offset % _SECOND:
            # Four times as fast as adding a timedelta, for the instants fromtimestamp can take.
            seconds, micros = divmod(wall_clock - offset, _SECOND)
            try:
                moment = datetime.fromtimestamp(seconds, _zone(offset))
                return moment.replace(microsecond=micros) if micros else moment
            except (OverflowError, OSError, ValueError):
                pass
        naive = _WALL_CLOCK_EPOCH + timedelta(microseconds=wall_clock)
        return naive if offset == _NO_ZONE else naive.replace(tzinfo=_zone(offset))

    def _append_uid(self, uid: str) -> None:
        number = plain_number(uid) if self._names is None else None
        if number is not None:
            self._numbers.append(number)
            return
        if self._names is None:
            self._names = list(map(str, self._numbers))
            self._numbers = array.array("Q")
        self._names.append(uid)

    def _copy_from(self, other: Listing, position: int) -> None:
        if other._names is not None:
            self._append_uid(other._names[position])
        elif self._names is None:
            self._numbers.append(other._numbers[position])
        else:
            self._names.append(str(other._numbers[position]))
        self._sizes.append(other._sizes[position])
        self._flag_numbers.append(self._flag_sets.number(other.flags_at(position)))
        self._micros.append(other._micros[position])
        self._offset_micros.append(other._offset_micros[position])


_Value = TypeVar("_Value", bound=Hashable)


class Numbering(Generic[_Value]):
    """Numbers for distinct values, in the order they are first seen: a folder has few distinct sets of flags,
    so a message keeps the number of its set."""

    def __init__(self) -> None:
        self.values: list[_Value] = []
        self._numbers: dict[_Value, int] = {}

    def number(self, value: _Value) -> int:
        """Return the number of ``value``, giving it the next one when it is new."""
        number = self._numbers.get(value)
        if number is None:
            number = self._numbers[value] = len(self.values)
            self.values.append(value)
        return number


def ascending(numbers: Sequence[int]) -> bool:
    """Return True when ``numbers`` strictly ascend."""
    return all(numbers[i] < numbers[i + 1] for i in range(len(numbers) - 1))


def sorted_position(numbers: Sequence[int], number: int) -> int | None:
    """Return where ``number`` is in the ascending ``numbers``, or None when it is not there."""
    index = bisect_left(numbers, number)
    return index if index < len(numbers) and numbers[index] == number else None


def plain_number(uid: str) -> int | None:
    """Return ``uid`` as a number when it fits 64 bits and ``str(number)`` gives it back exactly, else None."""
    if not (0 < len(uid) <= 20 and uid.isascii() and uid.isdigit()) or (uid[0] == "0" and uid != "0"):
        return None
    number = int(uid)
    return number if number <= _MAX_NUMBER else None


@lru_cache(maxsize=256)
def _zone(offset_micros: int) -> timezone:
    return timezone(timedelta(microseconds=offset_micros))
