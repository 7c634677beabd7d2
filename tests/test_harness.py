"""The test harness itself: the throwaway Dovecot, its CA, seeding/dumping, rawlog, and the corpus."""

from __future__ import annotations

import imaplib
import os
import poplib
import ssl
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import imapwire
from harness.corpus import FOLDERS, SYSTEM_FLAG_COMBINATIONS, corpus, crlf, expected_dump, seed_items, server_safe
from harness.dovecot import OUTLOOK_SPECIAL_FOLDERS, DovecotServer, DovecotUnavailable
from migrator.core.message import Flag
from tests.support.tools import unavailable

CHILD_ATTRIBUTES = {"\\HasChildren", "\\HasNoChildren"}
WHEN = datetime(2021, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=5, minutes=45)))


# --- TLS and logins -----------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_imaps_verifies_against_the_generated_ca(dovecot, user, host):
    conn = imaplib.IMAP4_SSL(host, dovecot.ports["imaps"], ssl_context=dovecot.ssl_context())
    assert conn.login(user.name, user.password)[0] == "OK"
    conn.logout()


def test_imaps_fails_verification_with_an_untrusted_ca(dovecot):
    context = ssl.create_default_context(cafile=str(dovecot.untrusted_ca_file))
    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL(dovecot.host, dovecot.ports["imaps"], ssl_context=context)


def test_starttls_port_upgrades_and_logs_in(dovecot, user):
    conn = imaplib.IMAP4(dovecot.remote_host, dovecot.ports["imap"])
    assert "STARTTLS" in conn.capabilities and "LOGINDISABLED" in conn.capabilities
    conn.starttls(ssl_context=dovecot.ssl_context())
    assert conn.login(user.name, user.password)[0] == "OK"
    conn.logout()


def test_plaintext_login_is_refused_for_a_remote_client(dovecot, user):
    conn = imaplib.IMAP4(dovecot.remote_host, dovecot.ports["imap"])
    with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
        conn.login(user.name, user.password)
    conn.shutdown()


def test_plaintext_server_accepts_login_without_tls(dovecot_server, make_user):
    server = dovecot_server(plaintext_auth=True)
    account = make_user(server)
    imap = imaplib.IMAP4(server.remote_host, server.ports["imap"])
    assert imap.login(account.name, account.password)[0] == "OK"
    imap.logout()
    pop = poplib.POP3(server.remote_host, server.ports["pop3"])
    pop.user(account.name)
    assert pop.pass_(account.password).startswith(b"+OK")
    pop.quit()


def test_pop3s_and_stls_log_in(dovecot, user):
    pop = dovecot.pop3(user)
    assert pop.stat() == (0, 0)
    pop.quit()
    pop = poplib.POP3(dovecot.remote_host, dovecot.ports["pop3"])
    pop.stls(context=dovecot.ssl_context())
    pop.user(user.name)
    assert pop.pass_(user.password).startswith(b"+OK")
    pop.quit()


def test_wrong_password_is_refused(dovecot, user):
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        dovecot.imap(user.name, "not-the-password")


def test_user_added_right_after_a_login_can_log_in(dovecot, make_user):
    first = make_user()
    dovecot.imap(first).logout()
    second = make_user()
    dovecot.imap(second).logout()


# --- folders ------------------------------------------------------------------------------------

def _special_use(server, account) -> dict[str, str]:
    conn = server.imap(account)
    _typ, lines = conn.list('""', '"*"')
    conn.logout()
    parsed = [imapwire.parse_list_line(line) for line in lines]
    return {name: " ".join(sorted(attributes - CHILD_ATTRIBUTES)) for attributes, _sep, name in parsed
            if attributes - CHILD_ATTRIBUTES}


def test_special_folders_exist_at_first_login(dovecot, user):
    assert _special_use(dovecot, user) == {"Drafts": "\\Drafts", "Sent": "\\Sent", "Trash": "\\Trash",
                                           "Junk": "\\Junk", "Archive": "\\Archive"}


def test_outlook_variant_names_sent_items(dovecot_server, make_user):
    server = dovecot_server(special_folders=OUTLOOK_SPECIAL_FOLDERS)
    assert _special_use(server, make_user(server))["Sent Items"] == "\\Sent"


