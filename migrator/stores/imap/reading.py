"""Reading folders: scans without bodies, bodies streamed in pipelined batches, content keys.

Reads always EXAMINE (never SELECT) and fetch with BODY.PEEK, so reading a folder changes
nothing in it: no \\Seen set, no \\Recent cleared. A message over the limit on one message is
never read: one the listing says is too large is not asked for; one whose body the server
announces too large ends the connection (its stream cannot be followed past it), and the
fetch resumes after it. Either is named once the rest of the folder has been fetched.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone

from migrator.core.contentkey import content_key_from_headers
from migrator.core.errors import FolderError
from migrator.core.folder import FolderStats
from migrator.core.listing import Listing
from migrator.core.message import FolderPath, Message, MessageRef
from migrator.stores.base import FolderScan
from migrator.stores.imap.commands import uid_set
from migrator.stores.imap.flags import flags_from_imap
from migrator.stores.imap.folders import version_numbers
from migrator.stores.imap.parser import Value, as_int, fetch_items, flag_names, internaldate, unfinished_fetch_uid
from migrator.stores.imap.protocol import Command, OversizedLiteral
from migrator.stores.imap.session import Session
from migrator.stores.network.limits import over_limit

FETCH_BATCH_BYTES = 8 * 1024 * 1024
FETCH_BATCH_MESSAGES = 1000
FETCH_PIPELINE = 2  # batches in flight: the next is on its way while the current one streams in
_SCAN_ITEMS = b"(UID FLAGS RFC822.SIZE INTERNALDATE)"
_BODY_ITEMS = b"(UID FLAGS INTERNALDATE BODY.PEEK[])"
_KEY_ITEMS = b"(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE FROM SUBJECT TO)])"
_KEY_ITEM = "BODY[HEADER.FIELDS"


def plan_batches(
    refs: Iterable[MessageRef], max_bytes: int = FETCH_BATCH_BYTES, max_messages: int = FETCH_BATCH_MESSAGES
) -> Iterator[list[int]]:
    """Yield the uids of ``refs`` cut into batches of at most ``max_messages`` and about ``max_bytes``.

    A batch holds at least one message, however large; sizes unknown count as 0. Batches
    are cut as they are asked for, so only those in flight are ever held.
    """
    batch: list[int] = []
    size = 0
    for ref in refs:
        ref_size = ref.size or 0
        if batch and (len(batch) >= max_messages or size + ref_size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(int(ref.uid))
        size += ref_size
    if batch:
        yield batch


class WantedMessages:
    """The messages one fetch is to deliver, in uid order, and which of them have arrived.

    A whole folder is fetched in one go, so this is held once per message of the largest
    folder: the caller's listing (kept as it is when its uids ascend, as a scan's do, and
    searched by uid) and a mark, one byte a message beside the listing, where a dict of
    refs, a set of arrived uids and the batches cut in advance took 180.
    """

    def __init__(self, refs: Iterable[MessageRef]) -> None:
        listing = Listing.of(refs)
        self.refs = listing if listing.uids_ascend() else Listing(sorted(listing, key=_uid_number))
        self._arrived = bytearray(len(self.refs))
        self.arrived = 0
        self.refused: list[tuple[str, str]] = []  # (uid, why) of each message over the limit, left out

    def __len__(self) -> int:
        return len(self.refs)

    def position(self, uid: int) -> int | None:
        """Return where the message ``uid`` is, or None when it is not wanted or has arrived."""
        index = self.refs.find(uid)
        return None if index is None or self._arrived[index] else index

    def arrive(self, index: int) -> None:
        """Mark the message at ``index`` delivered: a resumed fetch leaves it out."""
        self._arrived[index] = 1
        self.arrived += 1

    def refuse(self, index: int, why: str) -> None:
        """Leave the message at ``index`` out, for the reason ``why``: a resumed fetch does not ask for it."""
        self.arrive(index)
        self.refused.append((self.refs.uid_at(index), f"not read: {why}"))

    def refuse_larger(self, limit: int) -> None:
        """Leave out each message not delivered yet whose listed size is over ``limit``."""
        for index in range(len(self.refs)):
            size = self.refs.size_at(index)
            if size is not None and size > limit and not self._arrived[index]:
                self.refuse(index, f"it is {over_limit(size, limit)}")

    def pending(self) -> Iterator[MessageRef]:
        """Yield the refs not delivered yet, in uid order (marks made meanwhile are seen)."""
        return (ref for ref, arrived in zip(self.refs, self._arrived) if not arrived)


def _uid_number(ref: MessageRef) -> int:
    return int(ref.uid)


def scan_folder(session: Session, path: FolderPath) -> FolderScan:
    """Return the folder's UIDVALIDITY and a MessageRef per message; raise FolderError."""
    box = session.select(path, fresh=True)
    listing = Listing()
    if box.exists:
        for items in fetched(session, path, b"1:*", _SCAN_ITEMS):
            _list(listing, as_int(items["UID"]), items)
    return FolderScan(box.validity, listing)


