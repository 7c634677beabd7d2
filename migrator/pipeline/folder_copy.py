"""Copy one folder: fetch each needed message once and write it to every target that lacks it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from migrator.core.display import plural, printable
from migrator.core.errors import ConnectionLost, FolderError, LimitReached, MessageError, StoreError
from migrator.core.folder import Folder, Role
from migrator.core.listing import Listing
from migrator.core.message import FolderPath, Message
from migrator.core.stopping import raise_if_stopping, uninterrupted
from migrator.pipeline.batches import LargeMessageGate, write_batches
from migrator.pipeline.filters import MessageFilter
from migrator.pipeline.labels import LabelRoutes, routed_plans
from migrator.pipeline.plan import PlanContext, TargetPlan, distrust, plan_target
from migrator.pipeline.progress import Progress
from migrator.pipeline.summary import Failure, Summary, place
from migrator.state.statefile import Pair, PairKey, StateStore
from migrator.stores.base import Elsewhere, FolderScan, Store

log = logging.getLogger(__name__)

# A message written to one target and failed on another counts as failed.
_SEVERITY = {"already there": 0, "copied": 1, "failed": 2}

# Targets that stage their writes (Maildir) are committed once this much has been staged:
# bench/, IMAP -> Maildir, 5 000 messages: commits of about 8 MB instead of each 2 MB batch
# took about a tenth off the client's CPU and 4 % off the run. Memory is not the limit:
# a staged message's bytes are let go as soon as its file is written.
COMMIT_BYTES = 8 * 1024 * 1024


class _Row(NamedTuple):
    """A message staged in one target, waiting for the commit that makes it durable."""

    uid: str
    target_uid: str | None
    content_key: str
    flags: str
    size: int

    def state_row(self) -> tuple[str, str | None, str, str]:
        """Return the row the state file records for the message."""
        return self.uid, self.target_uid, self.content_key, self.flags


class _Uncommitted:
    """What a folder copy wrote since its last commit: rows per target (by index), and each message's outcome."""

    __slots__ = ("rows", "messages", "size")

    def __init__(self) -> None:
        self.rows: dict[int, list[_Row]] = {}
        self.messages: list[tuple[str, int, str]] = []
        self.size = 0

    def add(self, uid: str, size: int, outcome: str) -> None:
        """Note a message of the source and its outcome so far ('copied', 'already there' or 'failed')."""
        self.messages.append((uid, size, outcome))
        self.size += size


class Deferred:
    """A target durable only once closed (PST): its rows wait in the state's ``hold`` until then."""

    __slots__ = ("plan", "version")

    def __init__(self, plan: TargetPlan) -> None:
        self.plan = plan
        self.version: str | None = None  # the source folder's version, once every message of it is written


@dataclass
class RunContext:
    """Everything a run shares across folders."""

    plan: PlanContext
    targets: Sequence[Store]
    destination: Callable[[Folder], tuple[FolderPath, Role | None]]
    message_filter: MessageFilter
    summary: Summary
    progress: Progress
    deferred: list[Deferred] = field(default_factory=list)
    large_messages: LargeMessageGate = field(default_factory=LargeMessageGate)
    labels: LabelRoutes | None = None  # a source whose folders are labels: where All Mail's messages go
    # The provider's limit that stopped the run, shared by its workers: the folders not started yet wait.
    limited: list[LimitReached] = field(default_factory=list)

    @property
    def state(self) -> StateStore | None:
        """Return the run's state file, or None for a run without one."""
        return self.plan.state


def copy_folder(run: RunContext, folder: Folder) -> list[TargetPlan]:
    """Copy one folder, counting it; a folder that fails is a failure of the run, not its end.

    A provider's limit (LimitReached) is the run's end, cleanly: what was copied is recorded, this
    folder's rest and every folder not started yet are counted as left for the next run.
    """
    if run.limited:
        run.summary.folders_left += 1
        return []
    copy = FolderCopy(run, folder)
    try:
        return copy.copy()
    except LimitReached as limit:
        log.info("folder %s: stopped: %s", printable(folder.name), limit)
        run.limited.append(limit)
        run.summary.stopped(limit, folder_started=copy.listed)
        return []
    except (FolderError, MessageError, ConnectionLost, StoreError) as error:
        unreadable = error.unreadable if isinstance(error, MessageError) else ()
        failures = [Failure(folder.name, reason, uid) for uid, reason in unreadable]
        for failure in failures or [Failure(folder.name, str(error))]:
            run.summary.fail(failure)
            run.progress.failed(failure)
        return []
    finally:
        run.summary.folders += 1


