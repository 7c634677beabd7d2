"""The mbox archive: one mbox file per folder in a directory tree.

Layout: folder ("A", "B") is the directory ``ROOT/A/B`` (names encoded by foldernames.py)
and its messages are the file ``mbox`` inside it, so a folder can hold both messages and
folders; INBOX is ``ROOT/INBOX/mbox``. Dovecot reads such a tree with
``mail_location = mbox:ROOT:INBOX=ROOT/INBOX/mbox:LAYOUT=fs:DIRNAME=mbox:INDEX=ELSEWHERE:UTF-8``
and ``mail_plugins = listescape`` (its index files cannot live in ROOT: DIRNAME makes
every folder a file there). Reading also takes the classic layout, where a folder is a
plain mbox file (``ROOT/Lists/python``), and a single mbox file as the whole archive (its
one folder is INBOX); writing always uses the tree.

A message's uid is the offset of its From line. Flags cannot be changed in place (that
would mean rewriting the file and moving every later offset), and messages cannot be
deleted, for the same reason. See dialect.py and envelope.py for the bytes around each
message, index.py for the hidden index beside each mbox file that lets migrator read its
messages back exactly and cut off what a killed append left, and append.py for an append.
Reading and writing follow no symbolic link below the root: a link in the tree is a folder
that fails, naming it. Thunderbird's layout (migrator/stores/thunderbird/) is this store with
another tree of files and another dialect.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from migrator.core.errors import FolderError, StoreError
from migrator.core.folder import Folder, Role, role_by_name
from migrator.core.message import FolderPath, Message, MessageRef
from migrator.endpoints.endpoint import Endpoint
from migrator.stores.base import AppendResult, FolderProbe, FolderScan, Store
from migrator.stores.foldernames import MBOX_FILE, encode_mbox_dirname
from migrator.stores.local.files import (
    NotFollowed,
    from_time_ns,
    fsync_dir,
    identity_of,
    open_below,
    open_root,
    read_error,
    reason,
)
from migrator.stores.local.foldertree import FolderTree
from migrator.stores.local.leftovers import remove_abandoned, temp_maker
from migrator.stores.mbox.append import append_batch
from migrator.stores.mbox.dialect import MBOX, Dialect
from migrator.stores.mbox.envelope import Buffer
from migrator.stores.mbox.index import IndexCache, index_for_append
from migrator.stores.mbox.lock import fcntl_lock, remove_if_stale, write_lock
from migrator.stores.mbox.reader import entries, message_at

VALIDITY = "mbox-1"  # offsets stay valid while the file is only appended to
LOCK_FILE = MBOX_FILE + ".lock"  # the dotlock of a folder's mbox file (see lock.py)


class MboxStore(Store):
    """A tree of mbox files (``mbox:PATH``), or a single mbox file for reading."""

    supports_flag_updates = False
    parallel_folders = True  # each folder is a file of its own, locked while it is written
    dialect: Dialect = MBOX
    description = "mbox archive"  # what error messages call the store

    def __init__(self, endpoint: Endpoint, *, readonly: bool = True) -> None:
        super().__init__(endpoint, readonly=readonly)
        self.root = endpoint.local_path
        self.tree = FolderTree(self.root, encode_mbox_dirname)
        self._indexes = IndexCache(self.root)

    def open(self) -> None:
        """Check the archive, or create its root for writing; raise StoreError."""
        if self.root.is_file() and not self.readonly:
            raise StoreError(
                f"{self.root} is a single mbox file, and migrator writes a directory of folders: "
                f"name a directory, e.g. {self.endpoint.kind}:{self.root}.d"
            )
        if not self.root.is_file():
            open_root(self.root, self.description, self.readonly, Path.is_dir)
        if not self.readonly:
            self._remove_abandoned()

    def _remove_abandoned(self) -> None:
        """Remove the dotlocks killed runs left, and the temporary files of those they were making."""
        for directory, _, files in os.walk(self.root):
            remove_abandoned(directory, lambda name: temp_maker(name, self._is_lock))
            for name in filter(self._is_lock, files):
                remove_if_stale(Path(directory, name))

    def _is_lock(self, name: str) -> bool:
        """Return True when ``name`` is the name of a dotlock of this layout (a temporary file's too)."""
        return name == LOCK_FILE

    def _lock_path(self, path: Path) -> Path:
        """Return the dotlock of the mbox ``path``: ``NAME.lock``, as Dovecot and mutt take it."""
        return path.with_name(path.name + ".lock")

    # --- folders ----------------------------------------------------------------------------

    def list_folders(self) -> list[Folder]:
        """Return every folder directory (selectable when it holds an mbox file) and classic mbox file.

        A symbolic link is listed too (reading it fails, naming it), as is a directory whose mbox file is one.
        """
        if self.root.is_file():
            return [Folder(("INBOX",), Role.INBOX)]
        folders: dict[FolderPath, bool] = {}
        for path, entry in self.tree.walk():
            if entry.name == MBOX_FILE:
                continue  # the messages of the directory it lies in
            if entry.is_symlink():
                folders[path] = True
            elif entry.is_dir(follow_symlinks=False):
                mbox = os.path.join(entry.path, MBOX_FILE)
                folders[path] = os.path.isfile(mbox) or os.path.islink(mbox)
            elif entry.is_file(follow_symlinks=False) and starts_like_mbox(entry.path):
                folders[path] = True  # the classic layout (a dotlock or anything else does not start so)
        return [Folder(p, role_by_name(p), s) for p, s in sorted(folders.items())]

    def _mbox_path(self, folder: FolderPath) -> Path | None:
        if self.root.is_file():
            return self.root if folder == ("INBOX",) else None
        node = self.tree.find(folder)
        if node is None:
            return None
        return node / MBOX_FILE if node.is_dir() else node

    def exists(self) -> bool:
        """Return True when the path is an mbox file or a directory."""
        return self.root.exists()

    def probe_folder(self, folder: FolderPath) -> FolderProbe | None:
        """Return the identity and size of the folder's mbox file (counting its messages would mean reading it)."""
        path = self._mbox_path(folder)
        try:
            return FolderProbe(identity_of(path), size=path.stat().st_size) if path is not None else None
        except FileNotFoundError:
            return None

    def _existing_path(self, folder: FolderPath) -> Path:
        path = self._mbox_path(folder)
        if path is None:
            raise FolderError(f"there is no folder {'/'.join(folder)} in the {self.description} {self.root}")
        return path

    def _has_folder(self, folder: FolderPath) -> bool:
        path = self._mbox_path(folder)
        return path is not None and (path.is_file() or path.is_symlink())  # a link is refused when read

    def _create_folder(self, folder: FolderPath) -> None:
        if self._has_folder(folder):
            return  # a link is refused when written to
        directory = self.tree.create(folder)
        try:
            os.close(self._open(directory / MBOX_FILE, os.O_WRONLY | os.O_CREAT))
            fsync_dir(directory)
        except OSError as e:
            raise FolderError(f"cannot create {directory / MBOX_FILE}: {reason(e)}") from None

    # --- reading ----------------------------------------------------------------------------

    def scan(self, folder: FolderPath) -> FolderScan:
        """Return the folder's messages, found by streaming through its file (bodies are skipped where possible)."""
        path = self._existing_path(folder)
        with self._mapped(path) as (buffer, _):
            records = self._indexes.records(path) if buffer else {}
            try:
                found = entries(buffer, records, self.dialect)
                refs = [MessageRef(str(e.offset), e.flags, e.size, e.received) for e in found if e.flags is not None]
            except ValueError as e:
                raise FolderError(f"{path} is not an mbox file ({e}): check the path") from None
        return FolderScan(VALIDITY, refs)

    def fetch(self, folder: FolderPath, refs: Iterable[MessageRef]) -> Iterator[Message]:
        """Yield the messages at the refs' offsets; a ref that no longer points at a message is skipped."""
        path = self._existing_path(folder)
        with self._mapped(path) as (buffer, file_date):
            records = self._indexes.records(path) if buffer else {}
            for ref in refs:
                try:
                    entry, data = message_at(buffer, int(ref.uid), records, self.dialect)
                except ValueError:
                    continue  # the file was rewritten since the scan
                if entry.flags is not None:
                    # Popped as it is yielded, and its bytes let go of here, so that this frame does not keep
                    # a large message alive after it is written (see pipeline/batches.py, LargeMessageGate).
                    message = [Message(data, entry.flags, entry.received or file_date, folder, ref.uid)]
                    del data
                    yield message.pop()

    @contextmanager
    def _mapped(self, path: Path) -> Iterator[tuple[Buffer, datetime]]:
        """Map the mbox file read-only under a shared fcntl lock; yield it (an empty one as b"") and its mtime."""
        try:
            fd = self._open(path, os.O_RDONLY)
        except FileNotFoundError:
            yield b"", from_time_ns(0)  # a folder directory without messages
            return
        except OSError as e:
            raise FolderError(read_error(path, e)) from None
        try:
            with fcntl_lock(path, fd, exclusive=False):
                status = os.fstat(fd)
                if status.st_size == 0:
                    yield b"", from_time_ns(status.st_mtime_ns)
                    return
                with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as buffer:
                    yield buffer, from_time_ns(status.st_mtime_ns)
        finally:
            os.close(fd)

    def _open(self, path: Path, flags: int) -> int:
        """Open the mbox file ``path`` following no link below the root; raise NotFollowed or OSError."""
        return open_below(self.root, path.relative_to(self.root).parts, flags)

    # --- writing ----------------------------------------------------------------------------

    def append_batch(self, folder: FolderPath, messages: Sequence[Message]) -> list[AppendResult]:
        """Append the messages under the mbox locks and fsync; on a write error restore the file's length.

        What an append that was killed left at the end of the file is cut off first (see append.py).
        """
        self._check_writable()
        self._create_folder(folder)
        path = self._existing_path(folder)
        if not messages:
            return []
        try:
            fd = self._open(path, os.O_RDWR)  # not O_APPEND: the keyword list is rewritten in place
        except NotFollowed as e:
            raise FolderError(str(e)) from None
        except OSError as e:
            raise FolderError(f"cannot open {path} for writing: {reason(e)}") from None
        try:
            with write_lock(path, fd, lock=self._lock_path(path)), index_for_append(self.root, path) as index:
                return append_batch(fd, path, index, self.dialect, messages)
        finally:
            os.close(fd)


def starts_like_mbox(path: str) -> bool:
    """Return True when the file ``path`` starts with a From line (a dotlock, or anything else, does not)."""
    try:
        with open(path, "rb") as file:
            return file.read(5) == b"From "
    except OSError:
        return False
