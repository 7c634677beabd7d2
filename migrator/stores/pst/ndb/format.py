"""NDB-level constants and struct layouts of Unicode PST files ([MS-PST] §2.2) and of the ANSI header where it
differs: shared by the writer, the reader and the validator."""

from __future__ import annotations

import struct
import zlib

# --- header (§2.2.2.6) ---------------------------------------------------------------------------------------

MAGIC = b"!BDN"
MAGIC_CLIENT_PST = b"SM"
VERSION_UNICODE = 23
VERSIONS_UNICODE = (21, 23)  # 21 is accepted by libpff as Unicode too
VERSIONS_ANSI = (14, 15)
VERSION_4K_PAGES = 36  # from this wVer on, the 4 KB-page format of Outlook's OST files
VERSION_CLIENT = 19
HEADER_SIZE = 564
CRC_PARTIAL_RANGE = (8, 8 + 471)  # dwCRCPartial covers these header bytes
CRC_FULL_RANGE = (8, 8 + 516)  # dwCRCFull covers these header bytes
SENTINEL = 0x80

CRYPT_NONE = 0
CRYPT_PERMUTE = 1
CRYPT_CYCLIC = 2

FILL_LEVEL_FULL = 0xFF  # value of every rgbFM/rgbFP byte in a new file

# Byte offsets of the Unicode header fields.
HDR_MAGIC = 0
HDR_CRC_PARTIAL = 4
HDR_MAGIC_CLIENT = 8
HDR_VER = 10
HDR_VER_CLIENT = 12
HDR_PLATFORM_CREATE = 14
HDR_PLATFORM_ACCESS = 15
HDR_BID_NEXT_P = 32
HDR_UNIQUE = 40
HDR_RGNID = 44
HDR_ROOT = 180
HDR_RGBFM = 256
HDR_RGBFP = 384
HDR_SENTINEL = 512
HDR_CRYPT = 513
HDR_BID_NEXT_B = 516
HDR_CRC_FULL = 524

# Byte offsets of the ANSI header fields that differ from the Unicode ones (the first 24 bytes are the same).
ANSI_HDR_BID_NEXT_B = 24
ANSI_HDR_BID_NEXT_P = 28
ANSI_HDR_RGNID = 36
ANSI_HDR_ROOT = 164
ANSI_HDR_SENTINEL = 460
ANSI_HDR_CRYPT = 461

RGNID_COUNT = 32
FILL_MAP_SIZE = 128  # bytes of rgbFM and of rgbFP
ROOT_STRUCT = struct.Struct("<IQQQQQQQQBBH")
"""ROOT: dwReserved, ibFileEof, ibAMapLast, cbAMapFree, cbPMapFree, BREF NBT (bid, ib), BREF BBT (bid, ib),
fAMapValid, bReserved, wReserved."""
ANSI_ROOT_STRUCT = struct.Struct("<IIIIIIIIIBBH")
"""The ANSI ROOT: the same fields, with 4-byte file offsets, sizes and BIDs."""
AMAP_VALID = 2
AMAP_INVALID = 0  # the maps cannot be trusted: a change to them was under way (§2.6.1.3.7)
ROOT_AMAP_VALID = 68  # offset of fAMapValid in the Unicode ROOT

# --- file geometry (§2.2.2.7) --------------------------------------------------------------------------------

PAGE_SIZE = 512
BLOCK_ALIGN = 64
DLIST_OFFSET = 0x4200
FIRST_AMAP_OFFSET = 0x4400
AMAP_INTERVAL = 253_952  # bytes covered by one AMap page: 3 968 units of 64 bytes
AMAP_BITS = 496 * 8  # allocation units per interval
PMAP_EVERY = 8  # a PMap follows the AMap in every 8th interval
FMAP_FIRST = 128  # first interval holding an FMap (the header's rgbFM covers the first 128 AMaps)
FMAP_EVERY = 496  # then one FMap every 496 intervals
FPMAP_FIRST = 8192  # first interval holding an FPMap (the header's rgbFP covers the first 8 192 PMaps)
FPMAP_EVERY = 496 * 8 * 8  # then one FPMap every 31 744 intervals
PMAP_OFFSET_IN_INTERVAL = 512
FMAP_OFFSET_IN_INTERVAL = 1024  # FMap and FPMap sit at the same place; their intervals never coincide

