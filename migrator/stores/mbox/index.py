"""The index beside an mbox file: what only migrator knows of the messages it wrote there.

What migrator writes around a message (the flag lines after its From line, the quoting, the
line ending it; see dialect.py) is plain mbox for Dovecot, mutt and Thunderbird; only the index
says which of those bytes migrator added, so that reading gives the message back exactly. It is
the hidden file ``.NAME.index`` beside the mbox ``NAME`` (those programs pass over hidden files),
lines of ASCII, only ever appended to, under the mbox's write lock (lock.py)::

    migrator mbox index 1
    B <length>        an append begins where the mbox is <length> bytes long
    M <offset> <lead> <stored> <tail> <size> <crc32> <quoting>
                      a message it writes: From line at <offset>, the message <lead> bytes on,
                      <stored> bytes as written, then <tail> LFs; <size> bytes and crc32 <crc32>
                      once unquoted (<quoting> ``rd``, mboxrd) or as it is (``-``)
    E <length>        the append is durable; the mbox is <length> bytes long

A B line voids the M lines at or past its length: what they described was cut off, or never
written. An append writes its B and M lines and fdatasyncs them before it writes the mbox, so
after a SIGKILL, a crash or a power cut the next append knows what the last one meant to write:
its whole messages stay, and the beginning of one more is cut off when nothing else follows
(``kept_length`` in reader.py); mail another program appended since is left as it is. The E
line is not synced: whole messages are recognised by their M lines without it.

The index is never trusted blindly: a reader checks every M line against the mbox (reader.py)
and reads a message it does not name, or one whose line does not fit, as another program's. An
mbox without its index (copied without its hidden files) reads as other programs read it, the
added lines part of each message. This replaces the length file ``.NAME.length`` of earlier
versions (legacy.py).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from migrator.core.errors import FolderError
from migrator.stores.local.files import fsync_dir, open_below, reason, write_all

log = logging.getLogger(__name__)

VERSION_LINE = b"migrator mbox index 1\n"
_CHUNK = 64 * 1024  # bytes read at a time from the end of an index, looking for the last append


@dataclass(frozen=True)
class Record:
    """One message migrator wrote, as its M line describes it."""

    offset: int  # of its From line: the message's uid
    lead: int  # from the From line to the message
    stored: int  # the message as written
    tail: int  # LFs after it
    size: int  # the message itself
    crc: int  # crc32 of the message itself
    quoted: bool  # mboxrd-quoted

    @property
    def start(self) -> int:
        """Return where the message's stored bytes begin."""
        return self.offset + self.lead

    @property
    def stop(self) -> int:
        """Return where they end."""
        return self.start + self.stored

    @property
    def end(self) -> int:
        """Return where the next From line starts."""
        return self.stop + self.tail

    def line(self) -> bytes:
        """Return the M line for this record."""
        quoting = b"rd" if self.quoted else b"-"
        fields = (self.offset, self.lead, self.stored, self.tail, self.size, self.crc)
        return b"M %d %d %d %d %d %d %s\n" % (*fields, quoting)


def index_path(path: Path) -> Path:
    """Return the index file of the mbox ``path``."""
    return path.with_name(f".{path.name}.index")


class Index:
    """The lines of an index read so far: the messages they name, and what the last append meant to write."""

    def __init__(self) -> None:
        self.records: dict[int, Record] = {}
        self.consumed = 0  # bytes of the file read, whole lines only
        self.valid = True  # False when the file is not an index this version knows: it names nothing
        self.begun: int | None = None  # the length the last append began at
        self.batch: list[Record] = []  # the messages it meant to write
        self.ended: int | None = None  # the length it ended at, once durable
        self._highest = -1

    def feed(self, data: bytes) -> None:
        """Read the whole lines of ``data``, the bytes of the file from ``consumed`` on."""
        end = data.rfind(b"\n") + 1
        lines = data[:end].split(b"\n")[:-1]
        if self.consumed == 0 and lines:
            self.valid = lines.pop(0) + b"\n" == VERSION_LINE
        self.consumed += end
        if self.valid:
            for line in lines:
                self._apply(line.split(b" "))

    def _apply(self, fields: list[bytes]) -> None:
        try:
            numbers = [int(field) for field in fields[1:7]]
        except ValueError:
            return  # a line cut short by a crash, and the rest of it written after: skipped
        if fields[0] == b"B" and len(fields) == 2:
            self._begin(numbers[0])
        elif fields[0] == b"E" and len(fields) == 2:
            self.ended = numbers[0]
        elif fields[0] == b"M" and len(fields) == 8 and fields[7] in (b"rd", b"-"):
            offset, lead, stored, tail, size, crc = numbers
            record = Record(offset, lead, stored, tail, size, crc, quoted=fields[7] == b"rd")
            self.records[record.offset] = record
            self.batch.append(record)
            self._highest = max(self._highest, record.offset)

    def _begin(self, length: int) -> None:
        if self._highest >= length:  # rarely: only after a cut, or another program shortened the file
            self.records = {offset: r for offset, r in self.records.items() if offset < length}
            self._highest = max(self.records, default=-1)
        self.begun, self.batch, self.ended = length, [], None


