"""Writing to folders: pipelined APPENDs, flag changes, deletions.

Messages go out in MULTIAPPEND groups when the server offers MULTIAPPEND (one transaction
per group), else one APPEND each; commands are sent without waiting for each other (with
LITERAL+ not even for the server's ``+``), at most APPEND_WINDOW unanswered at a time.
A batch is done, and durable, when every tagged reply is in.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from migrator.errors import FolderError, MessageError
from migrator.message import Flags, FolderPath, Message
from migrator.stores.base import AppendResult
from migrator.stores.imap.commands import Literal, astring, flag_list, internaldate, uid_set
from migrator.stores.imap.flags import flags_to_imap, permitted
from migrator.stores.imap.parser import appended_uids, as_int
from migrator.stores.imap.protocol import Command
from migrator.stores.imap.reading import content_keys
from migrator.stores.imap.session import Session

APPEND_WINDOW = 64  # unanswered APPEND commands at a time: keeps the server's replies flowing
MULTIAPPEND_MESSAGES = 100  # messages per MULTIAPPEND: one server transaction, 4x faster on Dovecot
MULTIAPPEND_BYTES = 8 * 1024 * 1024  # and about this many bytes, so a refused group is cheap to resend
SETTLE_SECONDS = 1.0  # after a lost connection: the pause that shows the server has finished the old APPENDs
SETTLE_ROUNDS = 5
DELETE_CHUNK = 500  # uids per STORE/EXPUNGE command, to keep command lines short


@dataclass
class AppendJob:
    """One append_batch call, kept across reconnections.

    ``sent`` holds the indexes of messages whose APPEND went out; ``first_new_uid`` is
    the folder's UIDNEXT before the first one did, so that after a lost connection the
    messages that arrived though their reply was lost can be recognised.
    """

    path: FolderPath
    messages: Sequence[Message]
    results: list[AppendResult | None] = field(default_factory=list)
    sent: set[int] = field(default_factory=set)
    first_new_uid: int | None = None

    def __post_init__(self) -> None:
        self.results = [None] * len(self.messages)

    def finished(self) -> list[AppendResult]:
        """Return the results, every message having one."""
        assert all(r is not None for r in self.results)
        return [r for r in self.results if r is not None]


def append_messages(session: Session, job: AppendJob) -> None:
    """APPEND every message of ``job`` that has no result yet; raise ConnectionLost or FolderError."""
    _recover_unconfirmed(session, job)
    if job.first_new_uid is None:
        job.first_new_uid = session.status(job.path, b"(UIDNEXT)")["UIDNEXT"]
    _append_pending(session, job, lambda message: flags_to_imap(message.flags))
    _retry_refused_keywords(session, job)


def _append_pending(session: Session, job: AppendJob, flags_of: Callable[[Message], list[str]]) -> None:
    """APPEND the messages without a result: in MULTIAPPEND groups when the server has them.

    A group the server refuses is all or nothing (RFC 3502), and says nothing of which
    message was at fault: its messages are then sent again one by one.
    """
    pending = [i for i, result in enumerate(job.results) if result is None]
    most = MULTIAPPEND_MESSAGES if "MULTIAPPEND" in session.capabilities else 1
    refused = _send_groups(session, job, _groups(pending, job.messages, most), flags_of)
    _send_groups(session, job, [[index] for index in refused], flags_of)


def _groups(indexes: list[int], messages: Sequence[Message], most: int) -> list[list[int]]:
    """Return ``indexes`` cut into groups of at most ``most`` messages and about MULTIAPPEND_BYTES."""
    groups: list[list[int]] = []
    size = 0
    for index in indexes:
        if not groups or len(groups[-1]) >= most or size + messages[index].size > MULTIAPPEND_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(index)
        size += messages[index].size
    return groups


def _send_groups(session: Session, job: AppendJob, groups: list[list[int]],
                 flags_of: Callable[[Message], list[str]]) -> list[int]:
    """Send one APPEND per group, at most APPEND_WINDOW unanswered; return the indexes of refused groups."""
    name = session.server_name(job.path)
    window: deque[tuple[list[int], Command]] = deque()
    refused: list[int] = []
    for group in groups:
        job.sent.update(group)
        parts = append_command(name, [(job.messages[i], flags_of(job.messages[i])) for i in group])
        window.append((group, session.protocol.send(*parts)))
        if len(window) >= APPEND_WINDOW:
            refused += _settle(session, job, *window.popleft())
    while window:
        refused += _settle(session, job, *window.popleft())
    return refused


def append_command(mailbox: str, messages: Sequence[tuple[Message, list[str]]]) -> list[bytes | Literal]:
    """Return the parts of ``APPEND mailbox (flags) "date" {size}...`` for (message, flags) pairs."""
    parts: list[bytes | Literal] = [b"APPEND ", astring(mailbox)]
    for message, flags in messages:
        parts.append(b" " + (flag_list(flags) + b" " if flags else b"") + internaldate(message.received) + b" ")
        parts.append(Literal(message.raw))
    return parts


def _settle(session: Session, job: AppendJob, group: list[int], command: Command) -> list[int]:
    """Record the outcome of one APPEND; return the group's indexes when a group was refused."""
    for _ in session.protocol.untagged(command):
        pass  # EXISTS and the like, for a selected folder: nothing to keep
    result = command.result
    assert result is not None
    if not result.ok:
        if len(group) > 1:
            return group
        job.results[group[0]] = AppendResult(job.messages[group[0]], error=f"the server said {result.said()!r}")
        return []
    uids: Sequence[int | None] | None = appended_uids(result)
    if uids is None or len(uids) != len(group):
        uids = [None] * len(group)
    for index, uid in zip(group, uids):
        job.results[index] = AppendResult(job.messages[index], uid=None if uid is None else str(uid))
    return []


