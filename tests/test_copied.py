"""What earlier runs copied, held compactly, answers exactly as the state file's rows would."""

from __future__ import annotations

import random
import tracemalloc

from hypothesis import given
from hypothesis import strategies as st

from migrator.core.message import Message
from migrator.endpoints.endpoint import parse_endpoint
from migrator.pipeline.options import CopyOptions
from migrator.pipeline.run import run_copy
from migrator.state.copied import CopiedMessages
from migrator.state.statefile import PairKey, StateStore
from tests.support.archives import write_archive

uids = st.one_of(st.integers(0, 2**64 - 1).map(str), st.text(min_size=1, max_size=8), st.sampled_from(["07", "0", "1"]))
rows = st.dictionaries(uids, st.sampled_from(["", "\\seen", "\\seen \\flagged", "$Work"]), max_size=30)


@given(rows, st.lists(uids, max_size=10), st.randoms())
def test_copied_messages_answer_as_the_rows_do(recorded: dict[str, str], others: list[str], rnd: random.Random) -> None:
    given_rows = list(recorded.items())
    rnd.shuffle(given_rows)
    copied = CopiedMessages(given_rows)
    assert len(copied) == len(recorded)
    assert bool(copied) == bool(recorded)
    for uid in [*recorded, *others]:
        assert (uid in copied) == (uid in recorded)
        assert copied.flags(uid) == recorded.get(uid)


def test_the_state_file_gives_every_row_back(tmp_path) -> None:
    state = StateStore(tmp_path / "s.sqlite")
    pair = state.open_pair(PairKey("src", ("INBOX",), "dst", ("INBOX",)), ("INBOX",), "v1")
    recorded = {str(uid): "\\seen" if uid % 3 else "" for uid in range(1, 2_000, 7)} | {"07": "$x", "name": ""}
    state.record(pair, [(uid, f"t{uid}", f"k{uid}", flags) for uid, flags in recorded.items()])
    copied = state.copied(pair)
    assert {uid: copied.flags(uid) for uid in recorded} == recorded
    assert "2" not in copied and "7" not in copied  # "07" was recorded, which is not "7"
    assert state.target_uid(pair, "8") == "t8" and state.target_uid(pair, "9") is None


def test_a_large_folder_copied_before_is_small(tmp_path) -> None:
    state = StateStore(tmp_path / "s.sqlite")
    pair = state.open_pair(PairKey("src", ("INBOX",), "dst", ("INBOX",)), ("INBOX",), "v1")
    state.record(pair, [(str(uid), str(uid), f"{uid:020x}:{uid}", "\\seen") for uid in range(1, 50_001)])
    tracemalloc.start()
    try:
        copied = state.copied(pair)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(copied) == 50_000 and "50000" in copied and "50001" not in copied
    assert held / 50_000 < 20  # bytes a message: 13 now; a dict of the rows took about 400


def test_an_incremental_run_holds_little_of_a_large_folder_copied_before(tmp_path) -> None:
    source, target = parse_endpoint(f"mbox:{tmp_path / 'mail'}"), parse_endpoint(f"maildir:{tmp_path / 'copy'}")
    state = StateStore(tmp_path / "state.sqlite")
    write_archive(source, [Message(b"Subject: first\r\n\r\nhi\r\n")])
    assert run_copy(source, [target], CopyOptions(), state).copied == 1
    # As if the folder held 50 000 more messages copied before (numeric uids, as mbox offsets are).
    pair = state.pair(PairKey(str(source), ("INBOX",), str(target), ("INBOX",)))
    state.record(pair, [(str(10**9 + n), f"t{n}", f"{n:020x}:{n}", "\\seen") for n in range(50_000)])
    write_archive(source, [Message(b"Subject: second\r\n\r\nnew mail\r\n")])
    tracemalloc.start()
    try:
        summary = run_copy(source, [target], CopyOptions(), state)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert summary.copied == 1 and summary.failures == []
    assert peak < 5_000_000  # 0.7 MB in all; 20.5 MB when the rows were held as a dict


def test_after_a_killed_run_a_twin_of_a_message_copied_before_is_still_written(tmp_path) -> None:
    source, target = parse_endpoint(f"mbox:{tmp_path / 'mail'}"), parse_endpoint(f"maildir:{tmp_path / 'copy'}")
    state = StateStore(tmp_path / "state.sqlite")
    twin = Message(b"Subject: same\r\n\r\nsame bytes\r\n")
    write_archive(source, [twin])
    assert run_copy(source, [target], CopyOptions(), state).copied == 1
    # The second twin arrives; a run marks the pair dirty and is killed before writing it.
    write_archive(source, [twin])
    state.mark_dirty(state.pair(PairKey(str(source), ("INBOX",), str(target), ("INBOX",))), True)
    summary = run_copy(source, [target], CopyOptions(), state)
    # The target's copy is the first twin's, as the state file says: it must not be taken for the second.
    assert summary.copied == 1 and summary.failures == []
    assert len(list((tmp_path / "copy" / "cur").iterdir())) == 2
