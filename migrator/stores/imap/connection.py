"""Open a logged-in IMAP connection: socket, TLS or STARTTLS, login, capabilities.

Every failure becomes a ConnectError of one sentence naming the server, the user and the
fix. The password is sent to the server and nowhere else: never logged, never in errors.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable
from typing import TypeVar

from migrator.core.errors import ConfigError, ConnectError, ConnectionLost, Refused
from migrator.endpoints.endpoint import Endpoint
from migrator.stores.imap import oauth_login
from migrator.stores.imap.commands import Secret, astring
from migrator.stores.imap.parser import Response
from migrator.stores.imap.protocol import ImapProtocol
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

log = logging.getLogger(__name__)
CONNECT_TIMEOUT = 30.0
T = TypeVar("T")


def connect(endpoint: Endpoint, password: str) -> ImapProtocol:
    """Return a logged-in connection to ``endpoint``, with ``password`` (an access token for OAuth2 logins);
    raise ConnectError or ConfigError."""
    log.info("connecting to %s", endpoint)
    context = tls_context(endpoint) if endpoint.tls != "none" else None
    limit, stall = max_message_size(), stall_seconds()
    paced, sock = _open_socket(endpoint, context if endpoint.tls == "implicit" else None, stall)
    protocol = ImapProtocol(sock, paced, f"{endpoint.host}:{endpoint.port}", max_literal=limit)
    try:
        greeting = protocol.read_greeting()
        if greeting.kind == "BYE":
            raise ConnectError(f"{endpoint.host} refused the connection for {endpoint.user}: {greeting.said()}")
        _refresh_capabilities(protocol)
        if endpoint.tls == "starttls":
            assert context is not None  # tls != "none" here
            _starttls(protocol, endpoint, context)
            _refresh_capabilities(protocol)
        if greeting.kind != "PREAUTH":
            _login(protocol, endpoint, password)
            _refresh_capabilities(protocol)
        log.info("logged in to %s", endpoint)
    except ConnectionLost as error:
        raise ConnectError(f"cannot talk to {endpoint.host} as {endpoint.user}: {error}") from None
    except BaseException:
        protocol.close()
        raise
    return protocol


def _open_socket(
    endpoint: Endpoint, context: ssl.SSLContext | None, stall: float
) -> tuple[PacedSocket, PacedSocket | TlsSocket]:
    """Return the connection, which stalls after ``stall`` s, and what to talk through: it, or TLS on it."""
    host, port = endpoint.address
    where = f"{host}:{port}"
    try:
        sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
    except socket.gaierror as error:
        raise ConnectError(
            f"cannot find the server {endpoint.host} ({error.strerror}): check the host name in the endpoint"
        ) from None
    except ConnectionRefusedError:
        raise ConnectError(
            f"cannot connect to {where} for {endpoint.user}: connection refused. "
            "Check the host and the port (IMAPS is usually 993, IMAP with STARTTLS 143)"
        ) from None
    except TimeoutError:
        raise ConnectError(
            f"cannot connect to {where} for {endpoint.user}: no answer within {CONNECT_TIMEOUT:.0f} s. "
            "Check the host, the port and any firewall in between"
        ) from None
    except OSError as error:
        raise ConnectError(f"cannot connect to {where} for {endpoint.user}: {error.strerror or error}") from None
    # Without TCP_NODELAY, Nagle's algorithm holds small commands back for a delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    paced = PacedSocket(sock, stall)
    if context is None:
        _await_greeting(sock, endpoint)
        return paced, paced
    return paced, _handshake(lambda: TlsSocket(paced, context, host), paced, endpoint)


def _await_greeting(sock: socket.socket, endpoint: Endpoint) -> None:
    try:
        await_greeting(sock)
    except NoGreeting:
        raise ConnectError(silent_port(endpoint)) from None


def _handshake(wrap: Callable[[], T], sock: PacedSocket, endpoint: Endpoint) -> T:
    """Return the TLS socket ``wrap()`` makes; map certificate and handshake failures to ConnectError."""
    where = f"{endpoint.host}:{endpoint.port}"
    try:
        return wrap()
    except ssl.SSLCertVerificationError as error:
        sock.close()
        raise Refused(certificate_problem(error, endpoint)) from None
    except (ssl.SSLError, OSError) as error:
        sock.close()
        if isinstance(error, ClearTextReply) and endpoint.tls == "implicit":
            raise Refused(clear_text_port(endpoint, error.line)) from None
        if isinstance(error, Stalled) and error.heard:  # it answered, then stopped: no sign the port is wrong
            raise ConnectError(f"the TLS handshake with {where} failed for {endpoint.user}: {error}") from None
        hint = "use imap:// for a server that offers STARTTLS" if endpoint.tls == "implicit" else "check the port"
        reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or error
        raise ConnectError(f"the TLS handshake with {where} failed for {endpoint.user} ({reason}): {hint}") from None


def _starttls(protocol: ImapProtocol, endpoint: Endpoint, context: ssl.SSLContext) -> None:
    if "STARTTLS" not in protocol.capabilities:
        raise Refused(
            f"{endpoint.host}:{endpoint.port} does not offer STARTTLS, so the password for {endpoint.user} "
            "would travel in clear: use imaps:// (port 993), or add ?tls=none only on a network you trust"
        )
    reply = protocol.run(b"STARTTLS")
    if not reply.result.ok:
        said = reply.result.said()
        raise refusal(said)(f"{endpoint.host} refused STARTTLS for {endpoint.user}: {said}")
    host, _ = endpoint.address
    _handshake(lambda: protocol.starttls(context, host), protocol.paced, endpoint)
    protocol.capabilities = frozenset()  # capabilities seen before TLS must not be trusted (RFC 3501 6.2.1)


def _refresh_capabilities(protocol: ImapProtocol) -> None:
    """Ask for CAPABILITY unless a greeting or login reply since the last change listed them."""
    if not protocol.capabilities:
        protocol.run(b"CAPABILITY")


def _login(protocol: ImapProtocol, endpoint: Endpoint, password: str) -> None:
    if endpoint.uses_oauth2:  # the "password" is an access token
        oauth_login.authenticate(protocol, endpoint, password)
        return
    mechanism = _mechanism(protocol, endpoint)
    initial_response = "SASL-IR" in protocol.capabilities
    protocol.capabilities = frozenset()  # they change once logged in; the login reply may list the new ones
    if mechanism == "plain":
        message = sasl.plain_message(endpoint.user or "", password, endpoint.admin_user)
        result = _authenticate_plain(protocol, message, initial_response)
    else:
        result = protocol.run(b"LOGIN ", astring(endpoint.user or ""), b" ", Secret(astring(password))).result
    if not result.ok:
        raise refusal(result.said())(_login_refused(endpoint, result.said()))


def _login_refused(endpoint: Endpoint, said: str) -> str:
    """Return the sentence for a login the server refused, naming the admin when one logged in for the user."""
    if endpoint.admin_user:
        return (f"cannot log in to {endpoint.host} as {endpoint.user} with the admin {endpoint.admin_user}: the "
                f"server said {said!r}. Check admin_user, the admin's password (admin_password_command, _file or "
                "_env) and that the server lets this admin act for other users")
    return (f"cannot log in to {endpoint.host} as {endpoint.user}: the server said {said!r}. "
            "Check the user name and the password (or the password source in the endpoint or profile)")


def _mechanism(protocol: ImapProtocol, endpoint: Endpoint) -> str:
    wanted = (endpoint.auth or "").lower()
    if wanted not in ("", "plain", "login"):
        raise ConfigError(f"auth={endpoint.auth!r} for {endpoint.account} is not one of plain, login")
    if "AUTH=PLAIN" in protocol.capabilities and wanted in ("", "plain"):
        return "plain"
    if endpoint.admin_user:
        offered = " ".join(sorted(c[5:] for c in protocol.capabilities if c.startswith("AUTH="))) or "none"
        raise Refused(
            f"{endpoint.host} does not offer AUTHENTICATE PLAIN (it offers: {offered}), the only login that lets "
            f"the admin {endpoint.admin_user} act for {endpoint.user} (LOGIN cannot name a second user): ask the "
            "server's administrator, or use the server's master-user form in user (Dovecot: USER*ADMIN) "
            "with the admin's password in password_env instead"
        )
    if "LOGINDISABLED" in protocol.capabilities:
        raise Refused(
            f"{endpoint.host} refuses to log in {endpoint.user} without TLS: "
            "use imaps:// (port 993) or imap:// with STARTTLS instead of ?tls=none"
        )
    return "login"


def _authenticate_plain(protocol: ImapProtocol, token: bytes, initial_response: bool) -> Response:
    if initial_response:
        return protocol.run(b"AUTHENTICATE PLAIN ", Secret(token)).result
    command = protocol.send(b"AUTHENTICATE PLAIN")
    if protocol.wait_continuation(command):
        protocol.send_line(token)
    for _ in protocol.untagged(command):
        pass
    assert command.result is not None
    return command.result
