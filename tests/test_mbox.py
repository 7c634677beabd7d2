"""The mbox archive: quoting, the bytes around each message, its index, reading foreign mboxes, locks, failures."""

from __future__ import annotations

import base64
import collections
import contextlib
import errno
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.corpus import corpus
from migrator.core.errors import DiskError, FolderError, StoreError
from migrator.core.message import Flag, Flags, Message
from migrator.endpoints.endpoint import parse_endpoint
from migrator.stores import open_store
from migrator.stores.mbox import lock
from migrator.stores.mbox.dialect import MBOX, Dialect
from migrator.stores.mbox.envelope import asctime, envelope_sender, from_line_date, lay_out
from migrator.stores.mbox.index import Index
from migrator.stores.mbox.quoting import quote_mboxrd, unquote_mboxrd
from migrator.stores.mbox.reader import entries, kept_length, message_at, message_bytes
from migrator.stores.mbox.status import (
    IMAPBASE_LENGTH,
    decode_keywords,
    encode_keywords,
    flags_from_headers,
    imapbase_line,
    parse_imapbase,
    status_lines,
)
from tests.support.archives import write_archive
from tests.support.pagecache import cached_pages, require_dropped_pages

UTC = timezone.utc
LEGACY = Path(__file__).parent / "data" / "mbox-before-index"  # written by migrator before the index existed
# Lines rich in what mbox must escape: From_ lines, quoted ones, CR, blank lines.
line_parts = st.sampled_from(
    [b"From ", b">From ", b">>From x", b"From", b"\r", b"\n", b"\r\n", b"a", b" ", b"\x00", b"\xff"])
raw_messages = st.lists(line_parts, max_size=40).map(b"".join)
keywords = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8)
flag_sets = st.builds(Flags, st.frozensets(st.sampled_from(list(Flag))), st.frozensets(keywords, max_size=4))
received_dates = st.datetimes(
    min_value=datetime(1000, 1, 1), max_value=datetime(9999, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7))]),
).map(lambda d: d.replace(microsecond=0))
messages = st.builds(Message, raw=raw_messages, flags=flag_sets, received=received_dates)


# --- pure codecs ------------------------------------------------------------------------------


@given(raw_messages)
def test_mboxrd_quoting_round_trips(raw: bytes) -> None:
    quoted = quote_mboxrd(raw)
    assert unquote_mboxrd(quoted) == raw
    assert not any(line.startswith(b"From ") for line in quoted.split(b"\n"))


def test_mboxrd_quotes_every_from_line_once_more() -> None:
    quoted = quote_mboxrd(b"From a\n>From b\n>>From c\nFrom\nx From d\n")
    assert quoted == b">From a\n>>From b\n>>>From c\nFrom\nx From d\n"


@given(st.frozensets(keywords, max_size=6))
def test_keywords_round_trip(words: frozenset[str]) -> None:
    assert decode_keywords(encode_keywords(words)) == words


@given(flag_sets)
def test_status_lines_round_trip(flags: Flags) -> None:
    assert flags_from_headers(b"".join(status_lines(flags))) == flags


def test_status_lines_are_what_dovecot_and_mutt_read() -> None:
    flags = Flags.of(*Flag, keywords=("work",))
    assert status_lines(flags) == [b"Status: RO\n", b"X-Status: AFTD\n", b"X-Keywords: $Forwarded work\n"]
    assert status_lines(Flags()) == [b"Status: O\n"]


@given(st.frozensets(keywords, max_size=8))
def test_the_keyword_list_keeps_its_length_and_the_keywords_that_fit(words: frozenset[str]) -> None:
    line, held = imapbase_line(1700000000, words)
    assert len(line) == IMAPBASE_LENGTH and line.startswith(b"X-IMAPbase: 1700000000 0000000000")
    assert parse_imapbase(line) == (1700000000, held)
    assert held <= words


def test_the_keyword_list_leaves_out_what_does_not_fit() -> None:
    many = {f"keyword-number-{n:03d}" for n in range(40)}
    line, held = imapbase_line(1, many)
    assert len(line) == IMAPBASE_LENGTH and 0 < len(held) < len(many)
    assert parse_imapbase(b"X-IMAPbase: 1 0000000000 work\n") is None  # Dovecot's own, not padded: not ours


