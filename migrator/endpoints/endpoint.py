"""Endpoints: where mail is read from or written to, written the same way everywhere.

Servers are URLs (``imaps://alice@mail.example.com:993?password_env=PW``); local
archives are ``KIND:PATH`` (``maildir:~/Mail``, ``mbox:backup/``, ``eml:out``, ``pst:a.pst``); an account
of a known provider is ``PROVIDER:ADDRESS`` (``gmail:alice@gmail.com``, endpoints/presets.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from migrator.core.errors import ConfigError, closest, did_you_mean
from migrator.core.sizes import parse_size
from migrator.endpoints.credentials import PasswordSource, TokenSource
from migrator.endpoints.kinds import (
    ADMIN_PASSWORD_OPTIONS,
    GMAIL_OPTIONS,
    KINDS,
    LOCAL_KINDS,
    OAUTH_METHODS,
    OAUTH_OPTIONS,
    SCHEMES,
    TOKEN_OPTIONS,
    StoreKind,
    endpoint_forms,
)
from migrator.endpoints.oauth2.providers import FLOWS, PROVIDERS, OAuthClient
from migrator.endpoints.presets import PRESETS, Limits, Preset, parse_limits, preset_named

TLS_MODES = ("implicit", "starttls", "none")


class Endpoint(NamedTuple):
    """A parsed endpoint. ``kind`` is one of imap, pop3, maildir, mbox, eml, pst."""

    kind: str
    path: Path | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    tls: str = "implicit"
    ca_file: str | None = None
    password: PasswordSource = PasswordSource()
    admin_user: str | None = None  # an admin who logs in with their own password and acts as ``user`` (SASL PLAIN)
    admin_password: PasswordSource = PasswordSource()  # the admin's, with admin_user
    auth: str | None = None  # e.g. "apop" or "plain" for POP3, "xoauth2"; None lets the client choose
    token: TokenSource = TokenSource()  # OAuth2: a helper's access token
    oauth: OAuthClient = OAuthClient()  # OAuth2: the user's client, for `migrator login`
    part_size: int | None = None  # PST only: start a new file when one reaches this size
    gmail: str = "labels"  # IMAP, a Gmail account: labels (each message once, into its labels' folders) or folders
    all_mail: str = "unlabelled"  # IMAP, Gmail in labels mode: what its All Mail's copy holds, unlabelled or all
    hard_links: bool = False  # Maildir (?links=hard): a Gmail message's further label copies are hard links
    provider: str | None = None  # a preset's name (gmail, microsoft365...): its limits apply where these say none
    limits: Limits = Limits()  # as the user wrote them (URL options, profile keys)

    @property
    def preset(self) -> Preset | None:
        """Return the provider preset this endpoint names, or None."""
        return PRESETS.get(self.provider) if self.provider else None

    @property
    def pace(self) -> Limits:
        """Return the limits that apply: the user's, then the preset's."""
        preset = self.preset
        return self.limits.over(preset.limits) if preset is not None else self.limits

    @property
    def store_kind(self) -> StoreKind:
        """Return what this kind of store is and can do."""
        return KINDS[self.kind]

    @property
    def uses_oauth2(self) -> bool:
        """Return True when the login is SASL with an OAuth2 access token instead of a password."""
        return self.auth in OAUTH_METHODS

    @property
    def is_server(self) -> bool:
        """Return True for IMAP and POP3 endpoints."""
        return self.store_kind.is_server

    @property
    def address(self) -> tuple[str, int]:
        """Return a server endpoint's host and port; raise ValueError for an archive, which has neither."""
        if self.host is None or self.port is None:
            raise ValueError(f"{self} is not a server endpoint")
        return self.host, self.port

    @property
    def local_path(self) -> Path:
        """Return a local archive's path; raise ConfigError for an endpoint that names none (a server)."""
        if self.path is None:
            raise ConfigError(f"{self} names no path: write {self.kind}:PATH")
        return self.path

    @property
    def account(self) -> str:
        """Return ``user@host`` for servers, the path for archives (for messages and logs)."""
        if self.is_server:
            return f"{self.user}@{self.host}"
        return str(self.path)

    def __str__(self) -> str:
        if not self.is_server:
            return f"{self.kind}:{self.path}"
        wanted = "implicit" if self.tls == "implicit" else "starttls"
        scheme = next(s.name for s in self.store_kind.schemes if s.tls == wanted)
        suffix = "?tls=none" if self.tls == "none" else ""
        return f"{scheme}://{self.user}@{self.host}:{self.port}{suffix}"


