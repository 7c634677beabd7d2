"""A fake IMAP server on a real socket, scripted by the test, for what no real server will do.

Malformed responses, refusals in words no real server uses, flags forgotten on APPEND: each
command is answered by a function of the test's, on a socket migrator connects to as to any server.
The ``fake`` fixture (tests/conftest.py) starts them and closes them after the test.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from typing import BinaryIO

from harness.listener import Listener


class ScriptedServer(Listener):
    """A fake IMAP server on a real socket: each command is answered by ``answer(tag, command)``.

    ``commands`` records what the client sent (literals inline, and each line that answered
    a ``+`` continuation request of the answer).
    """

    def __init__(self, greeting: bytes, answer: Callable[[str, str], list[bytes]]) -> None:
        self.greeting = greeting
        self.answer = answer
        self.commands: list[str] = []
        super().__init__()

    def serve(self, client: socket.socket) -> None:
        with client, client.makefile("rwb") as stream:
            stream.write(self.greeting + b"\r\n")
            stream.flush()
            while command := self._read_command(stream):
                tag, _, text = command.partition(" ")
                self.commands.append(text)
                for line in self.answer(tag, text):
                    stream.write(line.replace(b"{tag}", tag.encode()) + b"\r\n")
                    if line.startswith(b"+"):  # a continuation request: the next line answers it
                        stream.flush()
                        self.commands.append(stream.readline().decode().rstrip("\r\n"))
                stream.flush()
                if text.upper() == "LOGOUT":
                    return

    @staticmethod
    def _read_command(stream: BinaryIO) -> str:
        parts = []
        while line := stream.readline():
            literal = re.search(rb"\{(\d+)(\+?)\}\r\n$", line)
            if not literal:
                parts.append(line.rstrip(b"\r\n"))
                break
            if not literal.group(2):
                stream.write(b"+ go on\r\n")
                stream.flush()
            parts.append(line[: literal.start()] + stream.read(int(literal.group(1))))
        return b"".join(parts).decode("utf-8", "replace")


def usual_answers(capabilities: bytes, **special: Callable[[str], list[bytes]]) -> Callable[[str, str], list[bytes]]:
    """Return an answer function: login and housekeeping as a plain server, ``special`` per command word."""

    def answer(tag: str, text: str) -> list[bytes]:
        word = text.split(" ", 1)[0].upper()
        if word in special:
            return special[word](text)
        if word == "CAPABILITY":
            return [b"* CAPABILITY " + capabilities, b"{tag} OK done"]
        if word == "LOGOUT":
            return [b"* BYE bye", b"{tag} OK done"]
        if word == "NAMESPACE":
            return [b'* NAMESPACE (("" "/")) NIL NIL', b"{tag} OK done"]
        return [b"{tag} OK done"]

    return answer
