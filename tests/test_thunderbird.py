"""Thunderbird's mail directories: the X-Mozilla headers, the layout, reading a profile, writing one.

What Thunderbird reads is checked by a reader written here from its rules, not migrator's:
nsMsgMessageFlags.idl for the bits, MboxMsgInputStream.cpp for how it splits and unquotes an mbox.
"""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.corpus import corpus
from migrator.core.errors import FolderError
from migrator.core.message import Flag, Flags, Message
from migrator.endpoints.endpoint import parse_endpoint
from migrator.pipeline.run import run_copy
from migrator.state.statefile import StateStore
from migrator.stores import open_store
from migrator.stores.mbox.envelope import lay_out
from migrator.stores.mbox.reader import entries, message_at
from migrator.stores.thunderbird.mozilla import THUNDERBIRD, mozilla_flags, mozilla_lines
from tests.support.archives import write_archive

UTC = timezone.utc
WHEN = datetime(2024, 11, 6, 17, 20, 42, tzinfo=UTC)
# nsMsgMessageFlags.idl: the test side's own table.
BITS = {Flag.SEEN: 0x1, Flag.ANSWERED: 0x2, Flag.FLAGGED: 0x4, Flag.FORWARDED: 0x1000, Flag.DELETED: 0x200000}
EXPUNGED = 0x8

keywords = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8).filter(
    lambda k: k != "$Draft")
flag_sets = st.builds(Flags, st.frozensets(st.sampled_from(list(Flag))), st.frozensets(keywords, max_size=4))
body_parts = st.sampled_from([b"From ", b">From ", b">>From x", b"From", b"\r", b"\n", b"\r\n", b"a", b" ", b"\xff"])
bodies = st.lists(body_parts, max_size=30).map(b"".join)


def _message(raw: bytes = b"Subject: s\n\nbody\n", flags: Flags = Flags()) -> Message:
    return Message(raw, flags, WHEN, ("INBOX",))


def _store(path: Path, readonly: bool = False):
    return open_store(parse_endpoint(f"thunderbird:{path}"), readonly=readonly)


def thunderbird_shows(mbox: bytes) -> list[tuple[bytes, int, bytes]]:
    """Return each message of ``mbox`` as Thunderbird reads it: (its bytes, its X-Mozilla-Status and Status2
    bits together, its X-Mozilla-Keys value). A message starts at a line starting "From " (dropped); its
    header lines are kept as they are, up to the blank line after them; one ">" goes from each body line
    matching ">+From "; a blank line right before the next From line, or the end, is not part of it."""
    lines = re.findall(rb"[^\n]*\n|[^\n]+$", mbox)
    shown, i = [], 0
    while i < len(lines):
        assert lines[i].startswith(b"From ")
        i += 1
        head = []
        while i < len(lines) and lines[i] not in (b"\n", b"\r\n"):
            head.append(lines[i])
            i += 1
        body = lines[i : i + 1]
        i += 1
        while i < len(lines) and not lines[i].startswith(b"From "):
            last = i + 1 == len(lines) or lines[i + 1].startswith(b"From ")
            if not (last and lines[i] in (b"\n", b"\r\n")):
                body.append(re.sub(rb"^>(>*From )", rb"\1", lines[i]))
            i += 1
        headers = b"".join(head)
        bits = [int(re.search(rb"^%s: (\w+)" % name, headers, re.M).group(1), 16)
                for name in (b"X-Mozilla-Status", b"X-Mozilla-Status2")]
        keys = re.search(rb"^X-Mozilla-Keys: ([^\n]*)", headers, re.M).group(1)
        shown.append((headers + b"".join(body), bits[0] | bits[1], keys))
    return shown


# --- the headers ----------------------------------------------------------------------------------


def test_the_x_mozilla_lines_are_what_thunderbird_writes() -> None:
    flags = Flags.of(*Flag, keywords=("work",))
    assert mozilla_lines(flags) == (b"X-Mozilla-Status: 1007\nX-Mozilla-Status2: 00200000\nX-Mozilla-Keys: "
                                    + b"$Draft work".ljust(80) + b"\n")
    blank = b"X-Mozilla-Status: 0000\nX-Mozilla-Status2: 00000000\nX-Mozilla-Keys: " + b" " * 80 + b"\n"
    assert mozilla_lines(Flags()) == blank


