"""Reruns into a PST in parts: each part's messages are found where they are, and none is written twice.

A target split into parts (``pst:PATH?part_size=``) is one archive: its identity is its first part's record
key, which adding parts leaves as it was, its folders' counts are those of every part, and what a rerun looks
for by content key (after a run killed before the state file recorded its rows) it finds in whichever part
holds it, under the uid the writer gave (migrator/stores/pst/store.py).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

from migrator.core.message import Flag, Flags, FolderPath, Message
from migrator.endpoints.endpoint import parse_endpoint
from migrator.stores import open_store
from migrator.stores.pst.parts import existing_parts
from tests.support.archives import write_archive
from tests.test_pst_append import AFTER_HEADER

PART_SIZE = "100KB"
FOLDERS: tuple[FolderPath, ...] = (("INBOX",), ("Archive", "2024"), ("Lists",))
Contents = Counter[tuple[FolderPath, bytes, Flags]]


def mail(number: int, flags: frozenset[Flag] = frozenset(), folder: FolderPath | None = None) -> Message:
    """Return message ``number``, about 3 KB, with a subject of its own."""
    body = "".join(f"line {line} of message {number}, written to fill a part\r\n" for line in range(60))
    raw = (f"From: sender{number}@example.org\r\nTo: archive@example.org\r\nSubject: split {number:02d}\r\n"
           f"Message-ID: <split{number}@parts>\r\nDate: Mon, 3 Jun 2024 10:{number % 60:02d}:00 +0000\r\n\r\n"
           + body).encode()
    received = datetime(2024, 6, 3, tzinfo=timezone.utc) + timedelta(minutes=number)
    return Message(raw, Flags(flags), received, folder or FOLDERS[number % len(FOLDERS)])


def source_contents(path: Path) -> Contents:
    with open_store(parse_endpoint(f"maildir:{path}")) as store:
        return Counter((f.path, m.raw, m.flags) for f in store.list_folders() if f.selectable
                       for m in store.messages(f.path))


def pst_contents(path: Path) -> Contents:
    """Return what ``pst:PATH`` holds, every part read as one store."""
    with open_store(parse_endpoint(f"pst:{path}")) as store:
        return Counter((f.path, m.raw, m.flags) for f in store.list_folders() for m in store.messages(f.path))


def test_reruns_into_parts_write_nothing_twice(tmp_path: Path) -> None:
    source, pst, state = tmp_path / "source", tmp_path / "archive.pst", tmp_path / "state.sqlite"
    write_archive(parse_endpoint(f"maildir:{source}"), [mail(n) for n in range(30)])
    arguments = ["copy", "--quiet", "--state", str(state), f"maildir:{source}", f"pst:{pst}?part_size={PART_SIZE}"]
    assert subprocess.run([sys.executable, "-m", "migrator", *arguments]).returncode == 0
    parts = existing_parts(pst)
    assert len(parts) >= 3
    before = {part: part.read_bytes() for part in parts}
    rerun = subprocess.run([sys.executable, "-m", "migrator", *arguments[:1], *arguments[2:]], capture_output=True,
                           text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "0 copied" in rerun.stdout and "copied again" not in rerun.stdout, rerun.stdout
    assert {part: part.read_bytes() for part in existing_parts(pst)} == before
    assert pst_contents(pst) == source_contents(source)


def test_a_copy_killed_before_recording_is_found_in_every_part(tmp_path: Path) -> None:
    # Nothing recorded, and the parts already written: the rerun finds each message by content key in whichever
    # part holds it (a target is read as every part), adopts it under that part's uid, and writes nothing twice.
    source, pst, state = tmp_path / "source", tmp_path / "archive.pst", tmp_path / "state.sqlite"
    write_archive(parse_endpoint(f"maildir:{source}"), [mail(n) for n in range(30)])
    arguments = ["copy", "--quiet", "--state", str(state), f"maildir:{source}", f"pst:{pst}?part_size={PART_SIZE}"]
    killed = subprocess.run([sys.executable, "-m", "tests.support.pst_kill", str(AFTER_HEADER), *arguments],
                            capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    parts = existing_parts(pst)
    assert len(parts) >= 3
    before = {part: part.read_bytes() for part in parts}
    rerun = subprocess.run([sys.executable, "-m", "migrator", *arguments[:1], *arguments[2:]], capture_output=True,
                           text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "0 copied, 30 already there" in rerun.stdout, rerun.stdout
    assert {part: part.read_bytes() for part in existing_parts(pst)} == before
    assert pst_contents(pst) == source_contents(source)
