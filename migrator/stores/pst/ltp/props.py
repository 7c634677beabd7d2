"""MAPI property types and tags ([MS-OXCDATA] §2.11.1), and the properties the LTP keeps in table rows."""

from __future__ import annotations

# --- property types (§2.1.1) ----------------------------------------------------------------------------------

PT_SHORT = 0x0002
PT_LONG = 0x0003
PT_FLOAT = 0x0004
PT_DOUBLE = 0x0005
PT_CURRENCY = 0x0006
PT_APPTIME = 0x0007
PT_ERROR = 0x000A
PT_BOOLEAN = 0x000B
PT_OBJECT = 0x000D
PT_LONGLONG = 0x0014
PT_STRING8 = 0x001E
PT_UNICODE = 0x001F
PT_SYSTIME = 0x0040
PT_CLSID = 0x0048
PT_BINARY = 0x0102
MV_FLAG = 0x1000
PT_MV_LONG = MV_FLAG | PT_LONG
PT_MV_UNICODE = MV_FLAG | PT_UNICODE
PT_MV_BINARY = MV_FLAG | PT_BINARY

FIXED_TYPE_SIZES = {
    PT_SHORT: 2, PT_LONG: 4, PT_FLOAT: 4, PT_ERROR: 4, PT_BOOLEAN: 1,
    PT_DOUBLE: 8, PT_CURRENCY: 8, PT_APPTIME: 8, PT_LONGLONG: 8, PT_SYSTIME: 8, PT_CLSID: 16,
}
"""Sizes of the fixed-width types; every other type is variable-size."""


def tag(prop_id: int, prop_type: int) -> int:
    """Return the 32-bit property tag of ``prop_id`` with ``prop_type``."""
    return (prop_id << 16) | prop_type


def tag_id(prop_tag: int) -> int:
    """Return the property id of a tag."""
    return prop_tag >> 16


def tag_type(prop_tag: int) -> int:
    """Return the property type of a tag."""
    return prop_tag & 0xFFFF


# --- the LTP's own table-row properties ([MS-PST] §2.3.4) ----------------------------------------------------

PID_LTP_PARENT_NID = 0x67F1
PID_LTP_ROW_ID = 0x67F2
PID_LTP_ROW_VER = 0x67F3
