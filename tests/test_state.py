"""The state file: pairs, pending and done rows, renumbering, runs; private and durable."""

import os
import sqlite3
import stat

from migrator.state.statefile import PairKey, StateStore


def test_a_pair_is_dirty_while_writes_are_under_way(tmp_path):
    state = StateStore(tmp_path / "s.sqlite")
    pair = state.open_pair(PairKey("src", ("INBOX",), "dst", ("INBOX",)), ("INBOX",), "v1")
    assert not pair.dirty
    state.mark_dirty(pair, True)
    assert state.pair(PairKey("src", ("INBOX",), "dst", ("INBOX",))).dirty
    state.record(pair, [("1", "t1", "k1", "\\seen")])
    state.mark_dirty(pair, False)
    pair = state.pair(PairKey("src", ("INBOX",), "dst", ("INBOX",)))
    assert state.target_uid(pair, "1") == "t1" and state.copied(pair).flags("1") == "\\seen"


def test_state_survives_reopen_and_is_private(tmp_path):
    path = tmp_path / "sub" / "s.sqlite"
    state = StateStore(path)
    pair = state.open_pair(PairKey("src", ("A", "B"), "dst", ("A", "B")), ("A", "B"), "v1")
    state.record(pair, [("7", "70", "k", "")])
    state.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = StateStore(path)
    assert again.target_uid(again.pair(PairKey("src", ("A", "B"), "dst", ("A", "B"))), "7") == "70"


def test_renumber_handles_overlapping_uids(tmp_path):
    state = StateStore(tmp_path / "s.sqlite")
    pair = state.open_pair(PairKey("src", ("INBOX",), "dst", ("INBOX",)), ("INBOX",), "v1")
    state.record(pair, [("1", "a", "k1", ""), ("2", "b", "k2", ""), ("3", "c", "k3", "")])
    pair = state.renumber(pair, "v2", {"1": "2", "2": "3"})
    assert pair.validity == "v2"
    assert {uid: key for uid, _, key in state.recorded(pair)} == {"2": "k1", "3": "k2"}


def test_runs_are_listed_newest_first(tmp_path):
    state = StateStore(tmp_path / "s.sqlite")
    first = state.start_run("nightly")
    state.end_run(first, copied=3, already_there=0, left_out=0, failed=0, size=10, exit_code=0)
    state.start_run("nightly")
    runs = state.last_runs()
    assert [r.ended is None for r in runs] == [True, False]
    assert runs[1].copied == 3


def write_schema_1(path, tables: str) -> None:
    """Write a state file as migrator's schema 1 did: its meta table, and ``tables`` (SQL)."""
    with sqlite3.connect(path) as old:
        old.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                          "INSERT INTO meta VALUES ('schema', '1');" + tables)
    old.close()


def test_a_failed_runs_error_is_kept_also_in_a_state_file_from_before_errors_were(tmp_path):
    path = tmp_path / "s.sqlite"
    write_schema_1(
        path,
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT NOT NULL, started REAL NOT NULL, ended REAL, "
        "copied INTEGER, skipped INTEGER, failed INTEGER, bytes INTEGER, exit_code INTEGER);"
        "INSERT INTO runs (name, started, ended, exit_code) VALUES ('nightly', 1.0, 2.0, 0);")
    state = StateStore(path)
    failed = state.start_run("nightly")
    state.end_run(failed, copied=0, already_there=0, left_out=0, failed=0, size=0, exit_code=2, error="$PW is not set")
    assert [(r.exit_code, r.error) for r in state.last_runs()] == [(2, "$PW is not set"), (0, None)]
    state.close()
    reopened = StateStore(path)  # the column is added once, not again
    assert reopened.last_runs()[0].error == "$PW is not set"
    reopened.close()


def test_held_rows_are_recorded_only_when_their_target_is_durable(tmp_path):
    state = StateStore(tmp_path / "s.sqlite")
    pst, other = (state.open_pair(PairKey("src", (name,), "pst", (name,)), (name,), "v1") for name in ("A", "B"))
    state.hold(pst, [("1", None, "k1", ""), ("2", None, "k2", "\\seen")])
    state.hold(other, [("9", None, "k9", "")])
    assert state.count(pst) == 0
    state.record_held(pst)
    copied = state.copied(pst)
    assert len(copied) == 2 and (copied.flags("1"), copied.flags("2")) == ("", "\\seen")
    assert state.count(other) == 0


def test_held_rows_of_a_target_never_closed_are_forgotten(tmp_path):
    state = StateStore(tmp_path / "s.sqlite")
    pair = state.open_pair(PairKey("src", ("INBOX",), "pst", ("INBOX",)), ("INBOX",), "v1")
    state.hold(pair, [("1", None, "k1", "")])
    state.close()  # the run died before the PST was renamed into place
    again = StateStore(tmp_path / "s.sqlite")
    again.record_held(pair)
    again.hold(pair, [])
    again.record_held(pair)
    assert again.count(pair) == 0


def test_a_schema_1_state_file_keeps_its_pairs_and_rows(tmp_path):
    path = tmp_path / "s.sqlite"
    write_schema_1(
        path,
        "CREATE TABLE pairs (id INTEGER PRIMARY KEY, source TEXT NOT NULL, folder TEXT NOT NULL, "
        "target TEXT NOT NULL, target_folder TEXT NOT NULL DEFAULT '', validity TEXT NOT NULL DEFAULT '', "
        "dirty INTEGER NOT NULL DEFAULT 0, version TEXT NOT NULL DEFAULT '', UNIQUE (source, folder, target));"
        "CREATE TABLE copied (pair INTEGER NOT NULL REFERENCES pairs(id), uid TEXT NOT NULL, target_uid TEXT, "
        "content_key TEXT NOT NULL, flags TEXT NOT NULL, copied_at REAL NOT NULL, PRIMARY KEY (pair, uid)) "
        "WITHOUT ROWID;"
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT NOT NULL, started REAL NOT NULL, ended REAL, "
        "copied INTEGER, skipped INTEGER, failed INTEGER, bytes INTEGER, exit_code INTEGER, error TEXT);"
        """INSERT INTO pairs VALUES (7, 'src', '["INBOX"]', 'dst', '["INBOX"]', 'v1', 0, '3.4');"""
        "INSERT INTO copied VALUES (7, '1', 't1', 'k1', '\\seen', 1.0);"
        "INSERT INTO runs (name, started, ended, copied, skipped, failed, bytes, exit_code) "
        "VALUES ('nightly', 1.0, 2.0, 1, 5, 0, 10, 0);")
    state = StateStore(path)
    pair = state.pair(PairKey("src", ("INBOX",), "dst", ("INBOX",)))
    assert pair is not None and (pair.id, pair.validity, pair.version, pair.target_path) == (7, "v1", "3.4", ("INBOX",))
    assert state.target_uid(pair, "1") == "t1" and state.copied(pair).flags("1") == "\\seen"
    assert [(r.copied, r.already_there, r.left_out) for r in state.last_runs()] == [(1, 5, None)]
    state.close()
    assert StateStore(path).pair(PairKey("src", ("INBOX",), "dst", ("INBOX",))) == pair  # migrated once