# --- pages (§2.2.2.7) -----------------------------------------------------------------------------------------

PTYPE_BBT = 0x80
PTYPE_NBT = 0x81
PTYPE_FMAP = 0x82
PTYPE_PMAP = 0x83
PTYPE_AMAP = 0x84
PTYPE_FPMAP = 0x85
PTYPE_DLIST = 0x86

PAGE_DATA_SIZE = 496  # bytes of a page before its trailer
PAGE_TRAILER = struct.Struct("<BBHIQ")  # ptype, ptypeRepeat, wSig, dwCRC, bid
BTPAGE_ENTRIES_SIZE = 488
BTPAGE_META = struct.Struct("<BBBB4x")  # cEnt, cEntMax, cbEnt, cLevel, dwPadding
BTENTRY = struct.Struct("<QQQ")  # intermediate entry: btkey, BREF (bid, ib)
BBTENTRY = struct.Struct("<QQHH4x")  # leaf of the BBT: BREF (bid, ib), cb, cRef, dwPadding
NBTENTRY = struct.Struct("<QQQI4x")  # leaf of the NBT: nid (8 bytes), bidData, bidSub, nidParent, dwPadding
MAX_BTREE_LEVELS = 8

DLIST_HEADER = struct.Struct("<BBHI")  # bFlags, cEntDList, wPadding, ulCurrentPage; then DLISTPAGEENTs
DLIST_ENTRY = struct.Struct("<I")  # dwPageNum (20 bits) | dwFreeSlots (12 bits)

# --- blocks (§2.2.2.8) ----------------------------------------------------------------------------------------

BLOCK_TRAILER = struct.Struct("<HHIQ")  # cb, wSig, dwCRC, bid
MAX_BLOCK_SIZE = 8192
MAX_BLOCK_PAYLOAD = MAX_BLOCK_SIZE - BLOCK_TRAILER.size  # 8 176

BTYPE_XBLOCK = 0x01  # XBLOCK and XXBLOCK share the type; cLevel tells them apart
BTYPE_SLBLOCK = 0x02  # SLBLOCK and SIBLOCK share the type; cLevel tells them apart
XBLOCK_HEADER = struct.Struct("<BBHI")  # btype, cLevel, cEnt, lcbTotal
SLBLOCK_HEADER = struct.Struct("<BBH4x")  # btype, cLevel, cEnt, dwPadding
SLENTRY = struct.Struct("<QQQ")  # nid (8 bytes), bidData, bidSub
SIENTRY = struct.Struct("<QQ")  # nid (8 bytes), bid of an SLBLOCK
MAX_XBLOCK_ENTRIES = (MAX_BLOCK_PAYLOAD - XBLOCK_HEADER.size) // 8  # 1 021
MAX_SLBLOCK_ENTRIES = (MAX_BLOCK_PAYLOAD - SLBLOCK_HEADER.size) // SLENTRY.size  # 340
MAX_SIBLOCK_ENTRIES = (MAX_BLOCK_PAYLOAD - SLBLOCK_HEADER.size) // SIENTRY.size  # 510

# --- identifiers (§2.2.2.1, §2.2.2.2) -------------------------------------------------------------------------

BID_INTERNAL = 0x2  # bit set on BIDs of XBLOCK/XXBLOCK/SLBLOCK/SIBLOCK
BID_STEP = 4  # block BIDs advance by 4; bit 0 is reserved
FIRST_BLOCK_BID = 4

