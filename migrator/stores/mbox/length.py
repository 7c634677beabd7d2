"""The length file beside an mbox: how an append that was killed is cut off again.

An append that a SIGKILL, a crash or a power cut stops leaves the beginning of a message
at the end of the file, and nothing undoes it: the store's own rollback never ran. The
rerun would append that message whole after its beginning. So before an append, the
length the file has is recorded durably in a hidden file beside it, ``.NAME.length``
(written and fdatasynced only when it differs from the length recorded already), and after
the append is fsynced the new length is recorded (not synced: a length left behind is only
older, and whole messages past it are kept). Under the next append's lock, the bytes past
the recorded length are read: whole messages of migrator's stay, and the beginning of one
more is cut off (reader.intact_length). Anything else found there, such as mail another
program appended since, is left as it is.
"""

from __future__ import annotations

import logging
import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from migrator.errors import FolderError
from migrator.stores.localfs import fsync_dir, open_below, reason
from migrator.stores.mbox.reader import intact_length

log = logging.getLogger(__name__)

_SIZE = 32  # bytes read from the file: one line of digits


@contextmanager
def length_record(root: Path, path: Path) -> Iterator[LengthRecord]:
    """Hold the length file of the mbox ``path`` (below ``root``) open; raise FolderError."""
    file = path.with_name(f".{path.name}.length")
    try:
        fd = open_below(root, file.relative_to(root).parts, os.O_RDWR | os.O_CREAT)
    except OSError as e:
        raise FolderError(f"cannot open {file}, which records the length of {path}: {reason(e)}") from None
    try:
        yield LengthRecord(fd, path, file)
    finally:
        os.close(fd)


class LengthRecord:
    """The length file ``file``, open as ``fd``, of the mbox ``path`` while the mbox is locked for writing."""

    def __init__(self, fd: int, path: Path, file: Path) -> None:
        self._fd = fd
        self.path = path
        self.file = file

    def begin(self, fd: int) -> int:
        """Cut off what a killed append left at the end of the mbox open as ``fd``, record its length
        durably, and return it; raise FolderError."""
        try:
            recorded = self._recorded()
            length = _cut_unfinished(fd, self.path, recorded)
            if recorded != length:
                self._write(length)
                os.fdatasync(self._fd)
                if recorded is None:
                    fsync_dir(self.file.parent)  # the file may be new
        except OSError as e:
            raise FolderError(f"cannot record the length of {self.path} in {self.file}: {reason(e)}") from None
        return length

    def end(self, length: int) -> None:
        """Record ``length``, that of the mbox once an append is durable (a failure only leaves the older one)."""
        try:
            self._write(length)
        except OSError as e:
            log.warning("cannot record the length of %s in %s: %s", self.path, self.file, reason(e))

    def _recorded(self) -> int | None:
        text = os.pread(self._fd, _SIZE, 0).strip()
        return int(text) if text.isdigit() else None

    def _write(self, length: int) -> None:
        # One write of a fixed width at the start of the file: it is never seen half made.
        os.pwrite(self._fd, b"%020d\n" % length, 0)


def _cut_unfinished(fd: int, path: Path, recorded: int | None) -> int:
    """Truncate the mbox ``fd`` to its intact length past ``recorded`` (fsynced); return its length; raise OSError."""
    size = os.fstat(fd).st_size
    if recorded is None or not recorded < size:
        return size  # nothing appended since, or rewritten by another program: nothing is ours to cut
    with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as buffer:
        length = intact_length(buffer, recorded)
    if length < size:
        os.ftruncate(fd, length)
        os.fsync(fd)
        log.warning(
            "%s: cut off %d bytes, the beginning of a message a run that was stopped was writing", path, size - length
        )
    return length
