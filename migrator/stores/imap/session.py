"""A logged-in connection as the store uses it: namespace, selected mailbox, folder errors."""

from __future__ import annotations

import logging
from typing import NamedTuple

from migrator.core.display import plural, printable
from migrator.core.errors import FolderError, StoreError
from migrator.core.folder import FolderIndex
from migrator.core.message import FolderPath
from migrator.endpoints.endpoint import Endpoint
from migrator.stores.imap.commands import astring
from migrator.stores.imap.names import NameCodec
from migrator.stores.imap.parser import (
    ListEntry,
    Response,
    as_int,
    list_entry,
    personal_namespace,
    status_items,
)
from migrator.stores.imap.protocol import ImapProtocol, Reply

log = logging.getLogger(__name__)


class Mailbox(NamedTuple):
    """The mailbox a session has selected (read-write) or examined (read-only)."""

    name: str
    writable: bool
    validity: str
    exists: int


class Session:
    """One connection's view of an account.

    ``known_names`` maps folder paths to the exact names the server listed, shared across
    reconnections, so a folder is always addressed by the name the server gave it.
    """

    def __init__(
        self, protocol: ImapProtocol, codec: NameCodec, endpoint: Endpoint, known_names: dict[FolderPath, str], *,
        readonly: bool,
    ) -> None:
        self.protocol = protocol
        self.codec = codec
        self.endpoint = endpoint
        self.where = endpoint.account
        self.known_names = known_names
        self.readonly = readonly
        self.selected: Mailbox | None = None
        self.folders: FolderIndex | None = None  # the last listing, with the folders created since

    @classmethod
    def start(cls, protocol: ImapProtocol, endpoint: Endpoint, known_names: dict[FolderPath, str], *,
              readonly: bool) -> Session:
        """Return a session on a logged-in connection, having asked for its personal namespace."""
        return cls(protocol, _personal_namespace(protocol), endpoint, known_names, readonly=readonly)

    @property
    def capabilities(self) -> frozenset[str]:
        """Return the server's capabilities as of now."""
        return self.protocol.capabilities

    def server_name(self, path: FolderPath) -> str:
        """Return the mailbox name for ``path``: as the server listed it, else as the codec writes it."""
        return self.known_names.get(path) or self.codec.server_name(path)

    def select(self, path: FolderPath, *, write: bool = False, fresh: bool = False) -> Mailbox:
        """EXAMINE (or, for ``write``, SELECT) the folder unless already so; raise FolderError."""
        if write and self.readonly:
            raise StoreError(f"{self.where} is opened read-only: cannot select {'/'.join(path)} for writing")
        name = self.server_name(path)
        current = self.selected
        if current and not fresh and current.name == name and current.writable == write:
            return current
        self.selected = None
        reply = self.protocol.run(b"SELECT " if write else b"EXAMINE ", astring(name))
        self.check(reply.result, path)
        self.selected = _mailbox(name, write, reply)
        log.info("%s: opened %s (%s, %s)", self.where, printable("/".join(path)),
                 "read-write" if write else "read-only", plural(self.selected.exists, "message"))
        return self.selected

    def status(self, path: FolderPath, items: bytes) -> dict[str, int]:
        """Return the numbers STATUS reports for ``items`` (``(MESSAGES UIDNEXT)``); raise FolderError."""
        reply = self.protocol.run(b"STATUS ", astring(self.server_name(path)), b" " + items)
        self.check(reply.result, path)
        for response in reply.of_kind("STATUS"):
            return status_items(response)
        raise FolderError(f"{self.where} answered STATUS for {'/'.join(path)} without numbers")

    def check(self, result: Response, path: FolderPath) -> None:
        """Raise FolderError naming the folder when ``result`` is not OK."""
        if result.ok:
            return
        folder = "/".join(path)
        if result.code in ("NONEXISTENT", "TRYCREATE") or self.listed(self.server_name(path)) is None:
            raise FolderError(
                f"no folder {folder} on {self.where}: run `migrator folders {self.endpoint}` to see its folders")
        raise FolderError(f"cannot use the folder {folder} on {self.where}: the server said {result.said()!r}")

    def listed(self, name: str) -> ListEntry | None:
        """Return what LIST says of the mailbox ``name`` now, or None when it does not list it.

        What decides whether a mailbox is there: servers without NONEXISTENT or ALREADYEXISTS give no other sign.
        """
        reply = self.protocol.run(b'LIST "" ', astring(name))
        return next((entry for entry in map(list_entry, reply.of_kind("LIST")) if entry.name == name), None)


def _mailbox(name: str, write: bool, reply: Reply) -> Mailbox:
    exists = 0
    validity = ""
    for response in reply.untagged:
        if response.kind == "EXISTS" and response.number is not None:
            exists = response.number
        elif response.code == "UIDVALIDITY" and response.code_args:
            validity = str(as_int(response.code_args[0]))
    return Mailbox(name, write, validity, exists)


def _personal_namespace(protocol: ImapProtocol) -> NameCodec:
    """Return the personal namespace from NAMESPACE (RFC 2342), else the root separator from LIST."""
    if "NAMESPACE" in protocol.capabilities:
        for response in protocol.run(b"NAMESPACE").of_kind("NAMESPACE"):
            namespace = personal_namespace(response)
            if namespace is not None:
                return NameCodec(separator=namespace[1], prefix=namespace[0])
    for response in protocol.run(b'LIST "" ""').of_kind("LIST"):
        return NameCodec(separator=list_entry(response).separator)
    return NameCodec()
