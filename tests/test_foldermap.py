"""Folder selection and renaming rules."""

import re

import pytest

from migrator.core.errors import ConfigError
from migrator.core.folder import Folder
from migrator.pipeline.foldermap import FolderRules

FOLDERS = [Folder(("INBOX",)), Folder(("INBOX", "Lists")), Folder(("Projects", "2024", "Q1")), Folder(("Trash",)),
           Folder(("Archive",), selectable=False)]


def names(folders):
    return [f.name for f in folders]


def test_everything_selectable_by_default():
    assert names(FolderRules().select(FOLDERS)) == ["INBOX", "INBOX/Lists", "Projects/2024/Q1", "Trash"]


def test_include_and_exclude_globs():
    rules = FolderRules.build(include=["inbox*", "Projects/*"], exclude=["INBOX/Lists"])
    assert names(rules.select(FOLDERS)) == ["INBOX", "Projects/2024/Q1"]


@pytest.mark.parametrize("include", ["Nope", "Nope*", "Projects/2025/*"])
def test_an_include_matching_no_folder_is_a_mistake(include):
    with pytest.raises(ConfigError, match=f"no folder of maildir:m matches '{re.escape(include)}' from --folder"):
        FolderRules.build(include=[include]).select(FOLDERS, "maildir:m")


def test_exact_map_moves_the_subtree():
    rules = FolderRules.build(maps=["Projects=Old/Projects"])
    assert rules.target_path(("Projects", "2024", "Q1")) == ("Old", "Projects", "2024", "Q1")
    assert rules.target_path(("ProjectsX",)) == ("ProjectsX",)


def test_regex_map_and_inbox_normalisation():
    rules = FolderRules.build(maps=[r"re:INBOX/(.*)=Mail/\1", "inbox=Archive/OldISP"])
    assert rules.target_path(("INBOX", "Lists")) == ("Mail", "Lists")
    assert rules.target_path(("INBOX",)) == ("Archive", "OldISP")


@pytest.mark.parametrize("bad", ["noequals", "=x", "re:(=x"])
def test_bad_maps_are_config_errors(bad):
    with pytest.raises(ConfigError):
        FolderRules.build(maps=[bad])
