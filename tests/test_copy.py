"""The copy pipeline end to end against a real Dovecot: backups, chains, reruns, dry runs.

Each test reads the result back through the stores and compares it with what the server
itself reports (the harness's independent imaplib dump), message by message.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from harness.corpus import corpus, crlf, imap_flags, seed_items, server_safe
from migrator.endpoints.endpoint import Endpoint, parse_endpoint
from migrator.pipeline.filters import MessageFilter
from migrator.pipeline.foldermap import FolderRules
from migrator.pipeline.options import CopyOptions
from migrator.pipeline.run import run_copy
from migrator.state.statefile import StateStore
from migrator.stores import open_store
from tests.support.archives import write_archive

LOCAL_KINDS = ("maildir", "mbox", "eml", "pst")


def imap_endpoint(server, user) -> Endpoint:
    return parse_endpoint(
        f"imaps://{user.name}@{server.host}:{server.ports['imaps']}?password_file={password_file(user)}"
        f"&ca_file={server.ca_file}"
    )


def password_file(user) -> Path:
    path = user.home.parent.parent / f"{user.name}.password"
    path.write_text(user.password + "\n")
    return path


def contents(endpoint: Endpoint) -> dict[str, list[tuple[bytes, frozenset[str], object]]]:
    """Return {folder: sorted [(raw with CRLF, IMAP flags, received)]} as read through migrator's store."""
    result = {}
    with open_store(endpoint) as store:
        for folder in store.list_folders():
            if folder.selectable:
                messages = [(crlf(m.raw), imap_flags(m.flags), m.received) for m in store.messages(folder.path)]
                result[folder.name] = sorted(messages, key=lambda item: item[0])
    return {name: items for name, items in result.items() if items}


def server_contents(server, user) -> dict[str, list]:
    dump = server.dump(user, include_empty=False)
    return {name: sorted(items, key=lambda item: item[0]) for name, items in dump.items()}


@pytest.fixture
def seeded(dovecot, user):
    """A user whose mailbox holds the server-safe corpus; returns (endpoint, what the server holds)."""
    dovecot.seed(user, seed_items(server_safe(corpus())))
    return imap_endpoint(dovecot, user), server_contents(dovecot, user)


def test_one_pass_backs_up_to_maildir_mbox_and_eml(seeded, tmp_path, dovecot, user):
    source, expected = seeded
    targets = [parse_endpoint(f"{kind}:{tmp_path / kind}") for kind in LOCAL_KINDS]
    dovecot.enable_rawlog(user)
    summary = run_copy(source, targets, state=StateStore(tmp_path / "state.sqlite"))
    assert summary.failures == []
    assert summary.copied == sum(len(items) for items in expected.values())
    for target in targets:
        assert contents(target) == expected, target.kind
    body_fetches = [c for c in dovecot.imap_commands(user) if "BODY.PEEK[]" in c.upper()]
    assert len(body_fetches) <= len(expected), "each message is fetched once, not once per target"


def test_chain_maildir_mbox_eml_maildir_keeps_everything(seeded, tmp_path):
    source, expected = seeded
    chain = [source] + [
        parse_endpoint(f"{kind}:{tmp_path / str(i)}") for i, kind in enumerate(LOCAL_KINDS + ("maildir",))
    ]
    for here, there in zip(chain, chain[1:]):
        assert run_copy(here, [there]).failures == []
    assert contents(chain[-1]) == expected


@pytest.mark.parametrize("kind", LOCAL_KINDS)
def test_local_round_trip_is_byte_exact_with_lf_and_odd_dates(kind, tmp_path):
    """Local archives keep what no server can: bare LF, NUL bytes, dates before 1970, empty messages."""
    messages = corpus()
    first = parse_endpoint(f"{kind}:{tmp_path / 'first'}")
    write_archive(first, messages)
    second = parse_endpoint(f"{kind}:{tmp_path / 'second'}")
    assert run_copy(first, [second]).failures == []
    with open_store(second) as store:
        got = sorted((m.folder, m.raw, m.flags, m.received) for folder in store.list_folders()
                     for m in store.messages(folder.path))
    want = sorted((m.folder, m.raw, m.flags, m.received) for m in messages)
    assert got == want


def test_rerun_fetches_no_bodies_and_writes_nothing(seeded, tmp_path, dovecot, user):
    source, _ = seeded
    target = parse_endpoint(f"maildir:{tmp_path / 'md'}")
    state = StateStore(tmp_path / "state.sqlite")
    run_copy(source, [target], state=state)
    files_before = sorted(p.name for p in (tmp_path / "md").rglob("*") if p.is_file())
    messages = sum(len(v) for v in server_contents(dovecot, user).values())
    dovecot.enable_rawlog(user)
    summary = run_copy(source, [target], state=state)
    assert (summary.copied, summary.already_there) == (0, messages)
    commands = [c.upper() for c in dovecot.imap_commands(user)]
    assert not [c for c in commands if "BODY" in c]
    assert not [c for c in commands if "FETCH" in c or "EXAMINE" in c], "unchanged folders are not even scanned"
    assert sorted(p.name for p in (tmp_path / "md").rglob("*") if p.is_file()) == files_before


