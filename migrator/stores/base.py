"""The one interface every store implements: IMAP, POP3, Maildir, mbox, EML and PST.

A store asks for a few primitives (list folders, scan a folder cheaply, fetch bodies,
append a batch durably) and gets the rest from this base class, as the standard
library's ``mailbox.Mailbox`` does. The copy pipeline only ever talks to this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

from migrator.core.errors import StoreError
from migrator.core.folder import Folder, FolderStats, Role
from migrator.core.message import Flags, FolderPath, Message, MessageRef
from migrator.endpoints.endpoint import Endpoint

if TYPE_CHECKING:
    from migrator.stores.network.pacing import Pacing


class FolderScan(NamedTuple):
    """A cheap listing of one folder: its validity token and its messages without bodies.

    ``validity`` changes when the store renumbers the folder (IMAP UIDVALIDITY); local
    stores whose identifiers are stable report a constant. ``refs`` may be a one-shot
    iterator: consume it once. ``refused`` holds (uid, reason) for each message the store
    will not read, such as a symbolic link in a local archive: each is a failed message.
    ``labels`` is given by a store whose folders are labels (``labels_are_folders``): each
    message's labels, as the paths of the folders that show them, by uid. ``unlisted`` counts the
    messages a scan of changes (``Store.scan_changes``) leaves out: there, unchanged, since then.
    """

    validity: str
    refs: Iterable[MessageRef]
    refused: Sequence[tuple[str, str]] = ()
    labels: Mapping[str, frozenset[FolderPath]] | None = None
    unlisted: int = 0


class FolderProbe(NamedTuple):
    """What a store says of one of its folders at the cost of a stat or a status line.

    A run compares it with what the state file recorded before it trusts the state's rows for
    that folder. ``identity`` changes when the folder is deleted and created again (IMAP: its
    UIDVALIDITY; a local archive: the file system's identity of its directory or file; a PST: an
    identity kept in the file); ``messages`` is how many messages it holds, where that is known
    as cheaply; ``size`` its size in bytes, for a store where that is what grows (an mbox file).
    """

    identity: str
    messages: int | None = None
    size: int | None = None


class AppendResult(NamedTuple):
    """The outcome of writing one message: its new identifier, or the reason it failed.

    ``warning`` says what a written message lost that the target would not keep (keywords a
    server refused), for the run's summary: the message counts as copied.
    """

    message: Message
    uid: str | None = None
    error: str | None = None
    warning: str | None = None

    @property
    def ok(self) -> bool:
        """Return True when the message was written."""
        return self.error is None


class Elsewhere(NamedTuple):
    """A message to write into one more folder of a store that holds it already: in ``folder`` as ``uid``."""

    message: Message
    folder: FolderPath
    uid: str


class Store(ABC):
    """A mailbox store. Use it as a context manager: ``with open_store(ep) as store: ...``.

    ``writable`` is False for stores that can only be read (POP3). ``durable_on_append``
    is False for stores that only become durable when closed (PST, built in a temporary
    file and renamed into place): the pipeline records their progress after ``close``.
    ``supports_flag_updates`` is False where changing flags in place would mean rewriting
    the archive (mbox); reruns then leave the flags of copied messages as first written.
    ``parallel_folders`` is True where a sibling instance may copy other folders of the
    same store at the same time (a second IMAP connection, another writer in a Maildir).
    ``stages_writes`` is True where making writes durable costs per call more than per byte
    (a sync of the filesystem, an fsync of a directory): ``stage_batch`` then only writes,
    and ``commit_staged`` makes everything staged durable at once.
    ``labels_are_folders`` is True where one message shows in several folders, one per label
    (Gmail): read, its messages are copied once from the folder of all mail, each into the
    folders of its labels; written, a message's further folders are labels added to it
    (``stage_copies``) rather than uploads.
    ``links_copies`` is True where a message's further folders in the store cost less than
    writing it again (Gmail: a label; a Maildir with ``?links=hard``: a hard link): the pipeline
    hands them to ``stage_copies`` with where the message is already.
    """

    writable: bool = True
    durable_on_append: bool = True
    supports_flag_updates: bool = True
    parallel_folders: bool = False
    stages_writes: bool = False
    labels_are_folders: bool = False
    links_copies: bool = False
    # A server store's pace and the throttling its server imposed, shared with its siblings (network/pacing.py).
    pacing: Pacing | None = None

    def __init__(self, endpoint: Endpoint, *, readonly: bool = True) -> None:
        self.endpoint = endpoint
        self.readonly = readonly
        self._listed: set[FolderPath] | None = None  # the selectable folders, once _has_folder listed them

    # --- lifecycle -------------------------------------------------------------------

    def open(self) -> None:  # noqa: B027 - a hook: a store with nothing to open need not say so
        """Connect or check the location; raise ConnectError or StoreError on failure."""

    def close(self) -> None:  # noqa: B027 - a hook, as open is
        """Release connections and locks, finishing any pending write."""

    def sibling(self) -> Store:
        """Return a new, unopened store on the same endpoint, to copy other folders beside this one."""
        return type(self)(self.endpoint, readonly=self.readonly)

    def exists(self) -> bool:
        """Return True when there is a store to read at the endpoint (a dry run opens only those)."""
        return True

    def __enter__(self) -> Store:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- reading ---------------------------------------------------------------------

    @abstractmethod
    def list_folders(self) -> list[Folder]:
        """Return every folder of the store, parents before children."""

    @abstractmethod
    def scan(self, folder: FolderPath) -> FolderScan:
        """Return the folder's validity and message references, without fetching bodies."""

    def scan_changes(self, folder: FolderPath, since: str) -> FolderScan | None:
        """Return a scan of only the messages that arrived or changed flags since ``folder`` had version ``since``.

        None unless the store can tell both that and that no message the folder held then has left
        (IMAP with CONDSTORE can): the caller then scans the whole folder.
        """
        return None

    @abstractmethod
    def fetch(self, folder: FolderPath, refs: Iterable[MessageRef]) -> Iterator[Message]:
        """Yield the full messages for ``refs``, in order, streaming in batches.

        A message that vanished since the scan is skipped silently (it was deleted).
        """

    def messages(self, folder: FolderPath) -> Iterator[Message]:
        """Yield every message of the folder with its body."""
        return self.fetch(folder, self.scan(folder).refs)

    def stats(self, folder: FolderPath) -> FolderStats:
        """Return the folder's message count and total size."""
        count = size = 0
        for ref in self.scan(folder).refs:
            count += 1
            size += ref.size or 0
        return FolderStats(count, size)

    def content_keys(self, folder: FolderPath) -> dict[str, list[str]]:
        """Return the uids of the folder's messages grouped by content key (see contentkey.py).

        Stores that can read headers alone (IMAP) override this to avoid reading bodies.
        """
        keys: dict[str, list[str]] = {}
        for message in self.messages(folder):
            keys.setdefault(message.content_key, []).append(message.uid)
        return keys

    # --- writing ---------------------------------------------------------------------

    def resolve_folder(self, folder: FolderPath, role: Role | None = None) -> FolderPath | None:
        """Return the existing folder that ``ensure_folder(folder, role)`` sends messages to, or None
        where it would create one.

        Local archives keep the source's paths, so that is ``folder`` itself if the store has it;
        IMAP looks for the folder of the same special-use role first, as its ensure_folder does.
        """
        return folder if self._has_folder(folder) else None

    def _has_folder(self, folder: FolderPath) -> bool:
        # Listing is what every store can do, and it is done once: verify and a dry run ask for every
        # folder. A store that can look one folder up overrides this.
        if self._listed is None:
            self._listed = {existing.path for existing in self.list_folders() if existing.selectable}
        return folder in self._listed

    def probe_folder(self, folder: FolderPath) -> FolderProbe | None:
        """Return what the store says of ``folder`` now, cheaply, or None when there is no such folder.

        Every store that can be a target answers; a run asks before it trusts its state file.
        """
        raise StoreError(f"{self.endpoint} cannot be written to")

    def ensure_folder(self, folder: FolderPath, role: Role | None = None) -> FolderPath:
        """Create the folder if missing and return the path messages for it go to.

        Stores that keep special-use folders under their own names (IMAP) map ``role``
        to that folder; local archives keep the source path.
        """
        self._check_writable()
        self._create_folder(folder)
        if self._listed is not None:
            self._listed.add(folder)
        return folder

    def _create_folder(self, folder: FolderPath) -> None:
        raise StoreError(f"{self.endpoint} cannot create folders")

    def append_batch(self, folder: FolderPath, messages: Sequence[Message]) -> list[AppendResult]:
        """Write ``messages`` into ``folder`` and return one result per message, in order.

        When this returns, every successful write is durable (unless ``durable_on_append``
        is False, in which case it is durable once ``close`` returns).
        """
        raise StoreError(f"{self.endpoint} cannot be written to")

    def stage_batch(self, folder: FolderPath, messages: Sequence[Message]) -> list[AppendResult]:
        """Write ``messages`` into ``folder`` as ``append_batch`` does, one result per message.

        Where ``stages_writes`` is True the successful writes become durable, and visible, only
        at ``commit_staged``; elsewhere they are written as by ``append_batch``.
        """
        return self.append_batch(folder, messages)

    def stage_copies(self, folder: FolderPath, copies: Sequence[Elsewhere]) -> list[AppendResult]:
        """Write messages the store holds already in another folder into ``folder`` too, one result each.

        A store that can show one message in several folders (Gmail: a label) or link it (a Maildir's
        hard link) does so; the others write each message again, as ``stage_batch`` does.
        """
        return self.stage_batch(folder, [copy.message for copy in copies])

    def commit_staged(self) -> dict[str, str]:
        """Make every write staged since the last commit durable; return the error of each write
        that could not be made durable, by its new uid (empty when all are)."""
        return {}

    def set_flags(self, folder: FolderPath, uid: str, flags: Flags) -> None:
        """Replace the flags of an already written message."""
        raise StoreError(f"{self.endpoint} cannot change flags")

    def delete(self, folder: FolderPath, uids: Iterable[str]) -> None:
        """Delete messages from the folder (only ever called when the user asked for it)."""
        raise StoreError(f"{self.endpoint} cannot delete messages")

    def _check_writable(self) -> None:
        if not self.writable or self.readonly:
            raise StoreError(f"{self.endpoint} is opened read-only")
