"""Prove a copy: compare a source and a target folder by folder, by content key and flags."""

from __future__ import annotations

from dataclasses import dataclass, field

from migrator.folder import Folder, Role
from migrator.foldermap import FolderRules, display_name
from migrator.message import Flags, FolderPath
from migrator.stores.base import Store


@dataclass
class FolderComparison:
    """How one source folder compares with its target folder."""

    source_folder: str
    target_folder: str | None
    source_count: int = 0
    target_count: int = 0
    missing: list[str] = field(default_factory=list)  # source uids with no copy in the target
    extra: list[str] = field(default_factory=list)  # target uids with no original in the source
    flag_differences: list[tuple[str, Flags, Flags]] = field(default_factory=list)  # (source uid, source, target)

    @property
    def complete(self) -> bool:
        """Return True when the target holds every source message."""
        return self.target_folder is not None and not self.missing


def verify(source: Store, target: Store, rules: FolderRules = FolderRules()) -> list[FolderComparison]:
    """Return the comparison of every selected source folder with its folder in the target."""
    target_folders = target.list_folders()  # listed once, not once per source folder
    return [_compare(source, target, target_folders, folder.path, *rules.destination(folder))
            for folder in rules.select(source.list_folders())]


def _compare(source: Store, target: Store, target_folders: list[Folder], path: FolderPath, wanted: FolderPath,
             role: Role | None) -> FolderComparison:
    target_path = target.resolve_folder(wanted, role, target_folders)
    source_keys = source.content_keys(path)
    result = FolderComparison(display_name(path), display_name(target_path) if target_path else None)
    result.source_count = sum(len(uids) for uids in source_keys.values())
    if target_path is None:
        result.missing = sorted(uid for uids in source_keys.values() for uid in uids)
        return result
    target_keys = target.content_keys(target_path)
    result.target_count = sum(len(uids) for uids in target_keys.values())
    source_flags = {ref.uid: ref.flags for ref in source.scan(path).refs}
    target_flags = {ref.uid: ref.flags for ref in target.scan(target_path).refs}
    for key in source_keys.keys() | target_keys.keys():
        ours, theirs = sorted(source_keys.get(key, []), key=_uid_order), sorted(target_keys.get(key, []), key=_uid_order)
        result.missing += ours[len(theirs):]
        result.extra += theirs[len(ours):]
        for uid, copy_uid in zip(ours, theirs):
            if source_flags.get(uid) != target_flags.get(copy_uid):
                result.flag_differences.append((uid, source_flags.get(uid, Flags()), target_flags.get(copy_uid, Flags())))
    return result


def _uid_order(uid: str) -> tuple[int, str]:
    return (int(uid), "") if uid.isdigit() else (0, uid)
