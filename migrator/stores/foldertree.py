"""Folders as nested directories under an archive root, the layout of the mbox and EML archives.

Each folder is a directory named by the archive's encoder (``encode_mbox_dirname``,
``encode_eml_dirname``); folder ("A", "B") is ``ROOT/A/B``. An existing directory is found by
its plain spelling or else by decoding the names beside it, because one made where its plain
spelling was taken (by a name differing in case, on a case-insensitive filesystem) got some
characters escaped (foldernames.py).
Hidden entries (a leading ``.``) belong to the archive itself and are never folders.
Symbolic links are never followed, so a walk cannot leave the root or loop: a walk yields
them without entering them, and a folder found at or behind one is refused by name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from migrator.errors import FolderError
from migrator.message import FolderPath
from migrator.stores.foldernames import decode_tree_name, make_first_free, name_variants
from migrator.stores.localfs import DIR_MODE, fsync_dir, inside, not_followed, reason


class FolderTree:
    """The directory tree of one archive root."""

    def __init__(self, root: Path, encode: Callable[[str, int], str]) -> None:
        self.root = root
        self.encode = encode

    def find(self, folder: FolderPath) -> Path | None:
        """Return the entry (directory or file) that holds ``folder``, or None; raise FolderError where a
        symbolic link stands in its place or on the way."""
        node = self.root
        for name in folder:
            child = _child(node, name, self.encode)
            if child is None:
                return None
            node = _not_a_link(child)
        return node

    def create(self, folder: FolderPath) -> Path:
        """Return the directory of ``folder``, making it and its parents (0700); raise FolderError."""
        node = self.root
        for name in folder:
            node = _not_a_link(_child(node, name, self.encode) or _make_child(node, name, self.encode))
        if not node.is_dir():
            raise FolderError(f"{node} is a file, not a folder directory: move it away to write {'/'.join(folder)}")
        return inside(self.root, node)

    def walk(self) -> Iterator[tuple[FolderPath, os.DirEntry]]:
        """Yield (folder path, entry) for every visible entry below the root, parents first; symbolic
        links are yielded, not entered."""
        yield from _walk(self.root, ())


def _not_a_link(node: Path) -> Path:
    if node.is_symlink():
        raise FolderError(not_followed(node))
    return node


def _child(directory: Path, name: str, encode: Callable[[str, int], str]) -> Path | None:
    try:
        plain = directory / encode(name, 0)
    except ValueError:
        return None  # an empty name: no directory can hold it
    if os.path.lexists(plain):
        return plain
    try:
        found = _entry_named(directory, name)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return directory / found if found is not None else None


def _make_child(directory: Path, name: str, encode: Callable[[str, int], str]) -> Path:
    # On a case-insensitive filesystem the plain spelling may be taken by a name that differs
    # in case; a second connection of the same run may also make this very directory first.
    try:
        spelling = make_first_free(
            name_variants(encode, name),
            lambda candidate: os.mkdir(directory / candidate, DIR_MODE),
            lambda: _entry_named(directory, name),
        )
        fsync_dir(directory)
    except ValueError as e:
        raise FolderError(f"cannot create a folder named {name!r} in {directory}: {e}") from None
    except OSError as e:
        raise FolderError(f"cannot create the folder directory for {name!r} in {directory}: {reason(e)}") from None
    return directory / spelling


def _entry_named(directory: Path, name: str) -> str | None:
    """Return the visible entry of ``directory`` whose decoded name is exactly ``name``."""
    with os.scandir(directory) as entries:
        return next((e.name for e in entries if _visible(e) and decode_tree_name(e.name) == name), None)


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
