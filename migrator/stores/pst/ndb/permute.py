"""The NDB_CRYPT_PERMUTE ("compressible encryption") byte substitution of [MS-PST] §5.1.

Outlook's default: every byte of an external data block is replaced through a fixed 256-byte table.
"""

from __future__ import annotations

_ENCODE_TABLE = bytes.fromhex(
    "41361362a8216ebbf416cc047f64e85d"
    "1ef2cb2a74c55e35d295479e962d9a88"
    "4c7d843fdbac31b6485ff6c4d8398be7"
    "233b388ec8c1df25b120a546604e9cfb"
    "aad35651457c550007c92b9d859b09a0"
    "8fadb30f63ab894bd7a7155a716642bf"
    "264a6b98faea7753b270052cfd593a86"
    "7ece06eb827857c78d43afb41cd45bcd"
    "e2e9274fc3087280cfb0eff5286dbe30"
    "4d3492d50e3c2232e5e4f99fc2d10a81"
    "12e1ee918376e397e6618a1779a4b7dc"
    "907a5c8c02a6ca69de501a1193b95287"
    "58fced1d37491b6ae0293399bd6cd994"
    "f340546ff0c673b8d63e6518441fdd67"
    "10f10c19ecae03a1147ba90bfff8a3c0"
    "a201f72ebc2468750dfeba2fb5d0da3d"
)
"""mpbbR: the byte that each byte value becomes when encoded."""

_DECODE_TABLE = bytes(_ENCODE_TABLE.index(value) for value in range(256))
"""mpbbI: the inverse of the encode table."""


def encode(data: bytes | bytearray | memoryview) -> bytes:
    """Return ``data`` permute-encoded, as stored in a bCryptMethod 1 file."""
    return bytes(data).translate(_ENCODE_TABLE)


def decode(data: bytes | bytearray | memoryview) -> bytes:
    """Return the plain bytes of permute-encoded ``data``."""
    return bytes(data).translate(_DECODE_TABLE)
