"""Changing an existing NBT or BBT copy-on-write (§2.6.1 Immutability): only the pages on changed paths are new.

A page that one of the changes reaches is written again at a new place, with its parents up to the root; every
other page stays where it is and is shared by the new tree and the old one, which stays whole until the header
names the new root. The pages replaced are returned, to be freed once the new tree is in use.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb.btree_pages import PageSink, btpage_body
from migrator.stores.pst.ndb.reader import UNICODE, BTPage, Ndb, parse_btpage

Change = tuple[int, bytes | None]
"""(key, packed leaf entry) to insert or replace, or (key, None) to remove."""


@dataclass
class TreeUpdate:
    """One B-tree being changed: where its pages are read, written, and which old ones it left behind."""

    ndb: Ndb
    sink: PageSink
    ptype: int
    leaf_size: int
    replaced: list[int] = field(default_factory=list)  # file offsets of the old pages written anew
    # Pages written by this update that a later one reads again (not yet in the file ``ndb`` maps).
    fresh: dict[int, BTPage] = field(default_factory=dict)

    def _read(self, ref: tuple[int, int]) -> BTPage:
        fresh = self.fresh.get(ref[1])
        return fresh if fresh is not None else self.ndb.page(ref[1], ref[0], self.ptype)

    def _write_page(self, body: bytes) -> tuple[int, int]:
        ref = self.sink.write_page(body, self.ptype)
        self.fresh[ref[1]] = parse_btpage(body + fmt.PAGE_TRAILER.pack(self.ptype, self.ptype, 0, 0, ref[0]), UNICODE)
        return ref

    def apply(self, root: tuple[int, int], changes: Sequence[Change]) -> tuple[int, int]:
        """Return the (bid, ib) of the root of the tree at ``root`` with ``changes`` (sorted by key) made."""
        if not changes:
            return root
        groups = self._page(root, changes)
        level = self._read(root).level
        while len(groups) != 1:
            if not groups:  # every entry removed: an empty leaf is the whole tree
                return self._write_page(btpage_body([], self.leaf_size, 0))
            level += 1
            groups = self._write(groups, fmt.BTENTRY.size, level)
        return groups[0][1]

    def append(self, root: tuple[int, int], leaves: Iterable[tuple[int, bytes]]) -> tuple[int, int]:
        """Return the root of the tree at ``root`` with ``leaves`` added: sorted, and above every key it has.

        Only the rightmost page of each level changes; the leaves are taken as a stream, so a large append
        keeps one entry per new page in memory.
        """
        stream = iter(leaves)
        first = next(stream, None)
        if first is None:
            return root
        spine = []
        ref = root
        while True:
            page = self._read(ref)
            spine.append((page, ref))
            self.replaced.append(ref[1])
            if page.level == 0:
                break
            ref = (page.entries[-1][1], page.entries[-1][2])
        mask = fmt.NID_MASK if self.ptype == fmt.PTYPE_NBT else ~1
        entry = fmt.NBTENTRY if self.ptype == fmt.PTYPE_NBT else fmt.BBTENTRY
        old = [(values[0] & mask, entry.pack(*values[:4])) for values in spine[-1][0].entries]
        groups = self._write_stream(itertools.chain(old, [first], stream), self.leaf_size, 0)
        level = 0
        for page, _ in reversed(spine[:-1]):
            level = page.level
            kept = [(values[0] & mask, fmt.BTENTRY.pack(values[0] & mask, *values[1:3]))
                    for values in page.entries[:-1]]
            above = [(key, fmt.BTENTRY.pack(key, *child)) for key, child in groups]
            groups = self._write(kept + above, fmt.BTENTRY.size, level, packed=True)
        while len(groups) > 1:
            level += 1
            groups = self._write(groups, fmt.BTENTRY.size, level)
        return groups[0][1]

    def _write_stream(self, entries: Iterable[tuple[int, bytes]], size: int,
                      level: int) -> list[tuple[int, tuple[int, int]]]:
        per_page = fmt.BTPAGE_ENTRIES_SIZE // size
        stream = iter(entries)
        written = []
        while group := list(itertools.islice(stream, per_page)):
            written.append((group[0][0], self.sink.write_page(btpage_body([d for _, d in group], size, level),
                                                               self.ptype)))
        return written

    def _page(self, ref: tuple[int, int], changes: Sequence[Change]) -> list[tuple[int, tuple[int, int]]]:
        """Return (first key, ref) of the pages that replace page ``ref`` once ``changes`` are made below it."""
        bid, ib = ref
        page = self._read(ref)
        self.replaced.append(ib)
        mask = fmt.NID_MASK if self.ptype == fmt.PTYPE_NBT else ~1
        if page.level == 0:
            entry = fmt.NBTENTRY if self.ptype == fmt.PTYPE_NBT else fmt.BBTENTRY
            old = [(values[0] & mask, entry.pack(*values[:4])) for values in page.entries]
            return self._write(merge(old, changes), self.leaf_size, 0)
        keys = [values[0] & mask for values in page.entries]
        children: list[tuple[int, tuple[int, int]]] = []
        start = 0
        for index, values in enumerate(page.entries):
            end = len(changes) if index + 1 == len(keys) else bisect_right(changes, keys[index + 1] - 1,
                                                                           key=lambda change: change[0])
            mine = changes[start:end]
            start = end
            child = (values[1], values[2])
            children.extend(self._page(child, mine) if mine else [(keys[index], child)])
        return self._write([(key, fmt.BTENTRY.pack(key, *child)) for key, child in children], fmt.BTENTRY.size,
                           page.level, packed=True)

    def _write(self, entries: Sequence[tuple[int, object]], size: int, level: int,
               packed: bool = False) -> list[tuple[int, tuple[int, int]]]:
        """Write ``entries`` as full pages of ``level``; return (first key, ref) of each."""
        if level and not packed:
            entries = [(key, fmt.BTENTRY.pack(key, *ref)) for key, ref in entries]  # type: ignore[misc]
        per_page = fmt.BTPAGE_ENTRIES_SIZE // size
        written = []
        for first in range(0, len(entries), per_page):
            group = entries[first:first + per_page]
            body = btpage_body([data for _, data in group], size, level)  # type: ignore[misc]
            written.append((group[0][0], self._write_page(body)))
        return written


def merge(old: Sequence[tuple[int, bytes]], changes: Sequence[Change]) -> list[tuple[int, bytes]]:
    """Return the entries ``old`` (sorted by key) with ``changes`` (sorted by key) made."""
    result: list[tuple[int, bytes]] = []
    i = j = 0
    while i < len(old) or j < len(changes):
        if j == len(changes) or (i < len(old) and old[i][0] < changes[j][0]):
            result.append(old[i])
            i += 1
            continue
        key, data = changes[j]
        if i < len(old) and old[i][0] == key:
            i += 1  # replaced or removed
        if data is not None:
            result.append((key, data))
        j += 1
    return result