def test_from_line_parts() -> None:
    assert asctime(datetime(2024, 11, 6, 18, 20, 42, tzinfo=timezone(timedelta(hours=1)))) == "Wed Nov  6 17:20:42 2024"
    assert from_line_date(b"From x Wed Nov  6 17:20:42 2024") == datetime(2024, 11, 6, 17, 20, 42, tzinfo=UTC)
    assert from_line_date(b"From x Wed Nov 6 17:20:42 2024 -0200") == datetime(2024, 11, 6, 19, 20, 42, tzinfo=UTC)
    assert from_line_date(b"From x Wed Nov 6 17:20 PST 2024") is not None
    assert from_line_date(b"From someone") is None
    assert envelope_sender(b"Return-Path: <alice@example.org>\r\nSubject: x\r\n\r\nbody") == "alice@example.org"
    assert envelope_sender(b"Return-Path: <>\n\n") == "MAILER-DAEMON"
    assert envelope_sender(b"Subject: x\n\nReturn-Path: <in@body>\n") == "MAILER-DAEMON"


# --- messages and their index -------------------------------------------------------------------


def laid_out(batch: list[Message], dialect: Dialect = MBOX, first_line: bytes = b"") -> tuple[bytes, dict]:
    """Return the mbox bytes of ``batch`` and the index records of its messages, as an append writes them."""
    laid = lay_out(batch, dialect, 0, first_line)
    mbox = b"".join(piece for item in laid for piece in item.pieces())
    return mbox, {item.record.offset: item.record for item in laid}


def read_back(mbox: bytes, records: dict, dialect: Dialect = MBOX) -> list[tuple[bytes, Flags | None]]:
    """Return every message of ``mbox`` as the store's fetch reads it: bytes checked against the index."""
    found = (message_at(mbox, e.offset, records, dialect) for e in entries(mbox, records, dialect))
    return [(data, entry.flags) for entry, data in found if entry.flags is not None]


@given(st.lists(messages, max_size=6), st.booleans())
def test_laid_out_messages_read_back_exactly(batch: list[Message], listed: bool) -> None:
    first_line = imapbase_line(1, [])[0] if listed else b""
    mbox, records = laid_out(batch, first_line=first_line)
    found = list(entries(mbox, records, MBOX))
    assert [message_at(mbox, e.offset, records, MBOX)[1] for e in found] == [m.raw for m in batch]
    assert [e.flags for e in found] == [m.flags for m in batch]
    assert [e.received for e in found] == [m.received for m in batch]
    assert [e.size for e in found] == [len(m.raw) for m in batch]


def test_only_a_message_with_a_from_line_is_quoted_and_one_without_a_final_newline_gets_its_length() -> None:
    batch = [_message(b"Subject: a\n\n>From kept as it is\n"), _message(b"Subject: b\n\nFrom x\n>From y\n"),
             _message(b"Subject: c\r\n\r\nno newline")]
    mbox, _ = laid_out(batch)
    assert b"\n\n>From kept as it is\n\nFrom " in mbox
    assert b"\n\n>From x\n>>From y\n\nFrom " in mbox
    assert mbox.endswith(b"Content-Length: 10\nSubject: c\r\n\r\nno newline\n")


def test_without_its_index_an_mbox_reads_as_other_programs_read_it() -> None:
    batch = [_message(b"Subject: a\n\nbody\n", flags=Flags.of(Flag.SEEN, keywords=("work",))),
             _message(b"Subject: b\n\nend")]
    mbox, records = laid_out(batch)
    assert read_back(mbox, {}) == [
        (b"Status: RO\nX-Keywords: work\nSubject: a\n\nbody\n", Flags.of(Flag.SEEN, keywords=("work",))),
        (b"Status: O\nContent-Length: 3\nSubject: b\n\nend", Flags()),
    ]
    assert read_back(mbox, records) == [(m.raw, m.flags) for m in batch]


def test_a_message_with_its_own_status_lines_comes_back_with_the_flags_it_was_copied_with() -> None:
    raw = b"Status: RO\nX-Status: F\nX-Keywords: old\nSubject: s\n\nbody\n"
    mbox, records = laid_out([_message(raw, flags=Flags.of(Flag.DRAFT, keywords=("new",)))])
    assert read_back(mbox, records) == [(raw, Flags.of(Flag.DRAFT, keywords=("new",)))]
    assert mbox.startswith(
        b"From MAILER-DAEMON Wed Jan  1 00:00:00 2020 +0000\nStatus: O\nX-Status: T\nX-Keywords: new\n")


