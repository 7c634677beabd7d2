"""The "server limit": one connection, one ``UID FETCH 1:* (BODY.PEEK[] FLAGS INTERNALDATE)`` per folder.

Nothing is kept: literals are read into one reused buffer and dropped. It is the floor
any IMAP client on this machine can reach. Run as
``python -m bench.limit HOST PORT USER CA_FILE OUTPUT`` with the password in
``$BENCH_PASSWORD``; it writes the number of messages fetched per folder as JSON to OUTPUT.
"""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import sys
from typing import BinaryIO

from migrator.stores.foldernames import decode_mutf7

CHUNK = 1 << 20
_LITERAL = re.compile(rb"\{(\d+)\}\r\n$")
_LIST = re.compile(rb'^\* LIST \(([^)]*)\) (?:"(.)"|NIL) (.*)$', re.S)
_FETCH = re.compile(rb"^\* \d+ FETCH ")


class Session:
    """A minimal IMAP session over a buffered TLS stream."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.scratch = bytearray(CHUNK)
        self.tag = 0

    def command(self, text: bytes) -> list[bytes]:
        """Send ``text`` and return its untagged responses (large literals dropped); raise on NO/BAD."""
        self.tag += 1
        tag = b"L%d" % self.tag
        self.stream.write(tag + b" " + text + b"\r\n")
        self.stream.flush()
        responses = []
        while True:
            response = self.read_response()
            if response.startswith(tag + b" "):
                if not response.startswith(tag + b" OK"):
                    raise RuntimeError(response.decode("utf-8", "replace").strip())
                return responses
            responses.append(response)

    def read_response(self) -> bytes:
        """Return one response with small literals inlined and large ones replaced by ``{}``."""
        parts = []
        while True:
            line = self.stream.readline()
            if not line:
                raise ConnectionError("the server closed the connection")
            literal = _LITERAL.search(line)
            if literal is None:
                parts.append(line)
                return b"".join(parts)
            size = int(literal.group(1))
            parts.append(line[: literal.start()])
            parts.append(self.read_literal(size))

    def read_literal(self, size: int) -> bytes:
        """Return a literal of ``size`` bytes quoted, or ``{}`` when it is too large to keep."""
        if size < 4096:
            return b'"' + self.stream.read(size) + b'"'
        view = memoryview(self.scratch)
        while size:
            got = self.stream.readinto(view[: min(size, CHUNK)])
            if not got:
                raise ConnectionError("the server closed the connection inside a literal")
            size -= got
        return b"{}"


def selectable_folders(responses: list[bytes]) -> list[tuple[bytes, str]]:
    """Return (server name, '/'-separated Unicode name) of every selectable folder in LIST responses."""
    folders = []
    for response in responses:
        match = _LIST.match(response.rstrip(b"\r\n"))
        if match is None or re.search(rb"\\Noselect|\\NonExistent", match.group(1), re.I):
            continue
        name = _unquote(match.group(3))
        separator = (match.group(2) or b"/").decode()
        folders.append((name, decode_mutf7(name.decode()).replace(separator, "/")))
    return folders


def _unquote(text: bytes) -> bytes:
    if text.startswith(b'"'):
        return re.sub(rb"\\(.)", rb"\1", text[1:-1])
    return text


def _quote(name: bytes) -> bytes:
    return b'"' + name.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def fetch_everything(session: Session) -> dict[str, int]:
    """Return the number of messages fetched per folder, fetching every folder whole once."""
    counts = {}
    for name, folder in selectable_folders(session.command(b'LIST "" "*"')):
        session.command(b"EXAMINE " + _quote(name))
        responses = session.command(b"UID FETCH 1:* (BODY.PEEK[] FLAGS INTERNALDATE)")
        counts[folder] = sum(1 for r in responses if _FETCH.match(r))
    return counts


def connect(host: str, port: int, ca_file: str) -> BinaryIO:
    """Return a buffered stream over a verified TLS connection with the greeting read."""
    context = ssl.create_default_context(cafile=ca_file)
    raw = socket.create_connection((host, port))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    stream = context.wrap_socket(raw, server_hostname=host).makefile("rwb", buffering=CHUNK)
    stream.readline()
    return stream


def main(argv: list[str]) -> int:
    """Fetch every folder of the account once and write the per-folder counts as JSON."""
    host, port, user, ca_file, output = argv
    session = Session(connect(host, int(port), ca_file))
    session.command(b"LOGIN " + _quote(user.encode()) + b" " + _quote(os.environ["BENCH_PASSWORD"].encode()))
    counts = fetch_everything(session)
    session.command(b"LOGOUT")
    with open(output, "w", encoding="utf-8") as out:
        json.dump(counts, out, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
