"""Reading a PST file as folders of messages: the ``PstReader`` API the PST store delegates to.

Messages written by migrator come back byte for byte from its raw-MIME named property; messages written by
Outlook are rebuilt as RFC 5322 from their MAPI properties (convert/mime_from_mapi.py).
"""

from __future__ import annotations

import logging
import mmap
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

from migrator.core.errors import FolderError, MessageError, StoreError
from migrator.core.folder import Role, role_by_name
from migrator.core.message import FolderPath, Message, MessageRef
from migrator.stores.pst.convert.meta_from_mapi import MessageMeta, NamedIds
from migrator.stores.pst.convert.raw_copy import RebuildError
from migrator.stores.pst.ltp.reader import Node, PropertyContext
from migrator.stores.pst.messaging import format as msg_fmt
from migrator.stores.pst.messaging import props as p
from migrator.stores.pst.messaging.namemap_reader import parse_name_map
from migrator.stores.pst.messaging.reader import (
    entry_id_nid,
    folder_name,
    message_count,
    message_nids,
    name_map_streams,
    read_message,
    store_props,
    subfolder_nids,
)
from migrator.stores.pst.ndb.reader import Ndb, PstFormatError

_JUNK_INDEX = 4  # PidTagAdditionalRenEntryIds[4] is the Junk E-mail folder ([MS-OXOSFLD] §2.2.4)
_PID_ADDITIONAL_REN_ENTRY_IDS = 0x36D8

log = logging.getLogger(__name__)


class PstFolder(NamedTuple):
    """A folder of the PST: its path below the IPM subtree, special-use role, node id and message count.

    ``damage`` says why the folder cannot be read when its name, contents table or subfolder list is damaged:
    it is listed, with no messages, so that reading it fails with that reason instead of it going unnoticed.
    """

    path: FolderPath
    role: Role | None
    nid: int
    count: int  # type: ignore[assignment]  # in place of tuple.count, which nothing calls on a folder
    damage: str | None = None


