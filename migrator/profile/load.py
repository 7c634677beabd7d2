"""Load a profile: YAML with places, checked key by key against schema v1.

Every mistake is a ConfigError naming the file, line and column, the key, and what was
expected; a misspelt key suggests the key it resembles rather than being ignored.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from migrator.core.errors import ConfigError, closest
from migrator.endpoints.endpoint import admin_problem, preset_auth
from migrator.endpoints.kinds import KINDS, OAUTH_METHODS, OAUTH_OPTIONS, TARGET_KINDS
from migrator.endpoints.presets import PRESETS, Limits
from migrator.pipeline.filters import MessageFilter
from migrator.pipeline.foldermap import MapRule
from migrator.profile import nodes
from migrator.profile.nodes import Item, Mapping, Scalar, Sequence, Where
from migrator.profile.schema import (
    ENDPOINT_KEYS,
    ENDPOINT_TYPES,
    FILTERS_KEYS,
    FOLDERS_KEYS,
    MAP_KEYS,
    OPTIONS_KEYS,
    PASSWORD_KEYS,
    SCHEMA_VERSION,
    TOKEN_KEYS,
    TOP_KEYS,
    EndpointSpec,
    Key,
    Profile,
)

_PATH_KEYS = ("path", "ca_file", "password_file", "admin_password_file", "token_file")
_LIMIT_KEYS = ("max_bytes_per_second", "max_messages_per_second", "connections", "append_limit")
_T = TypeVar("_T")


def load_profile(path: Path | str, environ: MappingABC[str, str] | None = None) -> Profile:
    """Return the validated profile at ``path``; raise ConfigError naming file, line, column and key."""
    path = Path(path)
    try:
        content = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"no profile {path}: check the path, or write one with `migrator profile init {path}`"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read the profile {path}: {getattr(error, 'strerror', None) or error}") from None
    tree = nodes.parse(content, str(path), environ)
    if tree is None:
        raise ConfigError(f"the profile {path} is empty: start from `migrator profile init`")
    return _ProfileReader(path).read(tree)


@dataclass
class _Section:
    """A checked mapping: converted values, the items behind them, and where each was written."""

    name: str
    where: Where
    values: dict[str, object]
    items: dict[str, Item]
    key_where: dict[str, Where]

    def error(self, key: str, message: str) -> ConfigError:
        """Return a ConfigError at ``key`` (or at the section when the key is absent)."""
        return self.key_where.get(key, self.where).error(f"{self.name}: {message}")

    def value(self, key: str, kind: type[_T]) -> _T | None:
        """Return the value of ``key`` as its converter made it, a ``kind``, or None when the key is absent."""
        value = self.values.get(key)
        if value is None or isinstance(value, kind):
            return value
        raise TypeError(f"{self.name}: {key} was converted to {type(value).__name__}, not {kind.__name__}")


def _with_preset(section: _Section) -> None:
    """Fill in what the endpoint's provider preset gives and the endpoint does not say: host, port, TLS, login."""
    name = section.value("provider", str)
    if name is None:
        return
    preset, values = PRESETS[name], section.values
    values.setdefault("host", preset.host)
    values.setdefault("tls", preset.tls)
    values.setdefault("port", preset.port)
    if "auth" not in values and (auth := preset_auth(preset, values)) is not None:
        values["auth"] = auth


def _section(item: Item, name: str, keys: dict[str, Key], expected: str) -> _Section:
    """Return ``item`` checked against ``keys``; raise ConfigError for unknown keys or wrong values."""
    if not isinstance(item, Mapping):
        raise item.where.error(f"{name}: expected {expected}, got {_shown(item)}")
    values: dict[str, object] = {}
    for key, child in item.entries.items():
        where = item.key_where[key]
        if key not in keys:
            raise where.error(f"{name}: unknown key {key!r}; {_suggestion(key, keys)}")
        convert = keys[key].convert
        if convert is None:
            continue
        try:
            values[key] = convert(_plain(child))
        except ValueError:
            raise child.where.error(f"{name}: {key} expects {keys[key].expected}, got {_shown(child)}") from None
    return _Section(name, item.where, values, item.entries, item.key_where)


def _suggestion(key: str, keys: dict[str, Key]) -> str:
    close = closest(key.lower(), keys)
    if close:
        return f"did you mean {close!r}?"
    return f"the keys here are {', '.join(keys)}"


def _plain(item: Item) -> object:
    if isinstance(item, Scalar):
        return item.value
    if isinstance(item, Sequence):
        return [_plain(child) for child in item.items]
    return {key: _plain(child) for key, child in item.entries.items()}


def _shown(item: Item) -> str:
    if isinstance(item, Mapping):
        return "a mapping"
    if isinstance(item, Sequence):
        return "a list"
    if item.value is None:
        return "nothing"
    return repr(item.value) if isinstance(item.value, str) else f"{item.value!r} ({type(item.value).__name__})"


