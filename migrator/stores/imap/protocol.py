"""One IMAP connection: tagged commands written and pipelined, responses read as they arrive.

Commands are buffered and written when the client next waits for the server, so a run of
pipelined commands leaves in few packets. Responses are read one at a time, each literal
read straight into one ``bytes`` object, so a 10 MB message is held once, never a whole
FETCH response. Untagged responses read while waiting for a continuation (``+``) belong to
earlier commands: they are kept, in order, for whoever reads those commands' results.
Callers read the results of pipelined commands oldest first; what an abandoned command
still receives is dropped when a newer command is read.

A literal larger than ``max_literal`` is never read: the connection, whose stream cannot be
followed past it, is closed instead (OversizedLiteral). Each whole response is progress for
the paced socket, which ends a connection that stalls.
"""

from __future__ import annotations

import itertools
import ssl
from collections import deque
from collections.abc import Iterator
from typing import NamedTuple

from migrator.core.errors import ConnectionLost
from migrator.stores.imap.commands import Literal, Secret
from migrator.stores.imap.parser import ParseError, Response, capabilities, literal_size, parse_response
from migrator.stores.network.limits import over_limit
from migrator.stores.network.paced_socket import PacedSocket
from migrator.stores.network.throttle import Throttled, throttle_in
from migrator.stores.network.tls_socket import TlsSocket
from migrator.stores.network.wiretrace import MASK, WireTrace, size_of

READ_BUFFER = 256 * 1024
MAX_LINE = 8 * 1024 * 1024  # a response line (not a literal) longer than this means a broken server
DIRECT_WRITE = 64 * 1024  # literals larger than this are sent as they are, not copied into the buffer


class Command:
    """A command sent on a connection; ``result`` is its tagged response once read."""

    def __init__(self, tag: str, name: str) -> None:
        self.tag = tag
        self.name = name
        self.result: Response | None = None


class Reply(NamedTuple):
    """A finished command: the untagged responses read before its result, and the result."""

    untagged: list[Response]
    result: Response

    def of_kind(self, kind: str) -> list[Response]:
        """Return the untagged responses of one kind (``LIST``, ``STATUS``...)."""
        return [r for r in self.untagged if r.kind == kind]


class OversizedLiteral(ConnectionLost):
    """The server announced a literal larger than the limit on a message: the connection is closed unread.

    ``segments`` holds the response up to the literal's announcement, to tell which message it was.
    """

    def __init__(self, message: str, size: int, segments: list[bytes]) -> None:
        super().__init__(message)
        self.size = size
        self.segments = segments


