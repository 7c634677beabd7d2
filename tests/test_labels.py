"""Routing a labelled source's All Mail (Gmail): which folders are copied, where each message goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator.core.errors import ConfigError
from migrator.core.folder import Folder, Role
from migrator.endpoints.endpoint import parse_endpoint
from migrator.pipeline.foldermap import FolderRules
from migrator.pipeline.labels import label_routes
from migrator.pipeline.plan import TargetPlan
from migrator.profile.load import load_profile
from migrator.profile.to_run import plan_run
from migrator.state.copied import CopiedMessages
from migrator.stores.imap.gmail import LabelFolders, label_names

PREFIX = "[Google Mail]"
LISTED = [
    Folder(("INBOX",), Role.INBOX),
    Folder(("Work",)),
    Folder(("Work", "Projects")),
    Folder((PREFIX,), selectable=False),
    Folder((PREFIX, "Alle Nachrichten"), Role.ALL),
    Folder((PREFIX, "Entwürfe"), Role.DRAFTS),
    Folder((PREFIX, "Gesendet"), Role.SENT),
    Folder((PREFIX, "Markiert"), Role.FLAGGED),
    Folder((PREFIX, "Papierkorb"), Role.TRASH),
    Folder((PREFIX, "Spam"), Role.JUNK),
    Folder((PREFIX, "Wichtig"), Role.IMPORTANT),
]
ALL_MAIL = (PREFIX, "Alle Nachrichten")
INBOX, WORK, PROJECTS = ("INBOX",), ("Work",), ("Work", "Projects")
SENT, DRAFTS = (PREFIX, "Gesendet"), (PREFIX, "Entwürfe")
LABELS = {
    "1": frozenset({INBOX, WORK, PROJECTS}),  # three labels
    "2": frozenset({INBOX}),
    "3": frozenset(),  # archived
    "4": frozenset({SENT}),
    "5": frozenset({DRAFTS}),
}


def names(folders: list[Folder]) -> list[str]:
    return [folder.name for folder in folders]


def test_all_mail_spam_and_trash_are_copied_and_every_other_folder_but_starred_and_important_is_a_label() -> None:
    copied, routes = label_routes(LISTED, FolderRules(), "gmail", every_message=False)
    assert routes is not None
    assert names(copied) == [f"{PREFIX}/Alle Nachrichten", f"{PREFIX}/Papierkorb", f"{PREFIX}/Spam"]
    assert [f.path for f in routes.destinations()] == [INBOX, WORK, PROJECTS, DRAFTS, SENT, ALL_MAIL]


def test_each_message_goes_to_its_labels_and_an_archived_one_to_all_mail() -> None:
    _, routes = label_routes(LISTED, FolderRules(), "gmail", every_message=False)
    assert routes is not None
    members = {path: sorted(uid for uid in LABELS if uid in wanted) for path, wanted in routes.members(LABELS).items()}
    assert members == {INBOX: ["1", "2"], WORK: ["1"], PROJECTS: ["1"], DRAFTS: ["5"], SENT: ["4"], ALL_MAIL: ["3"]}


def test_all_mail_can_hold_every_message() -> None:
    _, routes = label_routes(LISTED, FolderRules(), "gmail", every_message=True)
    assert routes is not None
    assert sorted(uid for uid in LABELS if uid in routes.members(LABELS)[ALL_MAIL]) == ["1", "2", "3", "4", "5"]


def test_an_excluded_label_drops_only_that_labels_copies() -> None:
    copied, routes = label_routes(LISTED, FolderRules.build(exclude=["Work", "Work/*"]), "gmail", every_message=False)
    assert routes is not None and ALL_MAIL in [f.path for f in copied]
    members = routes.members(LABELS)
    assert set(members) == {INBOX, DRAFTS, SENT, ALL_MAIL}
    assert "1" in members[INBOX]
    assert "1" not in members[ALL_MAIL]  # labelled, though with labels not copied: not archived


def test_all_mail_is_scanned_for_the_labels_asked_for_though_its_own_copy_is_not() -> None:
    copied, routes = label_routes(LISTED, FolderRules.build(include=["INBOX"]), "gmail", every_message=False)
    assert routes is not None
    assert names(copied) == [f"{PREFIX}/Alle Nachrichten"]
    assert [f.path for f in routes.destinations()] == [INBOX]


def test_an_include_matching_no_folder_is_still_an_error() -> None:
    with pytest.raises(ConfigError, match="Wrok"):
        label_routes(LISTED, FolderRules.build(include=["Wrok"]), "gmail", every_message=False)


def test_without_all_mail_the_folders_are_copied_one_by_one() -> None:
    listed = [folder for folder in LISTED if folder.role is not Role.ALL]
    copied, routes = label_routes(listed, FolderRules(), "gmail", every_message=False)
    assert routes is None
    assert [f.path for f in copied] == [f.path for f in listed if f.selectable]


def test_a_plan_for_a_label_needs_only_its_messages_not_yet_copied() -> None:
    plan = TargetPlan(store=None, name="t", source_folder=INBOX, folder=INBOX,  # type: ignore[arg-type]
                      done=CopiedMessages([("2", "")]), wanted=CopiedMessages([("1", ""), ("2", "")]))
    assert [uid for uid in ("1", "2", "3") if plan.needs(uid)] == ["1"]


def test_labels_are_found_by_special_use_and_by_name_and_starred_is_no_folder() -> None:
    folders = LabelFolders((f.path, f.role, "/".join(f.path)) for f in LISTED if f.selectable)
    assert folders.path("\\Inbox") == INBOX
    assert folders.path("\\Sent") == SENT
    assert folders.path("\\Draft") == DRAFTS
    assert folders.path("\\Important") == (PREFIX, "Wichtig")
    assert folders.path("Work/Projects") == PROJECTS
    assert folders.path("\\Starred") is None
    assert folders.path("Hidden") is None  # a label not shown in IMAP
    assert folders.paths(["\\Inbox", "Work"]) is folders.paths(["Work", "\\Inbox"])


def test_label_names_are_atoms_or_strings() -> None:
    assert label_names(["\\Inbox", b"Work/Projects", "\\Starred"]) == ("\\Inbox", "Work/Projects", "\\Starred")
    assert label_names(None) == ()


def test_the_gmail_options_of_an_endpoint_and_a_profile(tmp_path: Path) -> None:
    assert (parse_endpoint("gmail:alice@gmail.com").gmail, parse_endpoint("gmail:alice@gmail.com").all_mail) == (
        "labels", "unlabelled")
    chosen = parse_endpoint("imaps://alice@gmail.com@imap.gmail.com?gmail=folders&all_mail=all")
    assert (chosen.gmail, chosen.all_mail) == ("folders", "all")
    with pytest.raises(ConfigError, match="all_mail=some .* is not one of unlabelled, all"):
        parse_endpoint("gmail:alice@gmail.com?all_mail=some")
    with pytest.raises(ConfigError, match="unknown option 'gmail'"):
        parse_endpoint("pop3s://alice@pop.gmail.com?gmail=labels")
    profile = tmp_path / "gmail.yaml"
    profile.write_text("version: 1\nsource: {type: imap, provider: gmail, user: alice@gmail.com, password_env: PW,\n"
                       "  gmail: folders, all_mail: all}\ntargets:\n  - {type: maildir, path: mail}\n")
    source = plan_run(load_profile(profile)).source
    assert (source.gmail, source.all_mail) == ("folders", "all")
    profile.write_text(profile.read_text().replace("path: mail", "path: mail, links: hard"))
    assert plan_run(load_profile(profile)).targets[0].hard_links
    assert parse_endpoint(f"maildir:{tmp_path}?links=hard") == parse_endpoint(f"maildir:{tmp_path}?links=hard")
    assert parse_endpoint(f"maildir:{tmp_path}?links=hard").hard_links
    assert not parse_endpoint(f"maildir:{tmp_path}").hard_links
    profile.write_text(profile.read_text().replace("all_mail: all", "all_mail: most"))
    with pytest.raises(ConfigError, match="all_mail"):
        load_profile(profile)
