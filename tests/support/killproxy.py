"""A TCP proxy on a real socket that forwards to a real server and kills a process at a byte count.

Used to interrupt migrator at precise points of a real conversation (in the middle of a
FETCH response, in the middle of an APPEND literal) with SIGKILL, the way a crash or an
OOM kill would, and to count the bytes each side sent. TLS passes through untouched.
"""

from __future__ import annotations

import os
import signal
import socket
import threading


class KillProxy:
    """Listens on 127.0.0.1 and forwards each connection to ``(host, port)``.

    When the bytes flowing in ``direction`` ("up": client to server, "down": server to
    client) across all connections reach ``kill_after``, the process whose pid is in
    ``victim`` gets SIGKILL. ``victim`` is set after the process starts.
    """

    def __init__(self, host: str, port: int, *, kill_after: int | None = None, direction: str = "up") -> None:
        self.target = (host, port)
        self.kill_after = kill_after
        self.direction = direction
        self.victim: int | None = None
        self.sent = {"up": 0, "down": 0}
        self.killed = False
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        """Stop accepting connections."""
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pump, args=(client, server, "up"), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, "down"), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, direction: str) -> None:
        try:
            while data := source.recv(65536):
                data = self._count(direction, data)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _count(self, direction: str, data: bytes) -> bytes:
        """Return the part of ``data`` to forward; kill the victim when the threshold is crossed."""
        with self._lock:
            before = self.sent[direction]
            self.sent[direction] += len(data)
            if self.killed or self.kill_after is None or direction != self.direction:
                return b"" if self.killed else data
            if before + len(data) < self.kill_after:
                return data
            self.killed = True
            if self.victim is not None:
                os.kill(self.victim, signal.SIGKILL)
            return data[: self.kill_after - before]  # the server sees a half-sent command or literal
