"""The Maildir++ store: Dovecot's file names, flag letters, keywords file, dates, and safety."""

from __future__ import annotations

import calendar
import logging
import os
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrator.core.contentkey import crlf_size
from migrator.core.errors import FolderError, MessageError, StoreError
from migrator.core.message import Flag, Flags, Message
from migrator.endpoints.endpoint import parse_endpoint
from migrator.stores import open_store
from migrator.stores.local.files import Durability
from migrator.stores.maildir import (
    MaildirStore,
    assign_keywords,
    flags_of,
    format_keywords,
    letters_of,
    parse_keywords,
    split_name,
)
from tests.support.pagecache import cached_pages, require_dropped_pages

UTC = timezone.utc
_NAME = re.compile(r"^(\d+)\.M(\d+)P(\d+)Q(\d+)\.[^,:/]+,S=(\d+),W=(\d+):2,([A-Za-z]*)$")


def _store(path: Path, readonly: bool = False):
    return open_store(parse_endpoint(f"maildir:{path}"), readonly=readonly)


def _store_syncing(path: Path, durability: Durability) -> MaildirStore:
    return MaildirStore(parse_endpoint(f"maildir:{path}"), readonly=False, durability=durability)


def _message(raw: bytes = b"Subject: s\r\n\r\nbody\r\n", **kwargs) -> Message:
    return Message(raw, received=kwargs.pop("received", datetime(2020, 1, 1, tzinfo=UTC)), **kwargs)


