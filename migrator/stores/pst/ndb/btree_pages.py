"""Building the NBT and BBT bottom-up from their sorted leaf entries (§2.2.2.7.7)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Protocol

from migrator.stores.pst.ndb import format as fmt


class PageSink(Protocol):
    """Where B-tree pages go: anything that can place a page and say where it went."""

    def write_page(self, body: bytes, ptype: int) -> tuple[int, int]:
        """Write a page and return its (bid, ib)."""


def btpage_body(entries: Sequence[bytes], entry_size: int, level: int) -> bytes:
    """Return the 496 bytes of a BTPAGE before its trailer: entries, padding, cEnt, cEntMax, cbEnt, cLevel."""
    packed = b"".join(entries).ljust(fmt.BTPAGE_ENTRIES_SIZE, b"\0")
    capacity = fmt.BTPAGE_ENTRIES_SIZE // entry_size
    return packed + fmt.BTPAGE_META.pack(len(entries), capacity, entry_size, level)


def write_btree(sink: PageSink, leaves: Iterable[tuple[int, bytes]], ptype: int, leaf_size: int) -> tuple[int, int]:
    """Write a B-tree over ``leaves`` (key, packed entry) sorted by key; return the root page's (bid, ib).

    The leaves are consumed as a stream, so only one entry per page is kept for the levels above.
    """
    level = 0
    entries: Iterable[tuple[int, bytes]] = leaves
    entry_size = leaf_size
    while True:
        parents = _write_level(sink, entries, ptype, entry_size, level)
        if len(parents) == 1:
            return parents[0][1]
        if level + 1 >= fmt.MAX_BTREE_LEVELS:
            raise ValueError("B-tree deeper than the format allows")
        entries = [(key, fmt.BTENTRY.pack(key, *ref)) for key, ref in parents]
        entry_size = fmt.BTENTRY.size
        level += 1


def _write_level(
    sink: PageSink, entries: Iterable[tuple[int, bytes]], ptype: int, entry_size: int, level: int
) -> list[tuple[int, tuple[int, int]]]:
    per_page = fmt.BTPAGE_ENTRIES_SIZE // entry_size
    stream = iter(entries)
    parents: list[tuple[int, tuple[int, int]]] = []
    while True:
        group = list(itertools.islice(stream, per_page))
        if not group and parents:
            return parents
        ref = sink.write_page(btpage_body([packed for _, packed in group], entry_size, level), ptype)
        parents.append((group[0][0] if group else 0, ref))
