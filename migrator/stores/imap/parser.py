"""Pure parsing of IMAP server responses (RFC 3501 syntax): bytes in, values out.

A response arrives as text segments and literals: every segment but the last ends with a
literal marker ``{n}``, and ``literals[i]`` holds the bytes that followed segment ``i``.
Tokens come out as: atoms and numbers as ``str``, quoted strings and literals as
``bytes``, NIL as ``None``, parenthesised lists as ``list``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import NamedTuple

Value = str | bytes | None | list
STATUS_KINDS = frozenset({"OK", "NO", "BAD", "BYE", "PREAUTH"})

# One token per match, each kind in its own group: "(", ")", a quoted string (its quote,
# then its content, which may be empty), a literal marker (only at the end of a segment),
# an atom. Everything but SP, CTL, "(", ")", '"' and "{" may appear in an atom; "[" opens a
# section (BODY[HEADER.FIELDS (A B)]) that may hold spaces and parentheses up to its "]".
# Anything else takes the rest of the segment as the last group, so that findall, whose
# tuples cost far less than match objects, still sees every byte.
_TOKEN = re.compile(
    rb' *(?:(\()|(\))|(")([^"\\\r\n]*(?:\\.[^"\\\r\n]*)*)"|\{(\d+)\+?\}\Z'
    rb'|((?:[^\x00-\x20\x7f()"{\[]+|\[[^\]]*\])+)|([^ ][\s\S]*))'
)
_QUOTED_ESCAPE = re.compile(rb"\\(.)")
_FETCH_OPENING = re.compile(rb"\* \d+ FETCH \(", re.IGNORECASE)
_LITERAL_MARKER = re.compile(rb"\{(\d+)\+?\}\Z")
_CODE = re.compile(rb"\[([^\]]*)\] ?")
_LIST_HEAD = re.compile(rb'\([^()]*\) +(?:"(?:[^"\\]|\\.)*"|[^ ]+) +')
_NAMED = frozenset({"STATUS", "LIST", "LSUB"})  # responses whose mailbox name a server may send bare
_DATE = re.compile(r"\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)\Z")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBERS = {name.lower(): number for number, name in enumerate(MONTHS, 1)}


class ParseError(ValueError):
    """A server response that does not follow IMAP syntax."""


def literal_size(segment: bytes) -> int | None:
    """Return the size announced by a literal marker ending ``segment``, or None."""
    match = _LITERAL_MARKER.search(segment)
    return int(match.group(1)) if match else None


class Response(NamedTuple):
    """One server response.

    ``tag`` is ``*`` (untagged), ``+`` (continuation) or a command's tag. Status responses
    (OK, NO, BAD, BYE, PREAUTH) carry ``code``/``code_args``/``text``; data responses
    (FETCH, LIST, CAPABILITY...) carry their tokens in ``data``; ``number`` is the
    message number or count of ``* 12 FETCH`` and ``* 3 EXISTS``.
    """

    tag: str
    kind: str = ""
    number: int | None = None
    code: str = ""
    code_args: Sequence[Value] = ()
    text: str = ""
    data: Sequence[Value] = ()

    @property
    def ok(self) -> bool:
        """Return True for an OK status response."""
        return self.kind == "OK"

    def said(self) -> str:
        """Return the server's words as the user should read them: ``[CODE] text``."""
        code = f"[{self.code}] " if self.code else ""
        return (code + self.text).strip() or self.kind


def parse_response(segments: Sequence[bytes], literals: Sequence[bytes]) -> Response:
    """Return the Response made of ``segments`` and ``literals``; raise ParseError."""
    first = segments[0]
    tag, _, rest = first.partition(b" ")
    if not tag:
        raise ParseError(f"response without a tag: {first[:80]!r}")
    if tag == b"+":
        return Response("+", text=_text(rest))
    word, _, rest = rest.partition(b" ")
    number = None
    if word.isdigit():
        number = int(word)
        word, _, rest = rest.partition(b" ")
    kind = word.decode("ascii", "replace").upper()
    if not kind:
        raise ParseError(f"response without a kind: {first[:80]!r}")
    if kind in STATUS_KINDS and len(segments) == 1:
        return _status_response(tag.decode("ascii", "replace"), kind, number, rest)
    if kind in _NAMED and len(segments) == 1:
        return Response(tag.decode("ascii", "replace"), kind, number, data=_named_data(kind, rest))
    start = len(first) - len(rest)
    data = _tokens(segments, literals, start)
    return Response(tag.decode("ascii", "replace"), kind, number, data=data)


def _named_data(kind: str, rest: bytes) -> list:
    """Return the tokens of a STATUS or LIST response, its mailbox name read liberally; raise ParseError.

    Some servers send a name that is neither an atom nor a quoted string nor a literal
    (``* STATUS Family Photos (MESSAGES 3)``): read strictly, the response is either
    unreadable or names another folder. Such a name is taken whole, from where it starts
    up to the list that ends a STATUS response, or to the end of a LIST response.
    """
    try:
        tokens = _tokens([rest], [], 0)
    except ParseError:
        tokens = []
    if _well_formed(kind, tokens):
        return tokens
    if kind == "STATUS":
        return _bare_status(rest)
    return _bare_list(rest)


