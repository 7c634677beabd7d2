"""Where an OAuth2 provider's endpoints are, and which flow it wants, from the endpoint's host and options."""

from __future__ import annotations

from typing import NamedTuple

from migrator.core.errors import ConfigError

MICROSOFT_AUTHORITY = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/"
MICROSOFT_SCOPES = ("https://outlook.office.com/IMAP.AccessAsUser.All",
                    "https://outlook.office.com/POP.AccessAsUser.All", "offline_access")
GOOGLE_AUTH_URL = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
GOOGLE_SCOPES = ("https://mail.google.com/",)
PROVIDERS = ("microsoft", "google")
FLOWS = ("device", "loopback")
_GOOGLE_HOSTS = ("imap.gmail.com", "pop.gmail.com", "imap.googlemail.com", "pop.googlemail.com")
_MICROSOFT_HOSTS = ("outlook.office365.com", "outlook.office.com")


class OAuthClient(NamedTuple):
    """The user's own OAuth2 client and any endpoint overrides, as the endpoint or profile wrote them."""

    client_id: str | None = None
    client_secret: str | None = None
    client_secret_command: str | None = None
    tenant: str | None = None
    scopes: str | None = None
    provider: str | None = None
    flow: str | None = None
    auth_url: str | None = None
    token_url: str | None = None
    device_url: str | None = None

    def __repr__(self) -> str:  # the client secret stays out of logs and tracebacks
        shown = ", ".join(f"{key}={value!r}" for key, value in self._asdict().items()
                          if value is not None and key != "client_secret")
        return f"OAuthClient({shown}{', client_secret=***' if self.client_secret else ''})"


class Provider(NamedTuple):
    """Where to ask for tokens: ``flow`` is how `migrator login` gets the first grant."""

    name: str
    flow: str
    token_url: str
    auth_url: str | None
    device_url: str | None
    scopes: tuple[str, ...]


def provider_name(host: str, client: OAuthClient) -> str | None:
    """Return microsoft or google, from the ``oauth_provider`` option or else the server's host; None if unknown."""
    if client.provider:
        return client.provider
    host = host.lower().rstrip(".")
    if host in _GOOGLE_HOSTS:
        return "google"
    if host in _MICROSOFT_HOSTS or host.endswith(".outlook.com"):
        return "microsoft"
    return None


def provider_for(host: str, client: OAuthClient) -> Provider:
    """Return the provider of an account on ``host``, with the client's overrides; raise ConfigError if unknown."""
    name = provider_name(host, client)
    if name == "microsoft":
        authority = MICROSOFT_AUTHORITY.format(tenant=client.tenant or "common")
        default = Provider(name, "device", authority + "token", authority + "authorize", authority + "devicecode",
                           MICROSOFT_SCOPES)
    elif name == "google":
        default = Provider(name, "loopback", GOOGLE_TOKEN_URL, GOOGLE_AUTH_URL, None, GOOGLE_SCOPES)
    elif client.token_url and client.flow:
        default = Provider("custom", client.flow, client.token_url, client.auth_url, client.device_url, ())
    else:
        raise ConfigError(
            f"cannot tell which OAuth2 provider {host} belongs to: add oauth_provider=microsoft or "
            "oauth_provider=google, or flow=device|loopback with token_url (and device_url or auth_url)"
        )
    return Provider(
        name=default.name,
        flow=client.flow or default.flow,
        token_url=client.token_url or default.token_url,
        auth_url=client.auth_url or default.auth_url,
        device_url=client.device_url or default.device_url,
        scopes=tuple(client.scopes.split()) if client.scopes else default.scopes,
    )
