"""`verify` compares each source folder with the folder `copy` put its messages in, on every kind of target,
with the same folder rules and special-use roles; folders either side lacks are rows of its table, never
the end of it, and anything missing makes it exit 1."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from harness.dovecot import OUTLOOK_SPECIAL_FOLDERS
from migrator.cli import main

WHEN = datetime(2024, 3, 4, 10, 0, tzinfo=timezone.utc)
SOURCE_FOLDERS = {"INBOX": 2, "Sent": 2, "Trash": 3, "Projects": 2, "Projects/2024": 1, "Old/Stuff": 2}
LOCAL_KINDS = ("maildir", "mbox", "eml", "pst")


def _message(folder: str, number: int) -> bytes:
    return (f"Date: Mon, 4 Mar 2024 10:00:00 +0000\r\nFrom: Bob <bob@example.com>\r\n"
            f"Subject: {folder} {number}\r\nMessage-ID: <{folder}.{number}@verify.test>\r\n\r\nbody\r\n").encode()


def _items(counts: dict[str, int]) -> list:
    return [(tuple(folder.split("/")), _message(folder, n), ["\\Seen"], WHEN)
            for folder, count in counts.items() for n in range(count)]


def _url(server, user) -> str:
    variable = f"VERIFY_PW_{user.name.upper()}"
    return (f"imaps://{user.name}@{server.host}:{server.ports['imaps']}"
            f"?password_env={variable}&ca_file={server.ca_file}")


@pytest.fixture
def account(make_user, monkeypatch):
    """Return a function making a user (on the main server or another) and its endpoint."""

    def make(server, counts: dict[str, int] | None = None) -> str:
        user = make_user(server)
        monkeypatch.setenv(f"VERIFY_PW_{user.name.upper()}", user.password)
        if counts:
            server.seed(user, _items(counts))
        return _url(server, user)

    return make


@pytest.fixture
def source(dovecot, account) -> str:
    return account(dovecot, SOURCE_FOLDERS)


@pytest.fixture
def outlook(dovecot_server):
    """A server whose \\Sent folder is "Sent Items"."""
    return dovecot_server(special_folders=OUTLOOK_SPECIAL_FOLDERS)


def _local(kind: str, tmp_path: Path) -> str:
    return f"{kind}:{tmp_path / ('archive.pst' if kind == 'pst' else kind)}"


def _run(args: list[str], capsys) -> tuple[int, dict[str, list[str]], str]:
    """Return verify's exit status, its rows by folder cell (the other cells split), and its last line."""
    code = main(args)
    out = capsys.readouterr().out
    lines = out.splitlines()
    rows = {}
    for line in lines[1:-1]:
        name, _, rest = line.partition("  ")
        rows[name.strip()] = rest.split()
    return code, rows, lines[-1]


def _copy(source: str, target: str, *rules: str) -> None:
    assert main(["copy", "--no-state", "--quiet", *rules, source, target]) == 0


@pytest.mark.parametrize("kind", [*LOCAL_KINDS, "imap"])
def test_copy_then_verify_agrees_on_every_target(kind, source, account, outlook, tmp_path, capsys):
    target = account(outlook) if kind == "imap" else _local(kind, tmp_path)
    _copy(source, target, "--map", "Old=Archive/Old")
    code, rows, last = _run(["verify", "--map", "Old=Archive/Old", source, target], capsys)
    assert (code, last) == (0, "every source message is in the target")
    sent = "Sent → Sent Items" if kind == "imap" else "Sent"
    assert rows[sent] == ["2", "2", "0", "0", "0", "yes"]
    assert rows["Trash"] == ["3", "3", "0", "0", "0", "yes"]  # a PST's empty Deleted Items is no rival
    assert rows["Old/Stuff → Archive/Old/Stuff"] == ["2", "2", "0", "0", "0", "yes"]
    assert len(rows) == len(SOURCE_FOLDERS) + len(("Drafts", "Junk", "Archive"))  # the server's own, empty


