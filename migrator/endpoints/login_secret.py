"""What a server store logs in with, asked for whenever a connection needs it.

A password is asked for once (it may come from a prompt) and kept for the run's reconnections; with an
admin_user it is the admin's password (admin_password_env, _file or _command), not the user's. An
OAuth2 access token is asked for at every connection: from token_command, token_file or token_env
(a helper hands out a fresh one each time), or else from the grant `migrator login` stored, refreshed
when it is about to expire. Neither is ever logged or shown.
"""

from __future__ import annotations

import threading

from migrator.core.errors import ConnectError
from migrator.endpoints.endpoint import Endpoint


class LoginExpired(ConnectError):
    """The provider refused the stored refresh token (expired, revoked): only `migrator login` again helps."""


class LoginSecret:
    """The password or access token of one endpoint, shared by the connections of a run (thread-safe)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._password: str | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LoginSecret({self.endpoint.account}, {'token' if self.endpoint.uses_oauth2 else 'password'})"

    def get(self) -> str:
        """Return what to log in with now; raise ConfigError or ConnectError when it cannot be had."""
        endpoint = self.endpoint
        if endpoint.uses_oauth2:
            if endpoint.token:
                return endpoint.token.resolve(endpoint.account)
            from migrator.endpoints.oauth2.grants import access_token  # only OAuth2 logins need urllib and json

            return access_token(endpoint)
        with self._lock:
            if self._password is None:
                self._password = self._resolve_password()
            return self._password

    def _resolve_password(self) -> str:
        endpoint = self.endpoint
        if endpoint.admin_user:
            return endpoint.admin_password.resolve(f"the admin {endpoint.admin_user} (for {endpoint.account})")
        return endpoint.password.resolve(endpoint.account)

    @property
    def refreshable(self) -> bool:
        """Return True when the token comes from the grant `migrator login` kept, which can be refreshed."""
        return self.endpoint.uses_oauth2 and not self.endpoint.token

    def forget_token(self) -> None:
        """Drop the access token held for this endpoint (the server refused it): the next one is refreshed."""
        if self.refreshable:
            from migrator.endpoints.oauth2.grants import forget_access_token

            forget_access_token(self.endpoint)
