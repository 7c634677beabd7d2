"""Open a logged-in POP3 session with poplib: TLS or STLS, CAPA, USER/PASS, APOP or SASL PLAIN.

Every failure becomes a ConnectError of one sentence naming the server, the user and the
fix. The password goes to the server and nowhere else.
"""

from __future__ import annotations

import io
import logging
import poplib
import socket
import ssl
from collections.abc import Callable
from typing import BinaryIO, TypeVar

from migrator.core.errors import ConfigError, ConnectError, Refused
from migrator.core.sizes import format_size
from migrator.endpoints.endpoint import Endpoint
from migrator.endpoints.kinds import OAUTH_METHODS
from migrator.stores.network import sasl
from migrator.stores.network.limits import max_message_size, stall_seconds
from migrator.stores.network.paced_socket import PacedSocket, Stalled
from migrator.stores.network.reconnect import refusal
from migrator.stores.network.tls import (
    NoGreeting,
    await_greeting,
    certificate_problem,
    clear_text_port,
    silent_port,
    tls_context,
)
from migrator.stores.network.tls_socket import ClearTextReply, TlsSocket
from migrator.stores.network.wiretrace import MASK, WireTrace, size_of
from migrator.stores.pop3 import oauth_login

TIMEOUT = 60.0  # to connect; once connected, the stall limit (stores/network/limits.py) applies
MAX_LINE = 64 * 1024 * 1024
AUTH_METHODS = ("user", "apop", "plain", *OAUTH_METHODS)
log = logging.getLogger(__name__)
_SHOWN_WORDS = {b"PASS": 1, b"APOP": 2, b"AUTH": 2}  # the words a trace shows before the secret
T = TypeVar("T")
Capabilities = dict[str, list[str]]


class OversizedMessage(Exception):
    """A message over the limit on one message: not asked for, or not read to its end."""


class _LongLines:
    """poplib refuses lines over 2048 bytes, far less than real mail holds; accept up to MAX_LINE.

    The connection is paced: it ends in Stalled when no whole response and no megabyte arrived for
    ``stall`` seconds, and a message over ``max_message`` bytes is not read to its end. Every line
    sent and received also goes to the connection's protocol trace, when one was asked for.
    """

    file: BinaryIO
    paced: PacedSocket

    def __init__(self, host: str, port: int, *args: object, stall: float, max_message: int, **kwargs: object) -> None:
        self.trace = WireTrace.start("pop3", f"{host}:{port}")
        self.stall = stall
        self.max_message = max_message
        super().__init__(host, port, *args, **kwargs)  # type: ignore[call-arg]  # connects and reads the greeting

    def _putline(self, line: bytes) -> None:
        if self.trace is not None:
            self.trace.sent(traced_command(line))
        super()._putline(line)  # type: ignore[misc]

    def send_secret(self, line: bytes) -> None:
        """Send one line answering a SASL challenge (it may hold a token): traced as ***."""
        if self.trace is not None:
            self.trace.sent(MASK if line else b"")
        super()._putline(line)  # type: ignore[misc]

    def _getline(self) -> tuple[bytes, int]:
        line, size = self._read_line()
        if self.trace is not None:
            self.trace.received(line)
        return line, size

    def _getresp(self) -> bytes:
        response = super()._getresp()  # type: ignore[misc]
        self.paced.progressed()
        return response

    def _getlongresp(self) -> tuple[bytes, list[bytes], int]:
        response = super()._getlongresp()  # type: ignore[misc]
        self.paced.progressed()
        return response

    def _read_line(self) -> tuple[bytes, int]:
        line = self.file.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise poplib.error_proto(b"-ERR line longer than 64 MB")
        if not line:
            raise ConnectionAbortedError("the server closed the connection")
        return line.rstrip(b"\n").removesuffix(b"\r"), len(line)

    def retrieve(self, which: int) -> bytes:
        """Return message ``which`` as RETR sends it, dot-unstuffed, every line ending in CRLF.

        Raise OversizedMessage once it grows over ``max_message``, the rest unread: the connection
        cannot be used again. poplib's retr first makes a list of the lines: for a 10 MB message
        130 000 small objects holding 15 MB beyond the message, memory the allocator then keeps in
        scattered pieces.
        """
        self._putcmd(f"RETR {which}")  # type: ignore[attr-defined]
        self._getresp()
        message = io.BytesIO()
        while (line := self._read_line()[0]) != b".":
            message.write(line[1:] if line.startswith(b"..") else line)
            message.write(b"\r\n")
            if message.tell() > self.max_message:
                raise OversizedMessage(
                    f"the server sent more than {format_size(self.max_message)} for it, the limit on one message "
                    "(MIGRATOR_MAX_MESSAGE_SIZE)"
                )
        self.paced.progressed()
        if self.trace is not None:
            self.trace.received(size_of(message.tell()))
            self.trace.received(b".")
        return message.getvalue()

    def auth_plain(self, user: str, password: str, admin: str | None = None) -> bytes:
        """Log in with SASL PLAIN and an initial response (RFC 5034), as ``admin`` acting for ``user`` when given;
        return the server's reply."""
        token = sasl.plain_message(user, password, admin)
        return self._shortcmd("AUTH PLAIN " + token.decode("ascii"))  # type: ignore[attr-defined]