@given(flag_sets)
def test_flags_round_trip_through_the_x_mozilla_lines(flags: Flags) -> None:
    lines = mozilla_lines(flags)
    assert mozilla_flags(lines) == flags
    status = int(re.search(rb"X-Mozilla-Status: (\w{4})\n", lines).group(1), 16)
    status2 = int(re.search(rb"X-Mozilla-Status2: (\w{8})\n", lines).group(1), 16)
    assert status | status2 == sum(bit for flag, bit in BITS.items() if flag in flags)


def test_an_expunged_message_is_gone_and_one_without_x_mozilla_lines_has_its_status_lines() -> None:
    assert mozilla_flags(b"X-Mozilla-Status: 0009\nX-Mozilla-Status2: 00000000\n") is None
    assert mozilla_flags(b"Status: RO\nX-Status: A\n") == Flags.of(Flag.SEEN, Flag.ANSWERED)
    assert mozilla_flags(b"X-Mozilla-Status: 0005\r\nX-Mozilla-Keys: $label1 todo   \r\n") == Flags.of(
        Flag.SEEN, Flag.FLAGGED, keywords=("$label1", "todo"))


@given(st.lists(st.tuples(bodies, flag_sets), max_size=5))
def test_thunderbird_reads_what_migrator_writes_and_migrator_reads_it_back_exactly(batch: list) -> None:
    messages = [_message(b"Subject: m\n\n" + body, flags) for body, flags in batch]
    laid = lay_out(messages, THUNDERBIRD, 0)
    mbox = b"".join(piece for item in laid for piece in item.pieces())
    records = {item.record.offset: item.record for item in laid}
    found = [message_at(mbox, e.offset, records, THUNDERBIRD) for e in entries(mbox, records, THUNDERBIRD)]
    assert [(data, entry.flags) for entry, data in found] == [(m.raw, m.flags) for m in messages]
    shown = thunderbird_shows(mbox)
    assert [text for text, _, _ in shown] == [mozilla_lines(m.flags).rstrip(b"\n") + b"\n" + _with_final_newline(m.raw)
                                              for m in messages]
    assert [bits for _, bits, _ in shown] == [sum(b for f, b in BITS.items() if f in m.flags) for m in messages]


def _with_final_newline(raw: bytes) -> bytes:
    return raw if raw.endswith(b"\n") else raw + b"\n"


# --- the layout ---------------------------------------------------------------------------------


def test_a_folder_is_a_file_its_subfolders_are_in_name_sbd_and_migrators_files_are_hidden(tmp_path: Path) -> None:
    with _store(tmp_path / "Local Folders") as store:
        store.append_batch(("INBOX",), [_message()])
        store.append_batch(("INBOX", "child"), [_message()])
        store.append_batch(("Work", "2024", "Q1"), [_message()])
        store.append_batch(("notes.msf",), [_message()])
        store.append_batch(("popstate.dat",), [_message()])
        listed = [f.path for f in store.list_folders()]
    root = tmp_path / "Local Folders"
    visible = sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.name.startswith("."))
    assert visible == ["Inbox", "Inbox.sbd", "Inbox.sbd/child", "Work", "Work.sbd", "Work.sbd/2024",
                       "Work.sbd/2024.sbd", "Work.sbd/2024.sbd/Q1", "\\70opstate.dat", "notes\\2emsf"]
    assert (root / "Work").read_bytes() == b"" and (root / "Work.sbd" / "2024").read_bytes() == b""
    hidden = sorted(p.name for p in root.iterdir() if p.name.startswith("."))
    assert hidden == [".Inbox.index", ".\\70opstate.dat.index", ".notes\\2emsf.index"]
    assert listed == [("INBOX",), ("INBOX", "child"), ("Work",), ("Work", "2024"), ("Work", "2024", "Q1"),
                      ("popstate.dat",), ("notes.msf",)]
    assert all(stat.S_IMODE(p.stat().st_mode) in (0o600, 0o700) for p in root.rglob("*"))