def test_a_message_that_looks_like_our_own_lines_round_trips() -> None:
    listed = imapbase_line(1, ["k"])[0]
    inner, _ = laid_out([_message(b"Subject: inner\n\nx", flags=Flags.of(Flag.SEEN))], first_line=listed)
    raw = inner.split(b"\n", 1)[1]  # starts with X-IMAPbase, Status: RO, Content-Length
    mbox, records = laid_out([_message(raw)])
    assert read_back(mbox, records) == [(raw, Flags())]


@pytest.mark.parametrize("change",
                         ["body edited in place", "headers added before", "message removed", "file cut short"])
def test_a_stale_index_never_gives_wrong_bytes(change: str) -> None:
    batch = [_message(b"Subject: %d\n\nbody %d\nFrom line\n" % (n, n), flags=Flags.of(Flag.SEEN)) for n in range(3)]
    mbox, records = laid_out(batch)
    second = sorted(records)[1]
    changed = {
        "body edited in place": mbox.replace(b"body 1", b"BODY 1"),
        "headers added before": mbox.replace(b"Status: RO\n", b"X-UID: 1\nStatus: RO\n", 1),
        "message removed": mbox[:second] + mbox[sorted(records)[2]:],
        "file cut short": mbox[: second + 40],
    }[change]
    as_foreign = read_back(changed, {})
    got = read_back(changed, records)
    # Each message comes back either as it was written, or as the file now holds it: never a mix.
    assert len(got) == len(as_foreign)
    for (data, flags), foreign in zip(got, as_foreign):
        assert (data, flags) in [(m.raw, m.flags) for m in batch] or (data, flags) == foreign
    if change == "body edited in place":
        assert got[1] == as_foreign[1]


def test_an_mbox_written_before_the_index_reads_exactly(tmp_path: Path) -> None:
    shutil.copytree(LEGACY, tmp_path / "archive")
    expected = [(base64.b64decode(m["raw"]), Flags(frozenset(map(Flag, m["system"])), frozenset(m["keywords"])),
                 datetime.fromisoformat(m["received"])) for m in json.loads((LEGACY / "expected.json").read_text())]
    with _store(tmp_path / "archive", readonly=True) as store:
        assert [(m.raw, m.flags, m.received) for m in store.messages(("INBOX",))] == expected
    with _store(tmp_path / "archive") as store:  # appending starts an index and keeps the old messages exact
        store.append_batch(("INBOX",), [_message(b"Subject: new\n\nFrom x\n", flags=Flags.of(Flag.SEEN))])
        got = [(m.raw, m.flags, m.received) for m in store.messages(("INBOX",))]
    assert got == expected + [(b"Subject: new\n\nFrom x\n", Flags.of(Flag.SEEN), datetime(2020, 1, 1, tzinfo=UTC))]
    assert sorted(os.listdir(tmp_path / "archive" / "INBOX")) == [".mbox.index", "mbox"]  # the length file is gone


def test_an_append_of_an_older_migrator_killed_midway_is_cut_off_before_the_next(tmp_path: Path) -> None:
    shutil.copytree(LEGACY, tmp_path / "archive")
    mbox = tmp_path / "archive" / "INBOX" / "mbox"
    data = mbox.read_bytes()
    last = data.rindex(b"\nFrom ") + 1
    (tmp_path / "archive" / "INBOX" / ".mbox.length").write_bytes(b"%020d\n" % last)
    mbox.write_bytes(data[: last + 70])  # the last message's From line, marker and part of its status lines
    expected = [base64.b64decode(m["raw"]) for m in json.loads((LEGACY / "expected.json").read_text())]
    with _store(tmp_path / "archive") as store:
        store.append_batch(("INBOX",), [_message(b"Subject: new\n\nbody\n")])
        assert [m.raw for m in store.messages(("INBOX",))] == expected[:-1] + [b"Subject: new\n\nbody\n"]


# --- foreign mbox files -------------------------------------------------------------------


