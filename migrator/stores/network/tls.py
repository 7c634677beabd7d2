"""TLS for every server store: verifying contexts, and what to say when a certificate is refused or a
port expects TLS from the first byte (imaps://, pop3s://) but was given the other kind of URL, or the reverse."""

from __future__ import annotations

import socket
import ssl

from migrator.core.display import shorten
from migrator.core.errors import ConfigError
from migrator.endpoints.endpoint import Endpoint

_NAME_MISMATCH = {62, 64}  # OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH

# Servers greet at once; a port that expects TLS from the first byte waits, silent, for the client's
# hello. The read timeout, long enough for a large FETCH, kept users waiting two minutes for that.
GREETING_TIMEOUT = 10.0


class NoGreeting(Exception):
    """The server accepted a plain connection but sent nothing within GREETING_TIMEOUT."""


def tls_context(endpoint: Endpoint) -> ssl.SSLContext:
    """Return a verifying TLS context, trusting ``ca_file`` when the endpoint names one."""
    try:
        return ssl.create_default_context(cafile=endpoint.ca_file)
    except (OSError, ssl.SSLError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ConfigError(
            f"cannot use the CA file {endpoint.ca_file} for {endpoint.account}: {reason}; "
            "give a PEM certificate file with ?ca_file=PATH"
        ) from None


def certificate_problem(error: ssl.SSLCertVerificationError, endpoint: Endpoint) -> str:
    """Return the sentence that says why the server's certificate was refused and what to do."""
    if error.verify_code in _NAME_MISMATCH:
        return (
            f"the certificate of {endpoint.host} was issued for another name ({error.verify_message}): "
            "connect to the server by the name in its certificate"
        )
    return (
        f"the certificate of {endpoint.host} is not trusted ({error.verify_message}): "
        "if you trust this server, give its CA certificate with ca_file (?ca_file=PATH in an endpoint URL)"
    )


def await_greeting(sock: socket.socket) -> None:
    """Return once the server on the plain ``sock`` has begun to greet; else close ``sock`` and raise NoGreeting."""
    timeout = sock.gettimeout()
    sock.settimeout(GREETING_TIMEOUT)
    try:
        sock.recv(1, socket.MSG_PEEK)  # peeked, not read: the protocol reads the greeting itself
    except TimeoutError:
        sock.close()
        raise NoGreeting() from None
    except OSError:
        pass  # a reset: reading the greeting reports it as any lost connection is reported
    sock.settimeout(timeout)


def silent_port(endpoint: Endpoint) -> str:
    """Return the sentence for a server that never greeted a plain connection: it probably expects TLS at once."""
    return (f"{endpoint.host}:{endpoint.port} did not greet {endpoint.user} within {GREETING_TIMEOUT:.0f} s: "
            f"{_port_question(endpoint._replace(tls='implicit'), '(implicit TLS) ')}")


def clear_text_port(endpoint: Endpoint, line: str) -> str:
    """Return the sentence for a server that answered the TLS handshake with ``line``, a greeting in clear."""
    return (f"{endpoint.host}:{endpoint.port} answered the TLS handshake for {endpoint.user} in clear text "
            f"({shorten(line, 60)!r}): {_port_question(endpoint._replace(tls='starttls'), '')}")


def _port_question(suggested: Endpoint, kind: str) -> str:
    scheme = str(suggested).partition("://")[0]
    article = "an" if scheme.startswith("i") else "a"
    return f"is this {article} {scheme}:// {kind}port? Try {suggested}"
