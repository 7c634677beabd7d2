"""Writing to folders: pipelined APPENDs, flag changes, deletions.

Messages go out in MULTIAPPEND groups when the server offers MULTIAPPEND (one transaction
per group), else one APPEND each; commands are sent without waiting for each other (with
LITERAL+ not even for the server's ``+``), at most APPEND_WINDOW unanswered at a time.
A batch is done, and durable, when every tagged reply is in.

What a server refuses or changes costs that server's capability, never a message. The
folder is opened read-write first: some servers refuse an APPEND into the mailbox the
connection has open read-only. A message refused while it carried keywords is sent again
with system flags only, and the folder is then sent only keywords it took before. One
FETCH of the new messages shows the flags the server did not keep, which are set again
with STORE, and a received date it replaced with its own, which is told once a run.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from migrator.core.contentkey import changed_keys
from migrator.core.errors import FolderError, MessageError
from migrator.core.message import Flags, FolderPath, Message
from migrator.stores.base import AppendResult
from migrator.stores.imap.commands import Literal, astring, flag_list, internaldate, message_literal, uid_set
from migrator.stores.imap.flags import flags_to_imap
from migrator.stores.imap.parser import ParseError, Value, appended_uids, as_int, flag_names
from migrator.stores.imap.parser import internaldate as parse_internaldate
from migrator.stores.imap.protocol import Command
from migrator.stores.imap.reading import content_keys, fetched
from migrator.stores.imap.session import Session

APPEND_WINDOW = 64  # unanswered APPEND commands at a time: keeps the server's replies flowing
MULTIAPPEND_MESSAGES = 100  # messages per MULTIAPPEND: one server transaction, 4x faster on Dovecot
MULTIAPPEND_BYTES = 8 * 1024 * 1024  # and about this many bytes, so a refused group is cheap to resend
SETTLE_SECONDS = 1.0  # after a lost connection: the pause that shows the server has finished the old APPENDs
SETTLE_ROUNDS = 5
DELETE_CHUNK = 500  # uids per STORE/EXPUNGE command, to keep command lines short
_KEPT_ITEMS = b"(UID FLAGS INTERNALDATE)"


class ServerQuirks:
    """What a server refused or changed in APPENDs, kept for the rest of the run by a store and its siblings.

    ``refused_keywords`` holds, per folder, the server's words when it refused a message with
    keywords and took it without them; ``taken_keywords`` the keywords each folder did take.
    ``own_dates`` is True once the run was told that the server keeps dates of its own.
    """

    __slots__ = ("refused_keywords", "taken_keywords", "own_dates")

    def __init__(self) -> None:
        self.refused_keywords: dict[FolderPath, str] = {}
        self.taken_keywords: dict[FolderPath, set[str]] = {}
        self.own_dates = False


@dataclass
class AppendJob:
    """One append_batch call, kept across reconnections.

    ``sent`` holds the indexes of messages whose APPEND went out; ``first_new_uid`` is
    the folder's UIDNEXT before the first one did, so that after a lost connection the
    messages that arrived though their reply was lost can be recognised. ``flags`` holds
    the flags each message was last sent with; ``bare`` the messages to send without
    keywords and ``undated`` those to send without a date, after the server refused them;
    ``refusals`` what it said each time, with whether the message went with keywords and
    with its date; ``warnings`` what else a written message lost.
    """

    path: FolderPath
    messages: Sequence[Message]
    quirks: ServerQuirks = field(default_factory=ServerQuirks)
    results: list[AppendResult | None] = field(default_factory=list)
    sent: set[int] = field(default_factory=set)
    first_new_uid: int | None = None
    flags: dict[int, list[str]] = field(default_factory=dict)
    refusals: dict[int, list[tuple[str, bool, bool]]] = field(default_factory=dict)
    bare: set[int] = field(default_factory=set)
    undated: set[int] = field(default_factory=set)
    warnings: dict[int, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.results = [None] * len(self.messages)

    def finished(self) -> list[AppendResult]:
        """Return the results, every message having one, each written message with what it lost."""
        finished = []
        for index, result in enumerate(self.results):
            assert result is not None
            warnings = [*self._lost(index), *self.warnings.get(index, [])] if result.ok else []
            finished.append(result._replace(warning="; ".join(warnings)) if warnings else result)
        return finished

    def outgoing(self, index: int) -> tuple[bytes, list[str], datetime | None]:
        """Return what to send of message ``index``: its bytes, its flags less the keywords the folder
        refuses, and its date unless the server refused it."""
        message = self.messages[index]
        names = flags_to_imap(message.flags)
        if index in self.bare:
            names = [name for name in names if name.startswith("\\")]
        elif self.path in self.quirks.refused_keywords:
            taken = self.quirks.taken_keywords.get(self.path, set())
            names = [name for name in names if name.startswith("\\") or name in taken]
        self.flags[index] = names
        return message.raw, names, None if index in self.undated else message.received

    def taken(self, index: int) -> None:
        """Note that the folder took message ``index``: with the keywords it was sent with."""
        keywords = [name for name in self.flags.get(index, []) if not name.startswith("\\")]
        if keywords:
            self.quirks.taken_keywords.setdefault(self.path, set()).update(keywords)
        if index in self.bare:
            # Taken once its keywords were left out, having been refused with them: they were the trouble.
            self.quirks.refused_keywords.setdefault(self.path, self._refusal(index, with_keywords=True))

    def refused(self, index: int, said: str) -> None:
        """Note that the server refused message ``index``, saying ``said``."""
        with_keywords = _has_keywords(self.flags.get(index, []))
        self.refusals.setdefault(index, []).append((said, with_keywords, index not in self.undated))
        self.results[index] = AppendResult(self.messages[index], error=f"the server said {said!r}")

    def fall_back(self, index: int) -> bool:
        """Leave out of refused message ``index`` what the server may have refused it for, next: its
        keywords, else its date (keywords back), else both; return False when nothing is left to leave out."""
        with_keywords = _has_keywords(self.flags.get(index, []))
        if index not in self.undated and with_keywords:
            self.bare.add(index)
        elif index not in self.undated:
            self.bare.discard(index)
            self.undated.add(index)
        elif with_keywords:
            self.bare.add(index)
        else:
            return False
        return True

    def warn(self, index: int, warning: str) -> None:
        """Note what message ``index`` lost though it was written."""
        self.warnings.setdefault(index, []).append(warning)

    def _lost(self, index: int) -> list[str]:
        """Return what message ``index`` was written without, and why: keywords, its date."""
        lost = [name for name in flags_to_imap(self.messages[index].flags) if name not in self.flags.get(index, [])]
        warnings = []
        if lost and index in self.flags:
            if index in self.bare:
                why = f"the server refused it with them, saying {self._refusal(index, with_keywords=True)!r}"
            else:
                why = f"the server refused keywords in this folder, saying {self.quirks.refused_keywords[self.path]!r}"
            warnings.append(f"written without the keywords {' '.join(lost)}: {why}")
        if index in self.undated:
            warnings.append(f"written with the server's date, not {_shown(self.messages[index].received)}: "
                            f"the server refused it with that date, saying {self._refusal(index, dated=True)!r}")
        return warnings

    def _refusal(self, index: int, *, with_keywords: bool = False, dated: bool = False) -> str:
        """Return the server's words the last time it refused message ``index`` sent with keywords, or with its date."""
        return next(said for said, had_keywords, had_date in reversed(self.refusals[index])
                    if (had_keywords or not with_keywords) and (had_date or not dated))


