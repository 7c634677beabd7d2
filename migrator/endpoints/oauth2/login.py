"""`migrator login`'s library: get a first grant for an endpoint by the provider's flow, and keep it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from migrator.core.errors import ConfigError
from migrator.endpoints.endpoint import Endpoint, parse_endpoint
from migrator.endpoints.oauth2.advice import refusal_sentence
from migrator.endpoints.oauth2.flows import DevicePrompt, device_flow, loopback_flow
from migrator.endpoints.oauth2.grants import client_secret, login_command, save_grant
from migrator.endpoints.oauth2.http import TokenEndpointError
from migrator.endpoints.oauth2.providers import Provider, provider_for


@dataclass(frozen=True)
class LoggedIn:
    """The result of a login: which provider and flow, and the file that keeps the refresh token."""

    provider: Provider
    grant_file: Path


def login_endpoint(text: str) -> Endpoint:
    """Return the endpoint ``text`` names for `migrator login`: a server with a client_id; auth defaults to oauth2."""
    query = dict(parse_qsl(urlsplit(text).query)) if "://" in text else {}
    if "://" in text and "auth" not in query:
        text += ("&" if "?" in text else "?") + "auth=oauth2"
    endpoint = parse_endpoint(text)
    if not endpoint.is_server:
        raise ConfigError(f"{text} is an archive: `migrator login` is for IMAP and POP3 servers")
    if not endpoint.uses_oauth2:
        raise ConfigError(f"auth={endpoint.auth} in {text!r} logs in with a password: `migrator login` is for "
                          "auth=xoauth2, oauthbearer or oauth2")
    if endpoint.token:
        raise ConfigError(f"{text!r} takes its access token from {endpoint.token!r}: `migrator login` is for "
                          "endpoints with client_id instead, whose tokens migrator keeps itself")
    if not endpoint.oauth.client_id:
        raise ConfigError(f"`migrator login` needs your OAuth2 client's id: add client_id=… to {text!r} "
                          "(docs/usage.md says how to register one with Google or Microsoft)")
    return endpoint


def log_in(endpoint: Endpoint, *, show_code: Callable[[DevicePrompt], None],
           open_url: Callable[[str], None]) -> LoggedIn:
    """Get a grant for ``endpoint`` by its provider's flow and keep its refresh token; return what was done.

    ``show_code`` tells the user the device code (device flow), ``open_url`` opens the authorization page
    (loopback flow). Raise ConfigError for an endpoint that cannot log in so, ConnectError when refused.
    """
    provider = provider_for(endpoint.host or "", endpoint.oauth)
    client_id, secret = endpoint.oauth.client_id or "", client_secret(endpoint)
    try:
        if provider.flow == "device":
            grant = device_flow(provider, client_id, secret, show_code)
        else:
            grant = loopback_flow(provider, client_id, secret, endpoint.user or "", open_url)
    except TokenEndpointError as refused:
        raise type(refused)(refusal_sentence(refused, endpoint.account, login_command(endpoint)),
                            refused.error, refused.description) from None
    return LoggedIn(provider, save_grant(endpoint, grant, provider.token_url))
