"""IMAP failures: each becomes the right error class with a clear sentence, and lost connections resume.

Against the real Dovecot where it can produce the failure; through a TCP proxy on a real
socket to cut connections mid-command or to connect from another address; and with a
scripted fake server only for what Dovecot will not do (no STARTTLS, a goodbye greeting,
malformed responses; what a server refuses in APPEND is in test_server_quirks.py).
"""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

import pytest

from harness.endpoints import endpoint, stand_in_endpoint
from harness.fake import usual_answers
from harness.proxy import FaultProxy
from migrator.core.errors import ConfigError, ConnectError, ConnectionLost, FolderError, MessageError
from migrator.core.message import Flag, Flags, Message
from migrator.endpoints.credentials import PasswordSource
from migrator.stores.imap import ImapStore
from migrator.stores.network import reconnect

UTC = timezone.utc


@pytest.fixture(autouse=True)
def quick_reconnect(monkeypatch):
    monkeypatch.setattr(reconnect, "POLICY", reconnect.ReconnectPolicy(delays=(0.0, 0.0, 0.0)))


def messages(count: int, size: int = 3000) -> list[Message]:
    body = b"".join(b"line %05d of the body of a test message\r\n" % i for i in range(size // 42))
    return [
        Message(b"Subject: number %d\r\nMessage-ID: <%d@drop.test>\r\n\r\n" % (n, n) + body,
                Flags.of(Flag.SEEN), datetime(2022, 3, 4, 5, 6, 7, tzinfo=UTC))
        for n in range(count)
    ]


@pytest.fixture
def proxies():
    """Return a function starting a FaultProxy (harness/proxy.py), closed after the test."""
    started: list[FaultProxy] = []

    def make(*args, **kwargs) -> FaultProxy:
        started.append(FaultProxy(*args, **kwargs))
        return started[-1]

    yield make
    for proxy in started:
        proxy.close()


# --- connecting to the real server -------------------------------------------------------------


def test_wrong_password(dovecot, user):
    with pytest.raises(ConnectError) as caught:
        ImapStore(endpoint(dovecot, user, password=PasswordSource(literal="pw-Zx81q"))).open()
    message = str(caught.value)
    assert f"cannot log in to 127.0.0.1 as {user.name}" in message
    assert "AUTHENTICATIONFAILED" in message and "password" in message
    assert "pw-Zx81q" not in message


def test_connection_refused(dovecot, user):
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(ConnectError, match=rf"cannot connect to 127.0.0.1:{port} for {user.name}: connection refused"):
        ImapStore(endpoint(dovecot, user, port=port)).open()


def test_untrusted_certificate(dovecot, user):
    for ca_file in (str(dovecot.untrusted_ca_file), None):
        with pytest.raises(ConnectError, match=r"certificate of 127.0.0.1 is not trusted .*\?ca_file=PATH"):
            ImapStore(endpoint(dovecot, user, ca_file=ca_file)).open()


def test_unreadable_ca_file(dovecot, user, tmp_path):
    with pytest.raises(ConfigError, match=rf"CA file {tmp_path}/none.pem for {user.name}@127.0.0.1"):
        ImapStore(endpoint(dovecot, user, ca_file=str(tmp_path / "none.pem"))).open()


def test_certificate_for_another_name(dovecot, user, proxies):
    proxy = proxies(dovecot.host, dovecot.ports["imaps"], listen_host="127.0.0.3")
    with pytest.raises(ConnectError, match="certificate of 127.0.0.3 was issued for another name"):
        ImapStore(endpoint(dovecot, user, host="127.0.0.3", port=proxy.port)).open()


def test_tls_port_spoken_to_in_clear_and_back(dovecot, user):
    with pytest.raises(ConnectError, match=r"answered the TLS handshake .* in clear text .*: "
                                           r"is this an imap:// port\?"):
        ImapStore(endpoint(dovecot, user, port=dovecot.ports["imap"])).open()


def test_login_disabled_without_tls(dovecot, user, proxies):
    # Dovecot trusts a client on its own address; from 127.0.0.2 it refuses LOGIN in clear.
    proxy = proxies(dovecot.host, dovecot.ports["imap"], source_host="127.0.0.2")
    with pytest.raises(ConnectError, match="refuses to log in .* without TLS: use imaps://"):
        ImapStore(endpoint(dovecot, user, port=proxy.port, tls="none")).open()
    with ImapStore(endpoint(dovecot, user, port=proxy.port, tls="starttls")) as imap:
        assert imap.list_folders()[0].path == ("INBOX",)


def test_unknown_folder(dovecot, user):
    with ImapStore(endpoint(dovecot, user)) as imap:
        with pytest.raises(FolderError) as caught:
            imap.scan(("No Such Folder",))
    assert str(caught.value) == (
        f"no folder No Such Folder on {user.name}@127.0.0.1: run "
        f"`migrator folders imaps://{user.name}@127.0.0.1:{dovecot.ports['imaps']}` to see its folders"
    )


def test_folder_renumbered_between_scan_and_fetch(dovecot, user):
    dovecot.seed(user, [("Box", m.raw, [], m.received) for m in messages(2)])
    with ImapStore(endpoint(dovecot, user)) as imap:
        refs = list(imap.scan(("Box",)).refs)
        conn = dovecot.imap(user)
        conn.delete("Box")
        conn.logout()
        dovecot.seed(user, [("Box", m.raw, [], m.received) for m in messages(2)])  # a new UIDVALIDITY
        with pytest.raises(FolderError, match=r"folder Box on .* was renumbered \(UIDVALIDITY changed\)"):
            list(imap.fetch(("Box",), refs))


# --- lost connections ------------------------------------------------------------------------


def test_fetch_resumes_after_dropped_connections(dovecot, user, proxies):
    dovecot.seed(user, [("Box", m.raw, ["\\Seen"], m.received) for m in messages(200)])
    served = [raw for raw, _, _ in dovecot.dump(user)["Box"]]
    # Cut each of the first three connections after ~150 KB from the server: mid-FETCH.
    proxy = proxies(dovecot.host, dovecot.ports["imaps"],
                    when=lambda n, way, sent, _: n <= 3 and way == "down" and sent > 150_000)
    with ImapStore(endpoint(dovecot, user, port=proxy.port)) as imap:
        refs = list(imap.scan(("Box",)).refs)
        fetched = list(imap.fetch(("Box",), refs))
    assert proxy.connections == 4
    assert [m.uid for m in fetched] == [r.uid for r in refs]  # no duplicate, no loss, in order
    assert [m.raw for m in fetched] == served


def test_a_connection_that_keeps_dropping_gives_up(dovecot, user, proxies):
    dovecot.seed(user, [("Box", m.raw, [], m.received) for m in messages(3, size=100_000)])
    # The first connection is cut mid-FETCH, every later one before the server's greeting.
    proxy = proxies(dovecot.host, dovecot.ports["imaps"],
                    when=lambda n, way, sent, _: way == "down" and (n > 1 or sent > 60_000))
    with ImapStore(endpoint(dovecot, user, port=proxy.port)) as imap:
        refs = list(imap.scan(("Box",)).refs)
        with pytest.raises(ConnectionLost, match="gave up after 3 reconnections"):
            list(imap.fetch(("Box",), refs))
    assert proxy.connections == 4


def test_append_resumes_without_duplicates_when_replies_are_lost(dovecot_server, make_user, proxies):
    # In clear, so the proxy can see the server's first APPENDUID and cut the connection just
    # before forwarding it: the server has stored that group, the client never heard of it.
    plain = dovecot_server(plaintext_auth=True)
    user = make_user(plain)
    proxy = proxies(plain.host, plain.ports["imap"], when=lambda n, way, _, chunk: n == 1 and b"APPENDUID" in chunk)
    batch = messages(250)
    with ImapStore(endpoint(plain, user, "imap", port=proxy.port, tls="none"), readonly=False) as imap:
        folder = imap.ensure_folder(("Copied",))
        results = imap.append_batch(folder, batch)
    assert proxy.connections == 2
    assert all(r.ok for r in results)
    stored = plain.dump(user)["Copied"]
    assert sorted(raw for raw, _, _ in stored) == sorted(m.raw for m in batch)
    assert len({r.uid for r in results}) == len(batch)


# --- what only a fake server does -------------------------------------------------------------


def test_starttls_required_but_not_offered(fake):
    server = fake(b"* OK fake ready", usual_answers(b"IMAP4rev1 NAMESPACE"))
    with pytest.raises(ConnectError, match=r"127.0.0.1:\d+ does not offer STARTTLS, so the password for alice would "
                                           "travel in clear"):
        ImapStore(stand_in_endpoint(server.port, tls="starttls")).open()
    assert "LOGIN" not in " ".join(server.commands).upper()


def test_goodbye_greeting(fake):
    server = fake(b"* BYE too many connections from your address", usual_answers(b"IMAP4rev1"))
    with pytest.raises(ConnectError, match="127.0.0.1 refused the connection for alice: too many connections"):
        ImapStore(stand_in_endpoint(server.port, tls="none")).open()


def test_malformed_list_response(fake):
    broken = {"LIST": lambda _: [b'* LIST (\\HasNoChildren "/" "unbalanced', b"{tag} OK done"]}
    server = fake(b"* OK fake ready", usual_answers(b"IMAP4rev1 NAMESPACE", **broken))
    with ImapStore(stand_in_endpoint(server.port, tls="none")) as imap:
        with pytest.raises(ConnectionLost, match="unreadable response"):
            imap.list_folders()


def test_malformed_fetch_item(fake):
    answers = {
        "EXAMINE": lambda _: [b"* 1 EXISTS", b"* OK [UIDVALIDITY 7] ok", b"{tag} OK [READ-ONLY] done"],
        "UID": lambda _: [b'* 1 FETCH (UID 1 FLAGS () RFC822.SIZE 5 INTERNALDATE "yesterday")', b"{tag} OK done"],
    }
    server = fake(b"* OK fake ready", usual_answers(b"IMAP4rev1 NAMESPACE", **answers))
    with ImapStore(stand_in_endpoint(server.port, tls="none")) as imap:
        with pytest.raises(FolderError, match="alice@127.0.0.1 sent a response that cannot be read while scanning Box"):
            imap.scan(("Box",))


def test_a_refused_changes_listing_falls_back_to_the_whole_folder(fake):
    asked = []

    def refuse(command: str) -> list[bytes]:
        asked.append(command)
        return [b"{tag} NO [NOMODSEQ] no mod-sequences in this mailbox"]

    answers = {"EXAMINE": lambda _: [b"* 2 EXISTS", b"* OK [UIDVALIDITY 7] ok", b"{tag} OK [READ-ONLY] done"],
               "UID": refuse}
    server = fake(b"* OK fake ready", usual_answers(b"IMAP4rev1 NAMESPACE CONDSTORE", **answers))
    with ImapStore(stand_in_endpoint(server.port, tls="none")) as imap:
        assert imap.scan_changes(("Box",), "7.3.2.40") is None  # refused: the caller scans the folder
        assert imap.scan_changes(("Box",), "8.3.2.40") is None  # renumbered since: nothing is asked
    assert len(asked) == 1 and "(CHANGEDSINCE 40)" in asked[0]


def test_authenticate_plain_without_initial_response(fake):
    answers = {"AUTHENTICATE": lambda _: [b"+ ", b"{tag} OK logged in"]}
    server = fake(b"* OK fake ready", usual_answers(b"IMAP4rev1 AUTH=PLAIN NAMESPACE", **answers))
    with ImapStore(stand_in_endpoint(server.port, tls="none")):
        pass
    position = server.commands.index("AUTHENTICATE PLAIN")
    assert base64.b64decode(server.commands[position + 1]) == b"\0alice\0secret"


@pytest.mark.parametrize("marked, expunged", [({3, 5}, True), ({3, 5, 8}, False)])
def test_delete_without_uidplus_expunges_only_its_own(fake, marked, expunged):
    search = " ".join(map(str, sorted(marked))).encode()
    answers = {
        "SELECT": lambda _: [b"* 9 EXISTS", b"* OK [UIDVALIDITY 7] ok", b"{tag} OK [READ-WRITE] done"],
        "UID": lambda text: [b"* SEARCH " + search] * ("SEARCH" in text) + [b"{tag} OK done"],
    }
    server = fake(b"* OK fake ready", usual_answers(b"IMAP4rev1 NAMESPACE", **answers))
    with ImapStore(stand_in_endpoint(server.port, tls="none"), readonly=False) as imap:
        if expunged:
            imap.delete(("Box",), ["5", "3"])
        else:
            with pytest.raises(FolderError, match="other messages there are marked deleted too"):
                imap.delete(("Box",), ["5", "3"])
    assert "UID STORE 3,5 +FLAGS.SILENT (\\Deleted)" in server.commands
    assert ("EXPUNGE" in server.commands) is expunged


# --- literals over the limit on one message ---------------------------------------------------

BODY = b"Subject: small\r\n\r\nhello\r\n"
EXAMINE_BOX = {"EXAMINE": lambda _: [b"* 3 EXISTS", b"* OK [UIDVALIDITY 7] ok", b"{tag} OK [READ-ONLY] done"]}


def fetched_uids(text: str) -> list[int]:
    """Return the uids of ``UID FETCH 1:2,5 (...)``."""
    uids: list[int] = []
    for part in text.split()[2].split(","):
        low, _, high = part.partition(":")
        uids += range(int(low), int(high or low) + 1)
    return uids


def fetches_announcing(oversized: int, announced: int) -> Callable[[str], list[bytes]]:
    """Answer UID FETCH for three small messages, but for uid ``oversized`` announce a literal of ``announced`` bytes.

    After the announcement nothing more comes: only a client that reads no further goes on.
    """

    def answer(text: str) -> list[bytes]:
        if "RFC822.SIZE" in text:
            return [b'* %d FETCH (UID %d FLAGS () RFC822.SIZE %d INTERNALDATE "01-Jan-2020 00:00:00 +0000")'
                    % (n, n, len(BODY)) for n in (1, 2, 3)] + [b"{tag} OK done"]
        lines = []
        for uid in fetched_uids(text):
            if uid == oversized:
                return [*lines, b"* %d FETCH (UID %d FLAGS () BODY[] {%d}" % (uid, uid, announced)]
            lines.append(b"* %d FETCH (UID %d FLAGS () BODY[] {%d}\r\n%s)" % (uid, uid, len(BODY), BODY))
        return [*lines, b"{tag} OK done"]

    return answer


@pytest.mark.parametrize("announced, shown", [(2**32, "4.3 GB"), (2**40, "1.1 TB"), (10**20, "100.0 EB")])
def test_a_body_over_the_limit_is_never_read_and_only_its_message_fails(fake, announced, shown):
    answers = {**EXAMINE_BOX, "UID": fetches_announcing(2, announced)}
    server = fake(b"* OK fake ready", usual_answers(b"IMAP4rev1 NAMESPACE", **answers))
    fetched = []
    with ImapStore(stand_in_endpoint(server.port, tls="none")) as imap:
        refs = list(imap.scan(("Box",)).refs)
        with pytest.raises(MessageError) as caught:
            for message in imap.fetch(("Box",), refs):
                fetched.append((message.uid, message.raw))
    assert fetched == [("1", BODY), ("3", BODY)]  # the third after a new connection, the second never asked again
    reason = (f"not read: the server announced {announced} bytes ({shown}), "
              "over the limit of 2.0 GB on one message (MIGRATOR_MAX_MESSAGE_SIZE)")
    assert caught.value.unreadable == (("2", reason),)
    assert str(caught.value) == f"message 2 {reason}"
    assert [c.split(" (")[0] for c in server.commands if "BODY.PEEK" in c] == ["UID FETCH 1:3", "UID FETCH 3"]


def test_a_literal_over_the_limit_outside_a_body_ends_the_connection(fake):
    answers = {"LIST": lambda _: [b'* LIST () "/" {1099511627776}']}
    server = fake(b"* OK fake ready", usual_answers(b"IMAP4rev1 NAMESPACE", **answers))
    with ImapStore(stand_in_endpoint(server.port, tls="none")) as imap:
        with pytest.raises(ConnectionLost) as caught:
            imap.list_folders()
    assert str(caught.value) == (
        f"the connection to 127.0.0.1:{server.port} was lost: the server announced a literal of 1099511627776 bytes "
        "(1.1 TB), over the limit of 2.0 GB on one message (MIGRATOR_MAX_MESSAGE_SIZE) (gave up after 3 reconnections)"
    )


def test_a_body_over_the_limit_without_its_uid_fails_the_folder(fake):
    def answer(text: str) -> list[bytes]:
        if "RFC822.SIZE" in text:
            return fetches_announcing(2, 0)(text)
        return [b"* 1 FETCH (BODY[] {3000000000}"]

    server = fake(b"* OK fake ready", usual_answers(b"IMAP4rev1 NAMESPACE", **EXAMINE_BOX, UID=answer))
    with ImapStore(stand_in_endpoint(server.port, tls="none")) as imap:
        refs = list(imap.scan(("Box",)).refs)
        with pytest.raises(FolderError, match=r"announced a literal of 3000000000 bytes \(3.0 GB\), over the limit .* "
                                              "in Box before naming its message: the folder cannot be read past it"):
            list(imap.fetch(("Box",), refs))


def test_a_slow_but_steady_server_is_not_a_stalled_one(fake, monkeypatch):
    # 8 MB, a megabyte every 0.4 s: 3.2 s in all, over the limit of 2 s, but each megabyte is progress.
    monkeypatch.setenv("MIGRATOR_STALL_SECONDS", "2")
    piece = b"x" * 99_998 + b"\r\n"

    def steady(text: str) -> Iterator[bytes]:
        if "RFC822.SIZE" in text:
            yield b'* 1 FETCH (UID 1 FLAGS () RFC822.SIZE 8000000 INTERNALDATE "01-Jan-2020 00:00:00 +0000")'
        else:
            yield b"* 1 FETCH (UID 1 FLAGS () BODY[] {8000000}"
            for _ in range(80):
                time.sleep(0.04)
                yield piece[:-2]  # the server ends each line with CRLF
            yield b")"
        yield b"{tag} OK done"

    answers = {"EXAMINE": lambda _: [b"* 1 EXISTS", b"* OK [UIDVALIDITY 7] ok", b"{tag} OK [READ-ONLY] done"],
               "UID": steady}
    server = fake(b"* OK fake ready", usual_answers(b"IMAP4rev1 NAMESPACE", **answers))
    with ImapStore(stand_in_endpoint(server.port, tls="none")) as imap:
        [message] = imap.fetch(("Box",), list(imap.scan(("Box",)).refs))
    assert message.raw == piece * 80
    assert len([c for c in server.commands if "BODY.PEEK" in c]) == 1  # not once more after a stall