class ImapProtocol:
    """The wire protocol on ``sock``, which is ``paced`` or TLS on it; ``peer`` names the server in error messages."""

    def __init__(self, sock: PacedSocket | TlsSocket, paced: PacedSocket, peer: str, *, max_literal: int) -> None:
        self.peer = peer
        self.paced = paced
        self.max_literal = max_literal
        self.capabilities: frozenset[str] = frozenset()
        self.closed = False
        self.continuation: Response | None = None  # the last continuation request
        self._attach(sock)
        self._tags = itertools.count(1)
        self._out = bytearray()
        self._in_flight: dict[str, Command] = {}
        self._backlog: deque[Response] = deque()
        self._farewell = ""
        self._trace = WireTrace.start("imap", peer)

    def _attach(self, sock: PacedSocket | TlsSocket) -> None:
        self.sock = sock
        self.reader = sock.makefile("rb", buffering=READ_BUFFER)

    @property
    def literal_plus(self) -> bool:
        """Return True when literals may be sent without waiting for the server (RFC 7888)."""
        return "LITERAL+" in self.capabilities

    # --- writing ----------------------------------------------------------------------

    def send(self, *parts: bytes | Literal | Secret) -> Command:
        """Queue a command made of ``parts`` (raw bytes, Literals, Secrets) and return it.

        A synchronising literal first waits for the server's ``+``; when the server refuses
        the command instead, the rest is not sent and the command already has its result.
        """
        command = Command(f"M{next(self._tags)}", _command_name(parts))
        if self._trace is not None:
            self._trace.sent(_traced_command(command.tag, parts))
        self._in_flight[command.tag] = command
        self._out += command.tag.encode("ascii") + b" "
        for part in parts:
            if isinstance(part, Secret):
                part = part.value
            if isinstance(part, Literal):
                if not self._write_literal(command, part.data):
                    return command
            else:
                self._out += part
        self._out += b"\r\n"
        return command

    def _write_literal(self, command: Command, data: bytes) -> bool:
        if self.literal_plus:
            self._out += b"{%d+}\r\n" % len(data)
        else:
            self._out += b"{%d}\r\n" % len(data)
            if not self.wait_continuation(command):
                return False
        if len(data) > DIRECT_WRITE:
            self.flush()
            self._sendall(data)
        else:
            self._out += data
        return True

    def send_line(self, line: bytes) -> None:
        """Queue one line answering a continuation request (an AUTHENTICATE response, traced as a secret)."""
        if self._trace is not None:
            self._trace.sent(MASK)
        self._out += line + b"\r\n"

    def flush(self) -> None:
        """Write every queued command; raise ConnectionLost."""
        if self._out:
            self._sendall(self._out)
            self._out.clear()

    def _sendall(self, data: bytes | bytearray) -> None:
        try:
            self.sock.sendall(data)
        except OSError as error:
            raise self._lost(_reason(error)) from None

    # --- reading ----------------------------------------------------------------------

    def wait_continuation(self, command: Command) -> bool:
        """Return True once the server asks for more of ``command``, False if it finished it instead."""
        self.flush()
        while True:
            response = self._read_wire()
            if response.tag == "+":
                self.continuation = response  # its text: a SASL challenge, e.g. an OAuth2 error
                return True
            self._backlog.append(response)
            if response.tag == command.tag:
                return False

    def untagged(self, command: Command) -> Iterator[Response]:
        """Yield the untagged responses that arrive until ``command`` has its result.

        Responses that arrive while an older command is still unanswered belong to that
        command, whose reader gave up on it (an abandoned stream): they are dropped. A
        response is popped from a one-item list as it is yielded, so that this frame does
        not keep it (a 10 MB body, maybe) while the caller waits for the next.
        """
        while command.result is None:
            response = [self._backlog.popleft() if self._backlog else self._read()]
            tag = response[0].tag
            if tag == "*":
                if next(iter(self._in_flight.values())) is command:
                    yield response.pop()
            elif tag == "+":
                raise self._lost(f"an unexpected continuation request during {command.name}")
            else:
                self._complete(response.pop())

    def run(self, *parts: bytes | Literal | Secret) -> Reply:
        """Send a command, wait for it, and return its untagged responses and result."""
        command = self.send(*parts)
        untagged = list(self.untagged(command))
        assert command.result is not None  # untagged() only stops once the result is in
        return Reply(untagged, command.result)

    def read_greeting(self) -> Response:
        """Return the server's greeting; raise ConnectionLost."""
        return self._read()

    def _complete(self, response: Response) -> None:
        command = self._in_flight.pop(response.tag, None)
        if command is None:
            raise self._lost(f"a response for a command never sent ({response.tag})")
        command.result = response

    def _read(self) -> Response:
        self.flush()
        return self._read_wire()

    def _read_wire(self) -> Response:
        segments = [self._readline()]
        literals: list[bytes] = []
        while (size := literal_size(segments[-1])) is not None:
            if size > self.max_literal:
                raise self._oversized(segments, literals, size)
            literals.append(self._read_exact(size))
            segments.append(self._readline())
        if self._trace is not None:
            self._trace.received(_traced_response(segments, literals))
        self.paced.progressed()
        try:
            response = parse_response(segments, literals)
        except ParseError as error:
            raise self._lost(f"an unreadable response: {error}") from None
        self._note(response)
        return response

    def _note(self, response: Response) -> None:
        """Keep what any response may tell about the connection: capabilities, a farewell; raise Throttled for
        a command refused to slow the client down."""
        if response.kind == "CAPABILITY":
            self.capabilities = capabilities(response.data)
        elif response.code == "CAPABILITY":
            self.capabilities = capabilities(response.code_args)
        if response.kind == "BYE":
            self._farewell = response.text
        elif response.tag not in ("*", "+") and not response.ok and (throttle := throttle_in(response.said())):
            # A command refused to slow the client down (read as a result or while waiting for a "+"): commands
            # sent after it may or may not have been refused too, so the connection is given up, and the
            # operation resumed on a new one once the wait is over (network/reconnect.py).
            command = self._in_flight.get(response.tag)
            self.close()
            raise Throttled(f"{self.peer} refused {command.name if command else 'a command'}: {response.said()}",
                            throttle)

    def _readline(self) -> bytes:
        try:
            line = self.reader.readline(MAX_LINE)
        except OSError as error:
            raise self._lost(_reason(error)) from None
        if len(line) == MAX_LINE and not line.endswith(b"\n"):
            raise self._lost("the server sent a line longer than 8 MB")
        if not line.endswith(b"\n"):  # the stream ended, maybe in the middle of the line
            raise self._lost(self._closing_words())
        return line[:-2] if line.endswith(b"\r\n") else line[:-1]

    def _read_exact(self, size: int) -> bytes:
        # One read, into one bytes object of the announced size (at most max_literal), filled by
        # many receives of the paced socket: pieces joined at the end would hold a message twice.
        try:
            data = self.reader.read(size)
        except OSError as error:
            raise self._lost(_reason(error)) from None
        if len(data) < size:
            raise self._lost(self._closing_words())
        return data

    def _oversized(self, segments: list[bytes], literals: list[bytes], size: int) -> OversizedLiteral:
        if self._trace is not None:
            self._trace.received(_traced_response(segments, literals))
        self.close()
        announced = f"the server announced a literal of {over_limit(size, self.max_literal)}"
        return OversizedLiteral(f"the connection to {self.peer} was lost: {announced}", size, segments)

    def _closing_words(self) -> str:
        if self._farewell:
            return f"the server said goodbye: {self._farewell}"
        return "the server closed the connection"

    # --- lifecycle --------------------------------------------------------------------

    def starttls(self, context: ssl.SSLContext, hostname: str) -> None:
        """Wrap the socket in TLS after a successful STARTTLS; ssl errors propagate as they are."""
        self.reader.close()
        assert self.sock is self.paced  # STARTTLS is only sent on a plain connection
        self._attach(TlsSocket(self.paced, context, hostname))

    def logout(self) -> None:
        """Say goodbye politely when the connection still works, then close it."""
        if not self.closed:
            try:
                self.run(b"LOGOUT")
            except ConnectionLost:
                pass  # the server went first; there is nothing left to close politely
        self.close()

    def close(self) -> None:
        """Close the socket at once."""
        self.closed = True
        self.reader.close()
        self.sock.close()

    def _lost(self, reason: str) -> ConnectionLost:
        self.close()
        throttle = throttle_in(self._farewell) if self._farewell else None
        if throttle is not None:  # the server ended the session for a spent budget (Gmail's "Session expired")
            return Throttled(f"the connection to {self.peer} was lost: {reason}", throttle)
        return ConnectionLost(f"the connection to {self.peer} was lost: {reason}")


def _command_name(parts: tuple[bytes | Literal | Secret, ...]) -> str:
    words = parts[0].split(b" ", 2) if parts and isinstance(parts[0], bytes) else [b"?"]
    name = words[:2] if words[0].upper() == b"UID" else words[:1]
    return b" ".join(name).decode("ascii", "replace")


def _traced_command(tag: str, parts: tuple[bytes | Literal | Secret, ...]) -> bytes:
    """Return the command as its trace shows it: secrets as ***, literals as their size."""
    shown = [tag.encode("ascii"), b" "]
    for part in parts:
        if isinstance(part, Secret):
            shown.append(MASK)
        elif isinstance(part, Literal):
            shown.append(size_of(len(part.data)))
        else:
            shown.append(part)
    return b"".join(shown)


def _traced_response(segments: list[bytes], literals: list[bytes]) -> bytes:
    """Return the response as its trace shows it: each literal's ``{N}`` marker and bytes as ``{N bytes}``."""
    shown = bytearray(segments[0])
    for literal, segment in zip(literals, segments[1:]):
        shown[shown.rindex(b"{"):] = size_of(len(literal))
        shown += segment
    return bytes(shown)


def _reason(error: OSError) -> str:
    return error.strerror or str(error) or type(error).__name__