def test_reads_mboxo_as_the_file_holds_it() -> None:
    mbox = (
        b"From a@example.org Mon Jan  1 10:00:00 2001\nStatus: RO\nX-Status: A\nSubject: one\n\n>From quoted\nbody\n\n"
        b"From b@example.org Tue Jan  2 10:00:00 2001\nSubject: two\n\nno newline at the end"
    )
    first, second = entries(mbox, {}, MBOX)
    assert message_bytes(mbox, first, MBOX) == b"Status: RO\nX-Status: A\nSubject: one\n\n>From quoted\nbody\n"
    assert first.flags == Flags.of(Flag.SEEN, Flag.ANSWERED)
    assert first.received == datetime(2001, 1, 1, 10, tzinfo=UTC)
    assert message_bytes(mbox, second, MBOX) == b"Subject: two\n\nno newline at the end"


def test_reads_mboxcl2_by_content_length() -> None:
    body = b"line\n\nFrom not a separator\n"
    mbox = (
        b"From x Mon Jan  1 10:00:00 2001\nContent-Length: %d\nSubject: a\n\n" % len(body) + body + b"\n"
        b"From y Mon Jan  1 10:00:00 2001\nSubject: b\n\nb\n"
    )
    first, second = entries(mbox, {}, MBOX)
    assert message_bytes(mbox, first, MBOX) == b"Content-Length: %d\nSubject: a\n\n" % len(body) + body
    assert message_bytes(mbox, second, MBOX) == b"Subject: b\n\nb\n"


def test_a_wrong_content_length_falls_back_to_separators() -> None:
    mbox = b"From x Mon Jan  1 10:00:00 2001\nContent-Length: 999\n\nbody\n\nFrom y Mon Jan  1 10:00:00 2001\n\nb\n"
    found = [message_bytes(mbox, e, MBOX) for e in entries(mbox, {}, MBOX)]
    assert found == [b"Content-Length: 999\n\nbody\n", b"\nb\n"]


def test_a_file_not_starting_with_from_is_refused() -> None:
    with pytest.raises(ValueError):
        list(entries(b"Subject: not an mbox\n\n", {}, MBOX))


# --- an append cut short --------------------------------------------------------------------

FOREIGN = b"From someone Mon Jan  1 10:00:00 2001\nSubject: foreign\n\nbody\n\n"


@given(st.lists(messages, max_size=3), st.sampled_from([b"", b"\n", b"\n\n"]),
       st.lists(messages, min_size=1, max_size=3), st.data())
def test_kept_length_cuts_off_only_the_message_an_append_was_writing(
    earlier: list[Message], prefix: bytes, batch: list[Message], data: st.DataObject
) -> None:
    # The line or two an append adds first follow another program's mail that lacks its final blank line.
    foreign = FOREIGN[: len(FOREIGN) - len(prefix)]
    before = foreign + (b"" if prefix else laid_out(earlier)[0])
    laid = lay_out(batch, MBOX, len(before) + len(prefix))
    appended = prefix + b"".join(piece for item in laid for piece in item.pieces())
    intended = [item.record for item in laid]
    cut = data.draw(st.integers(0, len(appended)), label="cut")
    mbox = before + appended[:cut]
    whole = max([r.end for r in intended if r.end <= len(mbox)], default=len(before))
    assert kept_length(mbox, len(before), intended, MBOX) == whole
    later = mbox + b"\n\n" + FOREIGN  # mail another program appended since is never cut, nor what comes before it
    assert kept_length(later, len(before), intended, MBOX) == len(later)


# --- the store ----------------------------------------------------------------------------


def _store(path: Path, readonly: bool = False):
    return open_store(parse_endpoint(f"mbox:{path}"), readonly=readonly)


def _message(raw: bytes = b"Subject: s\n\nbody\n", **kwargs) -> Message:
    return Message(raw, received=datetime(2020, 1, 1, tzinfo=UTC), **kwargs)


def test_layout_is_a_directory_per_folder_with_an_mbox_file(tmp_path: Path) -> None:
    with _store(tmp_path / "a") as store:
        store.ensure_folder(("INBOX",))
        store.append_batch(("Lists", "python"), [_message()])
        store.append_batch(("Lists",), [_message()])
        assert [f.path for f in store.list_folders()] == [("INBOX",), ("Lists",), ("Lists", "python")]
    assert (tmp_path / "a" / "INBOX" / "mbox").is_file()
    assert (tmp_path / "a" / "Lists" / "mbox").is_file()
    assert (tmp_path / "a" / "Lists" / "python" / "mbox").is_file()


