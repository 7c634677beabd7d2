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
deleted, for the same reason. See envelope.py for the bytes around each message, and
length.py for how what a killed append left is cut off. Reading and writing follow no
symbolic link below the root: a link in the tree is a folder that fails, naming it.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from migrator.endpoint import Endpoint
from migrator.errors import FolderError, StoreError
from migrator.folder import Folder, Role, role_by_name
from migrator.message import FolderPath, Message, MessageRef
from migrator.stores.base import AppendResult, FolderProbe, FolderScan, Store
from migrator.stores.foldernames import MBOX_FILE, encode_mbox_dirname
from migrator.stores.foldertree import FolderTree
from migrator.stores.leftovers import remove_abandoned, temp_maker
from migrator.stores.localfs import (
    NotFollowed,
    disk_error,
    forget_cached,
    from_time_ns,
    fsync_dir,
    identity_of,
    open_below,
    open_root,
    read_error,
    reason,
    stops_writing,
    write_all,
)
from migrator.stores.mbox.envelope import serialise
from migrator.stores.mbox.length import length_record
from migrator.stores.mbox.lock import fcntl_lock, remove_if_stale, write_lock
from migrator.stores.mbox.reader import entries, message_bytes, read_entry

VALIDITY = "mbox-1"  # offsets stay valid while the file is only appended to
LOCK_FILE = MBOX_FILE + ".lock"  # the dotlock of a folder's mbox file (see lock.py)


class MboxStore(Store):
    """A tree of mbox files (``mbox:PATH``), or a single mbox file for reading."""

    supports_flag_updates = False
    parallel_folders = True  # each folder is a file of its own, locked while it is written

    def __init__(self, endpoint: Endpoint, *, readonly: bool = True) -> None:
        super().__init__(endpoint, readonly=readonly)
        self.root = Path(endpoint.path)
        self.tree = FolderTree(self.root, encode_mbox_dirname)

    def open(self) -> None:
        """Check the archive, or create its root for writing; raise StoreError."""
        if self.root.is_file() and not self.readonly:
            raise StoreError(
                f"{self.root} is a single mbox file, and migrator writes a directory of folders: "
                f"name a directory, e.g. mbox:{self.root}.d"
            )
        if not self.root.is_file():
            open_root(self.root, "mbox archive", self.readonly, Path.is_dir)
        if not self.readonly:
            self._remove_abandoned()

    def _remove_abandoned(self) -> None:
        """Remove the dotlocks killed runs left, and the temporary files of those they were making."""
        for directory, _, files in os.walk(self.root):
            remove_abandoned(directory, lambda name: temp_maker(name, lambda final: final == LOCK_FILE))
            if LOCK_FILE in files:
                remove_if_stale(Path(directory, LOCK_FILE))

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
            elif entry.is_file(follow_symlinks=False) and _starts_like_mbox(entry.path):
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
            raise FolderError(f"there is no folder {'/'.join(folder)} in the mbox archive {self.root}")
        return path

    def _create_folder(self, folder: FolderPath) -> None:
        path = self._mbox_path(folder)
        if path is not None and (path.is_file() or path.is_symlink()):
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
            try:
                refs = [MessageRef(str(e.offset), e.flags, e.size, e.received) for e in entries(buffer)]
            except ValueError as e:
                raise FolderError(f"{path} is not an mbox file ({e}): check the path") from None
        return FolderScan(VALIDITY, refs)

    def fetch(self, folder: FolderPath, refs: Iterable[MessageRef]) -> Iterator[Message]:
        """Yield the messages at the refs' offsets; a ref that no longer points at a message is skipped."""
        path = self._existing_path(folder)
        with self._mapped(path) as (buffer, file_date):
            for ref in refs:
                try:
                    entry = read_entry(buffer, int(ref.uid))
                except ValueError:
                    continue  # the file was rewritten since the scan
                yield Message(message_bytes(buffer, entry), entry.flags, entry.received or file_date, folder, ref.uid)

    @contextmanager
    def _mapped(self, path: Path) -> Iterator[tuple[bytes, datetime]]:
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

        What an append that was killed left at the end of the file is cut off first (see length.py).
        """
        self._check_writable()
        self._create_folder(folder)
        path = self._existing_path(folder)
        try:
            fd = self._open(path, os.O_RDWR | os.O_APPEND)
        except NotFollowed as e:
            raise FolderError(str(e)) from None
        except OSError as e:
            raise FolderError(f"cannot open {path} for writing: {reason(e)}") from None
        try:
            with write_lock(path, fd), length_record(self.root, path) as length:
                results = _append(fd, path, length.begin(fd), messages)
                if all(result.ok for result in results):
                    length.end(os.fstat(fd).st_size)
                return results
        finally:
            os.close(fd)


def _append(fd: int, path: Path, old_size: int, messages: Sequence[Message]) -> list[AppendResult]:
    """Write ``messages`` at the end of the locked file ``fd``, ``old_size`` long; return one result per message."""
    prefix = _separator_needed(fd, old_size)
    offsets = []
    try:
        write_all(fd, prefix)
        offset = old_size + len(prefix)
        for message in messages:  # serialised one at a time: a batch is never held twice
            offsets.append(offset)
            for piece in serialise(message):
                write_all(fd, piece)
                offset += len(piece)
        os.fsync(fd)
    except BaseException as e:
        os.ftruncate(fd, old_size)
        os.fsync(fd)
        if not isinstance(e, OSError):
            raise
        if stops_writing(e):
            kept = "it is back to its length before this batch, and what was copied is kept"
            raise disk_error(path, e, kept) from None
        error = f"cannot write to {path}: {reason(e)} (the file was restored to its previous length)"
        return [AppendResult(message, error=error) for message in messages]
    # From the page the batch began in (kept by the last batch), to the last page, kept for
    # the next batch, which reads the file's last two bytes.
    forget_cached(fd, old_size - old_size % mmap.PAGESIZE, offset - offset % mmap.PAGESIZE)
    return [AppendResult(message, uid=str(offset)) for message, offset in zip(messages, offsets)]


def _separator_needed(fd: int, size: int) -> bytes:
    """Return what must come before a new From line so that a blank line precedes it."""
    if size == 0:
        return b""
    tail = os.pread(fd, 2, max(size - 2, 0))
    if tail.endswith(b"\n\n"):
        return b""
    return b"\n" if tail.endswith(b"\n") else b"\n\n"


def _starts_like_mbox(path: str) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read(5) == b"From "
    except OSError:
        return False