class IndexCache:
    """The indexes of a store's mbox files, read once and then only as far as they grew."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._read: dict[Path, tuple[int, Index]] = {}  # mbox -> (inode of its index, the index)

    def records(self, path: Path) -> dict[int, Record]:
        """Return the messages the index of the mbox ``path`` names (none without an index); raise FolderError."""
        file = index_path(path)
        base = self.root.parent if path == self.root else self.root  # a single mbox file as the archive
        try:
            fd = open_below(base, file.relative_to(base).parts, os.O_RDONLY)
        except FileNotFoundError:
            return {}
        except OSError as e:
            raise FolderError(f"cannot read {file}, the index of {path}: {reason(e)}") from None
        try:
            status = os.fstat(fd)
            inode, index = self._read.get(path, (None, None))
            if index is None or inode != status.st_ino or status.st_size < index.consumed:
                index = Index()
            index.feed(os.pread(fd, status.st_size - index.consumed, index.consumed))
            self._read[path] = (status.st_ino, index)
            return index.records
        finally:
            os.close(fd)


@contextmanager
def index_for_append(root: Path, path: Path) -> Iterator[AppendIndex]:
    """Hold the index of the mbox ``path`` (below ``root``) open for an append; raise FolderError."""
    file = index_path(path)
    try:
        fd = open_below(root, file.relative_to(root).parts, os.O_RDWR | os.O_CREAT | os.O_APPEND)
    except OSError as e:
        raise FolderError(f"cannot open {file}, the index of {path}: {reason(e)}") from None
    try:
        yield AppendIndex(fd, path, file)
    finally:
        os.close(fd)


class AppendIndex:
    """The index ``file`` of the mbox ``path``, open as ``fd``, while the mbox is locked for writing."""

    def __init__(self, fd: int, path: Path, file: Path) -> None:
        self._fd = fd
        self.path = path
        self.file = file

    def last_append(self) -> Index:
        """Return the index's last append (its B line and what follows); raise FolderError."""
        try:
            size = os.fstat(self._fd).st_size
            index = Index()
            if os.pread(self._fd, len(VERSION_LINE), 0) != VERSION_LINE:
                return index  # none yet, or not one this version knows: it names nothing
            index.consumed = self._last_begin(size)
            index.feed(os.pread(self._fd, size - index.consumed, index.consumed))
            return index
        except OSError as e:
            raise FolderError(f"cannot read {self.file}, the index of {self.path}: {reason(e)}") from None

    def _last_begin(self, size: int) -> int:
        """Return where the last B line starts (past the version line when there is none)."""
        chunk = _CHUNK
        while True:
            start = max(size - chunk, 0)
            data = os.pread(self._fd, size - start, start)
            found = data.rfind(b"\nB ")
            if found >= 0:
                return start + found + 1
            if start == 0:
                return len(VERSION_LINE)
            chunk *= 2

    def intend(self, length: int, records: Sequence[Record]) -> None:
        """Record durably that an append of ``records`` begins at ``length``; raise FolderError."""
        try:
            size = os.fstat(self._fd).st_size
            if size and os.pread(self._fd, len(VERSION_LINE), 0) != VERSION_LINE:
                os.ftruncate(self._fd, 0)  # cut short as it was made, or not an index: it names nothing
                size = 0
            lines = b"B %d\n" % length + b"".join(record.line() for record in records)
            if size == 0:
                lines = VERSION_LINE + lines
            elif os.pread(self._fd, 1, size - 1) != b"\n":
                lines = b"\n" + lines  # a line a crash cut short must not swallow this one
            write_all(self._fd, lines)
            os.fdatasync(self._fd)
            if size == 0:
                fsync_dir(self.file.parent)  # the file may be new
        except OSError as e:
            raise FolderError(f"cannot write {self.file}, the index of {self.path}: {reason(e)}") from None

    def end(self, length: int) -> None:
        """Record that the append is durable and the mbox ``length`` long (a failure only leaves that unsaid)."""
        try:
            write_all(self._fd, b"E %d\n" % length)
        except OSError as e:
            log.warning("cannot write %s, the index of %s: %s", self.file, self.path, reason(e))
