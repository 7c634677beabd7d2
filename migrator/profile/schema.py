"""Profile schema version 1: every key a profile may hold, the values it takes, and the result.

Converters take the value YAML produced (after ``${VAR}`` expansion) and return the value a
run uses, or raise ValueError; the loader then reports what was expected, and where.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from migrator.core.sizes import parse_size as size
from migrator.endpoints.endpoint import TLS_MODES
from migrator.endpoints.kinds import GMAIL_OPTIONS, KINDS, LOCAL_KINDS, SERVER_KINDS
from migrator.endpoints.oauth2.providers import FLOWS, PROVIDERS
from migrator.endpoints.presets import PRESETS, Limits
from migrator.pipeline.filters import MessageFilter
from migrator.pipeline.foldermap import MapRule

SCHEMA_VERSION = 1
ENDPOINT_TYPES = tuple(KINDS)
PASSWORD_KEYS = ("password", "password_env", "password_command", "password_file")
TOKEN_KEYS = ("token_command", "token_file", "token_env")
_TRUE, _FALSE = ("true", "yes", "on"), ("false", "no", "off")


def text(value: object) -> str:
    """Return a non-empty string; numbers are refused so that `password: 0123` cannot change."""
    if isinstance(value, str) and value.strip():
        return value
    raise ValueError


def boolean(value: object) -> bool:
    """Return True or False, also from the words true/false/yes/no (e.g. from ${VAR})."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
        return value.lower() in _TRUE
    raise ValueError


def whole_number(minimum: int, maximum: int | None = None) -> Callable[[object], int]:
    """Return a converter accepting whole numbers (or digit strings) in [minimum, maximum]."""

    def convert(value: object) -> int:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError
        if value < minimum or (maximum is not None and value > maximum):
            raise ValueError
        return value

    return convert


def positive_number(value: object) -> float:
    """Return a number above 0 (a whole or decimal number, or its digits as a string)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError
    number = float(value)
    if not 0 < number < float("inf"):
        raise ValueError
    return number


def choice(*allowed: str) -> Callable[[object], str]:
    """Return a converter accepting one of ``allowed`` (any case)."""

    def convert(value: object) -> str:
        if isinstance(value, str) and value.lower() in allowed:
            return value.lower()
        raise ValueError

    return convert


def date(value: object) -> dt.datetime:
    """Return a timezone-aware moment from a YAML date, a date-time, or an ISO 8601 string.

    A date without a time means midnight, and a time without a zone means local time.
    """
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError from None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, dt.datetime):
        raise ValueError
    return value if value.tzinfo is not None else value.astimezone()


def string_list(value: object) -> tuple[str, ...]:
    """Return one or more non-empty strings (a single string counts as a list of one)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ValueError
    return tuple(text(item) for item in items)


@dataclass(frozen=True)
class Key:
    """A key a section may hold: what it takes (``expected``, for errors) and how to convert it.

    ``applies_to`` lists the endpoint types a key of an endpoint makes sense for.
    """

    name: str
    expected: str
    convert: Callable[[object], object] | None = None  # None: a section, checked by the loader
    applies_to: tuple[str, ...] = ENDPOINT_TYPES


def _keys(*keys: Key) -> dict[str, Key]:
    return {key.name: key for key in keys}


