"""Prove a copy: compare a source and a target folder by folder, by content key and flags."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from typing import TypeVar

from migrator.core.contentkey import header_block, key_header_values
from migrator.core.errors import FolderError, MessageError
from migrator.core.folder import Role
from migrator.core.message import Flags, FolderPath, MessageRef
from migrator.pipeline.foldermap import FolderRules, display_name
from migrator.pipeline.labels import NOT_FOLDERS, LabelRoutes, label_routes
from migrator.stores.base import Store

T = TypeVar("T")


@dataclass(frozen=True)
class Headline:
    """What a person knows a message by: its Date, From, Subject and Message-ID, decoded ("" when absent)."""

    date: str = ""
    sender: str = ""
    subject: str = ""
    message_id: str = ""


@dataclass
class FolderComparison:
    """How one source folder compares with the target folder its messages went to.

    ``target_folder`` is None where the target has no such folder, and ``source_folder`` None for
    a target folder that no source folder went to: every message of it is extra. ``error`` says
    why the folders could not be compared. ``headlines`` (with ``details``) describes each
    missing message by its source uid, and ``extra_headlines`` each extra one by its target uid.
    """

    source_folder: str | None
    target_folder: str | None
    source_count: int = 0
    target_count: int = 0
    missing: list[str] = field(default_factory=list)  # source uids with no copy in the target
    extra: list[str] = field(default_factory=list)  # target uids with no original in the source
    flag_differences: list[tuple[str, Flags, Flags]] = field(default_factory=list)  # (source uid, source, target)
    headlines: dict[str, Headline] = field(default_factory=dict)
    extra_headlines: dict[str, Headline] = field(default_factory=dict)
    error: str | None = None

    @property
    def complete(self) -> bool:
        """Return True when the target holds every source message of this row."""
        if self.error is not None:
            return False
        return self.source_folder is None or (self.target_folder is not None and not self.missing)


@dataclass
class _TargetFolder:
    """A target folder as the source folders going to it claim its messages, by content key."""

    count: int
    unclaimed: dict[str, list[str]]  # content key -> target uids not yet paired with a source message
    refs: dict[str, MessageRef]


def verify(source: Store, target: Store, rules: FolderRules = FolderRules(), *,
           details: bool = False) -> list[FolderComparison]:
    """Return how every selected source folder compares with the target folder ``copy`` sends its
    messages to, in the source's order, then every target folder holding messages that no source
    folder went to; raise ConfigError for a folder rule that matches nothing.

    A folder goes where ``copy`` sends it: the rules' renames, then the target's own choice
    (``resolve_folder``: IMAP's folder of the same special-use role). Source folders that go to one
    target folder are compared with it together; what is left over is extra on the last of them.
    With ``details``, missing and extra messages are fetched to give each its headline.

    A source whose folders are labels (Gmail) is compared label by label, as copy writes it: each
    label's folder with the target folder its label goes to; Starred and Important, which copy
    writes to no folder, are left out; All Mail only by its messages without a label, unless the
    source endpoint says ``all_mail=all``. Into Gmail, whose All Mail shows every message and whose
    Starred and Important show what Gmail puts there, those folders have no extra messages.
    """
    rows: list[FolderComparison] = []
    groups: dict[FolderPath, list[tuple[FolderPath, FolderComparison]]] = {}
    wanted: set[FolderPath] = set()  # where the rules send each folder, found there or not
    listed = source.list_folders()
    selected = rules.select(listed)
    routes = None
    if source.labels_are_folders:
        _, routes = label_routes(listed, rules, str(source.endpoint), source.endpoint.all_mail == "all")
    if routes is not None:
        selected = [folder for folder in selected if folder.role not in NOT_FOLDERS]
    for folder in selected:
        row = FolderComparison(folder.name, None)
        rows.append(row)
        destination = rules.destination(folder)
        wanted.add(destination[0])
        path = _guarded(row, lambda: target.resolve_folder(*destination))
        if path is None:
            _guarded(row, lambda: _claim(source, folder.path, _TargetFolder(0, {}, {}), row, details, routes))
        else:
            row.target_folder = display_name(path)
            groups.setdefault(path, []).append((folder.path, row))
    views = _views(target)
    for path, members in groups.items():
        _compare_group(source, target, path, members, details, routes, extra=path not in views)
    return rows + _target_only(target, rules, wanted | set(groups) | views, details)


def _views(target: Store) -> set[FolderPath]:
    """Return the folders of a target whose folders are labels (Gmail) that show messages written elsewhere."""
    if not target.labels_are_folders:
        return set()
    return {folder.path for folder in target.list_folders() if folder.role in (Role.ALL, *NOT_FOLDERS)}


def _guarded(row: FolderComparison, compare: Callable[[], T]) -> T | None:
    """Return ``compare()``, or None with the row's error set when a folder could not be read."""
    if row.error is not None:
        return None
    try:
        return compare()
    except (FolderError, MessageError) as error:
        row.error = str(error)
        return None


def _compare_group(source: Store, target: Store, path: FolderPath,
                   members: list[tuple[FolderPath, FolderComparison]], details: bool,
                   routes: LabelRoutes | None = None, *, extra: bool = True) -> None:
    """Compare the source folders ``members`` (path, row) with the target folder ``path`` they all went to;
    with ``extra``, give the last row the target's messages no source message claimed."""
    last = members[-1][1]
    found = _guarded(last, lambda: _target_folder(target, path))
    if found is None:
        for _, row in members:
            row.error = last.error
        return
    for source_path, row in members:
        row.target_count = found.count
        _guarded(row, lambda: _claim(source, source_path, found, row, details, routes))
    if extra:
        _guarded(last, lambda: _leftovers(target, path, found, last, details))


def _target_folder(target: Store, path: FolderPath) -> _TargetFolder:
    keys = target.content_keys(path)
    unclaimed = {key: sorted(uids, key=_uid_order) for key, uids in keys.items()}
    refs = {ref.uid: ref for ref in target.scan(path).refs}
    return _TargetFolder(sum(len(uids) for uids in keys.values()), unclaimed, refs)


def _claim(source: Store, path: FolderPath, found: _TargetFolder, row: FolderComparison, details: bool,
           routes: LabelRoutes | None = None) -> None:
    """Pair the source folder's messages with unclaimed copies of the same content key; fill ``row``.

    Of a labelled source's All Mail only the messages without a label are looked for, unless ``routes``
    say its copy holds every message.
    """
    scan = source.scan(path)
    source_refs = {ref.uid: ref for ref in scan.refs}
    labels, labelled = scan.labels, routes.label_paths if routes is not None else frozenset()
    if routes is None or path != routes.all_mail.path or routes.every_message:
        labels = None
    no_flags = MessageRef("")
    for key, every_uid in source.content_keys(path).items():
        uids = every_uid if labels is None else [uid for uid in every_uid if not labels.get(uid, set()) & labelled]
        if not uids:
            continue
        ours, theirs = sorted(uids, key=_uid_order), found.unclaimed.get(key, [])
        row.source_count += len(ours)
        row.missing += ours[len(theirs):]
        found.unclaimed[key] = theirs[len(ours):]
        for uid, copy_uid in zip(ours, theirs):
            mine, copied = source_refs.get(uid, no_flags).flags, found.refs.get(copy_uid, no_flags).flags
            if mine != copied:
                row.flag_differences.append((uid, mine, copied))
    row.missing.sort(key=_uid_order)
    if details:
        row.headlines = headlines(source, path, [source_refs[uid] for uid in row.missing if uid in source_refs])


def _leftovers(target: Store, path: FolderPath, found: _TargetFolder, row: FolderComparison, details: bool) -> None:
    """Give ``row`` the messages of the target folder that no source message claimed, as extra."""
    row.extra = sorted((uid for uids in found.unclaimed.values() for uid in uids), key=_uid_order)
    if details:
        row.extra_headlines = headlines(target, path, [found.refs[uid] for uid in row.extra if uid in found.refs])


def _target_only(target: Store, rules: FolderRules, reached: set[FolderPath], details: bool) -> list[FolderComparison]:
    """Return a row for each target folder the rules select that holds messages and no source folder went to."""
    rows = []
    for folder in target.list_folders():
        if not folder.selectable or folder.path in reached or not rules.selects(folder):
            continue
        row = FolderComparison(None, folder.name)
        found = _guarded(row, lambda: _target_folder(target, folder.path))
        if found is not None:
            row.target_count = found.count
            _guarded(row, lambda: _leftovers(target, folder.path, found, row, details))
        if row.target_count or row.error:
            rows.append(row)
    return rows


def headlines(store: Store, path: FolderPath, refs: Sequence[MessageRef]) -> dict[str, Headline]:
    """Return the headline of each message of ``refs`` still in the folder, by uid (fetching whole messages)."""
    return {message.uid: headline(message.raw) for message in store.fetch(path, refs)} if refs else {}


def headline(raw: bytes) -> Headline:
    """Return the headline of the raw message ``raw``."""
    values = key_header_values(header_block(raw))
    return Headline(*(_decoded(values.get(name, b"")) for name in (b"date", b"from", b"subject", b"message-id")))


def _decoded(value: bytes) -> str:
    """Return a header value as text, its encoded words (=?UTF-8?B?...?=) decoded where they can be."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = value.decode("latin-1")  # 8-bit headers in an older charset: readable, if not always right
    try:
        return str(make_header(decode_header(text)))
    except (HeaderParseError, LookupError, UnicodeError, ValueError):
        return text


def _uid_order(uid: str) -> tuple[int, str]:
    return (int(uid), "") if uid.isdigit() else (0, uid)
