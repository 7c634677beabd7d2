"""Where in a PST an append may write: the units its allocation maps mark free, and what changed elsewhere."""

from __future__ import annotations

from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb.reader import parse_header


def free_in_maps(data: bytes) -> set[int]:
    """Return the offsets of the 64-byte units the AMaps of the PST ``data`` mark free."""
    free = set()
    for start in range(fmt.FIRST_AMAP_OFFSET, parse_header(data[:fmt.HEADER_SIZE]).file_eof, fmt.AMAP_INTERVAL):
        bits = format(int.from_bytes(data[start:start + fmt.PAGE_DATA_SIZE], "big"), f"0{fmt.AMAP_BITS}b")
        free.update(start + unit * fmt.BLOCK_ALIGN for unit, bit in enumerate(bits) if bit == "0")
    return free


def without_free_space(data: bytes) -> bytes:
    """Return the PST ``data`` with the units its maps mark free zeroed: all that its header and trees can reach."""
    kept = bytearray(data)
    for offset in free_in_maps(data):
        kept[offset:offset + fmt.BLOCK_ALIGN] = bytes(fmt.BLOCK_ALIGN)
    return bytes(kept)


def as_its_maps_see(old: bytes, new: bytes) -> bool:
    """Return True when the PST ``new`` is ``old`` as their header and maps see them: as long, and differing only in
    space the maps mark free (a bool, so that a failed assert does not diff megabytes)."""
    return len(new) == len(old) and without_free_space(new) == without_free_space(old)


def written_below_the_old_end(old: bytes, new: bytes) -> tuple[set[int], set[int]]:
    """Return the 64-byte units below the old end that an append changed, the header and the allocation maps
    aside: (those the old maps marked free, those the old file used)."""
    assert new[fmt.HEADER_SIZE:fmt.FIRST_AMAP_OFFSET] == old[fmt.HEADER_SIZE:fmt.FIRST_AMAP_OFFSET]
    changed = {offset for offset in range(fmt.FIRST_AMAP_OFFSET, len(old), fmt.BLOCK_ALIGN)
               if old[offset:offset + fmt.BLOCK_ALIGN] != new[offset:offset + fmt.BLOCK_ALIGN]
               and not is_map_page(offset)}
    free = free_in_maps(old)
    return changed & free, changed - free


def is_map_page(offset: int) -> bool:
    """Return True when ``offset`` lies in the map pages (AMap, PMap, FMap, FPMap) at the start of an interval."""
    index, within = divmod(offset - fmt.FIRST_AMAP_OFFSET, fmt.AMAP_INTERVAL)
    return within < fmt.reserved_map_bytes(index)
