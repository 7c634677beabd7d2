"""A directory of ``.eml`` files: one file per message, raw bytes exact, in a folder tree.

Layout: folder ("A", "B") is the directory ``ROOT/A/B`` (names encoded by foldernames.py);
INBOX is ``ROOT/INBOX``, or the root itself when it holds ``.eml`` files and no INBOX
directory (a plain folder of exported messages). Messages are ``000001.eml``, ``000002.eml``
... (the uid is the file name); the received date is the file's mtime.

Flags live in ``.migrator-flags`` in each folder directory: one JSON object per line,
``{"file": "000001.eml", "flags": ["seen"], "keywords": ["work"]}``, the last line for a file
winning. Lines are only ever appended (a flag change is a new line), and a batch appends its
lines before its files appear, so a crash never leaves a message with flags it did not have.
A message without a line has no flags. Each file is written under a hidden temporary name,
fsynced and linked to its final name (never replacing a file); the directory is fsynced
once per batch. Reading follows no symbolic link below the root: a linked message file is
a failed message, a linked folder directory a failed folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from migrator.core.errors import FolderError, MessageError
from migrator.core.folder import Folder, role_by_name
from migrator.core.message import Flag, Flags, FolderPath, Message, MessageRef
from migrator.endpoints.endpoint import Endpoint
from migrator.stores.base import AppendResult, FolderProbe, FolderScan, Store
from migrator.stores.foldernames import EML_SUFFIX, encode_eml_dirname
from migrator.stores.local.files import (
    FILE_MODE,
    count_files,
    disk_error,
    from_time_ns,
    fsync_dir,
    identity_of,
    natural_order,
    not_followed,
    open_below,
    open_root,
    publish,
    read_at,
    read_error,
    reason,
    stop_if_disk_refused,
    stops_writing,
    write_all,
    write_batch,
)
from migrator.stores.local.foldertree import FolderTree
from migrator.stores.local.leftovers import remove_abandoned, temp_maker, temp_name

FLAGS_FILE = ".migrator-flags"
VALIDITY = "eml-1"  # file names never change meaning
_NUMBER = re.compile(r"(\d+)\.eml$", re.IGNORECASE)


# --- the flags file: pure ----------------------------------------------------------------


def flags_line(name: str, flags: Flags) -> bytes:
    """Return the ``.migrator-flags`` line recording ``flags`` for the file ``name``."""
    record = {"file": name, "flags": sorted(f.value for f in flags.system), "keywords": sorted(flags.keywords)}
    return json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"


def parse_flags_file(data: bytes) -> dict[str, Flags]:
    """Return file name -> Flags from a ``.migrator-flags`` file; lines that do not parse are skipped."""
    flags = {}
    for line in data.splitlines():
        try:
            record = json.loads(line)
            flags[record["file"]] = Flags(
                frozenset(Flag(v) for v in record["flags"]), frozenset(str(k) for k in record["keywords"])
            )
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a crash, or written by something else
    return flags


def is_message_file(name: str) -> bool:
    """Return True for the name of a message file (``*.eml``, not hidden)."""
    return name.lower().endswith(EML_SUFFIX) and not name.startswith(".")


def next_number(names: Iterable[str]) -> int:
    """Return the number after the highest ``NNN.eml`` among ``names``."""
    return max((int(m.group(1)) for m in map(_NUMBER.fullmatch, names) if m), default=0) + 1


# --- the store ----------------------------------------------------------------------------


class EmlStore(Store):
    """A folder tree of ``.eml`` files (``eml:PATH``)."""

    parallel_folders = True

    def __init__(self, endpoint: Endpoint, *, readonly: bool = True) -> None:
        super().__init__(endpoint, readonly=readonly)
        self.root = endpoint.local_path
        self.tree = FolderTree(self.root, encode_eml_dirname)

    def open(self) -> None:
        """Check the directory, or create it for writing, removing what killed runs left; raise StoreError."""
        open_root(self.root, "EML directory", self.readonly, Path.is_dir)
        if not self.readonly:
            remove_abandoned(self.root, lambda name: temp_maker(name, is_message_file), below=True)

    def list_folders(self) -> list[Folder]:
        """Return every folder directory, and INBOX for messages lying in the root.

        A symbolic link other than a message file is listed too: reading it fails, naming it.
        """
        paths = {path for path, entry in self.tree.walk() if _folder_or_link(entry)}
        if self._loose_inbox():
            paths.add(("INBOX",))
        return [Folder(p, role_by_name(p)) for p in sorted(paths)]

    def _loose_inbox(self) -> bool:
        """Return True when the root's own ``.eml`` files are INBOX (no INBOX directory)."""
        try:
            if self.tree.find(("INBOX",)) is not None:
                return False
        except FolderError:
            return False  # a link holds INBOX: refused when read
        return any(map(is_message_file, os.listdir(self.root)))

    def _folder_dir(self, folder: FolderPath) -> Path:
        if folder == ("INBOX",) and self._loose_inbox():
            return self.root
        directory = self.tree.find(folder)
        if directory is None or not directory.is_dir():
            raise FolderError(f"there is no folder {'/'.join(folder)} in the EML directory {self.root}")
        return directory

    def _has_folder(self, folder: FolderPath) -> bool:
        if folder == ("INBOX",) and self._loose_inbox():
            return True
        directory = self.tree.find(folder)
        return directory is not None and directory.is_dir()

    def exists(self) -> bool:
        """Return True when the path is a directory."""
        return self.root.is_dir()

    def probe_folder(self, folder: FolderPath) -> FolderProbe | None:
        """Return the identity of the folder's directory and how many message files it holds."""
        try:
            directory = self._folder_dir(folder)
            return FolderProbe(identity_of(directory), count_files(directory, is_message_file))
        except (FolderError, FileNotFoundError):
            return None

    def _create_folder(self, folder: FolderPath) -> None:
        if not (folder == ("INBOX",) and self._loose_inbox()):
            self.tree.create(folder)

    # --- reading ----------------------------------------------------------------------------

    def scan(self, folder: FolderPath) -> FolderScan:
        """Return the folder's message files with their sizes, mtimes and recorded flags."""
        directory = self._folder_dir(folder)
        refs = []
        with self._opened(directory) as fd:
            flags = _read_flags(fd, directory)
            names, links = _message_files(fd)
            for name in names:
                try:
                    stat = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                refs.append(MessageRef(name, flags.get(name, Flags()), stat.st_size, from_time_ns(stat.st_mtime_ns)))
        return FolderScan(VALIDITY, refs, [(name, not_followed(directory / name)) for name in links])

    def fetch(self, folder: FolderPath, refs: Iterable[MessageRef]) -> Iterator[Message]:
        """Yield the messages of ``refs``; files deleted since the scan are skipped."""
        directory = self._folder_dir(folder)
        with self._opened(directory) as fd:
            flags = _read_flags(fd, directory)
            for ref in refs:
                if "/" in ref.uid or not is_message_file(ref.uid):
                    continue  # not a name this store gave out
                try:
                    raw, mtime_ns = read_at(fd, ref.uid, directory / ref.uid)
                except FileNotFoundError:
                    continue
                except OSError as e:
                    raise MessageError(read_error(directory / ref.uid, e)) from None
                message = [Message(raw, flags.get(ref.uid, Flags()), from_time_ns(mtime_ns), folder, ref.uid)]
                del raw  # neither kept by this frame once passed on (see MaildirStore.fetch)
                yield message.pop()

    @contextlib.contextmanager
    def _opened(self, directory: Path) -> Iterator[int]:
        """Hold the folder ``directory`` open, following no link below the root; raise FolderError."""
        try:
            fd = open_below(self.root, directory.relative_to(self.root).parts, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as e:
            raise FolderError(read_error(directory, e)) from None
        try:
            yield fd
        finally:
            os.close(fd)

    # --- writing ----------------------------------------------------------------------------

    def append_batch(self, folder: FolderPath, messages: Sequence[Message]) -> list[AppendResult]:
        """Write one file per message (flags recorded first), then fsync the directory once."""
        self._check_writable()
        self._create_folder(folder)
        directory = self._folder_dir(folder)
        number = next_number(os.listdir(directory))
        names = [f"{number + i:06d}{EML_SUFFIX}" for i in range(len(messages))]
        _append_flags(directory, b"".join(flags_line(n, m.flags) for n, m in zip(names, messages)))
        temps = [directory / temp_name(name) for name in names]
        errors = write_batch([(temp, m.raw, m.received) for temp, m in zip(temps, messages)])
        stop_if_disk_refused(directory, temps, errors)
        results = [_publish(directory, n, t, m, e) for n, t, m, e in zip(names, temps, messages, errors)]
        try:
            fsync_dir(directory)
        except OSError as e:
            error = f"cannot make {directory} durable: {reason(e)}"
            return [AppendResult(r.message, error=error) if r.ok else r for r in results]
        return results

    def set_flags(self, folder: FolderPath, uid: str, flags: Flags) -> None:
        """Record new flags for the message file ``uid``; raise MessageError if it is gone."""
        self._check_writable()
        directory = self._folder_dir(folder)
        if "/" in uid or not (directory / uid).is_file():
            raise MessageError(f"message {uid} is no longer in {directory}")
        _append_flags(directory, flags_line(uid, flags))

    def delete(self, folder: FolderPath, uids: Iterable[str]) -> None:
        """Remove the message files; raise FolderError if one cannot be removed."""
        self._check_writable()
        directory = self._folder_dir(folder)
        try:
            for uid in uids:
                if "/" not in uid and is_message_file(uid):
                    (directory / uid).unlink(missing_ok=True)
            fsync_dir(directory)
        except OSError as e:
            raise FolderError(f"cannot delete messages in {directory}: {reason(e)}") from None


def _folder_or_link(entry: os.DirEntry) -> bool:
    return entry.is_dir(follow_symlinks=False) or (entry.is_symlink() and not is_message_file(entry.name))


def _message_files(fd: int) -> tuple[list[str], list[str]]:
    """Return the names of the message files in the directory open as ``fd``, and of the symbolic links
    among them, each in natural order."""
    files, links = [], []
    with os.scandir(fd) as entries:
        for entry in entries:
            if not is_message_file(entry.name):
                continue
            if entry.is_symlink():
                links.append(entry.name)
            elif entry.is_file(follow_symlinks=False):
                files.append(entry.name)
    return sorted(files, key=natural_order), sorted(links, key=natural_order)


def _read_flags(fd: int, directory: Path) -> dict[str, Flags]:
    """Return the flags recorded in the folder open as ``fd`` (``directory``); raise FolderError."""
    try:
        return parse_flags_file(read_at(fd, FLAGS_FILE, directory / FLAGS_FILE)[0])
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise FolderError(read_error(directory / FLAGS_FILE, e)) from None


def _append_flags(directory: Path, lines: bytes) -> None:
    """Append ``lines`` to the folder's flags file and fsync it; raise FolderError."""
    try:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(directory / FLAGS_FILE, flags, FILE_MODE)
        try:
            write_all(fd, lines)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        if stops_writing(e):  # a full disk stops the run, as it does for the message files themselves
            raise disk_error(directory / FLAGS_FILE, e) from None
        raise FolderError(f"cannot record flags in {directory / FLAGS_FILE}: {reason(e)}") from None


def _publish(directory: Path, name: str, temp: Path, message: Message, error: OSError | None) -> AppendResult:
    """Give the durably written ``temp`` its final name (never replacing a file); return the result."""
    try:
        if error is not None:
            temp.unlink(missing_ok=True)  # written but not made durable: never publish it
            raise error
        publish(temp, directory / name)
    except OSError as e:
        return AppendResult(message, error=f"cannot write {directory / name}: {reason(e)}")
    return AppendResult(message, uid=name)