def append_messages(session: Session, job: AppendJob) -> None:
    """APPEND every message of ``job`` that has no result yet; raise ConnectionLost or FolderError."""
    _recover_unconfirmed(session, job)
    if job.first_new_uid is None:
        job.first_new_uid = session.status(job.path, b"(UIDNEXT)")["UIDNEXT"]
    _append_pending(session, job)
    _retry_refused(session, job)
    _restore_what_was_not_kept(session, job)


def _append_pending(session: Session, job: AppendJob) -> None:
    """APPEND the messages without a result: in MULTIAPPEND groups when the server has them.

    A group the server refuses is all or nothing (RFC 3502), and says nothing of which
    message was at fault: its messages are then sent again one by one.
    """
    session.select(job.path, write=True)
    pending = [i for i, result in enumerate(job.results) if result is None]
    most = MULTIAPPEND_MESSAGES if "MULTIAPPEND" in session.capabilities else 1
    refused = _send_groups(session, job, _groups(pending, job.messages, most))
    _send_groups(session, job, [[index] for index in refused])


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


def _send_groups(session: Session, job: AppendJob, groups: list[list[int]]) -> list[int]:
    """Send one APPEND per group, at most APPEND_WINDOW unanswered; return the indexes of refused groups."""
    name = session.server_name(job.path)
    window: deque[tuple[list[int], Command]] = deque()
    refused: list[int] = []
    for group in groups:
        job.sent.update(group)
        parts = append_command(name, [job.outgoing(i) for i in group])
        window.append((group, session.protocol.send(*parts)))
        if len(window) >= APPEND_WINDOW:
            refused += _settle(session, job, *window.popleft())
    while window:
        refused += _settle(session, job, *window.popleft())
    return refused


def append_command(mailbox: str, messages: Sequence[tuple[bytes, list[str], datetime | None]]) -> list[bytes | Literal]:
    """Return the parts of ``APPEND mailbox (flags) "date" {size}...`` for (raw message, flags, date) triples.

    Each message goes with CRLF line ends, the only ones IMAP knows (RFC 3501): some servers
    refuse a bare LF, the others store it as CRLF.
    """
    parts: list[bytes | Literal] = [b"APPEND ", astring(mailbox)]
    for raw, flags, received in messages:
        date = b"" if received is None else internaldate(received) + b" "
        parts.append(b" " + (flag_list(flags) + b" " if flags else b"") + date)
        parts.append(message_literal(raw))
    return parts