def test_dot_separator_server_nests_folders(dovecot_server, make_user):
    server = dovecot_server(separator=".")
    account = make_user(server)
    server.seed(account, [(("Projects", "2024", "Q1"), b"Subject: q1\r\n\r\nx\r\n", ["\\Seen"], WHEN)])
    conn = server.imap(account)
    _typ, lines = conn.list('""', '"Projects*"')
    conn.logout()
    assert {imapwire.parse_list_line(line)[1:] for line in lines} >= {(".", "Projects.2024.Q1")}
    assert server.dump(account, include_empty=False) == {
        "Projects/2024/Q1": [(b"Subject: q1\r\n\r\nx\r\n", frozenset({"\\Seen"}), WHEN)]}


# --- seeding, dumping, rawlog ---------------------------------------------------------------------

def test_seed_and_dump_round_trip_the_server_safe_corpus(dovecot, user):
    messages = server_safe(corpus())
    dovecot.seed(user, seed_items(messages))
    assert dovecot.dump(user, include_empty=False) == expected_dump(messages)


def test_seed_sends_bare_lf_unchanged(dovecot, user):
    dovecot.enable_rawlog(user)
    dovecot.seed(user, [("INBOX", b"Subject: lf\n\nbody\n", [], WHEN)])
    log = next((dovecot.root / "rawlog" / user.name / "imap").glob("*.in")).read_bytes()
    assert b"{18}\r\nSubject: lf\n\nbody\n\r\n" in imapwire.rawlog_stream(log)


def test_rawlog_counts_the_fetch_commands_the_server_received(dovecot, user):
    dovecot.seed(user, [("INBOX", f"Subject: {n}\r\n\r\n{n}\r\n".encode(), [], WHEN) for n in range(3)])
    dovecot.enable_rawlog(user)
    conn = dovecot.imap(user)
    conn.select("INBOX")
    for uid in (1, 2, 3):
        conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
    conn.uid("FETCH", "1:*", "(FLAGS)")
    conn.logout()
    fetches = [c for c in dovecot.imap_commands(user) if c.startswith("UID FETCH") and "BODY" in c]
    assert fetches == ["UID FETCH 1 (BODY.PEEK[])", "UID FETCH 2 (BODY.PEEK[])", "UID FETCH 3 (BODY.PEEK[])"]


def test_pop3_retrieval_leaves_messages_unseen(dovecot, user):
    dovecot.seed(user, [("INBOX", b"Subject: pop\r\n\r\nbody\r\n", [], WHEN)])
    dovecot.enable_rawlog(user)
    pop = dovecot.pop3(user)
    assert pop.retr(1)[1] == [b"Subject: pop", b"", b"body"]
    pop.quit()
    assert dovecot.pop3_commands(user) == ["RETR 1", "QUIT"]
    assert dovecot.dump(user)["INBOX"][0][1] == frozenset()


# --- reading archives written by someone else ----------------------------------------------------

