"""Strict checks of a PST's allocation maps ([MS-PST] §2.2.2.7): AMap, PMap, FMap, FPMap and DList pages.

Every 64-byte unit that a page or block occupies must be marked allocated, every marked unit must belong to one,
and the header's free-space totals must equal what the maps say.
"""

from __future__ import annotations

from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb.reader import Ndb, page_trailer
from migrator.stores.pst.ndb.validate import FileData, Findings, NdbFacts

_UNIT = fmt.BLOCK_ALIGN
_UNITS_PER_PAGE = fmt.PAGE_SIZE // _UNIT


def check_geometry(ndb: Ndb, size: int, problems: list[str]) -> int:
    """Check the file is the header area plus whole intervals; return the number of intervals."""
    intervals, rest = divmod(size - fmt.FIRST_AMAP_OFFSET, fmt.AMAP_INTERVAL)
    if size < fmt.FIRST_AMAP_OFFSET + fmt.PAGE_SIZE or rest:
        problems.append(f"file size {size} is not 0x4400 + a whole number of {fmt.AMAP_INTERVAL}-byte intervals")
        intervals += 1 if rest >= fmt.PAGE_SIZE else 0
    last = fmt.interval_offset(intervals - 1) if intervals else 0
    if ndb.header.amap_last != last:
        problems.append(f"header ibAMapLast is {ndb.header.amap_last:#x}, the last AMap is at {last:#x}")
    return intervals


def map_pages(ndb: Ndb, intervals: int) -> list[tuple[int, int]]:
    """Return (offset, page type) of every map page the file must have, in file order."""
    pages = []
    for index in range(intervals):
        start = fmt.interval_offset(index)
        pages.append((start, fmt.PTYPE_AMAP))
        if fmt.has_pmap(index):
            pages.append((start + fmt.PMAP_OFFSET_IN_INTERVAL, fmt.PTYPE_PMAP))
        if fmt.has_fmap(index):
            pages.append((start + fmt.FMAP_OFFSET_IN_INTERVAL, fmt.PTYPE_FMAP))
        if ndb.layout.unicode and fmt.has_fpmap(index):
            pages.append((start + fmt.FMAP_OFFSET_IN_INTERVAL, fmt.PTYPE_FPMAP))
    return pages


def check_map_pages(ndb: Ndb, data: FileData, pages: list[tuple[int, int]], problems: list[str]) -> None:
    """Check each map page's type, BID (its own offset) and CRC."""
    for offset, ptype in pages:
        raw = data[offset:offset + fmt.PAGE_SIZE]
        if len(raw) < fmt.PAGE_SIZE:
            problems.append(f"map page {ptype:#x} at {offset:#x} lies beyond the end of the file")
            continue
        trailer = page_trailer(raw, ndb.layout)
        where = f"map page at {offset:#x}"
        if trailer.ptype != ptype or trailer.ptype_repeat != ptype:
            problems.append(f"{where} has page type {trailer.ptype:#x}, expected {ptype:#x}")
        if trailer.bid != offset:
            problems.append(f"{where} has BID {trailer.bid:#x}, expected its offset")
        computed = fmt.crc32(raw[:ndb.layout.page_data_size])
        if trailer.crc != computed:
            problems.append(f"{where} has CRC {trailer.crc:#010x}, computed {computed:#010x}")


def check_pmap_free(ndb: Ndb, data: FileData, pages: list[tuple[int, int]], problems: list[str]) -> None:
    """Check the header's cbPMapFree = 512 bytes per page the (deprecated) PMaps mark free."""
    start = 0 if ndb.layout.unicode else 4
    free = 0
    for offset, ptype in pages:
        if ptype == fmt.PTYPE_PMAP:
            bits = data[offset + start:offset + start + fmt.PAGE_DATA_SIZE]
            free += len(bits) * 8 - sum(bin(byte).count("1") for byte in bits)
    if ndb.header.pmap_free != free * fmt.PAGE_SIZE:
        problems.append(
            f"header cbPMapFree is {ndb.header.pmap_free}, the PMaps mark {free * fmt.PAGE_SIZE} bytes free"
        )


