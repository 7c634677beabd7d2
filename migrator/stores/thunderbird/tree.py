"""Folders as Thunderbird lays them out in a mail directory (Local Folders, or an ImapMail account's cache).

Folder ("A", "B") is the mbox file ``ROOT/A.sbd/B``: every folder is a file without an extension
(empty when it holds no mail), and its subfolders are in the directory ``NAME.sbd`` beside it.
INBOX is ``Inbox`` in Local Folders and ``INBOX`` in ImapMail; both are read, ``Inbox`` is written.
Names are encoded by ``encode_thunderbird_name`` (foldernames.py), which escapes the names
Thunderbird takes for its own files. A folder whose summary (``NAME.msf``) is there without
its file is a folder Thunderbird keeps no mail of (an IMAP folder not kept for offline use):
listed, and empty. Hidden entries (a leading ``.``) belong to migrator or others and are never
folders, nor are the files Thunderbird ignores, nor a file that is neither empty nor starts with
a From line. Symbolic links are never followed: a folder at or behind one is refused by name.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from migrator.core.errors import FolderError
from migrator.core.message import FolderPath
from migrator.stores.foldernames import (
    THUNDERBIRD_OWN_NAMES,
    THUNDERBIRD_SUFFIXES,
    decode_tree_name,
    encode_thunderbird_name,
    make_first_free,
    name_variants,
)
from migrator.stores.local.files import DIR_MODE, FILE_MODE, fsync_dir, inside, not_followed, reason

SUBFOLDERS = ".sbd"
SUMMARY = ".msf"
INBOX_NAMES = ("Inbox", "INBOX")  # Local Folders, ImapMail


class ThunderbirdTree:
    """The folder files below one Thunderbird mail directory ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def find(self, folder: FolderPath) -> Path | None:
        """Return the file of ``folder`` (which may not exist when only its summary does), or None; raise
        FolderError where a symbolic link stands in its place or on the way."""
        directory, node = self.root, None
        for depth, name in enumerate(folder):
            if node is not None:
                directory = _not_a_link(node.with_name(node.name + SUBFOLDERS))
            node = self._child(directory, name, top=depth == 0)
            if node is None:
                return None
            _not_a_link(node)
        return node

    def create(self, folder: FolderPath) -> Path:
        """Return the file of ``folder``, making it, its parents' files and their ``.sbd`` directories;
        raise FolderError."""
        directory = self.root
        node = self.root
        for depth, name in enumerate(folder):
            if depth:
                directory = _not_a_link(self._subfolders(node))
            node = _not_a_link(self._child(directory, name, top=depth == 0) or self._make(directory, name, depth == 0))
            if not node.exists():
                self._make_file(node)
        return inside(self.root, node)

    def walk(self) -> Iterator[tuple[FolderPath, Path, bool]]:
        """Yield (folder path, its file, whether it is a symbolic link) for every folder, parents first."""
        yield from _walk(self.root, ())

    def _child(self, directory: Path, name: str, top: bool) -> Path | None:
        spellings = INBOX_NAMES if top and name == "INBOX" else (encode_thunderbird_name(name),)
        for spelling in spellings:
            if _is_folder(directory, spelling):
                return directory / spelling
        for entry, path in _folders(directory):
            if _folder_name(entry, top) == name:
                return path
        return None

    def _make(self, directory: Path, name: str, top: bool) -> Path:
        # On a case-insensitive filesystem the plain spelling may be taken by a name that differs in case.
        spellings = [INBOX_NAMES[0]] if top and name == "INBOX" else name_variants(encode_thunderbird_name, name)
        try:
            made = make_first_free(spellings, lambda spelling: _create(directory / spelling),
                                   lambda: _found(self._child(directory, name, top)))
            fsync_dir(directory)
        except ValueError as e:
            raise FolderError(f"cannot create a folder named {name!r} in {directory}: {e}") from None
        except OSError as e:
            raise FolderError(f"cannot create the folder file for {name!r} in {directory}: {reason(e)}") from None
        return directory / made

    def _make_file(self, node: Path) -> None:
        """Make the missing file of a folder that has only a summary, as Thunderbird would."""
        try:
            _create(node)
            fsync_dir(node.parent)
        except FileExistsError:
            pass
        except OSError as e:
            raise FolderError(f"cannot create {node}: {reason(e)}") from None

    def _subfolders(self, node: Path) -> Path:
        directory = node.with_name(node.name + SUBFOLDERS)
        try:
            os.mkdir(directory, DIR_MODE)
            fsync_dir(node.parent)
        except FileExistsError:
            if not directory.is_dir() or directory.is_symlink():
                raise FolderError(f"{directory} is not a directory: move it away to write the folders below "
                                  f"{node.name}") from None
        except OSError as e:
            raise FolderError(f"cannot create the directory {directory}: {reason(e)}") from None
        return directory


def _create(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE))


def _found(path: Path | None) -> str | None:
    return path.name if path is not None else None


def _walk(directory: Path, prefix: FolderPath) -> Iterator[tuple[FolderPath, Path, bool]]:
    for entry, path in _folders(directory):
        folder = prefix + (_folder_name(entry, not prefix),)
        link = path.is_symlink()
        yield folder, path, link
        subfolders = path.with_name(path.name + SUBFOLDERS)
        if not link and subfolders.is_dir() and not subfolders.is_symlink():
            yield from _walk(subfolders, folder)


def _folders(directory: Path) -> list[tuple[str, Path]]:
    """Return (entry name, file path) of the folders in ``directory``, sorted; raise FolderError."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    except OSError as e:
        raise FolderError(f"cannot list {directory}: {reason(e)}") from None
    present = set(names)
    found = set()
    for name in names:
        stem = _stem(name)
        if stem and stem not in found and not _ignored(stem) and (stem not in present or _is_folder(directory, stem)):
            found.add(stem)
    return [(name, directory / name) for name in sorted(found)]


def _stem(name: str) -> str:
    """Return the folder file a summary (``NAME.msf``) or a subfolder directory (``NAME.sbd``) belongs to."""
    for suffix in (SUMMARY, SUBFOLDERS):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _folder_name(entry: str, top: bool) -> str:
    return "INBOX" if top and entry in INBOX_NAMES else decode_tree_name(entry)


def _is_folder(directory: Path, name: str) -> bool:
    """Return True when ``directory/name`` is a folder file: empty, starting with a From line, or a link
    (refused when it is read)."""
    path = directory / name
    if path.is_symlink():
        return True
    if not path.is_file():
        return False
    try:
        with open(path, "rb") as file:
            return file.read(5) in (b"", b"From ")
    except OSError:
        return False


def _ignored(name: str) -> bool:
    """Return True for names Thunderbird never takes for folders."""
    folded = name.casefold()
    return (
        name.startswith((".", "#")) or name.endswith("~") or folded in THUNDERBIRD_OWN_NAMES
        or folded.startswith("feeditems_error") or folded.endswith(THUNDERBIRD_SUFFIXES)
    )


def _not_a_link(node: Path) -> Path:
    if node.is_symlink():
        raise FolderError(not_followed(node))
    return node