def _well_formed(kind: str, tokens: list) -> bool:
    if kind == "STATUS":
        return len(tokens) == 2 and not isinstance(tokens[0], list) and isinstance(tokens[1], list)
    extended = len(tokens) == 4 and isinstance(tokens[3], list)  # LIST-EXTENDED data after the name
    return (len(tokens) == 3 or extended) and isinstance(tokens[0], list) and not isinstance(tokens[2], list)


def _bare_status(rest: bytes) -> list:
    """Return [name, items] of a STATUS response whose name is everything before its last list."""
    rest = rest.rstrip(b" ")
    opening = _last_list_start(rest)
    name = rest[:opening].rstrip(b" ") if opening is not None else b""
    if not _bare_name(name):
        raise ParseError(f"STATUS response without a name and a list: {rest[:80]!r}")
    return [name, *_tokens([rest[opening:]], [], 0)]


def _bare_list(rest: bytes) -> list:
    """Return [attributes, separator, name] of a LIST response whose name is everything after its separator."""
    head = _LIST_HEAD.match(rest)
    name = rest[head.end():].rstrip(b" ") if head else b""
    if head is None or not _bare_name(name):
        raise ParseError(f"LIST response without attributes, a separator and a name: {rest[:80]!r}")
    return [*_tokens([head.group(0)], [], 0), name]


def _bare_name(name: bytes) -> bool:
    # One that opens a quoted string is a broken quoted string, not a bare name.
    return bool(name) and not name.startswith(b'"')


def _last_list_start(raw: bytes) -> int | None:
    """Return where the parenthesised list that ends ``raw`` opens, or None when none does."""
    if not raw.endswith(b")"):
        return None
    depth = 0
    for index in range(len(raw) - 1, -1, -1):
        if raw[index] == 0x29:  # ")"
            depth += 1
        elif raw[index] == 0x28:  # "("
            depth -= 1
            if depth == 0:
                return index
    return None


def _status_response(tag: str, kind: str, number: int | None, rest: bytes) -> Response:
    match = _CODE.match(rest)
    if not match:
        return Response(tag, kind, number, text=_text(rest))
    inner = match.group(1)
    name, _, args = inner.partition(b" ")
    code_args = _tokens([args], [], 0) if args else []
    return Response(tag, kind, number, name.decode("ascii", "replace").upper(), code_args, _text(rest[match.end():]))


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").strip()


def _tokens(segments: Sequence[bytes], literals: Sequence[bytes], start: int) -> list:
    """Return the tokens of the response from ``start`` in its first segment; raise ParseError."""
    # The hot loop of every read: kept in one function, since a call per token costs more
    # than the parsing itself.
    stack: list[list] = [[]]
    top = stack[0]
    for index, segment in enumerate(segments):
        for opened, closed, quote, quoted, literal, atom, other in _TOKEN.findall(segment, start if index == 0 else 0):
            if atom:
                text = atom.decode("utf-8", "surrogateescape")
                top.append(None if len(text) == 3 and text.upper() == "NIL" else text)
            elif quote:
                top.append(_QUOTED_ESCAPE.sub(rb"\1", quoted) if b"\\" in quoted else quoted)
            elif opened:
                top = []
                stack.append(top)
            elif closed:
                if len(stack) == 1:
                    raise ParseError("unbalanced ')' in response")
                done = stack.pop()
                top = stack[-1]
                top.append(done)
            elif literal:
                top.append(_literal(literals, index))
            else:
                raise ParseError(f"unexpected {other[:20]!r} in response")
    if len(stack) != 1:
        raise ParseError("unbalanced '(' in response")
    return top


def _literal(literals: Sequence[bytes], index: int) -> bytes:
    if index >= len(literals):
        raise ParseError("literal marker without its literal")
    return literals[index]


def unfinished_fetch_uid(segments: Sequence[bytes]) -> int | None:
    """Return the UID that ``* n FETCH (...`` names before the literal its last segment announces, or None.

    For a response cut short at a literal that is not read: only the outer item list counts.
    """
    opening = _FETCH_OPENING.match(segments[0]) if segments else None
    if opening is None:
        return None
    depth, previous = 1, b""
    for index, segment in enumerate(segments):
        tokens = _TOKEN.findall(segment, opening.end() if index == 0 else 0)
        for opened, closed, _quote, _quoted, _literal, atom, other in tokens:
            if other:
                return None
            if depth == 1 and previous == b"UID" and atom.isdigit():
                return int(atom)
            previous = atom.upper() if depth == 1 else b""
            depth += len(opened) - len(closed)
    return None


# --- typed views of responses -----------------------------------------------------------