def test_appended_messages_leave_the_page_cache_but_the_last_page(tmp_path: Path) -> None:
    require_dropped_pages(tmp_path)
    body = b"x" * 64 * 1024 + b"\n"
    with _store(tmp_path / "a") as store:
        store.append_batch(("INBOX",), [_message(b"Subject: %d\n\n" % i + body) for i in range(3)])
        store.append_batch(("INBOX",), [_message(b"Subject: %d\n\n" % i + body) for i in range(3, 6)])
    *written, last = cached_pages(tmp_path / "a" / "INBOX" / "mbox")
    assert len(written) > 90 and not any(written)
    assert last  # kept for the next batch, which reads the file's last bytes
    with _store(tmp_path / "a", readonly=True) as store:
        assert len(list(store.messages(("INBOX",)))) == 6


def test_reads_a_single_mbox_file_as_inbox_and_refuses_to_write_it(tmp_path: Path) -> None:
    path = tmp_path / "export.mbox"
    path.write_bytes(b"From x Mon Jan  1 10:00:00 2001\nSubject: a\n\nbody\n")
    with _store(path, readonly=True) as store:
        assert [f.path for f in store.list_folders()] == [("INBOX",)]
        assert [m.raw for m in store.messages(("INBOX",))] == [b"Subject: a\n\nbody\n"]
    with pytest.raises(StoreError, match="single mbox file"):
        _store(path).open()


def test_reads_the_classic_layout_of_plain_mbox_files(tmp_path: Path) -> None:
    (tmp_path / "Lists").mkdir()
    (tmp_path / "INBOX").write_bytes(b"From x Mon Jan  1 10:00:00 2001\n\ninbox\n")
    (tmp_path / "Lists" / "python").write_bytes(b"From x Mon Jan  1 10:00:00 2001\n\npython\n")
    (tmp_path / "notes.txt").write_bytes(b"not mail")
    with _store(tmp_path, readonly=True) as store:
        folders = {f.path: f.selectable for f in store.list_folders()}
        assert folders == {("INBOX",): True, ("Lists",): False, ("Lists", "python"): True}
        assert [m.raw for m in store.messages(("Lists", "python"))] == [b"\npython\n"]


def test_appending_to_a_foreign_file_adds_the_missing_blank_line(tmp_path: Path) -> None:
    (tmp_path / "INBOX").mkdir()
    (tmp_path / "INBOX" / "mbox").write_bytes(b"From x Mon Jan  1 10:00:00 2001\n\nno blank line after me\n")
    with _store(tmp_path) as store:
        (result,) = store.append_batch(("INBOX",), [_message(b"From me\n")])
        got = list(store.messages(("INBOX",)))
    assert [m.raw for m in got] == [b"\nno blank line after me\n", b"From me\n"]
    assert got[1].uid == result.uid


def test_scan_does_not_need_the_bodies(tmp_path: Path) -> None:
    big = b"Subject: big\n\n" + b"From line\n" * 100_000
    with _store(tmp_path) as store:
        store.append_batch(("INBOX",), [_message(big), _message()])
        refs = list(store.scan(("INBOX",)).refs)
        assert [r.size for r in refs] == [len(big), len(_message().raw)]
        assert [m.raw for m in store.fetch(("INBOX",), refs[1:])] == [_message().raw]


