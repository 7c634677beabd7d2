"""Folders as nested directories under an archive root, the layout of the mbox and EML archives.

Each folder is a directory named by the archive's encoder (``encode_mbox_dirname``,
``encode_eml_dirname``); folder ("A", "B") is ``ROOT/A/B``. An existing directory is found by
its plain spelling or else by decoding the names beside it, because one made where its plain
spelling was taken (by a name differing in case, on a case-insensitive filesystem) got some
characters escaped (foldernames.py).
Hidden entries (a leading ``.``) belong to the archive itself and are never folders.
The names in a directory are read once per tree and kept up to date as folders are made, so
finding or making each of 5 000 folders costs what it costs for 10. Another writer of the same
run (a second worker) may make folders meanwhile: a plain spelling found on disk is taken
although the kept names lack it, and making a directory that exists already finds it.
Symbolic links are never followed, so a walk cannot leave the root or loop: a walk yields
them without entering them, and a folder found at or behind one is refused by name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from migrator.core.errors import FolderError
from migrator.core.message import FolderPath
from migrator.stores.foldernames import decode_tree_name, make_first_free, name_variants
from migrator.stores.local.files import DIR_MODE, fsync_dir, inside, not_followed, reason


class FolderTree:
    """The directory tree of one archive root."""

    def __init__(self, root: Path, encode: Callable[[str, int], str]) -> None:
        self.root = root
        self.encode = encode
        self._names: dict[Path, dict[str, str]] = {}  # directory -> folder name -> entry name

    def find(self, folder: FolderPath) -> Path | None:
        """Return the entry (directory or file) that holds ``folder``, or None; raise FolderError where a
        symbolic link stands in its place or on the way."""
        node = self.root
        for name in folder:
            child = self._child(node, name)
            if child is None:
                return None
            node = _not_a_link(child)
        return node

    def create(self, folder: FolderPath) -> Path:
        """Return the directory of ``folder``, making it and its parents (0700); raise FolderError."""
        node = self.root
        for name in folder:
            node = _not_a_link(self._child(node, name) or self._make_child(node, name))
        if not node.is_dir():
            raise FolderError(f"{node} is a file, not a folder directory: move it away to write {'/'.join(folder)}")
        return inside(self.root, node)

    def walk(self) -> Iterator[tuple[FolderPath, os.DirEntry]]:
        """Yield (folder path, entry) for every visible entry below the root, parents first; symbolic
        links are yielded, not entered."""
        yield from _walk(self.root, ())

    def _child(self, directory: Path, name: str) -> Path | None:
        entry = self._listing(directory).get(name)
        if entry is None:
            entry = self.encode(name, 0)
            if not os.path.lexists(directory / entry):
                return None
        return directory / entry

    def _make_child(self, directory: Path, name: str) -> Path:
        # On a case-insensitive filesystem the plain spelling may be taken by a name that differs
        # in case; a second connection of the same run may also make this very directory first.
        try:
            spelling = make_first_free(
                name_variants(self.encode, name),
                lambda candidate: os.mkdir(directory / candidate, DIR_MODE),
                lambda: self._reread(directory).get(name),
            )
            fsync_dir(directory)
        except ValueError as e:
            raise FolderError(f"cannot create a folder named {name!r} in {directory}: {e}") from None
        except OSError as e:
            raise FolderError(f"cannot create the folder directory for {name!r} in {directory}: {reason(e)}") from None
        self._listing(directory)[name] = spelling
        return directory / spelling

    def _listing(self, directory: Path) -> dict[str, str]:
        """Return folder name -> entry name for the visible entries of ``directory``, read once."""
        names = self._names.get(directory)
        return names if names is not None else self._reread(directory)

    def _reread(self, directory: Path) -> dict[str, str]:
        names: dict[str, str] = {}
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if not _visible(entry):
                        continue
                    name = decode_tree_name(entry.name)
                    # Where two entries stand for one name, the plain spelling is the one written to.
                    if name not in names or entry.name == self.encode(name, 0):
                        names[name] = entry.name
        except (FileNotFoundError, NotADirectoryError):
            pass  # no folders below: nothing to find there
        self._names[directory] = names
        return names


def _not_a_link(node: Path) -> Path:
    if node.is_symlink():
        raise FolderError(not_followed(node))
    return node


def _walk(directory: Path, prefix: FolderPath) -> Iterator[tuple[FolderPath, os.DirEntry]]:
    try:
        with os.scandir(directory) as it:
            entries = sorted((e for e in it if _visible(e)), key=lambda e: e.name)
    except OSError as e:
        raise FolderError(f"cannot list {directory}: {reason(e)}") from None
    for entry in entries:
        path = prefix + (decode_tree_name(entry.name),)
        yield path, entry
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(Path(entry.path), path)


def _visible(entry: os.DirEntry) -> bool:
    return not entry.name.startswith(".")
