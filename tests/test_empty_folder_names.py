"""Folder names with an empty part, as a server's "/abs", "a//b" and "a/" are with separator "/": copied,
escaped, into every local format, read back as the same paths, and never outside the archive.

Dovecot refuses to create such names (it answers "Begins with hierarchy separator", "Has adjacent
hierarchy separators", and drops a trailing separator), so the source is a PST that migrator wrote.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from migrator.cli import main
from migrator.core.message import Flag, Flags, FolderPath, Message
from migrator.endpoints.endpoint import parse_endpoint
from migrator.pipeline.run import run_copy
from migrator.stores import open_store

EMPTY_PARTS: tuple[FolderPath, ...] = (("", "abs"), ("a", "", "b"), ("a", ""), ("",))
WHEN = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)


def _message(number: int) -> Message:
    raw = f"Subject: number {number}\r\nMessage-ID: <{number}@empty.test>\r\n\r\nbody {number}\r\n".encode()
    return Message(raw, Flags.of(Flag.SEEN), WHEN)


@pytest.fixture
def source(tmp_path: Path) -> str:
    """Return a PST written by migrator that holds one message in each folder with an empty name."""
    url = f"pst:{tmp_path / 'source' / 'server.pst'}"
    (tmp_path / "source").mkdir()
    with open_store(parse_endpoint(url), readonly=False) as pst:
        for number, folder in enumerate(EMPTY_PARTS):
            assert all(result.ok for result in pst.append_batch(pst.ensure_folder(folder), [_message(number)]))
    return url


def _contents(url: str) -> dict[FolderPath, list[bytes]]:
    with open_store(parse_endpoint(url)) as store:
        return {folder.path: [m.raw for m in store.messages(folder.path)]
                for folder in store.list_folders() if folder.selectable and folder.path in EMPTY_PARTS}


@pytest.mark.parametrize("kind", ["maildir", "mbox", "eml", "pst"])
def test_copied_escaped_into_every_local_format_and_read_back_as_the_same_paths(kind, source, tmp_path, capsys):
    archive = tmp_path / "archive" / ("out.pst" if kind == "pst" else "out")
    archive.parent.mkdir()
    target = f"{kind}:{archive}"
    summary = run_copy(parse_endpoint(source), [parse_endpoint(target)])
    assert summary.failures == [] and summary.copied == len(EMPTY_PARTS)
    assert _contents(target) == {folder: [_message(n).raw] for n, folder in enumerate(EMPTY_PARTS)}
    assert os.listdir(tmp_path / "archive") == ["out.pst" if kind == "pst" else "out"]
    assert main(["verify", source, target]) == 0
    assert capsys.readouterr().out.endswith("every source message is in the target\n")


def test_a_second_copy_from_the_archive_gives_the_same_paths(source, tmp_path):
    for kind in ("maildir", "mbox", "eml"):
        first, second = f"{kind}:{tmp_path / kind}", f"eml:{tmp_path / (kind + '-again')}"
        run_copy(parse_endpoint(source), [parse_endpoint(first)])
        run_copy(parse_endpoint(first), [parse_endpoint(second)])
        assert _contents(second) == _contents(source)


def test_the_escaped_names_on_disk(source, tmp_path):
    run_copy(parse_endpoint(source), [parse_endpoint(f"maildir:{tmp_path / 'md'}"),
                                      parse_endpoint(f"mbox:{tmp_path / 'mb'}")])
    maildir = {name for name in os.listdir(tmp_path / "md") if name.startswith(".")}
    assert {".\\.abs", ".a.\\.b", ".a.\\", ".\\"} <= maildir
    assert _visible(tmp_path / "mb" / "a" / "\\") == ["b", "mbox"]
    assert _visible(tmp_path / "mb" / "\\") == ["abs", "mbox"]


def _visible(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if not name.startswith("."))
