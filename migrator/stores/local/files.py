"""Filesystem helpers the local archives share: private modes, durable writes, containment.

Archives hold private mail: directories are created 0700 and files 0600. A write is
durable once its file and the directory entry pointing at it are both fsynced; callers
writing a batch fsync each file, then each touched directory once.

What an archive holds is written once and not read again by the run, so a batch, once
durable, is dropped from the page cache (``forget_cached``): a backup of 50 GB does not
push out what the machine's other work keeps cached.

Reading never follows a symbolic link below an archive's root (``open_below``, ``read_at``):
whoever can write into a Maildir that root backs up could otherwise link a message to
``/etc/shadow`` and find it in the backup. The root itself, the path the user named, is
followed, as ``cp -R`` and ``tar`` follow the paths on their command line: a user who names
a link means where it leads.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import re
import stat
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import NamedTuple, TypeVar

from migrator.core.errors import DiskError, FolderError, StoreError
from migrator.stores.local.leftovers import temp_name

DIR_MODE = 0o700
FILE_MODE = 0o600
SYNC_THREADS = 16
KEPT_OPEN = 128  # descriptors pending files keep open by default (see Durability)
T = TypeVar("T")
R = TypeVar("R")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_DIGITS = re.compile(r"([0-9]+)")


def make_private_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents, each with mode 0700; raise OSError on failure."""
    missing = []
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            if not directory.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, f"{directory} is not a directory", str(directory)) from None


def write_synced(path: str | Path, data: bytes, received: datetime | None = None, *, sync: bool = True) -> None:
    """Create ``path`` (mode 0600, must not exist) holding ``data``, mtime ``received``, fsynced
    unless ``sync`` is False; raise OSError."""
    fd = _create(path, data, received)
    try:
        if sync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)


def _create(path: str | Path, data: bytes, received: datetime | None) -> int:
    """Create ``path`` holding ``data`` with mtime ``received``; return its open descriptor; raise OSError."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        write_all(fd, data)
        if received is not None:
            mtime = time_ns(received)
            os.utime(fd, ns=(mtime, mtime))
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    return fd


def write_batch(files: Sequence[tuple[str | Path, bytes, datetime | None]]) -> list[OSError | None]:
    """Write each (path, data, mtime) as a new private file, then make their data durable together.

    Return, per file, None or the error that kept it from being written (see PendingFiles).
    """
    pending = PendingFiles()
    try:
        errors = pending.write(files)
        try:
            pending.sync()
        except OSError as error:
            return [error if e is None else e for e in errors]
        return errors
    finally:
        pending.close()


def _find_syncfs() -> Callable[[str], None] | None:
    """Return Linux's syncfs(2) as a function of a directory that raises OSError, or None without it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None

    def sync_filesystem(directory: str) -> None:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            if syncfs(fd) != 0:
                code = ctypes.get_errno()
                raise OSError(code, os.strerror(code), directory)
        finally:
            os.close(fd)

    return sync_filesystem


class Durability(NamedTuple):
    """How a batch of written files is made durable, and how many descriptors that may hold.

    ``syncfs(directory)`` makes everything written to the filesystem holding ``directory`` durable,
    or raises OSError: Linux's syncfs(2) by default. One syncfs replaces an fsync per file: a batch
    of 500 files is durable about five times sooner. Without it (None, as on other systems) each
    file is fsynced, on threads. ``kept_open`` is how many files of a batch stay open until they are
    dropped from the page cache. Stores use the default unless given another, as a test does to make
    the sync fail or to go without syncfs.
    """

    syncfs: Callable[[str], None] | None = _find_syncfs()
    kept_open: int = KEPT_OPEN

    def sync(self, paths: Sequence[str | Path]) -> None:
        """Make the data of ``paths`` (files of one directory) durable; raise OSError."""
        if not paths:
            return
        if self.syncfs is not None:
            self.syncfs(os.path.dirname(paths[0]))
        else:
            _in_parallel(_fsync_path, paths)


class PendingFiles:
    """Files written but not yet durable, made durable together by one ``sync`` as ``durability`` says.

    Once durable, the files are dropped from the page cache (see forget_cached).
    """

    def __init__(self, durability: Durability | None = None) -> None:
        self.durability = durability or _DURABLE
        self.paths: list[str | Path] = []
        # The first files stay open until they are dropped from the cache, sparing an open and
        # a close each; the rest are opened again, so that pending files never need many descriptors.
        self._kept: list[int] = []

    def write(self, files: Sequence[tuple[str | Path, bytes, datetime | None]]) -> list[OSError | None]:
        """Create each (path, data, mtime) as a new private file; return, per file, None or its error."""
        errors: list[OSError | None] = []
        for path, data, received in files:
            try:
                fd = _create(path, data, received)
            except OSError as error:
                errors.append(error)
                continue
            errors.append(None)
            self.paths.append(path)
            if len(self._kept) < self.durability.kept_open:
                self._kept.append(fd)
            else:
                os.close(fd)
        return errors

    def sync(self) -> None:
        """Make every file written since the last sync durable and drop it from the cache; raise OSError.

        The files are no longer pending afterwards, whether or not this succeeded.
        """
        try:
            self.durability.sync(self.paths)
            for fd in self._kept:
                forget_cached(fd)
            for path in self.paths[len(self._kept) :]:
                _forget_file(path)
        finally:
            self.close()

    def close(self) -> None:
        """Close the descriptors kept open and forget the files (they stay where they were written)."""
        for fd in self._kept:
            os.close(fd)
        self._kept.clear()
        self.paths.clear()