@pytest.mark.parametrize("kind", LOCAL_KINDS)
def test_verify_without_the_copys_map_finds_the_folder_missing(kind, source, tmp_path, capsys):
    target = _local(kind, tmp_path)
    _copy(source, target, "--map", "Old=Archive/Old")
    code, rows, last = _run(["verify", source, target], capsys)
    assert code == 1
    assert rows["Old/Stuff"] == ["2", "-", "2", "0", "0", "NO", "(no", "such", "folder", "in", "target)"]
    assert rows["Archive/Old/Stuff"] == ["-", "2", "0", "2", "0", "only", "in", "the", "target"]
    assert last == "the target is missing 1 folder and 2 messages"


def test_two_folders_of_one_role_checked_against_the_folder_they_both_went_to(source, account, dovecot, tmp_path,
                                                                                capsys):
    pst = _local("pst", tmp_path)
    _copy(source, pst)  # the PST has its own empty Deleted Items beside Trash, both trash folders
    target = account(dovecot)
    _copy(pst, target)
    code, rows, _ = _run(["verify", pst, target], capsys)
    assert code == 0
    assert rows["Deleted Items → Trash"] == ["0", "3", "0", "0", "0", "yes"]
    assert rows["Trash"] == ["3", "3", "0", "0", "0", "yes"]


def test_folders_joined_by_a_map_are_checked_together(source, tmp_path, capsys):
    target = _local("maildir", tmp_path)
    _copy(source, target, "--map", "Projects/2024=Projects")
    code, rows, _ = _run(["verify", "--map", "Projects/2024=Projects", source, target], capsys)
    assert code == 0
    assert rows["Projects"] == ["2", "3", "0", "0", "0", "yes"]
    assert rows["Projects/2024 → Projects"] == ["1", "3", "0", "0", "0", "yes"]


def test_an_imap_target_lacking_folders_gets_a_row_for_each(source, account, dovecot, capsys):
    # "Projects" exists on the target only as the \Noselect parent of Projects/2024.
    target = account(dovecot, {"INBOX": 2, "Projects/2024": 1, "Stray": 1})
    code, rows, last = _run(["verify", source, target], capsys)
    assert code == 1
    assert rows["INBOX"][-1] == "yes" and rows["Projects/2024"][-1] == "yes"
    assert rows["Projects"] == ["2", "-", "2", "0", "0", "NO", "(no", "such", "folder", "in", "target)"]
    assert rows["Old/Stuff"][:3] == ["2", "-", "2"]
    assert rows["Sent"] == ["2", "0", "2", "0", "0", "NO"]
    assert rows["Stray"] == ["-", "1", "0", "1", "0", "only", "in", "the", "target"]
    assert last == "the target is missing 2 folders and 9 messages"


def test_a_local_target_lacking_a_folder_gets_a_row(source, tmp_path, capsys):
    target = _local("eml", tmp_path)
    _copy(source, target)
    shutil.rmtree(tmp_path / "eml" / "Projects" / "2024")
    code, rows, last = _run(["verify", source, target], capsys)
    assert code == 1
    assert rows["Projects/2024"][:3] == ["1", "-", "1"]
    assert [row[-1] for name, row in rows.items() if name != "Projects/2024"] == ["yes"] * 8
    assert last == "the target is missing 1 folder and 1 message"


def test_a_folder_that_cannot_be_read_is_a_row_with_the_reason(source, tmp_path, capsys):
    target = _local("eml", tmp_path)
    _copy(source, target)
    linked = tmp_path / "eml" / "Projects" / "2024"
    linked.rename(tmp_path / "elsewhere")
    linked.symlink_to(tmp_path / "elsewhere")
    code, rows, last = _run(["verify", source, target], capsys)
    assert code == 1
    assert " ".join(rows["Projects/2024"]).endswith(f"NO ({linked} is a symbolic link; not followed)")
    assert rows["Trash"][-1] == "yes"  # the folders after it are still compared
    assert last == "1 folder could not be compared"
