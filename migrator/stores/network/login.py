"""The secret a server store logs in with, as the reconnect policy must see its failures."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from migrator.core.errors import Refused
from migrator.endpoints.login_secret import LoginExpired, LoginSecret

log = logging.getLogger(__name__)
T = TypeVar("T")


def fresh_secret(secret: LoginSecret) -> str:
    """Return the password or a fresh access token; raise Refused when the provider refused the stored grant,
    which no new connection can change (run `migrator login` again), ConfigError or ConnectError otherwise."""
    try:
        return secret.get()
    except LoginExpired as error:
        raise Refused(str(error)) from None


def logged_in(secret: LoginSecret, connect: Callable[[str], T]) -> T:
    """Return ``connect(secret)``: a new logged-in connection. A kept grant's access token the server refuses
    (revoked before its time, say) is refreshed once and tried again, so that a revoked grant is reported
    as the provider's invalid_grant, with what to do, rather than as a refused login."""
    try:
        return connect(fresh_secret(secret))
    except Refused as refused:
        if not secret.refreshable:
            raise
        log.info("%s: trying a new access token (%s)", secret.endpoint.account, refused)
        secret.forget_token()
        return connect(fresh_secret(secret))