class PopClient(_LongLines, poplib.POP3):
    """A plain-text POP3 connection (upgraded with STLS unless the user chose tls: none)."""

    def _create_socket(self, timeout: float) -> PacedSocket:
        sock = super()._create_socket(timeout)  # type: ignore[misc]  # poplib's hook, left out of its stubs
        await_greeting(sock)
        self.paced = PacedSocket(sock, self.stall)
        return self.paced

    def stls(self, context: ssl.SSLContext) -> bytes:  # type: ignore[override]
        """Switch to TLS after STLS, on the paced socket (poplib's own would wrap the socket below it)."""
        response = self._shortcmd("STLS")  # type: ignore[attr-defined]
        self.sock = TlsSocket(self.paced, context, self.host)  # type: ignore[assignment]
        self.file = self.sock.makefile("rb")
        self._tls_established = True
        return response


class PopSslClient(_LongLines, poplib.POP3_SSL):
    """A POP3 connection inside TLS from the first byte (pop3s)."""

    context: ssl.SSLContext  # set by POP3_SSL.__init__; its stubs leave it out

    def _create_socket(self, timeout: float) -> TlsSocket:
        # TlsSocket, unlike ssl's sockets, tells a port that greets in clear text from a failed handshake.
        sock = poplib.POP3._create_socket(self, timeout)  # type: ignore[attr-defined]  # left out of poplib's stubs
        self.paced = PacedSocket(sock, self.stall)
        try:
            return TlsSocket(self.paced, self.context, self.host)
        except BaseException:
            sock.close()
            raise


PopSession = PopClient | PopSslClient  # a logged-in session: poplib's, with long lines, RETR streamed and AUTH PLAIN


def traced_command(line: bytes) -> bytes:
    """Return a command as its trace shows it: the password of PASS, APOP's digest and AUTH's token as ***."""
    words = line.split(b" ")
    shown = _SHOWN_WORDS.get(words[0].upper())
    if shown is None or len(words) <= shown:
        return line
    return b" ".join(words[:shown] + [MASK])


def said(error: BaseException) -> str:
    """Return the server's words carried by a poplib error, as text."""
    text = error.args[0] if error.args else error
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)


def connect(endpoint: Endpoint, password: str) -> tuple[PopSession, Capabilities]:
    """Return a logged-in session and the server's capabilities; raise ConnectError or ConfigError."""
    method = (endpoint.auth or ("plain" if endpoint.admin_user else "user")).lower()
    if method not in AUTH_METHODS:
        raise ConfigError(f"auth {endpoint.auth!r} for {endpoint.account} is not one of {', '.join(AUTH_METHODS)}")
    context = tls_context(endpoint) if endpoint.tls != "none" else None
    stall, max_message = stall_seconds(), max_message_size()
    log.info("connecting to %s", endpoint)
    client = _guarded(endpoint, lambda: _open(endpoint, context, stall=stall, max_message=max_message))
    try:
        capabilities = capabilities_of(client)
        if endpoint.tls == "starttls":
            assert context is not None
            _starttls(client, endpoint, context, capabilities)
            capabilities = capabilities_of(client)
        _login(client, endpoint, password, method, capabilities)
        log.info("logged in to %s", endpoint)
        return client, capabilities_of(client) or capabilities
    except BaseException:
        client.close()
        raise


def capabilities_of(client: poplib.POP3) -> Capabilities:
    """Return the CAPA listing, or {} from a server without CAPA (RFC 1939 only)."""
    try:
        return client.capa()
    except poplib.error_proto:
        return {}


def _open(endpoint: Endpoint, context: ssl.SSLContext | None, *, stall: float, max_message: int) -> PopSession:
    host, port = endpoint.address
    if endpoint.tls == "implicit":
        return PopSslClient(host, port, timeout=TIMEOUT, context=context, stall=stall, max_message=max_message)
    return PopClient(host, port, timeout=TIMEOUT, stall=stall, max_message=max_message)