def _list(listing: Listing, uid: int, items: dict[str, Value]) -> None:
    """Add the message of one scan's FETCH response to ``listing``."""
    listing.add(
        str(uid),
        flags_from_imap(flag_names(items.get("FLAGS", []))),
        as_int(items["RFC822.SIZE"]) if "RFC822.SIZE" in items else None,
        internaldate(items["INTERNALDATE"]) if "INTERNALDATE" in items else None,
    )


def scan_changes(session: Session, path: FolderPath, since: str) -> FolderScan | None:
    """Return the folder's messages that arrived or changed flags since it had the version ``since``, or None.

    One ``UID FETCH 1:* ... (CHANGEDSINCE modseq)`` (RFC 7162) lists them. None when that cannot be the
    whole change: the folder was renumbered, the version is not a CONDSTORE one, or a message it held
    then has left (the messages there now, less the new ones, must be as many as then).
    """
    then = version_numbers(since)
    box = session.select(path, fresh=True)
    if then is None or box.validity != str(then["UIDVALIDITY"]):
        return None
    listing = Listing()
    arrived = 0
    if box.exists:
        items = _SCAN_ITEMS + b" (CHANGEDSINCE " + str(then["HIGHESTMODSEQ"]).encode() + b")"
        try:
            for found in fetched(session, path, b"1:*", items):
                uid = as_int(found["UID"])
                arrived += uid >= then["UIDNEXT"]
                _list(listing, uid, found)
        except FolderError:
            return None  # refused (a folder without mod-sequences): the whole scan says what is wrong, if anything
    if box.exists - arrived != then["MESSAGES"]:
        return None
    return FolderScan(box.validity, listing, unlisted=box.exists - len(listing))


def fetched(session: Session, path: FolderPath, uids: bytes, items: bytes) -> Iterator[dict[str, Value]]:
    """Yield the items of each FETCH response to ``UID FETCH uids items`` as it arrives."""
    command = session.protocol.send(b"UID FETCH " + uids + b" " + items)
    yield from _fetch_responses(session, command)
    assert command.result is not None
    session.check(command.result, path)


def _fetch_responses(session: Session, command: Command) -> Iterator[dict[str, Value]]:
    # Like ImapProtocol.untagged and _stream_batches, this frame keeps nothing it yielded
    # while the caller works: the run's LargeMessageGate lets the next large message be
    # read once a written one is let go of, and a suspended frame would still hold it.
    for response in session.protocol.untagged(command):
        items = [fetch_items(response)] if response.kind == "FETCH" else []
        del response
        if items and "UID" in items[0]:  # FETCH responses without UID are unsolicited flag news
            yield items.pop()


def stream_messages(
    session: Session, path: FolderPath, wanted: WantedMessages, validities: dict[FolderPath, str]
) -> Iterator[Message]:
    """Yield the messages of ``wanted`` that have not arrived yet, marking each as it does.

    ``validities`` holds the UIDVALIDITY each folder had when its uids were learnt (one not
    there yet is recorded now); raise FolderError when the folder's is no longer that. A
    stream closed before its end closes the connection, whose responses are then half read.
    """
    box = session.select(path)
    if validities.setdefault(path, box.validity) != box.validity:
        raise FolderError(
            f"the folder {'/'.join(path)} on {session.where} was renumbered (UIDVALIDITY changed) "
            "while it was being copied: run the copy again"
        )
    wanted.refuse_larger(session.protocol.max_literal)
    finished = False
    try:
        batches = plan_batches(wanted.pending(), FETCH_BATCH_BYTES, FETCH_BATCH_MESSAGES)
        yield from _stream_batches(session, path, wanted, batches)
        finished = True
    except OversizedLiteral as error:
        _refuse_announced(session, path, wanted, error)
        raise  # the connection is closed: the store reconnects and resumes after the message
    finally:
        if not finished:
            session.protocol.close()


