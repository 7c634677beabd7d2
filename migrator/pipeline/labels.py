"""A source whose folders are labels (Gmail): each message copied once, from All Mail, into its labels' folders.

Gmail shows a message in the folder of each of its labels and again in All Mail (SPECIAL-USE
``\\All``); copied folder by folder, an account would be copied as many times over as it has labels.
A run copies All Mail alone with a route per message, plus Spam and Trash as ordinary folders (they
are not in All Mail). Every other folder is a label: not scanned on its own, but a destination of
All Mail's messages that carry it, sent where the folder rules send that folder (so ``--exclude
Work`` drops the Work copies and nothing else). Starred is the \\Flagged flag and Important is
Gmail's guess, so neither is a destination. A message with no label that has a folder goes to the
folder All Mail is sent to; with ``all_mail=all`` every message goes there too.

Each label destination has a pair of its own in the state file (its source folder is the label's
folder), whose rows name messages by X-GM-MSGID: a message labelled since the last run needs only
its new label's copy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

from migrator.core.folder import Folder, Role
from migrator.core.listing import Listing
from migrator.core.message import FolderPath
from migrator.pipeline.foldermap import FolderRules
from migrator.pipeline.plan import PlanContext, TargetPlan, plan_target
from migrator.state.copied import CopiedMessages
from migrator.stores.base import Store

COPIED_AS_FOLDERS = (Role.JUNK, Role.TRASH)  # not in All Mail: copied folder by folder
NOT_FOLDERS = (Role.FLAGGED, Role.IMPORTANT)  # Starred is a flag, Important Gmail's own guess


class LabelRoutes(NamedTuple):
    """Where the messages of a labelled source's All Mail go.

    ``labels`` are the label folders the rules select, each a destination; ``label_paths`` every
    folder of the account that is a label (selected or not), by which a message counts as labelled;
    ``all_mail_copied`` whether the rules select All Mail itself; ``every_message`` whether its copy
    holds every message (``all_mail=all``) rather than only those without a label.
    """

    all_mail: Folder
    labels: tuple[Folder, ...]
    label_paths: frozenset[FolderPath]
    all_mail_copied: bool
    every_message: bool

    def destinations(self) -> list[Folder]:
        """Return the folders All Mail's messages go to: each label's, then All Mail's own."""
        return [*self.labels, *([self.all_mail] if self.all_mail_copied else [])]

    def members(self, labels: Mapping[str, frozenset[FolderPath]]) -> dict[FolderPath, CopiedMessages]:
        """Return the uids of the messages that go to each destination, given each message's ``labels``."""
        uids: dict[FolderPath, list[str]] = {folder.path: [] for folder in self.destinations()}
        for uid, on in labels.items():
            if self.every_message or not on & self.label_paths:
                uids.get(self.all_mail.path, []).append(uid)
            for path in on:
                if path != self.all_mail.path and path in uids:
                    uids[path].append(uid)
        return {path: CopiedMessages((uid, "") for uid in members) for path, members in uids.items()}


def routed_plans(ctx: PlanContext, targets: Sequence[Store], routes: LabelRoutes,
                 destination: Callable[[Folder], tuple[FolderPath, Role | None]],
                 labels: Mapping[str, frozenset[FolderPath]], listing: Listing, validity: str) -> list[TargetPlan]:
    """Return a plan per target and destination of All Mail's messages, each wanting the messages of its label.

    Each plan is given the whole of All Mail as what its source folder lists: a message that lost the
    label keeps its row, as its copy stays in the target, so it is not copied a second time should it
    get the label back; only a message gone from the account has its rows dropped.
    """
    members = routes.members(labels)
    plans = []
    for target in targets:
        for folder in routes.destinations():
            plan = plan_target(ctx, target, folder, destination(folder), listing, validity)
            plan.wanted = members[folder.path]
            plans.append(plan)
    return plans


def is_label(folder: Folder) -> bool:
    """Return True for a folder of a labelled source that shows a label: neither All Mail, Spam nor Trash."""
    return folder.selectable and folder.role is not Role.ALL and folder.role not in COPIED_AS_FOLDERS


def label_routes(listed: Sequence[Folder], rules: FolderRules, source: str,
                 every_message: bool) -> tuple[list[Folder], LabelRoutes | None]:
    """Return the folders of a labelled source to copy, in its order, and the routes of All Mail's messages.

    Without a selectable All Mail (hidden from IMAP in Gmail's settings) the folders are copied one
    by one, as from any server: routes are None. Raise ConfigError for an include rule matching nothing.
    """
    selected = rules.select(listed, source)
    all_mail = next((folder for folder in listed if folder.role is Role.ALL and folder.selectable), None)
    if all_mail is None:
        return selected, None
    label_paths = frozenset(f.path for f in listed if is_label(f) and f.role not in NOT_FOLDERS)
    labels = tuple(f for f in selected if f.path in label_paths)
    routes = LabelRoutes(all_mail, labels, label_paths, all_mail in selected, every_message)
    copied = [f for f in selected if f.role in COPIED_AS_FOLDERS or (f.path == all_mail.path)]
    if labels and all_mail not in copied:
        copied.insert(0, all_mail)  # scanned for its labelled messages, though its own copy is not wanted
    return copied, routes
