"""PstStore: ``pst:PATH`` as a source (through PstReader) and as a target (through PstWriter).

As a target a new file is built in a temporary file next to PATH and renamed into place by ``close``: a
crashed run never leaves a half-written PST at PATH. When a part reaches ``part_size`` bytes it is closed
and the next messages go to ``PATH-2.pst``, ``PATH-3.pst``... Messages for an existing last part that migrator
wrote are added to it in place (``append.py``): its header changes last, on ``close``, so a crash leaves the
file as it was. Any other existing file (ANSI, or from another program) is rebuilt: the messages already
there are carried into a new file first, with the same NIDs (their blocks copied as they are from Unicode
files, re-encoded from ANSI ones). New flags for a message of an earlier part are written into that part in
the same way, on ``close``; no message is ever added to an earlier part.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from migrator.core.errors import FolderError, Interrupted, MessageError, StoreError
from migrator.core.folder import Folder, Role
from migrator.core.message import Flags, FolderPath, Message, MessageRef
from migrator.endpoints.endpoint import Endpoint
from migrator.stores.base import AppendResult, FolderProbe, FolderScan, Store
from migrator.stores.local.files import FILE_MODE, disk_error, unwritable
from migrator.stores.local.leftovers import Maker, remove_abandoned, temp_maker, temp_name
from migrator.stores.pst.parts import existing_parts, message_uid, part_path, split_uid

if TYPE_CHECKING:
    from migrator.stores.pst.parts import PartsReader
    from migrator.stores.pst.reader import PstReader
    from migrator.stores.pst.writer import PstWriter

# The writer and the reader are imported when first used: a nightly rerun that finds
# every folder unchanged neither reads nor writes the file, and skips their imports.

DEFAULT_PART_SIZE = 19 * 1024**3
"""Start a new part after 19 GiB, so that a part (one message past it at most) stays below the 20 GiB that
Outlook 2003 and 2007 accept by default, and far below the 50 GiB of Outlook 2010 and later (docs/usage.md)."""
VALIDITY = "1"  # NIDs never change once written, so the folder validity is constant


class PartWriter:
    """One part being written: a PstWriter on a private temporary file that becomes ``target`` on commit."""

    def __init__(self, target: Path, record_key: bytes | None = None) -> None:
        self.target = target
        self.temp = target.with_name(temp_name(target.name))  # removed by a later run if this one is killed
        try:
            fd = os.open(self.temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        except OSError as error:
            raise disk_error(target, error, "nothing was written") from None
        self.file = os.fdopen(fd, "w+b")
        from migrator.stores.pst.writer import PstWriter

        self.writer = PstWriter(self.file, target.stem, scratch=str(target.parent), record_key=record_key)

    def commit(self) -> None:
        """Finish the file, rename it over ``target`` and make the rename durable."""
        self.writer.finish()
        self.file.close()
        os.replace(self.temp, self.target)
        directory = os.open(self.target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def discard(self) -> None:
        """Drop the temporary file without touching ``target``."""
        self.writer.close()
        if not self.file.closed:
            self.file.close()
        self.temp.unlink(missing_ok=True)


class AppendPart:
    """An existing part ``target`` changed in place by an AppendingWriter (the last part is added to, an earlier
    one only given new flags); ``commit`` writes its header."""

    def __init__(self, target: Path) -> None:
        """Open ``target``; raise NotAppendable when it must be rebuilt instead, StoreError when it cannot be opened."""
        from migrator.stores.pst.append import AppendingWriter

        self.target = target
        try:
            self.file = open(target, "r+b")  # noqa: SIM115 - closed by commit or discard
        except OSError as error:
            raise disk_error(target, error, "nothing was written") from None
        try:
            self.writer: PstWriter = AppendingWriter(self.file, scratch=str(target.parent))
        except BaseException:
            self.file.close()
            raise

    def commit(self) -> None:
        """Write what the run changed and then the header (see ndb/append.py); StoreError if the file is damaged.

        A file nothing was changed in (a message's new flags refused) is left as it is.
        """
        from migrator.stores.pst.append import AppendingWriter
        from migrator.stores.pst.ndb.reader import PstFormatError

        assert isinstance(self.writer, AppendingWriter)
        if not self.writer.has_changes():
            self.discard()
            return
        try:
            self.writer.finish()
        except PstFormatError as error:  # a table the additions change is damaged: the file stays as it was
            raise StoreError(f"cannot add to {self.target}: {error}; write to a new file instead") from None
        self.file.close()

    def discard(self) -> None:
        """Leave the file as its header says: what this run wrote after its end is cut off."""
        from migrator.stores.pst.ndb.append import prepare

        self.writer.close()
        if not self.file.closed:
            try:
                prepare(self.file)
            finally:
                self.file.close()


class PstStore(Store):
    """A PST file (or a series of parts) as a store; see the module docstring."""

    durable_on_append = False

    def __init__(self, endpoint: Endpoint, *, readonly: bool = True, part_size: int | None = None) -> None:
        super().__init__(endpoint, readonly=readonly)
        self.path = endpoint.local_path
        self.part_size = part_size or endpoint.part_size or DEFAULT_PART_SIZE
        self._reader: PstReader | None = None  # a source's first part; a target's last part as it was opened
        self._parts: PartsReader | None = None  # as a source: every part; as a target: every part as it was opened
        self._existing: list[int] = []  # as a target: the numbers of the parts there were when it was opened
        self._part: PartWriter | AppendPart | None = None
        self._part_number = 1
        self._earlier: dict[int, AppendPart] = {}  # earlier parts given new flags, by number: changed on close
        self._earlier_counts: tuple[bytes, dict[FolderPath, int]] | None = None  # see _probe_earlier

    # --- lifecycle -------------------------------------------------------------------------------------

    def open(self) -> None:
        """Open the file for reading, or for writing: a new file at once, an existing one on the first change."""
        if self.readonly:
            from migrator.stores.pst.parts import PartsReader

            self._reader = self._open_reader(self.path)
            self._parts = PartsReader.opened({1: self._reader}, range(1, len(existing_parts(self.path)) + 1),
                                             self.path)
            return
        self._check_directory()
        remove_abandoned(self.path.parent, self._temp_maker)
        while part_path(self.path, self._part_number + 1).exists():
            self._part_number += 1
        self._existing = [n for n in range(1, self._part_number + 1) if part_path(self.path, n).exists()]
        for number in self._existing:  # an earlier part too, left so by a run killed while changing flags in it
            _recover(part_path(self.path, number))
        if not self._existing:
            self._part = PartWriter(self.path)

    def close(self) -> None:
        """Finish every part the run changed, earlier parts first, then the part being written; close the reader.

        Each part is committed on its own: one that fails stays as it was and the others are still finished;
        the first failure is raised once all are done, so that nothing of the run is recorded as durable.
        """
        if self._parts is not None:
            self._parts.close()  # the reader too
            self._parts = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        parts, failed = self._take_parts(), None
        for index, part in enumerate(parts):
            try:
                _commit(part)
            except Exception as error:  # noqa: BLE001 - raised below, once the other parts are committed
                failed = failed or error
            except BaseException as error:  # stopped: what is not committed yet is dropped, as __exit__ does
                for rest in parts[index + 1:]:
                    _drop(rest, error)
                raise
        if failed is not None:
            raise failed

    def _take_parts(self) -> list[PartWriter | AppendPart]:
        """Return the parts being changed, in order (earlier ones first), and forget them."""
        parts: list[PartWriter | AppendPart] = [self._earlier[n] for n in sorted(self._earlier)]
        if self._part is not None:
            parts.append(self._part)
        self._earlier, self._part = {}, None
        return parts

    def __exit__(self, *exc_info: object) -> None:
        error = exc_info[1]
        if isinstance(error, KeyboardInterrupt):
            # Stopped: finishing a large file could outlast the stop, so the run's changes are dropped.
            for part in self._take_parts():
                _drop(part, error)
        self.close()

    def _check_directory(self) -> None:
        directory = self.path.parent
        if not directory.is_dir():
            raise StoreError(f"cannot write {self.path}: the folder {directory} does not exist; create it first")
        if not os.access(directory, os.W_OK):
            raise StoreError(f"cannot write {self.path}: the folder {directory} {unwritable(directory)} "
                             "or choose another")

    def _temp_maker(self, filename: str) -> Maker | None:
        """Return who made ``filename`` if it is the temporary file of a part of this PST (see leftovers.py)."""
        later = re.compile(re.escape(self.path.stem) + r"-\d+" + re.escape(self.path.suffix or ".pst"))  # part_path's
        return temp_maker(filename, lambda name: name == self.path.name or later.fullmatch(name) is not None)

    @staticmethod
    def _open_reader(path: Path) -> PstReader:
        if not path.exists():
            raise StoreError(f"the PST file {path} does not exist: check the path")
        from migrator.stores.pst.reader import PstReader

        return PstReader(path)

    def _start_existing(self) -> PartWriter | AppendPart:
        """Return the existing last part opened for adding to it in place, or else rebuilt."""
        from migrator.stores.pst.append import NotAppendable

        try:
            return AppendPart(part_path(self.path, self._part_number))
        except NotAppendable:
            return _start_rebuild(self._require_reader(), part_path(self.path, self._part_number))

    # --- reading ---------------------------------------------------------------------------------------

    def list_folders(self) -> list[Folder]:
        """Return the folders of the file (as a target: the part being written's, new folders included)."""
        if self._parts is not None and self.readonly:
            return self._parts.folders()
        if self._part is not None:
            return [Folder(path, _role(path)) for path in self._part.writer.folder_paths()]
        return [Folder(f.path, f.role) for f in self._require_reader().folders()]

    def scan(self, folder: FolderPath) -> FolderScan:
        """Return the folder's message references, in every part (as a target: those the parts had before this
        run, uids as append_batch gave them)."""
        return FolderScan(VALIDITY, self._parts_with(folder).scan(folder))

    def fetch(self, folder: FolderPath, refs: Iterable[MessageRef]) -> Iterator[Message]:
        """Yield the messages for ``refs`` from the parts that hold them."""
        return self._parts_with(folder).fetch(folder, refs)

    def _parts_with(self, folder: FolderPath) -> PartsReader:
        """Return the parts read (as a target: as they were opened; none for a new file); raise FolderError when
        no part has ``folder`` and it is not one the part being written has either."""
        from migrator.stores.pst.parts import PartsReader

        if self._parts is None and self._existing:
            last = self._existing[-1]
            self._parts = PartsReader.opened({last: self._require_reader()}, self._existing, self.path)
        parts = self._parts or PartsReader({})
        if parts.has_folder(folder) or self._part is not None:
            return parts
        raise FolderError(f"{self.endpoint} has no folder {'/'.join(folder)}: run 'migrator folders' to list them")

    def _require_reader(self) -> PstReader:
        if self._reader is None and self._existing:
            self._reader = self._open_reader(part_path(self.path, self._existing[-1]))
        if self._reader is None:
            raise StoreError(f"{self.endpoint} is not open: use it as a context manager")
        return self._reader

    def exists(self) -> bool:
        """Return True when the file is there."""
        return self.path.exists()

    def probe_folder(self, folder: FolderPath) -> FolderProbe | None:
        """Return the archive's identity, the record key of its first part (which adding parts leaves as it
        was), and how many messages the folder holds in all its parts; None when no part has it."""
        if self._parts is not None and self.readonly:
            total = self._parts.count(folder)
            return None if total is None else FolderProbe(self._parts.record_key.hex(), total)
        if self._part is not None:
            count, key = self._part.writer.message_count(folder), self._part.writer.record_key
        else:
            reader = self._require_reader()
            found = reader.find_folder(folder)
            count, key = (None if found is None else found.count), reader.record_key
        if self._part_number > 1:
            key, counts = self._probe_earlier()
            if folder in counts:
                count = (count or 0) + counts[folder]
        return None if count is None else FolderProbe(key.hex(), count)

    def _probe_earlier(self) -> tuple[bytes, dict[FolderPath, int]]:
        """Return the first part's record key and the messages of each folder in the parts before the one being
        written, all files on disk (a part is committed before the next starts); kept until the next part."""
        if self._earlier_counts is None:
            key, counts = b"", dict[FolderPath, int]()
            for number in range(1, self._part_number):
                if part_path(self.path, number).exists():
                    with self._open_reader(part_path(self.path, number)) as reader:
                        key = key or reader.record_key
                        for pst_folder in reader.folders():
                            counts[pst_folder.path] = counts.get(pst_folder.path, 0) + pst_folder.count
            self._earlier_counts = key, counts
        return self._earlier_counts

    # --- writing ---------------------------------------------------------------------------------------

    def _create_folder(self, folder: FolderPath) -> None:
        if self._part is None and self._require_reader().find_folder(folder) is not None:
            return  # already in the existing file: no need to rebuild it
        self._writer().ensure_folder(folder)

    def append_batch(self, folder: FolderPath, messages: Sequence[Message]) -> list[AppendResult]:
        """Write ``messages`` into the part being written; they are durable once ``close`` returns."""
        results = []
        for message in messages:
            try:
                self._rotate_if_full(folder)
                nid = self._writer().add_message(folder, message)
            except (ValueError, OverflowError) as error:
                results.append(AppendResult(message, error=f"cannot store the message in a PST: {error}"))
                continue
            except OSError as error:  # the file is left half written: no further message can go in
                raise disk_error(part_path(self.path, self._part_number), error, "nothing is added to it") from None
            results.append(AppendResult(message, uid=message_uid(self._part_number, nid)))
        return results

    def set_flags(self, folder: FolderPath, uid: str, flags: Flags) -> None:
        """Give a message ``flags`` when the store is closed: its property context is written again in the part
        that holds it, copy-on-write; raise MessageError when there is no such message.

        A part being built is finished first, as when it is full. An earlier part is opened to be changed in
        place too (rebuilt first if it must be), but no message is added to it.
        """
        from migrator.stores.pst.append import AppendingWriter

        number, nid = split_uid(uid)
        if not nid.isdigit() or not 1 <= number <= self._part_number:
            raise MessageError(f"cannot change the flags of message {uid} in {self.endpoint}: no part of it holds "
                               "such a message")
        writer = (self._current_in_place() if number == self._part_number else self._earlier_in_place(number)).writer
        assert isinstance(writer, AppendingWriter)
        try:
            writer.set_flags(int(nid), flags)
        except ValueError as error:
            raise MessageError(f"cannot change the flags of message {uid} in {self.endpoint}: {error}") from None

    def _current_in_place(self) -> AppendPart:
        """Return the part being written, opened for changing in place: a file being built is finished first."""
        self._writer()
        assert self._part is not None
        if isinstance(self._part, PartWriter):
            self._part.commit()
            self._part = AppendPart(self._part.target)
        return self._part

    def _earlier_in_place(self, number: int) -> AppendPart:
        """Return earlier part ``number`` opened for changing in place, rebuilt and renamed into place first when
        it cannot be (ANSI, or another program's); raise MessageError when it is gone."""
        from migrator.stores.pst.append import NotAppendable

        self._check_writable()
        if number not in self._earlier:
            path = part_path(self.path, number)
            if not path.exists():
                raise MessageError(f"{path}, part {number} of {self.endpoint}, is gone: its messages' flags "
                                   "cannot be changed")
            try:
                self._earlier[number] = AppendPart(path)
            except NotAppendable:
                with self._open_reader(path) as reader:
                    _commit(_start_rebuild(reader, path))
                self._earlier[number] = AppendPart(path)
        return self._earlier[number]

    def _writer(self) -> PstWriter:
        self._check_writable()
        if self._part is None:
            self._part = self._start_existing()
        return self._part.writer

    def _rotate_if_full(self, folder: FolderPath) -> None:
        """Start the next part when the current one has reached ``part_size``."""
        writer = self._writer()
        if writer.bytes_written < self.part_size:
            return
        paths = writer.folder_paths()
        assert self._part is not None
        self._part.commit()
        self._part_number += 1
        self._earlier_counts = None  # the part just finished is one of them now
        self._part = PartWriter(part_path(self.path, self._part_number))
        for path in paths:
            self._part.writer.ensure_folder(path)
        self._part.writer.ensure_folder(folder)


def _start_rebuild(reader: PstReader, target: Path) -> PartWriter:
    """Return a new part for ``target``, read by ``reader``, holding a copy of all its folders and messages."""
    from migrator.stores.pst.ndb.reader import PstFormatError
    from migrator.stores.pst.rebuild import can_copy_blocks, copy_messages

    part = PartWriter(target, record_key=reader.record_key)
    try:
        if can_copy_blocks(reader):
            copy_messages(reader, part.writer)
        else:
            _copy_by_message(reader, part.writer)
    except (PstFormatError, FolderError, MessageError) as error:  # the file is damaged: keep it as it is
        part.discard()
        raise StoreError(f"cannot add to {part.target}: {error}; write to a new file instead") from None
    except OSError as error:
        part.discard()
        raise disk_error(part.target, error, "it stays as it was") from None
    return part


def _copy_by_message(reader: PstReader, writer: PstWriter) -> None:
    """Copy the messages of an ANSI file by reading and writing each one again (same NIDs)."""
    for folder in reader.folders():
        writer.ensure_folder(folder.path)
        for message in reader.fetch(folder, reader.scan(folder)):
            writer.add_message(folder.path, message, nid=int(message.uid))


def _commit(part: PartWriter | AppendPart) -> None:
    """Commit ``part``; when that fails, drop it (the file stays as it was) and raise."""
    try:
        part.commit()
    except BaseException as error:
        _drop(part, error)
        if isinstance(error, OSError):
            raise disk_error(part.target, error, "the file there is as it was before this run") from None
        raise


def _recover(path: Path) -> None:
    """Undo what a killed append left in ``path`` (see ndb/append.py ``prepare``) before anything reads it."""
    from migrator.stores.pst.ndb.append import prepare
    from migrator.stores.pst.ndb.reader import PstFormatError

    try:
        with open(path, "r+b") as file:
            prepare(file)
    except (OSError, PstFormatError):
        pass  # a file that cannot be opened so, or is not ours to change: the first write says why


def _drop(part: PartWriter | AppendPart, error: BaseException) -> None:
    """Discard ``part`` because of ``error``; a signal that stopped the run is told, so that the user is."""
    part.discard()
    if isinstance(error, Interrupted):
        error.discarded.append(str(part.target))


def _role(path: FolderPath) -> Role | None:
    if path == ("INBOX",):
        return Role.INBOX
    if path == ("Deleted Items",):
        return Role.TRASH
    return None
