"""The POP3 store against a real Dovecot: exact bytes, UIDL increments, deletion only when safe.

A server without UIDL is one thing Dovecot will not be, so that fallback is tested against a
small POP3 server on a real socket in this file.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
import subprocess
import time
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.corpus import corpus, crlf, server_safe
from harness.endpoints import endpoint
from harness.listener import Listener
from migrator.cli import main
from migrator.core.errors import ConfigError, ConnectError, MessageError, StoreError
from migrator.endpoints.credentials import PasswordSource
from migrator.endpoints.endpoint import Endpoint
from migrator.pipeline.filters import MessageFilter
from migrator.pipeline.options import CopyOptions
from migrator.pipeline.run import run_copy
from migrator.state.statefile import StateStore
from migrator.stores.pop3 import Pop3Store
from migrator.stores.pop3 import store as pop3_store
from migrator.stores.pop3.wire import message_bytes, parse_listing, received_date, unique_keys

INBOX = ("INBOX",)
WHEN = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)


def numbered(count: int, start: int = 0) -> list[bytes]:
    return [
        f"Message-ID: <m{i}@test>\r\nSubject: number {i}\r\n\r\nbody {i}\r\n".encode()
        for i in range(start, start + count)
    ]


def seed_inbox(server, user, raws: list[bytes]) -> None:
    server.seed(user, [(INBOX, raw, [], WHEN) for raw in raws])


def as_pop3_sends(raw: bytes) -> bytes:
    """What a POP3 client receives for ``raw``: CRLF line ends, a final line end added."""
    raw = crlf(raw)
    return raw if raw.endswith(b"\r\n") else raw + b"\r\n"


def maildir_messages(path: Path) -> list[bytes]:
    """Read a Maildir's INBOX directly (not through migrator), in file-name order."""
    files = sorted([*path.glob("cur/*"), *path.glob("new/*")])
    return [f.read_bytes() for f in files]


def copy(server, user, target: Path, state: StateStore, **options):
    return run_copy(endpoint(server, user, "pop3s"), [Endpoint("maildir", path=target)], CopyOptions(**options), state)


def server_count(server, user) -> int:
    conn = server.pop3(user)
    try:
        return conn.stat()[0]
    finally:
        conn.quit()


@pytest.fixture
def state(tmp_path):
    store = StateStore(tmp_path / "state.sqlite")
    yield store
    store.close()


# --- pure codecs -----------------------------------------------------------------------------


