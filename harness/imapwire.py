"""Small IMAP wire helpers for the test side, kept apart from migrator's own codecs on purpose.

They let the harness seed and read a server independently of the code under test:
modified UTF-7 (RFC 3501 section 5.1.3), quoted strings, LIST and FETCH response parsing,
INTERNALDATE text, and the client commands recorded in a Dovecot rawlog ``*.in`` file
(Dovecot 2.3 puts a ``seconds.micros `` time stamp before every line it records).
"""

from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta, timezone

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def mutf7_encode(name: str) -> str:
    """Return ``name`` in IMAP modified UTF-7."""
    return re.sub(r"[^\x20-\x25\x27-\x7e]+|&", _encode_run, name)


def _encode_run(match: re.Match[str]) -> str:
    run = match.group()
    if run == "&":
        return "&-"
    encoded = base64.b64encode(run.encode("utf-16-be"), altchars=b"+,").rstrip(b"=")
    return "&" + encoded.decode("ascii") + "-"


def mutf7_decode(name: str) -> str:
    """Return the Unicode text of modified UTF-7 ``name``."""
    return re.sub(r"&([A-Za-z0-9+,]*)-", _decode_run, name)


def _decode_run(match: re.Match[str]) -> str:
    run = match.group(1)
    if not run:
        return "&"
    padded = run + "=" * (-len(run) % 4)
    return base64.b64decode(padded, altchars=b"+,").decode("utf-16-be")


def quote(text: str) -> str:
    """Return ``text`` as an IMAP quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mailbox_name(folder: tuple[str, ...], separator: str) -> str:
    """Return the quoted wire name of a folder path, joined with the server's ``separator``."""
    return quote(separator.join(mutf7_encode(part) for part in folder))


_LIST_LINE = re.compile(rb'\((?P<attrs>[^)]*)\) (?:"(?P<sep>[^"]*)"|NIL) (?P<name>.*)')


def parse_list_line(line: bytes) -> tuple[frozenset[str], str, str]:
    """Return (attributes, separator, decoded wire name) of one LIST response line; raise ValueError."""
    match = _LIST_LINE.fullmatch(line)
    if not match:
        raise ValueError(f"cannot parse LIST line {line!r}")
    attributes = frozenset(match["attrs"].decode().split())
    separator = (match["sep"] or b"").decode().replace("\\\\", "\\")
    name = match["name"].decode()
    if name.startswith('"'):
        name = re.sub(r"\\(.)", r"\1", name[1:-1])
    return attributes, separator, mutf7_decode(name)


def format_internaldate(moment: datetime) -> str:
    """Return an aware datetime as a quoted IMAP date-time, keeping its own UTC offset."""
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    month = _MONTHS[moment.month - 1]
    return f'"{moment.day:02d}-{month}-{moment.year:04d} {moment:%H:%M:%S} {sign}{hours:02d}{mins:02d}"'


_INTERNALDATE = re.compile(
    r" ?(\d{1,2})-([A-Z][a-z]{2})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)")


def parse_internaldate(text: str) -> datetime:
    """Return the aware datetime of an IMAP date-time (without quotes); raise ValueError."""
    match = _INTERNALDATE.fullmatch(text)
    if not match:
        raise ValueError(f"cannot parse INTERNALDATE {text!r}")
    day, month, year, hour, minute, second, sign, off_h, off_m = match.groups()
    offset = timedelta(hours=int(off_h), minutes=int(off_m)) * (-1 if sign == "-" else 1)
    return datetime(int(year), _MONTHS.index(month) + 1, int(day), int(hour), int(minute),
                    int(second), tzinfo=timezone(offset))


_FETCH_UID = re.compile(rb"\bUID (\d+)")
_FETCH_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")
_FETCH_DATE = re.compile(rb'\bINTERNALDATE "([^"]+)"')


def parse_fetch(data: list) -> list[tuple[int, bytes, frozenset[str], datetime]]:
    """Return (uid, body, flags, internaldate) per message of imaplib's UID FETCH response data.

    Expects ``BODY.PEEK[] FLAGS INTERNALDATE`` (and UID) items; ``\\Recent`` is left out
    because it describes the session, not the message.
    """
    messages = []
    for index, item in enumerate(data):
        if not isinstance(item, tuple):
            continue
        following = data[index + 1] if index + 1 < len(data) else b""
        trailer = following if isinstance(following, bytes) else b""
        messages.append(_fetched_message(item[0] + b" " + trailer, item[1]))
    return messages


def _fetched_message(meta: bytes, body: bytes) -> tuple[int, bytes, frozenset[str], datetime]:
    uid, flags, date = (_FETCH_UID.search(meta), _FETCH_FLAGS.search(meta), _FETCH_DATE.search(meta))
    if not (uid and flags and date):
        raise ValueError(f"FETCH response lacks UID, FLAGS or INTERNALDATE: {meta!r}")
    flag_set = frozenset(flags.group(1).decode().split()) - {"\\Recent"}
    return int(uid.group(1)), body, flag_set, parse_internaldate(date.group(1).decode())


_LITERAL_AT_END = re.compile(rb"\{(\d+)\+?\}\r?\n$")
_RAWLOG_STAMP = re.compile(rb"^\d+\.\d+ ", re.MULTILINE)


def rawlog_commands(log: bytes) -> list[str]:
    """Return the client commands of a Dovecot rawlog ``*.in`` file, without tags; literal data is elided."""
    stream = rawlog_stream(log)
    commands: list[str] = []
    parts: list[bytes] = []
    pos = 0
    while pos < len(stream):
        end = stream.find(b"\n", pos)
        end = len(stream) if end < 0 else end + 1
        line = stream[pos:end]
        pos = end
        literal = _LITERAL_AT_END.search(line)
        parts.append(line[: literal.start()] + b"{...}" if literal else line.rstrip(b"\r\n"))
        if literal:
            pos += int(literal.group(1))
            continue
        commands.append(_untagged(b"".join(parts)))
        parts = []
    return [command for command in commands if command]


def rawlog_stream(log: bytes) -> bytes:
    """Return the bytes a rawlog file recorded, without the time stamp Dovecot puts before each line."""
    return _RAWLOG_STAMP.sub(b"", log)


def rawlog_lines(log: bytes) -> list[str]:
    """Return the non-empty lines a rawlog file recorded (POP3 commands, for instance), without time stamps."""
    return [line for line in rawlog_stream(log).decode("utf-8", "replace").splitlines() if line]


def rawlog_started(log: bytes) -> float:
    """Return the Unix time of a rawlog file's first line (0.0 for an empty file)."""
    match = _RAWLOG_STAMP.match(log)
    return float(match.group().decode()) if match else 0.0


def _untagged(line: bytes) -> str:
    _tag, _space, command = line.decode("utf-8", "replace").partition(" ")
    return command
