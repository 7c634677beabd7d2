"""ImapStore: an IMAP account as a Store, reconnecting and resuming when a connection drops."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import TypeVar

from migrator.core.errors import FolderError, Refused
from migrator.core.folder import Folder, FolderIndex, FolderStats, Role
from migrator.core.listing import Listing
from migrator.core.message import Flag, Flags, FolderPath, Message, MessageRef
from migrator.endpoints.endpoint import Endpoint
from migrator.endpoints.login_secret import LoginSecret
from migrator.stores.base import AppendResult, Elsewhere, FolderProbe, FolderScan, Store
from migrator.stores.imap import appendlimit, folders, gmail, reading, writing
from migrator.stores.imap.connection import connect
from migrator.stores.imap.parser import ParseError
from migrator.stores.imap.session import Session
from migrator.stores.network.limits import not_read
from migrator.stores.network.login import logged_in
from migrator.stores.network.pacing import pacing_for
from migrator.stores.network.reconnect import LOST, Reconnecting

T = TypeVar("T")


class ImapStore(Store):
    """An IMAP4rev1 account. Reading never changes the source; writing needs ``readonly=False``."""

    parallel_folders = True

    def __init__(self, endpoint: Endpoint, *, readonly: bool = True) -> None:
        super().__init__(endpoint, readonly=readonly)
        self._secret = LoginSecret(endpoint)
        self._session: Session | None = None
        self._known_names: dict[FolderPath, str] = {}
        self._validity: dict[FolderPath, str] = {}
        self._probes: dict[FolderPath, FolderProbe] = {}  # from the last listing, or a STATUS since
        self._reconnecting = Reconnecting(endpoint.account, self._disconnect, provider=endpoint.provider)
        self._pacing = self.pacing = pacing_for(endpoint)  # shared with the siblings: the limits are the server's
        self._reconnecting.waits = self._pacing.waits
        self._quirks = writing.ServerQuirks()  # what the server refused or changed, learnt once a run
        self._labelled: dict[FolderPath, gmail.LabelledScan] = {}  # Gmail: each folder's UIDs by X-GM-MSGID

    # --- lifecycle -------------------------------------------------------------------

    def open(self) -> None:
        """Connect and log in; raise ConnectError or ConfigError."""
        session = self._live()
        # Gmail: labels are folders unless the endpoint says to copy it folder by folder (?gmail=folders).
        self.labels_are_folders = self.links_copies = (
            gmail.is_gmail(session.capabilities) and self.endpoint.gmail == "labels")

    def sibling(self) -> ImapStore:
        """Return an unopened store for a second connection, with the password already asked for."""
        other = ImapStore(self.endpoint, readonly=self.readonly)
        other._secret = self._secret
        other._known_names.update(self._known_names)
        other._quirks = self._quirks
        other._pacing = other.pacing = self._pacing
        other._reconnecting.waits = self._pacing.waits
        return other

    def close(self) -> None:
        """Log out and close the connection."""
        if self._session is not None:
            self._session.protocol.logout()
            self._session = None

    def _live(self) -> Session:
        """Return a working session, connecting (again) when there is none."""
        if self._session is None or self._session.protocol.closed:
            protocol = logged_in(self._secret, lambda secret: connect(self.endpoint, secret))  # a token each time
            try:
                self._session = Session.start(protocol, self.endpoint, self._known_names, readonly=self.readonly)
            except ParseError as error:
                protocol.close()
                raise Refused(
                    f"cannot use {self.endpoint.account}: its NAMESPACE reply cannot be read ({error})") from None
            self._reconnecting.connected()
        return self._session

    def _retrying(self, operation: Callable[[Session], T], what: str, direction: str | None = None) -> T:
        """Return ``operation(session)``, reconnecting after a lost connection (see network/reconnect.py)."""
        return self._reconnecting.run(lambda: self._readable(operation, what), what, direction)

    def _readable(self, operation: Callable[[Session], T], what: str) -> T:
        try:
            return operation(self._live())
        except ParseError as error:
            raise self._unreadable(error, what) from None

    def _disconnect(self) -> None:
        if self._session is not None:
            self._session.protocol.close()

    def _unreadable(self, error: ParseError, what: str) -> FolderError:
        if self._session is not None:
            self._session.protocol.close()  # the rest of the response cannot be trusted either
        return FolderError(f"{self.endpoint.account} sent a response that cannot be read while {what}: {error}")

    # --- reading ---------------------------------------------------------------------

    def list_folders(self) -> list[Folder]:
        """Return every folder, INBOX first and parents before children."""
        return self._retrying(self._listing, "listing folders")

    def _listing(self, session: Session) -> list[Folder]:
        entries, statuses = folders.list_entries(session)
        found, names = folders.folders_from(entries, session.codec, statuses)
        self._known_names.update(names)
        self._probes = {path: probe for path, name in names.items()
                        if (probe := folders.probe_of(statuses.get(name, {}))) is not None}
        session.folders = FolderIndex(found)
        return found

    def _folders(self, session: Session) -> FolderIndex:
        """Return the account's folders, listed once per session and kept up to date as folders are created."""
        if session.folders is None:
            self._listing(session)
        assert session.folders is not None
        return session.folders

    def scan(self, folder: FolderPath) -> FolderScan:
        """Return the folder's UIDVALIDITY and its messages' uids, flags, sizes and dates.

        Gmail in labels mode: each message named by its X-GM-MSGID, with its labels.
        """
        if self.labels_are_folders:
            return self._scan_labelled(folder)
        scan = self._retrying(lambda s: reading.scan_folder(s, folder), f"scanning {'/'.join(folder)}")
        self._validity[folder] = scan.validity
        return scan

    def scan_changes(self, folder: FolderPath, since: str) -> FolderScan | None:
        """Return the messages that arrived or changed since the folder's version ``since`` (CONDSTORE), or None."""
        if self.labels_are_folders:
            return None
        scan = self._retrying(lambda s: reading.scan_changes(s, folder, since), f"scanning {'/'.join(folder)}")
        if scan is not None:
            self._validity[folder] = scan.validity
        return scan

    def fetch(self, folder: FolderPath, refs: Iterable[MessageRef]) -> Iterator[Message]:
        """Yield the messages for ``refs`` in uid order, streaming; resume after a lost connection.

        Raise MessageError at the end, naming the messages left out as over the limit on one message.
        """
        if self.labels_are_folders:
            yield from self._fetch_labelled(folder, refs)
            return
        wanted = reading.WantedMessages(refs)
        if not wanted:
            return
        yield from self._stream(folder, wanted)
        if wanted.refused:
            raise not_read(wanted.refused)

    def _stream(self, folder: FolderPath, wanted: reading.WantedMessages) -> Iterator[Message]:
        what = f"fetching from {'/'.join(folder)}"
        attempts = self._reconnecting.attempts(what, "download")
        while True:
            progress = wanted.arrived
            try:
                for message in reading.stream_messages(self._live(), folder, wanted, self._validity):
                    self._pacing.spend(message.size)
                    held = [message]
                    del message  # this frame keeps nothing it yielded (see reading._fetch_responses)
                    yield held.pop()
                return
            except LOST as error:
                if wanted.arrived > progress:  # each new connection that brought messages starts a new count
                    attempts.progressed()
                attempts.failed(error)
            except ParseError as error:
                raise self._unreadable(error, what) from None

    def stats(self, folder: FolderPath) -> FolderStats:
        """Return the folder's message count and total size, without fetching messages."""
        return self._retrying(lambda s: reading.folder_stats(s, folder), f"counting {'/'.join(folder)}")

    def content_keys(self, folder: FolderPath) -> dict[str, list[str]]:
        """Return the folder's uids (Gmail in labels mode: X-GM-MSGIDs) by content key, fetching headers only."""
        named_by = "X-GM-MSGID" if self.labels_are_folders else "UID"
        return self._retrying(lambda s: reading.content_keys(s, folder, named_by=named_by),
                              f"reading headers of {'/'.join(folder)}")

    def probe_folder(self, folder: FolderPath) -> FolderProbe | None:
        """Return the folder's UIDVALIDITY and message count, from the folder list where it had them."""
        return self._retrying(lambda s: self._probe(s, folder), f"checking {'/'.join(folder)}")

    def _probe(self, session: Session, folder: FolderPath) -> FolderProbe | None:
        if not self._folders(session).selectable(folder):
            return None
        if folder not in self._probes:
            numbers = session.status(folder, b"(UIDVALIDITY MESSAGES)")
            self._probes[folder] = folders.probe_of(numbers) or FolderProbe("", numbers.get("MESSAGES"))
        return self._probes[folder]

    # --- writing ---------------------------------------------------------------------

    def resolve_folder(self, folder: FolderPath, role: Role | None = None) -> FolderPath | None:
        """Return the existing folder that ``ensure_folder`` sends mail of ``folder`` (with ``role``) to, or None:
        the folder of the same special-use role first, then the one of the same name."""
        if _is_inbox(folder, role):
            return ("INBOX",)
        return self._retrying(lambda s: folders.existing_folder(self._folders(s), s.codec.storable(folder), role),
                              f"looking for {'/'.join(folder)}")

    def ensure_folder(self, folder: FolderPath, role: Role | None = None) -> FolderPath:
        """Return the folder that mail of ``folder`` (with ``role``) goes to, creating it if needed."""
        self._check_writable()
        if _is_inbox(folder, role):
            return ("INBOX",)
        return self._retrying(lambda s: self._ensure(s, folder, role), f"creating {'/'.join(folder)}")

    def _ensure(self, session: Session, folder: FolderPath, role: Role | None) -> FolderPath:
        listing = self._folders(session)
        path = session.codec.storable(folder)
        found = folders.existing_folder(listing, path, role)
        if found is not None:
            return found
        folders.create_folder(session, path, listing)
        return path

    def append_batch(self, folder: FolderPath, messages: Sequence[Message]) -> list[AppendResult]:
        """Append ``messages`` with their flags and dates; return once the server confirmed each."""
        self._check_writable()
        limit, why = appendlimit.append_limit(self._live().capabilities, self.endpoint)
        sending, refused = appendlimit.split_oversized(messages, limit, why, self.endpoint.account)
        if not sending:
            return appendlimit.merged(messages, refused, [])
        for message in sending:
            self._pacing.spend(message.size)
        job = writing.AppendJob(folder, sending, self._quirks)
        self._retrying(lambda s: writing.append_messages(s, job), f"appending to {'/'.join(folder)}", "upload")
        self._probes.pop(folder, None)  # its count grew, and a folder made by the first APPEND has its UIDVALIDITY now
        return appendlimit.merged(messages, refused, job.finished())

    def set_flags(self, folder: FolderPath, uid: str, flags: Flags) -> None:
        """Replace the flags of message ``uid`` in ``folder``."""
        self._check_writable()
        self._retrying(lambda s: writing.set_flags(s, folder, uid, flags), f"setting flags in {'/'.join(folder)}")

    def delete(self, folder: FolderPath, uids: Iterable[str]) -> None:
        """Delete (flag and expunge) exactly the messages ``uids`` from ``folder``."""
        self._check_writable()
        chosen = list(uids)
        if chosen:
            self._retrying(lambda s: writing.delete_messages(s, folder, chosen), f"deleting from {'/'.join(folder)}")

    def stage_copies(self, folder: FolderPath, copies: Sequence[Elsewhere]) -> list[AppendResult]:
        """Show messages of the account in ``folder`` too: in Gmail a label added, elsewhere an APPEND."""
        if not self.labels_are_folders:
            return super().stage_copies(folder, copies)
        self._check_writable()
        results = self._retrying(lambda s: gmail.add_labels(s, folder, copies, self._folders(s)),
                                 f"labelling messages {'/'.join(folder)}")
        self._probes.pop(folder, None)
        return results

    # --- Gmail -----------------------------------------------------------------------

    def _scan_labelled(self, folder: FolderPath) -> FolderScan:
        labelled = self._retrying(lambda s: gmail.scan_folder(s, folder, self._label_folders(s)),
                                  f"scanning {'/'.join(folder)}")
        self._validity[folder] = labelled.validity
        self._labelled[folder] = labelled
        return labelled.scan

    def _label_folders(self, session: Session) -> gmail.LabelFolders:
        listed = [f for f in self._folders(session) if f.selectable]
        return gmail.LabelFolders((f.path, f.role, session.server_name(f.path)) for f in listed)

    def _fetch_labelled(self, folder: FolderPath, refs: Iterable[MessageRef]) -> Iterator[Message]:
        """Yield the messages named by X-GM-MSGID in ``refs``, fetched by their UIDs in the folder."""
        if folder not in self._labelled:
            self._scan_labelled(folder)
        labelled = self._labelled[folder]
        uids = labelled.uids
        by_uid: dict[str, MessageRef] = {}
        wanted = Listing()
        for ref in refs:
            uid = uids.get(int(ref.uid))
            if uid is not None:  # else it left the folder since the scan
                by_uid[str(uid)] = ref
                wanted.add(str(uid), ref.flags, ref.size, ref.received)
        if not wanted:
            return
        fetching = reading.WantedMessages(wanted)
        for message in self._stream(folder, fetching):
            ref = by_uid[message.uid]
            flags = gmail.starred(message.flags) if Flag.FLAGGED in ref.flags else message.flags
            yield replace(message, uid=ref.uid, flags=flags, labels=gmail.user_labels(labelled, ref.uid))
        if fetching.refused:
            raise not_read([(by_uid[uid].uid, why) for uid, why in fetching.refused])


def _is_inbox(folder: FolderPath, role: Role | None) -> bool:
    return role is Role.INBOX or tuple(p.upper() for p in folder) == ("INBOX",)
