"""For one source folder and one target: where its messages go and which are already there.

A plan starts from the state file (messages copied by earlier runs) and, where the state
cannot be trusted alone, from the target's content keys: on the first copy into a pair
(a half-finished manual copy must not be duplicated) and after a run was killed while
writing into the pair (it is still marked dirty). Messages found there are adopted
instead of written again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from migrator.copied import CopiedMessages
from migrator.folder import Folder, Role
from migrator.message import FolderPath
from migrator.state import Pair, StateStore
from migrator.stores.base import Store


@dataclass
class TargetPlan:
    """One target of one folder: its path there, what is done, and what it already holds."""

    store: Store
    name: str
    source_folder: FolderPath
    folder: FolderPath
    pair: Pair | None = None
    done: CopiedMessages = field(default_factory=CopiedMessages)
    present: dict[str, list[str]] = field(default_factory=dict)

    def needs(self, uid: str) -> bool:
        """Return True when the source message ``uid`` is not yet in this target."""
        return uid not in self.done

    def take_present(self, key: str) -> str | None:
        """Return the target uid of an unclaimed message with this content key and claim it, or None."""
        uids = self.present.get(key)
        if not uids:
            return None
        return uids.pop()


@dataclass(frozen=True)
class PlanContext:
    """What every plan of a run needs to know."""

    source: Store
    source_name: str
    state: StateStore | None
    dry_run: bool


def plan_target(ctx: PlanContext, target: Store, folder: Folder, destination: tuple[FolderPath, Role | None],
                validity: str) -> TargetPlan:
    """Return the plan for copying ``folder`` into ``target`` at ``destination`` (path, role to look for)."""
    target_path, role = destination
    name = str(target.endpoint)
    if ctx.dry_run:
        return _dry_plan(ctx, target, folder, name, target_path)
    path = target.ensure_folder(target_path, role)
    plan = TargetPlan(target, name, folder.path, path)
    if ctx.state is not None:
        plan.pair = ctx.state.open_pair(ctx.source_name, folder.path, name, path, validity)
        if plan.pair.validity != validity:
            plan.pair = _renumber(ctx, plan.pair, folder, validity)
        plan.done = ctx.state.copied(plan.pair)
        if plan.done and plan.pair.dirty:
            plan.present = _unclaimed(target.content_keys(path), ctx.state.recorded(plan.pair))
    if not plan.done:
        plan.present = target.content_keys(path)
    return plan


def _dry_plan(ctx: PlanContext, target: Store, folder: Folder, name: str, path: FolderPath) -> TargetPlan:
    plan = TargetPlan(target, name, folder.path, path)
    pair = ctx.state.pair(ctx.source_name, folder.path, name) if ctx.state else None
    if pair is not None:
        plan.done = ctx.state.copied(pair)
    return plan


def _renumber(ctx: PlanContext, pair: Pair, folder: Folder, validity: str) -> Pair:
    """Carry state rows across a change of the source's UIDVALIDITY by content key."""
    assert ctx.state is not None
    by_key = ctx.source.content_keys(folder.path)
    new_uids: dict[str, str] = {}
    for uid, _, key in ctx.state.recorded(pair):
        candidates = by_key.get(key)
        if candidates:
            new_uids[uid] = candidates.pop()
    return ctx.state.renumber(pair, validity, new_uids)


def _unclaimed(present: dict[str, list[str]], recorded: Iterable[tuple[str, str | None, str]]) -> dict[str, list[str]]:
    """Return the target's messages by content key, ``present`` (changed in place), less those the state's
    ``recorded`` rows (uid, target uid, content key) already account for."""
    for _, target_uid, key in recorded:
        uids = present.get(key)
        if not uids:
            continue
        if target_uid in uids:
            uids.remove(target_uid)
        else:
            uids.pop()
    return present
