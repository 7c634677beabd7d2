"""Staged writes: a Maildir target is written batch by batch but made durable every few megabytes.

What must hold: a staged message is invisible until its commit; one that cannot be committed
is counted failed, is not recorded, and is copied by the rerun; what was staged before the
source failed is committed and recorded, so the rerun copies only the rest.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from migrator.core.errors import ConnectionLost
from migrator.core.message import Flag, Flags, Message
from migrator.endpoints.endpoint import parse_endpoint
from migrator.pipeline import folder_copy
from migrator.pipeline.options import CopyOptions
from migrator.pipeline.run import run_copy
from migrator.state.statefile import StateStore
from migrator.stores import open_store
from migrator.stores.local.files import Durability
from migrator.stores.maildir import MaildirStore
from tests.support.archives import write_archive

MB = 1024 * 1024


def _messages(count: int, size: int = 100) -> list[Message]:
    return [
        Message(b"Subject: %d\r\n\r\n" % n + b"x" * size, Flags(frozenset({Flag.SEEN})),
                datetime(2021, 1, 1 + n % 28, tzinfo=timezone.utc), ("INBOX",))
        for n in range(count)
    ]


def _bodies(path: Path) -> list[bytes]:
    with open_store(parse_endpoint(f"maildir:{path}")) as store:
        return sorted(m.raw for m in store.messages(("INBOX",)))


def _source(tmp_path: Path, messages: list[Message]):
    source = parse_endpoint(f"maildir:{tmp_path / 'source'}")
    write_archive(source, messages)
    return source


def _copy(tmp_path: Path, source, state: StateStore):
    return run_copy(source, [parse_endpoint(f"maildir:{tmp_path / 'target'}")], CopyOptions(connections=1), state)


def _rerun_copies_the_rest(tmp_path: Path, source, state: StateStore, messages: list[Message], rest: int) -> None:
    rerun = _copy(tmp_path, source, state)
    assert (rerun.copied, rerun.already_there, rerun.failed) == (rest, len(messages) - rest, 0)
    assert _bodies(tmp_path / "target") == sorted(m.raw for m in messages)


# --- the store -----------------------------------------------------------------------------


def test_staged_messages_appear_only_when_committed(tmp_path: Path) -> None:
    inbox, work = _messages(2)
    with open_store(parse_endpoint(f"maildir:{tmp_path}"), readonly=False) as store:
        (first,) = store.stage_batch(("INBOX",), [inbox])
        (second,) = store.stage_batch(("Work",), [work])
        assert os.listdir(tmp_path / "cur") == [] and os.listdir(tmp_path / ".Work" / "cur") == []
        assert store.commit_staged() == {}
        assert store.commit_staged() == {}  # nothing is left to commit
    assert os.listdir(tmp_path / "cur") == [first.uid + ":2,S"]
    assert os.listdir(tmp_path / ".Work" / "cur") == [second.uid + ":2,S"]
    assert os.listdir(tmp_path / "tmp") == os.listdir(tmp_path / ".Work" / "tmp") == []


def test_a_store_closed_before_the_commit_leaves_nothing_behind(tmp_path: Path) -> None:
    with open_store(parse_endpoint(f"maildir:{tmp_path}"), readonly=False) as store:
        assert all(r.ok for r in store.stage_batch(("INBOX",), _messages(3)))
    assert os.listdir(tmp_path / "tmp") == os.listdir(tmp_path / "cur") == []


def test_a_message_that_cannot_be_moved_into_cur_fails_alone(tmp_path: Path, monkeypatch) -> None:
    rename = os.rename
    with open_store(parse_endpoint(f"maildir:{tmp_path}"), readonly=False) as store:
        first, second = store.stage_batch(("INBOX",), _messages(2))

        def failing_rename(source, destination):
            if first.uid in str(source):
                raise OSError(28, "No space left on device")
            rename(source, destination)

        monkeypatch.setattr(os, "rename", failing_rename)
        failed = store.commit_staged()
    assert list(failed) == [first.uid] and "cannot move the message into" in failed[first.uid]
    assert os.listdir(tmp_path / "cur") == [second.uid + ":2,S"]
    assert os.listdir(tmp_path / "tmp") == []


def test_a_sync_that_fails_fails_every_staged_message(tmp_path: Path) -> None:
    def failing_syncfs(directory):
        raise OSError(5, "Input/output error", directory)

    failing = Durability(syncfs=failing_syncfs)  # as a disk that fails under the filesystem
    with MaildirStore(parse_endpoint(f"maildir:{tmp_path}"), readonly=False, durability=failing) as store:
        staged = store.stage_batch(("INBOX",), _messages(3))
        failed = store.commit_staged()
    assert sorted(failed) == sorted(r.uid for r in staged)
    assert all("Input/output error" in error for error in failed.values())
    assert os.listdir(tmp_path / "tmp") == os.listdir(tmp_path / "cur") == []


# --- the copy --------------------------------------------------------------------------------


def test_a_copy_commits_every_few_megabytes_not_every_batch(tmp_path: Path, monkeypatch) -> None:
    messages = _messages(12, size=MB)  # each fills a 2 MB write batch alone
    source = _source(tmp_path, messages)
    monkeypatch.setattr(folder_copy, "COMMIT_BYTES", 4 * MB)
    committed = []
    commit = MaildirStore.commit_staged

    def counting_commit(store):
        committed.append(len(os.listdir(tmp_path / "target" / "tmp")))  # the files waiting for this commit
        return commit(store)

    monkeypatch.setattr(MaildirStore, "commit_staged", counting_commit)
    summary = _copy(tmp_path, source, StateStore(tmp_path / "state.sqlite"))
    assert summary.copied == 12
    assert [count for count in committed if count] == [4, 4, 4]
    assert _bodies(tmp_path / "target") == sorted(m.raw for m in messages)


def test_a_message_whose_commit_fails_is_counted_failed_and_copied_by_the_rerun(tmp_path: Path, monkeypatch) -> None:
    messages = _messages(3)
    source = _source(tmp_path, messages)
    state = StateStore(tmp_path / "state.sqlite")
    rename = os.rename
    refused = []

    def refuse_the_first_into_the_target(path, destination):
        if not refused and str(tmp_path / "target") in str(destination):
            refused.append(path)
            raise OSError(28, "No space left on device")
        rename(path, destination)

    monkeypatch.setattr(os, "rename", refuse_the_first_into_the_target)
    summary = _copy(tmp_path, source, state)
    assert (summary.copied, summary.failed) == (2, 1)
    assert "No space left on device" in summary.failures[0].reason
    monkeypatch.undo()
    _rerun_copies_the_rest(tmp_path, source, state, messages, rest=1)


def test_what_was_staged_before_the_source_failed_is_kept(tmp_path: Path, monkeypatch) -> None:
    messages = _messages(10)
    source = _source(tmp_path, messages)
    state = StateStore(tmp_path / "state.sqlite")
    fetch = MaildirStore.fetch

    def failing_fetch(store, folder, refs):
        for n, message in enumerate(fetch(store, folder, refs)):
            if n == 6:
                raise ConnectionLost("the server closed the connection")
            yield message

    monkeypatch.setattr(MaildirStore, "fetch", failing_fetch)
    summary = _copy(tmp_path, source, state)
    assert summary.copied == 6 and "closed the connection" in summary.failures[0].reason
    assert len(_bodies(tmp_path / "target")) == 6
    monkeypatch.undo()
    _rerun_copies_the_rest(tmp_path, source, state, messages, rest=4)
