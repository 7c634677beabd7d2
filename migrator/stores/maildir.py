"""Maildir++ archives as Dovecot keeps them.

Layout: the root is INBOX (``cur``, ``new``, ``tmp``); every other folder is a directory
``.A.B`` beside them holding its own ``cur``/``new``/``tmp`` and a ``maildirfolder`` file;
names are encoded as Dovecot does with ``listescape`` (see foldernames.py). A folder whose
first name is INBOX in any case is a child of INBOX (``.INBOX.Sub``), as in Dovecot.

Messages: one file each, named ``<secs>.M<usec>P<pid>Q<n>.<host>,S=<size>,W=<crlf size>:2,<flags>``
(``S=`` and ``W=`` spare Dovecot a stat and a read). The uid is the name before ``:2,``; the
received date is the file's mtime. Flags are letters after ``:2,`` (P forwarded, R answered,
S seen, T deleted, D draft, F flagged) and keywords are the letters a..z that the folder's
``dovecot-keywords`` file ("N name" lines) assigns. Forwarded is written both as P and as the
keyword ``$Forwarded``, because Dovecot ignores P and IMAP clients know only the keyword; either
reads back as forwarded. Only 26 keywords fit in a folder: when a message has more, it is
written with those that have a letter and a warning names the rest.

Writing goes through ``tmp/``: files are written there (staged), made durable together, then
renamed into ``cur/`` (not ``new/``: a migrated message is not new mail, and its flags are known),
and each ``cur/`` is fsynced once. The copy pipeline stages several batches before it commits
them, so that a run pays for one sync per several megabytes.

Reading follows no symbolic link below the root (see local/files.py): a link among the message
files is a failed message, a linked folder directory, ``cur/`` or ``new/`` a failed folder.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import os
import re
import socket
import stat
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from migrator.core.errors import FolderError, MessageError, StoreError
from migrator.core.folder import Folder, role_by_name
from migrator.core.message import Flag, Flags, FolderPath, Message, MessageRef
from migrator.endpoints.endpoint import Endpoint
from migrator.stores.base import AppendResult, Elsewhere, FolderProbe, FolderScan, Store
from migrator.stores.foldernames import maildir_dirname, maildir_path, make_first_free, name_variants
from migrator.stores.local.files import (
    DIR_MODE,
    FILE_MODE,
    Durability,
    PendingFiles,
    count_files,
    from_time_ns,
    fsync_dir,
    identity_of,
    natural_order,
    not_followed,
    open_below,
    open_root,
    read_at,
    read_below,
    read_error,
    reason,
    replace_synced,
    stop_if_disk_refused,
)
from migrator.stores.local.leftovers import Maker, remove_abandoned, temp_maker

log = logging.getLogger(__name__)

INFO = ":2,"
KEYWORDS_FILE = "dovecot-keywords"
FORWARDED_KEYWORD = "$Forwarded"
SUBDIRS = ("cur", "new", "tmp")
VALIDITY = "maildir-1"  # file names never change meaning, so a scan stays valid forever
_LETTERS = {
    "P": Flag.FORWARDED, "R": Flag.ANSWERED, "S": Flag.SEEN, "T": Flag.DELETED, "D": Flag.DRAFT, "F": Flag.FLAGGED,
}
_FLAG_LETTERS = {flag: letter for letter, flag in _LETTERS.items()}
_KEYWORD_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_LINE_BREAK = re.compile(r"[\r\n]")
_UNIQUE = re.compile(r"\d+\.M\d+P(?P<pid>\d+)Q\d+\.(?P<host>.+),S=\d+,W=\d+")  # what unique_name gives
_sequence = itertools.count(1)


# --- file names, flags and the keywords file: pure ---------------------------------------


def split_name(filename: str) -> tuple[str, str]:
    """Return the unique part and the flag letters of a message file name."""
    unique, _, info = filename.partition(":")
    return unique, info[2:] if info.startswith("2,") else ""


def flags_of(letters: str, keywords: dict[int, str]) -> Flags:
    """Return the Flags that the info letters stand for, keywords named by ``keywords`` (index -> name)."""
    system = {_LETTERS[c] for c in letters if c in _LETTERS}
    named = {name for c in letters if c in _KEYWORD_LETTERS if (name := keywords.get(_KEYWORD_LETTERS.find(c)))}
    if FORWARDED_KEYWORD in named:
        system.add(Flag.FORWARDED)
    return Flags(frozenset(system), frozenset(named - {FORWARDED_KEYWORD}))


def letters_of(flags: Flags, indexes: dict[str, int]) -> str:
    """Return the info letters for ``flags`` (sorted, as Maildir wants), keywords by ``indexes`` (name -> index)."""
    letters = [_FLAG_LETTERS[f] for f in flags.system]
    letters += [_KEYWORD_LETTERS[indexes[k]] for k in stored_keywords(flags) if k in indexes]
    return "".join(sorted(letters))


def stored_keywords(flags: Flags) -> set[str]:
    """Return the keywords that carry ``flags`` in ``dovecot-keywords``: forwarded is also ``$Forwarded``."""
    return set(flags.keywords) | ({FORWARDED_KEYWORD} if Flag.FORWARDED in flags else set())


def parse_keywords(text: str) -> dict[int, str]:
    """Return the index -> keyword map of a ``dovecot-keywords`` file; bad lines are ignored."""
    mapping = {}
    for line in text.splitlines():
        index, _, name = line.partition(" ")
        if index.isdigit() and int(index) < len(_KEYWORD_LETTERS) and name:
            mapping[int(index)] = name
    return mapping


def format_keywords(mapping: dict[int, str]) -> str:
    """Return the text of a ``dovecot-keywords`` file for the index -> keyword map."""
    return "".join(f"{index} {name}\n" for index, name in sorted(mapping.items()))


def assign_keywords(mapping: dict[int, str], wanted: Iterable[str]) -> tuple[dict[int, str], list[str]]:
    """Return ``mapping`` extended with letters for the ``wanted`` keywords, and those left without one
    (beyond 26, or holding a line break, which the file cannot hold)."""
    mapping = dict(mapping)
    known = set(mapping.values())
    free = (i for i in range(len(_KEYWORD_LETTERS)) if i not in mapping)
    left_out = []
    for keyword in sorted(set(wanted) - known):
        index = next(free, None) if keyword and not _LINE_BREAK.search(keyword) else None
        if index is None:
            left_out.append(keyword)
        else:
            mapping[index] = keyword
    return mapping, left_out


def unique_name(message: Message) -> str:
    """Return a new unique part for a message file, as Dovecot forms it."""
    now = time.time_ns()
    unique = f"{now // 10**9}.M{now // 1000 % 10**6}P{os.getpid()}Q{next(_sequence)}.{_host_part()}"
    return f"{unique},S={message.size},W={message.crlf_size}"


@functools.cache
def _host_part() -> str:
    """Return the host name as a unique name holds it, with ``/ : ,`` escaped as Dovecot does."""
    return socket.gethostname().replace("/", "\\057").replace(":", "\\072").replace(",", "\\054")


def _tmp_maker(filename: str) -> Maker | None:
    """Return who made the file ``filename`` in tmp/ if it has a name ``unique_name`` gives, else None."""
    match = _UNIQUE.fullmatch(filename)
    if match is None:
        return None
    return Maker(int(match["pid"]) if match["host"] == _host_part() else None)


def inbox_normalised(path: FolderPath) -> FolderPath:
    """Return ``path`` with a first name of INBOX in any case written INBOX (Dovecot's rule)."""
    return ("INBOX",) + path[1:] if path and path[0].upper() == "INBOX" else path


def with_parents(paths: Iterable[FolderPath]) -> list[FolderPath]:
    """Return ``paths`` plus every missing parent, sorted so parents come before children."""
    every: set[FolderPath] = set()
    for path in paths:
        every.update(path[:depth] for depth in range(1, len(path) + 1))
    return sorted(every)


def _make_dir(directory: Path) -> None:
    """Create a directory; raise FileExistsError if it exists, FolderError on other failures."""
    try:
        os.mkdir(directory, DIR_MODE)
    except FileExistsError:
        raise
    except OSError as e:
        raise FolderError(f"cannot create the Maildir folder {directory}: {reason(e)}") from None


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() or (path / "new").is_dir()


# --- the store ----------------------------------------------------------------------------


class MaildirStore(Store):
    """A Maildir++ directory tree (``maildir:PATH``), written durably as ``durability`` says (see files.py)."""

    parallel_folders = True  # each folder is a directory of its own; messages are files
    stages_writes = True  # one sync and one fsync of cur/ for several batches (see Store)

    def __init__(self, endpoint: Endpoint, *, readonly: bool = True, durability: Durability | None = None) -> None:
        super().__init__(endpoint, readonly=readonly)
        self.root = endpoint.local_path
        self._dirs: dict[FolderPath, str] | None = None  # folder -> directory name, once the root is read
        self._files: dict[FolderPath, dict[str, str]] = {}  # uid -> "cur/<name>" of the last scan
        self._pending = PendingFiles(durability)
        self._staged: list[tuple[str, str, str]] = []  # (folder directory, unique name, flag letters)
        self.links_copies = endpoint.hard_links  # a message's further folders are hard links to its first file

    def open(self) -> None:
        """Check the Maildir, or create it for writing; raise StoreError."""
        if not self.readonly and self.root.is_dir() and any(self.root.iterdir()) and not _is_maildir(self.root):
            raise StoreError(f"{self.root} holds files but is not a Maildir: choose an empty or new directory")
        open_root(self.root, "Maildir", self.readonly, _is_maildir)
        if not self.readonly:
            self._make_subdirs(self.root)
            self._remove_abandoned()

    def _remove_abandoned(self) -> None:
        """Remove what killed runs left in tmp/ and of a keywords file they were replacing (see leftovers.py)."""
        for directory in [self.root, *(self.root / name for name in self._read_dirs().values())]:
            if (directory != self.root and directory.is_symlink()) or (directory / "tmp").is_symlink():
                continue  # never followed below the root (see local/files.py)
            remove_abandoned(directory / "tmp", _tmp_maker)
            remove_abandoned(directory, lambda name: temp_maker(name, lambda final: final == KEYWORDS_FILE))

    # --- folders ----------------------------------------------------------------------------

    def list_folders(self) -> list[Folder]:
        """Return INBOX and every folder directory, with parents that have no directory as unselectable."""
        self._dirs = self._read_dirs()
        selectable = set(self._dirs) | {("INBOX",)}
        return [
            Folder(path, role_by_name(path), path in selectable)
            for path in with_parents(selectable)
        ]

    def _read_dirs(self) -> dict[FolderPath, str]:
        dirs: dict[FolderPath, str] = {}
        for path, entry in self._folder_entries():
            # A link is listed, so that reading or writing it fails, named, instead of it being passed over.
            # Dovecot ignores a ".INBOX" beside the root INBOX.
            if (entry.is_symlink() or _is_maildir(Path(entry.path))) and path != ("INBOX",):
                dirs.setdefault(path, entry.name)
        return dirs

    def _folder_entries(self) -> Iterator[tuple[FolderPath, os.DirEntry]]:
        """Yield (folder, entry) for the root's folder directories, complete or only just made, and links."""
        for entry in os.scandir(self.root):
            if entry.name.startswith(".") and (entry.is_dir(follow_symlinks=False) or entry.is_symlink()):
                try:
                    yield inbox_normalised(maildir_path(entry.name)), entry
                except ValueError:
                    continue  # not one of ours (".", "..", ".a..b")

    def _folder_dir(self, folder: FolderPath) -> Path | None:
        folder = inbox_normalised(folder)
        if folder == ("INBOX",):
            return self.root
        dirs = self._known_dirs()
        # The root is read again only where another writer of the run may have made the folder
        # since: reading it for every folder made each of 5 000 folders cost 43 ms, against 5 ms
        # among 100 (bench/folders.py).
        if folder not in dirs and os.path.lexists(self.root / maildir_dirname(folder)):
            dirs = self._dirs = self._read_dirs()
        name = dirs.get(folder)
        return self.root / name if name else None

    def _known_dirs(self) -> dict[FolderPath, str]:
        """Return folder -> directory name, the root read the first time."""
        if self._dirs is None:
            self._dirs = self._read_dirs()
        return self._dirs

    def _has_folder(self, folder: FolderPath) -> bool:
        return self._folder_dir(folder) is not None

    def exists(self) -> bool:
        """Return True when the path holds a Maildir."""
        return _is_maildir(self.root)

    def probe_folder(self, folder: FolderPath) -> FolderProbe | None:
        """Return the identity of the folder's cur/ directory and how many message files it and new/ hold."""
        directory = self._folder_dir(folder)
        if directory is None:
            return None
        try:
            identity = identity_of(directory / "cur")
        except FileNotFoundError:
            return None
        return FolderProbe(identity, sum(count_files(directory / sub, _is_message_name) for sub in ("new", "cur")))

    def _existing_dir(self, folder: FolderPath) -> Path:
        directory = self._folder_dir(folder)
        if directory is None:
            raise FolderError(f"there is no folder {'/'.join(folder)} in the Maildir {self.root}")
        if directory != self.root and directory.is_symlink():
            raise FolderError(not_followed(directory))
        return directory

    @contextlib.contextmanager
    def _subdirs(self, directory: Path) -> Iterator[dict[str, int]]:
        """Hold the folder's new/ and cur/ open, following no link below the root: "new"/"cur" -> descriptor."""
        subdirs = _open_subdirs(self.root, directory)
        try:
            yield subdirs
        finally:
            for fd in subdirs.values():
                os.close(fd)

    def _create_folder(self, folder: FolderPath) -> None:
        if self._has_folder(folder):
            return
        folder = inbox_normalised(folder)
        try:
            # Another writer of the same run may make this folder at the same moment: then both
            # use the one directory, and each makes sure it is complete before writing to it.
            name = make_first_free(
                name_variants(lambda last, n: maildir_dirname(folder[:-1] + (last,), n), folder[-1]),
                lambda spelling: _make_dir(self.root / spelling),
                lambda: next((entry.name for path, entry in self._folder_entries() if path == folder), None),
            )
        except ValueError as e:
            raise FolderError(f"cannot create the folder {folder!r} in {self.root}: {e}") from None
        directory = self.root / name
        try:
            self._make_subdirs(directory)
            os.close(os.open(directory / "maildirfolder", os.O_WRONLY | os.O_CREAT, FILE_MODE))
            fsync_dir(directory)
            fsync_dir(self.root)
        except OSError as e:
            raise FolderError(f"cannot create the Maildir folder {directory}: {reason(e)}") from None
        self._known_dirs()[folder] = name

    def _make_subdirs(self, directory: Path) -> None:
        try:
            for sub in SUBDIRS:
                os.makedirs(directory / sub, DIR_MODE, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create {directory}/cur, new and tmp: {reason(e)}; fix its permissions") from None

    # --- reading ----------------------------------------------------------------------------

    def scan(self, folder: FolderPath) -> FolderScan:
        """Return the folder's messages from their file names and stat (no body is read)."""
        directory = self._existing_dir(folder)
        keywords = self._read_keywords(directory)
        with self._subdirs(directory) as subdirs:
            files, links = _list_files(subdirs)
            self._files[inbox_normalised(folder)] = files
            refs = (_ref(subdirs, uid, files[uid], keywords) for uid in sorted(files, key=natural_order))
            found = [ref for ref in refs if ref is not None]
        refused = [(split_name(link.partition("/")[2])[0], not_followed(directory / link)) for link in links]
        return FolderScan(VALIDITY, found, refused)

    def fetch(self, folder: FolderPath, refs: Iterable[MessageRef]) -> Iterator[Message]:
        """Yield the messages of ``refs`` with their current flags; vanished files are skipped."""
        directory = self._existing_dir(folder)
        keywords = self._read_keywords(directory)
        folder = inbox_normalised(folder)
        files = self._files.get(folder, {})
        refreshed = False
        with self._subdirs(directory) as subdirs:
            for ref in refs:
                message = [_read(subdirs, directory, folder, ref.uid, files.get(ref.uid), keywords)]
                if message[0] is None and not refreshed:  # renamed by a flag change since the scan?
                    files = self._files[folder] = _list_files(subdirs)[0]
                    refreshed = True
                    message = [_read(subdirs, directory, folder, ref.uid, files.get(ref.uid), keywords)]
                if message[0] is not None:
                    # Popped as it is yielded, so that this frame does not keep a large message
                    # alive after it is written (see pipeline/batches.py, LargeMessageGate).
                    yield message.pop()  # type: ignore[misc]  # not None: checked just above

    def _read_keywords(self, directory: Path) -> dict[int, str]:
        try:
            data = read_below(self.root, directory.relative_to(self.root).parts + (KEYWORDS_FILE,))
        except FileNotFoundError:
            return {}
        except OSError as e:
            raise FolderError(read_error(directory / KEYWORDS_FILE, e)) from None
        return parse_keywords(data.decode("utf-8", "replace"))

    # --- writing ----------------------------------------------------------------------------

    def append_batch(self, folder: FolderPath, messages: Sequence[Message]) -> list[AppendResult]:
        """Write the messages into tmp/, make them durable, move them into cur/ and fsync cur/ once."""
        results = self.stage_batch(folder, messages)
        failed = self.commit_staged()
        return [AppendResult(r.message, error=failed[r.uid]) if r.ok and r.uid in failed else r for r in results]

    def stage_batch(self, folder: FolderPath, messages: Sequence[Message]) -> list[AppendResult]:
        """Write the messages into tmp/, where they wait, invisible, for ``commit_staged``."""
        self._check_writable()
        self._create_folder(folder)
        directory = self._existing_dir(folder)
        letters = self._letters(directory, messages)
        uniques = [unique_name(message) for message in messages]
        # Plain strings, not Path objects, for the per-message paths: pathlib was a tenth of the CPU.
        temps = [os.path.join(directory, "tmp", unique) for unique in uniques]
        errors = self._pending.write([(t, m.raw, m.received) for t, m in zip(temps, messages)])
        stop_if_disk_refused(os.path.join(directory, "tmp"), temps, errors)
        results = []
        for unique, temp, message, error in zip(uniques, temps, messages, errors):
            if error is None:
                self._staged.append((str(directory), unique, letters[message.flags]))
                results.append(AppendResult(message, uid=unique))
            else:
                results.append(_unwritten(temp, message, error))
        return results

    def stage_copies(self, folder: FolderPath, copies: Sequence[Elsewhere]) -> list[AppendResult]:
        """Hard-link messages this Maildir holds already into ``folder`` (``?links=hard``), staged as
        ``stage_batch`` stages; write again those that cannot be linked (another file system, a link limit)."""
        if not self.links_copies:
            return super().stage_copies(folder, copies)
        self._check_writable()
        self._create_folder(folder)
        directory = self._existing_dir(folder)
        letters = self._letters(directory, [copy.message for copy in copies])
        staged = {(where, unique) for where, unique, _ in self._staged}
        listed: dict[Path, list[str]] = {}
        results, unlinked = [], []
        for copy in copies:
            unique = unique_name(copy.message)
            try:
                os.link(self._file_of(copy, staged, listed), os.path.join(directory, "tmp", unique),
                        follow_symlinks=False)
            except OSError:
                unlinked.append(copy.message)
                continue
            self._staged.append((str(directory), unique, letters[copy.message.flags]))
            results.append(AppendResult(copy.message, uid=unique))
        return results + (self.stage_batch(folder, unlinked) if unlinked else [])

    def _file_of(self, copy: Elsewhere, staged: set[tuple[str, str]], listed: dict[Path, list[str]]) -> str:
        """Return the file of the message ``copy`` names: staged in tmp/, or in cur/; raise OSError when gone."""
        directory = self._existing_dir(copy.folder)
        if (str(directory), copy.uid) in staged:
            return os.path.join(directory, "tmp", copy.uid)
        if directory not in listed:
            listed[directory] = os.listdir(directory / "cur")
        name = next((name for name in listed[directory] if name.partition(INFO[0])[0] == copy.uid), None)
        if name is None:
            raise FileNotFoundError(f"no message {copy.uid} in {directory / 'cur'}")
        return os.path.join(directory, "cur", name)

    def _letters(self, directory: Path, messages: Sequence[Message]) -> dict[Flags, str]:
        """Return the flag letters of each set of flags of ``messages``, giving new keywords their letters."""
        # A batch has few distinct sets of flags: each is looked at once.
        flag_sets = {m.flags for m in messages}
        indexes = self._keyword_indexes(directory, (k for flags in flag_sets for k in stored_keywords(flags)))
        return {flags: letters_of(flags, indexes) for flags in flag_sets}

    def commit_staged(self) -> dict[str, str]:
        """Make the staged messages durable, rename them into cur/ named with their flags, and fsync
        each cur/ once; return the error of each message that did not make it, by uid."""
        staged, self._staged = self._staged, []
        if not staged:
            return {}
        try:
            self._pending.sync()
        except OSError as e:
            _remove_staged(staged)
            return {
                unique: f"cannot make the message durable in {directory}/tmp: {reason(e)}"
                for directory, unique, _ in staged
            }
        failed: dict[str, str] = {}
        moved: dict[str, list[str]] = {}
        for directory, unique, letters in staged:
            try:
                os.rename(
                    os.path.join(directory, "tmp", unique), os.path.join(directory, "cur", unique + INFO + letters)
                )
            except OSError as e:
                with contextlib.suppress(OSError):  # a file left in tmp/ is never read as mail
                    os.unlink(os.path.join(directory, "tmp", unique))
                failed[unique] = f"cannot move the message into {directory}/cur: {reason(e)}"
            else:
                moved.setdefault(directory, []).append(unique)
        for directory, uniques in moved.items():
            try:
                fsync_dir(Path(directory, "cur"))
            except OSError as e:
                failed.update(dict.fromkeys(uniques, f"cannot make {directory}/cur durable: {reason(e)}"))
        return failed

    def close(self) -> None:
        """Remove what was staged and never committed: it was not recorded, so a rerun writes it again."""
        _remove_staged(self._staged)
        self._staged = []
        self._pending.close()

    def _keyword_indexes(self, directory: Path, keywords: Iterable[str]) -> dict[str, int]:
        """Return keyword -> index, giving new keywords letters in ``dovecot-keywords``."""
        current = self._read_keywords(directory)
        mapping, left_out = assign_keywords(current, keywords)
        if left_out:
            log.warning("Maildir %s can name only 26 keywords, without line breaks; messages lose: %s",
                        directory, left_out)
        if mapping != current:
            try:
                replace_synced(directory / KEYWORDS_FILE, format_keywords(mapping).encode("utf-8"))
            except OSError as e:
                raise FolderError(f"cannot write {directory / KEYWORDS_FILE}: {reason(e)}") from None
        return {name: index for index, name in mapping.items()}

    def set_flags(self, folder: FolderPath, uid: str, flags: Flags) -> None:
        """Rename the message file so that its name carries ``flags``; raise MessageError if it is gone."""
        self._check_writable()
        directory = self._existing_dir(folder)
        with self._subdirs(directory) as subdirs:
            name = _list_files(subdirs)[0].get(uid)
        if name is None:
            raise MessageError(f"message {uid} is no longer in the folder {'/'.join(folder)} of {self.root}")
        letters = letters_of(flags, self._keyword_indexes(directory, stored_keywords(flags)))
        new_name = f"cur/{uid}{INFO}{letters}"
        if new_name != name:
            try:
                os.rename(directory / name, directory / new_name)
                fsync_dir(directory / "cur")
            except OSError as e:
                raise MessageError(f"cannot change the flags of {directory / name}: {reason(e)}") from None

    def delete(self, folder: FolderPath, uids: Iterable[str]) -> None:
        """Remove the messages' files; raise FolderError if one cannot be removed."""
        self._check_writable()
        directory = self._existing_dir(folder)
        with self._subdirs(directory) as subdirs:
            files = _list_files(subdirs)[0]
        try:
            for uid in uids:
                if uid in files:
                    os.unlink(directory / files[uid])
            for sub in ("cur", "new"):
                fsync_dir(directory / sub)
        except OSError as e:
            raise FolderError(f"cannot delete messages in {directory}: {reason(e)}") from None


def _open_subdirs(root: Path, directory: Path) -> dict[str, int]:
    """Open new/ and cur/ of the folder ``directory`` (those that exist), following no link below ``root``;
    return "new"/"cur" -> descriptor; raise FolderError."""
    subdirs: dict[str, int] = {}
    for sub in ("new", "cur"):
        try:
            subdirs[sub] = open_below(root, directory.relative_to(root).parts + (sub,), os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            continue
        except OSError as e:
            for fd in subdirs.values():
                os.close(fd)
            raise FolderError(read_error(directory / sub, e)) from None
    return subdirs


def _list_files(subdirs: dict[str, int]) -> tuple[dict[str, str], list[str]]:
    """Return uid -> ``new/<name>`` or ``cur/<name>`` for the message files in ``subdirs`` (see _open_subdirs),
    and the ``new/<name>`` or ``cur/<name>`` of each symbolic link among them."""
    files, links = {}, []
    for sub, fd in subdirs.items():
        with os.scandir(fd) as entries:
            for entry in entries:
                if not _is_message_name(entry.name):
                    continue
                if entry.is_symlink():
                    links.append(f"{sub}/{entry.name}")
                elif entry.is_file(follow_symlinks=False):
                    files[split_name(entry.name)[0]] = f"{sub}/{entry.name}"
    return files, links


def _is_message_name(name: str) -> bool:
    # Dot files in cur/ and new/ are no messages (a reader's lock, an editor's leftovers).
    return not name.startswith(".")


def _ref(subdirs: dict[str, int], uid: str, name: str, keywords: dict[int, str]) -> MessageRef | None:
    sub, _, filename = name.partition("/")
    try:
        status = os.stat(filename, dir_fd=subdirs[sub], follow_symlinks=False)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(status.st_mode):
        return None  # no longer a message file (replaced since the listing): as if it were gone
    return MessageRef(uid, flags_of(split_name(name)[1], keywords), status.st_size, from_time_ns(status.st_mtime_ns))


def _read(
    subdirs: dict[str, int], directory: Path, folder: FolderPath, uid: str, name: str | None, keywords: dict[int, str]
) -> Message | None:
    if name is None:
        return None
    sub, _, filename = name.partition("/")
    try:
        raw, mtime_ns = read_at(subdirs[sub], filename, directory / name)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise MessageError(read_error(directory / name, e)) from None
    return Message(raw, flags_of(split_name(name)[1], keywords), from_time_ns(mtime_ns), folder, uid)


def _remove_staged(staged: Iterable[tuple[str, str, str]]) -> None:
    """Remove the tmp/ files of staged messages that will not be committed; one already gone is no error."""
    for directory, unique, _ in staged:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(directory, "tmp", unique))


def _unwritten(temp: str, message: Message, error: OSError) -> AppendResult:
    """Remove what may be left of a write that failed or was not made durable; return the failure."""
    # Whatever keeps it from going (never created, tmp/ gone) must not hide the write's own
    # error; a file left in tmp/ is never read as mail (Dovecot removes old ones).
    with contextlib.suppress(OSError):
        os.unlink(temp)
    return AppendResult(message, error=f"cannot write into {os.path.dirname(temp)}: {reason(error)}")
