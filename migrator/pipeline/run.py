"""A whole run: open the stores, copy every selected folder, make it durable, then delete if asked."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence

from migrator.core.errors import ConfigError
from migrator.core.folder import Folder
from migrator.core.message import FolderPath
from migrator.endpoints.endpoint import Endpoint
from migrator.endpoints.kinds import KINDS
from migrator.pipeline.folder_copy import FolderCopy, RunContext
from migrator.pipeline.labels import LabelRoutes, label_routes
from migrator.pipeline.options import CopyOptions
from migrator.pipeline.parallel import copy_side_by_side
from migrator.pipeline.plan import PlanContext, TargetPlan
from migrator.pipeline.progress import Progress
from migrator.pipeline.summary import Summary
from migrator.state.statefile import StateStore
from migrator.stores import Store, open_store

DAY = 86400.0


def run_copy(
    source: Endpoint,
    targets: Sequence[Endpoint],
    options: CopyOptions = CopyOptions(),
    state: StateStore | None = None,
    progress: Progress | None = None,
) -> Summary:
    """Copy ``source`` into every target and return the summary; raise MigratorError on fatal errors."""
    _check(source, targets, options, state)
    source, targets = _paced(source, options), [_paced(target, options) for target in targets]
    progress = progress or Progress()
    try:
        return _run(source, targets, options, state, progress)
    finally:
        progress.close()  # before an error is told: a progress bar left open would run into its line


def _run(source: Endpoint, targets: Sequence[Endpoint], options: CopyOptions, state: StateStore | None,
         progress: Progress) -> Summary:
    with contextlib.ExitStack() as stack:
        source_store = stack.enter_context(open_store(source, readonly=not options.deletes or options.dry_run))
        # Opening a target for writing creates it on disk, so the folder rules are checked against the
        # source first: a run stopped by a mistake in them leaves nothing behind.
        listed = source_store.list_folders()
        folders, routes = _selected(source_store, listed, options)
        target_stores = [open_store(t, readonly=options.dry_run) for t in targets]
        target_stack = stack.enter_context(contextlib.ExitStack())
        for store in target_stores:
            # A dry run reads the targets that exist, as the real run would, and creates none.
            if not options.dry_run or store.exists():
                target_stack.enter_context(store)
        run = _run_context(source_store, target_stores, options, state, progress)
        run.labels = routes
        run.summary.folders_left_out = sum(1 for folder in listed if folder.selectable) - len(folders) - (
            len(routes.labels) if routes is not None else 0)
        plans = copy_folders(run, folders, _connections(options, source, targets))
        target_stack.close()  # a PST becomes durable here, before its progress is recorded
        _note_waits(run.summary, [source_store, *target_stores])
        _record_deferred(run)
        if options.deletes and not options.dry_run:
            _delete_copied(run, plans, options)
    return run.summary


def _paced(endpoint: Endpoint, options: CopyOptions) -> Endpoint:
    """Return ``endpoint`` with the run's limits where it sets none of its own (its preset's come after both)."""
    return endpoint._replace(limits=endpoint.limits.over(options.limits)) if endpoint.is_server else endpoint


def _connections(options: CopyOptions, source: Endpoint, targets: Sequence[Endpoint]) -> int:
    """Return how many folders to copy at once: ``--connections``, at most what each server allows."""
    allowed = [e.pace.connections for e in (source, *targets) if e.is_server and e.pace.connections]
    return min([options.connections, *allowed])


def _note_waits(summary: Summary, stores: Sequence[Store]) -> None:
    """Say in the summary how long the run waited for each server: its limits, and the throttling it asked for."""
    for store in stores:
        pacing = store.pacing
        if pacing is None:
            continue
        server = store.endpoint.account
        if pacing.waited >= 0.05:
            summary.note(f"kept to the limits of {server}: waited {pacing.waited:.1f} s")
        throttled = pacing.waits.describe(server)
        if throttled:
            summary.note(throttled)


def _selected(source: Store, listed: list[Folder], options: CopyOptions) -> tuple[list[Folder], LabelRoutes | None]:
    """Return the source's folders to copy, and, for a source whose folders are labels (Gmail), where the
    messages of its All Mail go (see labels.py)."""
    if source.labels_are_folders:
        return label_routes(listed, options.rules, str(source.endpoint), source.endpoint.all_mail == "all")
    return options.rules.select(listed, str(source.endpoint)), None


def _check(source: Endpoint, targets: Sequence[Endpoint], options: CopyOptions, state: StateStore | None) -> None:
    if not targets:
        raise ConfigError("no target given: name at least one place to copy to")
    for target in targets:
        if not target.store_kind.can_be_target:
            raise ConfigError(f"{target} cannot be a target: it is {target.store_kind.description}")
        if target == source:
            raise ConfigError(f"{target} is both the source and a target")
    if options.deletes and not source.store_kind.can_delete:
        # Deleting is POP3's download-and-delete; emptying an IMAP account or an archive is never a side effect.
        deleting = ", ".join(name for name, kind in KINDS.items() if kind.can_delete)
        raise ConfigError(f"--delete applies to {deleting} sources only; {source} is {source.store_kind.description}, "
                          "and nothing is deleted from it")
    if options.deletes and state is None:
        raise ConfigError("deleting from the source needs the state file: drop --no-state")


def _run_context(source: Store, targets: list[Store], options: CopyOptions, state: StateStore | None,
                 progress: Progress) -> RunContext:
    plan = PlanContext(source, str(source.endpoint), state, options.dry_run)
    return RunContext(plan, targets, options.rules.destination, options.message_filter, Summary(), progress)


def copy_folders(run: RunContext, folders: Sequence[Folder], connections: int = 1) -> list[TargetPlan]:
    """Copy ``folders`` of the run's source, ``connections`` at once; return all target plans."""
    started = time.monotonic()
    run.progress.run_started(len(folders))
    changed = [folder for folder in folders if not FolderCopy(run, folder).skip_if_unchanged()]
    run.summary.folders += len(folders) - len(changed)
    plans = copy_side_by_side(run, changed, connections)
    run.summary.seconds = time.monotonic() - started
    return plans


def _record_deferred(run: RunContext) -> None:
    """Record the writes of targets that became durable on close, and clear their dirty marks."""
    if run.state is None:
        return
    for deferred in run.deferred:
        if deferred.plan.pair is not None:
            run.state.record_held(deferred.plan.pair)
            run.state.mark_dirty(deferred.plan.pair, False)
            if deferred.version is not None:
                run.state.set_version(deferred.plan.pair, deferred.version)


def _delete_copied(run: RunContext, plans: list[TargetPlan], options: CopyOptions) -> None:
    """Delete from the source what every target holds durably (and, with keep_days, long enough)."""
    assert run.state is not None  # checked before the run: deleting needs the state file
    by_folder: dict[FolderPath, list[TargetPlan]] = {}
    for plan in plans:
        by_folder.setdefault(plan.source_folder, []).append(plan)
    cutoff = time.time() - (options.keep_days or 0) * DAY
    for folder, folder_plans in by_folder.items():
        uids = _copied_everywhere(run.state, folder_plans, cutoff)
        if uids:
            run.plan.source.delete(folder, uids)
            run.summary.deleted += len(uids)


def _copied_everywhere(state: StateStore, plans: list[TargetPlan], cutoff: float) -> list[str]:
    """Return the uids every plan's target holds durably since before ``cutoff``."""
    common: set[str] | None = None
    for plan in plans:
        if plan.pair is None:
            return []
        done = state.copied_before(plan.pair, cutoff)
        common = done if common is None else common & done
    return sorted(common or ())