def forget_cached(fd: int, start: int = 0, end: int | None = None) -> None:
    """Ask the kernel to drop the pages of ``fd`` from ``start`` to ``end`` (None: the end) from its cache.

    Pages still waiting to be written are kept (Linux starts writing them out), so this drops
    everything only after a sync.
    Memory freed this way is what the next batch is written into: on a virtual machine whose
    host hands out memory on first touch, writing into pages never used before took 7 times as
    long (bench/: more than a quarter of the client's CPU in IMAP -> Maildir). Only advice: a
    system that cannot take it is not an error.
    """
    length = 0 if end is None else end - start  # 0 means to the end of the file
    if hasattr(os, "posix_fadvise") and (end is None or length > 0):
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, start, length, os.POSIX_FADV_DONTNEED)


def _forget_file(path: str | Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            forget_cached(fd)
        finally:
            os.close(fd)


def _fsync_path(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_DURABLE = Durability()  # the one every store uses unless given another


def _in_parallel(function: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """Return ``[function(item) for item in items]``, run on a few threads.

    Used for writes that end in fsync: the kernel commits concurrent fsyncs together, so a
    batch of files becomes durable about twice as fast as one file after another.
    """
    if len(items) < 2:
        return [function(item) for item in items]
    return list(_pool().map(function, items))


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=SYNC_THREADS, thread_name_prefix="fsync")


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (os.write may write less); raise OSError."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_dir(path: Path) -> None:
    """Make the entries of directory ``path`` (new and renamed files) durable; raise OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_synced(path: Path, data: bytes) -> None:
    """Replace the file ``path`` by one holding ``data``, atomically and durably; raise OSError."""
    temp = path.with_name(temp_name(path.name))
    write_synced(temp, data)
    try:
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise
    fsync_dir(path.parent)


def publish(temp: Path, final: Path) -> None:
    """Give the written file ``temp`` the name ``final``, never replacing a file there; raise OSError."""
    try:
        os.link(temp, final)
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS):
            os.unlink(temp)
            raise
        # A filesystem without hard links (FAT): rename, having checked that nothing is in the way.
        if os.path.lexists(final):
            os.unlink(temp)
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(final)) from None
        os.rename(temp, final)
    else:
        os.unlink(temp)


def time_ns(moment: datetime) -> int:
    """Return ``moment`` as nanoseconds since 1970 (negative before), for os.utime."""
    return (moment - _EPOCH) // _MICROSECOND * 1000


def from_time_ns(ns: int) -> datetime:
    """Return the UTC moment ``ns`` nanoseconds after 1970 (to the microsecond)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


def natural_order(name: str) -> list[str | int]:
    """Return a sort key ordering the numbers in file names by value (``1.M99`` before ``1.M100``)."""
    # re.split with a group alternates text and numbers, so equal positions hold equal types.
    return [int(part) if index % 2 else part for index, part in enumerate(_DIGITS.split(name))]


def not_followed(path: str | Path) -> str:
    """Return the sentence reporting the symbolic link ``path``, which reading does not follow."""
    return f"{path} is a symbolic link; not followed"


class NotFollowed(OSError):
    """A symbolic link met below an archive's root: never followed (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(errno.ELOOP, "is a symbolic link; not followed", str(path))

    def __str__(self) -> str:
        return not_followed(self.filename)


def _open_at(dir_fd: int, name: str, path: str | Path, flags: int = os.O_RDONLY) -> int:
    """Open ``name`` in the directory open as ``dir_fd`` (``path`` names it for errors), not following a
    symbolic link; return the descriptor; raise NotFollowed at a link, OSError otherwise."""
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE, dir_fd=dir_fd)
    except OSError as e:
        # Linux says ELOOP for a link, or ENOTDIR when a directory was asked for; BSD says EMLINK.
        if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK) and _is_link(dir_fd, name):
            raise NotFollowed(path) from None
        raise


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def open_below(root: Path, parts: Sequence[str], flags: int = os.O_RDONLY) -> int:
    """Open ``root/parts[0]/parts[1]...`` with ``flags``, following no symbolic link below ``root``
    (``root`` itself is followed); return the descriptor; raise NotFollowed at a link, OSError otherwise."""
    if not parts:
        return os.open(root, flags | os.O_CLOEXEC)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    path = Path(root)
    try:
        for depth, part in enumerate(parts, 1):
            path = path / part
            child = _open_at(fd, part, path, flags if depth == len(parts) else os.O_RDONLY | os.O_DIRECTORY)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_at(dir_fd: int, name: str, path: str | Path) -> tuple[bytes, int]:
    """Return the bytes and the mtime (ns) of the regular file ``name`` in the directory open as ``dir_fd``
    (``path`` names it for errors), not following a symbolic link; raise NotFollowed or OSError."""
    # O_NONBLOCK: a FIFO put in the file's place must not hang the run; it is refused below.
    fd = _open_at(dir_fd, name, path, os.O_RDONLY | os.O_NONBLOCK)
    with open(fd, "rb") as file:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        return file.read(), status.st_mtime_ns


def read_below(root: Path, parts: Sequence[str]) -> bytes:
    """Return the bytes of the regular file ``root/parts...``, following no link below ``root``;
    raise NotFollowed or OSError."""
    directory = open_below(root, parts[:-1], os.O_RDONLY | os.O_DIRECTORY)
    try:
        return read_at(directory, parts[-1], Path(root, *parts))[0]
    finally:
        os.close(directory)


def read_error(path: str | Path, error: OSError) -> str:
    """Return the sentence saying why ``path`` could not be read (a link not followed names the link)."""
    return str(error) if isinstance(error, NotFollowed) else f"cannot read {path}: {reason(error)}"


def inside(root: Path, path: Path) -> Path:
    """Return ``path`` if it resolves inside ``root``; raise FolderError if a link leads elsewhere."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if os.path.commonpath([real_root, real]) != real_root:
        raise FolderError(f"{path} leads outside the archive {root}: remove the symbolic link that points to {real}")
    return path


def identity_of(path: Path) -> str:
    """Return the file system's identity of ``path`` (device and inode), which changes when it is made anew.

    A run compares it with the one recorded when it last wrote there, so that an archive deleted and
    written again is not taken for the one the state file describes. Raises OSError (no such path).
    """
    stat = os.stat(path, follow_symlinks=False)
    return f"{stat.st_dev}:{stat.st_ino}"


def count_files(directory: Path, counts: Callable[[str], bool]) -> int:
    """Return how many regular files in ``directory`` have a name ``counts`` accepts (0 when there is none)."""
    try:
        with os.scandir(directory) as entries:
            return sum(1 for e in entries if counts(e.name) and e.is_file(follow_symlinks=False))
    except FileNotFoundError:
        return 0


def open_root(path: Path, kind: str, readonly: bool, exists: Callable[[Path], bool]) -> None:
    """Check that the archive at ``path`` can be read, or create it for writing; raise StoreError."""
    if readonly:
        if not exists(path):
            raise StoreError(f"no {kind} at {path}: check the path")
        return
    try:
        make_private_dirs(path)
    except OSError as e:
        raise StoreError(f"cannot create the {kind} at {path}: {reason(e)}; choose a writable directory") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise StoreError(f"cannot write to the {kind} at {path}: it {unwritable(path)} or choose another directory")


def unwritable(path: Path) -> str:
    """Return why the directory ``path`` cannot be written, and the fix: "is not writable; fix its permissions"."""
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "is on a read-only file system; make it writable"
    except OSError:
        pass
    return "is not writable; fix its permissions"


def reason(error: OSError) -> str:
    """Return the operating system's words for ``error`` ("No space left on device")."""
    return error.strerror or str(error)


def stops_writing(error: OSError) -> bool:
    """Return True when ``error`` says the file system takes no more writes (full, over quota, read-only)."""
    return error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def disk_error(path: str | Path, error: OSError, kept: str = "what was copied is kept") -> DiskError:
    """Return the error that stops a run whose write of ``path`` failed with ``error``, saying what is ``kept``."""
    if error.errno == errno.EROFS:
        fix = "make it writable and rerun"
    elif stops_writing(error):
        fix = "free some space there and rerun"
    else:
        fix = "check the disk and rerun"
    return DiskError(f"cannot write to {path}: {reason(error)}; {kept}: {fix}")


def stop_if_disk_refused(directory: str | Path, paths: Sequence[str | Path], errors: Sequence[OSError | None]) -> None:
    """Remove the files ``paths`` of a batch written into ``directory`` and raise DiskError when one of
    ``errors`` (one per file) says the disk takes no more: no part of such a batch is kept."""
    refused = next((error for error in errors if error is not None and stops_writing(error)), None)
    if refused is None:
        return
    for path in paths:
        with contextlib.suppress(OSError):
            os.unlink(path)
    raise disk_error(directory, refused)
