"""ImapStore against a real Dovecot: listing, reading byte for byte, batching, writing, STARTTLS.

Everything the store writes is checked with the harness's own imaplib reader (``dump``),
and everything it reads was seeded by the harness, never by migrator.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from harness.corpus import corpus, expected_dump, imap_flags, seed_items, server_safe
from harness.dovecot import OUTLOOK_SPECIAL_FOLDERS, DovecotServer, MailUser
from harness.endpoints import endpoint
from migrator.core.contentkey import content_key
from migrator.core.errors import StoreError
from migrator.core.folder import Role
from migrator.core.message import Flag, Flags, Message
from migrator.stores import open_store
from migrator.stores.imap import ImapStore, reading
from migrator.stores.imap.connection import connect
from migrator.stores.imap.writing import append_command

UTC = timezone.utc


def store(server: DovecotServer, user: MailUser, scheme: str = "imaps", *, readonly: bool = True,
          **changes: object) -> ImapStore:
    return ImapStore(endpoint(server, user, scheme, **changes), readonly=readonly)


def message(number: int, *, body: bytes = b"Hello.\r\n", headers: bytes = b"") -> bytes:
    return (
        b"From: Alice <alice@example.com>\r\nTo: bob@example.com\r\n"
        + b"Subject: message %d\r\nMessage-ID: <%d@test.example>\r\n" % (number, number)
        + headers + b"\r\n" + body
    )


ZONES = [timezone(timedelta(hours=14)), timezone(timedelta(hours=-12)), timezone(timedelta(hours=5, minutes=45)), UTC]
SAMPLES = [
    # (raw, IMAP flags, internaldate)
    (message(1), {"\\Seen"}, datetime(2001, 2, 3, 4, 5, 6, tzinfo=ZONES[0])),
    (
        message(2, body=b"two\r\nlines\r\n"),
        {"\\Answered", "\\Flagged", "$Forwarded"},
        datetime(2010, 6, 1, tzinfo=ZONES[1]),
    ),
    (
        message(3, body=b"8-bit \xe9\xff and a\r\nFrom the start\r\n>From quoted\r\n"),
        {"work", "$Label1"},
        datetime(2024, 2, 29, 23, 59, 59, tzinfo=ZONES[2]),
    ),
    (message(4, body=b"no final newline"), {"\\Draft", "\\Deleted"}, datetime(1999, 12, 31, 12, tzinfo=ZONES[3])),
    (message(5, headers=b"X-Long: " + b"x" * 10_000 + b"\r\n"), set(), datetime(2020, 1, 1, tzinfo=UTC)),
]
# Dovecot's Maildir keeps LF line ends and serves CRLF: a bare-LF message comes back changed,
# so it is only read (and compared with what the harness reads), never compared with its source.
BARE_LF = (message(6, body=b"bare LF\nlines\n"), {"\\Seen"}, datetime(2015, 5, 5, tzinfo=UTC))
FLAGS = {
    "\\Seen": Flag.SEEN, "\\Answered": Flag.ANSWERED, "\\Flagged": Flag.FLAGGED,
    "\\Deleted": Flag.DELETED, "\\Draft": Flag.DRAFT, "$Forwarded": Flag.FORWARDED,
}


def canonical(imap_flags: set[str] | frozenset[str]) -> Flags:
    """Return the Flags the test expects for IMAP flag strings (independent of migrator's mapping)."""
    system = frozenset(FLAGS[f] for f in imap_flags if f in FLAGS)
    return Flags(system, frozenset(f for f in imap_flags if f not in FLAGS and not f.startswith("\\")))


def seed(server: DovecotServer, user: MailUser, folder: str, samples=SAMPLES) -> None:
    server.seed(user, [(folder, raw, flags, date) for raw, flags, date in samples])


# --- reading --------------------------------------------------------------------------------


def test_list_folders_with_roles_unicode_and_hierarchy(dovecot, user):
    names = ["Entwürfe", "日本語/Sub", "📁 Stuff", "R&D", "v1.2 notes", "Projects/2024/Q1"]
    server_items = [(name, message(i), [], datetime(2020, 1, 1, tzinfo=UTC)) for i, name in enumerate(names)]
    dovecot.seed(user, server_items)
    with store(dovecot, user) as imap:
        folders = imap.list_folders()
    paths = [f.path for f in folders]
    assert paths[0] == ("INBOX",) and folders[0].role is Role.INBOX
    for name in names:
        assert tuple(name.split("/")) in paths
    for path in paths:  # parents before children
        assert all(paths.index(path[:depth]) < paths.index(path) for depth in range(1, len(path)))
    roles = {f.path: f.role for f in folders}
    assert roles[("Sent",)] is Role.SENT and roles[("Drafts",)] is Role.DRAFTS and roles[("Trash",)] is Role.TRASH
    assert roles[("Junk",)] is Role.JUNK and roles[("Archive",)] is Role.ARCHIVE
    assert roles[("Entwürfe",)] is None
    selectable = {f.path: f.selectable for f in folders}
    assert all(selectable[tuple(name.split("/"))] for name in names)
    assert not selectable[("Projects",)]  # created implicitly by its child: \NoSelect


def test_scan_and_fetch_are_byte_exact_with_flags_and_dates(dovecot, user):
    seed(dovecot, user, "Box", SAMPLES + [BARE_LF])
    with store(dovecot, user) as imap:
        scan = imap.scan(("Box",))
        refs = list(scan.refs)
        messages = list(imap.fetch(("Box",), refs))
    assert scan.validity.isdigit()
    served = dovecot.dump(user)["Box"]
    assert [m.raw for m in messages] == [raw for raw, _, _ in served]
    assert [m.raw for m in messages[:-1]] == [raw for raw, _, _ in SAMPLES]
    for got, ref, (_raw, flags, date) in zip(messages, refs, SAMPLES + [BARE_LF]):
        assert got.flags == ref.flags == canonical(flags)
        assert got.received == ref.received == date  # the same instant, whatever the zone
        assert got.uid == ref.uid and got.folder == ("Box",)
        assert ref.size == len(got.raw)  # RFC822.SIZE: the size as served, with CRLF


def test_fetch_skips_refs_that_vanished_and_keeps_uid_order(dovecot, user):
    seed(dovecot, user, "Box")
    with store(dovecot, user) as imap:
        refs = list(imap.scan(("Box",)).refs)
        conn = dovecot.imap(user)
        conn.select("Box")
        conn.uid("STORE", refs[1].uid, "+FLAGS", "(\\Deleted)")
        conn.expunge()
        conn.logout()
        got = [m.uid for m in imap.fetch(("Box",), list(reversed(refs)))]
    # EXPUNGE also removed the sample that carries \Deleted
    assert got == [r.uid for r in refs if r.uid != refs[1].uid and Flag.DELETED not in r.flags]


def test_reading_never_selects_and_changes_nothing(dovecot, user):
    seed(dovecot, user, "INBOX", [(message(i), set(), datetime(2020, 1, 1, tzinfo=UTC)) for i in range(3)])
    before = dovecot.dump(user)
    dovecot.enable_rawlog(user)
    with store(dovecot, user) as imap:
        list(imap.messages(("INBOX",)))
        imap.stats(("INBOX",))
        imap.content_keys(("INBOX",))
    assert dovecot.dump(user) == before  # no \Seen set on any message
    commands = [c.upper() for c in dovecot.imap_commands(user)]
    assert any(c.startswith("EXAMINE") for c in commands)
    assert not any(c.startswith("SELECT") for c in commands)
    assert all("BODY[]" not in c or "BODY.PEEK[]" in c for c in commands)


def test_fetch_streams_in_batches_including_a_10_mb_message(dovecot, user, monkeypatch):
    big = message(0, body=b"".join(b"%08d large attachment line\r\n" % i for i in range(350_000)))
    assert len(big) > 10 * 1024 * 1024
    samples = [(message(i), set(), datetime(2020, 1, 1, tzinfo=UTC)) for i in range(1, 24)]
    samples.insert(11, (big, {"\\Seen"}, datetime(2021, 1, 1, tzinfo=UTC)))
    seed(dovecot, user, "Big", samples)
    monkeypatch.setattr(reading, "FETCH_BATCH_MESSAGES", 5)
    dovecot.enable_rawlog(user)
    with store(dovecot, user) as imap:
        refs = list(imap.scan(("Big",)).refs)
        raws = [m.raw for m in imap.fetch(("Big",), refs)]
    assert raws == [raw for raw, _, _ in samples]
    fetches = [c for c in dovecot.imap_commands(user) if "BODY.PEEK[]" in c.upper()]
    # 24 messages, at most 5 per batch, the 10 MB one alone since it exceeds the byte budget,
    # which also closes the batch before it: [1-5] [6-10] [11] [big] [13-17] [18-22] [23-24]
    assert len(fetches) == 7


def test_stats_and_content_keys(dovecot, user):
    seed(dovecot, user, "Box")
    with store(dovecot, user) as imap:
        stats = imap.stats(("Box",))
        keys = imap.content_keys(("Box",))
        uids = [m.uid for m in imap.messages(("Box",))]
    assert stats.messages == len(SAMPLES)
    assert stats.size == sum(len(raw) + raw.count(b"\n") - raw.count(b"\r\n") for raw, _, _ in SAMPLES)
    assert keys == {content_key(raw): [uid] for (raw, _, _), uid in zip(SAMPLES, uids)}


def test_empty_folder(dovecot, user):
    with store(dovecot, user) as imap:
        scan = imap.scan(("Trash",))
        assert list(scan.refs) == []
        assert imap.stats(("Trash",)).messages == 0
        assert imap.content_keys(("Trash",)) == {}
        assert list(imap.fetch(("Trash",), [])) == []


def test_the_shared_corpus_reads_back_exactly(dovecot, user):
    safe = server_safe(corpus())
    dovecot.seed(user, seed_items(safe))
    read: dict[str, list] = {}
    with store(dovecot, user) as imap:
        for folder in imap.list_folders():
            for got in imap.messages(folder.path) if folder.selectable else ():
                read.setdefault(folder.name, []).append((got.raw, imap_flags(got.flags), got.received))
    assert read == expected_dump(safe)


# --- writing --------------------------------------------------------------------------------


def to_messages(samples) -> list[Message]:
    return [Message(raw, canonical(flags), date) for raw, flags, date in samples]


def test_append_batch_is_byte_exact_with_flags_and_dates(dovecot, user):
    with store(dovecot, user, readonly=False) as imap:
        folder = imap.ensure_folder(("Copied",))
        results = imap.append_batch(folder, to_messages(SAMPLES))
    assert all(r.ok for r in results) and [r.uid for r in results] == ["1", "2", "3", "4", "5"]
    dumped = dovecot.dump(user)["Copied"]
    assert [raw for raw, _, _ in dumped] == [raw for raw, _, _ in SAMPLES]
    for (_, flags, date), (_, want_flags, want_date) in zip(dumped, SAMPLES):
        assert flags - {"\\Recent"} == want_flags
        assert date == want_date


def test_the_shared_corpus_is_written_exactly(dovecot, user):
    safe = server_safe(corpus())
    by_folder: dict[tuple[str, ...], list[Message]] = {}
    for item in safe:
        by_folder.setdefault(item.folder, []).append(item)
    with store(dovecot, user, readonly=False) as imap:
        for path, batch in by_folder.items():
            results = imap.append_batch(imap.ensure_folder(path), batch)
            assert all(r.ok for r in results)
    assert dovecot.dump(user, include_empty=False) == expected_dump(safe)


def test_a_refused_message_fails_alone(dovecot, user):
    messages = (
        to_messages(SAMPLES[:2]) + [Message(b"", received=datetime(2020, 1, 1, tzinfo=UTC))] + to_messages(SAMPLES[2:])
    )
    with store(dovecot, user, readonly=False) as imap:
        results = imap.append_batch(imap.ensure_folder(("Copied",)), messages)
    assert [r.ok for r in results] == [True, True, False, True, True, True]
    assert "the server said" in results[2].error
    assert [raw for raw, _, _ in dovecot.dump(user)["Copied"]] == [raw for raw, _, _ in SAMPLES]


def test_ensure_folder_creates_paths_with_parents(dovecot, user):
    with store(dovecot, user, readonly=False) as imap:
        assert imap.ensure_folder(("INBOX",)) == ("INBOX",)
        assert imap.ensure_folder(("inbox",), Role.INBOX) == ("INBOX",)
        assert imap.ensure_folder(("Projects", "2024", "Q1")) == ("Projects", "2024", "Q1")
        assert imap.ensure_folder(("Entwürfe", "日本語 & more")) == ("Entwürfe", "日本語 & more")
        assert imap.ensure_folder(("a/b",)) == ("a_b",)
        assert imap.ensure_folder(("Projects", "2024", "Q1")) == ("Projects", "2024", "Q1")  # exists: no error
        imap.append_batch(("Entwürfe", "日本語 & more"), to_messages(SAMPLES[:1]))
        listed = {f.path for f in imap.list_folders()}
    assert {("Projects",), ("Projects", "2024"), ("Entwürfe", "日本語 & more"), ("a_b",)} <= listed
    assert [raw for raw, _, _ in dovecot.dump(user)["Entwürfe/日本語 & more"]] == [SAMPLES[0][0]]
    conn = dovecot.imap(user)
    _, subscribed = conn.lsub('""', '"*"')
    conn.logout()
    assert any(b'"Projects/2024/Q1"' in line or b"Projects/2024/Q1" in line for line in subscribed)


def test_ensure_folder_maps_roles_to_the_servers_special_folders(dovecot_server, make_user):
    outlook = dovecot_server(special_folders=OUTLOOK_SPECIAL_FOLDERS)
    user = make_user(outlook)
    with store(outlook, user, readonly=False) as imap:
        assert imap.ensure_folder(("Sent",), Role.SENT) == ("Sent Items",)
        assert imap.ensure_folder(("Gelöscht",), Role.TRASH) == ("Trash",)
        assert imap.ensure_folder(("Sent",)) == ("Sent",)  # no role: the path as it is
        imap.append_batch(("Sent Items",), to_messages(SAMPLES[:1]))
    assert [raw for raw, _, _ in outlook.dump(user)["Sent Items"]] == [SAMPLES[0][0]]


def test_dot_separator_server(dovecot_server, make_user):
    dotted = dovecot_server(separator=".")
    user = make_user(dotted)
    with store(dotted, user, readonly=False) as imap:
        assert imap.ensure_folder(("v1.2 notes", "Sub")) == ("v1_2 notes", "Sub")
        imap.append_batch(("v1_2 notes", "Sub"), to_messages(SAMPLES[:2]))
        listed = {f.path for f in imap.list_folders()}
        fetched = [m.raw for m in imap.messages(("v1_2 notes", "Sub"))]
    assert ("v1_2 notes", "Sub") in listed
    assert fetched == [raw for raw, _, _ in SAMPLES[:2]]
    assert "v1_2 notes/Sub" in dotted.dump(user)


def test_set_flags_and_delete(dovecot, user):
    seed(dovecot, user, "Box")
    with store(dovecot, user, readonly=False) as imap:
        uids = [ref.uid for ref in imap.scan(("Box",)).refs]
        imap.set_flags(("Box",), uids[0], Flags.of(Flag.FLAGGED, Flag.FORWARDED, keywords=("later",)))
        imap.set_flags(("Box",), uids[1], Flags())
        imap.delete(("Box",), [uids[2], uids[4]])
        refs = {ref.uid: ref.flags for ref in imap.scan(("Box",)).refs}
    assert list(refs) == [uids[0], uids[1], uids[3]]
    assert refs[uids[0]] == Flags.of(Flag.FLAGGED, Flag.FORWARDED, keywords=("later",))
    assert refs[uids[1]] == Flags()
    dumped = dovecot.dump(user)["Box"]
    assert [raw for raw, _, _ in dumped] == [SAMPLES[i][0] for i in (0, 1, 3)]
    assert dumped[0][1] - {"\\Recent"} == {"\\Flagged", "$Forwarded", "later"}


def test_readonly_store_never_writes_or_selects(dovecot, user):
    seed(dovecot, user, "Box")
    dovecot.enable_rawlog(user)
    with open_store(endpoint(dovecot, user)) as imap:
        uid = next(iter(imap.scan(("Box",)).refs)).uid
        for attempt in (
            lambda: imap.ensure_folder(("New",)),
            lambda: imap.append_batch(("Box",), to_messages(SAMPLES[:1])),
            lambda: imap.set_flags(("Box",), uid, Flags()),
            lambda: imap.delete(("Box",), [uid]),
        ):
            with pytest.raises(StoreError, match="read-only"):
                attempt()
    writes = ("SELECT", "APPEND", "CREATE", "STORE", "UID STORE", "EXPUNGE", "UID EXPUNGE")
    assert not [c for c in dovecot.imap_commands(user) if c.upper().startswith(writes)]


# --- connections ----------------------------------------------------------------------------


def test_starttls(dovecot, user):
    with store(dovecot, user, "imap") as imap:
        assert ("INBOX",) in [f.path for f in imap.list_folders()]


def test_plain_connection_when_asked_for(dovecot_server, make_user):
    plain = dovecot_server(plaintext_auth=True)
    user = make_user(plain)
    with store(plain, user, "imap", tls="none", auth="login") as imap:
        assert imap.list_folders()[0].path == ("INBOX",)


@pytest.mark.parametrize("auth", ["login", "plain"])
def test_passwords_that_need_quoting_or_a_literal(dovecot, user, auth):
    for number, password in enumerate(['q"uo\\te', "pässwörd"]):
        odd = dovecot.add_user(f"{user.name}-{auth}-{number}", password)
        with store(dovecot, odd, auth=auth) as imap:
            assert imap.list_folders()[0].path == ("INBOX",)


def test_synchronising_literals_without_literal_plus(dovecot, user):
    """Servers without LITERAL+ get each literal after their '+': the protocol must wait for it."""
    protocol = connect(endpoint(dovecot, user, "imap"), user.password)
    protocol.capabilities = protocol.capabilities - {"LITERAL+"}
    first = Message(SAMPLES[0][0], received=datetime(2020, 1, 1, tzinfo=UTC))
    second = Message(SAMPLES[2][0], received=datetime(2020, 1, 1, tzinfo=UTC))
    one = protocol.send(*append_command("INBOX", [(first.raw, ["\\Seen"], first.received),
                                                  (second.raw, [], second.received)]))
    two = protocol.send(*append_command("INBOX", [(first.raw, [], first.received)]))
    list(protocol.untagged(one))
    list(protocol.untagged(two))
    protocol.logout()
    assert one.result.ok and two.result.ok
    assert [raw for raw, _, _ in dovecot.dump(user)["INBOX"]] == [first.raw, second.raw, first.raw]