def _files(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


# --- pure parts -----------------------------------------------------------------------------


@given(st.frozensets(st.sampled_from(list(Flag))), st.frozensets(st.sampled_from(["a", "$Junk", "work", "x y"])))
def test_flag_letters_round_trip(system: frozenset[Flag], keywords: frozenset[str]) -> None:
    mapping, left_out = assign_keywords({}, keywords)
    indexes = {name: index for index, name in mapping.items()}
    letters = letters_of(Flags(system, keywords), indexes)
    assert letters == "".join(sorted(letters)) and not left_out
    assert flags_of(letters, mapping) == Flags(system, keywords)


def test_letters_are_dovecots() -> None:
    everything = Flags.of(*Flag)
    assert letters_of(everything, {}) == "DFPRST"
    assert split_name("1.M2P3Q4.host,S=5,W=6:2,FS") == ("1.M2P3Q4.host,S=5,W=6", "FS")
    assert split_name("1.M2P3.host") == ("1.M2P3.host", "")


def test_keywords_file_keeps_existing_letters_and_reports_overflow() -> None:
    existing = parse_keywords("0 $Junk\n2 work\nbad line\n99 too far\n")
    assert existing == {0: "$Junk", 2: "work"}
    mapping, left_out = assign_keywords(existing, ["work", "new"])
    assert mapping == {0: "$Junk", 1: "new", 2: "work"} and left_out == []
    assert format_keywords(mapping) == "0 $Junk\n1 new\n2 work\n"
    full, left_out = assign_keywords({}, [f"k{i:02d}" for i in range(30)])
    assert len(full) == 26 and left_out == ["k26", "k27", "k28", "k29"]
    assert assign_keywords({}, ["two\nlines", "ok"]) == ({0: "ok"}, ["two\nlines"])


# --- the store ------------------------------------------------------------------------------


def test_file_names_sizes_and_permissions(tmp_path: Path) -> None:
    raw = b"Subject: s\n\nbare LF body\n"
    with _store(tmp_path / "m") as store:
        (result,) = store.append_batch(("INBOX",), [_message(raw, flags=Flags.of(Flag.SEEN, Flag.FLAGGED))])
    (name,) = _files(tmp_path / "m" / "cur")
    match = _NAME.match(name)
    assert match and int(match.group(5)) == len(raw) and int(match.group(6)) == crlf_size(raw)
    assert match.group(7) == "FS" and name.startswith(result.uid + ":2,")
    assert _files(tmp_path / "m" / "tmp") == [] and _files(tmp_path / "m" / "new") == []
    assert (tmp_path / "m" / "cur" / name).stat().st_mode & 0o777 == 0o600
    for directory in ("", "cur", "new", "tmp"):
        assert (tmp_path / "m" / directory).stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("syncfs", [True, False], ids=["one syncfs", "fsync per file"])
def test_a_batch_is_durable_with_or_without_syncfs(tmp_path: Path, syncfs: bool) -> None:
    durability = Durability() if syncfs else Durability(syncfs=None)  # as on a system without syncfs(2)
    messages = [_message(f"Subject: {i}\r\n\r\nbody {i}\r\n".encode()) for i in range(40)]
    with _store_syncing(tmp_path / "m", durability) as store:
        assert all(r.ok for r in store.append_batch(("INBOX",), messages))
    with _store(tmp_path / "m", readonly=True) as store:
        assert sorted(m.raw for m in store.messages(("INBOX",))) == sorted(m.raw for m in messages)
    assert _files(tmp_path / "m" / "tmp") == []


@pytest.mark.parametrize("kept_open", [128, 2], ids=["every file kept open", "most opened again"])
def test_a_durable_batch_leaves_the_page_cache(tmp_path: Path, kept_open: int) -> None:
    require_dropped_pages(tmp_path)
    body = b"x" * 64 * 1024
    messages = [_message(b"Subject: %d\r\n\r\n" % i + body) for i in range(5)]
    with _store_syncing(tmp_path / "m", Durability(kept_open=kept_open)) as store:
        assert all(r.ok for r in store.append_batch(("INBOX",), messages))
    written = sorted((tmp_path / "m" / "cur").iterdir())
    assert len(written) == 5
    assert not any(any(cached_pages(path)) for path in written)
    with _store(tmp_path / "m", readonly=True) as store:  # dropped from the cache, not from the disk
        assert sorted(m.raw for m in store.messages(("INBOX",))) == sorted(m.raw for m in messages)


def test_received_date_is_the_mtime_to_the_microsecond_even_before_1970(tmp_path: Path) -> None:
    when = datetime(1965, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)
    with _store(tmp_path) as store:
        store.append_batch(("INBOX",), [_message(received=when)])
        (message,) = store.messages(("INBOX",))
    assert message.received == when
    (name,) = _files(tmp_path / "cur")
    expected_ns = calendar.timegm(when.utctimetuple()) * 10**9 + when.microsecond * 1000
    assert (tmp_path / "cur" / name).stat().st_mtime_ns == expected_ns < 0


def test_keywords_go_through_dovecot_keywords(tmp_path: Path) -> None:
    (tmp_path / "cur").mkdir()
    (tmp_path / "new").mkdir()
    (tmp_path / "dovecot-keywords").write_text("0 $Junk\n")
    with _store(tmp_path) as store:
        store.append_batch(("INBOX",), [_message(flags=Flags.of(keywords=("work", "$Junk")))])
        (message,) = store.messages(("INBOX",))
    assert (tmp_path / "dovecot-keywords").read_text() == "0 $Junk\n1 work\n"
    assert _files(tmp_path / "cur")[0].endswith(":2,ab")
    assert message.flags.keywords == {"work", "$Junk"}


def test_more_than_26_keywords_keeps_26_and_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    many = tuple(f"k{i:02d}" for i in range(28))
    with caplog.at_level(logging.WARNING), _store(tmp_path) as store:
        store.append_batch(("INBOX",), [_message(flags=Flags.of(keywords=many))])
        (message,) = store.messages(("INBOX",))
    assert message.flags.keywords == set(many[:26])
    assert "['k26', 'k27']" in caplog.text


def test_set_flags_renames_and_reads_new_too(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        (result,) = store.append_batch(("INBOX",), [_message()])
        store.set_flags(("INBOX",), result.uid, Flags.of(Flag.ANSWERED, keywords=("done",)))
        assert _files(tmp_path / "cur") == [result.uid + ":2,R" + "a"]
        os.rename(tmp_path / "cur" / _files(tmp_path / "cur")[0], tmp_path / "new" / "delivered.1")
        (tmp_path / "cur" / ".hidden").write_bytes(b"ignored")
        os.mkdir(tmp_path / "cur" / "subdir")
        (message,) = store.messages(("INBOX",))
        assert message.uid == "delivered.1" and message.flags == Flags()
        store.set_flags(("INBOX",), "delivered.1", Flags.of(Flag.SEEN))
        assert "delivered.1:2,S" in _files(tmp_path / "cur") and _files(tmp_path / "new") == []
        store.delete(("INBOX",), ["delivered.1"])
        assert list(store.messages(("INBOX",))) == []


def test_fetch_finds_a_message_renamed_since_the_scan(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        store.append_batch(("INBOX",), [_message()])
        refs = list(store.scan(("INBOX",)).refs)
        (name,) = _files(tmp_path / "cur")
        os.rename(tmp_path / "cur" / name, tmp_path / "cur" / (refs[0].uid + ":2,S"))  # another MUA read it
        (message,) = store.fetch(("INBOX",), refs)
        assert message.flags == Flags.of(Flag.SEEN)


def test_folders_are_dovecot_directories(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        store.ensure_folder(("v1.2 notes", "Entwürfe"))
        store.ensure_folder(("inbox", "Sub"))
        store.ensure_folder(("Work",))
        store.ensure_folder(("work",))
        listed = {f.path: f.selectable for f in store.list_folders()}
    assert sorted(name for name in os.listdir(tmp_path) if name.startswith(".")) == [
        ".INBOX.Sub", ".Work", ".v1\\2e2 notes.Entw&APw-rfe", ".work"
    ]
    assert (tmp_path / ".Work" / "maildirfolder").is_file()
    assert listed == {
        ("INBOX",): True, ("INBOX", "Sub"): True, ("Work",): True, ("work",): True,
        ("v1.2 notes",): False, ("v1.2 notes", "Entwürfe"): True,
    }


def test_refuses_to_turn_a_random_directory_into_a_maildir(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not a Maildir"):
        _store(tmp_path).open()


def test_missing_maildir_for_reading_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"^no Maildir at .*nothing: check the path$"):
        _store(tmp_path / "nothing", readonly=True).open()


def test_unwritable_location_is_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(
        StoreError,
        match=r"^cannot create the Maildir at .*/file/mail: .*file is not a directory; choose a writable directory$",
    ):
        _store(tmp_path / "file" / "mail").open()


def test_reading_changes_nothing(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        store.append_batch(("A",), [_message(flags=Flags.of(keywords=("k",)))])
    before = sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    with _store(tmp_path, readonly=True) as store:
        store.list_folders()
        list(store.messages(("A",)))
        with pytest.raises(StoreError):
            store.set_flags(("A",), "x", Flags())
    assert sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before


def test_a_message_that_cannot_be_written_fails_alone_and_leaves_no_file(tmp_path):
    with _store(tmp_path / "m") as store:
        store.ensure_folder(("Work",))
        tmp = tmp_path / "m" / ".Work" / "tmp"
        tmp.rmdir()
        tmp.write_bytes(b"")  # a file where tmp/ should be: every write into it fails (even as root)
        results = store.append_batch(("Work",), [_message(), _message(b"Subject: t\r\n\r\nother\r\n")])
    assert [r.ok for r in results] == [False, False]
    assert all("cannot write into" in r.error for r in results)
    assert _files(tmp_path / "m" / ".Work" / "cur") == []


def test_a_message_file_made_a_link_after_the_scan_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "shadow").write_bytes(b"Subject: shadow\n\nroot:secret\n")
    with _store(tmp_path / "m") as store:
        store.append_batch(("INBOX",), [_message()])
        refs = list(store.scan(("INBOX",)).refs)
        (name,) = _files(tmp_path / "m" / "cur")
        (tmp_path / "m" / "cur" / name).unlink()
        (tmp_path / "m" / "cur" / name).symlink_to(tmp_path / "shadow")
        with pytest.raises(
            MessageError, match=rf"^{tmp_path}/m/cur/{re.escape(name)} is a symbolic link; not followed$"
        ):
            list(store.fetch(("INBOX",), refs))


def test_a_directory_made_a_link_after_the_scan_is_not_read(tmp_path: Path) -> None:
    """The link stands above the file, whose own name is no link: only opening each directory without
    following a link finds it."""
    with _store(tmp_path / "m") as store:
        store.append_batch(("INBOX",), [_message()])
        refs = list(store.scan(("INBOX",)).refs)
        (name,) = _files(tmp_path / "m" / "cur")
        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "elsewhere" / name).write_bytes(b"Subject: shadow\n\nroot:secret\n")
        os.rename(tmp_path / "m" / "cur", tmp_path / "m" / "old")
        (tmp_path / "m" / "cur").symlink_to(tmp_path / "elsewhere")
        with pytest.raises(FolderError, match=rf"^{tmp_path}/m/cur is a symbolic link; not followed$"):
            list(store.fetch(("INBOX",), refs))
