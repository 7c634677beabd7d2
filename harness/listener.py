"""The one accept loop under every stand-in on a real socket: the proxy, the scripted IMAP server, the tests' fakes.

A ``Listener`` listens on a free port of a loopback address and runs ``serve(connection)`` for
each connection in a thread of its own, so a client that opens a second connection (a
reconnection, a parallel worker) is served while the first is still open.
"""

from __future__ import annotations

import socket
import threading


class Listener:
    """Listens on ``host`` at a free ``port``; subclasses say in ``serve`` what each connection gets."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.listener = socket.create_server((host, 0))
        self.host = host
        self.port: int = self.listener.getsockname()[1]
        self.accepted = 0
        self._threads: list[threading.Thread] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def serve(self, connection: socket.socket) -> None:
        """Talk to one client; runs in the connection's own thread."""
        raise NotImplementedError

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for each connection's thread to finish."""
        for thread in list(self._threads):
            thread.join(timeout)

    def close(self) -> None:
        """Stop accepting connections; those open stay open, as a server's do when its listener goes."""
        try:
            # close() alone leaves accept() blocked on Linux; shutdown wakes it, so the thread ends.
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            thread = threading.Thread(target=self.serve, args=(connection,), daemon=True)
            self._threads.append(thread)
            thread.start()
