"""Log in to POP3 with an OAuth2 access token: AUTH XOAUTH2 or OAUTHBEARER (RFC 5034).

The token goes after the server's ``+``, never as an initial response: a token is longer than the
255 octets RFC 5034 allows a command. A refused token comes back as an error challenge, answered
(RFC 7628 3.2.3) so that the server ends the exchange with -ERR.
"""

from __future__ import annotations

import poplib
from typing import TYPE_CHECKING

from migrator.core.errors import ConnectError
from migrator.endpoints.endpoint import Endpoint
from migrator.stores.network.reconnect import refusal
from migrator.stores.network.sasl import challenge_error, encoded_first_message, error_answer, mechanism_for

if TYPE_CHECKING:
    from migrator.stores.pop3.client import Capabilities, PopSession

_FIX = ("Check that the token is for this mailbox and grants POP access (scope POP.AccessAsUser.All for "
        "Microsoft, https://mail.google.com/ for Google), or get a new one: run `migrator login` again, or check "
        "token_command")


def authenticate(client: PopSession, endpoint: Endpoint, token: str, capabilities: Capabilities) -> None:
    """Log in as the endpoint's user with ``token``; raise Refused (a ConnectError) saying what the
    server said and what to do."""
    mechanism = mechanism_for(endpoint, sorted(m.upper() for m in capabilities.get("SASL", [])))
    host, port = endpoint.address
    challenge = ""
    try:
        client._shortcmd(f"AUTH {mechanism.upper()}")  # type: ignore[union-attr]  # poplib's, left out of its stubs
        client.send_secret(encoded_first_message(mechanism, endpoint.user or "", token, host, port))
        reply = client._getresp()
        if not reply.startswith(b"+OK"):  # "+ challenge": an error challenge, the token was refused
            challenge = challenge_error(reply[1:])
            client.send_secret(error_answer(mechanism))
            client._getresp()
            raise poplib.error_proto(b"-ERR the server did not end the exchange after its error challenge")
    except poplib.error_proto as error:
        words = (error.args[0] if error.args else b"").decode("utf-8", "replace")
        detail = f" ({challenge})" if challenge else ""
        raise refusal(words)(f"cannot log in to {endpoint.host} as {endpoint.user} with {mechanism.upper()}: the "
                           f"server said {words!r}{detail}. {_FIX}") from None
    except OSError as error:
        raise ConnectError(f"{endpoint.host} closed the connection while {endpoint.user} logged in: {error}") from None