def parse_endpoint(text: str) -> Endpoint:
    """Return the Endpoint written as ``text``; raise ConfigError saying what is wrong."""
    scheme, sep, rest = text.partition(":")
    scheme = scheme.lower()
    if sep and scheme in LOCAL_KINDS:
        return _local(scheme, rest, text)
    if sep and preset_named(scheme) is not None:
        return _preset(scheme, rest, text)
    if sep and scheme in SCHEMES and rest.startswith("//"):
        return _with_pace(_server(_with_preset_auth(text)), text)
    raise ConfigError(f"cannot understand the endpoint {text!r}{_suggestion(scheme)}: write one of {endpoint_forms()}")


def _suggestion(scheme: str) -> str:
    """Return a hint for a mistyped scheme (``maildr:``, ``imap5://``), or an empty string."""
    close = closest(scheme, [*SCHEMES, *LOCAL_KINDS, *PRESETS]) if scheme else None
    if close is None:
        return ""
    return f" (did you mean {close}://…?)" if close in SCHEMES else f" (did you mean {close}:…?)"


def _preset(name: str, rest: str, text: str) -> Endpoint:
    """Return the IMAP endpoint ``PROVIDER:ADDRESS[?options]`` stands for; raise ConfigError."""
    preset = PRESETS[name.lower()]
    address, _, query = rest.removeprefix("//").partition("?")
    if not address:
        raise ConfigError(f"the endpoint {text!r} names no account: write {preset.name}:ADDRESS")
    scheme = "imaps" if preset.tls == "implicit" else "imap"
    options = "&".join(part for part in (query, f"provider={preset.name}") if part)
    url = f"{scheme}://{quote(unquote(address), safe='')}@{preset.host}:{preset.port}?{options}"
    try:
        return _with_pace(_server(_with_preset_auth(url)), url)
    except ConfigError as error:  # its words name the URL the shortcut stands for: name the shortcut instead
        raise ConfigError(str(error).replace(url, text)) from None


def _with_preset_auth(url: str) -> str:
    """Return ``url`` with its preset's login method added to its options when they name none."""
    params = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    preset = preset_named(params.get("provider") or "")
    auth = preset_auth(preset, params) if preset is not None and not params.get("auth") else None
    return f"{url}{'&' if '?' in url else '?'}auth={auth}" if auth else url


def preset_auth(preset: Preset, written: Mapping[str, object]) -> str | None:
    """Return ``preset``'s login method for an endpoint whose options or keys are ``written``: OAuth2 when they
    give an access token source or a client id (or the provider takes no password), else None (a password)."""
    token = any(written.get(key) for key in ("token_env", "token_file", "token_command", "client_id"))
    password = any(written.get(key) for key in ("password_env", "password_file", "password_command", "password"))
    return preset.default_auth(token=token, password=password)


def _with_pace(endpoint: Endpoint, text: str) -> Endpoint:
    """Return ``endpoint`` with the provider and limits its URL options give; raise ConfigError for an unknown
    provider or a bad limit."""
    params = dict(parse_qsl(urlsplit(text).query, keep_blank_values=True))
    return with_provider(endpoint, params.get("provider") or None, parse_limits(params, text), params, text)


