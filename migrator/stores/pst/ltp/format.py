"""LTP-level constants and struct layouts ([MS-PST] §2.3): heap-on-node, BTree-on-heap and table contexts."""

from __future__ import annotations

import struct

from migrator.stores.pst.ndb import format as fmt

HN_SIGNATURE = 0xEC
HN_CLIENT_TC = 0x7C  # bTypeTC
HN_CLIENT_BTH = 0xB5  # bTypeBTH
HN_CLIENT_PC = 0xBC  # bTypePC
HNHDR = struct.Struct("<HBBI4s")  # ibHnpm, bSig, bClientSig, hidUserRoot, rgbFillLevel
HNPAGEHDR = struct.Struct("<H")  # ibHnpm
HNBITMAPHDR = struct.Struct("<H64s")  # ibHnpm, rgbFillLevel
HNPAGEMAP_HEADER = struct.Struct("<HH")  # cAlloc, cFree; then cAlloc + 1 WORD offsets
HN_BITMAP_EVERY = 128  # blocks 8, 136, 264, ... start with an HNBITMAPHDR
HN_BITMAP_FIRST = 8
MAX_HEAP_ALLOC = 3580  # largest single heap allocation; bigger values go to a subnode

BTHHEADER = struct.Struct("<BBBBI")  # bType, cbKey, cbEnt, bIdxLevels, hidRoot

TCINFO_HEADER = struct.Struct("<BB4HII4x")  # bType, cCols, rgib[4], hidRowIndex, hnidRows, hidIndex(deprecated)
TCOLDESC = struct.Struct("<IHBB")  # tag, ibData, cbData, iBit
TCI_4B, TCI_2B, TCI_1B, TCI_BM = range(4)


def make_hid(block_index: int, alloc_index: int) -> int:
    """Return the HID of allocation ``alloc_index`` (1-based) in heap block ``block_index``."""
    return (block_index << 16) | (alloc_index << 5)


def hid_parts(hid: int) -> tuple[int, int]:
    """Return (block index, 1-based allocation index) of a HID."""
    return hid >> 16, (hid >> 5) & 0x7FF


def is_hid(hnid: int) -> bool:
    """Return True when an HNID names a heap allocation (not a subnode)."""
    return hnid & 0x1F == fmt.NID_TYPE_HID
