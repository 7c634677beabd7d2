"""The refresh token kept between runs, one file per account and client id, and the access tokens made from it.

A file is mode 0600 in a directory of mode 0700 under the state directory, and holds the refresh
token and the token endpoint that issued it; access tokens stay in memory. Every connection asks
``access_token`` for one: a token close to its end (or past it) is refreshed first, so a run that
outlives its token just reconnects with a new one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from pathlib import Path

from migrator.core.dirs import state_dir
from migrator.core.errors import ConfigError, ConnectError
from migrator.endpoints.credentials import command_output
from migrator.endpoints.endpoint import Endpoint
from migrator.endpoints.login_secret import LoginExpired
from migrator.endpoints.oauth2.advice import refusal_sentence
from migrator.endpoints.oauth2.flows import Grant
from migrator.endpoints.oauth2.http import TokenEndpointError, post_form
from migrator.endpoints.oauth2.providers import provider_for

MARGIN = 60.0  # seconds before its end a token is refreshed (at most half its lifetime)
log = logging.getLogger(__name__)
_lock = threading.RLock()  # connections of one run (parallel folders) share one refresh; it saves under it
_cache: dict[Path, tuple[Grant, float]] = {}  # access tokens by file, with when each was obtained


def grant_file(account: str, client_id: str) -> Path:
    """Return the file holding the refresh token of ``account`` for ``client_id``."""
    digest = hashlib.sha256(f"{account}\n{client_id}".encode()).hexdigest()[:12]
    return state_dir() / "oauth2" / f"{re.sub(r'[^A-Za-z0-9@._-]', '_', account)}-{digest}.json"


def login_command(endpoint: Endpoint) -> str:
    """Return the `migrator login …` command that gets ``endpoint`` a new grant, for messages."""
    client = endpoint.oauth
    options = {"auth": endpoint.auth, "client_id": client.client_id, "ca_file": endpoint.ca_file}
    for key in ("tenant", "provider", "flow", "auth_url", "token_url", "device_url"):
        options["oauth_provider" if key == "provider" else key] = getattr(client, key)
    base = str(endpoint)
    query = "&".join(f"{key}={value}" for key, value in options.items() if value)
    return f"migrator login '{base}{'&' if '?' in base else '?'}{query}'"


def save_grant(endpoint: Endpoint, grant: Grant, token_url: str) -> Path:
    """Keep ``grant``'s refresh token for later runs (mode 0600) and its access token for this one; return the file."""
    client_id = _client_id(endpoint)
    if grant.refresh_token is None:
        raise ConnectError(f"the token endpoint gave {endpoint.account} no refresh token: "
                           "ask for the offline_access scope (Microsoft), or check the client's settings")
    path = grant_file(endpoint.account, client_id)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    content = {"account": endpoint.account, "client_id": client_id, "token_url": token_url,
               "refresh_token": grant.refresh_token}
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        json.dump(content, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    with _lock:
        _cache[path] = (grant, time.time())
    return path


def access_token(endpoint: Endpoint) -> str:
    """Return an access token for ``endpoint`` that is not about to expire, refreshing the stored grant
    when needed; raise ConfigError without a grant, LoginExpired when the refresh token is refused."""
    path = grant_file(endpoint.account, _client_id(endpoint))
    with _lock:
        held = _cache.get(path)
        if held is not None and not _ending(*held):
            return held[0].access_token
        grant = _refresh(endpoint, path)
        _cache[path] = (grant, time.time())
        return grant.access_token


def forget_access_token(endpoint: Endpoint) -> None:
    """Drop the access token held for ``endpoint`` (the server refused it): the next one is refreshed."""
    with _lock:
        _cache.pop(grant_file(endpoint.account, _client_id(endpoint)), None)


def _ending(grant: Grant, obtained: float) -> bool:
    now = time.time()
    return grant.expires_at - now < min(MARGIN, (grant.expires_at - obtained) / 2)


def _refresh(endpoint: Endpoint, path: Path) -> Grant:
    stored = _stored(endpoint, path)
    fields = {"grant_type": "refresh_token", "refresh_token": stored["refresh_token"],
              "client_id": _client_id(endpoint)}
    secret = client_secret(endpoint)
    if secret:
        fields["client_secret"] = secret
    token_url = _token_url(endpoint, stored)
    log.info("refreshing the OAuth2 access token of %s at %s", endpoint.account, token_url)
    try:
        grant = Grant.of(post_form(token_url, fields, f"refreshing the token of {endpoint.account}"), "refreshing")
    except TokenEndpointError as refused:
        kind = LoginExpired if refused.error == "invalid_grant" else ConnectError
        raise kind(refusal_sentence(refused, endpoint.account, login_command(endpoint))) from None
    if grant.refresh_token and grant.refresh_token != stored["refresh_token"]:
        save_grant(endpoint, grant, token_url)  # Microsoft sends a new refresh token with each refresh
    return grant


def _stored(endpoint: Endpoint, path: Path) -> dict[str, str]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no OAuth2 login for {endpoint.account} yet: run `{login_command(endpoint)}` once "
                          "(or give token_command, token_file or token_env)") from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read the OAuth2 login of {endpoint.account} in {path}: {error}; "
                          f"run `{login_command(endpoint)}` again") from None
    if not isinstance(content, dict) or not isinstance(content.get("refresh_token"), str):
        raise ConfigError(f"{path} holds no refresh token: run `{login_command(endpoint)}` again")
    return content


def _token_url(endpoint: Endpoint, stored: dict[str, str]) -> str:
    """Return the token endpoint: the endpoint's own provider's, else the one that issued the grant."""
    try:
        return provider_for(endpoint.host or "", endpoint.oauth).token_url
    except ConfigError:
        if stored.get("token_url"):
            return stored["token_url"]
        raise


def _client_id(endpoint: Endpoint) -> str:
    if not endpoint.oauth.client_id:
        raise ConfigError(
            f"auth={endpoint.auth} for {endpoint.account} needs an access token: give token_command, token_file "
            "or token_env, or client_id (your own OAuth2 client) and run `migrator login` once"
        )
    return endpoint.oauth.client_id


def client_secret(endpoint: Endpoint) -> str | None:
    """Return the client's secret, from client_secret or client_secret_command; None for a public client."""
    if endpoint.oauth.client_secret_command:
        return command_output(endpoint.oauth.client_secret_command, endpoint.account, "client secret")
    return endpoint.oauth.client_secret
