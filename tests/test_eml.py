"""The EML directory: one exact file per message, flags in an append-only sidecar, dates as mtimes."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrator.core.errors import MessageError, StoreError
from migrator.core.message import Flag, Flags, Message
from migrator.endpoints.endpoint import parse_endpoint
from migrator.stores import open_store
from migrator.stores.eml import FLAGS_FILE, flags_line, next_number, parse_flags_file
from migrator.stores.local.files import publish

UTC = timezone.utc
flag_sets = st.builds(
    Flags, st.frozensets(st.sampled_from(list(Flag))), st.frozensets(st.text(min_size=1, max_size=10), max_size=4)
)


def _store(path: Path, readonly: bool = False):
    return open_store(parse_endpoint(f"eml:{path}"), readonly=readonly)


def _message(raw: bytes = b"Subject: s\r\n\r\nbody\r\n", **kwargs) -> Message:
    return Message(raw, received=kwargs.pop("received", datetime(2020, 1, 1, tzinfo=UTC)), **kwargs)


@given(st.text(min_size=1), flag_sets, flag_sets)
def test_flags_file_round_trips_and_last_line_wins(name: str, first: Flags, second: Flags) -> None:
    data = flags_line(name, first) + b'{"file": "cut short' + b"\n" + flags_line(name, second)
    assert parse_flags_file(data) == {name: second}


def test_next_number_follows_the_highest() -> None:
    assert next_number(["000001.eml", "000041.EML", "notes.eml", "7.txt"]) == 42
    assert next_number([]) == 1


def test_messages_are_exact_files_with_their_dates(tmp_path: Path) -> None:
    raw = b"Subject: s\n\nno final newline"
    when = datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    with _store(tmp_path) as store:
        results = store.append_batch(("INBOX",), [_message(raw, received=when), _message(b"")])
    assert [r.uid for r in results] == ["000001.eml", "000002.eml"]
    path = tmp_path / "INBOX" / "000001.eml"
    assert path.read_bytes() == raw and path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "INBOX" / "000002.eml").read_bytes() == b""
    assert (tmp_path / "INBOX").stat().st_mode & 0o777 == 0o700
    assert sorted(os.listdir(tmp_path / "INBOX")) == [FLAGS_FILE, "000001.eml", "000002.eml"]
    with _store(tmp_path, readonly=True) as store:
        assert next(iter(store.messages(("INBOX",)))).received == when


def test_flag_changes_and_deletes(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        (result,) = store.append_batch(("A", "B"), [_message(flags=Flags.of(Flag.SEEN))])
        store.set_flags(("A", "B"), result.uid, Flags.of(Flag.FLAGGED, keywords=("x y",)))
        (message,) = store.messages(("A", "B"))
        assert message.flags == Flags.of(Flag.FLAGGED, keywords=("x y",))
        with pytest.raises(MessageError):
            store.set_flags(("A", "B"), "000099.eml", Flags())
        store.delete(("A", "B"), [result.uid])
        assert list(store.messages(("A", "B"))) == []
        (again,) = store.append_batch(("A", "B"), [_message()])
        (message,) = store.messages(("A", "B"))
        assert message.flags == Flags()  # a reused name does not inherit the old flags


def test_a_plain_directory_of_eml_files_is_inbox(tmp_path: Path) -> None:
    (tmp_path / "exported.eml").write_bytes(b"Subject: a\n\na\n")
    (tmp_path / "readme.txt").write_bytes(b"not mail")
    with _store(tmp_path) as store:
        assert [f.path for f in store.list_folders()] == [("INBOX",)]
        assert [m.uid for m in store.messages(("INBOX",))] == ["exported.eml"]
        (result,) = store.append_batch(("INBOX",), [_message()])
    assert (tmp_path / result.uid).is_file() and not (tmp_path / "INBOX").exists()


def test_a_file_in_the_way_is_never_replaced(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        store.append_batch(("INBOX",), [_message(b"first")])
        (tmp_path / "INBOX" / "000002.eml").symlink_to(tmp_path / "elsewhere")
        results = store.append_batch(("INBOX",), [_message(b"second")])
    assert results[0].uid == "000003.eml"
    assert not (tmp_path / "elsewhere").exists()


def test_missing_directory_for_reading(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"^no EML directory at .*: check the path$"):
        _store(tmp_path / "nothing", readonly=True).open()


def test_publishing_never_replaces_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / "final.eml").write_bytes(b"keep me")
    (tmp_path / "temp").write_bytes(b"new")
    with pytest.raises(FileExistsError):
        publish(tmp_path / "temp", tmp_path / "final.eml")
    assert (tmp_path / "final.eml").read_bytes() == b"keep me" and not (tmp_path / "temp").exists()
