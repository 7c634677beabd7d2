"""Locking an mbox file the way Dovecot and mutt do: a dotlock and an fcntl lock.

Writers take the dotlock ``FILE.lock`` and then an exclusive fcntl lock on the file. The
dotlock holds ``pid:hostname``, as Dovecot writes it, and is written whole before it
appears: it is written under a hidden temporary name and hard-linked into place, the
classic protocol that also holds over NFS (where O_EXCL did not; a link whose reply was
lost is recognised by the temporary file's link count). A filesystem without hard links
(FAT) gets it created with O_EXCL instead. One is taken to be left by a crashed or killed
program, and removed, when that process is gone from this host, when it is empty or
unreadable for longer than EMPTY_GRACE seconds (another program may create it first and
write its pid after), or when it is older than STALE_AFTER seconds. Readers take only a
shared fcntl lock, so reading leaves nothing behind.

The dotlock is not fsynced: it is for the processes that run now, which see it whole
either way; what a crash of the machine leaves behind is stale by the rules above.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from migrator.core.errors import FolderError
from migrator.stores.local.files import reason, write_synced
from migrator.stores.local.leftovers import process_gone, temp_name

log = logging.getLogger(__name__)

WAIT = 30.0  # seconds to wait for another program's lock
STALE_AFTER = 300.0  # seconds after which a dotlock is taken to be abandoned
EMPTY_GRACE = 5.0  # seconds after which an empty or unreadable dotlock is taken to be abandoned
_POLL = 0.1
_HOLDER = re.compile(r"(\d+)(?::(.*))?")
_NO_HARD_LINKS = (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS)


@contextmanager
def write_lock(
    path: Path, fd: int, wait: float = WAIT, stale_after: float = STALE_AFTER, *, lock: Path | None = None
) -> Iterator[None]:
    """Hold the dotlock (``lock``, by default ``path.lock``) and an exclusive fcntl lock on the mbox ``path``
    open as ``fd``; raise FolderError."""
    with dotlock(path, wait, stale_after, lock=lock), fcntl_lock(path, fd, exclusive=True, wait=wait):
        yield


@contextmanager
def dotlock(
    path: Path, wait: float = WAIT, stale_after: float = STALE_AFTER, *, lock: Path | None = None
) -> Iterator[None]:
    """Hold the dotlock ``lock`` of the mbox ``path`` (by default ``path.lock``), removing a stale one; raise
    FolderError if another holds it longer than ``wait`` or if it cannot be made."""
    lock = lock or path.with_name(path.name + ".lock")
    deadline = time.monotonic() + wait
    while (ours := _try_create(path, lock)) is None:
        stale = _stale(lock, stale_after)
        if stale is not None:
            _remove_stale(lock, stale)
        elif time.monotonic() > deadline:
            raise FolderError(
                f"{path} is locked by {lock}: wait for the program writing to it, or delete {lock} if none is running"
            )
        else:
            time.sleep(_POLL)
    try:
        yield
    finally:
        _release(lock, ours)


@contextmanager
def fcntl_lock(path: Path, fd: int, exclusive: bool, wait: float = WAIT) -> Iterator[None]:
    """Hold an fcntl lock (shared or exclusive) on ``fd``; raise FolderError after ``wait`` seconds."""
    operation = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.lockf(fd, operation | fcntl.LOCK_NB)
            break
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                raise FolderError(f"cannot lock {path}: {reason(e)}; is another program writing to it?") from None
            time.sleep(_POLL)
    try:
        yield
    finally:
        fcntl.lockf(fd, fcntl.LOCK_UN)


def _try_create(path: Path, lock: Path) -> int | None:
    """Make the dotlock, whole; return its inode, or None when another one is there; raise FolderError."""
    content = f"{os.getpid()}:{socket.gethostname()}\n".encode()
    temp = lock.with_name(temp_name(lock.name))
    try:
        write_synced(temp, content, sync=False)
        try:
            return _link(temp, lock)
        except OSError as e:
            if e.errno not in _NO_HARD_LINKS:
                raise
            return _create_exclusive(lock, content)
        finally:
            os.unlink(temp)
    except OSError as e:
        raise FolderError(
            f"cannot lock {path}: cannot write {lock} ({reason(e)}); check the free space and the permissions of "
            f"{lock.parent}"
        ) from None


def _link(temp: Path, lock: Path) -> int | None:
    """Link ``temp`` as ``lock``; return the inode, or None when ``lock`` exists; raise OSError."""
    try:
        os.link(temp, lock)
    except OSError as e:
        status = os.stat(temp)
        if status.st_nlink == 2:  # made after all (NFS: a retried link reports EEXIST)
            return status.st_ino
        if e.errno == errno.EEXIST:
            return None
        raise
    return os.stat(temp).st_ino


def _create_exclusive(lock: Path, content: bytes) -> int | None:
    """Create ``lock`` holding ``content`` with O_EXCL; return its inode, or None when it exists; raise OSError."""
    try:
        write_synced(lock, content, sync=False)  # removed again if the write fails
    except FileExistsError:
        return None
    return os.lstat(lock).st_ino


def _stale(lock: Path, stale_after: float) -> int | None:
    """Return the inode of ``lock`` when it is stale, None while it holds (or is gone); raise FolderError."""
    try:
        status = os.lstat(lock)
        content = _read(lock)
    except FileNotFoundError:
        return None  # released meanwhile: try again
    except OSError as e:
        raise FolderError(f"cannot read the lock file {lock}: {reason(e)}; fix its permissions or delete it") from None
    age = time.time() - status.st_mtime
    holder = _HOLDER.fullmatch(content.decode("utf-8", "replace").strip())
    if holder is None:
        stale = age > EMPTY_GRACE
    else:
        stale = age > stale_after or _holder_is_gone(int(holder.group(1)), holder.group(2))
    return status.st_ino if stale else None


def _read(lock: Path) -> bytes:
    """Return the start of the lock file (a symbolic link reads as empty: another program's lock format)."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.EMLINK):
            return b""
        raise
    try:
        return os.read(fd, 256)
    finally:
        os.close(fd)


def _holder_is_gone(pid: int, host: str | None) -> bool:
    """Return True when the lock names a process of this host that no longer runs.

    A lock from another host (an mbox on a shared disk) or without one (liblockfile writes
    the pid alone) is left to the age rule: its pid means nothing here.
    """
    return pid > 0 and host == socket.gethostname() and process_gone(pid)


def _remove(lock: Path, inode: int) -> None:
    """Remove ``lock`` if it is still the file with ``inode``, not one another program made since; raise OSError."""
    try:
        if os.lstat(lock).st_ino == inode:
            os.unlink(lock)
    except FileNotFoundError:
        pass


def _remove_stale(lock: Path, inode: int) -> None:
    try:
        _remove(lock, inode)
    except OSError as e:
        raise FolderError(f"cannot remove the stale lock file {lock}: {reason(e)}; delete it by hand") from None


def remove_if_stale(lock: Path, stale_after: float = STALE_AFTER) -> None:
    """Remove the dotlock ``lock`` if it is stale, as the next writer would (a killed run's, which a run that
    writes nothing to that folder would otherwise leave); one that cannot be read or removed is left to it."""
    with contextlib.suppress(FolderError, OSError):
        inode = _stale(lock, stale_after)
        if inode is not None:
            _remove(lock, inode)


def _release(lock: Path, inode: int) -> None:
    """Remove our ``lock``; a failure is only warned about, since the work done under it is done."""
    try:
        _remove(lock, inode)
    except OSError as e:
        log.warning("cannot remove the lock file %s: %s; delete it by hand", lock, reason(e))