class FolderCopy:
    """The copy of one source folder into every target."""

    def __init__(self, run: RunContext, folder: Folder) -> None:
        self.run = run
        self.folder = folder
        self.source = run.plan.source
        self.plans: list[TargetPlan] = []
        self.copied = self.failed = 0
        self.listed = False  # its messages were listed: a stop counts them, not the folder, as left
        self.unlisted = 0  # messages a scan of changes left out: there, unchanged, since the last run
        self._handed = 0  # messages handed to the targets, written or not
        self._uncommitted = _Uncommitted()
        routes = run.labels
        self.routes = routes if routes is not None and folder.path == routes.all_mail.path else None
        self._labels: Mapping[str, frozenset[FolderPath]] = {}  # each message's labels, when routed
        # Where this batch wrote each message first in a target whose folders are labels, by target: the
        # batch's further folders in that target are labels added to it. One batch's messages at most.
        self._written: dict[int, dict[str, tuple[FolderPath, str]]] = {}

    def skip_if_unchanged(self) -> bool:
        """Count and report the folder as done and return True when no target needs anything of it."""
        unchanged = self._unchanged_since_last_run()
        if unchanged is None:
            return False
        self.run.summary.already_there += unchanged
        self.run.progress.folder_started(self.folder.name, 0, 0)
        self.run.progress.folder_done(self.folder.name, 0, 0)
        return True

    def copy(self) -> list[TargetPlan]:
        """Copy the folder; return its target plans (for deleting from the source afterwards)."""
        failures_before = len(self.run.summary.failures)
        plans = self._copy()
        version = self._version_copied()
        if version and len(self.run.summary.failures) == failures_before:
            for plan in plans:
                if plan.pair is None:
                    continue
                assert self.run.state is not None  # a pair comes from the state file
                if plan.store.durable_on_append:
                    self.run.state.set_version(plan.pair, version)
                else:
                    self._deferred(plan).version = version
        return plans

    def _version_copied(self) -> str | None:
        """Return what the state records as copied of the folder: its version, and the filter if one left mail out.

        A run that filtered copied part of the folder: only a run with the same filter may skip the folder by
        that record, while the record of a run without one lets any later run skip it (it copied everything).
        """
        if not self.folder.version:
            return None
        key = self.run.message_filter.key
        return f"{self.folder.version}|{key}" if key else self.folder.version

    def _unchanged_since_last_run(self) -> int | None:
        """Return the message count when every target holds the folder as it is now, else None.

        The source's folder version (IMAP: UIDNEXT, MESSAGES, HIGHESTMODSEQ...) comes with the
        folder list, so an unchanged folder costs no scan at all.
        """
        pairs = self._recorded_pairs()
        if pairs is None or any(p.version not in (self.folder.version, self._version_copied()) for p in pairs):
            return None
        if not self._targets_hold(pairs):
            return None
        assert self.run.state is not None  # pairs come from it
        return min((self.run.state.count(pair) for pair in pairs), default=0)

    def _changes_since_last_run(self) -> FolderScan | None:
        """Return a scan of what arrived or changed since the last run, when that is all that can need copying.

        Only after a run that copied the whole folder into every target (no filter): the version it
        recorded says each target holds every message the folder had then (``StateStore.set_version``),
        and the source can tell what changed since and that nothing left (``Store.scan_changes``).
        """
        pairs = self._recorded_pairs()
        if not pairs or not self.run.message_filter.is_open:
            return None
        since = pairs[0].version
        if not since or "|" in since or any(pair.version != since for pair in pairs) or not self._targets_hold(pairs):
            return None
        changes = self.source.scan_changes(self.folder.path, since)
        if changes is not None:
            log.info("folder %s: listing what changed since the last run; %s not listed, unchanged",
                     printable(self.folder.name), plural(changes.unlisted, "message"))
        return changes

    def _recorded_pairs(self) -> list[Pair] | None:
        """Return the state's pair of each target for this folder, or None when one is missing or was left dirty."""
        state = self.run.state
        if state is None or not self.folder.version or self.run.plan.dry_run or self.routes is not None:
            return None
        destination, _ = self.run.destination(self.folder)
        pairs = []
        for target in self.run.targets:
            pair = state.pair(PairKey(self.run.plan.source_name, self.folder.path, str(target.endpoint), destination))
            if pair is None or pair.dirty:
                return None
            pairs.append(pair)
        return pairs

    def _targets_hold(self, pairs: list[Pair]) -> bool:
        """Return True when each target still holds what the state says it wrote (one stat or status line each)."""
        assert self.run.state is not None  # pairs come from it
        for target, pair in zip(self.run.targets, pairs):
            if distrust(self.run.state, pair, pair.target_path, target.probe_folder(pair.target_path)) is not None:
                return False
        return True

    def _copy(self) -> list[TargetPlan]:
        validity, listed, refs = self._listing()
        self.plans = self._plan(listed, validity)
        del listed  # the plans have used it: a large folder's second listing need not stay for the copy
        todo = refs.where_uid(lambda uid: any(p.needs(uid) for p in self.plans))
        self.run.summary.already_there += len(refs) - len(todo) + self.unlisted
        if not self.run.plan.dry_run:
            self._carry_flag_changes(refs)
        log.info("folder %s: %d of %s to copy", printable(self.folder.name), len(todo), plural(len(refs), "message"))
        if self.run.plan.dry_run:
            size = self._count_dry(todo)
            self.run.progress.folder_started(self.folder.name, self.copied, size)
        else:
            self.run.progress.folder_started(self.folder.name, len(todo), todo.total_size())
            if todo:
                self._copy_messages(todo)
            self._settle()
        self._note_distrusted()
        self.run.progress.folder_done(self.folder.name, self.copied, self.failed)
        return self.plans

    def _plan(self, listed: Listing, validity: str) -> list[TargetPlan]:
        """Return a plan per target, or, for a labelled source's All Mail, per target and label destination."""
        if self.routes is not None:
            return routed_plans(self.run.plan, self.run.targets, self.routes, self.run.destination, self._labels,
                                listed, validity)
        destination = self.run.destination(self.folder)
        whole = None if self.unlisted else listed
        return [plan_target(self.run.plan, t, self.folder, destination, whole, validity) for t in self.run.targets]

    def _count_dry(self, todo: Listing) -> int:
        """Count what the real run would do with ``todo``: copy it, or find it in a target by content key.

        Return the size of what would be copied.
        """
        size = 0
        keys: dict[str, str] = {}
        if any(plan.present for plan in self.plans):  # only then does the real run look at content keys
            keys = {uid: key for key, uids in self.source.content_keys(self.folder.path).items() for uid in uids}
        for position in range(len(todo)):
            uid = todo.uid_at(position)
            writes = [plan for plan in self.plans if plan.needs(uid) and plan.take_present(keys.get(uid, "")) is None]
            if writes:
                self.copied += 1
                size += todo.size_at(position) or 0
            else:
                self.run.summary.already_there += 1
        self.run.summary.copied += self.copied
        self.run.summary.bytes += size
        return size

    def _note_distrusted(self) -> None:
        """Say in the summary which target folders the state described wrongly, and what was done about it."""
        for plan in self.plans:
            if plan.distrusted is not None:
                self.run.summary.note(
                    f"target folder {'/'.join(plan.folder)} in {plan.name} {plan.distrusted}: "
                    f"{self.copied} {'would be ' if self.run.plan.dry_run else ''}copied again")

    def _listing(self) -> tuple[str, Listing, Listing]:
        """Return the source folder's validity, all its messages, and those the run's filter accepts."""
        scan = self._changes_since_last_run() or self.source.scan(self.folder.path)
        self.listed = True
        self.unlisted = scan.unlisted
        self._refused(scan.refused)
        if self.routes is not None:
            if scan.labels is None:
                raise FolderError(f"{self.source.endpoint} listed {self.folder.name} without its messages' labels")
            self._labels = scan.labels
        listing, message_filter = Listing.of(scan.refs), self.run.message_filter
        if message_filter.is_open:
            return scan.validity, listing, listing
        accepted = listing.where(lambda r: message_filter.accepts(r.flags, r.size, r.received))
        self.run.summary.left_out += len(listing) - len(accepted)
        return scan.validity, listing, accepted

    def _refused(self, refused: Sequence[tuple[str, str]]) -> None:
        """Count each message the source will not read (a symbolic link in an archive) as failed."""
        for uid, reason in refused:
            failure = Failure(self.folder.name, reason, uid)
            self.run.summary.fail(failure)
            self.run.progress.failed(failure)
            self.failed += 1

    def _copy_messages(self, todo: Listing) -> None:
        stages = any(plan.store.stages_writes for plan in self.plans)
        batches = write_batches(self.source.fetch(self.folder.path, todo), todo, self.run.large_messages)
        try:
            for batch in batches:
                raise_if_stopping()  # a further worker's way of hearing of a signal; the main thread is raised in
                log.info("folder %s: writing a batch of %s, %d bytes", printable(self.folder.name),
                         plural(len(batch), "message"), sum(m.size for m in batch))
                accepted = [m for m in batch if self.run.message_filter.accepts(m.flags, m.size, m.received)]
                with self._whole():
                    self._write_batch(accepted)
                    del batch, accepted  # before the next is asked for, which may let another large message in
                    if self._uncommitted.size >= COMMIT_BYTES or not stages:
                        self._commit()
        except BaseException as error:
            # What was written before the error is kept, as when each batch was committed at once;
            # an error of this commit must not hide the first one (the rerun writes those again).
            with contextlib.suppress(Exception):
                self._commit()
            if isinstance(error, LimitReached):
                error.left += len(todo) - self._handed
            raise
        finally:
            batches.close()
        self._commit()

    def _whole(self) -> contextlib.AbstractContextManager[None]:
        """Return the context a batch is written, committed and recorded in: a stop signal waits until it is done.

        Half a batch staged, committed or recorded is what a kill leaves, for the next run to clean up;
        a signal need not. A PST alone is not waited for: a stopped run throws away what it wrote into
        one anyway, and rebuilding a large one can take minutes.
        """
        return uninterrupted() if any(p.store.durable_on_append for p in self.plans) else contextlib.nullcontext()

    def _write_batch(self, batch: list[Message]) -> None:
        outcome: dict[str, str] = {}
        self._written.clear()
        for index, plan in enumerate(self.plans):
            for uid, result in self._write_to(index, plan, batch).items():
                outcome[uid] = max(outcome.get(uid, "already there"), result, key=_SEVERITY.__getitem__)
        self._handed += len(batch)
        for message in batch:
            self._uncommitted.add(message.uid, message.size, outcome.get(message.uid, "already there"))
        self.run.progress.messages_done(len(batch), sum(m.size for m in batch))

    def _write_to(self, index: int, plan: TargetPlan, batch: list[Message]) -> dict[str, str]:
        """Stage the messages ``plan`` lacks; return 'copied' (once committed), 'already there' or 'failed' per uid."""
        outcome: dict[str, str] = {}
        to_write: list[Message] = []
        adopted = []
        for message in batch:
            if not plan.needs(message.uid):
                continue
            present_uid = plan.take_present(message.content_key, message.raw)
            if present_uid is not None:
                outcome[message.uid] = "already there"
                adopted.append((message.uid, present_uid, message.content_key, message.flags.encode()))
            else:
                to_write.append(message)
        if adopted:
            self.run.progress.adopted(self.folder.name, len(adopted))
        state = self.run.state
        if state is not None and plan.pair is not None:
            if adopted:
                state.record(plan.pair, adopted)
            if to_write and not plan.pair.dirty:
                plan.pair = state.mark_dirty(plan.pair, True)
        fresh, copies = self._elsewhere(plan, to_write)
        results = plan.store.stage_batch(plan.folder, fresh) if fresh else []
        results += plan.store.stage_copies(plan.folder, copies) if copies else []
        staged = self._uncommitted.rows.setdefault(index, [])
        written = self._written.get(id(plan.store))
        for result in results:
            message = result.message
            if result.ok and written is not None and result.uid:
                written.setdefault(message.uid, (plan.folder, result.uid))
            if result.ok:
                outcome[message.uid] = "copied"
                if result.warning:
                    self.run.summary.note(f"{place(self.folder.name, message.uid, None, plan.name)}: {result.warning}")
                staged.append(_Row(message.uid, result.uid, message.content_key, message.flags.encode(), message.size))
            else:
                outcome[message.uid] = "failed"
                self.run.summary.fail(self._failure(plan, result.error, message.uid, message.size))
        return outcome

    def _elsewhere(self, plan: TargetPlan, messages: list[Message]) -> tuple[list[Message], list[Elsewhere]]:
        """Return which of ``messages`` to write into ``plan``'s folder, and which its target holds already elsewhere.

        Only for All Mail's messages going into a target that links copies: a message written into
        another folder of it in this batch, or by an earlier run (a new label since), gets this
        folder's label (Gmail) or a hard link (Maildir) instead of a second upload.
        """
        if self.routes is None or not plan.store.links_copies:
            return messages, []
        written = self._written.setdefault(id(plan.store), {})
        fresh: list[Message] = []
        copies: list[Elsewhere] = []
        for message in messages:
            where = written.get(message.uid) or self._copied_before(plan, message.uid)
            if where is None:
                fresh.append(message)
            else:
                copies.append(Elsewhere(message, *where))
        return fresh, copies

    def _copied_before(self, plan: TargetPlan, uid: str) -> tuple[FolderPath, str] | None:
        """Return where an earlier run wrote message ``uid`` into another folder of ``plan``'s target, or None."""
        state = self.run.state
        for other in self.plans:
            if other is plan or other.store is not plan.store or other.pair is None or uid not in other.done:
                continue
            target_uid = state.target_uid(other.pair, uid) if state is not None else None
            if target_uid:
                return other.folder, target_uid
        return None

    def _commit(self) -> None:
        """Make what every target staged durable, record it, and count the messages written since the last commit."""
        with self._whole():
            self._commit_uncommitted()

    def _commit_uncommitted(self) -> None:
        uncommitted, self._uncommitted = self._uncommitted, _Uncommitted()
        lost: set[str] = set()
        for index, plan in enumerate(self.plans):
            failed = plan.store.commit_staged()
            rows = uncommitted.rows.get(index, [])
            for row in rows:
                if row.target_uid in failed:
                    lost.add(row.uid)
                    self.run.summary.fail(self._failure(plan, failed[row.target_uid], row.uid, row.size))
            self._record(plan, [row.state_row() for row in rows if row.target_uid not in failed])
        summary = self.run.summary
        for uid, size, result in uncommitted.messages:
            if result == "copied" and uid not in lost:
                summary.copied += 1
                summary.bytes += size
                self.copied += 1
            elif result == "already there":
                summary.already_there += 1
            else:
                self.failed += 1

    def _record(self, plan: TargetPlan, rows: list[tuple[str, str | None, str, str]]) -> None:
        if self.run.state is None or plan.pair is None or not rows:
            return
        if plan.store.durable_on_append:
            self.run.state.record(plan.pair, rows)
        else:
            self._deferred(plan)  # so that the run records the held rows once the target is closed
            self.run.state.hold(plan.pair, rows)

    def _settle(self) -> None:
        """Clear the dirty marks of targets whose every write of this folder is recorded, and note their size."""
        for plan in self.plans:
            if plan.pair is None:
                continue
            if self.copied:
                self._note_target(plan)
            if not plan.pair.dirty:
                continue
            if plan.store.durable_on_append:
                assert self.run.state is not None  # a pair comes from the state file
                plan.pair = self.run.state.mark_dirty(plan.pair, False)
            else:
                self._deferred(plan)  # its mark is cleared once the target is closed, as its rows are recorded

    def _note_target(self, plan: TargetPlan) -> None:
        """Record what the target says of the folder now that it holds this run's writes.

        A server may give a folder it has not made yet a provisional identity (Dovecot's INBOX and
        auto-created folders of a new account get their UIDVALIDITY on the first APPEND), and an
        mbox is measured by its size, which the writes grew.
        """
        assert self.run.state is not None and plan.pair is not None
        probe = plan.store.probe_folder(plan.folder)
        if probe is not None:
            plan.pair = self.run.state.set_target_identity(plan.pair, probe.identity, probe.size)

    def _deferred(self, plan: TargetPlan) -> Deferred:
        for deferred in self.run.deferred:
            if deferred.plan is plan:
                return deferred
        self.run.deferred.append(Deferred(plan))
        return self.run.deferred[-1]

    def _failure(self, plan: TargetPlan, error: str | None, uid: str, size: int) -> Failure:
        failure = Failure(self.folder.name, error or "unknown error", uid, size, plan.name)
        self.run.progress.failed(failure)
        return failure

    def _carry_flag_changes(self, refs: Listing) -> None:
        """Carry flags changed at the source since an earlier run to targets that can take them."""
        for plan in self.plans:
            if not plan.store.supports_flag_updates or plan.pair is None or self.run.state is None or not plan.done:
                continue
            changes = []
            for position in range(len(refs)):
                uid, flags = refs.uid_at(position), refs.flags_at(position)
                recorded, encoded = plan.done.flags(uid), flags.encode()
                if recorded is None or recorded == encoded:
                    continue
                target_uid = self.run.state.target_uid(plan.pair, uid)
                if not target_uid:
                    continue
                plan.store.set_flags(plan.folder, target_uid, flags)
                changes.append((uid, encoded))
            if plan.store.durable_on_append:
                self.run.state.update_flags(plan.pair, changes)
            else:  # recorded once the target is closed and the new flags are durable, as its rows are
                self.run.state.hold_flags(plan.pair, changes)
                self._deferred(plan)
            self.run.summary.flags_updated += len(changes)
            if changes:
                self.run.progress.flags_updated(self.folder.name, len(changes))