def with_provider(endpoint: Endpoint, provider: str | None, limits: Limits, written: dict[str, str],
                  where: str) -> Endpoint:
    """Return ``endpoint`` with ``provider``'s preset and ``limits``; ``written`` holds the options or keys the
    user gave, which win over the preset (its login method applies only when they name none)."""
    if not provider:
        return endpoint._replace(limits=limits)
    preset = preset_named(provider)
    if preset is None:
        raise ConfigError(f"provider={provider} in {where} is not a provider migrator knows"
                          f"{did_you_mean(provider.lower(), PRESETS)}: use one of {', '.join(PRESETS)}")
    auth = endpoint.auth if endpoint.auth is not None or written.get("auth") else preset_auth(preset, written)
    return endpoint._replace(provider=preset.name, limits=limits, auth=auth)


def _local(kind: str, rest: str, text: str) -> Endpoint:
    if rest.startswith("//"):
        rest = rest[2:]
    part_size = None
    hard_links = kind == "maildir" and rest.endswith("?links=hard")
    if hard_links:
        rest = rest.removesuffix("?links=hard")
    if kind == "pst" and "?part_size=" in rest:
        rest, _, size = rest.partition("?part_size=")
        try:
            part_size = parse_size(size)
        except ValueError:
            raise ConfigError(f"part_size={size!r} in {text!r} is not a size like 10GB") from None
    if not rest:
        raise ConfigError(f"the endpoint {text!r} names no path: write {kind}:PATH")
    # Absolute, so that the same archive named from two directories is one endpoint (and one state file).
    return Endpoint(kind=kind, path=Path(os.path.abspath(os.path.expanduser(rest))), part_size=part_size,
                    hard_links=hard_links)


def _server(text: str) -> Endpoint:
    url = urlsplit(text)
    kind, scheme = SCHEMES[url.scheme.lower()]
    tls, default_port = scheme.tls, scheme.port
    params = dict(parse_qsl(url.query, keep_blank_values=True))
    unknown = sorted(set(params) - set(kind.options))
    if unknown:
        raise ConfigError(f"unknown option {unknown[0]!r} in {text!r}{did_you_mean(unknown[0], kind.options)}: "
                          f"use one of {', '.join(sorted(kind.options))}")
    if url.password is not None:
        raise ConfigError(
            "a password in the endpoint URL would end up in shell history and process lists: "
            "use ?password_env=VAR or ?password_file=PATH instead"
        )
    if not url.hostname:
        raise ConfigError(f"the endpoint {text!r} names no host: write {url.scheme}://USER@HOST")
    if not url.username:
        raise ConfigError(f"the endpoint {text!r} names no user: write {url.scheme}://USER@{url.hostname}")
    if "tls" in params:
        tls = _tls_mode(params["tls"], text)
    auth = params.get("auth", "").lower() or None
    if auth is not None and auth not in kind.auth_methods:
        raise ConfigError(f"auth={auth} in {text!r} is not a {kind.name} login method: "
                          f"use one of {', '.join(kind.auth_methods)}")
    _check_oauth(params, auth, text)
    if problem := admin_problem(params, auth):
        raise ConfigError(f"{problem[1]} (in {text!r})")
    try:
        port = url.port or default_port
    except ValueError:
        raise ConfigError(f"the port in {text!r} is not a number between 1 and 65535") from None
    return Endpoint(
        kind=kind.name,
        host=url.hostname,
        port=port,
        user=unquote(url.username),
        tls=tls,
        ca_file=params.get("ca_file") or None,
        password=PasswordSource(
            env=params.get("password_env") or None,
            file=params.get("password_file") or None,
            command=params.get("password_command") or None,
        ),
        admin_user=params.get("admin_user") or None,
        admin_password=PasswordSource(
            env=params.get("admin_password_env") or None,
            file=params.get("admin_password_file") or None,
            command=params.get("admin_password_command") or None,
        ),
        auth=auth,
        gmail=gmail_option(params, "gmail", text),
        all_mail=gmail_option(params, "all_mail", text),
        token=TokenSource(
            env=params.get("token_env") or None,
            file=params.get("token_file") or None,
            command=params.get("token_command") or None,
        ),
        oauth=oauth_client(params, text),
    )


