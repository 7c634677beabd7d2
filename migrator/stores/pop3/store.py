"""Pop3Store: a POP3 mailbox as a read-only store with one folder, INBOX.

Messages are known by their UIDL, so reruns fetch only what is new. Deleting is the one
change this store makes, and only when the run asks for it: DELE marks messages in this
session and the server removes them at QUIT, when the store is closed; a session that
ends any other way deletes nothing.
"""

from __future__ import annotations

import logging
import poplib
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import TypeVar

from migrator.core.contentkey import content_key_from_headers
from migrator.core.errors import ConnectionLost, FolderError, MessageError, MigratorError, StoreError
from migrator.core.folder import Folder, FolderStats, Role
from migrator.core.message import FolderPath, Message, MessageRef
from migrator.endpoints.endpoint import Endpoint
from migrator.endpoints.login_secret import LoginSecret
from migrator.stores.base import FolderScan, Store
from migrator.stores.network.limits import not_read, over_limit
from migrator.stores.network.login import logged_in
from migrator.stores.network.pacing import pacing_for
from migrator.stores.network.reconnect import Reconnecting
from migrator.stores.pop3 import wire
from migrator.stores.pop3.client import Capabilities, OversizedMessage, PopSession, connect, said

INBOX: FolderPath = ("INBOX",)
VALIDITY_UIDL = "uidl"
VALIDITY_CONTENT_KEY = "content-key"  # the fallback for servers without UIDL
log = logging.getLogger(__name__)
T = TypeVar("T")