@given(st.lists(st.binary().map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")), max_size=20))
def test_message_bytes_joins_lines_with_crlf(lines):
    raw = message_bytes(lines)
    assert raw.split(b"\r\n")[:-1] == lines
    assert raw.endswith(b"\r\n") or not lines


@given(st.lists(st.sampled_from([b"Received: ", b"Date: ", b"; ", b"Tue, 2 Jan 2024 10:00:00 +0100", b"\xff\xfe",
                                  b"\r\n", b"\n", b" ", b":", b"-0000", b"99 Foo 2024"]), max_size=30).map(b"".join))
def test_received_date_never_fails_and_is_always_aware(raw):
    found = received_date(raw)
    assert found is None or found.tzinfo is not None


def test_listing_and_unique_keys():
    assert parse_listing([b"1 abc", b"2  xyz "]) == {1: "abc", 2: "xyz"}
    with pytest.raises(ValueError):
        parse_listing([b"one abc"])
    assert unique_keys([(1, "k"), (2, "j"), (3, "k"), (4, "k")]) == {1: "k", 2: "j", 3: "k#2", 4: "k#3"}


def test_received_date_prefers_newest_received_header_then_date():
    raw = (b"Received: from relay by mx.example; Tue, 2 Jan 2024 10:00:00 +0100\r\n"
           b"Received: from client by relay; Tue, 2 Jan 2024 09:59:00 +0100\r\n"
           b"Date: Mon, 1 Jan 2024 08:00:00 +0000\r\n\r\nbody\r\n")
    assert received_date(raw) == datetime(2024, 1, 2, 9, 0, tzinfo=timezone.utc)
    unreadable_first = raw.replace(b"Tue, 2 Jan 2024 10:00:00 +0100", b"yesterday")
    assert received_date(unreadable_first) == datetime(2024, 1, 2, 8, 59, tzinfo=timezone.utc)
    date_only = b"Date: Mon, 1 Jan 2024 08:00:00 -0000\r\n\r\nReceived: in the body; Tue, 2 Jan 2024 10:00:00 +0100\r\n"
    assert received_date(date_only) == datetime(2024, 1, 1, 8, 0, tzinfo=timezone.utc)
    assert received_date(b"Subject: none\r\n\r\n") is None


# --- reading from Dovecot --------------------------------------------------------------------


def test_fetch_is_byte_exact_with_received_dates(dovecot, user):
    messages = [m for m in server_safe(corpus()) if m.folder == INBOX]
    assert messages
    dovecot.seed(user, [(INBOX, m.raw, [], m.received) for m in messages])
    with Pop3Store(endpoint(dovecot, user, "pop3s")) as store:
        scan = store.scan(INBOX)
        refs = list(scan.refs)
        fetched = list(store.fetch(INBOX, refs))
    assert scan.validity == "uidl"
    assert len({r.uid for r in refs}) == len(messages)
    assert [m.raw for m in fetched] == [as_pop3_sends(m.raw) for m in messages]
    assert [r.size for r in refs] == [len(m.raw) for m in fetched]
    for message in fetched:
        assert message.received.tzinfo is not None
        assert message.received == (received_date(message.raw) or message.received)


def test_long_lines_and_dot_lines_survive(dovecot, user):
    raw = b"Subject: long\r\nX-Long: " + b"y" * 10_000 + b"\r\n\r\n.\r\n..two\r\n.three\r\n"
    seed_inbox(dovecot, user, [raw])
    with Pop3Store(endpoint(dovecot, user, "pop3s")) as store:
        assert [m.raw for m in store.messages(INBOX)] == [raw]


def test_a_big_message_costs_about_its_size_to_retrieve(dovecot, user):
    """poplib's own RETR keeps a list of every line: five times the message's size at its peak."""
    raw = b"Subject: big\r\n\r\n" + b"".join(b"%076d\r\n" % n for n in range(100_000))
    seed_inbox(dovecot, user, [raw])
    with Pop3Store(endpoint(dovecot, user, "pop3s")) as store:
        refs = store.scan(INBOX).refs
        tracemalloc.start()
        try:
            (message,) = store.fetch(INBOX, refs)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert message.raw == raw
    assert peak < 2.2 * len(raw)


def test_stls_sasl_plain_and_stats(dovecot, user):
    seed_inbox(dovecot, user, numbered(3))
    for pop3 in (endpoint(dovecot, user, "pop3"), endpoint(dovecot, user, "pop3s", auth="plain")):
        with Pop3Store(pop3) as store:
            stats = store.stats(INBOX)
            assert stats.messages == 3
            assert stats.size == sum(len(r) for r in numbered(3))
            assert [f.path for f in store.list_folders()] == [INBOX]


def test_folders_command_shows_count_and_size(dovecot, user, capsys, monkeypatch):
    seed_inbox(dovecot, user, numbered(2))
    monkeypatch.setenv("POP_PW", user.password)
    url = f"pop3s://{user.name}@{dovecot.host}:{dovecot.ports['pop3s']}?password_env=POP_PW&ca_file={dovecot.ca_file}"
    assert main(["folders", url]) == 0
    out = capsys.readouterr().out
    assert "INBOX" in out and "1 folder, 2 messages" in out


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("changes, expected", [
    (dict(password=PasswordSource(literal="wrong")), "the server said '-ERR [AUTH] Authentication failed.'"),
    (dict(ca_file=None), "if you trust this server, give its CA certificate with ca_file"),
    (dict(auth="apop"), "does not offer APOP"),
])
def test_login_problems_are_one_sentence(dovecot, user, changes, expected):
    if "ca_file" in changes:
        changes["ca_file"] = str(dovecot.untrusted_ca_file)
    with pytest.raises(ConnectError, match=expected.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        Pop3Store(endpoint(dovecot, user, "pop3s", **changes)).open()


def test_refused_connection_and_bad_auth_method(dovecot, user):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(ConnectError, match="connection refused"):
        Pop3Store(endpoint(dovecot, user, "pop3s", port=port)).open()
    with pytest.raises(ConfigError, match="not one of user, apop, plain"):
        Pop3Store(endpoint(dovecot, user, "pop3s", auth="cram")).open()


def test_read_only_store_refuses_to_delete(dovecot, user):
    seed_inbox(dovecot, user, numbered(1))
    with Pop3Store(endpoint(dovecot, user, "pop3s")) as store:
        uids = [r.uid for r in store.scan(INBOX).refs]
        with pytest.raises(StoreError, match="read-only"):
            store.delete(INBOX, uids)
    assert server_count(dovecot, user) == 1


# --- incremental runs and deletion -----------------------------------------------------------


def test_three_incremental_runs_leave_mail_on_the_server(dovecot, user, tmp_path, state):
    target = tmp_path / "Maildir"
    seed_inbox(dovecot, user, numbered(3))
    first = copy(dovecot, user, target, state)
    seed_inbox(dovecot, user, numbered(2, start=3))
    second = copy(dovecot, user, target, state)
    seed_inbox(dovecot, user, numbered(4, start=5))
    third = copy(dovecot, user, target, state)
    assert (first.copied, second.copied, third.copied) == (3, 2, 4)
    assert (first.already_there, second.already_there, third.already_there) == (0, 3, 5)
    assert sorted(maildir_messages(target)) == sorted(numbered(9))
    assert server_count(dovecot, user) == 9
    assert copy(dovecot, user, target, state).copied == 0


def test_delete_after_deletes_exactly_the_copied_messages(dovecot, user, tmp_path, state):
    target = tmp_path / "Maildir"
    big = b"Subject: too big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 80
    seed_inbox(dovecot, user, [*numbered(3), big])
    summary = copy(dovecot, user, target, state, delete_after=True, message_filter=MessageFilter(max_size=1000))
    assert (summary.copied, summary.deleted) == (3, 3)
    conn = dovecot.pop3(user)
    try:
        left = [message_bytes(conn.retr(n)[1]) for n in range(1, conn.stat()[0] + 1)]
    finally:
        conn.quit()
    assert left == [big]
    assert sorted(maildir_messages(target)) == sorted(numbered(3))


def test_keep_days_deletes_only_mail_copied_long_enough_ago(dovecot, user, tmp_path, state):
    target = tmp_path / "Maildir"
    seed_inbox(dovecot, user, numbered(2))
    assert copy(dovecot, user, target, state, keep_days=3).deleted == 0
    seed_inbox(dovecot, user, numbered(1, start=2))
    with sqlite3.connect(state.path) as db:  # the first two were copied four days ago
        db.execute("UPDATE copied SET copied_at = ?", (time.time() - 4 * 86400,))
    summary = copy(dovecot, user, target, state, keep_days=3)
    assert (summary.copied, summary.deleted) == (1, 2)
    assert server_count(dovecot, user) == 1
    assert len(maildir_messages(target)) == 3


def test_killed_before_quit_deletes_nothing_and_rerun_finishes(dovecot, user, tmp_path, state, monkeypatch):
    target = tmp_path / "Maildir"
    seed_inbox(dovecot, user, numbered(5))
    real_close = Pop3Store.close

    def die_before_quit(self):
        # The process dies after DELE and before QUIT: the socket just closes.
        if self._client is not None:
            self._client.close()
        raise SystemExit("killed")

    monkeypatch.setattr(Pop3Store, "close", die_before_quit)
    with pytest.raises(SystemExit):
        copy(dovecot, user, target, state, delete_after=True)
    assert server_count(dovecot, user) == 5  # no QUIT, no deletion
    assert len(maildir_messages(target)) == 5
    monkeypatch.setattr(Pop3Store, "close", real_close)
    seed_inbox(dovecot, user, numbered(1, start=5))
    summary = copy(dovecot, user, target, state, delete_after=True)
    assert (summary.copied, summary.already_there, summary.deleted) == (1, 5, 6)
    assert server_count(dovecot, user) == 0
    assert sorted(maildir_messages(target)) == sorted(numbered(6))


def test_killed_between_write_and_record_copies_nothing_twice(dovecot, user, tmp_path, state, monkeypatch):
    target = tmp_path / "Maildir"
    seed_inbox(dovecot, user, numbered(4))
    real_record = StateStore.record

    def die_after_write(self, pair, copied):
        raise SystemExit("killed after the write, before the state recorded it")

    monkeypatch.setattr(StateStore, "record", die_after_write)
    with pytest.raises(SystemExit):
        copy(dovecot, user, target, state, delete_after=True)
    assert server_count(dovecot, user) == 4
    monkeypatch.setattr(StateStore, "record", real_record)
    summary = copy(dovecot, user, target, state, delete_after=True)
    assert (summary.copied, summary.deleted) == (0, 4)
    assert server_count(dovecot, user) == 0
    assert sorted(maildir_messages(target)) == sorted(numbered(4))


# --- a server without UIDL -------------------------------------------------------------------


class NoUidlServer(Listener):
    """A minimal RFC 1939 POP3 server without UIDL, on a real socket (Dovecot always has UIDL).

    ``listed`` gives the sizes LIST reports, for a server whose listing lies; ``accepted`` counts the sessions.
    """

    def __init__(self, messages: list[bytes], listed: list[int] | None = None) -> None:
        self.messages = messages
        self.listed = listed or [len(m) for m in messages]
        super().__init__()

    def serve(self, connection: socket.socket) -> None:
        with connection, connection.makefile("rwb") as stream:
            self._session(stream)

    def _session(self, stream) -> None:
        def send(*lines: bytes) -> None:
            stream.write(b"".join(line + b"\r\n" for line in lines))
            stream.flush()

        send(b"+OK ready")
        for line in stream:
            verb, _, arg = line.strip().decode().partition(" ")
            verb = verb.upper()
            if verb == "CAPA":
                send(b"+OK", b"USER", b"TOP", b".")
            elif verb in ("USER", "PASS", "NOOP"):
                send(b"+OK")
            elif verb == "STAT":
                send(f"+OK {len(self.messages)} {sum(map(len, self.messages))}".encode())
            elif verb == "LIST":
                send(b"+OK", *(f"{i} {size}".encode() for i, size in enumerate(self.listed, 1)), b".")
            elif verb in ("RETR", "TOP"):
                raw = self.messages[int(arg.split()[0]) - 1]
                part = raw if verb == "RETR" else raw[: raw.index(b"\r\n\r\n") + 4]
                stuffed = [b"." + line if line.startswith(b".") else line for line in part.split(b"\r\n")[:-1]]
                send(b"+OK", *stuffed, b".")
            elif verb == "QUIT":
                send(b"+OK bye")
                return
            else:
                send(b"-ERR unknown command")


def test_server_without_uidl_uses_content_keys(tmp_path, state, caplog):
    twins = numbered(1) * 2
    server = NoUidlServer([*twins, *numbered(2, start=1)])
    endpoint = Endpoint("pop3", host="127.0.0.1", port=server.port, user="u", tls="none",
                        password=PasswordSource(literal="p"))
    target = Endpoint("maildir", path=tmp_path / "Maildir")
    try:
        with caplog.at_level(logging.WARNING, logger=pop3_store.__name__):
            first = run_copy(endpoint, [target], CopyOptions(), state)
        assert "does not list UIDL" in caplog.text
        with Pop3Store(endpoint) as store:
            scan = store.scan(INBOX)
            uids = [r.uid for r in scan.refs]
        second = run_copy(endpoint, [target], CopyOptions(), state)
    finally:
        server.close()
    assert scan.validity == "content-key"
    assert uids[1] == uids[0] + "#2" and len(set(uids)) == 4
    assert (first.copied, second.copied, second.already_there) == (4, 0, 4)
    assert sorted(maildir_messages(tmp_path / "Maildir")) == sorted([*twins, *numbered(2, start=1)])


def test_a_dropped_session_is_resumed_without_loss_or_repeats(dovecot, user):
    seed_inbox(dovecot, user, numbered(4))
    with Pop3Store(endpoint(dovecot, user, "pop3s")) as store:
        refs = list(store.scan(INBOX).refs)
        stream = store.fetch(INBOX, refs)
        first = next(stream)
        kicked = subprocess.run(["doveadm", "-c", str(dovecot.config_file), "kick", user.name],
                                capture_output=True, text=True)
        assert kicked.returncode == 0, kicked.stderr
        rest = list(stream)
    assert [m.raw for m in [first, *rest]] == numbered(4)
    assert [m.uid for m in [first, *rest]] == [r.uid for r in refs]


def test_a_message_longer_than_the_limit_is_not_read_to_its_end(monkeypatch):
    monkeypatch.setenv("MIGRATOR_MAX_MESSAGE_SIZE", "2KB")
    messages = [*numbered(1), numbered(1, start=1)[0].replace(b"body 1", b"x" * 5000), *numbered(1, start=2)]
    server = NoUidlServer(messages, listed=[len(messages[0]), 100, len(messages[2])])  # the listing lies
    endpoint = Endpoint("pop3", host="127.0.0.1", port=server.port, user="u", tls="none",
                        password=PasswordSource(literal="p"))
    fetched = []
    try:
        with Pop3Store(endpoint) as store:
            refs = list(store.scan(INBOX).refs)
            with pytest.raises(MessageError) as caught:
                for message in store.fetch(INBOX, refs):
                    fetched.append(message.raw)
    finally:
        server.close()
    assert fetched == [messages[0], messages[2]]  # the third on a new session: the second was cut off
    assert server.accepted == 2
    assert caught.value.unreadable == ((refs[1].uid, "not read: the server sent more than 2.0 KB for it, the limit on "
                                                     "one message (MIGRATOR_MAX_MESSAGE_SIZE)"),)
