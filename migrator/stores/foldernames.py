"""Folder names on disk and on the wire: pure codecs, str in, str out.

- ``encode_mutf7``/``decode_mutf7``: IMAP's modified UTF-7 (RFC 3501 section 5.1.3).
- Maildir++ directory names as Dovecot writes them: each name in modified UTF-7, levels
  joined with ``.``, and the characters a level cannot hold written ``\\NN`` (hex), as
  Dovecot's ``listescape`` plugin does: ``a.b`` is ``.a\\2eb``. A Dovecot with
  ``mail_plugins = listescape`` and separator ``/`` shows such folders by their real names
  (a ``/`` inside a name it shows as a level, since its separator cannot be escaped).
- Directory names in mbox and EML trees: UTF-8 names with ``\\NN`` for ``/``, ``\\``,
  control characters, a leading ``.`` or ``~``, and for names the archive uses itself
  (``mbox`` and ``mbox.lock`` in mbox trees, ``*.eml`` in EML trees). Dovecot with
  ``listescape`` and ``:UTF-8`` reads mbox trees; it lists a folder whose name starts with
  ``.`` or is ``mbox`` by its real name but cannot open it (it would not escape those).

No encoded name is empty, ``.``, ``..`` or holds a ``/``, so none leaves its parent directory.
An empty name, which a server's ``/abs``, ``a//b`` or ``a/`` holds, is a lone ``\\`` in every
format: Dovecot refuses such names, so it has no spelling of them to follow.
Decoding takes any ``\\NN`` (either case) as that byte, so a store may escape more than it
must: where the filesystem confuses two names (``Work`` and ``work`` on a case-insensitive
one), the plain spelling of the newcomer is already taken on disk, and the store escapes
its leading characters until one is free (``name_variants``, ``make_first_free``); decoding
still gives the real name. Dovecot lists such a folder by its real name but cannot open it
(it looks for the plain spelling), as it could not hold both folders there anyway.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Iterator

from migrator.core.message import FolderPath

_MUTF7_BASE64 = re.compile(r"[A-Za-z0-9+,]*")


def encode_mutf7(name: str) -> str:
    """Return ``name`` in modified UTF-7; raise ValueError for a lone surrogate."""
    out: list[str] = []
    pending: list[str] = []
    for char in name:
        if " " <= char <= "~":
            if pending:
                out.append(_shifted("".join(pending)))
                pending = []
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    if pending:
        out.append(_shifted("".join(pending)))
    return "".join(out)


def _shifted(text: str) -> str:
    return "&" + _modified_base64(text.encode("utf-16-be")) + "-"


def decode_mutf7(name: str) -> str:
    """Return the Unicode name that modified UTF-7 ``name`` stands for; raise ValueError if it is not valid."""
    out: list[str] = []
    pos = 0
    while pos < len(name):
        char = name[pos]
        if not " " <= char <= "~":
            raise ValueError(f"modified UTF-7 cannot contain {char!r}")
        if char != "&":
            out.append(char)
            pos += 1
            continue
        end = name.find("-", pos + 1)
        if end < 0:
            raise ValueError(f"unterminated '&' in {name!r}")
        out.append(_unshifted(name[pos + 1 : end]) if end > pos + 1 else "&")
        pos = end + 1
    return "".join(out)


def _unshifted(run: str) -> str:
    if not _MUTF7_BASE64.fullmatch(run) or len(run) % 4 == 1:
        raise ValueError(f"invalid modified BASE64 {run!r}")
    data = base64.b64decode(run + "=" * (-len(run) % 4), altchars=b"+,")
    if len(data) % 2 or _modified_base64(data) != run:
        raise ValueError(f"modified BASE64 {run!r} does not hold whole UTF-16 units")
    text = data.decode("utf-16-be")  # UnicodeDecodeError (a ValueError) for lone surrogates
    if any(" " <= char <= "~" for char in text):
        raise ValueError(f"modified BASE64 {run!r} encodes printable ASCII, which must stand for itself")
    return text


def _modified_base64(data: bytes) -> str:
    return base64.b64encode(data, altchars=b"+,").rstrip(b"=").decode("ascii")


# --- escaping ``\NN``: the form Dovecot's listescape plugin reads -------------------------

ESCAPE = "\\"
_ESCAPED_HEX = re.compile(r"\\([0-9A-Fa-f]{2})")


def _escaped(text: str, must_escape: Callable[[str, int], bool], escape_first: int) -> str:
    """Return ``text`` with the first ``escape_first`` characters and those ``must_escape``
    picks written as ``\\NN``, one per UTF-8 byte."""
    out = []
    for index, char in enumerate(text):
        if index < escape_first or must_escape(text, index):
            out.append("".join(f"\\{byte:02x}" for byte in char.encode("utf-8", "surrogateescape")))
        else:
            out.append(char)
    return "".join(out)


def _unescaped(stored: str) -> bytes:
    """Return the bytes ``stored`` stands for: ``\\NN`` as one byte, anything else as UTF-8."""
    out = bytearray()
    pos = 0
    for match in _ESCAPED_HEX.finditer(stored):
        out += stored[pos : match.start()].encode("utf-8", "surrogateescape")
        out.append(int(match.group(1), 16))
        pos = match.end()
    out += stored[pos:].encode("utf-8", "surrogateescape")
    return bytes(out)


# No other name encodes to a lone escape character: a ``\`` of a name's own is always ``\5c``.
EMPTY_NAME = ESCAPE


def name_variants(encode: Callable[[str, int], str], name: str) -> Iterator[str]:
    """Yield the distinct ``encode(name, n)`` for n = 0, 1, ...: the name with ever more characters escaped."""
    previous = encode(name, 0)
    yield previous
    # The plain encoding is at least as long as the text whose characters get escaped.
    for escape_first in range(1, len(previous) + 1):
        candidate = encode(name, escape_first)
        if candidate != previous:
            yield candidate
        previous = candidate


def make_first_free(spellings: Iterable[str], make: Callable[[str], None], find: Callable[[], str | None]) -> str:
    """Make the first free spelling and return it; raise ValueError if every one is taken.

    ``make`` raises FileExistsError for a spelling that is taken. A taken spelling may hold
    this very name, made meanwhile by another writer of the same run: then ``find`` returns
    the spelling that holds it and that one is used, so a folder is never made twice.
    """
    for spelling in spellings:
        try:
            make(spelling)
            return spelling
        except FileExistsError:
            theirs = find()
            if theirs is not None:
                return theirs
    raise ValueError("every spelling of the name is taken")


# --- Maildir++ folder directories (Dovecot: mUTF-7 names, listescape) -------------------


def encode_maildir_name(name: str, escape_first: int = 0) -> str:
    """Return one folder name as Dovecot stores it in a Maildir++ directory name."""
    if not name:
        return EMPTY_NAME
    return _escaped(encode_mutf7(name), _maildir_special, escape_first)


def _maildir_special(text: str, index: int) -> bool:
    # '.' separates levels on disk, '/' cannot be in a file name, '\' is the escape itself,
    # and Dovecot escapes a leading '~' so that no name looks like a home directory.
    return text[index] in "./\\" or (index == 0 and text[index] == "~")


def decode_maildir_name(stored: str) -> str:
    """Return the folder name that the Maildir++ directory component ``stored`` stands for."""
    if stored == EMPTY_NAME:
        return ""
    raw = _unescaped(stored)
    try:
        return decode_mutf7(raw.decode("ascii"))
    except ValueError:
        return raw.decode("utf-8", "surrogateescape")  # written by a tool that does not use mUTF-7


def maildir_dirname(path: FolderPath, escape_first: int = 0) -> str:
    """Return the Maildir++ directory name (``.A.B``) of a folder other than INBOX itself."""
    parts = [encode_maildir_name(name) for name in path[:-1]]
    parts.append(encode_maildir_name(path[-1], escape_first))
    return "." + ".".join(parts)


def maildir_path(dirname: str) -> FolderPath:
    """Return the folder path of the Maildir++ directory ``dirname``; raise ValueError if it is not one."""
    if not dirname.startswith(".") or dirname in (".", ".."):
        raise ValueError(f"{dirname!r} is not a Maildir++ folder directory")
    parts = dirname[1:].split(".")
    if not all(parts):
        raise ValueError(f"{dirname!r} has an empty folder name")
    return tuple(decode_maildir_name(part) for part in parts)


# --- directory trees (mbox and EML archives) ----------------------------------------------

# Names the archives use for their own files inside folder directories: the mbox file of a
# folder (and its dotlock ``mbox.lock``), and EML message files. A folder so named gets a
# character escaped.
MBOX_FILE = "mbox"
EML_SUFFIX = ".eml"


def encode_mbox_dirname(name: str, escape_first: int = 0) -> str:
    """Return one folder name as a directory name of an mbox tree."""
    folded = name.casefold()
    if folded == MBOX_FILE or folded.startswith(MBOX_FILE + "."):
        escape_first = max(escape_first, 1)
    return _tree_name(name, escape_first, _tree_special)


def encode_eml_dirname(name: str, escape_first: int = 0) -> str:
    """Return one folder name as a directory name of an EML tree."""
    return _tree_name(name, escape_first, _eml_special)


def _tree_name(name: str, escape_first: int, must_escape: Callable[[str, int], bool]) -> str:
    return _escaped(name, must_escape, escape_first) if name else EMPTY_NAME


def _tree_special(text: str, index: int) -> bool:
    char = text[index]
    if char in "/\\\x7f" or char < " " or "\ud800" <= char <= "\udfff":
        return True
    return index == 0 and char in ".~"  # no '.', '..', hidden or home-looking names


def _eml_special(text: str, index: int) -> bool:
    return _tree_special(text, index) or (text[index] == "." and text[index:].casefold() == EML_SUFFIX)


def decode_tree_name(stored: str) -> str:
    """Return the folder name that the tree directory name ``stored`` stands for."""
    return "" if stored == EMPTY_NAME else _unescaped(stored).decode("utf-8", "surrogateescape")


# --- Thunderbird's folder files (Local Folders, ImapMail) ---------------------------------

# Names Thunderbird gives files of its own in a mail directory, or never takes for folders
# (nsMsgLocalStoreUtils::nsShouldIgnoreFile): a folder so named gets a character escaped.
THUNDERBIRD_SUFFIXES = (".msf", ".sbd", ".snm", ".toc", ".mozmsgs")
THUNDERBIRD_OWN_NAMES = frozenset({
    "msgfilterrules.dat", "rules.dat", "rulesbackup.dat", "popstate.dat", "sort.dat", "filterlog.html", "junklog.html",
    "mailfilt.log", "filters.js", "feeds.json", "feeds.json.tmp", "feeds.json.backup", "feeds.json.corrupt",
    "feeditems.json", "feeditems.json.tmp", "feeditems.json.backup", "feeditems.json.corrupt", "feeds.rdf",
    "feeditems.rdf",
})


def encode_thunderbird_name(name: str, escape_first: int = 0) -> str:
    """Return one folder name as the name of its file in a Thunderbird mail directory (its subfolders are
    in ``NAME.sbd``)."""
    folded = name.casefold()
    if folded in THUNDERBIRD_OWN_NAMES or folded.startswith(("#", "feeditems_error")):
        escape_first = max(escape_first, 1)
    return _tree_name(name, escape_first, _thunderbird_special)


def _thunderbird_special(text: str, index: int) -> bool:
    char = text[index]
    if _tree_special(text, index) or (index == len(text) - 1 and char == "~"):
        return True
    return char == "." and text[index:].casefold() in THUNDERBIRD_SUFFIXES