def _settle(session: Session, job: AppendJob, group: list[int], command: Command) -> list[int]:
    """Record the outcome of one APPEND; return the group's indexes when a group was refused."""
    for _ in session.protocol.untagged(command):
        pass  # EXISTS and the like, for a selected folder (or none at all): nothing to keep
    result = command.result
    assert result is not None
    if not result.ok:
        if len(group) > 1:
            return group
        job.refused(group[0], result.said())
        return []
    uids: Sequence[int | None] | None = appended_uids(result)
    if uids is None or len(uids) != len(group):
        uids = [None] * len(group)
    for index, uid in zip(group, uids):
        job.results[index] = AppendResult(job.messages[index], uid=None if uid is None else str(uid))
        job.taken(index)
    return []


def _retry_refused(session: Session, job: AppendJob) -> None:
    """Send again each message the server refused, less what it may have refused it for.

    First its keywords (a limit per folder, a BAD for any keyword), then its date instead (a
    date before 1970), then both: whatever the server said, which it words as it likes, the
    message is worth a few round trips. Once one is taken without its keywords, the folder is
    sent no keyword it has not taken already, so later messages pay no round trip for it.
    """
    while refused := [i for i, r in enumerate(job.results) if r is not None and not r.ok and job.fall_back(i)]:
        for index in refused:
            job.results[index] = None
        _append_pending(session, job)


def _has_keywords(names: list[str]) -> bool:
    return any(not name.startswith("\\") for name in names)


def _restore_what_was_not_kept(session: Session, job: AppendJob) -> None:
    """Set again the flags the server did not keep from APPEND; note a received date it did not keep.

    Some servers store no flags given in APPEND (a STORE afterwards works), or take the
    received date from the Date: header. Only messages the server numbered (APPENDUID)
    are looked at, in one FETCH.
    """
    written = {int(r.uid): i for i, r in enumerate(job.results) if r is not None and r.ok and r.uid and r.uid.isdigit()}
    if not written:
        return
    session.select(job.path, write=True)
    # RFC 3501 (6.3.11) lets a server announce what was appended to the selected folder only at the client's next
    # NOOP, and Courier does: until then a FETCH or STORE of the new uids gets OK and does nothing.
    session.protocol.run(b"NOOP")
    lacking: dict[tuple[str, ...], list[int]] = {}
    for items in fetched(session, job.path, uid_set(written), _KEPT_ITEMS):
        uid = as_int(items["UID"])
        if uid not in written:
            continue
        missing = _missing_flags(job.flags.get(written[uid], []), items.get("FLAGS"))
        if missing:
            lacking.setdefault(missing, []).append(uid)
        if written[uid] not in job.undated:
            _compare_date(job, written[uid], items.get("INTERNALDATE"))
    for names, uids in lacking.items():
        _store_flags(session, job, names, {uid: written[uid] for uid in uids})


def _missing_flags(sent: list[str], kept: Value) -> tuple[str, ...]:
    """Return the flags of ``sent`` that the FETCH FLAGS item ``kept`` lacks (none when it is not there)."""
    if not isinstance(kept, list):
        return ()
    have = {name.lower() for name in flag_names(kept)}
    return tuple(name for name in sent if name.lower() not in have)


def _store_flags(session: Session, job: AppendJob, names: tuple[str, ...], indexes: dict[int, int]) -> None:
    """Add ``names`` to the messages ``indexes`` (uid: job index); warn of each when the server refuses."""
    result = session.protocol.run(b"UID STORE " + uid_set(indexes) + b" +FLAGS.SILENT " + flag_list(names)).result
    if result.ok:
        return
    for index in indexes.values():
        job.warn(index, f"the server did not keep the flags {' '.join(names)} given with it, and refused to set "
                        f"them afterwards, saying {result.said()!r}")


def _compare_date(job: AppendJob, index: int, stored: Value) -> None:
    """Tell once a run that the server keeps received dates of its own, if message ``index`` shows it."""
    if job.quirks.own_dates or stored is None:
        return
    try:
        kept = parse_internaldate(stored)
    except ParseError:
        return  # an unreadable date is the reader's problem, not a reason to fail what was written
    given = job.messages[index].received
    if abs((kept - given).total_seconds()) < 1:
        return
    job.quirks.own_dates = True
    job.warn(index, f"the server keeps received dates (INTERNALDATE) of its own, not those given: it holds "
                    f"{_shown(kept)} for {_shown(given)} (told once a run; other messages may differ too)")


def _shown(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %z")


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
            _claim(arrived, result.message, result.uid)
    for index in unconfirmed:
        uid = _claim(arrived, job.messages[index], None)
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


def _claim(arrived: dict[str, list[str]], message: Message, uid: str | None) -> str | None:
    """Remove ``uid`` (or, when None, the first uid) of ``message`` from ``arrived``; return it.

    The message is known by its content key, or by one the server gave it by changing it.
    """
    for key in _keys(message):
        uids = arrived.get(key, [])
        if uid is None and uids:
            return uids.pop(0)
        if uid is not None and uid in uids:
            uids.remove(uid)
            return uid
    return uid


def _keys(message: Message) -> Iterator[str]:
    yield message.content_key
    yield from changed_keys(message.raw)


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

