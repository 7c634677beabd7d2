"""Endpoints of a harness server's user: the URL a command line is given, and the Endpoint a store test opens.

Every URL trusts the server's own CA and names the password by environment variable, as a
user's would; a ``port`` of a proxy's puts the proxy between.
"""

from __future__ import annotations

import os

from harness.mailserver import MailServer, MailUser
from migrator.endpoints.credentials import PasswordSource
from migrator.endpoints.endpoint import Endpoint


def url(server: MailServer, user: MailUser, scheme: str = "imaps", *, port: int | str | None = None,
        password_env: str | None = None, **params: str) -> str:
    """Return ``scheme://user@host:port?password_env=…&ca_file=…&params`` for ``user`` on ``server``.

    ``port`` is a number (a proxy's) or the name of one of the server's ports; by default the
    scheme's own. Without ``password_env`` the password goes into ``PW_<user>`` of this process's
    environment, where the command line run here or as a child finds it.
    """
    if password_env is None:
        password_env = f"PW_{user.name}"
        os.environ[password_env] = user.password
    query = {"password_env": password_env}
    if params.get("tls") != "none":
        query["ca_file"] = str(server.ca_file)
    query.update(params)
    address = f"{scheme}://{user.name}@{server.host}:{_port(server, scheme, port)}"
    return address + "?" + "&".join(f"{key}={value}" for key, value in query.items())


def endpoint(server: MailServer, user: MailUser, scheme: str = "imaps", *, port: int | str | None = None,
             **changes: object) -> Endpoint:
    """Return migrator's Endpoint for ``user`` on ``server`` over ``scheme`` (TLS from the start, or STARTTLS)."""
    fields: dict = dict(kind=scheme.rstrip("s"), host=server.host, port=_port(server, scheme, port), user=user.name,
                        tls="implicit" if scheme.endswith("s") else "starttls", ca_file=str(server.ca_file),
                        password=PasswordSource(literal=user.password))
    fields.update(changes)
    return Endpoint(**fields)


def stand_in_endpoint(port: int, kind: str = "imap", **changes: object) -> Endpoint:
    """Return the Endpoint of user alice (password "secret") on a stand-in at 127.0.0.1:``port``, in clear."""
    fields: dict = dict(kind=kind, host="127.0.0.1", port=port, user="alice", tls="none",
                        password=PasswordSource(literal="secret"))
    fields.update(changes)
    return Endpoint(**fields)


def _port(server: MailServer, scheme: str, port: int | str | None) -> int:
    if port is None:
        return server.ports[scheme]
    return server.ports[port] if isinstance(port, str) else port
