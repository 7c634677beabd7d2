"""IMAP flag strings to and from the canonical Flags, both ways in one place.

System flags are ``\\Seen`` and friends; "forwarded" is the ``$Forwarded`` keyword (RFC 5788)
because IMAP has no system flag for it; ``\\Recent`` belongs to the server's session and is
never carried. Keywords are IMAP atoms: characters an atom cannot hold (space, parentheses,
quotes, ``%*\\]{``, control and 8-bit characters) are written as ``_``, since the server
would refuse the whole APPEND otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from migrator.core.message import Flag, Flags

SYSTEM_FLAGS = {
    "\\seen": Flag.SEEN,
    "\\answered": Flag.ANSWERED,
    "\\flagged": Flag.FLAGGED,
    "\\deleted": Flag.DELETED,
    "\\draft": Flag.DRAFT,
}
FORWARDED_KEYWORD = "$Forwarded"
_IMAP_NAMES = {flag: name.title() for name, flag in SYSTEM_FLAGS.items()}
_NOT_ATOM = re.compile(r'[^\x21-\x7e]|[(){%*"\\\]]')


def flags_from_imap(names: Iterable[str]) -> Flags:
    """Return the Flags for IMAP flag strings; unknown ``\\`` flags (``\\Recent``) are dropped."""
    return _flags_from_imap(tuple(names))


@lru_cache(maxsize=1024)
def _flags_from_imap(names: tuple[str, ...]) -> Flags:
    # Cached: a folder has few distinct flag sets, and a scan of 100 000 messages should
    # share them instead of building one Flags per message.
    system: set[Flag] = set()
    keywords: set[str] = set()
    for name in names:
        if name.lower() in SYSTEM_FLAGS:
            system.add(SYSTEM_FLAGS[name.lower()])
        elif name.lower() == FORWARDED_KEYWORD.lower():
            system.add(Flag.FORWARDED)
        elif not name.startswith("\\"):
            keywords.add(name)
    return Flags(frozenset(system), frozenset(keywords))


def flags_to_imap(flags: Flags) -> list[str]:
    """Return the IMAP flag strings for ``flags``, system flags first, in a stable order."""
    names = sorted(_IMAP_NAMES[f] for f in flags.system if f in _IMAP_NAMES)
    keywords = {atom for atom in map(keyword_atom, flags.keywords) if atom}
    if Flag.FORWARDED in flags:
        keywords.add(FORWARDED_KEYWORD)
    return names + sorted(keywords)


def keyword_atom(keyword: str) -> str | None:
    """Return ``keyword`` as a valid IMAP atom, or None when nothing is left of it."""
    return _NOT_ATOM.sub("_", keyword.strip()) or None