def _profile(root: Path) -> None:
    """Write a Local Folders directory and an ImapMail one as Thunderbird leaves them."""
    local = root / "Local Folders"
    (local / "Archives.sbd").mkdir(parents=True)
    (local / "Inbox").write_bytes(
        b"From - Wed Nov  6 17:20:42 2024\n"
        b"X-Mozilla-Status: 0001\nX-Mozilla-Status2: 00000000\nX-Mozilla-Keys: $label1" + b" " * 73 + b"\n"
        b"Subject: read and important\n\nline\n>From quoted by Thunderbird\n>>From quoted twice\n\n"
        b"From - Wed Nov  6 17:21:00 2024\n"
        b"X-Mozilla-Status: 0009\nX-Mozilla-Status2: 00000000\nX-Mozilla-Keys:" + b" " * 80 + b"\n"
        b"Subject: deleted, not yet compacted\n\nbody\n\n"
        b"From - Wed Nov  6 17:22:00 2024\n"
        b"Status: RO\nSubject: put here by another program\n\nbody\n\n"
    )
    (local / "Inbox.msf").write_bytes(b"// <!-- <mdb:mork:z v=\"1.4\"/> -->\n")
    (local / "Trash").write_bytes(b"")
    (local / "Archives.sbd" / "2024").write_bytes(
        b"From - Wed Nov  6 17:23:00 2024\nX-Mozilla-Status: 1006\nX-Mozilla-Status2: 00200000\n"
        b"Subject: archived\n\nbody\n")
    for name in ("msgFilterRules.dat", "popstate.dat", "Trash.msf", "filterlog.html", "junk~"):
        (local / name).write_bytes(b"not mail\n")
    imap = root / "ImapMail" / "imap.example.org"
    imap.mkdir(parents=True)
    (imap / "INBOX").write_bytes(b"From - Wed Nov  6 17:24:00 2024\nX-Mozilla-Status: 0001\nSubject: cached\n\nbody\n")
    (imap / "INBOX.msf").write_bytes(b"")
    (imap / "Sent.msf").write_bytes(b"")  # a folder not kept for offline use


def test_reads_a_thunderbird_profile_as_thunderbird_shows_it(tmp_path: Path) -> None:
    _profile(tmp_path)
    with _store(tmp_path / "Local Folders", readonly=True) as store:
        folders = [(f.path, f.role.name if f.role else None) for f in store.list_folders()]
        inbox = [(m.raw, m.flags) for m in store.messages(("INBOX",))]
        archived = [(m.raw, m.flags) for m in store.messages(("Archives", "2024"))]
        assert [m.raw for m in store.messages(("Trash",))] == []
    assert folders == [(("Archives",), "ARCHIVE"), (("Archives", "2024"), None), (("INBOX",), "INBOX"),
                       (("Trash",), "TRASH")]
    assert inbox == [
        (b"X-Mozilla-Status: 0001\nX-Mozilla-Status2: 00000000\nX-Mozilla-Keys: $label1" + b" " * 73 + b"\n"
         b"Subject: read and important\n\nline\nFrom quoted by Thunderbird\n>From quoted twice\n",
         Flags.of(Flag.SEEN, keywords=("$label1",))),
        (b"Status: RO\nSubject: put here by another program\n\nbody\n", Flags.of(Flag.SEEN)),
    ]
    assert archived == [(b"X-Mozilla-Status: 1006\nX-Mozilla-Status2: 00200000\nSubject: archived\n\nbody\n",
                         Flags.of(Flag.ANSWERED, Flag.FLAGGED, Flag.FORWARDED, Flag.DELETED))]
    with _store(tmp_path / "ImapMail" / "imap.example.org", readonly=True) as store:
        assert [f.path for f in store.list_folders()] == [("INBOX",), ("Sent",)]
        assert [m.flags for m in store.messages(("INBOX",))] == [Flags.of(Flag.SEEN)]
        assert list(store.messages(("Sent",))) == []