class _ProfileReader:
    """Reads one profile tree; paths in it are relative to the profile's directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.resolve().parent
        self.warnings: list[str] = []

    def read(self, tree: Item) -> Profile:
        top = _section(tree, "profile", TOP_KEYS, "a mapping of keys (version, source, targets, ...)")
        self._check_version(top)
        for required in ("source", "targets"):
            if required not in top.items:
                raise top.where.error(f"profile: no {required}: add {required}: with {TOP_KEYS[required].expected}")
        source = self._endpoint(top.items["source"], "source")
        targets = self._targets(top.items["targets"])
        delete_after, keep_days = self._deletion(top, source)
        options = self._optional(top, "options", OPTIONS_KEYS)
        folders = self._optional(top, "folders", FOLDERS_KEYS)
        state = top.value("state", str)
        return Profile(
            path=self.path, name=self.path.stem, source=source, targets=targets,
            include=folders.value("include", tuple) or (), exclude=folders.value("exclude", tuple) or (),
            renames=self._renames(folders), message_filter=self._filter(top),
            state=self._path(state) if state is not None else None,
            delete_after=delete_after, keep_days=keep_days,
            dry_run=options.value("dry_run", bool) or False, quiet=options.value("quiet", bool) or False,
            connections=options.value("connections", int), warnings=tuple(self.warnings),
            limits=Limits(max_bytes_per_second=options.value("max_bytes_per_second", int),
                          max_messages_per_second=options.value("max_messages_per_second", float)),
        )

    def _check_version(self, top: _Section) -> None:
        if "version" not in top.items:
            raise top.where.error(f"profile: no version: start the profile with `version: {SCHEMA_VERSION}`")

    def _optional(self, top: _Section, key: str, keys: dict[str, Key]) -> _Section:
        item = top.items.get(key)
        if item is None or (isinstance(item, Scalar) and item.value is None):
            return _Section(key, top.where, {}, {}, {})
        return _section(item, key, keys, TOP_KEYS[key].expected)

    # --- endpoints -------------------------------------------------------------------

    def _targets(self, item: Item) -> tuple[EndpointSpec, ...]:
        if not isinstance(item, Sequence) or not item.items:
            raise item.where.error(f"profile: targets expects {TOP_KEYS['targets'].expected}, got {_shown(item)}")
        targets = []
        for number, child in enumerate(item.items, 1):
            spec = self._endpoint(child, f"target {number}")
            if not KINDS[spec.type].can_be_target:
                raise child.where.error(f"target {number}: {spec.type} cannot be a target "
                                        f"({KINDS[spec.type].description}); write to {', '.join(TARGET_KINDS)}")
            targets.append(spec)
        return tuple(targets)

    def _endpoint(self, item: Item, name: str) -> EndpointSpec:
        section = _section(item, name, ENDPOINT_KEYS, TOP_KEYS["source"].expected)
        kind = section.value("type", str)
        if kind is None:
            raise section.where.error(f"{name}: no type: add type: with one of {', '.join(ENDPOINT_TYPES)}")
        for key in section.values:
            if kind not in ENDPOINT_KEYS[key].applies_to:
                usable = ", ".join(k for k, spec in ENDPOINT_KEYS.items() if kind in spec.applies_to and k != "type")
                raise section.error(key, f"{key} does not apply to a {kind} endpoint (it takes {usable})")
        if KINDS[kind].is_server:
            _with_preset(section)
            self._check_server(section, kind)
        elif "path" not in section.values:
            raise section.where.error(f"{name}: no path: add path: with where the {kind} archive is")
        values = dict(section.values)
        for key in _PATH_KEYS:
            if (text := section.value(key, str)) is not None:
                values[key] = self._path(text) if key == "path" else str(self._path(text))
        values["oauth"] = {key: values.pop(key) for key in OAUTH_OPTIONS if key in values}
        limits = {key: values.pop(key) for key in _LIMIT_KEYS if key in values}
        values["limits"] = Limits(**cast("dict[str, Any]", limits))
        # Each value is what its key's converter returned, the type EndpointSpec's field of that name holds.
        return EndpointSpec(**cast("dict[str, Any]", values))

    def _check_server(self, section: _Section, kind: str) -> None:
        for required in ("host", "user"):
            if required not in section.values:
                raise section.where.error(f"{section.name}: no {required}: a {kind} endpoint needs host and user")
        if problem := admin_problem(section.values, cast("str | None", section.values.get("auth"))):
            raise section.error(*problem)
        if section.values.get("auth") in OAUTH_METHODS:
            self._check_oauth(section)
            return
        oauth = [key for key in OAUTH_OPTIONS if key in section.values]
        if oauth:
            raise section.error(oauth[0], f"{oauth[0]} is for OAuth2 logins: add auth: xoauth2 (or oauthbearer, "
                                          "or oauth2 to let the server choose)")
        sources = [key for key in PASSWORD_KEYS if key in section.values]
        if not sources and "admin_user" not in section.values:
            raise section.where.error(
                f"{section.name}: no password source for {section.values['user']}@{section.values['host']}: "
                "add password_command, password_env, password_file or password"
            )
        if len(sources) > 1:
            raise section.error(sources[1], f"give one password source, not both {sources[0]} and {sources[1]}")
        auth = section.values.get("auth")
        if auth is not None and auth not in KINDS[kind].auth_methods:
            methods = ", ".join(KINDS[kind].auth_methods)
            raise section.error("auth", f"auth {auth!r} is not a {kind} login method: use {methods}")
        for literal in ("password", "admin_password"):
            if literal in section.values:
                self._check_literal_password(section, literal)

    def _check_oauth(self, section: _Section) -> None:
        """Check an OAuth2 login: no password, one token source, or a client id for `migrator login`'s grant."""
        passwords = [key for key in PASSWORD_KEYS if key in section.values]
        if passwords:
            raise section.error(passwords[0], f"auth: {section.values['auth']} logs in with an access token, not a "
                                              "password: drop it, or give token_command, token_file or token_env")
        tokens = [key for key in TOKEN_KEYS if key in section.values]
        if len(tokens) > 1:
            raise section.error(tokens[1], f"give one access token source, not both {tokens[0]} and {tokens[1]}")
        if not tokens and "client_id" not in section.values:
            raise section.where.error(
                f"{section.name}: no access token source for {section.values['user']}@{section.values['host']}: "
                "add token_command (a helper such as oama or pizauth), token_file or token_env, or client_id "
                "(your own OAuth2 client) and run `migrator login` once"
            )

    def _check_literal_password(self, section: _Section, key: str) -> None:
        item = section.items[key]
        if isinstance(item, Scalar) and item.from_environment:
            return
        try:
            mode = self.path.stat().st_mode
        except OSError:
            return
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            self.warnings.append(
                f"{self.path} holds a password (line {item.where.line}) and other users can read it: "
                f"run chmod 600 {self.path}, or use {key}_command, {key}_env or {key}_file"
            )

    def _path(self, text: str) -> Path:
        return self.base / os.path.expanduser(text)

    # --- folders, filters, deletion, options -----------------------------------------

    def _renames(self, folders: _Section) -> tuple[MapRule, ...]:
        item = folders.items.get("map")
        if item is None:
            return ()
        if not isinstance(item, Sequence):
            raise item.where.error(f"folders: map expects {FOLDERS_KEYS['map'].expected}, got {_shown(item)}")
        return tuple(self._rename(child) for child in item.items)

    def _rename(self, item: Item) -> MapRule:
        if isinstance(item, Mapping):
            section = _section(item, "folders map", MAP_KEYS, "")
            for required in ("from", "to"):
                if required not in section.values:
                    raise section.where.error(f"folders map: no {required}: write {{from: OLD, to: NEW}}")
            old = str(section.values["from"])
            if "=" in old:
                raise section.error("from", "from cannot contain '=': in a regular expression write \\x3d instead")
            text = f"{old}={section.values['to']}"
        elif isinstance(item, Scalar) and isinstance(item.value, str):
            text = item.value
        else:
            raise item.where.error(f"folders: a map entry is 'OLD=NEW' or {{from: OLD, to: NEW}}, not {_shown(item)}")
        try:
            return MapRule.parse(text)
        except ConfigError as error:
            raise item.where.error(f"folders map: {error}") from None

    def _filter(self, top: _Section) -> MessageFilter:
        filters = self._optional(top, "filters", FILTERS_KEYS)
        chosen = MessageFilter(filters.value("since", dt.datetime), filters.value("before", dt.datetime),
                               filters.value("max_size", int), filters.value("unseen_only", bool) or False)
        if chosen.empty_window:
            raise filters.error("before", "before must be later than since, or no message can match")
        return chosen

    def _deletion(self, top: _Section, source: EndpointSpec) -> tuple[bool, int | None]:
        delete_after = top.value("delete_after", bool)
        keep_days = top.value("keep_days", int)
        given = {"delete_after": delete_after is True, "keep_days": keep_days is not None}
        asked = [key for key, present in given.items() if present]
        if asked and not KINDS[source.type].can_delete:
            deleting = ", ".join(name for name, kind in KINDS.items() if kind.can_delete)
            raise top.error(
                asked[0], f"{asked[0]} applies to {deleting} sources only; the source here is {source.type}"
            )
        if keep_days is not None and delete_after is False:
            raise top.error("keep_days", "keep_days asks for deletion, but delete_after is false: drop one of them")
        return bool(delete_after), keep_days