def _recover_unconfirmed(session: Session, job: AppendJob) -> None:
    """Give a result to each message sent before a lost connection that is in the folder now.

    The folder's messages from ``first_new_uid`` on are matched by content key, less
    those whose reply did arrive; what is not found is sent again.
    """
    unconfirmed = [i for i in sorted(job.sent) if job.results[i] is None]
    if not unconfirmed or job.first_new_uid is None:
        return
    _wait_until_settled(session, job.path)
    arrived = content_keys(session, job.path, job.first_new_uid)
    for result in job.results:
        if result is not None and result.ok:
            _claim(arrived, result.message.content_key, result.uid)
    for index in unconfirmed:
        uid = _claim(arrived, job.messages[index].content_key, None)
        if uid is not None:
            job.results[index] = AppendResult(job.messages[index], uid=uid)


def _wait_until_settled(session: Session, path: FolderPath) -> None:
    """Wait until the folder's UIDNEXT stops moving (a bounded wait).

    The server may still be finishing the APPEND it was running when the connection
    dropped; what it stores then must be seen before anything is sent again, or it would
    be stored twice. A MULTIAPPEND lands all at once, so "not moving" means one quiet pause.
    """
    before = session.status(path, b"(UIDNEXT)")["UIDNEXT"]
    for _ in range(SETTLE_ROUNDS):
        time.sleep(SETTLE_SECONDS)
        after = session.status(path, b"(UIDNEXT)")["UIDNEXT"]
        if after == before:
            return
        before = after


def _claim(arrived: dict[str, list[str]], key: str, uid: str | None) -> str | None:
    """Remove ``uid`` (or, when None, the first uid) with ``key`` from ``arrived``; return it."""
    uids = arrived.get(key, [])
    if uid is None:
        return uids.pop(0) if uids else None
    if uid in uids:
        uids.remove(uid)
    return uid


def _retry_refused_keywords(session: Session, job: AppendJob) -> None:
    """Append again, less the keywords the folder cannot keep (PERMANENTFLAGS), messages refused with keywords."""
    refused = [i for i, r in enumerate(job.results) if r is not None and not r.ok and job.messages[i].flags.keywords]
    if not refused:
        return
    permanent = session.select(job.path, write=True, fresh=True).permanent_flags

    def kept(message: Message) -> list[str]:
        return permitted(flags_to_imap(message.flags), permanent)

    retry = [i for i in refused if kept(job.messages[i]) != flags_to_imap(job.messages[i].flags)]
    for index in retry:
        job.results[index] = None
    if retry:
        _append_pending(session, job, kept)


def set_flags(session: Session, path: FolderPath, uid: str, flags: Flags) -> None:
    """Replace the flags of message ``uid``; raise MessageError or FolderError."""
    session.select(path, write=True)
    names = flags_to_imap(flags)
    result = session.protocol.run(b"UID STORE " + uid.encode("ascii") + b" FLAGS.SILENT " + flag_list(names)).result
    if not result.ok:
        raise MessageError(
            f"cannot set the flags of message {uid} in {'/'.join(path)} on {session.where}: "
            f"the server said {result.said()!r}"
        )


def delete_messages(session: Session, path: FolderPath, uids: Sequence[str]) -> None:
    """Mark ``uids`` deleted and expunge them, and no other message; raise FolderError."""
    session.select(path, write=True)
    numbers = sorted(int(uid) for uid in uids)
    for start in range(0, len(numbers), DELETE_CHUNK):
        chunk = uid_set(numbers[start:start + DELETE_CHUNK])
        _expect(session, path, b"UID STORE " + chunk + b" +FLAGS.SILENT (\\Deleted)")
        if "UIDPLUS" in session.capabilities:
            _expect(session, path, b"UID EXPUNGE " + chunk)
    if "UIDPLUS" not in session.capabilities:
        _expunge_if_only_ours(session, path, set(numbers))


def _expunge_if_only_ours(session: Session, path: FolderPath, ours: set[int]) -> None:
    """EXPUNGE without UIDPLUS, unless it would also remove messages someone else marked deleted."""
    reply = session.protocol.run(b"UID SEARCH DELETED")
    session.check(reply.result, path)
    marked = {as_int(n) for response in reply.of_kind("SEARCH") for n in response.data}
    if not marked <= ours:
        raise FolderError(
            f"marked {len(ours)} messages deleted in {'/'.join(path)} on {session.where} but did not expunge them: "
            "other messages there are marked deleted too and the server cannot expunge by uid (no UIDPLUS)"
        )
    _expect(session, path, b"EXPUNGE")


def _expect(session: Session, path: FolderPath, command: bytes) -> None:
    session.check(session.protocol.run(command).result, path)