def _guarded(endpoint: Endpoint, action: Callable[[], T]) -> T:
    """Return ``action()``; turn network, TLS and greeting failures into one-sentence ConnectErrors."""
    where = f"{endpoint.host}:{endpoint.port}"
    try:
        return action()
    except ssl.SSLCertVerificationError as error:
        raise Refused(certificate_problem(error, endpoint)) from None
    except ClearTextReply as error:
        raise Refused(clear_text_port(endpoint, error.line)) from None
    except NoGreeting:
        raise ConnectError(silent_port(endpoint)) from None
    except ssl.SSLError as error:
        hint = "use pop3:// for a server that offers STLS" if endpoint.tls == "implicit" else "check the port"
        raise ConnectError(
            f"the TLS handshake with {where} failed for {endpoint.user} ({error.reason}): {hint}"
        ) from None
    except socket.gaierror as error:
        raise ConnectError(f"cannot find the server {endpoint.host} ({error.strerror}): check the host name") from None
    except ConnectionRefusedError:
        raise ConnectError(
            f"cannot connect to {where} for {endpoint.user}: connection refused. "
            "Check the host and the port (POP3S is usually 995, POP3 with STLS 110)"
        ) from None
    except TimeoutError as error:
        raise ConnectError(_no_answer(error, endpoint)) from None
    except poplib.error_proto as error:
        raise ConnectError(f"{where} refused {endpoint.user}: the server said {said(error)!r}") from None
    except OSError as error:
        raise ConnectError(f"cannot connect to {where} for {endpoint.user}: {error.strerror or error}") from None


def _no_answer(error: TimeoutError, endpoint: Endpoint) -> str:
    """Return the sentence for a server that did not answer in time while connecting: maybe the wrong kind of port."""
    where = f"{endpoint.host}:{endpoint.port}"
    if isinstance(error, Stalled) and error.heard:  # it answered, then stopped: no sign the port is wrong
        return f"cannot talk to {where} as {endpoint.user}: {error}"
    waited = error if isinstance(error, Stalled) else f"no answer within {TIMEOUT:.0f} s"
    return (f"{where} did not answer {endpoint.user} ({waited}): check the host, the port "
            "and whether the port expects TLS from the start (pop3s://) or STLS (pop3://)")


def _starttls(client: poplib.POP3, endpoint: Endpoint, context: ssl.SSLContext, capabilities: Capabilities) -> None:
    if "STLS" not in capabilities:
        raise Refused(
            f"{endpoint.host}:{endpoint.port} does not offer STLS, so the password for {endpoint.user} would "
            "travel in clear: use pop3s:// (port 995), or tls: none (?tls=none) only on a network you trust"
        )
    _guarded(endpoint, lambda: client.stls(context))


def _login(client: PopSession, endpoint: Endpoint, password: str, method: str, capabilities: Capabilities) -> None:
    if endpoint.uses_oauth2:  # the "password" is an access token
        oauth_login.authenticate(client, endpoint, password, capabilities)
        return
    user = endpoint.user or ""
    _check_offered(client, endpoint, method, capabilities)
    try:
        if method == "apop":
            client.apop(user, password)
        elif method == "plain":
            client.auth_plain(user, password, endpoint.admin_user)
        else:
            client.user(user)
            client.pass_(password)
    except poplib.error_proto as error:
        words = said(error)
        raise refusal(words)(_login_refused(endpoint, words)) from None
    except OSError as error:
        raise ConnectError(f"{endpoint.host} closed the connection while {user} logged in: {error}") from None


def _check_offered(client: PopSession, endpoint: Endpoint, method: str, capabilities: Capabilities) -> None:
    """Raise Refused when the server does not offer the login ``method``, saying what to do instead."""
    user = endpoint.user or ""
    # poplib's stubs give timestamp as a str pattern; poplib compiles it from bytes, as the greeting is.
    if method == "apop" and not client.timestamp.match(client.welcome):  # type: ignore[call-overload]
        raise Refused(
            f"{endpoint.host} does not offer APOP (its greeting has no timestamp): "
            f"drop auth: apop for {user} to log in with USER and PASS"
        )
    if method != "plain" or "PLAIN" in (m.upper() for m in capabilities.get("SASL", [])):
        return
    offered = " ".join(capabilities.get("SASL", [])) or "none"
    if endpoint.admin_user:
        raise Refused(
            f"{endpoint.host} does not offer SASL PLAIN (it offers: {offered}), the only login that lets the "
            f"admin {endpoint.admin_user} act for {user} (USER and PASS cannot name a second user): ask the "
            "server's administrator, or use the server's master-user form in user (Dovecot: USER*ADMIN) "
            "with the admin's password in password_env instead"
        )
    raise Refused(
        f"{endpoint.host} does not offer SASL PLAIN (it offers: {offered}): "
        f"drop auth: plain for {user} to log in with USER and PASS"
    )


def _login_refused(endpoint: Endpoint, words: str) -> str:
    fix = "Check the user name and the password (or the password source in the profile or endpoint)"
    if endpoint.admin_user:
        fix = ("Check admin_user, the admin's password (admin_password_command, _file or _env) and that the server "
               f"lets the admin {endpoint.admin_user} act for other users")
    if endpoint.tls == "none" and "plaintext" in words.lower():
        fix = "The server wants TLS first: use pop3s:// or pop3:// with STLS instead of tls: none"
    return f"cannot log in to {endpoint.host} as {endpoint.user}: the server said {words!r}. {fix}"