def test_flags_cannot_be_changed_in_place(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        assert not store.supports_flag_updates
        (result,) = store.append_batch(("INBOX",), [_message()])
        with pytest.raises(StoreError):
            store.set_flags(("INBOX",), result.uid, Flags.of(Flag.SEEN))


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_a_failed_write_restores_the_file_length(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    with _store(tmp_path) as store:
        store.append_batch(("INBOX",), [_message()])
        path = tmp_path / "INBOX" / "mbox"
        before = path.read_bytes()
        real_write = os.write
        calls = []

        def disk_fills_up(fd: int, data: bytes) -> int:
            if not os.readlink(f"/proc/self/fd/{fd}").endswith("/mbox"):
                return real_write(fd, data)  # the dotlock
            calls.append(len(data))
            if len(calls) == 3:
                raise OSError(code, os.strerror(code))
            return real_write(fd, data[: max(1, len(data) // 2)])  # short writes too

        monkeypatch.setattr(os, "write", disk_fills_up)
        batch = [_message(b"x" * 1000), _message(b"y" * 1000)]
        if code == errno.ENOSPC:  # the disk takes nothing more: the run stops, in one sentence
            full = r"^cannot write to .*/INBOX/mbox: No space left on device; it is back "
            with pytest.raises(DiskError, match=full):
                store.append_batch(("INBOX",), batch)
        else:  # only this batch failed
            results = store.append_batch(("INBOX",), batch)
            assert all(not r.ok and os.strerror(code) in r.error for r in results)
        monkeypatch.undo()
        assert path.read_bytes() == before
        assert not (tmp_path / "INBOX" / "mbox.lock").exists()
        assert [m.raw for m in store.messages(("INBOX",))] == [_message().raw]


def test_a_held_dotlock_stops_the_write_and_a_stale_one_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "mbox"
    path.touch()
    dotlock = tmp_path / "mbox.lock"
    dotlock.write_text(f"{os.getpid()}:{socket.gethostname()}\n")  # a holder that runs
    with pytest.raises(FolderError, match="locked by"):
        with lock.dotlock(path, wait=0.2):
            pass
    old = time.time() - lock.STALE_AFTER - 10
    os.utime(dotlock, (old, old))
    with lock.dotlock(path, wait=0.2):
        assert dotlock.read_text() == f"{os.getpid()}:{socket.gethostname()}\n"
    assert not dotlock.exists()


def test_the_dotlock_of_a_killed_run_is_taken_over_at_once(tmp_path: Path) -> None:
    path = tmp_path / "mbox"
    path.touch()
    dotlock = tmp_path / "mbox.lock"
    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()
    dotlock.write_text(f"{killed.pid}:{socket.gethostname()}\n")
    with lock.dotlock(path, wait=0.2):
        assert dotlock.read_text() == f"{os.getpid()}:{socket.gethostname()}\n"
    holders = (f"{os.getpid()}:{socket.gethostname()}\n", f"{killed.pid}:another-host\n", f"{killed.pid}\n")
    for living_or_elsewhere in holders:
        dotlock.write_text(living_or_elsewhere)
        with pytest.raises(FolderError, match="locked by"):
            with lock.dotlock(path, wait=0.2):
                pass


@pytest.mark.parametrize("content", [b"", b"not a pid\n"])
def test_an_empty_or_unreadable_dotlock_is_stale_after_seconds_not_minutes(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "mbox"
    path.touch()
    dotlock = tmp_path / "mbox.lock"
    dotlock.write_bytes(content)
    # Just made: its program may not have written it yet.
    with pytest.raises(FolderError, match="locked by"), lock.dotlock(path, wait=0.2):
        pass
    old = time.time() - lock.EMPTY_GRACE - 1
    os.utime(dotlock, (old, old))
    with lock.dotlock(path, wait=0.2):
        assert dotlock.read_text() == f"{os.getpid()}:{socket.gethostname()}\n"


def test_a_dotlock_appears_whole(tmp_path: Path) -> None:
    path = tmp_path / "mbox"
    path.touch()
    script = "import sys, pathlib\nfrom migrator.stores.mbox import lock\nfor _ in range(2000):\n"
    script += "    with lock.dotlock(pathlib.Path(sys.argv[1])):\n        pass\n"
    locker = subprocess.Popen([sys.executable, "-c", script, str(path)])
    seen = set()
    while locker.poll() is None:
        try:
            seen.add((tmp_path / "mbox.lock").read_bytes())
        except FileNotFoundError:
            pass
    assert locker.returncode == 0
    assert seen == {f"{locker.pid}:{socket.gethostname()}\n".encode()}
    assert os.listdir(tmp_path) == ["mbox"]


def test_the_dotlock_of_a_process_killed_while_holding_it_is_taken_over_at_once(tmp_path: Path) -> None:
    path = tmp_path / "mbox"
    path.touch()
    script = "import sys, pathlib, time\nfrom migrator.stores.mbox import lock\n"
    script += "with lock.dotlock(pathlib.Path(sys.argv[1])):\n    print('held', flush=True)\n    time.sleep(60)\n"
    holder = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE)
    assert holder.stdout.readline() == b"held\n"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert (tmp_path / "mbox.lock").read_text() == f"{holder.pid}:{socket.gethostname()}\n"
    started = time.monotonic()
    with lock.dotlock(path, wait=0):
        assert time.monotonic() - started < 1


def test_a_full_disk_while_locking_is_one_sentence_and_leaves_no_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _store(tmp_path) as store:
        store.append_batch(("INBOX",), [_message()])
        before = sorted(os.listdir(tmp_path / "INBOX"))
        real_write = os.write

        def disk_full_for_the_lock(fd: int, data: bytes) -> int:
            if "mbox.lock" in os.readlink(f"/proc/self/fd/{fd}"):  # the dotlock, or a file linked as it
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", disk_full_for_the_lock)
        with pytest.raises(FolderError, match=r"^cannot lock .*/INBOX/mbox: cannot write .*/INBOX/mbox\.lock "
                           r"\(No space left on device\); check the free space and the permissions of .*/INBOX$"):
            store.append_batch(("INBOX",), [_message()])
        monkeypatch.undo()
        assert sorted(os.listdir(tmp_path / "INBOX")) == before
        assert [m.raw for m in store.messages(("INBOX",))] == [_message().raw]


def test_without_hard_links_the_dotlock_is_created_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_hard_links(source: object, destination: object) -> None:
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))  # what vfat answers

    path = tmp_path / "mbox"
    path.touch()
    monkeypatch.setattr(os, "link", no_hard_links)
    with lock.dotlock(path, wait=0.2):
        assert (tmp_path / "mbox.lock").read_text() == f"{os.getpid()}:{socket.gethostname()}\n"
        with pytest.raises(FolderError, match="locked by"), lock.dotlock(path, wait=0.2):
            pass
    assert os.listdir(tmp_path) == ["mbox"]


def test_reading_leaves_nothing_behind(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        store.append_batch(("INBOX",), [_message()])
    before = sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    with _store(tmp_path, readonly=True) as store:
        list(store.messages(("INBOX",)))
        store.list_folders()
        with pytest.raises(StoreError):
            store.append_batch(("INBOX",), [_message()])
    assert sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before


def test_missing_archive_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"^no mbox archive at .*: check the path$"):
        _store(tmp_path / "nothing", readonly=True).open()


def test_a_non_mbox_file_in_a_folder_is_a_folder_error(tmp_path: Path) -> None:
    (tmp_path / "INBOX").mkdir()
    (tmp_path / "INBOX" / "mbox").write_bytes(b"garbage\n")
    with _store(tmp_path, readonly=True) as store:
        with pytest.raises(FolderError, match="is not an mbox file"):
            store.scan(("INBOX",))


def test_an_mbox_file_linking_outside_the_archive_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"")
    with _store(tmp_path / "archive") as store:
        store.ensure_folder(("INBOX",))
        (tmp_path / "archive" / "INBOX" / "mbox").unlink()
        (tmp_path / "archive" / "INBOX" / "mbox").symlink_to(outside)
        with pytest.raises(FolderError, match="INBOX/mbox is a symbolic link; not followed$"):
            store.append_batch(("INBOX",), [_message()])
    assert outside.read_bytes() == b""


# --- appends killed midway ------------------------------------------------------------------

APPENDER = """
import sys
from datetime import datetime, timezone
from migrator.endpoints.endpoint import parse_endpoint
from migrator.core.message import Message
from migrator.stores import open_store
raw = b"Subject: big\\n\\n" + b"a line of the body\\n" * int(sys.argv[2])
with open_store(parse_endpoint("mbox:" + sys.argv[1]), readonly=False) as store:
    (result,) = store.append_batch(("INBOX",), [Message(raw, received=datetime(2020, 1, 1, tzinfo=timezone.utc))])
    assert result.ok, result.error
"""
BIG_LINES = 2_000_000  # 38 MB: the kill lands while it is being written


def test_a_full_disk_when_writing_the_index_is_one_sentence_and_writes_no_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write

    def disk_full_for_the_index(fd: int, data: bytes) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").endswith("/.mbox.index"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    with _store(tmp_path) as store:
        store.ensure_folder(("INBOX",))
        monkeypatch.setattr(os, "write", disk_full_for_the_index)
        with pytest.raises(FolderError, match=r"^cannot write .*/INBOX/\.mbox\.index, the index of .*/INBOX/mbox: "
                           r"No space left on device$"):
            store.append_batch(("INBOX",), [_message()])
    assert (tmp_path / "INBOX" / "mbox").read_bytes() == b""
    assert sorted(os.listdir(tmp_path / "INBOX")) == [".mbox.index", "mbox"]


def test_an_append_killed_midway_is_cut_off_before_the_next(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    with _store(archive) as store:
        store.append_batch(("INBOX",), [_message()])
    mbox = archive / "INBOX" / "mbox"
    before = mbox.stat().st_size
    appender = subprocess.Popen([sys.executable, "-c", APPENDER, str(archive), str(BIG_LINES)])
    while mbox.stat().st_size == before and appender.poll() is None:
        pass
    os.kill(appender.pid, signal.SIGKILL)
    assert appender.wait() == -signal.SIGKILL
    big = b"Subject: big\n\n" + b"a line of the body\n" * BIG_LINES
    assert before < mbox.stat().st_size < before + len(big)  # the beginning of the message, and no more

    assert subprocess.run([sys.executable, "-c", APPENDER, str(archive), str(BIG_LINES)], check=False).returncode == 0

    with _store(archive, readonly=True) as store:
        got = [m.raw for m in store.messages(("INBOX",))]
    assert len(got) == 2 and got[0] == _message().raw and got[1] == big  # none cut short, none twice


def _archive(endpoint: str) -> dict[str, list[tuple[bytes, Flags]]]:
    """Return each non-empty folder's messages as sorted (raw, flags) pairs."""
    with open_store(parse_endpoint(endpoint), readonly=True) as store:
        folders = [f for f in store.list_folders() if f.selectable]
        got = {f.name: sorted((m.raw, m.flags) for m in store.messages(f.path)) for f in folders}
    return {name: items for name, items in got.items() if items}


def _mbox_files(root: Path) -> list[Path]:
    return [Path(directory, name) for directory, _, names in os.walk(root) for name in names if name == "mbox"]


def _cut_short(path: Path) -> bool:
    """Return True when the mbox ``path`` ends with the beginning of a message its last append did not finish."""
    index = Index()
    with contextlib.suppress(FileNotFoundError):  # killed before its first append began
        index.feed(path.with_name(".mbox.index").read_bytes())
    mbox = path.read_bytes()
    if index.ended is not None or index.begun is None:
        return False
    return kept_length(mbox, index.begun, index.batch, MBOX) < len(mbox)


def _written(root: Path) -> int:
    total = 0
    for path in _mbox_files(root):
        with contextlib.suppress(FileNotFoundError):
            total += path.stat().st_size
    return total


@pytest.mark.slow
def test_copies_into_mbox_killed_at_random_moments_end_exact_on_rerun(tmp_path: Path) -> None:
    """20 runs of the real command, each SIGKILLed when a random share of its bytes is written, then rerun."""
    source = f"maildir:{tmp_path / 'source'}"
    write_archive(parse_endpoint(source), corpus(large=True))
    expected = _archive(source)
    total = sum(len(raw) for items in expected.values() for raw, _ in items)
    moments = random.Random(21)
    figures = collections.Counter()
    for trial in range(20):
        target, state = tmp_path / f"mbox{trial}", tmp_path / f"state{trial}.sqlite"
        command = [sys.executable, "-m", "migrator", "copy", source, f"mbox:{target}", "--state", str(state), "--quiet"]
        threshold = moments.uniform(0, total)
        run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while run.poll() is None and _written(target) < threshold:
            pass
        run.kill()
        figures["killed"] += run.wait() == -signal.SIGKILL
        figures["cut short"] += any(map(_cut_short, _mbox_files(target)))
        rerun = subprocess.run(command, capture_output=True, text=True, check=False)
        assert rerun.returncode == 0, rerun.stderr
        got = _archive(f"mbox:{target}")
        figures["exact"] += got == expected
        if trial % 5 == 4:  # and a second rerun changes nothing
            written = {path: path.read_bytes() for path in _mbox_files(target)}
            assert subprocess.run(command, check=False).returncode == 0
            assert {path: path.read_bytes() for path in _mbox_files(target)} == written
        for name in expected.keys() | got.keys():
            have, want = collections.Counter(got.get(name, [])), collections.Counter(expected.get(name, []))
            figures["lost"] += sum((want - have).values())
            figures["duplicated or partial"] += sum((have - want).values())
    print(f"SIGKILL sweep, mbox target: {dict(figures)}")
    assert figures["exact"] == 20 and figures["lost"] == figures["duplicated or partial"] == 0, figures
    assert figures["killed"] >= 15 and figures["cut short"] >= 5, figures  # the sweep did hit appends midway