def _refuse_announced(session: Session, path: FolderPath, wanted: WantedMessages, error: OversizedLiteral) -> None:
    """Leave out the message whose body ``error`` announced; raise FolderError when the response does not say which."""
    uid = unfinished_fetch_uid(error.segments)
    index = None if uid is None else wanted.position(uid)
    announced = over_limit(error.size, session.protocol.max_literal)
    if index is None:
        raise FolderError(
            f"{session.where} announced a literal of {announced} in {'/'.join(path)} before naming its message: "
            "the folder cannot be read past it"
        ) from None
    wanted.refuse(index, f"the server announced {announced}")


def _stream_batches(
    session: Session, path: FolderPath, wanted: WantedMessages, batches: Iterator[list[int]]
) -> Iterator[Message]:
    in_flight: deque[Command] = deque()

    def send_next() -> None:
        batch = next(batches, None)
        if batch is not None:
            in_flight.append(session.protocol.send(b"UID FETCH " + uid_set(batch) + b" " + _BODY_ITEMS))

    for _ in range(FETCH_PIPELINE):
        send_next()
    while in_flight:
        command = in_flight[0]
        for items in _fetch_responses(session, command):
            index = wanted.position(as_int(items["UID"]))
            message = [None if index is None else _message(items, path, wanted.refs, index)]
            del items
            if message[0] is not None:
                assert index is not None  # a message is made only for a wanted index
                wanted.arrive(index)
                # See _fetch_responses. message[0] is a Message, checked above: the checker narrows names, not items.
                yield message.pop()  # type: ignore[misc]
        in_flight.popleft()
        assert command.result is not None
        session.check(command.result, path)
        send_next()


def _message(items: dict[str, Value], path: FolderPath, refs: Listing, index: int) -> Message | None:
    """Return the Message a FETCH response carries for ``refs[index]``, or None for one that brings no requested body.

    The listing's flags and date stand in for those the response lacks; a MessageRef is made only then.
    """
    body = items.get("BODY[]")
    if not isinstance(body, bytes):
        return None
    flags = flags_from_imap(flag_names(items["FLAGS"])) if "FLAGS" in items else refs[index].flags
    if "INTERNALDATE" in items:
        received = internaldate(items["INTERNALDATE"])
    else:
        received = refs[index].received or datetime.now(timezone.utc)
    # A size that disagrees with the body (some servers only estimate it) is not trusted.
    size = refs.size_at(index)
    reported = size if size == len(body) else None
    return Message(body, flags, received, path, refs.uid_at(index), reported_crlf_size=reported)


def content_keys(session: Session, path: FolderPath, first_uid: int = 1, named_by: str = "UID") -> dict[str, list[str]]:
    """Return the uids (from ``first_uid`` on) grouped by content key, reading headers only.

    ``named_by`` is the FETCH item that names each message (Gmail's X-GM-MSGID instead of its UID).
    """
    keys: dict[str, list[str]] = {}
    if not session.select(path, fresh=True).exists:
        return keys
    items_asked = _KEY_ITEMS if named_by == "UID" else _KEY_ITEMS.replace(b"(UID ", b"(UID " + named_by.encode() + b" ")
    for items in fetched(session, path, b"%d:*" % first_uid, items_asked):
        uid = as_int(items["UID"])
        if uid >= first_uid:  # "n:*" also returns the last message when every uid is below n
            key = content_key_from_headers(_key_headers(items), as_int(items.get("RFC822.SIZE")))
            keys.setdefault(key, []).append(str(as_int(items[named_by])))
    return keys


def _key_headers(items: dict[str, Value]) -> bytes:
    """Return the header lines of a HEADER.FIELDS item (a server may answer NIL when there are none)."""
    for name, value in items.items():
        if name.startswith(_KEY_ITEM) and isinstance(value, bytes):
            return value
    return b""


def folder_stats(session: Session, path: FolderPath) -> FolderStats:
    """Return the folder's message count and total size; raise FolderError."""
    if "STATUS=SIZE" in session.capabilities:
        numbers = session.status(path, b"(MESSAGES SIZE)")
        return FolderStats(numbers.get("MESSAGES", 0), numbers.get("SIZE", 0))
    if not session.select(path, fresh=True).exists:
        return FolderStats(0, 0)
    count = size = 0
    for items in fetched(session, path, b"1:*", b"(UID RFC822.SIZE)"):
        count += 1
        size += as_int(items.get("RFC822.SIZE"))
    return FolderStats(count, size)
