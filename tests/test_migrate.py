"""IMAP as a target: migrations between differing servers, restores, reruns, kills and rejections.

Everything runs against real Dovecot instances; interruptions are real SIGKILLs of the
real command line, timed by a proxy that counts the bytes of the real conversation.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from harness.corpus import corpus, seed_items, server_safe
from harness.dovecot import OUTLOOK_SPECIAL_FOLDERS
from harness.endpoints import url
from harness.proxy import KillProxy
from migrator.endpoints.endpoint import parse_endpoint
from migrator.pipeline.foldermap import FolderRules
from migrator.pipeline.options import CopyOptions
from migrator.pipeline.run import run_copy
from migrator.pipeline.verify import verify
from migrator.state.statefile import StateStore
from migrator.stores import open_store

SENT = [(("Sent",), f"Subject: sent {i}\r\nMessage-ID: <sent{i}@x>\r\n\r\nsent mail {i}\r\n".encode(), ["\\Seen"],
         datetime(2023, 1, 1 + i, 9, 0, tzinfo=timezone.utc)) for i in range(3)]


def dump(server, user, rename=None):
    """Return the server's own view of ``user``'s mail, non-empty folders only, sorted by bytes."""
    got = server.dump(user, include_empty=False)
    return {(rename or {}).get(name, name): sorted(items, key=lambda i: i[0]) for name, items in got.items()}


@pytest.fixture
def dotted(dovecot_server):
    """A second server that nests with '.' and calls its \\Sent folder "Sent Items"."""
    return dovecot_server(separator=".", special_folders=OUTLOOK_SPECIAL_FOLDERS)


@pytest.fixture
def source(dovecot, make_user):
    user = make_user()
    dovecot.seed(user, seed_items(server_safe(corpus(), separator=".")) + SENT)
    return user


def test_migration_between_layouts_lands_in_the_right_folders(dovecot, dotted, source, make_user):
    target = make_user(dotted)
    summary = run_copy(parse_endpoint(url(dovecot, source)), [parse_endpoint(url(dotted, target))])
    assert summary.failures == []
    assert dump(dotted, target) == dump(dovecot, source, rename={"Sent": "Sent Items"})
    with (
        open_store(parse_endpoint(url(dovecot, source))) as src,
        open_store(parse_endpoint(url(dotted, target))) as dst,
    ):
        assert all(folder.complete and not folder.flag_differences for folder in verify(src, dst))


def test_second_run_appends_nothing(dovecot, dotted, source, make_user, tmp_path):
    target = make_user(dotted)
    endpoints = parse_endpoint(url(dovecot, source)), [parse_endpoint(url(dotted, target))]
    state = StateStore(tmp_path / "state.sqlite")
    run_copy(*endpoints, state=state)
    dotted.enable_rawlog(target)
    dovecot.enable_rawlog(source)
    summary = run_copy(*endpoints, state=state)
    assert summary.copied == 0
    assert not [c for c in dotted.imap_commands(target) if "APPEND" in c.upper()]
    assert not [c for c in dovecot.imap_commands(source) if "BODY" in c.upper()]


def test_backup_then_restore_to_an_empty_account(dovecot, source, make_user, tmp_path):
    archive = parse_endpoint(f"maildir:{tmp_path / 'backup'}")
    run_copy(parse_endpoint(url(dovecot, source)), [archive])
    fresh = make_user()
    assert run_copy(archive, [parse_endpoint(url(dovecot, fresh))]).failures == []
    assert dump(dovecot, fresh) == dump(dovecot, source)


def test_without_state_a_half_finished_copy_gets_only_what_is_missing(dovecot, source, make_user):
    target = make_user()
    messages = seed_items(server_safe(corpus(), separator="."))
    dovecot.seed(target, messages[::2])  # as if a manual copy stopped half-way
    summary = run_copy(parse_endpoint(url(dovecot, source)), [parse_endpoint(url(dovecot, target))])
    assert summary.already_there == len(messages[::2])
    assert dump(dovecot, target) == dump(dovecot, source)


def test_uidvalidity_change_is_carried_by_content_keys(dovecot, source, tmp_path):
    target = parse_endpoint(f"maildir:{tmp_path / 'md'}")
    state = StateStore(tmp_path / "state.sqlite")
    src = parse_endpoint(url(dovecot, source))
    run_copy(src, [target], state=state)
    conn = dovecot.imap(source)  # recreate INBOX's sibling folder: same mail, new UIDVALIDITY
    folder_items = dovecot.dump(source)["Work Stuff"]
    conn.delete('"Work Stuff"')
    conn.logout()
    renewed = [(("Work Stuff",), raw, flags, when) for raw, flags, when in folder_items]
    dovecot.seed(
        source, renewed + [(("Work Stuff",), b"Subject: fresh\r\n\r\nnew\r\n", [], datetime.now(timezone.utc))]
    )
    summary = run_copy(src, [target], state=state)
    assert summary.copied == 1
    with open_store(target) as archive:
        assert len(list(archive.messages(("Work Stuff",)))) == len(folder_items) + 1


def test_a_rejected_message_is_reported_and_the_run_goes_on(dovecot, make_user, tmp_path, capsys):
    archive = parse_endpoint(f"maildir:{tmp_path / 'md'}")
    good = corpus()[:3]
    with open_store(archive, readonly=False) as store:
        store.ensure_folder(("INBOX",))
        store.append_batch(("INBOX",), [replace(m, folder=("INBOX",)) for m in good] + [replace(good[0], raw=b"")])
    target = make_user()
    from migrator.cli import main

    code = main(["copy", str(archive), url(dovecot, target), "--no-state"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "1 failed" in out
    assert "folder 'INBOX', message" in err and "(0 bytes)" in err
    assert len(dump(dovecot, target)["INBOX"]) == 3


def run_killed(args: list[str], proxy: KillProxy) -> int:
    """Run the real command line until the proxy kills it; return its exit status."""
    process = subprocess.Popen([sys.executable, "-m", "migrator", *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    proxy.victim = process.pid
    return process.wait(timeout=120)


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.55, 0.8, 0.97])
def test_killed_in_the_middle_of_an_append_and_rerun_ends_exact(dovecot, source, make_user, tmp_path, fraction):
    target = make_user()
    total = sum(len(raw) for _, raw, _, _ in seed_items(server_safe(corpus(), separator="."))) + 2000
    proxy = KillProxy(dovecot.host, dovecot.ports["imaps"], kill_after=int(total * fraction), direction="up")
    state = str(tmp_path / "state.sqlite")
    killed = run_killed(["copy", url(dovecot, source), url(dovecot, target, port=proxy.port), "--state", state], proxy)
    assert killed == -9 and proxy.killed
    rerun = subprocess.run([sys.executable, "-m", "migrator", "copy", url(dovecot, source), url(dovecot, target),
                            "--state", state, "--quiet"], capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert dump(dovecot, target) == dump(dovecot, source)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_killed_in_the_middle_of_a_fetch_and_rerun_ends_exact(dovecot, source, tmp_path, fraction):
    total = sum(len(raw) for _, raw, _, _ in seed_items(server_safe(corpus(), separator=".")))
    proxy = KillProxy(dovecot.host, dovecot.ports["imaps"], kill_after=int(total * fraction), direction="down")
    targets = [f"maildir:{tmp_path / 'md'}", f"mbox:{tmp_path / 'mb'}", f"eml:{tmp_path / 'eml'}"]
    state = str(tmp_path / "state.sqlite")
    assert run_killed(["copy", url(dovecot, source, port=proxy.port), *targets, "--state", state], proxy) == -9
    assert subprocess.run([sys.executable, "-m", "migrator", "copy", url(dovecot, source), *targets, "--state", state,
                           "--quiet"], timeout=120).returncode == 0
    expected = dump(dovecot, source)
    for target in targets:
        with open_store(parse_endpoint(target)) as archive:
            got = {}
            for folder in archive.list_folders():
                items = sorted(m.raw.replace(b"\r\n", b"\n") for m in archive.messages(folder.path))
                if items:
                    got[folder.name] = items
        assert got == {name: sorted(raw.replace(b"\r\n", b"\n") for raw, _, _ in items)
                       for name, items in expected.items()}, target


def test_a_users_map_wins_over_the_special_use_folder(dovecot, dotted, source, make_user):
    target = make_user(dotted)
    rules = FolderRules.build(include=["Sent"], maps=["Sent=Old/Sent"])
    run_copy(parse_endpoint(url(dovecot, source)), [parse_endpoint(url(dotted, target))], CopyOptions(rules=rules))
    assert dump(dotted, target) == {"Old/Sent": dump(dovecot, source)["Sent"]}
