"""Folder paths to and from server mailbox names: namespace prefix, separator, modified UTF-7.

A path component holding the server's separator (``v1.2 notes`` on a server that nests
with ``.``) cannot be written as it is without nesting wrongly: the separator inside a
component is written as ``_`` (``v1_2 notes``), or as ``-`` on the odd server whose
separator is ``_``. Reading never needs this: a listed name is split on its separator.
"""

from __future__ import annotations

from typing import NamedTuple

from migrator.core.message import FolderPath
from migrator.stores.foldernames import decode_mutf7, encode_mutf7


class NameCodec(NamedTuple):
    """The personal namespace of an account: its prefix (``INBOX.`` on some servers) and separator."""

    separator: str | None = "/"
    prefix: str = ""

    @property
    def stand_in(self) -> str:
        """Return the character written in place of the separator inside a component."""
        return "-" if self.separator == "_" else "_"

    def path_of(self, name: str, separator: str | None) -> FolderPath:
        """Return the folder path of the server name ``name``, listed with ``separator``."""
        if name.upper() == "INBOX":
            return ("INBOX",)
        if self.prefix and name.startswith(self.prefix) and len(name) > len(self.prefix):
            name = name[len(self.prefix):]
        parts = [_decoded(part) for part in (name.split(separator) if separator else [name])]
        if parts[0].upper() == "INBOX":
            parts[0] = "INBOX"
        return tuple(parts)

    def storable(self, path: FolderPath) -> FolderPath:
        """Return ``path`` as this server can hold it: the separator inside a component replaced."""
        if not self.separator:
            return path
        return tuple(part.replace(self.separator, self.stand_in) for part in path)

    def server_name(self, path: FolderPath) -> str:
        """Return the mailbox name to use for ``path`` on this server (modified UTF-7)."""
        parts = [encode_mutf7(part) for part in self.storable(path)]
        if parts[0].upper() == "INBOX":
            parts[0] = "INBOX"
            return (self.separator or "/").join(parts)
        return self.prefix + (self.separator or "/").join(parts)


def _decoded(part: str) -> str:
    """Return a listed name component decoded from modified UTF-7, or as sent when it is not valid mUTF-7."""
    if not part.isascii():
        return part  # an 8-bit name from a server that ignores RFC 3501: keep its UTF-8
    try:
        return decode_mutf7(part)
    except ValueError:
        return part
