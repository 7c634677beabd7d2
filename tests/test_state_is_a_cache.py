"""The state file is a cache, the stores are the truth: never "already there" for what a target no longer holds.

Each test is one of the ways a run once ended green over a target that lacked the mail: the archive
deleted, the account emptied, a folder rule changed, the source emptied and filled again. The state
file is kept between the runs, as a nightly job keeps it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness import imapwire
from harness.corpus import corpus, server_safe
from migrator.cli import main
from migrator.endpoints.endpoint import parse_endpoint
from migrator.state.statefile import PairKey, StateStore
from migrator.stores import open_store
from tests.support.archives import write_archive
from tests.test_cli import endpoint, run_cli

LOCAL_KINDS = ["maildir", "mbox", "eml", "pst"]


def held(text: str) -> list[bytes]:
    """Return the raw messages of every folder of the store written as ``text``, sorted."""
    found = []
    with open_store(parse_endpoint(text)) as store:
        for folder in store.list_folders():
            if folder.selectable:
                found += [m.raw for m in store.messages(folder.path)]
    return sorted(found)


def copy(capsys: pytest.CaptureFixture[str], *args: str, password: str = "") -> tuple[int, str]:
    code, out, err = run_cli(["copy", *args], password, capsys)
    return code, out + err


@pytest.fixture
def source(tmp_path: Path) -> str:
    """A Maildir of the shared corpus (several folders, odd messages), as a source."""
    text = f"maildir:{tmp_path / 'source'}"
    write_archive(parse_endpoint(text), corpus())
    return text


def target_path(text: str) -> Path:
    return Path(text.partition(":")[2])


@pytest.mark.parametrize("kind", LOCAL_KINDS)
def test_an_archive_deleted_after_a_copy_is_written_again(kind, source, tmp_path, capsys):
    target = f"{kind}:{tmp_path / ('out.pst' if kind == 'pst' else 'out')}"
    state = str(tmp_path / "state.sqlite")
    assert copy(capsys, source, target, "--state", state)[0] == 0
    want = held(source)
    path = target_path(target)
    shutil.rmtree(path) if path.is_dir() else path.unlink()

    code, said = copy(capsys, source, target, "--state", state)

    assert code == 0
    assert held(target) == want
    assert "copied again" in said and f"{len(want)} copied" in said
    assert copy(capsys, source, target, "--state", state)[1].count(" 0 copied") == 1  # and then nothing more


@pytest.mark.parametrize("kind", ["maildir", "mbox", "eml"])
def test_a_folder_emptied_in_the_archive_is_filled_again(kind, source, tmp_path, capsys):
    target = f"{kind}:{tmp_path / 'out'}"
    state = str(tmp_path / "state.sqlite")
    assert copy(capsys, source, target, "--state", state)[0] == 0
    want = held(target)
    for message_file in _message_files(kind, target_path(target)):
        message_file.unlink() if kind != "mbox" else message_file.write_bytes(b"")

    code, said = copy(capsys, source, target, "--state", state)

    assert code == 0 and held(target) == want, said


def _message_files(kind: str, root: Path) -> list[Path]:
    if kind == "maildir":
        return [f for f in (root / "cur").iterdir()]
    if kind == "mbox":
        return [root / "INBOX" / "mbox"]
    return [f for f in (root / "INBOX").iterdir() if f.suffix == ".eml"]


def test_an_account_emptied_after_a_copy_is_filled_again(dovecot, make_user, tmp_path, capsys):
    user = make_user()
    target = endpoint(dovecot, user)
    messages = server_safe(corpus())
    source = f"maildir:{tmp_path / 'source'}"
    write_archive(parse_endpoint(source), messages)
    state = str(tmp_path / "state.sqlite")
    assert copy(capsys, source, target, "--state", state, password=user.password)[0] == 0
    want = dovecot.dump(user, include_empty=False)
    with dovecot.imap(user) as imap:  # the account is emptied, as a provider re-creating it would
        for name in want:
            imap.select(imapwire.quote(imapwire.mutf7_encode(name)))
            imap.store("1:*", "+FLAGS", "\\Deleted")
            imap.expunge()

    code, said = copy(capsys, source, target, "--state", state, password=user.password)

    assert code == 0, said
    assert dovecot.dump(user, include_empty=False) == want


def test_a_changed_map_copies_into_the_new_folder_and_verify_agrees(source, tmp_path, capsys):
    target = f"maildir:{tmp_path / 'out'}"
    state = str(tmp_path / "state.sqlite")
    assert copy(capsys, source, target, "--state", state, "--folder", "INBOX")[0] == 0

    code, said = copy(capsys, source, target, "--state", state, "--folder", "INBOX", "--map", "INBOX=Old/INBOX")

    assert code == 0
    with open_store(parse_endpoint(target)) as store:  # the source's INBOX, now in both places
        moved = sorted(m.raw for m in store.messages(("Old", "INBOX")))
        kept = sorted(m.raw for m in store.messages(("INBOX",)))
    assert moved == kept != []
    assert main(["verify", source, target, "--folder", "INBOX", "--map", "INBOX=Old/INBOX"]) == 0, said


def test_a_source_emptied_and_filled_again_with_the_same_mail_is_not_copied_twice(source, tmp_path, capsys):
    target = f"maildir:{tmp_path / 'out'}"
    state = str(tmp_path / "state.sqlite")
    assert copy(capsys, source, target, "--state", state)[0] == 0
    want = held(target)
    shutil.rmtree(target_path(source))  # re-imported: the same messages under new file names
    write_archive(parse_endpoint(source), corpus())

    code, said = copy(capsys, source, target, "--state", state)

    assert code == 0 and " 0 copied" in said and f"{len(want)} already there" in said, said
    assert held(target) == want
    assert f"{len(want)} already there" in copy(capsys, source, target, "--state", state)[1]


def test_two_identical_messages_in_a_reimported_source_still_make_two(tmp_path, capsys):
    source, target, state = f"maildir:{tmp_path / 'src'}", f"maildir:{tmp_path / 'out'}", str(tmp_path / "s.sqlite")
    twin = corpus()[0]
    write_archive(parse_endpoint(source), [twin])
    assert copy(capsys, source, target, "--state", state)[0] == 0
    shutil.rmtree(target_path(source))
    write_archive(parse_endpoint(source), [twin, twin])  # re-imported, with a second copy this time

    assert copy(capsys, source, target, "--state", state)[0] == 0

    assert held(target) == [twin.raw, twin.raw]


@pytest.mark.parametrize("state_kept", [True, False])
def test_a_dry_run_says_what_the_real_run_then_does(state_kept, source, tmp_path, capsys):
    target = f"maildir:{tmp_path / 'out'}"
    state = tmp_path / "state.sqlite"
    assert copy(capsys, source, target, "--state", str(state))[0] == 0
    if not state_kept:
        state.unlink()  # the archive holds everything; only the content can tell
    _, dry = copy(capsys, source, target, "--state", str(state), "--dry-run")
    _, real = copy(capsys, source, target, "--state", str(state))
    folder_lines = [line for line in dry.splitlines() if line.startswith("would copy ")]
    assert folder_lines and all(line.startswith("would copy      0 messages") for line in folder_lines), dry
    assert f"would copy 0 messages (0.0 MB), {len(held(target))} already there, 0 left out" in dry
    assert " 0 copied" in real


def test_a_dry_run_after_a_killed_run_finds_what_the_killed_run_wrote(source, tmp_path, capsys):
    target = f"maildir:{tmp_path / 'out'}"
    state_path = tmp_path / "state.sqlite"
    assert copy(capsys, source, target, "--state", str(state_path), "--folder", "INBOX")[0] == 0
    state = StateStore(state_path)  # as a run killed after writing, before recording: rows gone, pair dirty
    pair = state.pair(PairKey(str(parse_endpoint(source)), ("INBOX",), str(parse_endpoint(target)), ("INBOX",)))
    assert pair is not None
    written = [uid for uid, _, _ in state.recorded(pair)]
    state.drop(pair, written[: len(written) // 2])
    state.mark_dirty(pair, True)
    state.close()
    _, dry = copy(capsys, source, target, "--state", str(state_path), "--folder", "INBOX", "--dry-run")
    _, real = copy(capsys, source, target, "--state", str(state_path), "--folder", "INBOX")
    assert "would copy 0 messages" in dry and " 0 copied" in real, (dry, real)
