"""TlsSocket: the client TLS connection the IMAP store reads through, against a real TLS server.

The server is the standard library's, on a loopback socket, with a certificate from the
test CA. It writes what each test asks for, record by record.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.listener import Listener
from harness.tlsca import TlsFiles, make_pki
from migrator.stores.network.tls_socket import TlsSocket

RECORD = 4096  # Dovecot's TLS proxy sends records of about this size


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_pki(tmp_path_factory.mktemp("tls"))


class Server(Listener):
    """Accepts TLS connections on 127.0.0.1 and runs ``serve_tls(connection)`` on each, in a thread of its own."""

    def __init__(self, pki: TlsFiles, serve_tls: Callable[[ssl.SSLSocket], None]) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(pki.server_cert, pki.server_key)
        self.serve_tls = serve_tls
        self.error: BaseException | None = None
        super().__init__()

    def serve(self, raw: socket.socket) -> None:
        try:
            connection = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()  # the client gave up the handshake: what a test checks is on its side
            return
        try:
            with connection:
                self.serve_tls(connection)
        except BaseException as error:  # noqa: BLE001 - raised again by the test, in close()
            self.error = error

    def close(self) -> None:
        self.join(10)
        super().close()
        if self.error is not None:
            raise self.error


@pytest.fixture
def serve(pki: TlsFiles) -> Iterator[Callable[[Callable[[ssl.SSLSocket], None]], Server]]:
    servers: list[Server] = []

    def start(handler: Callable[[ssl.SSLSocket], None]) -> Server:
        servers.append(Server(pki, handler))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def connect(server: Server, ca_file: Path, hostname: str = "localhost") -> TlsSocket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024 * 1024)  # a window wide enough for any test's data
    sock.settimeout(10)
    try:
        sock.connect(("127.0.0.1", server.port))
        return TlsSocket(sock, ssl.create_default_context(cafile=str(ca_file)), hostname)
    except BaseException:
        sock.close()  # as the IMAP store does when a handshake fails
        raise


def test_records_that_have_arrived_are_read_in_one_call(serve, pki):
    sent = threading.Event()

    def send_sixteen_records(connection: ssl.SSLSocket) -> None:
        connection.sendall(b"ready")
        connection.recv(2)  # go
        for n in range(16):
            connection.sendall(bytes([n]) * RECORD)  # one write, one record
        sent.set()
        connection.recv(1)  # until the client closes

    server = serve(send_sixteen_records)
    with contextlib.closing(connect(server, pki.ca_file)) as client:
        buffer = bytearray(256 * 1024)
        assert buffer[: client.recv_into(buffer)] == b"ready"
        client.sendall(b"go")
        assert sent.wait(10)
        received, calls = bytearray(), 0
        while len(received) < 16 * RECORD:
            received += buffer[: client.recv_into(buffer)]
            calls += 1
        assert received == b"".join(bytes([n]) * RECORD for n in range(16))
        # ssl.SSLSocket takes 16 calls, one a record; here one, unless TCP delivered the records late.
        assert calls <= 4


def test_megabytes_go_both_ways_exactly(serve, pki):
    payload = bytes(range(256)) * (3 * 4096 + 7)  # about 3 MB, more than one send or receive takes

    def echo(connection: ssl.SSLSocket) -> None:
        received = bytearray()
        while len(received) < len(payload):
            received += connection.recv(65536)
        connection.sendall(received)

    server = serve(echo)
    with contextlib.closing(connect(server, pki.ca_file)) as client:
        client.sendall(bytearray(payload))
        reader = client.makefile("rb", 256 * 1024)
        assert reader.read(10) + reader.read(len(payload) - 10) == payload


@pytest.mark.parametrize("polite", [True, False], ids=["close_notify", "abrupt"])
def test_the_end_of_the_stream_reads_as_nothing_more(serve, pki, polite):
    def say_goodbye(connection: ssl.SSLSocket) -> None:
        connection.sendall(b"* BYE\r\n")
        if polite:
            with contextlib.suppress(OSError):  # sends close_notify, then waits in vain for the client's
                connection.unwrap()
        else:
            connection.shutdown(socket.SHUT_RDWR)

    server = serve(say_goodbye)
    with contextlib.closing(connect(server, pki.ca_file)) as client:
        reader = client.makefile("rb", 1024)
        assert reader.readline() == b"* BYE\r\n"
        assert reader.read(100) == b""


def test_a_certificate_from_an_unknown_authority_is_refused(serve, pki):
    server = serve(lambda connection: None)
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer certificate"):
        connect(server, pki.untrusted_ca_file)


def test_a_certificate_for_another_name_is_refused(serve, pki):
    server = serve(lambda connection: None)
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        connect(server, pki.ca_file, hostname="mail.example.org")


def test_a_server_that_hangs_up_during_the_handshake(pki):
    class HangUp(Listener):
        def serve(self, connection: socket.socket) -> None:
            connection.recv(65536)  # read first, so that closing sends an end of stream, not a reset
            connection.close()

    server = HangUp()
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        with pytest.raises(ssl.SSLEOFError):
            TlsSocket(sock, ssl.create_default_context(cafile=str(pki.ca_file)), "localhost")
    server.join(10)
    server.close()
