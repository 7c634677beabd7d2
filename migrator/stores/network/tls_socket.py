"""TLS over a connected socket, decrypted from memory: one receive for many TLS records.

``ssl.SSLSocket`` reads one TLS record per call, with two system calls under it (the
record's header, then its body). Dovecot sends records of about 4 KB: fetching 270 MB
took 136 000 reads. Here the socket is read in large pieces into OpenSSL's memory buffer
and every record already there is decrypted in one call of ``recv_into``: 4 200 reads
for the same fetch, and about a tenth less CPU for a TLS IMAP -> Maildir copy (bench/,
5 000 messages). Certificates are checked exactly as ``wrap_socket`` checks them: both
come from the same verifying context.
"""

from __future__ import annotations

import io
import socket
import ssl

from migrator.stores.network.paced_socket import PacedSocket, buffered_reader

# Each connection holds up to about twice RECEIVE_BYTES (the buffer, what OpenSSL has not
# decrypted yet) and SEND_BYTES: at 256 KB each, a 50 000-message IMAP -> IMAP copy on four
# connections peaked 5 MB higher. At 64 KB a fetch still takes 30 times fewer reads than
# with SSLSocket.
RECEIVE_BYTES = 64 * 1024  # what one receive from the network may bring in
SEND_BYTES = 64 * 1024  # encrypted and sent at a time, so a large literal is never encrypted whole


class ClearTextReply(ssl.SSLError):
    """The server answered the TLS handshake with plain text, as a server does whose port begins in clear."""

    def __init__(self, heard: bytes) -> None:
        self.line = heard.split(b"\n", 1)[0].rstrip(b"\r").decode("ascii", "replace")
        super().__init__(f"the server answered in clear text: {self.line!r}")


class TlsSocket:
    """A client TLS connection on ``sock``, with the socket calls the IMAP and POP3 clients use.

    Connecting does the handshake, raising ``ssl.SSLError`` (a refused certificate and
    ClearTextReply among them) or ``OSError`` as ``SSLContext.wrap_socket`` would. Every
    network wait, the handshake's too, is ``sock``'s: a PacedSocket's stall limit, a socket's timeout.
    """

    def __init__(self, sock: socket.socket | PacedSocket, context: ssl.SSLContext, server_hostname: str) -> None:
        self._sock = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._received = bytearray(RECEIVE_BYTES)
        self._ended = False  # the network stream has ended
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=server_hostname)
        self._handshake()

    def _handshake(self) -> None:
        heard = b""  # the server's first bytes: a line of text when its port does not begin with TLS
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if self._ended:  # OpenSSL reports the end itself; this only keeps the loop finite
                    raise ssl.SSLEOFError("the server closed the connection during the TLS handshake") from None
                self._send_pending()
                count = self._receive()
                heard = heard or bytes(self._received[: min(count, 512)])
            except ssl.SSLError:
                if heard and 0x20 <= heard[0] < 0x7F:  # a TLS record begins with a byte below 0x20
                    raise ClearTextReply(heard) from None
                raise
        self._send_pending()

    def sendall(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt and send every byte of ``data``; raise OSError or ssl.SSLError."""
        with memoryview(data) as view:  # released on return, so a bytearray sent may be resized
            sent = 0
            while sent < len(view):
                sent += self._tls.write(view[sent : sent + SEND_BYTES])
                self._send_pending()

    def recv_into(self, buffer: bytearray | memoryview) -> int:
        """Fill ``buffer`` with what has arrived, waiting only when nothing has; return the count, 0 at the end."""
        with memoryview(buffer) as view:
            return self._decrypt_into(view)

    def _decrypt_into(self, view: memoryview) -> int:
        wanted = len(view)
        filled = 0
        read = self._tls.read
        while filled < wanted:
            try:
                # Given a buffer, read returns the count it filled; ssl's stubs say bytes whatever it is given.
                filled += read(wanted - filled, view[filled:])  # type: ignore[operator]
            except ssl.SSLWantReadError:
                if filled or self._ended:
                    break
                self._send_pending()  # a TLS 1.3 key update may want an answer
                self._receive()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break  # closed, politely or not: as SSLSocket does, report the end of the stream
            else:
                if not self._incoming.pending and not self._tls.pending():
                    break
        return filled

    def _receive(self) -> int:
        """Move what the network brings into the TLS engine, or note the end of the stream; return the count."""
        count = self._sock.recv_into(self._received)
        if count:
            self._incoming.write(memoryview(self._received)[:count])
        else:
            self._ended = True
            self._incoming.write_eof()
        return count

    def _send_pending(self) -> None:
        pending = self._outgoing.read()
        if pending:
            self._sock.sendall(pending)

    def makefile(self, mode: str = "rb", buffering: int | None = None) -> io.BufferedReader:
        """Return a buffered reader of the decrypted stream, as ``socket.makefile("rb")`` does for a plain one."""
        if mode != "rb":
            raise ValueError(f"a TlsSocket is only read, through mode 'rb', not {mode!r}")
        return buffered_reader(self, buffering or RECEIVE_BYTES)

    def shutdown(self, how: int) -> None:
        """Shut the socket down as ``socket.shutdown`` does (poplib's close calls it)."""
        self._sock.shutdown(how)

    def close(self) -> None:
        """Close the socket at once, as ``SSLSocket.close`` does (no TLS goodbye)."""
        self._sock.close()