class PstReader:
    """An open PST file. Use as a context manager; raise StoreError when the file cannot be read at all."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        handle, mapped = _map_file(self.path)
        self._file: BinaryIO | None = handle
        self._map: mmap.mmap | None = mapped
        try:
            self.ndb = Ndb(mapped)
            _check_size(self.path, self.ndb, len(mapped))
            store = store_props(self.ndb)
            _check_password(self.path, store)
            self.named = NamedIds.from_names(parse_name_map(*name_map_streams(self.ndb)))
            self._store = store
        except PstFormatError as error:
            self.close()
            raise StoreError(f"cannot read {self.path}: {error}") from None
        except StoreError:
            self.close()
            raise
        self._folders: list[PstFolder] | None = None
        self._by_path: dict[FolderPath, PstFolder] | None = None
        self._messages: dict[int, list[int]] = {}

    def __enter__(self) -> PstReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the file."""
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._file is not None:
            self._file.close()
            self._file = None

    @property
    def record_key(self) -> bytes:
        """Return the store's record key: the identity a file keeps when migrator writes it again."""
        key = self._store.get(p.PID_RECORD_KEY)
        return key if isinstance(key, bytes) else b""

    # --- folders

    def folders(self) -> list[PstFolder]:
        """Return every folder below the IPM subtree, parents before children; raise StoreError if unreadable."""
        if self._folders is None:
            try:
                self._folders = self._walk_folders()
            except PstFormatError as error:
                raise StoreError(f"cannot read the folder tree of {self.path}: {error}") from None
        return list(self._folders)

    def _walk_folders(self) -> list[PstFolder]:
        root = entry_id_nid(self._store.get(p.PID_IPM_SUBTREE_ENTRY_ID)) or 0x8022
        roles = self._special_folders()
        found: list[PstFolder] = []
        root_messages = message_nids(self.ndb, root)
        if root_messages:  # Outlook lets items live in the top of the store itself
            name = folder_name(self.ndb, root) or "Top of Personal Folders"
            found.append(PstFolder((name,), None, root, len(root_messages)))
        self._walk(subfolder_nids(self.ndb, root), (), roles, found, set())
        return found

    def _walk(self, nids: list[int], parent: FolderPath, roles: dict[int, Role], found: list[PstFolder],
              seen: set[int]) -> None:
        for nid in nids:
            if nid in seen:
                continue  # a cycle in the hierarchy tables: each folder is listed once
            seen.add(nid)
            folder = self._place(nid, parent, roles)
            if folder.damage is not None:
                found.append(folder)
                continue
            try:
                count, children = message_count(self.ndb, nid), subfolder_nids(self.ndb, nid)
            except PstFormatError as error:  # its subfolders are out of reach too: failing it says so
                found.append(folder._replace(damage=str(error)))
                continue
            found.append(folder._replace(count=count))
            self._walk(children, folder.path, roles, found, seen)

    def _place(self, nid: int, parent: FolderPath, roles: dict[int, Role]) -> PstFolder:
        """Return folder ``nid`` with its path and role, not yet counted; damaged if its name is unreadable."""
        try:
            name, damage = folder_name(self.ndb, nid), None
        except PstFormatError as error:
            name, damage = f"unreadable folder {nid}", str(error)
        role = roles.get(nid) or (role_by_name((name,)) if not parent and damage is None else None)
        path = ("INBOX",) if role is Role.INBOX and not parent else (*parent, name)
        return PstFolder(path, role, nid, 0, damage)

    def _special_folders(self) -> dict[int, Role]:
        roles: dict[int, Role] = {}
        for prop_id, role in ((p.PID_IPM_WASTEBASKET_ENTRY_ID, Role.TRASH), (p.PID_IPM_SENTMAIL_ENTRY_ID, Role.SENT)):
            nid = entry_id_nid(self._store.get(prop_id))
            if nid:
                roles[nid] = role
        root_nid = msg_fmt.NID_ROOT_FOLDER
        root = PropertyContext(Node.top(self.ndb, root_nid)) if self.ndb.node(root_nid) else None
        if root is not None:
            drafts = entry_id_nid(root.get(p.PID_IPM_DRAFTS_ENTRY_ID))
            if drafts:
                roles[drafts] = Role.DRAFTS
            additional = root.get(_PID_ADDITIONAL_REN_ENTRY_IDS)
            if isinstance(additional, list) and len(additional) > _JUNK_INDEX:
                junk = entry_id_nid(additional[_JUNK_INDEX])
                if junk:
                    roles[junk] = Role.JUNK
        return roles

    def folder(self, path: FolderPath) -> PstFolder:
        """Return the folder at ``path``; raise FolderError when the PST has none."""
        found = self.find_folder(path)
        if found is None:
            raise FolderError(f"{self.path} has no folder {'/'.join(path)!r}: run `migrator folders` to list them")
        return found

    def find_folder(self, path: FolderPath) -> PstFolder | None:
        """Return the folder at ``path`` (the first, where two share a path), or None."""
        # Looked up by path, not searched: a run asks for each of 5 000 folders several times.
        if self._by_path is None:
            self._by_path = {}
            for folder in self.folders():
                self._by_path.setdefault(folder.path, folder)
        return self._by_path.get(path)

    # --- messages

    def scan(self, folder: PstFolder) -> Iterator[MessageRef]:
        """Yield a reference for every message of ``folder``, without building bodies."""
        for nid in self._message_nids(folder):
            try:
                meta = MessageMeta(read_message(self.ndb, nid), self.named)
                ref = MessageRef(str(nid), meta.flags(), meta.size(), meta.received())
            except Exception:  # noqa: BLE001 - listed all the same: fetch reports why it cannot be read
                ref = MessageRef(str(nid))
            yield ref

    def fetch(self, folder: PstFolder, refs: Iterable[MessageRef]) -> Iterator[Message]:
        """Yield the full messages for ``refs`` (uids from ``scan``); skip uids that are not in the folder.

        A message that cannot be read whole or made into MIME is left out, and once the others are yielded,
        MessageError names each one left out and why.
        """
        present = set(self._message_nids(folder))
        left_out: list[tuple[str, str]] = []
        for ref in refs:
            nid = int(ref.uid) if ref.uid.isdigit() else -1
            if nid not in present:
                continue
            try:
                message = [self._message(folder, nid)]
            except Exception as error:  # noqa: BLE001 - what one message holds must not end the run
                left_out.append((str(nid), why_left_out(error)))
                continue
            yield message.pop()  # not kept by this frame once passed on (see MaildirStore.fetch)
        if left_out:
            raise self._left_out(folder, left_out)

    def _message(self, folder: PstFolder, nid: int) -> Message:
        meta = MessageMeta(read_message(self.ndb, nid), self.named)
        try:
            raw = meta.raw_mime()
        except RebuildError as error:
            # The body or an attachment the stored copy refers to changed since migrator wrote it (edited
            # in Outlook), or the copy is damaged: what the file holds now is the message, read as from
            # any other program's file, rather than no message at all.
            log.warning("message %s of folder %r of %s: %s; read from its Outlook properties instead",
                        nid, "/".join(folder.path), self.path, error)
            raw = None
        if raw is None:
            # Imported here: only another program's messages need it, and a rerun that adds to migrator's own
            # file never reads one (its import, with the RTF decoder, is 2 ms of every such rerun).
            from migrator.stores.pst.convert.mime_from_mapi import build_mime

            raw = build_mime(meta.message, meta.received())
        return Message(raw, meta.flags(), meta.received(), folder.path, str(nid))

    def _left_out(self, folder: PstFolder, messages: list[tuple[str, str]]) -> MessageError:
        count = "1 message was" if len(messages) == 1 else f"{len(messages)} messages were"
        named = "; ".join(f"message {uid}: {reason}" for uid, reason in messages)
        return MessageError(f"{count} left out of folder {'/'.join(folder.path)!r} of {self.path}: {named}. "
                            "The folder's other messages were read", tuple(messages))

    def _message_nids(self, folder: PstFolder) -> list[int]:
        if folder.damage is not None:
            raise FolderError(f"cannot read folder {'/'.join(folder.path)!r} of {self.path}: {folder.damage}")
        if folder.nid in self._messages:  # the file does not change while it is open
            return self._messages[folder.nid]
        try:
            self._messages[folder.nid] = message_nids(self.ndb, folder.nid)
            return self._messages[folder.nid]
        except PstFormatError as error:
            raise FolderError(f"cannot list folder {'/'.join(folder.path)!r} of {self.path}: {error}") from None


