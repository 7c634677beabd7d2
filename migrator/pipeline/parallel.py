"""Copy several folders at once, each on connections of its own.

One IMAP connection leaves the server's other cores idle and waits for every response
in turn; a few connections fetch and write different folders side by side. The calling
thread is the first worker, with the run's own stores and state connection. Each further
worker opens sibling stores and a state connection of its own when it takes its first
folder, and simply stops if a server refuses another connection: the others take its
folders. Source folders that go to the same target folder (a ``--map`` joining several)
are copied by one worker, one after another, so no two writers share a target folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence

from migrator.core.errors import MigratorError
from migrator.core.folder import Folder
from migrator.core.message import FolderPath
from migrator.pipeline.folder_copy import RunContext, copy_folder
from migrator.pipeline.plan import PlanContext, TargetPlan
from migrator.pipeline.progress import Progress
from migrator.pipeline.summary import Failure, Summary
from migrator.state.statefile import StateStore

# Seconds a stopped run waits for its helpers: a batch of 2 MB is written well within it, and systemd
# waits 90 s after SIGTERM before it kills.
STOP_WAIT = 30.0

log = logging.getLogger(__name__)


def copy_side_by_side(run: RunContext, folders: Sequence[Folder], connections: int) -> list[TargetPlan]:
    """Copy ``folders`` on up to ``connections`` workers; return every target plan."""
    groups = _by_destination(run, folders)
    workers = min(connections, len(groups)) if _can_share(run) else 1
    if workers <= 1:
        return [plan for group in groups for plan in _copy_group(run, group)]
    queue = _Queue(groups)
    progress = _SerialProgress(run.progress)
    helpers = [_Helper(run, progress, queue) for _ in range(workers - 1)]
    threads = [threading.Thread(target=h.work, name=f"connection-{n}", daemon=True) for n, h in enumerate(helpers, 2)]
    for thread in threads:
        thread.start()
    first = dataclasses.replace(run, progress=progress)
    plans: list[TargetPlan] = []
    try:
        plans += _copy_groups(first, queue)
        for thread in threads:
            thread.join()
        plans += _copy_groups(first, queue)  # folders given back by a helper that could not connect
    except KeyboardInterrupt:
        queue.stop()
        _wait_for_helpers(threads)
        raise
    except BaseException:
        queue.stop()  # helpers end after their current folder; a killed run is safe to rerun anyway
        raise
    for helper in helpers:
        if helper.error is not None:
            raise helper.error
        run.summary.add(helper.summary)
        plans += helper.plans
    return plans


def _wait_for_helpers(threads: list[threading.Thread]) -> None:
    """Give the helpers of a stopped run a while to finish their batch and close their stores."""
    # They stop before their next batch (raise_if_stopping). One that is still busy after the wait,
    # reading a large folder, say, ends with the process as if it were killed, which a rerun makes good.
    deadline = time.monotonic() + STOP_WAIT
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0))


def _can_share(run: RunContext) -> bool:
    """Return True when every store of the run can be opened again beside itself."""
    stores = [run.plan.source, *run.targets]
    return (
        not run.plan.dry_run
        and all(s.parallel_folders for s in stores)
        and all(t.durable_on_append for t in run.targets)
    )


def _by_destination(run: RunContext, folders: Sequence[Folder]) -> list[list[Folder]]:
    """Return the folders in groups that share a target folder, in the source's order."""
    groups: dict[FolderPath, list[Folder]] = {}
    for folder in folders:
        groups.setdefault(run.destination(folder)[0], []).append(folder)
    return list(groups.values())


def _copy_groups(run: RunContext, queue: _Queue) -> list[TargetPlan]:
    plans: list[TargetPlan] = []
    while (group := queue.take()) is not None:
        plans += _copy_group(run, group)
    return plans


def _copy_group(run: RunContext, group: list[Folder]) -> list[TargetPlan]:
    return [plan for folder in group for plan in copy_folder(run, folder)]


class _Queue:
    """The groups of folders not yet taken by a worker."""

    def __init__(self, groups: list[list[Folder]]) -> None:
        self._groups = deque(groups)
        self._lock = threading.Lock()
        self._stopped = False

    def take(self) -> list[Folder] | None:
        """Return the next group, or None when there is none or the run is stopping."""
        with self._lock:
            return None if self._stopped or not self._groups else self._groups.popleft()

    def give_back(self, group: list[Folder]) -> None:
        """Put back a group a worker could not copy, for another worker."""
        with self._lock:
            self._groups.appendleft(group)

    def stop(self) -> None:
        """Hand out no more groups."""
        with self._lock:
            self._stopped = True


class _Helper:
    """A further worker: sibling stores, its own state connection, its own counts."""

    def __init__(self, run: RunContext, progress: Progress, queue: _Queue) -> None:
        self.run = run
        self.progress = progress
        self.queue = queue
        self.summary = Summary()
        self.plans: list[TargetPlan] = []
        self.error: BaseException | None = None

    def work(self) -> None:
        """Copy groups until none is left; keep an unexpected error for the first worker to raise."""
        try:
            with contextlib.ExitStack() as stack:
                context: RunContext | None = None
                while (group := self.queue.take()) is not None:
                    if context is None:
                        context = self._open(stack, group)
                        if context is None:
                            return
                    self.plans += _copy_group(context, group)
        except BaseException as error:  # noqa: BLE001 - raised again by the first worker, after join
            self.error = error
            self.queue.stop()

    def _open(self, stack: contextlib.ExitStack, group: list[Folder]) -> RunContext | None:
        """Open this worker's stores and state; give ``group`` back and return None if that fails."""
        run = self.run
        try:
            source = stack.enter_context(run.plan.source.sibling())
            targets = [stack.enter_context(target.sibling()) for target in run.targets]
            state = StateStore(run.state.path) if run.state is not None else None
        except MigratorError as error:
            log.warning("copying on one connection fewer: %s", error)
            self.queue.give_back(group)
            return None
        if state is not None:
            stack.callback(state.close)
        plan = PlanContext(source, run.plan.source_name, state, dry_run=False)
        # Whatever else the run shares (its large-message gate) this worker shares too.
        return dataclasses.replace(run, plan=plan, targets=targets, summary=self.summary, progress=self.progress,
                                   deferred=[])


class _SerialProgress(Progress):
    """Passes each event on to ``inner``, one at a time, whichever worker reports it."""

    def __init__(self, inner: Progress) -> None:
        self.inner = inner
        self.lock = threading.Lock()

    def run_started(self, folders: int) -> None:
        with self.lock:
            self.inner.run_started(folders)

    def folder_started(self, folder: str, messages: int, size: int) -> None:
        with self.lock:
            self.inner.folder_started(folder, messages, size)

    def messages_done(self, count: int, size: int) -> None:
        with self.lock:
            self.inner.messages_done(count, size)

    def adopted(self, folder: str, count: int) -> None:
        with self.lock:
            self.inner.adopted(folder, count)

    def flags_updated(self, folder: str, count: int) -> None:
        with self.lock:
            self.inner.flags_updated(folder, count)

    def folder_done(self, folder: str, copied: int, failed: int) -> None:
        with self.lock:
            self.inner.folder_done(folder, copied, failed)

    def failed(self, failure: Failure) -> None:
        with self.lock:
            self.inner.failed(failure)

    def close(self) -> None:
        with self.lock:
            self.inner.close()
