"""SASL shared by IMAP and POP3: PLAIN (RFC 4616), with an admin's authorization identity or without, and for
OAuth2 bearer tokens XOAUTH2 (Google's, Microsoft's) and OAUTHBEARER (RFC 7628).

Pure: strings in, bytes out. The client's first message carries the password or the access token, so
callers send it as a secret that protocol traces show as ***.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Collection

from migrator.core.errors import Refused
from migrator.endpoints.endpoint import Endpoint

MECHANISMS = ("xoauth2", "oauthbearer")
AUTOMATIC = "oauth2"  # the user lets the server's capabilities choose between the two
log = logging.getLogger(__name__)
OAUTH_METHODS = (*MECHANISMS, AUTOMATIC)


def plain_message(user: str, password: str, admin: str | None = None) -> bytes:
    """Return PLAIN's message, base64-encoded: ``authzid NUL authcid NUL password``. With ``admin``, the admin
    logs in with their own password and asks to act as ``user`` (imapsync's --authuser); without, ``user``
    logs in and the authzid is empty. Names go verbatim: ``user*master`` and ``domain/admin/user`` too."""
    authzid, authcid = (user, admin) if admin else ("", user)
    return base64.b64encode(b"\0".join(part.encode("utf-8") for part in (authzid, authcid, password)))


def choose(wanted: str, offered: Collection[str]) -> str | None:
    """Return the mechanism to log in with: ``wanted`` itself, or for ``oauth2`` the one ``offered`` has
    (OAUTHBEARER, the standard, before XOAUTH2); None when the server offers neither."""
    if wanted != AUTOMATIC:
        return wanted
    upper = {name.upper() for name in offered}
    return next((name for name in ("oauthbearer", "xoauth2") if name.upper() in upper), None)


def mechanism_for(endpoint: Endpoint, offered: Collection[str]) -> str:
    """Return the OAuth2 mechanism to log in to ``endpoint`` with, from what the server ``offered`` (upper
    case); raise Refused, saying what it offers, when it lacks the one asked for or both."""
    wanted = endpoint.auth or AUTOMATIC
    mechanism = choose(wanted, offered)
    if mechanism is None or mechanism.upper() not in offered:
        raise Refused(
            f"{endpoint.host} does not offer {wanted.upper() if mechanism else 'XOAUTH2 or OAUTHBEARER'} "
            f"for {endpoint.user} (it offers: {' '.join(offered) or 'no SASL mechanism'})"
            + (f"; auth={AUTOMATIC} lets migrator choose" if mechanism and wanted != AUTOMATIC else "")
        )
    how = f"chosen from the server's {', '.join(offered)}" if wanted == AUTOMATIC else "as auth= asks"
    log.info("logging in to %s as %s with %s (%s)", endpoint.host, endpoint.user, mechanism.upper(), how)
    return mechanism


def first_message(mechanism: str, user: str, token: str, host: str, port: int) -> bytes:
    """Return the client's first message of ``mechanism``, not yet base64-encoded."""
    if mechanism == "xoauth2":
        return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()
    if mechanism == "oauthbearer":
        # RFC 7628 3.1: a GS2 header naming the user (with , and = escaped), then key=value pairs.
        name = user.replace("=", "=3D").replace(",", "=2C")
        return f"n,a={name},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01".encode()
    raise ValueError(f"not an OAuth2 SASL mechanism: {mechanism}")


def encoded_first_message(mechanism: str, user: str, token: str, host: str, port: int) -> bytes:
    """Return the first message as it goes on the wire: base64."""
    return base64.b64encode(first_message(mechanism, user, token, host, port))


def error_answer(mechanism: str) -> bytes:
    """Return the client's reply to an error challenge, after which the server fails the exchange:
    an empty response for XOAUTH2 (as Google and Microsoft document), %x01 for OAUTHBEARER (RFC 7628 3.2.3)."""
    return b"" if mechanism == "xoauth2" else base64.b64encode(b"\x01")


def challenge_error(challenge: bytes) -> str:
    """Return what an error challenge (base64 JSON such as {"status":"invalid_token"}) says, for a message."""
    try:
        said = json.loads(base64.b64decode(challenge.strip(), validate=True))
    except (binascii.Error, ValueError):
        return ""
    if not isinstance(said, dict):
        return ""
    return ", ".join(f"{key} {value}" for key, value in said.items() if isinstance(value, (str, int)))
