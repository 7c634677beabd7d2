"""Prove a copy: compare a source and a target folder by folder, by content key and flags."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.header import decode_header, make_header

from migrator.contentkey import header_block, key_header_values
from migrator.folder import Folder, Role
from migrator.foldermap import FolderRules, display_name
from migrator.message import Flags, FolderPath, MessageRef
from migrator.stores.base import Store


@dataclass(frozen=True)
class Headline:
    """What a person knows a message by: its Date, From, Subject and Message-ID, decoded ("" when absent)."""

    date: str = ""
    sender: str = ""
    subject: str = ""
    message_id: str = ""


@dataclass
class FolderComparison:
    """How one source folder compares with its target folder.

    ``headlines`` (with ``details``) describes each missing message by its source uid, and
    ``extra_headlines`` each extra one by its target uid.
    """

    source_folder: str
    target_folder: str | None
    source_count: int = 0
    target_count: int = 0
    missing: list[str] = field(default_factory=list)  # source uids with no copy in the target
    extra: list[str] = field(default_factory=list)  # target uids with no original in the source
    flag_differences: list[tuple[str, Flags, Flags]] = field(default_factory=list)  # (source uid, source, target)
    headlines: dict[str, Headline] = field(default_factory=dict)
    extra_headlines: dict[str, Headline] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Return True when the target holds every source message."""
        return self.target_folder is not None and not self.missing


def verify(source: Store, target: Store, rules: FolderRules = FolderRules(), *,
           details: bool = False) -> list[FolderComparison]:
    """Return the comparison of every selected source folder with its folder in the target.

    With ``details``, missing and extra messages are fetched to give each its headline.
    """
    target_folders = target.list_folders()  # listed once, not once per source folder
    return [_compare(source, target, target_folders, folder.path, *rules.destination(folder), details=details)
            for folder in rules.select(source.list_folders())]


def _compare(source: Store, target: Store, target_folders: list[Folder], path: FolderPath, wanted: FolderPath,
             role: Role | None, *, details: bool) -> FolderComparison:
    target_path = target.resolve_folder(wanted, role, target_folders)
    source_keys = source.content_keys(path)
    result = FolderComparison(display_name(path), display_name(target_path) if target_path else None)
    result.source_count = sum(len(uids) for uids in source_keys.values())
    source_refs = {ref.uid: ref for ref in source.scan(path).refs}
    if target_path is None:
        result.missing = sorted((uid for uids in source_keys.values() for uid in uids), key=_uid_order)
    else:
        target_refs = {ref.uid: ref for ref in target.scan(target_path).refs}
        _match(result, source_keys, target.content_keys(target_path), source_refs, target_refs)
        if details:
            result.extra_headlines = headlines(target, target_path, [target_refs[uid] for uid in result.extra])
    if details:
        result.headlines = headlines(source, path, [source_refs[uid] for uid in result.missing if uid in source_refs])
    return result


def _match(result: FolderComparison, source_keys: dict[str, list[str]], target_keys: dict[str, list[str]],
           source_refs: dict[str, MessageRef], target_refs: dict[str, MessageRef]) -> None:
    """Fill ``result`` with the messages each side lacks and the flags that differ, pairing copies by content key."""
    result.target_count = sum(len(uids) for uids in target_keys.values())
    no_flags = MessageRef("")
    for key in source_keys.keys() | target_keys.keys():
        ours, theirs = sorted(source_keys.get(key, []), key=_uid_order), sorted(target_keys.get(key, []), key=_uid_order)
        result.missing += ours[len(theirs):]
        result.extra += theirs[len(ours):]
        for uid, copy_uid in zip(ours, theirs):
            mine, copied = source_refs.get(uid, no_flags).flags, target_refs.get(copy_uid, no_flags).flags
            if mine != copied:
                result.flag_differences.append((uid, mine, copied))


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
