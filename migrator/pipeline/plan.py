"""For one source folder and one target: where its messages go and which are already there.

A plan starts from the state file (messages copied by earlier runs) and, where the state
cannot be trusted alone, from the target's content keys: on the first copy into a pair
(a half-finished manual copy must not be duplicated), after a run was killed between a
write and its record (pending rows), and after the source renumbered its folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from migrator.folder import Folder, Role
from migrator.message import FolderPath
from migrator.state import CopiedEntry, Pair, StateStore
from migrator.stores.base import Store


@dataclass
class TargetPlan:
    """One target of one folder: its path there, what is done, and what it already holds."""

    store: Store
    name: str
    source_folder: FolderPath
    folder: FolderPath
    pair: Pair | None = None
    done: dict[str, CopiedEntry] = field(default_factory=dict)
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
    entries: dict[str, CopiedEntry] = {}
    if ctx.state is not None:
        plan.pair = ctx.state.open_pair(ctx.source_name, folder.path, name, path, validity)
        if plan.pair.validity != validity:
            plan.pair = _renumber(ctx, plan.pair, folder, validity)
        entries = ctx.state.entries(plan.pair)
    if not entries or not all(e.done for e in entries.values()):
        plan.present = _unclaimed(target.content_keys(path), entries)
        _resolve_pending(ctx, plan, entries)
    plan.done = {uid: e for uid, e in entries.items() if e.done}
    return plan


def _dry_plan(ctx: PlanContext, target: Store, folder: Folder, name: str, path: FolderPath) -> TargetPlan:
    plan = TargetPlan(target, name, folder.path, path)
    pair = ctx.state.pair(ctx.source_name, folder.path, name) if ctx.state else None
    if pair is not None:
        plan.done = {uid: e for uid, e in ctx.state.entries(pair).items() if e.done}
    return plan


def _renumber(ctx: PlanContext, pair: Pair, folder: Folder, validity: str) -> Pair:
    """Carry state rows across a change of the source's UIDVALIDITY by content key."""
    assert ctx.state is not None
    by_key = ctx.source.content_keys(folder.path)
    new_uids: dict[str, str] = {}
    for uid, entry in ctx.state.entries(pair).items():
        candidates = by_key.get(entry.content_key)
        if candidates:
            new_uids[uid] = candidates.pop()
    return ctx.state.renumber(pair, validity, new_uids)


def _unclaimed(keys: dict[str, list[str]], entries: dict[str, CopiedEntry]) -> dict[str, list[str]]:
    """Return the target's messages by content key, less those the state already accounts for."""
    present = {key: list(uids) for key, uids in keys.items()}
    for entry in entries.values():
        uids = present.get(entry.content_key)
        if not entry.done or not uids:
            continue
        if entry.target_uid in uids:
            uids.remove(entry.target_uid)
        else:
            uids.pop()
    return present


def _resolve_pending(ctx: PlanContext, plan: TargetPlan, entries: dict[str, CopiedEntry]) -> None:
    """Settle rows left pending by a killed run: found in the target means done, else copy again."""
    assert ctx.state is not None or not entries
    found, lost = [], []
    for uid, entry in entries.items():
        if entry.done:
            continue
        tuid = plan.take_present(entry.content_key)
        if tuid is None:
            lost.append(uid)
        else:
            found.append((uid, tuid, entry.content_key, entry.flags))
            entries[uid] = CopiedEntry(tuid, entry.content_key, entry.flags, True, entry.copied_at)
    if ctx.state is not None and plan.pair is not None:
        ctx.state.adopt(plan.pair, found)
        ctx.state.forget(plan.pair, lost)
    for uid in lost:
        del entries[uid]
