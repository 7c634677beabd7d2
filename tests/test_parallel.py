"""Several folders copied at once, each on connections of its own, against a real Dovecot.

Whatever the number of connections, the result is the server's mailbox exactly: every
folder read by one session only, nothing twice, reruns as cheap as after a one-connection
run, and a server that refuses further connections only makes the copy use fewer.
"""

from __future__ import annotations

import functools
import os
import threading
import tracemalloc
from collections import Counter
from datetime import datetime, timezone

import pytest

from harness.corpus import corpus, seed_items, server_safe
from harness.endpoints import endpoint
from migrator.core.message import Message
from migrator.endpoints.endpoint import parse_endpoint
from migrator.pipeline import batches, folder_copy
from migrator.pipeline.batches import write_batches
from migrator.pipeline.foldermap import FolderRules
from migrator.pipeline.options import CopyOptions
from migrator.pipeline.run import run_copy
from migrator.state.statefile import StateStore
from migrator.stores import open_store
from tests.test_copy import contents, imap_endpoint, server_contents


@pytest.fixture
def seeded(dovecot, user):
    """A user holding the server-safe corpus (ten folders); returns (endpoint, what the server holds)."""
    dovecot.seed(user, seed_items(server_safe(corpus())))
    return imap_endpoint(dovecot, user), server_contents(dovecot, user)


def examined_folders(session: list[str]) -> list[str]:
    return [command.split(" ", 1)[1] for command in session if command.upper().startswith("EXAMINE ")]


def test_three_connections_copy_each_folder_once_into_maildir_mbox_and_eml(seeded, tmp_path, dovecot, user):
    source, expected = seeded
    targets = [parse_endpoint(f"{kind}:{tmp_path / kind}") for kind in ("maildir", "mbox", "eml")]
    dovecot.enable_rawlog(user)
    summary = run_copy(source, targets, CopyOptions(connections=3), StateStore(tmp_path / "state.sqlite"))
    assert summary.failures == []
    assert summary.copied == sum(len(items) for items in expected.values())
    for target in targets:
        assert contents(target) == expected, target.kind
    sessions = dovecot.imap_sessions(user)
    assert len(sessions) == 3
    reading = [examined_folders(session) for session in sessions]
    assert all(reading), "every connection copied folders"
    fetched_by = Counter(folder for folders in reading for folder in set(folders))
    assert set(fetched_by.values()) == {1}, "no folder is read by two connections"


def test_every_connection_passes_large_messages_through_the_same_gate(seeded, tmp_path, monkeypatch):
    source, expected = seeded
    gates = []

    def recording(messages, refs, gate):
        gates.append(gate)
        return write_batches(messages, refs, gate)

    monkeypatch.setattr(folder_copy, "write_batches", recording)
    summary = run_copy(source, [parse_endpoint(f"maildir:{tmp_path / 'mail'}")], CopyOptions(connections=3))
    assert summary.failures == []
    assert len(gates) == len([items for items in expected.values() if items])
    assert len({id(gate) for gate in gates}) == 1


def test_a_rerun_after_a_parallel_copy_fetches_nothing(seeded, tmp_path, dovecot, user):
    source, expected = seeded
    target = parse_endpoint(f"maildir:{tmp_path / 'maildir'}")
    state = StateStore(tmp_path / "state.sqlite")
    run_copy(source, [target], CopyOptions(connections=4), state)
    dovecot.enable_rawlog(user)
    again = run_copy(source, [target], CopyOptions(connections=4), state)
    assert (again.copied, again.failures) == (0, [])
    assert again.already_there == sum(len(items) for items in expected.values())
    assert len(dovecot.imap_sessions(user)) == 1, "unchanged folders need no further connection"
    assert contents(target) == expected


def test_folders_mapped_into_one_folder_are_written_by_one_worker(seeded, tmp_path):
    source, expected = seeded
    target = parse_endpoint(f"maildir:{tmp_path / 'maildir'}")
    rules = FolderRules.build([], [], ["re:.*=All"])
    summary = run_copy(source, [target], CopyOptions(rules=rules, connections=4), StateStore(tmp_path / "s.sqlite"))
    assert summary.failures == []
    joined = sorted(item for items in expected.values() for item in items)
    assert contents(target) == {"All": joined}


def test_a_server_that_refuses_more_connections_gets_the_copy_over_fewer(dovecot_server, make_user, tmp_path, caplog):
    server = dovecot_server(max_user_connections=1)
    user = make_user(server)
    server.seed(user, seed_items(server_safe(corpus())))
    expected = server_contents(server, user)
    target = parse_endpoint(f"maildir:{tmp_path / 'maildir'}")
    summary = run_copy(
        imap_endpoint(server, user), [target], CopyOptions(connections=3), StateStore(tmp_path / "s.sqlite")
    )
    assert summary.failures == []
    assert contents(target) == expected
    assert "one connection fewer" in caplog.text and "LIMIT" in caplog.text


def test_an_imap_target_is_written_over_several_connections(seeded, tmp_path, dovecot, make_user):
    source, expected = seeded
    other = make_user()
    target = imap_endpoint(dovecot, other)
    dovecot.enable_rawlog(other)
    summary = run_copy(source, [target], CopyOptions(connections=3), StateStore(tmp_path / "state.sqlite"))
    assert summary.failures == []
    assert server_contents(dovecot, other) == expected
    appending = [s for s in dovecot.imap_sessions(other) if any(c.upper().startswith("APPEND") for c in s)]
    assert len(appending) == 3


