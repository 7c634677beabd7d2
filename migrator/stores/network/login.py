"""The secret a server store logs in with, as the reconnect policy must see its failures."""

from __future__ import annotations

from migrator.endpoints.login_secret import LoginExpired, LoginSecret
from migrator.stores.network.reconnect import Refused


def fresh_secret(secret: LoginSecret) -> str:
    """Return the password or a fresh access token; raise Refused when the provider refused the stored grant,
    which no new connection can change (run `migrator login` again), ConfigError or ConnectError otherwise."""
    try:
        return secret.get()
    except LoginExpired as error:
        raise Refused(str(error)) from None
