"""A stand-in OAuth2 provider on 127.0.0.1 for the tests: not Microsoft's or Google's, only what migrator meets there.

It copies, from Microsoft's identity platform (login.microsoftonline.com/{tenant}/oauth2/v2.0/):
the device-code endpoint (``/devicecode``: device_code, user_code, verification_uri, interval,
expires_in), the token endpoint's ``authorization_pending`` while the user has not typed the code, its
refresh grant handing out a new refresh token each time, and its errors, an ``error`` with an
``AADSTS…`` ``error_description``. From Google's (accounts.google.com/o/oauth2/v2/auth,
oauth2.googleapis.com/token): the authorization endpoint (``/authorize``) that redirects the browser
to a loopback ``redirect_uri`` with ``code`` and ``state``, and the code grant checked against its PKCE
S256 challenge (RFC 7636). Both: ``invalid_grant`` for a revoked or expired refresh token. It adds
what neither publishes in this form, an RFC 7662 introspection endpoint (``/introspect``) for
Dovecot's oauth2 passdb (``introspection_mode = post``), answering ``active`` and ``username``.

Nobody types a code or clicks in a browser here: a device code is approved by the signed-in user
(``user``) after ``pending_polls`` polls, and ``/authorize`` approves at once. Access tokens live
``access_lifetime`` seconds (2 by default), so that a test run outlives them and must refresh.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class _Pending:
    """A device code waiting for its user, or an authorization code waiting for its exchange."""

    client_id: str
    scope: str
    polls: int = 0
    challenge: str = ""
    redirect_uri: str = ""
    user: str = ""


@dataclass
class OAuth2Provider:
    """The stand-in; use it as a context manager (``url`` is its base, e.g. ``http://127.0.0.1:PORT``).

    ``clients`` are the client ids it knows. ``user`` signs in at every flow. Counters and
    ``revoke`` let a test see and change what it did: ``refreshes`` (refresh grants answered),
    ``introspections`` (Dovecot's token checks), ``issued_access`` (every access token handed out).
    """

    clients: tuple[str, ...] = ("migrator-test-client",)
    user: str = "alice"
    access_lifetime: float = 2.0
    pending_polls: int = 1
    refreshes: int = 0
    introspections: int = 0
    issued_access: list[str] = field(default_factory=list)
    fail_token_with: tuple[str, str] | None = None  # (error, error_description) for the next token requests
    _access: dict[str, tuple[str, float]] = field(default_factory=dict)  # token: (user, expires)
    _refresh: dict[str, str] = field(default_factory=dict)  # refresh token: user
    _revoked: set[str] = field(default_factory=set)  # refresh tokens
    _devices: dict[str, _Pending] = field(default_factory=dict)
    _codes: dict[str, _Pending] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _codes_issued: itertools.count = field(default_factory=lambda: itertools.count(1000))

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> OAuth2Provider:
        provider = self

        class Handler(_Handler):
            owner = provider

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        """Return the base URL, ``http://127.0.0.1:PORT``."""
        assert self._server is not None, "start it first: with OAuth2Provider() as provider"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def options(self, client_id: str | None = None) -> str:
        """Return the endpoint options that point migrator at this stand-in (for a URL after ?)."""
        return (f"client_id={client_id or self.clients[0]}&auth_url={self.url}/authorize"
                f"&token_url={self.url}/token&device_url={self.url}/devicecode")

    # --- what a test changes -----------------------------------------------------------------

    def revoke(self, user: str | None = None) -> None:
        """Revoke every refresh token and access token of ``user`` (all users by default)."""
        with self._lock:
            self._revoked |= {token for token, owner in self._refresh.items() if user in (None, owner)}
            self._access = {token: held for token, held in self._access.items() if user not in (None, held[0])}

    def invalidate_access_tokens(self, user: str | None = None) -> None:
        """Make the access tokens of ``user`` (all users by default) inactive before their time, refresh tokens kept
        (as Microsoft does after a password change or a policy change)."""
        with self._lock:
            self._access = {token: held for token, held in self._access.items() if user not in (None, held[0])}

    def access_token_for(self, user: str, lifetime: float | None = None) -> str:
        """Return a new access token of ``user``, as a helper such as oama would hand out."""
        return str(self._issue(user, lifetime)[1]["access_token"])

    # --- the endpoints -----------------------------------------------------------------------

    def devicecode(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        if form.get("client_id") not in self.clients:
            return _error("invalid_client", f"AADSTS700016: Application with identifier '{form.get('client_id')}' "
                                            "was not found in the directory.", 400)
        code = secrets.token_urlsafe(16)
        user_code = f"TEST-{next(self._codes_issued)}"
        with self._lock:
            self._devices[code] = _Pending(form["client_id"], form.get("scope", ""))
        return 200, {"device_code": code, "user_code": user_code, "verification_uri": f"{self.url}/device",
                     "expires_in": 900, "interval": 0.1,
                     "message": f"To sign in, open {self.url}/device and enter the code {user_code}."}

    def authorize(self, query: dict[str, str]) -> str:
        """Return where the browser goes next: the redirect URI with a code and the state."""
        if query.get("client_id") not in self.clients or query.get("code_challenge_method") != "S256":
            target = {"error": "invalid_request", "state": query.get("state", "")}
        else:
            code = secrets.token_urlsafe(16)
            with self._lock:
                self._codes[code] = _Pending(query["client_id"], query.get("scope", ""),
                                             challenge=query.get("code_challenge", ""),
                                             redirect_uri=query.get("redirect_uri", ""), user=self.user)
            target = {"code": code, "state": query.get("state", "")}
        return f"{query.get('redirect_uri', '')}?{urllib.parse.urlencode(target)}"

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        if self.fail_token_with is not None:
            return _error(*self.fail_token_with, 400)
        if form.get("client_id") not in self.clients:
            return _error("invalid_client", "AADSTS7000215: Invalid client secret provided.", 401)
        grant = form.get("grant_type")
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            return self._device_grant(form)
        if grant == "authorization_code":
            return self._code_grant(form)
        if grant == "refresh_token":
            return self._refresh_grant(form)
        return _error("unsupported_grant_type", f"AADSTS70003: grant_type {grant} is not supported.", 400)

    def introspect(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        with self._lock:
            self.introspections += 1
            held = self._access.get(form.get("token", ""))
        if held is None or held[1] < time.time():
            return 200, {"active": False}
        return 200, {"active": True, "username": held[0], "exp": int(held[1])}

    def _device_grant(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        with self._lock:
            pending = self._devices.get(form.get("device_code", ""))
            if pending is None:
                return _error("expired_token", "AADSTS70020: The provided value for the input parameter "
                                               "'device_code' is not valid. Device codes expire after 15 minutes.")
            pending.polls += 1
            if pending.polls <= self.pending_polls:
                return _error("authorization_pending", "AADSTS70016: OAuth 2.0 device flow error. "
                                                       "Authorization is pending. Continue polling.")
            del self._devices[form["device_code"]]
        return self._issue(self.user)

    def _code_grant(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        with self._lock:
            pending = self._codes.pop(form.get("code", ""), None)
        if pending is None or pending.redirect_uri != form.get("redirect_uri"):
            return _error("invalid_grant", "Malformed auth code.")
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != pending.challenge:
            return _error("invalid_grant", "Missing code verifier.")
        return self._issue(pending.user)

    def _refresh_grant(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        token = form.get("refresh_token", "")
        with self._lock:
            user = self._refresh.get(token)
            if user is None or token in self._revoked:
                return _error("invalid_grant", "AADSTS70008: The provided authorization code or refresh token has "
                                               "expired due to inactivity or was revoked.")
            self.refreshes += 1
        return self._issue(user)

    def _issue(self, user: str, lifetime: float | None = None) -> tuple[int, dict[str, object]]:
        access, refresh = "at-" + secrets.token_urlsafe(24), "rt-" + secrets.token_urlsafe(24)
        lifetime = self.access_lifetime if lifetime is None else lifetime
        with self._lock:
            self._access[access] = (user, time.time() + lifetime)
            self._refresh[refresh] = user
            self.issued_access.append(access)
        return 200, {"token_type": "Bearer", "access_token": access, "refresh_token": refresh,
                     "expires_in": lifetime, "scope": "https://outlook.office.com/IMAP.AccessAsUser.All"}


def _error(error: str, description: str, status: int = 400) -> tuple[int, dict[str, object]]:
    return status, {"error": error, "error_description": description}


class _Handler(BaseHTTPRequestHandler):
    owner: OAuth2Provider

    def do_POST(self) -> None:  # noqa: N802  (http.server's name)
        length = int(self.headers.get("Content-Length", 0))
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        route = {"/devicecode": self.owner.devicecode, "/token": self.owner.token,
                 "/introspect": self.owner.introspect}.get(urllib.parse.urlsplit(self.path).path)
        status, answer = route(form) if route else (404, {"error": "not_found"})
        self._json(status, answer)

    def do_GET(self) -> None:  # noqa: N802
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/authorize":
            self._json(404, {"error": "not_found"})
            return
        self.send_response(302)
        self.send_header("Location", self.owner.authorize(dict(urllib.parse.parse_qsl(url.query))))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _json(self, status: int, answer: dict[str, object]) -> None:
        body = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet: the tests read the counters instead."""
