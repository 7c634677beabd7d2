"""Log in to IMAP with an OAuth2 access token: AUTHENTICATE XOAUTH2 or OAUTHBEARER, then a check that it took.

With SASL-IR (RFC 4959) the token goes with the command, otherwise after the server's ``+``.
A refused token comes back as an error challenge, which is answered (RFC 7628 3.2.3) so that the
server ends the exchange with NO. Microsoft accepts the AUTHENTICATE of a token issued for another
mailbox, or a mailbox the user may not open, and fails the first command after it ("User is
authenticated but not connected"): so a login counts only once ``LIST "" ""`` has worked.
"""

from __future__ import annotations

from migrator.endpoints.endpoint import Endpoint
from migrator.stores.imap.commands import Secret
from migrator.stores.imap.parser import Response
from migrator.stores.imap.protocol import ImapProtocol
from migrator.stores.network.reconnect import refusal
from migrator.stores.network.sasl import challenge_error, encoded_first_message, error_answer, mechanism_for

_FIX = ("Check that the token is for this mailbox and grants IMAP access (scope IMAP.AccessAsUser.All for "
        "Microsoft, https://mail.google.com/ for Google), or get a new one: run `migrator login` again, or check "
        "token_command")


def authenticate(protocol: ImapProtocol, endpoint: Endpoint, token: str) -> None:
    """Log in as the endpoint's user with ``token``; raise Refused (a ConnectError) saying what the
    server said and what to do."""
    mechanism = mechanism_for(endpoint, _offered(protocol))
    host, port = endpoint.address
    response = encoded_first_message(mechanism, endpoint.user or "", token, host, port)
    initial_response = "SASL-IR" in protocol.capabilities
    protocol.capabilities = frozenset()  # they change once logged in; the login reply may list the new ones
    name = mechanism.upper().encode("ascii")
    asked = True  # whether the server is still waiting for more of the exchange
    if initial_response:
        command = protocol.send(b"AUTHENTICATE ", name, b" ", Secret(response))
    else:
        command = protocol.send(b"AUTHENTICATE ", name)
        asked = protocol.wait_continuation(command)
        if asked:
            protocol.send_line(response)
    challenge = ""
    if asked and protocol.wait_continuation(command):  # an error challenge: the token was refused
        challenge = challenge_error((protocol.continuation.text if protocol.continuation else "").encode())
        protocol.send_line(error_answer(mechanism))
    for _ in protocol.untagged(command):
        pass
    assert command.result is not None
    if not command.result.ok:
        raise refusal(command.result.said())(_refused(endpoint, mechanism, command.result, challenge))
    _confirm(protocol, endpoint)




def _refused(endpoint: Endpoint, mechanism: str, result: Response, challenge: str) -> str:
    detail = f" ({challenge})" if challenge else ""
    return (f"cannot log in to {endpoint.host} as {endpoint.user} with {mechanism.upper()}: the server said "
            f"{result.said()!r}{detail}. {_FIX}")


def _confirm(protocol: ImapProtocol, endpoint: Endpoint) -> None:
    """Raise ConnectError unless the session works: Microsoft may accept a token, then refuse every command."""
    result = protocol.run(b'LIST "" ""').result
    if not result.ok:
        raise refusal(result.said())(
            f"{endpoint.host} accepted the token for {endpoint.user}, then refused to open the mailbox: "
            f"{result.said()!r}. The token is for another mailbox, or {endpoint.user} has no access to this one "
            "(Microsoft 365: log in as the mailbox's own user, or have an administrator grant FullAccess)"
        )


def _offered(protocol: ImapProtocol) -> list[str]:
    return sorted(c.removeprefix("AUTH=") for c in protocol.capabilities if c.startswith("AUTH="))
