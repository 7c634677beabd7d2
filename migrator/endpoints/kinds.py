"""The kinds of store, and what each can do: the one place that knows them.

Endpoints, profiles, the pipeline and the store factory all read this table, so a new kind of
store (JMAP, say) is one entry here plus its store class. The classes are named, not imported:
a run that only reads a Maildir never loads the PST or IMAP code.
"""

from __future__ import annotations

from typing import NamedTuple

from migrator.core.errors import ConfigError, did_you_mean
from migrator.endpoints.presets import PRESETS

# How hard a run may use a server, and the provider preset it is (endpoints/presets.py); profiles take them as keys.
PACE_OPTIONS = ("provider", "max_bytes_per_second", "max_messages_per_second", "connections", "append_limit")
# An administrator who logs in with their own password and acts as the user (SASL PLAIN's authorization identity).
ADMIN_PASSWORD_OPTIONS = ("admin_password_env", "admin_password_file", "admin_password_command")
ADMIN_OPTIONS = ("admin_user", *ADMIN_PASSWORD_OPTIONS)
# Query options every server endpoint takes (profiles take the same names as keys).
SERVER_OPTIONS = ("password_env", "password_file", "password_command", "ca_file", "tls", "auth", *PACE_OPTIONS,
                  *ADMIN_OPTIONS)
# OAuth2: where the access token comes from (a helper), or the user's own client and its provider for `migrator login`.
TOKEN_OPTIONS = ("token_env", "token_file", "token_command")
OAUTH_CLIENT_OPTIONS = ("client_id", "client_secret", "client_secret_command", "tenant", "scopes", "oauth_provider",
                        "flow", "auth_url", "token_url", "device_url")
OAUTH_OPTIONS = TOKEN_OPTIONS + OAUTH_CLIENT_OPTIONS
# SASL with an OAuth2 access token; oauth2 lets the server's capabilities choose between the two.
OAUTH_METHODS = ("xoauth2", "oauthbearer", "oauth2")
# IMAP only: how a Gmail account (labels shown as folders) is copied, each with its choices, the default first.
GMAIL_OPTIONS = {"gmail": ("labels", "folders"), "all_mail": ("unlabelled", "all")}


class Scheme(NamedTuple):
    """A URL scheme of a server kind: its TLS mode and default port."""

    name: str
    tls: str  # implicit or starttls
    port: int


class StoreKind(NamedTuple):
    """One kind of store: how to name it, where its class lives, and what it can do.

    ``can_delete`` says whether a run may delete copied messages from such a source
    (``--delete``, ``delete_after``): POP3's traditional download-and-delete, nothing else.
    """

    name: str
    store_class: str  # "module:Class", imported when a store of this kind is opened
    description: str
    schemes: tuple[Scheme, ...] = ()  # servers only; a local archive is written KIND:PATH
    auth_methods: tuple[str, ...] = ()
    options: tuple[str, ...] = ()  # what the endpoint's ?query may hold
    can_be_target: bool = True
    can_delete: bool = False

    @property
    def is_server(self) -> bool:
        """Return True for kinds reached over the network (written as URLs)."""
        return bool(self.schemes)

    def default_port(self, tls: str) -> int:
        """Return the port for ``tls`` (implicit, starttls, or none, which uses the STARTTLS port)."""
        mode = "implicit" if tls == "implicit" else "starttls"
        return next(scheme.port for scheme in self.schemes if scheme.tls == mode)

    def forms(self) -> list[str]:
        """Return how an endpoint of this kind is written, e.g. ``imaps://USER@HOST[:PORT]``."""
        if self.is_server:
            return [f"{scheme.name}://USER@HOST[:PORT]" for scheme in self.schemes]
        return [f"{self.name}:PATH"]


KINDS: dict[str, StoreKind] = {kind.name: kind for kind in (
    StoreKind(
        "imap", "migrator.stores.imap:ImapStore", "an IMAP account: read and written, folders and flags",
        schemes=(Scheme("imaps", "implicit", 993), Scheme("imap", "starttls", 143)),
        auth_methods=("plain", "login", *OAUTH_METHODS), options=SERVER_OPTIONS + OAUTH_OPTIONS + tuple(GMAIL_OPTIONS),
    ),
    StoreKind(
        "pop3", "migrator.stores.pop3:Pop3Store", "a POP3 mailbox: its inbox, read only",
        schemes=(Scheme("pop3s", "implicit", 995), Scheme("pop3", "starttls", 110)),
        auth_methods=("user", "apop", "plain", *OAUTH_METHODS), options=SERVER_OPTIONS + OAUTH_OPTIONS,
        can_be_target=False, can_delete=True,
    ),
    StoreKind("maildir", "migrator.stores.maildir:MaildirStore", "a Maildir++ tree as Dovecot keeps it"),
    StoreKind("mbox", "migrator.stores.mbox:MboxStore", "a directory tree with one mbox file per folder"),
    StoreKind("thunderbird", "migrator.stores.thunderbird:ThunderbirdStore",
              "a Thunderbird mail directory (Local Folders, or an ImapMail account's cache)"),
    StoreKind("eml", "migrator.stores.eml:EmlStore", "a directory tree with one .eml file per message"),
    StoreKind("pst", "migrator.stores.pst.store:PstStore", "an Outlook PST file (Unicode)", options=("part_size",)),
)}
SCHEMES: dict[str, tuple[StoreKind, Scheme]] = {
    scheme.name: (kind, scheme) for kind in KINDS.values() for scheme in kind.schemes
}
SERVER_KINDS = tuple(name for name, kind in KINDS.items() if kind.is_server)
LOCAL_KINDS = tuple(name for name, kind in KINDS.items() if not kind.is_server)
TARGET_KINDS = tuple(name for name, kind in KINDS.items() if kind.can_be_target)


def kind_of(name: str) -> StoreKind:
    """Return the StoreKind called ``name``; raise ConfigError (with a suggestion) for an unknown one."""
    try:
        return KINDS[name]
    except KeyError:
        raise ConfigError(f"{name!r} is not a kind of store{did_you_mean(name, KINDS)}: "
                          f"use one of {', '.join(KINDS)}") from None


def endpoint_forms() -> str:
    """Return every way an endpoint can be written, for messages and help texts."""
    forms = [form for kind in KINDS.values() for form in kind.forms()]
    return ", ".join([*forms, f"PROVIDER:ADDRESS ({', '.join(PRESETS)})"])
