"""Locking an mbox file the way Dovecot and mutt do: a dotlock and an fcntl lock.

Writers take the dotlock ``FILE.lock`` and then an exclusive fcntl lock on the file. The
dotlock is created with O_EXCL and holds ``pid:hostname``, as Dovecot writes it; one is taken
to be left by a crashed or killed program, and removed, when that process is gone from this
host or when it is older than STALE_AFTER seconds. Readers take only a shared fcntl lock, so
reading leaves nothing behind.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from migrator.errors import FolderError
from migrator.stores.localfs import FILE_MODE, reason

WAIT = 30.0  # seconds to wait for another program's lock
STALE_AFTER = 300.0  # seconds after which a dotlock is taken to be abandoned
_POLL = 0.1


@contextmanager
def write_lock(path: Path, fd: int, wait: float = WAIT, stale_after: float = STALE_AFTER) -> Iterator[None]:
    """Hold the dotlock and an exclusive fcntl lock on the mbox ``path`` open as ``fd``; raise FolderError."""
    with dotlock(path, wait, stale_after), fcntl_lock(path, fd, exclusive=True, wait=wait):
        yield


@contextmanager
def dotlock(path: Path, wait: float = WAIT, stale_after: float = STALE_AFTER) -> Iterator[None]:
    """Hold ``path.lock``, removing a stale one; raise FolderError if another holds it longer than ``wait``."""
    lock = path.with_name(path.name + ".lock")
    deadline = time.monotonic() + wait
    while not _try_create(lock):
        if _is_stale(lock, stale_after):
            _remove(lock)
        elif time.monotonic() > deadline:
            raise FolderError(
                f"{path} is locked by {lock}: wait for the program writing to it, or delete {lock} if none is running"
            )
        else:
            time.sleep(_POLL)
    try:
        yield
    finally:
        _remove(lock)


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


def _try_create(lock: Path) -> bool:
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        return False
    except OSError as e:
        raise FolderError(f"cannot create the lock file {lock}: {reason(e)}; fix the directory's permissions") from None
    os.write(fd, f"{os.getpid()}:{socket.gethostname()}\n".encode())
    os.close(fd)
    return True


def _is_stale(lock: Path, stale_after: float) -> bool:
    try:
        return time.time() - lock.stat().st_mtime > stale_after or _holder_is_gone(lock.read_bytes())
    except FileNotFoundError:
        return False  # released meanwhile: try again


def _holder_is_gone(content: bytes) -> bool:
    """Return True when the lock names a process of this host that no longer runs.

    A lock from another host (an mbox on a shared disk) or in another program's format is
    left to the age rule: its pid means nothing here.
    """
    pid, _, host = content.decode("utf-8", "replace").strip().partition(":")
    if not pid.isdigit() or int(pid) <= 0 or host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, under another user
    return False


def _remove(lock: Path) -> None:
    try:
        os.unlink(lock)
    except FileNotFoundError:
        pass
