"""Provider presets: where a big provider's IMAP server is, how to log in, and how hard it may be used.

``gmail:alice@gmail.com`` (or ``provider: gmail`` in a profile) stands for the server, port, TLS and
login method below, and for limits known to keep a run within what the provider tolerates; the user
gives only the address and the credentials. What the user writes as well (a port, ``auth=``, a limit)
wins over the preset. Sources, checked December 2026:

- Gmail: imap.gmail.com:993 (Google, "Read Gmail messages on other email clients using POP"/IMAP
  settings); 15 simultaneous IMAP connections per account (Gmail Help, "Too many simultaneous
  connections"); 2500 MB a day downloaded and 500 MB uploaded over IMAP (Google Workspace Admin Help,
  "Gmail bandwidth limits"); APPENDLIMIT=35651584 in its CAPABILITY; the pace is imapsync's --gmail1
  (20 000 bytes/s once 1 GB has gone: --maxbytespersecond 20_000 --maxbytesafter 1_000_000_000).
- Microsoft 365 and Outlook.com: outlook.office365.com:993, OAuth2 only (Microsoft Support, "POP, IMAP,
  and SMTP settings for Outlook.com"; imap-mail.outlook.com is the older name of the same service);
  messages up to 36 MB received by default, at most 150 MB when an administrator allows it (Microsoft
  Learn, "Exchange Online limits": 35 MB sending, 36 MB receiving); 4 messages a second (imapsync's
  FAQ.Office365, --office2: "a value that should avoid throttles limits from O365").
- Yahoo: imap.mail.yahoo.com:993; AOL: imap.aol.com:993; both with an app password (Yahoo Help,
  "IMAP server settings for Yahoo Mail"; AOL Help, the same for AOL Mail).
- iCloud: imap.mail.me.com:993 with an app-specific password (Apple Support, "iCloud Mail server
  settings for other email client apps").
- Fastmail: imap.fastmail.com:993, TLS only, an app password (Fastmail Help, "Server names and ports").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from migrator.core.errors import ConfigError
from migrator.core.sizes import parse_size

MB = 1_000_000
MIB = 1024 * 1024


class Limits(NamedTuple):
    """How hard a run may use one server; None: no limit of this endpoint's own (the run's, or its preset's)."""

    max_bytes_per_second: float | None = None
    max_messages_per_second: float | None = None
    connections: int | None = None
    append_limit: int | None = None  # the largest message the server takes by APPEND, as a preset knows it

    def over(self, fallback: Limits) -> Limits:
        """Return these limits, each one not set taken from ``fallback``."""
        return Limits._make(mine if mine is not None else theirs for mine, theirs in zip(self, fallback))


class Preset(NamedTuple):
    """One provider: its server, its login, its limits, and what its folders look like."""

    name: str
    title: str  # as users know it, for messages
    host: str
    port: int = 993
    tls: str = "implicit"
    oauth2: bool = False  # takes auth=xoauth2 (an access token) beside passwords
    passwords: bool = True  # takes an (app) password over IMAP
    limits: Limits = Limits()
    byte_burst: float | None = None  # bytes that may go before max_bytes_per_second applies
    daily_download: int | None = None  # the provider's daily budget, told when a run stops at it
    daily_upload: int | None = None
    folders: str = ""  # what its folder list looks like, for the documentation

    def default_auth(self, *, token: bool, password: bool) -> str | None:
        """Return the login method when the user wrote none: OAuth2 for a token source (or a provider that
        takes no password), else the server's password login (None)."""
        if self.oauth2 and (token or not (password or self.passwords)):
            return "xoauth2"
        return None

    def limit_reached(self, direction: str | None, left: str) -> str:
        """Return the sentence ending a run this provider stopped, ``left`` saying what is left."""
        budget = self.daily_download if direction == "download" else self.daily_upload if direction else None
        if budget is not None:
            return (f"{self.title}'s daily {direction} limit reached (about {budget // MB} MB a day over IMAP): "
                    f"{left}; rerun tomorrow (or later today) to continue")
        return f"{self.title} keeps refusing to serve this run for now: {left}; rerun later to continue"


_MICROSOFT_FOLDERS = "no SPECIAL-USE: Sent Items, Deleted Items, Junk Email, Drafts, Archive, found by name"
PRESETS: dict[str, Preset] = {preset.name: preset for preset in (
    Preset("gmail", "Gmail", "imap.gmail.com", oauth2=True,
           limits=Limits(max_bytes_per_second=20_000, connections=4, append_limit=35_651_584),
           byte_burst=1_000 * MB, daily_download=2500 * MB, daily_upload=500 * MB,
           folders="labels as folders, [Gmail]/… marked with SPECIAL-USE (copied once, by label)"),
    Preset("microsoft365", "Microsoft 365", "outlook.office365.com", oauth2=True, passwords=False,
           limits=Limits(max_messages_per_second=4, append_limit=36 * MIB), folders=_MICROSOFT_FOLDERS),
    Preset("outlook.com", "Outlook.com", "outlook.office365.com", oauth2=True, passwords=False,
           limits=Limits(max_messages_per_second=4, append_limit=36 * MIB), folders=_MICROSOFT_FOLDERS),
    Preset("yahoo", "Yahoo Mail", "imap.mail.yahoo.com", folders="SPECIAL-USE: Sent, Trash, Draft, Bulk Mail"),
    Preset("aol", "AOL Mail", "imap.aol.com", folders="SPECIAL-USE: Sent, Trash, Drafts, Bulk Mail"),
    Preset("icloud", "iCloud Mail", "imap.mail.me.com",
           folders="Sent Messages, Deleted Messages, Junk, Drafts, Archive"),
    Preset("fastmail", "Fastmail", "imap.fastmail.com", folders="SPECIAL-USE, '/' between levels"),
)}


def preset_named(name: str) -> Preset | None:
    """Return the preset called ``name`` (any case), or None."""
    return PRESETS.get(name.lower())


def parse_limits(options: Mapping[str, object], where: str) -> Limits:
    """Return the limits ``options`` give (URL options as text, profile values); raise ConfigError naming ``where``."""
    values: dict[str, float | int | None] = {}
    for key, parse, expected in _LIMIT_PARSERS:
        value = options.get(key)
        if value is None or value == "":
            continue
        try:
            values[key] = parse(value)
        except (ValueError, TypeError):
            raise ConfigError(f"{key}={value} in {where} is not {expected}") from None
    return Limits(**values)  # type: ignore[arg-type]  # each parser returns its field's type


def _size(value: object) -> int:
    size = value if isinstance(value, int) and not isinstance(value, bool) else parse_size(str(value))
    if size <= 0:
        raise ValueError
    return size


def _rate(value: object) -> float:
    rate = float(str(value))
    if not 0 < rate < float("inf"):
        raise ValueError
    return rate


def _count(value: object) -> int:
    count = int(str(value))
    if count < 1:
        raise ValueError
    return count


_LIMIT_PARSERS = (
    ("max_bytes_per_second", _size, "a size a second like 500KB or 2MB"),
    ("max_messages_per_second", _rate, "a number of messages a second above 0, like 4 or 0.5"),
    ("connections", _count, "a whole number of connections, 1 or more"),
    ("append_limit", _size, "a size like 35MB or 150MB"),
)
