"""For one source folder and one target: where its messages go and which are already there.

A plan starts from the state file (messages copied by earlier runs), but only once the target
has confirmed it: the state is a cache, the target the truth. The pair is found by where the
folder rules send the folder, so a changed map starts afresh; and the target folder must still be
the one written to (same identity, at least as many messages, no smaller) or the pair's rows are
forgotten and the target is read by content key like a folder never copied to.

The target's content keys are read where the state cannot be trusted alone: on the first copy
into a pair (a half-finished manual copy must not be duplicated), after a run was killed while
writing into the pair (it is still marked dirty), and after the target folder was found changed.
Messages found there are adopted instead of written again; so are source messages that are new
to the state but whose copies the state already knows under uids the source no longer has (a
source emptied and filled again with the same mail).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from migrator.core.contentkey import changed_keys
from migrator.core.folder import Folder, Role
from migrator.core.listing import Listing
from migrator.core.message import FolderPath
from migrator.state.copied import CopiedMessages
from migrator.state.statefile import Pair, PairKey, StateStore, folder_key
from migrator.stores.base import FolderProbe, Store


@dataclass
class TargetPlan:
    """One target of one folder: its path there, what is done, and what it already holds.

    ``distrusted`` says why the state's rows for this target were set aside (the target folder
    was deleted, re-created, emptied...), for the run's summary; it is None when they held.
    ``wanted`` holds the messages the plan is for when the folder's messages go to several
    folders of one target (a labelled source's All Mail, see labels.py); None is every message.
    """

    store: Store
    name: str
    source_folder: FolderPath
    folder: FolderPath
    pair: Pair | None = None
    done: CopiedMessages = field(default_factory=CopiedMessages)
    present: dict[str, list[str]] = field(default_factory=dict)
    distrusted: str | None = None
    wanted: CopiedMessages | None = None  # the messages this plan copies, where not all (a label's)

    def needs(self, uid: str) -> bool:
        """Return True when the source message ``uid`` goes to this target and is not yet there."""
        return uid not in self.done and (self.wanted is None or uid in self.wanted)

    def take_present(self, key: str, raw: bytes | None = None) -> str | None:
        """Return the target uid of an unclaimed message with this content key and claim it, or None.

        Given the message's bytes, a copy the target server changed as some do is found too (see
        ``changed_keys``), rather than written a second time.
        """
        uids = self.present.get(key)
        if not uids and raw is not None and self.present:
            uids = next((found for other in changed_keys(raw) if (found := self.present.get(other))), None)
        return uids.pop() if uids else None


class PlanContext(NamedTuple):
    """What every plan of a run needs to know."""

    source: Store
    source_name: str
    state: StateStore | None
    dry_run: bool


def plan_target(ctx: PlanContext, target: Store, folder: Folder, destination: tuple[FolderPath, Role | None],
                listing: Listing | None, validity: str) -> TargetPlan:
    """Return the plan for copying ``folder`` (whose messages ``listing`` holds, unfiltered) into ``target``.

    ``destination`` is where the folder rules send it (path, role to look for). ``listing`` is None
    when only what changed since the last run was listed, and the source said no message left. A dry
    run creates nothing and records nothing, and plans exactly what the real run would do.
    """
    target_path, role = destination
    if ctx.dry_run:
        path = target.resolve_folder(target_path, role) if target.exists() else None
    else:
        path = target.ensure_folder(target_path, role)
    plan = TargetPlan(target, str(target.endpoint), folder.path, path or target_path)
    probe = target.probe_folder(path) if path is not None else None
    if ctx.state is not None:
        _plan_from_state(ctx, plan, PairKey(ctx.source_name, folder.path, plan.name, target_path), probe,
                         listing, validity)
    if probe is not None and not plan.done:
        plan.present = target.content_keys(plan.folder)
    return plan


def _plan_from_state(ctx: PlanContext, plan: TargetPlan, key: PairKey, probe: FolderProbe | None,
                     listing: Listing | None, validity: str) -> None:
    state = ctx.state
    assert state is not None
    known = state.pair(key)
    plan.distrusted = distrust(state, known, plan.folder, probe) if known is not None else None
    if ctx.dry_run:
        if known is not None and plan.distrusted is None and known.validity == validity:
            plan.pair = known
            plan.done = state.copied(known)
            if plan.done and known.dirty:  # a killed run's writes, as the real run finds them
                plan.present = _unclaimed(plan.store.content_keys(plan.folder), state.recorded(known))
            _adopt_leftovers(ctx, plan, listing)
        return
    pair = state.open_pair(key, plan.folder, validity)
    if plan.distrusted is not None:
        pair = state.forget(pair)
    if probe is not None:
        pair = state.set_target_identity(pair, probe.identity, probe.size)
    if pair.validity != validity:
        pair = _renumber(ctx, pair, plan.source_folder, validity)
    plan.pair = pair
    plan.done = state.copied(pair)
    if plan.done and pair.dirty:
        plan.present = _unclaimed(plan.store.content_keys(plan.folder), state.recorded(pair))
    _adopt_leftovers(ctx, plan, listing)


def distrust(state: StateStore, pair: Pair, folder: FolderPath, probe: FolderProbe | None) -> str | None:
    """Return why the state's rows for ``pair`` cannot be trusted, as the target now shows ``folder``, or None."""
    recorded = state.count(pair)
    if recorded == 0:
        return None  # nothing recorded, nothing to trust: an identity of an empty pair may change at will
    if pair.target_folder and pair.target_folder != folder_key(folder):
        return "is another folder than the one written to before"
    if probe is None:
        return "is gone"
    if pair.target_identity and probe.identity != pair.target_identity:
        return "was deleted and created again"
    if probe.messages is not None and probe.messages < recorded:
        return f"holds {probe.messages} messages where {recorded} were copied"
    if probe.size is not None and pair.target_size is not None and probe.size < pair.target_size:
        return "is smaller than when it was last written"
    return None


def _adopt_leftovers(ctx: PlanContext, plan: TargetPlan, listing: Listing | None) -> None:
    """Offer the target copies of messages the source no longer lists for adoption by content key.

    A source emptied and filled again with the same mail lists it under new uids; the copies
    made of it before are in the target already. A source that deletes what it delivered (POP3)
    is left out: what it delivers later is new mail, however alike. Without a listing no message left.
    """
    if listing is None or ctx.source.endpoint.store_kind.can_delete or len(plan.done) == 0 or ctx.state is None:
        return
    still_listed = sum(1 for uid in listing.uids() if uid in plan.done)
    if still_listed == len(plan.done):
        return
    assert plan.pair is not None  # both callers set it first
    listed = CopiedMessages((uid, "") for uid in listing.uids())
    gone = [(uid, target_uid, key) for uid, target_uid, key in ctx.state.recorded(plan.pair) if uid not in listed]
    for _, target_uid, key in gone:
        plan.present.setdefault(key, []).append(target_uid or "")
    plan.done = CopiedMessages((uid, plan.done.flags(uid) or "") for uid in listing.uids() if uid in plan.done)
    if not ctx.dry_run:
        # Marked dirty first: a run killed after the rows went still finds the copies by content key.
        plan.pair = ctx.state.mark_dirty(plan.pair, True)
        ctx.state.drop(plan.pair, (uid for uid, _, _ in gone))


def _renumber(ctx: PlanContext, pair: Pair, folder: FolderPath, validity: str) -> Pair:
    """Carry state rows across a change of the source's UIDVALIDITY by content key."""
    assert ctx.state is not None
    by_key = ctx.source.content_keys(folder)
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