def why_left_out(error: Exception) -> str:
    """Return why a message of the file could not be read, as the run's summary names it, and what to do."""
    if isinstance(error, PstFormatError):
        return f"not readable whole: {error}; repair the file with Outlook's scanpst.exe"
    if isinstance(error, RecursionError):
        return "cannot be made into a MIME message: its attached messages are nested too deeply"
    return (f"cannot be made into a MIME message ({type(error).__name__}: {error}); "
            "please report this as a bug in migrator")


def _map_file(path: Path) -> tuple[BinaryIO, mmap.mmap]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - kept open with the map until close()
    except OSError as error:
        raise StoreError(f"cannot open {path}: {error.strerror}. Check the path.") from None
    try:
        return handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except (ValueError, OSError):
        handle.close()
        raise StoreError(f"{path} is empty, not a PST file") from None


def _check_size(path: Path, ndb: Ndb, actual: int) -> None:
    if ndb.header.file_eof > actual:
        raise StoreError(
            f"{path} is truncated: its header says {ndb.header.file_eof} bytes but the file has {actual}. "
            "Copy the complete file again."
        )


def _check_password(path: Path, store: PropertyContext) -> None:
    if store.get(p.PID_PST_PASSWORD, 0):
        raise StoreError(f"{path} is password-protected: remove the password in Outlook first")