_TEXT = "a string (quote it if it looks like a number)"
_AUTH_METHODS = "; ".join(f"{name}: {', '.join(KINDS[name].auth_methods)}" for name in SERVER_KINDS)
TOP_KEYS = _keys(
    Key("version", f"the schema version, {SCHEMA_VERSION}", whole_number(SCHEMA_VERSION, SCHEMA_VERSION)),
    Key("source", "one endpoint (a mapping with type: and its keys)"),
    Key("targets", "a list of endpoints (each starting with '- type:')"),
    Key("folders", "a mapping with include, exclude and map"),
    Key("filters", "a mapping with since, before, max_size and unseen_only"),
    Key("state", "the path of the state file", text),
    Key("delete_after", "true or false", boolean),
    Key("keep_days", "a whole number of days (0 or more)", whole_number(0)),
    Key("options", "a mapping with dry_run, quiet, connections, max_bytes_per_second and max_messages_per_second"),
)
ENDPOINT_KEYS = _keys(
    Key("type", f"one of {', '.join(ENDPOINT_TYPES)}", choice(*ENDPOINT_TYPES)),
    Key("host", "a host name or address", text, SERVER_KINDS),
    Key("port", "a port number from 1 to 65535", whole_number(1, 65535), SERVER_KINDS),
    Key("tls", f"one of {', '.join(TLS_MODES)}", choice(*TLS_MODES), SERVER_KINDS),
    Key("user", "the login name, " + _TEXT, text, SERVER_KINDS),
    Key("password", _TEXT, text, SERVER_KINDS),
    Key("password_env", "the name of an environment variable", text, SERVER_KINDS),
    Key("password_command", "a shell command printing the password", text, SERVER_KINDS),
    Key("password_file", "the path of a file holding the password", text, SERVER_KINDS),
    Key("admin_user", "an admin's login name: the admin logs in with their own password and acts as user (SASL "
        "PLAIN)", text, SERVER_KINDS),
    Key("admin_password", "the admin's password, " + _TEXT, text, SERVER_KINDS),
    Key("admin_password_env", "the name of an environment variable holding the admin's password", text, SERVER_KINDS),
    Key("admin_password_command", "a shell command printing the admin's password", text, SERVER_KINDS),
    Key("admin_password_file", "the path of a file holding the admin's password", text, SERVER_KINDS),
    Key("ca_file", "the path of a PEM CA certificate", text, SERVER_KINDS),
    Key("auth", f"a login method ({_AUTH_METHODS})",
        choice(*sorted({m for name in SERVER_KINDS for m in KINDS[name].auth_methods})), SERVER_KINDS),
    Key("token_command", "a shell command printing an OAuth2 access token (run at every connection)", text,
        SERVER_KINDS),
    Key("token_file", "the path of a file holding an OAuth2 access token (read at every connection)", text,
        SERVER_KINDS),
    Key("token_env", "the name of an environment variable holding an OAuth2 access token", text, SERVER_KINDS),
    Key("client_id", "your OAuth2 client's id (for `migrator login` and refreshing its tokens)", text, SERVER_KINDS),
    Key("client_secret", "your OAuth2 client's secret, if it has one", text, SERVER_KINDS),
    Key("client_secret_command", "a shell command printing your OAuth2 client's secret", text, SERVER_KINDS),
    Key("tenant", "a Microsoft Entra tenant: common, organizations, or its id or domain", text, SERVER_KINDS),
    Key("scopes", "OAuth2 scopes, separated by spaces", text, SERVER_KINDS),
    Key("oauth_provider", f"one of {', '.join(PROVIDERS)}", choice(*PROVIDERS), SERVER_KINDS),
    Key("flow", f"one of {', '.join(FLOWS)}", choice(*FLOWS), SERVER_KINDS),
    Key("auth_url", "the provider's authorization endpoint URL", text, SERVER_KINDS),
    Key("token_url", "the provider's token endpoint URL", text, SERVER_KINDS),
    Key("device_url", "the provider's device-code endpoint URL", text, SERVER_KINDS),
    Key("provider", f"one of {', '.join(PRESETS)} (its server, login and limits)", choice(*PRESETS), ("imap",)),
    Key("max_bytes_per_second", 'a size a second like 500KB or "2 MB"', size, SERVER_KINDS),
    Key("max_messages_per_second", "a number of messages a second above 0, like 4 or 0.5", positive_number,
        SERVER_KINDS),
    Key("connections", "a whole number of connections, 1 or more (at most, to this server)", whole_number(1),
        SERVER_KINDS),
    Key("append_limit", "a size like 35MB (the largest message this server takes)", size, ("imap",)),
    *(Key(name, f"one of {', '.join(values)} (a Gmail account)", choice(*values), ("imap",))
      for name, values in GMAIL_OPTIONS.items()),
    Key("path", "the path of the archive", text, LOCAL_KINDS),
    Key("links", "hard (a Gmail message's further label copies are hard links)", choice("hard"), ("maildir",)),
)
FOLDERS_KEYS = _keys(
    Key("include", "a folder glob or a list of them ('/' between levels)", string_list),
    Key("exclude", "a folder glob or a list of them ('/' between levels)", string_list),
    Key("map", "a list of renames: 'OLD=NEW' strings or {from: OLD, to: NEW} (re:REGEX for expressions)"),
)
MAP_KEYS = _keys(
    Key("from", "a folder name, or re:REGEX", text),
    Key("to", "the new folder name", text),
)
FILTERS_KEYS = _keys(
    Key("since", "a date like 2024-01-31 (messages received on or after it)", date),
    Key("before", "a date like 2024-12-31 (messages received before it)", date),
    Key("max_size", 'a size like 25MB or "1.5 GB" (larger messages are skipped)', size),
    Key("unseen_only", "true or false", boolean),
)
OPTIONS_KEYS = _keys(
    Key("dry_run", "true or false", boolean),
    Key("quiet", "true or false", boolean),
    Key("connections", "a whole number of connections, 1 or more", whole_number(1)),
    Key("max_bytes_per_second", 'a size a second like 500KB or "2 MB" (for each server)', size),
    Key("max_messages_per_second", "a number of messages a second above 0 (for each server)", positive_number),
)


@dataclass(frozen=True)
class EndpointSpec:
    """One endpoint as the profile wrote it (paths already made absolute)."""

    type: str
    host: str | None = None
    port: int | None = None
    tls: str = "implicit"
    user: str | None = None
    password: str | None = None
    password_env: str | None = None
    password_command: str | None = None
    password_file: str | None = None
    admin_user: str | None = None  # an admin acting for user, with the admin's own password
    admin_password: str | None = None
    admin_password_env: str | None = None
    admin_password_command: str | None = None
    admin_password_file: str | None = None
    ca_file: str | None = None
    auth: str | None = None
    path: Path | None = None
    provider: str | None = None
    limits: Limits = field(default_factory=Limits)  # max_bytes_per_second, connections... as written
    gmail: str = GMAIL_OPTIONS["gmail"][0]  # a Gmail account copied by its labels, or folder by folder
    all_mail: str = GMAIL_OPTIONS["all_mail"][0]  # what its All Mail's copy holds
    links: str | None = None  # Maildir: "hard"
    oauth: dict[str, str] = field(default_factory=dict)  # OAuth2 keys (token sources, client, provider URLs)

    def __repr__(self) -> str:  # never show a literal password
        shown = self.path if self.path is not None else f"{self.user}@{self.host}"
        return f"EndpointSpec({self.type}: {shown})"


@dataclass(frozen=True)
class Profile:
    """A validated profile. ``warnings`` are for the user (e.g. a readable literal password)."""

    path: Path
    name: str
    source: EndpointSpec
    targets: tuple[EndpointSpec, ...]
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    renames: tuple[MapRule, ...] = ()
    message_filter: MessageFilter = field(default_factory=MessageFilter)
    state: Path | None = None
    delete_after: bool = False
    keep_days: int | None = None
    dry_run: bool = False
    quiet: bool = False
    connections: int | None = None  # None: the pipeline's default
    limits: Limits = field(default_factory=Limits)  # options.max_bytes_per_second and max_messages_per_second
    warnings: tuple[str, ...] = ()