def test_new_mail_and_flag_changes_reach_the_archive_on_the_next_run(seeded, tmp_path, dovecot, user):
    source, _ = seeded
    target = parse_endpoint(f"maildir:{tmp_path / 'md'}")
    state = StateStore(tmp_path / "state.sqlite")
    run_copy(source, [target], state=state)
    dovecot.seed(user, [(("INBOX",), b"Subject: new\r\nMessage-ID: <new@x>\r\n\r\nnew\r\n", (), _now())])
    conn = dovecot.imap(user)
    conn.select("INBOX")
    conn.uid("STORE", "1:*", "+FLAGS.SILENT", "(\\Flagged)")
    conn.logout()
    summary = run_copy(source, [target], state=state)
    assert summary.copied == 1
    assert summary.flags_updated > 0
    assert contents(target) == server_contents(dovecot, user)


def test_a_rerun_lists_only_what_changed_since_the_last_and_still_copies_all(seeded, tmp_path, dovecot, user):
    source = seeded[0]
    targets = [parse_endpoint(f"maildir:{tmp_path / 'md'}"), parse_endpoint(f"eml:{tmp_path / 'eml'}")]
    state = StateStore(tmp_path / "state.sqlite")
    run_copy(source, targets, state=state)
    dovecot.seed(user, [(("INBOX",), b"Message-ID: <new@x>\r\n\r\nnew\r\n", (), _now())])
    conn = dovecot.imap(user)
    conn.select("INBOX")
    conn.uid("STORE", "1", "+FLAGS.SILENT", "(\\Flagged)")
    conn.logout()
    dovecot.enable_rawlog(user)
    summary = run_copy(source, targets, state=state)
    fetches = [c.upper() for c in dovecot.imap_commands(user) if "FETCH" in c.upper() and "BODY" not in c.upper()]
    assert fetches and all("CHANGEDSINCE" in c for c in fetches), fetches
    assert (summary.copied, summary.flags_updated) == (1, 2)
    messages = sum(len(v) for v in server_contents(dovecot, user).values())
    assert summary.copied + summary.already_there == messages
    assert contents(targets[0]) == contents(targets[1]) == server_contents(dovecot, user)


def test_a_rerun_after_mail_left_the_source_lists_the_whole_folder(seeded, tmp_path, dovecot, user):
    source, before = seeded
    target = parse_endpoint(f"maildir:{tmp_path / 'md'}")
    state = StateStore(tmp_path / "state.sqlite")
    run_copy(source, [target], state=state)
    conn = dovecot.imap(user)
    conn.select("INBOX")
    conn.uid("STORE", "1", "+FLAGS.SILENT", "(\\Deleted)")
    conn.expunge()
    conn.logout()
    dovecot.seed(user, [(("INBOX",), b"Message-ID: <new@x>\r\n\r\nnew\r\n", (), _now())])
    dovecot.enable_rawlog(user)
    summary = run_copy(source, [target], state=state)
    assert [c for c in dovecot.imap_commands(user) if "FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)" in c.upper()]
    assert summary.copied == 1
    assert contents(target)["INBOX"] == sorted(before["INBOX"] + server_contents(dovecot, user)["INBOX"][-1:],
                                               key=lambda item: item[0])


def test_a_run_without_the_filter_of_the_last_copies_what_it_left_out(tmp_path, dovecot, user):
    dovecot.seed(user, [(("INBOX",), f"Message-ID: <{month}@x>\r\n\r\n{month}\r\n".encode(), (),
                         datetime(2024, month, 10, tzinfo=timezone.utc)) for month in (1, 2, 3, 4)])
    source, target = imap_endpoint(dovecot, user), parse_endpoint(f"maildir:{tmp_path / 'md'}")
    state = StateStore(tmp_path / "state.sqlite")
    since_march = CopyOptions(message_filter=MessageFilter(since=datetime(2024, 3, 1, tzinfo=timezone.utc)))
    assert (run_copy(source, [target], since_march, state).copied, len(contents(target)["INBOX"])) == (2, 2)
    dovecot.enable_rawlog(user)
    assert run_copy(source, [target], since_march, state).copied == 0
    assert not [c for c in dovecot.imap_commands(user) if "FETCH" in c.upper()], "the same filter skips the folder"
    summary = run_copy(source, [target], state=state)
    assert (summary.copied, summary.already_there) == (2, 2)
    assert contents(target) == server_contents(dovecot, user)
    assert run_copy(source, [target], since_march, state).already_there == 4, "having all, a filtered run skips"


def test_without_state_a_rerun_adds_nothing_twice(seeded, tmp_path):
    source, expected = seeded
    target = parse_endpoint(f"mbox:{tmp_path / 'mb'}")
    run_copy(source, [target])
    summary = run_copy(source, [target])
    assert summary.copied == 0 and summary.already_there == sum(len(v) for v in expected.values())
    assert contents(target) == expected


def test_dry_run_writes_nothing_and_backup_leaves_seen_alone(seeded, tmp_path, dovecot, user):
    source, expected = seeded
    summary = run_copy(source, [parse_endpoint(f"maildir:{tmp_path / 'md'}")], CopyOptions(dry_run=True))
    assert summary.copied == sum(len(v) for v in expected.values())
    assert not (tmp_path / "md").exists()
    run_copy(source, [parse_endpoint(f"eml:{tmp_path / 'eml'}")])
    assert server_contents(dovecot, user) == expected  # flags (\Seen above all) untouched


def test_folder_globs_and_maps(seeded, tmp_path):
    source, expected = seeded
    target = parse_endpoint(f"maildir:{tmp_path / 'md'}")
    rules = FolderRules.build(include=["Projects*"], exclude=["Projects/2024/*"], maps=["Projects=Old/Projects"])
    assert run_copy(source, [target], CopyOptions(rules=rules)).failures == []
    assert contents(target) == {
        "Old/Projects": expected["Projects"],
        "Old/Projects/2024": expected["Projects/2024"],
    }


def _now():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).replace(microsecond=0)
