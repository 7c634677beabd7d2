"""Outlook's RTF bodies: LZFu decompression ([MS-OXRTFCP]) and the HTML encapsulated in RTF ([MS-OXRTFEX]).

Pure functions, bytes in and values out. Only used for messages whose only faithful body is PidTagRtfCompressed.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

_PREBUFFER = (
    rb"{\rtf1\ansi\mac\deff0\deftab720{\fonttbl;}{\f0\fnil \froman \fswiss \fmodern \fscript \fdecor MS Sans"
    rb" SerifSymbolArialTimes New RomanCourier{\colortbl\red0\green0\blue0" + b"\r\n" + rb"\par \pard\plain\f0\fs20"
    rb"\b\i\u\tab\tx"
)
"""The dictionary's initial contents: common RTF words the compressor can refer to from the start."""
_HEADER = struct.Struct("<IIII")  # COMPSIZE, RAWSIZE, COMPTYPE, CRC
_COMPRESSED = 0x75465A4C  # "LZFu"
_UNCOMPRESSED = 0x414C454D  # "MELA"
_DICTIONARY_SIZE = 4096


class RtfError(ValueError):
    """The compressed RTF is malformed."""


def decompress_rtf(data: bytes) -> bytes:
    """Return the RTF text of a PidTagRtfCompressed value; raise RtfError if it is malformed."""
    if len(data) < _HEADER.size:
        raise RtfError("compressed RTF is shorter than its header")
    _size, raw_size, kind, _crc = _HEADER.unpack_from(data)
    if kind == _UNCOMPRESSED:
        return data[_HEADER.size:_HEADER.size + raw_size]
    if kind != _COMPRESSED:
        raise RtfError(f"unknown compressed RTF type {kind:#010x}")
    return _inflate(data[_HEADER.size:], raw_size)


def _inflate(stream: bytes, raw_size: int) -> bytes:
    dictionary = bytearray(_PREBUFFER.ljust(_DICTIONARY_SIZE, b"\0"))
    write = len(_PREBUFFER)
    out = bytearray()
    position = 0
    while position < len(stream):
        control = stream[position]
        position += 1
        for bit in range(8):
            if position >= len(stream):
                return bytes(out[:raw_size])
            if not control & (1 << bit):
                literal = stream[position:position + 1]
                position += 1
                out += literal
                dictionary[write] = literal[0]
                write = (write + 1) % _DICTIONARY_SIZE
                continue
            (token,) = struct.unpack_from(">H", stream, position)
            position += 2
            offset, length = token >> 4, (token & 0xF) + 2
            if offset == write:
                return bytes(out[:raw_size])  # the end marker points at the write position
            for _ in range(length):
                byte = dictionary[offset]
                out.append(byte)
                dictionary[write] = byte
                offset, write = (offset + 1) % _DICTIONARY_SIZE, (write + 1) % _DICTIONARY_SIZE
    return bytes(out[:raw_size])


# --- HTML encapsulated in RTF -------------------------------------------------------------------------------

_TOKEN = re.compile(
    rb"\\([a-zA-Z]+)(-?\d+)? ?"  # control word with optional parameter and delimiter space
    rb"|\\'([0-9a-fA-F]{2})"  # hex-escaped byte
    rb"|\\([^a-zA-Z'])"  # control symbol
    rb"|([{}])"
    rb"|[\r\n]+"  # line ends in RTF source are not text
    rb"|([^\\{}\r\n]+)"
)
_SKIPPED_DESTINATIONS = {b"fonttbl", b"colortbl", b"stylesheet", b"info", b"pict", b"object", b"listtable",
                         b"filetbl", b"rsidtbl", b"generator"}
_TEXT_WORDS = {b"par": "\r\n", b"line": "\r\n", b"tab": "\t", b"lquote": "\u2018", b"rquote": "\u2019",
               b"ldblquote": "\u201c", b"rdblquote": "\u201d", b"bullet": "\u2022", b"endash": "\u2013",
               b"emdash": "\u2014", b"emspace": "\u2003", b"enspace": "\u2002"}