def as_text(value: Value) -> str:
    """Return an atom, string or literal as text (undecodable bytes kept as surrogates)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, str):
        return value
    raise ParseError(f"expected a string, got {value!r}")


def as_int(value: Value) -> int:
    """Return a number token as an int; raise ParseError."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise ParseError(f"expected a number, got {value!r}")


def as_list(value: Value) -> list:
    """Return a parenthesised list token; raise ParseError for anything else."""
    if isinstance(value, list):
        return value
    raise ParseError(f"expected a list, got {value!r}")


def pairs(tokens: list) -> dict[str, Value]:
    """Return ``NAME value NAME value...`` as a dict keyed by upper-case name."""
    if len(tokens) % 2:
        raise ParseError("odd number of items in a name/value list")
    return {as_text(tokens[i]).upper(): tokens[i + 1] for i in range(0, len(tokens), 2)}


def fetch_items(response: Response) -> dict[str, Value]:
    """Return the items of ``* n FETCH (...)`` keyed by upper-case item name."""
    if len(response.data) != 1:
        raise ParseError("FETCH response without one item list")
    return pairs(as_list(response.data[0]))


def capabilities(tokens: Sequence[Value]) -> frozenset[str]:
    """Return capability atoms, upper-cased."""
    return frozenset(as_text(t).upper() for t in tokens if t is not None)


class ListEntry(NamedTuple):
    """One ``* LIST`` line: attributes (as sent), hierarchy separator (None if flat), raw name."""

    attributes: frozenset[str]
    separator: str | None
    name: str

    def has(self, attribute: str) -> bool:
        """Return True when the entry carries ``attribute`` (case-insensitive, e.g. ``\\Noselect``)."""
        wanted = attribute.lower()
        return any(a.lower() == wanted for a in self.attributes)


def list_entry(response: Response) -> ListEntry:
    """Return the attributes, separator and name of a LIST response; raise ParseError."""
    if len(response.data) < 3:
        raise ParseError("LIST response with fewer than three items")
    attributes, separator, name = response.data[:3]
    return ListEntry(
        frozenset(as_text(a) for a in as_list(attributes)),
        None if separator is None else as_text(separator),
        as_text(name),
    )


def status_items(response: Response) -> dict[str, int]:
    """Return the numbers of ``* STATUS name (MESSAGES 3 UIDNEXT 9)``."""
    if len(response.data) != 2:
        raise ParseError("STATUS response without a name and one list")
    return {name: as_int(value) for name, value in pairs(as_list(response.data[1])).items()}


def personal_namespace(response: Response) -> tuple[str, str | None] | None:
    """Return the (prefix, separator) of the first personal namespace of a NAMESPACE response."""
    if not response.data or response.data[0] is None:
        return None
    first = as_list(as_list(response.data[0])[0])
    if len(first) < 2:
        raise ParseError("NAMESPACE entry without a prefix and a separator")
    return as_text(first[0]), None if first[1] is None else as_text(first[1])


def appended_uids(response: Response) -> list[int] | None:
    """Return the new uids from ``OK [APPENDUID validity uid-set]``, or None without UIDPLUS."""
    if response.code != "APPENDUID" or len(response.code_args) != 2:
        return None
    return uid_set_members(as_text(response.code_args[1]))


def uid_set_members(text: str) -> list[int]:
    """Return the uids of a UID set such as ``3:5,9`` in the order written; raise ParseError."""
    uids: list[int] = []
    for part in text.split(","):
        low, colon, high = part.partition(":")
        if not low.isdigit() or colon and not high.isdigit():
            raise ParseError(f"not a UID set: {text!r}")
        first, last = sorted((int(low), int(high or low)))
        uids.extend(range(first, last + 1))
    return uids


def flag_names(value: Value) -> tuple[str, ...]:
    """Return the flags of a FLAGS item (or PERMANENTFLAGS code) as strings."""
    return tuple(as_text(flag) for flag in as_list(value))


def internaldate(value: Value) -> datetime:
    """Return an INTERNALDATE (``"17-Jul-1996 02:44:25 -0700"``) as an aware datetime; raise ParseError."""
    match = _DATE.match(as_text(value))
    if not match:
        raise ParseError(f"not an IMAP date-time: {value!r}")
    day, month, year, hour, minute, second, sign, zone_h, zone_m = match.groups()
    month_number = _MONTH_NUMBERS.get(month.lower())
    try:
        zone = _zone(sign, int(zone_h), int(zone_m))
        return datetime(int(year), month_number or 0, int(day), int(hour), int(minute), int(second), tzinfo=zone)
    except ValueError as error:
        raise ParseError(f"not an IMAP date-time: {value!r} ({error})") from None


@lru_cache(maxsize=256)
def _zone(sign: str, hours: int, minutes: int) -> timezone:
    # Shared: a folder listing holds a date per message, and mail comes from few time zones.
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if sign == "-" else offset)
