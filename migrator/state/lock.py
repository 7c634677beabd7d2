"""One run per profile at a time: an flock on a small file that holds the holder's pid.

The kernel releases an flock when its process dies, however it dies, so a lock file left
behind by a killed run is simply locked again by the next run: stale locks cannot block.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from migrator.core.errors import LockedError, StoreError


class ProfileLock:
    """An exclusive, non-blocking lock; use as a context manager around a run."""

    def __init__(self, path: Path, name: str) -> None:
        self.path = Path(path)
        self.name = name
        self._fd: int | None = None

    def __enter__(self) -> ProfileLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock; raise LockedError at once when another process holds it."""
        fd = _open_private(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise LockedError(
                f"another run of {self.name} is still going (pid {holder or 'unknown'}, lock {self.path}): "
                "this run stops without doing anything; see `migrator status` for the last runs"
            ) from None
        os.ftruncate(fd, 0)  # a killed holder may have left its pid here
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Empty the pid and release the lock (the file stays: unlinking it would race)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        os.ftruncate(fd, 0)
        os.close(fd)


def locked_by(path: Path) -> str | None:
    """Return who holds the lock at ``path`` ("pid 1234"), or None when it is free."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        pid = _read_pid(fd)
        return f"pid {pid}" if pid else "a process that has not written its pid yet"
    finally:
        os.close(fd)


def _open_private(path: Path) -> int:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise StoreError(f"cannot create the lock file {path}: {error.strerror}; check the state directory") from None


def _read_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None
