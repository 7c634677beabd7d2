"""Every real server the suite runs (Dovecot, Cyrus IMAP, Courier-IMAP): TLS, LIST, exact APPEND, and migrator.

The harness's own checks first (what later tests rely on: a login verified by the server's own
CA, seeding and reading back byte for byte), then ``migrator folders`` against each server.
"""

from __future__ import annotations

import imaplib
import ssl
from datetime import datetime, timedelta, timezone

import pytest

from harness import imapwire, mailboxes
from migrator.cli import main
from migrator.core.errors import ExitCode

WHEN = datetime(2021, 3, 7, 5, 6, 7, tzinfo=timezone(timedelta(hours=5, minutes=45)))
MESSAGE = (b"From: Sender <sender@example.org>\r\nTo: rcpt@example.net\r\nSubject: interop\r\n"
           b"Message-ID: <interop@example.org>\r\nDate: Sun, 7 Mar 2021 05:06:07 +0545\r\n\r\n"
           b"line one\r\n\tindented  \r\n\r\nlast line\r\n")
SPECIAL_FOLDERS = {"Drafts", "Sent", "Trash", "Junk", "Archive"}


def test_imaps_login_is_verified_by_the_servers_ca(imap_server):
    server, user = imap_server
    conn = imaplib.IMAP4_SSL(server.host, server.ports["imaps"], ssl_context=server.ssl_context())
    assert conn.login(user.name, user.password)[0] == "OK"
    conn.logout()


def test_imaps_with_another_ca_fails_verification(imap_server):
    server, _ = imap_server
    context = ssl.create_default_context(cafile=str(server.untrusted_ca_file))
    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL(server.host, server.ports["imaps"], ssl_context=context)


def test_starttls_upgrades_the_plain_port(imap_server):
    server, user = imap_server
    conn = imaplib.IMAP4(server.host, server.ports["imap"])
    assert "STARTTLS" in conn.capabilities
    conn.starttls(ssl_context=server.ssl_context())
    assert conn.login(user.name, user.password)[0] == "OK"
    conn.logout()


def test_pop3_over_tls_sees_the_inbox(imap_server):
    server, user = imap_server
    server.seed(user, [(("INBOX",), MESSAGE, [], WHEN)])
    conn = server.pop3(user)
    try:
        assert conn.stat() == (1, len(MESSAGE))
    finally:
        conn.quit()


def test_list_shows_the_inbox_and_the_special_folders(imap_server):
    server, user = imap_server
    conn = server.imap(user)
    try:
        names = set(mailboxes.selectable_folders(conn))
    finally:
        conn.logout()
    assert {server.user_folder(name.replace(server.separator, "/")) for name in names} >= {"INBOX"} | SPECIAL_FOLDERS


def test_append_and_fetch_are_byte_exact_with_flags_keywords_and_date(imap_server):
    server, user = imap_server
    flags = frozenset({"\\Seen", "\\Flagged", "$Forwarded", "work"})
    server.seed(user, [(("INBOX",), MESSAGE, flags, WHEN), (("Projects", "2024"), MESSAGE, [], WHEN)])
    found = server.dump(user, include_empty=False)
    assert found == {"INBOX": [(MESSAGE, flags, WHEN)], "Projects/2024": [(MESSAGE, frozenset(), WHEN)]}


def test_a_non_ascii_folder_name_round_trips(imap_server):
    server, user = imap_server
    server.seed(user, [(("Entwürfe", "日本語"), MESSAGE, [], WHEN)])
    assert list(server.dump(user, include_empty=False)) == ["Entwürfe/日本語"]


def test_the_wire_name_is_modified_utf7_under_the_personal_prefix(imap_server):
    server, user = imap_server
    server.seed(user, [(("Entwürfe",), MESSAGE, [], WHEN)])
    conn = server.imap(user)
    try:
        typ, lines = conn.list('""', imapwire.mailbox_name(server.server_folder(("Entwürfe",)), server.separator))
    finally:
        conn.logout()
    assert typ == "OK" and b"Entw&APw-rfe" in lines[0]


def test_migrator_folders_lists_each_server(imap_server, monkeypatch, capsys):
    server, user = imap_server
    server.seed(user, [(("Projects", "2024"), MESSAGE, [], WHEN)])
    monkeypatch.setenv("MIGRATOR_TEST_PW", user.password)
    endpoint = (f"imaps://{user.name}@{server.host}:{server.ports['imaps']}"
                f"?password_env=MIGRATOR_TEST_PW&ca_file={server.ca_file}")
    assert main(["folders", endpoint]) == ExitCode.OK
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "Projects/2024" in out and "Sent" in out  # named as the user sees them, without "INBOX."