def check_dlist(ndb: Ndb, data: FileData, problems: list[str]) -> None:
    """Check the density list page at 0x4200 when present (Outlook writes one; it may be absent)."""
    raw = data[fmt.DLIST_OFFSET:fmt.DLIST_OFFSET + fmt.PAGE_SIZE]
    trailer = page_trailer(raw, ndb.layout)
    if trailer.ptype == 0 and not any(raw):
        return
    if trailer.ptype != fmt.PTYPE_DLIST:
        problems.append(f"the density list at 0x4200 has page type {trailer.ptype:#x}")
        return
    if trailer.signature != fmt.signature(fmt.DLIST_OFFSET, trailer.bid):
        problems.append(f"the density list has wSig {trailer.signature:#06x}")
    if trailer.crc != fmt.crc32(raw[:ndb.layout.page_data_size]):
        problems.append("the density list has a wrong CRC")


def check_allocation(ndb: Ndb, data: FileData, facts: NdbFacts, pages: list[tuple[int, int]], intervals: int,
                     problems: Findings) -> None:
    """Check AMap bits against what the file uses, and the header's cbAMapFree."""
    used = _used_units(ndb, facts, pages, intervals, problems)
    free_units = 0
    for index in range(intervals):
        bits = _amap_bits(ndb, data, index)
        marked = int.from_bytes(bits, "big")
        wanted = used[index]
        free_units += len(bits) * 8 - bin(marked).count("1")
        _report_differences(index, marked, wanted, len(bits) * 8, problems)
    if ndb.header.amap_free != free_units * _UNIT:
        problems.append(f"header cbAMapFree is {ndb.header.amap_free}, the AMaps have {free_units * _UNIT} bytes free")


def _amap_bits(ndb: Ndb, data: FileData, index: int) -> bytes:
    start = fmt.interval_offset(index) + (0 if ndb.layout.unicode else 4)  # ANSI AMaps start with dwPadding
    return data[start:start + fmt.PAGE_DATA_SIZE]


def _used_units(ndb: Ndb, facts: NdbFacts, pages: list[tuple[int, int]], intervals: int,
                problems: list[str]) -> list[int]:
    """Return per interval an integer whose bits (MSB = first unit) mark the units in use."""
    used = [0] * intervals
    extents = [(offset, fmt.PAGE_SIZE, f"map page at {offset:#x}") for offset, _ in pages]
    extents += [(ib, fmt.PAGE_SIZE, f"B-tree page at {ib:#x}") for ib in facts.pages]
    extents += [(b.ib, ndb.layout.block_size_on_disk(b.cb), f"block {b.bid:#x}") for b in facts.blocks.values()]
    for start, size, name in extents:
        index, first = divmod(start - fmt.FIRST_AMAP_OFFSET, fmt.AMAP_INTERVAL)
        if not 0 <= index < intervals:
            continue  # misplacement is reported by the page and block checks
        count = (first % _UNIT + size + _UNIT - 1) // _UNIT
        mask = ((1 << count) - 1) << max(fmt.AMAP_BITS - first // _UNIT - count, 0)
        if used[index] & mask:
            problems.append(f"{name} overlaps another page or block")
        used[index] |= mask
    return used


def _report_differences(index: int, marked: int, wanted: int, width: int, problems: Findings) -> None:
    start = fmt.interval_offset(index)
    leaked, unmarked = marked & ~wanted, wanted & ~marked
    if unmarked:  # space in use that the next allocation could overwrite
        problems.append(f"{_units(unmarked, width, start)} are in use but free in the AMap")
    if leaked:  # space nothing uses: wasted, and Outlook's own superseded pages look like this
        problems.leftover(f"{_units(leaked, width, start)} are allocated in the AMap but used by nothing")


def _units(bits: int, width: int, start: int) -> str:
    first = width - bits.bit_length()
    return f"{bin(bits).count('1')} units of 64 bytes (first at {start + first * _UNIT:#x})"