def test_a_pst_target_keeps_one_connection(seeded, tmp_path, dovecot, user):
    source, expected = seeded
    dovecot.enable_rawlog(user)
    summary = run_copy(source, [parse_endpoint(f"pst:{tmp_path / 'out.pst'}")], CopyOptions(connections=3))
    assert summary.failures == []
    assert len(dovecot.imap_sessions(user)) == 1
    with open_store(parse_endpoint(f"pst:{tmp_path / 'out.pst'}")) as store:
        assert sum(1 for f in store.list_folders() for _ in store.scan(f.path).refs) == sum(map(len, expected.values()))


@pytest.mark.parametrize("kind", ["maildir", "mbox", "eml"])
def test_folders_made_at_once_by_several_writers_exist_once(kind, tmp_path):
    """Parents made implicitly by one connection while another makes them too are never made twice."""
    endpoint = parse_endpoint(f"{kind}:{tmp_path / kind}")
    folders = [("Projects", str(year), month) for year in (2023, 2024) for month in ("Jan", "Feb")]
    writers = 8
    start = threading.Barrier(writers)
    errors = []

    def write(index: int) -> None:
        with open_store(endpoint, readonly=False) as store:
            start.wait()
            try:
                for folder in folders[index % len(folders):] + folders[:index % len(folders)]:
                    store.ensure_folder(folder)
            except Exception as e:  # noqa: BLE001 - collected for the assertion below
                errors.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with open_store(endpoint) as store:
        listed = [folder.path for folder in store.list_folders() if folder.path != ("INBOX",)]
    assert sorted(listed) == sorted(set(listed))
    assert set(folders) <= set(listed)
    on_disk = sum(len(dirs) for _, dirs, _ in os.walk(tmp_path / kind))
    assert on_disk == {"maildir": 3 + 4 * 4, "mbox": 7, "eml": 7}[kind], "no folder has a second directory"


BIG = 3 * 2**20  # over the gate's 2 MB


def big_and_small():
    """Four large messages, two in a row, then a small one, then two in a row."""
    day = [datetime(2024, 1, n, tzinfo=timezone.utc) for n in range(1, 6)]
    big = [Message(b"Subject: big %d\r\n\r\n" % n + b"x" * BIG + b"\r\n", received=day[n]) for n in range(4)]
    return big[:2] + [Message(b"Subject: small\r\n\r\nhi\r\n", received=day[4])] + big[2:]


def memory_held_at_each_gate_entry(monkeypatch, copy):
    """Run ``copy`` and return the bytes Python held (beyond what it held before) each time
    the gate let a large message be read: under BIG when no large message is in memory."""
    held = []
    original_enter = batches.LargeMessageGate.enter

    def enter(gate, holder, stop):
        entered = original_enter(gate, holder, stop)
        held.append(tracemalloc.get_traced_memory()[0])
        return entered

    monkeypatch.setattr(batches.LargeMessageGate, "enter", enter)
    tracemalloc.start()
    try:
        summary = copy()
    finally:
        tracemalloc.stop()
    assert (summary.copied, summary.failures) == (5, [])
    assert len(held) == 4
    return held


def test_a_written_large_message_read_from_imap_is_gone_before_the_next_one_is_read(dovecot, user, tmp_path,
                                                                                    monkeypatch):
    """Nothing along the way (the IMAP reader, the read-ahead thread, the folder's writer)
    keeps a written large message alive while the gate lets the next one in."""
    dovecot.seed(user, seed_items(big_and_small()))
    target = parse_endpoint(f"maildir:{tmp_path / 'mail'}")
    copy = functools.partial(run_copy, imap_endpoint(dovecot, user), [target], CopyOptions(connections=1))
    assert max(memory_held_at_each_gate_entry(monkeypatch, copy)) < BIG


@pytest.mark.parametrize("kind", ["maildir", "mbox", "eml", "pst"])
def test_a_written_large_message_read_from_files_is_gone_before_the_next_one_is_read(kind, tmp_path, monkeypatch):
    source = parse_endpoint(f"{kind}:{tmp_path / ('source.pst' if kind == 'pst' else 'source')}")
    with open_store(source, readonly=False) as store:
        store.append_batch(("INBOX",), big_and_small())
    target = parse_endpoint(f"maildir:{tmp_path / 'mail'}")
    copy = functools.partial(run_copy, source, [target], CopyOptions(connections=1))
    assert max(memory_held_at_each_gate_entry(monkeypatch, copy)) < BIG


def test_a_written_large_message_read_from_pop3_is_gone_before_the_next_one_is_read(dovecot, user, tmp_path,
                                                                                    monkeypatch):
    dovecot.seed(user, seed_items(big_and_small()))
    target = parse_endpoint(f"maildir:{tmp_path / 'mail'}")
    copy = functools.partial(run_copy, endpoint(dovecot, user, "pop3s"), [target], CopyOptions(connections=1))
    assert max(memory_held_at_each_gate_entry(monkeypatch, copy)) < BIG