def _check_oauth(params: dict[str, str], auth: str | None, text: str) -> None:
    """Raise ConfigError when the login method and the sources of secrets given in ``text`` disagree."""
    tokens = [key for key in TOKEN_OPTIONS if params.get(key)]
    if len(tokens) > 1:
        raise ConfigError(f"give one access token source in {text!r}, not both {tokens[0]} and {tokens[1]}")
    oauth = [key for key in OAUTH_OPTIONS if params.get(key)]
    if oauth and auth not in OAUTH_METHODS:
        raise ConfigError(f"{oauth[0]} in {text!r} is for OAuth2 logins: add auth=xoauth2 (or oauthbearer, or "
                          "oauth2 to let the server choose)")
    passwords = [key for key in ("password_env", "password_file", "password_command") if params.get(key)]
    if passwords and auth in OAUTH_METHODS:
        raise ConfigError(f"auth={auth} in {text!r} logs in with an access token, not a password: "
                          f"drop {passwords[0]}, or give token_command, token_file or token_env instead")


def admin_problem(written: Mapping[str, object], auth: str | None) -> tuple[str, str] | None:
    """Return the option or key at fault and what to do when the admin login that ``written`` (URL options or
    profile keys) describes cannot work, else None."""
    sources = [key for key in ("admin_password", *ADMIN_PASSWORD_OPTIONS) if written.get(key)]  # the first: profiles
    if not written.get("admin_user"):
        return (sources[0], f"{sources[0]} is an admin's password: add admin_user, the admin's login name") \
            if sources else None
    if not sources:
        return "admin_user", ("admin_user logs in with the admin's password: add admin_password_command, "
                              "admin_password_file or admin_password_env")
    if len(sources) > 1:
        return sources[1], f"give one admin password source, not both {sources[0]} and {sources[1]}"
    passwords = [key for key in ("password", "password_env", "password_file", "password_command") if written.get(key)]
    if passwords:
        return passwords[0], (f"with admin_user the admin logs in with their own password, not the user's: "
                              f"drop {passwords[0]}")
    if auth not in (None, "plain"):
        return "auth", (f"admin_user logs in with SASL PLAIN, whose authorization identity names the user; "
                        f"auth={auth} cannot carry it: drop auth (or write auth=plain)")
    return None


def oauth_client(options: dict[str, str], where: str) -> OAuthClient:
    """Return the OAuth2 client ``options`` (URL options or profile keys) describe; raise ConfigError if wrong."""
    for key, allowed in (("oauth_provider", PROVIDERS), ("flow", FLOWS)):
        if options.get(key) and options[key].lower() not in allowed:
            raise ConfigError(f"{key}={options[key]} in {where} is not one of {', '.join(allowed)}")
    return OAuthClient(
        client_id=options.get("client_id") or None,
        client_secret=options.get("client_secret") or None,
        client_secret_command=options.get("client_secret_command") or None,
        tenant=options.get("tenant") or None,
        scopes=options.get("scopes") or None,
        provider=(options.get("oauth_provider") or "").lower() or None,
        flow=(options.get("flow") or "").lower() or None,
        auth_url=options.get("auth_url") or None,
        token_url=options.get("token_url") or None,
        device_url=options.get("device_url") or None,
    )


def gmail_option(options: dict[str, str], key: str, where: str) -> str:
    """Return the Gmail option ``key`` (``gmail``, ``all_mail``) of ``options``, or its default; raise ConfigError."""
    allowed = GMAIL_OPTIONS[key]
    value = (options.get(key) or allowed[0]).lower()
    if value not in allowed:
        raise ConfigError(f"{key}={options[key]} in {where} is not one of {', '.join(allowed)}")
    return value


def _tls_mode(value: str, text: str) -> str:
    aliases = {"implicit": "implicit", "ssl": "implicit", "starttls": "starttls", "none": "none", "plain": "none"}
    try:
        return aliases[value.lower()]
    except KeyError:
        raise ConfigError(f"tls={value!r} in {text!r} is not one of implicit, starttls, none") from None