NID_TYPE_HID = 0x00
NID_TYPE_INTERNAL = 0x01
NID_TYPE_NORMAL_FOLDER = 0x02
NID_TYPE_SEARCH_FOLDER = 0x03
NID_TYPE_NORMAL_MESSAGE = 0x04
NID_TYPE_ATTACHMENT = 0x05
NID_TYPE_SEARCH_UPDATE_QUEUE = 0x06
NID_TYPE_SEARCH_CRITERIA_OBJECT = 0x07
NID_TYPE_ASSOC_MESSAGE = 0x08
NID_TYPE_CONTENTS_TABLE_INDEX = 0x0A
NID_TYPE_RECEIVE_FOLDER_TABLE = 0x0B
NID_TYPE_OUTGOING_QUEUE_TABLE = 0x0C
NID_TYPE_HIERARCHY_TABLE = 0x0D
NID_TYPE_CONTENTS_TABLE = 0x0E
NID_TYPE_ASSOC_CONTENTS_TABLE = 0x0F
NID_TYPE_SEARCH_CONTENTS_TABLE = 0x10
NID_TYPE_ATTACHMENT_TABLE = 0x11
NID_TYPE_RECIPIENT_TABLE = 0x12
NID_TYPE_SEARCH_TABLE_INDEX = 0x13
NID_TYPE_LTP = 0x1F

NID_MASK = 0xFFFFFFFF  # readers mask the upper half of 8-byte NID fields (Outlook leaves junk there)


def make_nid(nid_type: int, index: int) -> int:
    """Return the NID with the given type and index."""
    return (index << 5) | nid_type


def nid_type(nid: int) -> int:
    """Return the type bits of a NID."""
    return nid & 0x1F


def nid_index(nid: int) -> int:
    """Return the index part of a NID."""
    return (nid & NID_MASK) >> 5


# --- CRC and signatures (§5.3, §5.5) --------------------------------------------------------------------------


def crc32(data: bytes | bytearray | memoryview) -> int:
    """Return the CRC-32 of ``data`` as MS-PST defines it (initial value 0, no final inversion)."""
    return zlib.crc32(data, 0xFFFFFFFF) ^ 0xFFFFFFFF


def signature(ib: int, bid: int) -> int:
    """Return the 16-bit wSig of a page or block at file offset ``ib`` with id ``bid``."""
    value = (ib ^ bid) & 0xFFFFFFFF
    return (value >> 16) ^ (value & 0xFFFF)


def block_size_on_disk(payload_size: int) -> int:
    """Return the bytes a block with ``payload_size`` bytes occupies: payload + trailer, rounded to 64."""
    total = payload_size + BLOCK_TRAILER.size
    return (total + BLOCK_ALIGN - 1) // BLOCK_ALIGN * BLOCK_ALIGN


def interval_offset(index: int) -> int:
    """Return the file offset of AMap interval ``index``."""
    return FIRST_AMAP_OFFSET + index * AMAP_INTERVAL


def has_pmap(index: int) -> bool:
    """Return True when AMap interval ``index`` holds a PMap page."""
    return index % PMAP_EVERY == 0


def has_fmap(index: int) -> bool:
    """Return True when AMap interval ``index`` holds an FMap page."""
    return index >= FMAP_FIRST and (index - FMAP_FIRST) % FMAP_EVERY == 0


def has_fpmap(index: int) -> bool:
    """Return True when AMap interval ``index`` holds an FPMap page."""
    return index >= FPMAP_FIRST and (index - FPMAP_FIRST) % FPMAP_EVERY == 0


def reserved_map_bytes(index: int) -> int:
    """Return how many bytes at the start of interval ``index`` the map pages occupy."""
    if has_fmap(index) or has_fpmap(index):
        return 3 * PAGE_SIZE
    if has_pmap(index):
        return 2 * PAGE_SIZE
    return PAGE_SIZE
