"""A PST split into parts (``PATH``, ``PATH-2.pst``, ``PATH-3.pst``...) read as one store.

Folders of the same path in several parts are one folder; its messages are those of every part, in part
order. A message's uid is its NID in the first part and ``N:NID`` in part N, as the writer reports it, so uids
are unique across parts and stay the same however many parts are added later.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from migrator.core.errors import MessageError
from migrator.core.folder import Folder
from migrator.core.message import FolderPath, Message, MessageRef

if TYPE_CHECKING:  # the reader is imported when first used, as in store.py
    from migrator.stores.pst.reader import PstFolder, PstReader


def part_path(path: Path, number: int) -> Path:
    """Return the file of part ``number`` (1-based): PATH itself, then PATH-2.pst, PATH-3.pst..."""
    if number == 1:
        return path
    return path.with_name(f"{path.stem}-{number}{path.suffix or '.pst'}")


def message_uid(part: int, nid: int) -> str:
    """Return the uid of a message: its NID in decimal, prefixed by the part number after the first part."""
    return str(nid) if part == 1 else f"{part}:{nid}"


def split_uid(uid: str) -> tuple[int, str]:
    """Return (part number, the uid within that part) of a uid ``message_uid`` made."""
    part, _, nid = uid.rpartition(":")
    return (int(part) if part.isdigit() else 1 if not part else 0), nid


def existing_parts(path: Path) -> list[Path]:
    """Return the files of the parts of ``path`` that exist, in order, stopping at the first missing one."""
    found: list[Path] = []
    while part_path(path, len(found) + 1).exists():
        found.append(part_path(path, len(found) + 1))
    return found


class PartsReader:
    """Parts of a PST, each opened for reading, by part number; closing it closes them."""

    def __init__(self, readers: dict[int, PstReader]) -> None:
        self.readers = dict(sorted(readers.items()))

    @classmethod
    def opened(cls, known: dict[int, PstReader], numbers: Iterable[int], path: Path) -> PartsReader:
        """Return parts ``numbers`` of ``path``: those in ``known`` as they are, the others opened (StoreError)."""
        from migrator.stores.pst.reader import PstReader

        readers = dict(known)
        try:
            for number in numbers:
                if number not in readers:
                    readers[number] = PstReader(part_path(path, number))
        except BaseException:
            for reader in readers.values():
                if reader not in known.values():
                    reader.close()
            raise
        return cls(readers)

    def close(self) -> None:
        """Release every part."""
        for reader in self.readers.values():
            reader.close()

    @property
    def record_key(self) -> bytes:
        """Return the first part's record key: the archive's identity, which adding parts leaves as it was."""
        return next(iter(self.readers.values())).record_key

    def folders(self) -> list[Folder]:
        """Return the folders of every part, merged by path, in the order the parts list them."""
        merged: dict[FolderPath, Folder] = {}
        for reader in self.readers.values():
            for folder in reader.folders():
                merged.setdefault(folder.path, Folder(folder.path, folder.role))
        return list(merged.values())

    def count(self, path: FolderPath) -> int | None:
        """Return how many messages the folder at ``path`` holds in all parts, None when no part has it."""
        found = self._found(path)
        return None if not found else sum(folder.count for _, _, folder in found)

    def has_folder(self, path: FolderPath) -> bool:
        """Return True when some part has the folder at ``path``."""
        return bool(self._found(path))

    def scan(self, path: FolderPath) -> Iterator[MessageRef]:
        """Yield the references of the folder's messages in every part, uids made unique by the part number."""
        for number, reader, folder in self._found(path):
            for ref in reader.scan(folder):
                yield MessageRef(message_uid(number, int(ref.uid)), ref.flags, ref.size, ref.received)

    def fetch(self, path: FolderPath, refs: Iterable[MessageRef]) -> Iterator[Message]:
        """Yield the messages for ``refs`` from their parts, in order; then raise MessageError naming those left
        out of any part."""
        parts = {number: (reader, folder) for number, reader, folder in self._found(path)}
        left_out: list[tuple[str, str]] = []
        for number, group in _runs(refs):
            if number not in parts:
                continue
            reader, folder = parts[number]
            try:
                for message in reader.fetch(folder, group):
                    renamed = [replace(message, uid=message_uid(number, int(message.uid)))]
                    del message  # not kept by this frame once passed on (see PstReader.fetch)
                    yield renamed.pop()
            except MessageError as error:
                left_out += [(message_uid(number, int(uid)), why) for uid, why in error.unreadable]
        if left_out:
            named = "; ".join(f"message {uid}: {reason}" for uid, reason in left_out)
            raise MessageError(f"{len(left_out)} message(s) left out of folder {'/'.join(path)!r}: {named}. "
                               "The folder's other messages were read", tuple(left_out))

    def _found(self, path: FolderPath) -> list[tuple[int, PstReader, PstFolder]]:
        found = []
        for number, reader in self.readers.items():
            folder = reader.find_folder(path)
            if folder is not None:
                found.append((number, reader, folder))
        return found


def _runs(refs: Iterable[MessageRef]) -> Iterator[tuple[int, list[MessageRef]]]:
    """Yield (part number, its refs with the uids within the part) for each run of refs of one part."""
    number, group = 0, list[MessageRef]()
    for ref in refs:
        part, uid = split_uid(ref.uid)
        if part != number and group:
            yield number, group
            group = []
        number = part
        group.append(MessageRef(uid, ref.flags, ref.size, ref.received))
    if group:
        yield number, group