def test_flags_thunderbird_changes_in_place_are_read_and_an_expunged_message_is_gone(tmp_path: Path) -> None:
    batch = [_message(b"Subject: %d\n\nbody\n" % n, Flags.of(keywords=("old",))) for n in range(3)]
    with _store(tmp_path) as store:
        store.append_batch(("INBOX",), batch)
    inbox = tmp_path / "Inbox"
    data = inbox.read_bytes()
    # As Thunderbird does it: the values overwritten, the same width, nothing else moved.
    data = data.replace(b"X-Mozilla-Status: 0000", b"X-Mozilla-Status: 0005", 1)
    data = data.replace(b"X-Mozilla-Keys: old" + b" " * 77, b"X-Mozilla-Keys: $label2 todo" + b" " * 68, 1)
    second = data.index(b"From ", 1)
    third = data.index(b"\nFrom ", second) + 1
    data = data[:third] + data[third:].replace(b"X-Mozilla-Status: 0000", b"X-Mozilla-Status: 0008", 1)
    inbox.write_bytes(data)
    with _store(tmp_path, readonly=True) as store:
        got = [(m.raw, m.flags) for m in store.messages(("INBOX",))]
    assert got == [(batch[0].raw, Flags.of(Flag.SEEN, Flag.FLAGGED, keywords=("$label2", "todo"))),
                   (batch[1].raw, Flags.of(keywords=("old",)))]


def test_a_copy_into_thunderbird_and_back_is_exact_and_a_rerun_copies_nothing(tmp_path: Path) -> None:
    source, profile, back = (parse_endpoint(f"{kind}:{tmp_path / name}") for kind, name in
                             (("maildir", "source"), ("thunderbird", "Local Folders"), ("maildir", "back")))
    messages = corpus()
    write_archive(source, messages)
    state = StateStore(tmp_path / "state.sqlite")
    first = run_copy(source, [profile], state=state)
    assert first.copied == len([m for m in messages if m.raw]) and not first.failures
    again = run_copy(source, [profile], state=state)
    assert again.copied == 0 and again.already_there == first.copied
    assert run_copy(profile, [back]).copied == first.copied
    with open_store(source) as original, open_store(back) as copied:
        for folder in original.list_folders():
            mine = sorted((m.raw, m.flags, m.received) for m in original.messages(folder.path))
            assert sorted((m.raw, m.flags, m.received) for m in copied.messages(folder.path)) == mine, folder.path


APPENDER = """
import sys
from datetime import datetime, timezone
from migrator.endpoints.endpoint import parse_endpoint
from migrator.core.errors import FolderError
from migrator.core.message import Message
from migrator.stores import open_store
raw = b"Subject: big\\n\\n" + b"From a line of the body\\n" * int(sys.argv[2])
with open_store(parse_endpoint("thunderbird:" + sys.argv[1]), readonly=False) as store:
    (result,) = store.append_batch(("INBOX",), [Message(raw, received=datetime(2020, 1, 1, tzinfo=timezone.utc))])
    assert result.ok, result.error
"""


@pytest.mark.slow
def test_an_append_killed_midway_is_cut_off_before_the_next(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        store.append_batch(("INBOX",), [_message()])
    inbox = tmp_path / "Inbox"
    before = inbox.stat().st_size
    appender = subprocess.Popen([sys.executable, "-c", APPENDER, str(tmp_path), "2000000"])
    while inbox.stat().st_size == before and appender.poll() is None:
        pass
    os.kill(appender.pid, signal.SIGKILL)
    assert appender.wait() == -signal.SIGKILL
    assert subprocess.run([sys.executable, "-c", APPENDER, str(tmp_path), "3"], check=False).returncode == 0
    with _store(tmp_path, readonly=True) as store:
        got = [m.raw for m in store.messages(("INBOX",))]
    assert got == [_message().raw, b"Subject: big\n\n" + b"From a line of the body\n" * 3]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith((".lock", ".tmp"))]


@pytest.mark.parametrize("name", ["Inbox", ".Inbox.index"])
def test_a_symbolic_link_is_never_followed(tmp_path: Path, name: str) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"")
    with _store(tmp_path / "profile") as store:
        store.append_batch(("INBOX",), [_message()])
        (tmp_path / "profile" / name).unlink()
        (tmp_path / "profile" / name).symlink_to(outside)
        with pytest.raises(FolderError, match="is a symbolic link; not followed$"):
            store.append_batch(("INBOX",), [_message()])
    assert outside.read_bytes() == b""
