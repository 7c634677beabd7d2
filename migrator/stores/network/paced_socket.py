"""A socket that ends the conversation with a server that stalls: too little progress for too long.

A timeout on each read cannot stop a server that sends one byte a second: every read returns in
time, and a nightly run held its lock for as long as the server kept it up. Here the time spent
waiting in reads and writes adds up until the connection makes useful progress: a whole response,
which the protocol reports with ``progressed``, or USEFUL_BYTES moved either way (at the default
limit of 120 s that asks for about 9 KB/s). When the sum reaches the limit, the wait ends in
``Stalled``, an OSError that the protocols treat as a dropped connection. Time the client spends on
other work (writing to disk, waiting for another folder's large message) does not count.
"""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Callable
from typing import Protocol

USEFUL_BYTES = 1024 * 1024
SEND_PIECE = 64 * 1024  # a large write is paced piece by piece, like any read


class Stalled(TimeoutError):
    """The connection made no useful progress for the whole limit; ``heard``: the server had sent something."""

    def __init__(self, message: str, *, heard: bool) -> None:
        super().__init__(message)
        self.heard = heard


class Receiver(Protocol):
    """What a buffered reader needs of a connection."""

    def recv_into(self, buffer: bytearray | memoryview) -> int: ...


class PacedSocket:
    """A connected socket whose reads and writes raise Stalled once it made no progress for ``limit`` seconds."""

    def __init__(self, sock: socket.socket, limit: float) -> None:
        self._sock = sock
        self.limit = limit
        self._waited = 0.0
        self._moved = 0
        self._heard = False

    def progressed(self) -> None:
        """Note a whole response: the waiting counts from zero again."""
        self._waited = 0.0
        self._moved = 0

    def recv_into(self, buffer: bytearray | memoryview) -> int:
        """Receive into ``buffer`` as ``socket.recv_into`` does; raise Stalled or OSError."""
        count = self._paced(lambda: self._sock.recv_into(buffer))
        self._heard = self._heard or count > 0
        return count

    def sendall(self, data: bytes | bytearray | memoryview) -> None:
        """Send every byte of ``data``; raise Stalled or OSError."""
        with memoryview(data) as view:
            for start in range(0, len(view), SEND_PIECE):
                piece = view[start : start + SEND_PIECE]
                self._paced(lambda: self._send(piece))

    def _send(self, piece: memoryview) -> int:
        self._sock.sendall(piece)
        return len(piece)

    def _paced(self, move: Callable[[], int]) -> int:
        left = self.limit - self._waited
        if left <= 0:
            raise self._stalled()
        self._sock.settimeout(left)
        started = time.monotonic()
        try:
            count = move()
        except TimeoutError:
            raise self._stalled() from None
        finally:
            self._waited += time.monotonic() - started
        self._moved += count
        if self._moved >= USEFUL_BYTES:
            self.progressed()
        return count

    def _stalled(self) -> Stalled:
        return Stalled(f"the server stalled: no progress for {self.limit:g} s", heard=self._heard)

    def makefile(self, mode: str = "rb", buffering: int | None = None) -> io.BufferedReader:
        """Return a buffered reader of the connection, as ``socket.makefile("rb")`` does."""
        if mode != "rb":
            raise ValueError(f"a PacedSocket is only read, through mode 'rb', not {mode!r}")
        return buffered_reader(self, buffering or io.DEFAULT_BUFFER_SIZE)

    def shutdown(self, how: int) -> None:
        """Shut the socket down as ``socket.shutdown`` does (poplib's close calls it)."""
        self._sock.shutdown(how)

    def close(self) -> None:
        """Close the socket at once."""
        self._sock.close()


def buffered_reader(connection: Receiver, buffering: int) -> io.BufferedReader:
    """Return a buffered reader of what ``connection.recv_into`` receives."""
    return io.BufferedReader(_Received(connection), buffering)


class _Received(io.RawIOBase):
    def __init__(self, connection: Receiver) -> None:
        self._connection = connection

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        return self._connection.recv_into(buffer)