class Pop3Store(Store):
    """A POP3 mailbox: read-only except for deletions the run asks for (``readonly=False``)."""

    writable = False

    def __init__(self, endpoint: Endpoint, *, readonly: bool = True) -> None:
        super().__init__(endpoint, readonly=readonly)
        self._secret = LoginSecret(endpoint)
        self._client: PopSession | None = None
        self._capabilities: Capabilities = {}
        self._numbers: dict[str, int] = {}  # uid -> message number in the current session
        self._validity = VALIDITY_UIDL
        self._marked = 0  # messages marked with DELE in the current session
        self._reconnecting = Reconnecting(endpoint.account, self._drop)
        self._pacing = self.pacing = pacing_for(endpoint)  # max_bytes_per_second, max_messages_per_second
        self._reconnecting.waits = self._pacing.waits

    # --- lifecycle -------------------------------------------------------------------

    def open(self) -> None:
        """Connect and log in; raise ConnectError or ConfigError."""
        self._live()

    def close(self) -> None:
        """Send QUIT, which makes the session's deletions happen; raise ConnectionLost if they could not."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.quit()
        except (poplib.error_proto, OSError) as error:
            client.close()
            if self._marked:
                raise ConnectionLost(
                    f"{self.endpoint.account} did not confirm QUIT ({said(error)}), so it deleted nothing; "
                    "the next run deletes those messages again"
                ) from None

    def _live(self) -> PopSession:
        if self._client is None:
            self._client, self._capabilities = logged_in(self._secret, lambda secret: connect(self.endpoint, secret))
            self._numbers, self._marked = {}, 0
            self._reconnecting.connected()
        return self._client

    def _retrying(self, operation: Callable[[PopSession], T], what: str) -> T:
        """Return ``operation(session)``, starting a new session after a dropped or stalled one.

        A new session that cannot be opened counts as one more attempt, as a dropped one does
        (see network/reconnect.py for how many, and which errors end the operation at once).
        """
        return self._reconnecting.run(lambda: operation(self._live()), what)

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None

    # --- reading ---------------------------------------------------------------------

    def list_folders(self) -> list[Folder]:
        """Return the one folder a POP3 mailbox has: INBOX."""
        return [Folder(INBOX, Role.INBOX)]

    def scan(self, folder: FolderPath) -> FolderScan:
        """Return the messages' uids (UIDL, or content keys without it) and sizes; bodies stay unread."""
        self._check_folder(folder)
        sizes = self._retrying(self._number_messages, "listing messages")
        refs = [MessageRef(uid, size=sizes.get(number)) for uid, number in self._numbers.items()]
        return FolderScan(self._validity, refs)

    def _number_messages(self, client: poplib.POP3) -> dict[int, int]:
        """Map uids to this session's message numbers; return {number: size}."""
        sizes = self._command(lambda: wire.parse_sizes(client.list()[1]), "LIST")
        uids = self._uids(client, sizes)
        self._numbers = {uid: number for number, uid in sorted(uids.items())}
        return sizes

    def _uids(self, client: poplib.POP3, sizes: dict[int, int]) -> dict[int, str]:
        if self._capabilities and "UIDL" not in self._capabilities:
            return self._keys_from_headers(client, sizes, "does not list UIDL in its capabilities")
        try:
            return wire.parse_listing(client.uidl()[1])
        except poplib.error_proto as error:
            if _dropping(error):
                raise ConnectionAbortedError(said(error)) from None
            return self._keys_from_headers(client, sizes, f"refused UIDL ({said(error)})")
        except ValueError as error:
            raise FolderError(f"{self.endpoint.account} sent an unreadable UIDL listing: {error}") from None

    def _keys_from_headers(self, client: poplib.POP3, sizes: dict[int, int], why: str) -> dict[int, str]:
        """Return {number: content key from TOP n 0 headers and size}: the fallback without UIDL."""
        if self._capabilities and "TOP" not in self._capabilities:
            raise FolderError(
                f"{self.endpoint.account} {why} and offers no TOP either, so new messages cannot be told "
                "from ones already copied: ask the provider for UIDL support or use IMAP"
            )
        if self._validity != VALIDITY_CONTENT_KEY:
            log.warning(
                "migrator: %s %s: messages are recognised by a key of their headers and size instead, "
                "so a message whose headers change on the server would be copied again",
                self.endpoint.account, why,
            )
        self._validity = VALIDITY_CONTENT_KEY
        keys = []
        for number in sorted(sizes):
            headers = wire.message_bytes(self._command(lambda: client.top(number, 0)[1], "TOP"))
            keys.append((number, content_key_from_headers(headers, sizes[number])))
        return wire.unique_keys(keys)

    def _command(self, read: Callable[[], T], command: str) -> T:
        try:
            return read()
        except poplib.error_proto as error:
            raise _refusal(error, FolderError, f"{self.endpoint.account} refused {command}") from None
        except ValueError as error:
            raise FolderError(f"{self.endpoint.account} sent an unreadable reply to {command}: {error}") from None

    def fetch(self, folder: FolderPath, refs: Iterable[MessageRef]) -> Iterator[Message]:
        """Yield each message exactly as the server sent it, with its received date; skip vanished ones.

        Raise MessageError at the end, naming the messages left out as over the limit on one message.
        """
        self._check_folder(folder)
        refused: list[tuple[str, str]] = []
        for ref in refs:
            # A one-item list, emptied as the message is yielded: this frame, suspended while the
            # caller writes, keeps nothing of it (the run's LargeMessageGate counts on that).
            try:
                raw = [self._retrying(lambda client: self._retrieve(client, ref), f"fetching message {ref.uid}")]
            except OversizedMessage as error:
                refused.append((ref.uid, f"not read: {error}"))
                continue
            if raw[0] is not None:
                self._pacing.spend(len(raw[0]))
                received = wire.received_date(raw[0]) or datetime.now(timezone.utc)
                # raw[0] is bytes, checked above: the checker narrows names, not list items.
                yield Message(raw.pop(), received=received, folder=INBOX, uid=ref.uid)  # type: ignore[arg-type]
        if refused:
            raise not_read(refused)

    def _retrieve(self, client: PopSession, ref: MessageRef) -> bytes | None:
        limit = client.max_message
        if ref.size is not None and ref.size > limit:
            raise OversizedMessage(f"it is {over_limit(ref.size, limit)}")
        if not self._numbers:
            self._number_messages(client)  # a new session after a dropped one numbers messages anew
        number = self._numbers.get(ref.uid)
        if number is None:
            return None
        try:
            return client.retrieve(number)
        except poplib.error_proto as error:
            raise _refusal(error, MessageError, f"{self.endpoint.account} refused to send message {ref.uid}") from None
        except OversizedMessage:
            self._drop()  # the rest of the message is still on its way: the session cannot go on
            raise

    def stats(self, folder: FolderPath) -> FolderStats:
        """Return the message count and total size from STAT."""
        self._check_folder(folder)
        count, size = self._retrying(lambda client: self._command(client.stat, "STAT"), "asking for STAT")
        return FolderStats(count, size)

    # --- deleting --------------------------------------------------------------------

    def delete(self, folder: FolderPath, uids: Iterable[str]) -> None:
        """Mark ``uids`` with DELE; the server removes them at QUIT, when the store is closed."""
        self._check_folder(folder)
        if self.readonly:
            raise StoreError(f"{self.endpoint} was opened read-only, so it cannot delete messages")
        chosen = list(uids)
        self._retrying(lambda client: self._mark(client, chosen), "deleting messages")

    def _mark(self, client: poplib.POP3, uids: list[str]) -> None:
        if not self._numbers:
            self._number_messages(client)
        for uid in uids:
            number = self._numbers.get(uid)
            if number is None:
                continue  # already gone from the server
            try:
                client.dele(number)
            except poplib.error_proto as error:
                raise _refusal(
                    error, MessageError, f"{self.endpoint.account} refused to delete message {uid}"
                ) from None
            self._marked += 1

    def _check_folder(self, folder: FolderPath) -> None:
        if folder != INBOX:
            raise FolderError(f"a POP3 mailbox has only INBOX, not {'/'.join(folder)!r} ({self.endpoint.account})")


def _dropping(error: poplib.error_proto) -> bool:
    """Return True for a -ERR that ends the session (RFC 3206 SYS/TEMP, e.g. a server shutting down)."""
    return said(error).startswith("-ERR [SYS/TEMP]")


def _refusal(error: poplib.error_proto, kind: type[MigratorError], what: str) -> Exception:
    """Return the exception a -ERR reply stands for: a dropped session (retried), or ``kind`` saying ``what``."""
    if _dropping(error):
        return ConnectionAbortedError(said(error))
    return kind(f"{what}: {said(error)}")
