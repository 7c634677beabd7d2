"""The flows `migrator login` runs for a first grant: device code (RFC 8628) and loopback with PKCE (RFC 7636).

Each returns a Grant: an access token, when it expires, and the refresh token later runs use. The
library never prints: what the user must do (a code to type, a URL to open) goes to a callback.
"""

from __future__ import annotations

import base64
import hashlib
import html
import http.server
import secrets
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from migrator.core.errors import ConfigError, ConnectError
from migrator.endpoints.oauth2.http import TokenEndpointError, post_form
from migrator.endpoints.oauth2.providers import Provider

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
LOOPBACK_TIMEOUT = 300.0  # seconds the user has to approve in the browser


@dataclass(frozen=True)
class Grant:
    """Tokens from a token endpoint; ``expires_at`` is on the ``time.time()`` clock."""

    access_token: str
    expires_at: float
    refresh_token: str | None

    def __repr__(self) -> str:  # tokens never reach logs or tracebacks
        return f"Grant(expires_at={self.expires_at:.0f}, refresh_token={'***' if self.refresh_token else None})"

    @classmethod
    def of(cls, answer: dict[str, object], what: str) -> Grant:
        """Return the grant in a token endpoint's answer; raise ConnectError if it holds no access token."""
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise ConnectError(f"{what}: the token endpoint answered without an access_token")
        lifetime = answer.get("expires_in", 3600)
        refresh = answer.get("refresh_token")
        return cls(token, time.time() + float(lifetime if isinstance(lifetime, (int, float, str)) else 3600),
                   refresh if isinstance(refresh, str) and refresh else None)


@dataclass(frozen=True)
class DevicePrompt:
    """What the user must do to approve a device-code login: open ``uri`` and type ``user_code``."""

    user_code: str
    uri: str
    expires_in: float


def client_fields(client_id: str, client_secret: str | None) -> dict[str, str]:
    """Return the fields naming the client in every request; a public client has no secret."""
    return {"client_id": client_id, **({"client_secret": client_secret} if client_secret else {})}


def device_flow(provider: Provider, client_id: str, client_secret: str | None, show: Callable[[DevicePrompt], None],
                sleep: Callable[[float], None] = time.sleep) -> Grant:
    """Return the grant the user approves on another device; raise TokenEndpointError if refused or expired."""
    if not provider.device_url:
        raise ConfigError(f"{provider.name} has no device-code endpoint: use flow=loopback, or give device_url")
    fields = client_fields(client_id, client_secret)
    start = post_form(provider.device_url, {**fields, "scope": " ".join(provider.scopes)}, "starting the login")
    device_code, interval = str(start.get("device_code", "")), float(str(start.get("interval", 5)))
    uri = start.get("verification_uri_complete") or start.get("verification_uri") or start.get("verification_url")
    show(DevicePrompt(str(start.get("user_code", "")), str(uri), float(str(start.get("expires_in", 900)))))
    poll = {**fields, "grant_type": DEVICE_GRANT, "device_code": device_code}
    while True:
        sleep(interval)
        try:
            return Grant.of(post_form(provider.token_url, poll, "waiting for the login"), "logging in")
        except TokenEndpointError as refused:
            if refused.error == "slow_down":  # RFC 8628 3.5: five more seconds between polls from now on
                interval += 5
            elif refused.error != "authorization_pending":
                raise


def pkce_pair() -> tuple[str, str]:
    """Return a PKCE code verifier and its S256 challenge (RFC 7636 4.1, 4.2)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def loopback_flow(provider: Provider, client_id: str, client_secret: str | None, login_hint: str,
                  open_url: Callable[[str], None], timeout: float = LOOPBACK_TIMEOUT) -> Grant:
    """Return the grant the user approves in a browser, which the provider sends back to 127.0.0.1 on a
    random port; raise ConnectError if it never comes, TokenEndpointError if the provider refuses."""
    if not provider.auth_url:
        raise ConfigError(f"{provider.name} has no authorization endpoint: give auth_url")
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(24)
    with _Redirect(state) as server:
        redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/"
        query = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
                 "scope": " ".join(provider.scopes), "state": state, "code_challenge": challenge,
                 "code_challenge_method": "S256", "access_type": "offline", "prompt": "consent",
                 "login_hint": login_hint}
        open_url(f"{provider.auth_url}?{urllib.parse.urlencode(query)}")
        code = server.wait(timeout)
    fields = {**client_fields(client_id, client_secret), "grant_type": "authorization_code", "code": code,
              "redirect_uri": redirect_uri, "code_verifier": verifier}
    return Grant.of(post_form(provider.token_url, fields, "logging in"), "logging in")


class _Redirect(http.server.HTTPServer):
    """A one-shot server on 127.0.0.1 that takes the browser's redirect and keeps its code, if ``state`` matches."""

    def __init__(self, state: str) -> None:
        super().__init__(("127.0.0.1", 0), _RedirectHandler)
        self.state = state
        self.code: str | None = None
        self.error: str | None = None

    def wait(self, timeout: float) -> str:
        """Return the authorization code; raise ConnectError if refused, or nothing came within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while self.code is None and self.error is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConnectError(f"no answer from the browser within {timeout:.0f} s: run `migrator login` again")
            self.timeout = left
            self.handle_request()
        if self.error is not None:
            raise ConnectError(f"the login was not completed: {self.error}")
        assert self.code is not None
        return self.code


class _RedirectHandler(http.server.BaseHTTPRequestHandler):
    server: _Redirect

    def do_GET(self) -> None:  # noqa: N802  (http.server's name)
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        if "code" not in query and "error" not in query:
            self._answer(404, "Not the login redirect.")  # a favicon, say: keep waiting
            return
        if query.get("state") != self.server.state:
            # Not the answer to our request (RFC 6749 10.12): a forged or stale redirect.
            self.server.error = "the redirect's state did not match this login's (a stale or forged redirect)"
        elif "error" in query:
            self.server.error = f"{query['error']}: {query.get('error_description', '')}".rstrip(": ")
        else:
            self.server.code = query["code"]
        done = self.server.error is None
        self._answer(200 if done else 400, "migrator has the authorization: you can close this tab." if done
                     else f"migrator did not get the authorization: {self.server.error}")

    def _answer(self, status: int, text: str) -> None:
        body = f"<!doctype html><title>migrator</title><p>{html.escape(text)}</p>\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002  (http.server's name)
        """Log nothing: the query holds the authorization code."""