def test_archive_user_reads_a_maildir_with_escaped_names_and_keywords(dovecot, tmp_path):
    folder = tmp_path / ".v1\\2e2 notes"
    for directory in (tmp_path, folder):
        for sub in ("cur", "new", "tmp"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
    (folder / "maildirfolder").touch()
    (folder / "dovecot-keywords").write_text("0 work\n1 $Forwarded\n")
    message = folder / "cur" / "1000.M1P1Q1.test,S=18:2,Sab"
    message.write_bytes(b"Subject: md\n\nbody\n")
    os.utime(message, (0, WHEN.timestamp()))
    account = dovecot.add_archive_user("archive-md", "pw", tmp_path)
    served = (b"Subject: md\r\n\r\nbody\r\n", frozenset({"\\Seen", "work", "$Forwarded"}), WHEN)
    assert dovecot.dump(account) == {"INBOX": [], "v1.2 notes": [served]}


def test_archive_user_reads_an_mbox_tree_with_dirname(dovecot, tmp_path):
    def mbox(subject: str, headers: str = "") -> bytes:
        envelope = "From MAILER-DAEMON Thu Mar  4 05:06:07 2021\n"
        return f"{envelope}Subject: {subject}\n{headers}Status: RO\n\nbody\n\n".encode()

    (tmp_path / "Projects" / "2024").mkdir(parents=True)
    (tmp_path / "INBOX").write_bytes(mbox("inbox", "X-IMAPbase: 1 2 work\nX-Keywords: work\n"))
    (tmp_path / "Projects" / "messages").write_bytes(mbox("parent"))
    (tmp_path / "Projects" / "2024" / "messages").write_bytes(mbox("child"))
    account = dovecot.add_archive_user("archive-mbox", "pw", tmp_path, kind="mbox", mbox_dirname="messages")
    dumped = dovecot.dump(account)
    assert {name: [m[0] for m in messages] for name, messages in dumped.items()} == {
        "INBOX": [b"Subject: inbox\r\n\r\nbody\r\n"], "Projects": [b"Subject: parent\r\n\r\nbody\r\n"],
        "Projects/2024": [b"Subject: child\r\n\r\nbody\r\n"]}
    assert {name: messages[0][1] for name, messages in dumped.items()} == {
        "INBOX": {"\\Seen", "work"}, "Projects": {"\\Seen"}, "Projects/2024": {"\\Seen"}}
    assert b"X-UID" not in (tmp_path / "INBOX").read_bytes()  # Dovecot wrote into its copy only


# --- lifecycle ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_stop_ends_the_server_and_removes_its_directory():
    try:
        server = DovecotServer().start()
    except DovecotUnavailable as error:
        unavailable(str(error))
    root, port = server.root, server.ports["imaps"]
    server.stop()
    assert not root.exists()
    with pytest.raises(OSError):
        imaplib.IMAP4_SSL(server.host, port, ssl_context=ssl.create_default_context(), timeout=2)


def test_missing_tool_fails_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        unavailable("needs frobnicate")


# --- the corpus and the wire helpers --------------------------------------------------------------

def test_corpus_is_deterministic_and_covers_the_edge_cases():
    messages = corpus()
    assert messages == corpus()
    assert {m.flags.system for m in messages} >= set(SYSTEM_FLAG_COMBINATIONS)
    assert {m.folder for m in messages} == set(FOLDERS)
    raws = [m.raw for m in messages]
    assert len(set(raws)) == len(raws)
    assert any(b"\n>>From two" in raw for raw in raws)
    assert any(not raw.endswith(b"\n") for raw in raws)
    assert any(len(line) >= 10_000 for raw in raws for line in raw.splitlines())
    assert any(m.received.year < 1970 for m in messages)
    assert {m.received.utcoffset() for m in messages} >= {timedelta(hours=14), timedelta(hours=-12),
                                                          timedelta(hours=5, minutes=45)}
    assert {k for m in messages for k in m.flags.keywords} == {"$Label1", "work", "Important"}


def test_large_corpus_adds_a_ten_megabyte_message():
    sizes = sorted(len(m.raw) for m in corpus(large=True))
    assert sizes[-1] >= 10_000_000 > sizes[-2]


def test_server_safe_drops_what_dovecot_changes():
    safe = server_safe(corpus(), separator=".")
    assert all(b"\x00" not in m.raw and m.raw == crlf(m.raw) for m in safe)
    assert all(m.received.year >= 1970 and m.received <= datetime.now(timezone.utc) for m in safe)
    assert ("v1_2 notes",) in {m.folder for m in safe}
    assert any(Flag.FORWARDED in m.flags for m in safe)


@given(st.text())
def test_mutf7_round_trips(name):
    encoded = imapwire.mutf7_encode(name)
    assert encoded.isascii() and imapwire.mutf7_decode(encoded) == name


def test_mutf7_matches_rfc3501_examples():
    assert imapwire.mutf7_encode("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
    assert imapwire.mutf7_encode("R&D") == "R&-D"


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)),
       st.integers(min_value=-12 * 60, max_value=14 * 60))
def test_internaldate_round_trips(moment, minutes):
    aware = moment.replace(microsecond=0, tzinfo=timezone(timedelta(minutes=minutes)))
    assert imapwire.parse_internaldate(imapwire.format_internaldate(aware)[1:-1]) == aware


def test_rawlog_commands_skip_literals_and_time_stamps():
    log = (b"1700000000.000001 a1 APPEND \"INBOX\" () {11}\r\n1700000000.000002 x1 LOGOUT\r\n"
           b"1700000000.000003 \r\n1700000000.000004 a2 UID FETCH 1 (BODY.PEEK[])\r\n")
    assert imapwire.rawlog_commands(log) == ['APPEND "INBOX" () {...}', "UID FETCH 1 (BODY.PEEK[])"]
