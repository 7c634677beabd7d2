"""The state file: pairs, pending and done rows, renumbering, runs; private and durable."""

import os
import stat

from migrator.state import StateStore


def test_a_pair_is_dirty_while_writes_are_under_way(tmp_path):
    state = StateStore(tmp_path / "s.sqlite")
    pair = state.open_pair("src", ("INBOX",), "dst", ("INBOX",), "v1")
    assert not pair.dirty
    state.mark_dirty(pair, True)
    assert state.pair("src", ("INBOX",), "dst").dirty
    state.record(pair, [("1", "t1", "k1", "\\seen")])
    state.mark_dirty(pair, False)
    pair = state.pair("src", ("INBOX",), "dst")
    assert state.target_uid(pair, "1") == "t1" and state.copied(pair).flags("1") == "\\seen"


def test_state_survives_reopen_and_is_private(tmp_path):
    path = tmp_path / "sub" / "s.sqlite"
    state = StateStore(path)
    pair = state.open_pair("src", ("A", "B"), "dst", ("A", "B"), "v1")
    state.record(pair, [("7", "70", "k", "")])
    state.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = StateStore(path)
    assert again.target_uid(again.pair("src", ("A", "B"), "dst"), "7") == "70"


def test_renumber_handles_overlapping_uids(tmp_path):
    state = StateStore(tmp_path / "s.sqlite")
    pair = state.open_pair("src", ("INBOX",), "dst", ("INBOX",), "v1")
    state.record(pair, [("1", "a", "k1", ""), ("2", "b", "k2", ""), ("3", "c", "k3", "")])
    pair = state.renumber(pair, "v2", {"1": "2", "2": "3"})
    assert pair.validity == "v2"
    assert {uid: key for uid, _, key in state.recorded(pair)} == {"2": "k1", "3": "k2"}


def test_runs_are_listed_newest_first(tmp_path):
    state = StateStore(tmp_path / "s.sqlite")
    first = state.start_run("nightly")
    state.end_run(first, copied=3, skipped=0, failed=0, size=10, exit_code=0)
    state.start_run("nightly")
    runs = state.last_runs()
    assert [r.ended is None for r in runs] == [True, False]
    assert runs[1].copied == 3


def test_held_rows_are_recorded_only_when_their_target_is_durable(tmp_path):
    state = StateStore(tmp_path / "s.sqlite")
    pst, other = (state.open_pair("src", (name,), "pst", (name,), "v1") for name in ("A", "B"))
    state.hold(pst, [("1", None, "k1", ""), ("2", None, "k2", "\\seen")])
    state.hold(other, [("9", None, "k9", "")])
    assert state.count(pst) == 0
    state.record_held(pst)
    copied = state.copied(pst)
    assert len(copied) == 2 and (copied.flags("1"), copied.flags("2")) == ("", "\\seen")
    assert state.count(other) == 0


def test_held_rows_of_a_target_never_closed_are_forgotten(tmp_path):
    state = StateStore(tmp_path / "s.sqlite")
    pair = state.open_pair("src", ("INBOX",), "pst", ("INBOX",), "v1")
    state.hold(pair, [("1", None, "k1", "")])
    state.close()  # the run died before the PST was renamed into place
    again = StateStore(tmp_path / "s.sqlite")
    again.record_held(pair)
    again.hold(pair, [])
    again.record_held(pair)
    assert again.count(pair) == 0