@dataclass
class _Group:
    suppressed: bool  # inside \htmlrtf ... \htmlrtf0: RTF-only text that is not part of the HTML
    skipped: bool  # inside a destination that carries no text (font table, pictures, unknown \*)
    unicode_skip: int = 1
    first: bool = True  # no control word seen yet in this group


def html_from_rtf(rtf: bytes) -> str | None:
    """Return the HTML that an RTF body encapsulates (\\fromhtml1), or None when it is ordinary RTF."""
    if b"\\fromhtml1" not in rtf[:1024]:
        return None
    codepage = re.search(rb"\\ansicpg(\d+)", rtf[:1024])
    decoder = _Decoder(f"cp{int(codepage.group(1))}" if codepage else "cp1252")
    stack = [_Group(suppressed=False, skipped=False)]
    for match in _TOKEN.finditer(rtf):
        _step(match, stack, decoder)
    return decoder.text()


def _step(match: re.Match[bytes], stack: list[_Group], decoder: _Decoder) -> None:
    word, parameter, hex_byte, symbol, brace, text = match.groups()
    group = stack[-1]
    if brace == b"{":
        stack.append(_Group(group.suppressed, group.skipped, group.unicode_skip))
    elif brace == b"}":
        if len(stack) > 1:
            stack.pop()
    elif word is not None:
        _control_word(word, int(parameter) if parameter else None, stack, decoder)
        group.first = False
    elif symbol is not None:
        if symbol == b"*" and group.first:
            group.skipped = True  # an optional destination; \*\htmltag re-opens it below
        elif _visible(group):
            decoder.add_text(symbol.decode("latin-1") if symbol in b"\\{}" else _symbol_text(symbol))
    elif hex_byte is not None and _visible(group):
        decoder.add_byte(int(hex_byte, 16))
    elif text is not None and _visible(group):
        decoder.add_bytes(text)


def _visible(group: _Group) -> bool:
    return not group.suppressed and not group.skipped


def _symbol_text(symbol: bytes) -> str:
    return {b"~": "\u00a0", b"_": "\u2011", b"-": ""}.get(symbol, "")


def _control_word(word: bytes, parameter: int | None, stack: list[_Group], decoder: _Decoder) -> None:
    group = stack[-1]
    if word in (b"htmltag", b"mhtmltag"):
        group.skipped = group.suppressed = False  # {\*\htmltag ...}: the group's text is HTML markup
    elif word == b"htmlrtf":
        group.suppressed = parameter != 0
    elif group.first and word in _SKIPPED_DESTINATIONS:
        group.skipped = True
    elif not _visible(group):
        return
    elif word == b"uc" and parameter is not None:
        group.unicode_skip = parameter
    elif word == b"u" and parameter is not None:
        decoder.add_text(chr(parameter + 65536 if parameter < 0 else parameter), skip=group.unicode_skip)
    elif word in _TEXT_WORDS:
        decoder.add_text(_TEXT_WORDS[word])


class _Decoder:
    """Collects output text, decoding runs of 8-bit bytes in the document's code page."""

    def __init__(self, codepage: str) -> None:
        self.codepage = codepage
        self.parts: list[str] = []
        self.pending = bytearray()
        self.skip = 0  # fallback characters still to drop after a \\uN

    def add_byte(self, value: int) -> None:
        """Add one escaped byte (the fallback of a \\uN counts as one character)."""
        if self.skip:
            self.skip -= 1
            return
        self.pending.append(value)

    def add_bytes(self, data: bytes) -> None:
        """Add literal document bytes."""
        while self.skip and data:
            self.skip -= 1
            data = data[1:]
        self.pending += data

    def add_text(self, text: str, skip: int = 0) -> None:
        """Add already-decoded text, then drop ``skip`` fallback characters."""
        self._flush()
        self.parts.append(text)
        self.skip = skip

    def text(self) -> str:
        """Return everything collected."""
        self._flush()
        return "".join(self.parts)

    def _flush(self) -> None:
        if self.pending:
            try:
                self.parts.append(self.pending.decode(self.codepage, errors="replace"))
            except LookupError:
                self.parts.append(self.pending.decode("cp1252", errors="replace"))
            self.pending.clear()
