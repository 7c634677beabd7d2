"""A TCP proxy on a real socket between migrator and a real server, which injects a fault at a byte count.

Used to break a real conversation at precise points: in the middle of a login, a LIST, a FETCH
literal or an APPEND literal. The faults:

- ``kill``: SIGKILL the process whose pid is in ``victim`` (a crash, an OOM kill), and close;
- ``drop``: close both sides (each sees the end of the stream, FIN);
- ``reset``: reset the client's side (SO_LINGER 0: the client sees ECONNRESET) and close the server's;
- ``stall``: forward nothing more either way, and keep both sides open (a server that hangs);
- ``trickle``: forward the rest in ``direction`` one byte every ``interval`` seconds (a server that crawls).

The fault strikes the connection carrying the byte at which the bytes flowing in ``direction``
("up": client to server, "down": server to client), counted over all connections, reach ``after``:
what went before is forwarded, so the other side sees half a command or half a literal. ``when``
instead decides per chunk, before forwarding it: ``when(connection number, direction, bytes sent that
way on that connection, chunk)``. With ``repeat``, every other connection, open or opened later,
suffers the fault at its next byte in ``direction``: a server that keeps failing. TLS passes through untouched; ``sent``
counts the bytes forwarded each way, and ``record`` keeps them, for finding where a conversation is.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable

from harness.listener import Listener

FAULTS = ("kill", "drop", "reset", "stall", "trickle")
Trigger = Callable[[int, str, int, bytes], bool]


class _Link:
    """One proxied connection: the client's socket, the server's, and the fault that struck it."""

    def __init__(self, number: int, client: socket.socket, server: socket.socket) -> None:
        self.number = number
        self.client = client
        self.server = server
        self.sent = {"up": 0, "down": 0}
        self.fault: str | None = None
        self._closed = threading.Lock()

    def ends(self, direction: str) -> tuple[socket.socket, socket.socket]:
        """Return (where bytes come from, where they go) for ``direction``."""
        return (self.client, self.server) if direction == "up" else (self.server, self.client)

    def close(self, *, reset: bool = False) -> None:
        """Close both sides once: the client's with a reset (RST) when ``reset``, else with FIN."""
        if not self._closed.acquire(blocking=False):
            return
        if reset:
            self.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        for sock in (self.client, self.server):
            try:
                # SHUT_RD alone sends nothing, so that close() sends the RST; it still wakes the other pump.
                sock.shutdown(socket.SHUT_RD if reset and sock is self.client else socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


class FaultProxy(Listener):
    """Listens on ``listen_host`` and forwards each connection to ``(host, port)``, striking with ``fault`` (above)."""

    def __init__(self, host: str, port: int, *, fault: str = "drop", after: int | None = None, direction: str = "down",
                 when: Trigger | None = None, repeat: bool = False, interval: float = 1.0, record: bool = False,
                 listen_host: str = "127.0.0.1", source_host: str | None = None) -> None:
        assert fault in FAULTS and direction in ("up", "down")
        self.target = (host, port)
        self.fault, self.after, self.direction, self.when = fault, after, direction, when
        self.repeat, self.interval = repeat, interval
        self.source = (source_host, 0) if source_host else None
        self.victim: int | None = None
        self.sent = {"up": 0, "down": 0}
        self.streams = {"up": bytearray(), "down": bytearray()} if record else None
        self.struck_on: int | None = None  # the number of the first connection the fault struck
        self.connections = 0
        self._links: list[_Link] = []
        self._lock = threading.Lock()
        super().__init__(listen_host)

    @property
    def struck(self) -> bool:
        """Return True once the fault has struck."""
        return self.struck_on is not None

    def close(self) -> None:
        """Stop accepting connections and close every connection still open (a stalled one too)."""
        super().close()
        for link in self._links:
            link.close()

    def serve(self, client: socket.socket) -> None:
        server = socket.create_connection(self.target, source_address=self.source)
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self.connections += 1
            link = _Link(self.connections, client, server)
            self._links.append(link)
        threading.Thread(target=self._pump, args=(link, "down"), daemon=True).start()
        self._pump(link, "up")

    def _pump(self, link: _Link, direction: str) -> None:
        source, sink = link.ends(direction)
        try:
            while data := source.recv(65536):
                forward, slow, fault = self._admit(link, direction, data)
                sink.sendall(forward)
                if fault is not None:
                    self._strike(link, fault)
                for byte in slow:
                    time.sleep(self.interval)
                    sink.send(bytes([byte]))
        except OSError:
            pass
        finally:
            link.close()

    def _admit(self, link: _Link, direction: str, data: bytes) -> tuple[bytes, bytes, str | None]:
        """Return what of ``data`` to forward at once, what to trickle, and the fault that strikes here (or None)."""
        with self._lock:
            if link.fault == "trickle":
                return (b"", data, None) if direction == self.direction else (data, b"", None)
            if link.fault is not None:
                return b"", b"", None  # stalled: swallowed; or closing
            cut = self._cut(link, direction, data)
            forward = data if cut is None else data[:cut]
            self.sent[direction] += len(forward)
            link.sent[direction] += len(forward)
            if self.streams is not None:
                self.streams[direction] += forward
            if cut is None:
                return forward, b"", None
            link.fault = self.fault
            if self.struck_on is None:
                self.struck_on = link.number
            return forward, data[cut:] if self.fault == "trickle" else b"", self.fault

    def _cut(self, link: _Link, direction: str, data: bytes) -> int | None:
        """Return where in ``data`` the fault strikes, or None."""
        if self.when is not None:
            return 0 if self.when(link.number, direction, link.sent[direction], data) else None
        if direction != self.direction or self.after is None:
            return None
        if self.struck_on is not None:
            return 0 if self.repeat else None
        reached = self.after - self.sent[direction]
        return max(reached, 0) if reached <= len(data) else None

    def _strike(self, link: _Link, fault: str) -> None:
        if fault == "kill" and self.victim is not None:
            os.kill(self.victim, signal.SIGKILL)
        if fault in ("kill", "drop", "reset"):
            link.close(reset=fault == "reset")


class KillProxy(FaultProxy):
    """A FaultProxy that SIGKILLs ``victim`` (set once the process started) after ``kill_after`` bytes ``direction``."""

    def __init__(self, host: str, port: int, *, kill_after: int | None = None, direction: str = "up") -> None:
        super().__init__(host, port, fault="kill", after=kill_after, direction=direction)

    @property
    def killed(self) -> bool:
        """Return True once the victim was killed."""
        return self.struck
