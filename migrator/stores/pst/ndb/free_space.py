"""The space an append may reuse: what the file's allocation maps mark free as committed when the append began.

Nothing the header reaches lies in that space, so an append can write blocks and B-tree pages into it before its
own header exists, and a kill leaves the previous file whole. Space the append itself frees (superseded tables
and pages) is not in it: the old header still reaches that space until the new one is written. The old
intervals' maps are read when needed rather than all at the start: the append writes them only when it commits.

Allocation is first fit in file order. An append's requests come in a stream (a message's blocks, then the
tables, then the B-tree pages), so first fit lays consecutive ones side by side in the earliest hole and touches
few intervals: each interval allocated from has its AMap written again at the commit. Best fit would send each
request to the tightest hole anywhere in the file, scattering a message over intervals for little gain: no
request is over 8 KB, and the holes are mostly whole superseded tables. To find the first interval with room
in O(log n), a tree of maxima holds a bound on each interval's longest free run.

An interval is written into only if, when a request first looks there, it has a free run of 2 KB; then all its
free space may be used. Shorter runs alone are alignment gaps and the ends of filled intervals: filling them too
scattered each night's small blocks over some 300 intervals of a 5 000-message file, against 160 with this rule
and 90 before space was reused (AMaps written a night, in bench.pst_growth's nights), for a file 0.5 MB smaller
after 30 nights.

The runs start as upper bounds, so that an append does not read every AMap of a big file (one random read per
248 KB, on a cold cache): where an FMap covers an interval, the longest run it records (§2.2.2.7.5, kept by this
writer); below the first FMap, as much as any request needs. An interval's AMap is read when a request first
looks there, and its figure is lowered below each request it has no room for. Only the AMap decides what is
free: an FMap that says too little leaves space unused, one that says too much costs a read.
"""

from __future__ import annotations

import array
import os
from typing import BinaryIO

from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb.allocation import bits_text, first_fit, set_bits

_LARGEST = fmt.MAX_BLOCK_SIZE  # no request is larger: the runs are only told apart up to its size
_ALIGNS = (fmt.BLOCK_ALIGN, fmt.PAGE_SIZE)  # blocks are 64-byte aligned, B-tree pages 512-byte aligned
WORTH_A_MAP = 2048 // fmt.BLOCK_ALIGN  # the free run (in units) that makes an interval worth writing into


class FreeSpace:
    """The free units of a file's intervals ``0 .. intervals-1``, handed out first fit; what was taken, kept by
    interval for the commit to write into the AMaps."""

    def __init__(self, file: BinaryIO, intervals: int) -> None:
        """Hand out the free space the maps of ``file`` mark, reading them as requests need them (OSError)."""
        self._fd = file.fileno()
        self.taken: dict[int, bytearray] = {}  # interval -> its AMap bits with what was handed out set
        self._worth: set[int] = set()  # intervals whose AMap was read and has a run of WORTH_A_MAP units
        self._texts: dict[int, bytearray] = {}  # the maps used last as b"0"/b"1" characters, searched in C
        recorded = [units if units >= WORTH_A_MAP else 0 for units in self._recorded_runs(intervals)]
        # Per alignment, an upper bound on each interval's longest run of free aligned slots.
        self._runs = {align: Maxima([min(units * fmt.BLOCK_ALIGN // align, _LARGEST // align) for units in recorded])
                      for align in _ALIGNS}

    def take(self, size: int, align: int) -> int | None:
        """Return the file offset of ``size`` free bytes aligned to ``align`` (64 or 512), now taken; None if no
        interval has room."""
        step = align // fmt.BLOCK_ALIGN
        slots = -(-size // align)
        runs = self._runs[align]
        index = runs.first_at_least(slots)
        while index is not None:
            text = self._text(index)
            if index not in self._worth and not self._is_worth(index, text):
                index = runs.first_at_least(slots)
                continue
            unit = first_fit(text, slots * step, step)
            if unit is not None:
                self._mark(index, unit, slots * step)
                return fmt.interval_offset(index) + unit * fmt.BLOCK_ALIGN
            runs.set(index, slots - 1)  # still an upper bound, and below this request now
            index = runs.first_at_least(slots)
        return None

    def _mark(self, index: int, unit: int, units: int) -> None:
        """Mark ``units`` units from ``unit`` on taken; the interval's runs in the trees stay upper bounds."""
        bitmap = self.taken.get(index)
        if bitmap is None:
            bitmap = self.taken[index] = self._committed(index)
        set_bits(bitmap, unit, units)
        self._texts[index][unit:unit + units] = b"1" * units

    def _is_worth(self, index: int, text: bytearray) -> bool:
        """Return True when interval ``index`` has a run of WORTH_A_MAP units; else take it out of the trees."""
        if first_fit(text, WORTH_A_MAP, 1) is None:
            for runs in self._runs.values():
                runs.set(index, 0)
            return False
        self._worth.add(index)
        return True

    def _recorded_runs(self, intervals: int) -> list[int]:
        """Return, per interval, the longest free run in units its FMap records, or all a request needs if none."""
        runs = [_LARGEST // fmt.BLOCK_ALIGN] * min(intervals, fmt.FMAP_FIRST)
        for fmap in range(fmt.FMAP_FIRST, intervals, fmt.FMAP_EVERY):
            covered = min(fmt.FMAP_EVERY, intervals - fmap)
            runs += os.pread(self._fd, covered, fmt.interval_offset(fmap) + fmt.FMAP_OFFSET_IN_INTERVAL)
        return runs

    def _text(self, index: int) -> bytearray:
        """Return the AMap bits of interval ``index`` as this run sees them (committed, plus what it took) as
        characters; the 64 used last are kept (250 KB), to be searched again without converting."""
        text = self._texts.pop(index, None)
        if text is None:
            bitmap = self.taken.get(index) or self._committed(index)
            text = bytearray(bits_text(bitmap))
            if len(self._texts) >= 64:
                del self._texts[next(iter(self._texts))]
        self._texts[index] = text  # the most recently used last
        return text

    def _committed(self, index: int) -> bytearray:
        bitmap = bytearray(os.pread(self._fd, fmt.PAGE_DATA_SIZE, fmt.interval_offset(index)))
        set_bits(bitmap, 0, fmt.reserved_map_bytes(index) // fmt.BLOCK_ALIGN)  # the map pages, however marked
        return bitmap


class Maxima:
    """Values in a tree of maxima: the first index whose value reaches a bound, in O(log n)."""

    def __init__(self, values: list[int]) -> None:
        self._size = 1
        while self._size < len(values):
            self._size *= 2
        self._tree = array.array("H", bytes(4 * self._size))
        self._tree[self._size:self._size + len(values)] = array.array("H", values)
        for node in range(self._size - 1, 0, -1):
            self._tree[node] = max(self._tree[2 * node], self._tree[2 * node + 1])

    def set(self, index: int, value: int) -> None:
        """Make ``value`` the value at ``index``."""
        tree = self._tree
        node = self._size + index
        tree[node] = value
        while node > 1:
            node //= 2
            highest = max(tree[2 * node], tree[2 * node + 1])
            if tree[node] == highest:
                return  # the maxima above are as they were
            tree[node] = highest

    def first_at_least(self, bound: int) -> int | None:
        """Return the lowest index whose value is at least ``bound``, or None."""
        if self._tree[1] < bound:
            return None
        node = 1
        while node < self._size:
            node = 2 * node if self._tree[2 * node] >= bound else 2 * node + 1
        return node - self._size
