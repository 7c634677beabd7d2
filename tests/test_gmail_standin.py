"""The Gmail stand-in (harness/gmail.py) by itself, through the standard library's imaplib, and then
through migrator's own IMAP client, which must treat it as it treats any server."""

from __future__ import annotations

import imaplib
import os
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from harness.gmail import (
    GERMAN,
    SESSION_EXPIRED,
    Budgets,
    GmailServer,
    Throttle,
    microsoft_throttled,
)
from migrator.cli import main

WHEN = datetime(2024, 3, 4, 5, 6, 7, tzinfo=timezone.utc)


def raw(number: int, size: int = 0) -> bytes:
    return (f"Message-ID: <{number}@standin.test>\r\nSubject: number {number}\r\nFrom: a@example.com\r\n\r\n"
            f"body {number}\r\n" + "x" * size).encode()


@pytest.fixture
def gmail():
    server = GmailServer()
    yield server
    server.close()


def connect(server: GmailServer, folder: str | None = None) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", server.port, timeout=5)
    client.login(server.user, server.password)
    if folder is not None:
        assert client.select(f'"{folder}"')[0] == "OK"
    return client


def uid_fetch(client: imaplib.IMAP4, uids: str, items: str) -> list[bytes]:
    """Return each FETCH response of a UID FETCH as one line of bytes, literals inline."""
    typ, data = client.uid("FETCH", uids, items)
    assert typ == "OK"
    lines, current = [], b""
    for part in data:
        if isinstance(part, tuple):
            current += part[0] + b"\r\n" + part[1]  # imaplib drops the line end after a literal's {size}
        else:
            current += part
            lines.append(current)
            current = b""
    return [line for line in lines if line]


def labels_in(client: imaplib.IMAP4, uid: int) -> bytes:
    return re.search(rb"X-GM-LABELS \((.*?)\)", uid_fetch(client, str(uid), "(X-GM-LABELS)")[0]).group(1)


def folder_of(server: GmailServer, name: str) -> list[int]:
    return [message.msgid for message in server.folder(name)]


# --- greeting, login ------------------------------------------------------------------


def test_greets_and_lists_capabilities_as_gmail_less_what_it_lacks(gmail):
    client = imaplib.IMAP4("127.0.0.1", gmail.port, timeout=5)
    assert client.welcome.startswith(b"* OK Gimap ready for requests")
    assert {"X-GM-EXT-1", "XLIST", "SASL-IR", "AUTH=PLAIN", "AUTH=XOAUTH2"} <= set(client.capabilities)
    client.login(gmail.user, gmail.password)
    after = set(client.untagged_responses["CAPABILITY"][-1].decode().split())
    assert {"UIDPLUS", "MOVE", "CONDSTORE", "ESEARCH", "LIST-STATUS", "SPECIAL-USE", "LITERAL-",
            "APPENDLIMIT=35651584", "UTF8=ACCEPT", "ENABLE"} <= after
    assert not after & {"IDLE", "COMPRESS=DEFLATE", "QUOTA", "LITERAL+"}


def test_login_and_authenticate_plain_check_the_one_user(gmail):
    client = imaplib.IMAP4("127.0.0.1", gmail.port, timeout=5)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        client.login(gmail.user, "wrong")
    typ, _ = client.authenticate("PLAIN", lambda _: f"\0{gmail.user}\0{gmail.password}".encode())
    assert typ == "OK"


def test_xoauth2_takes_the_configured_token_and_explains_a_refusal():
    server = GmailServer(token="ya29.token")
    good = imaplib.IMAP4("127.0.0.1", server.port, timeout=5)
    assert good.authenticate("XOAUTH2", lambda _: f"user={server.user}\1auth=Bearer ya29.token\1\1".encode())[0] == "OK"
    bad = imaplib.IMAP4("127.0.0.1", server.port, timeout=5)
    challenges = []
    wrong = f"user={server.user}\1auth=Bearer no\1\1".encode()
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        bad.authenticate("XOAUTH2", lambda challenge: challenges.append(challenge) or wrong)
    assert b'"schemes":"Bearer"' in challenges[-1]


# --- folders --------------------------------------------------------------------------


def test_list_answers_as_gmail_does(gmail):
    gmail.add_message(raw(1), labels=["\\Inbox", "Work/Projects"])
    _, lines = connect(gmail).list()
    assert lines == [
        b'(\\HasNoChildren) "/" "INBOX"',
        b'(\\HasChildren) "/" "Work"',
        b'(\\HasNoChildren) "/" "Work/Projects"',
        b'(\\Noselect \\HasChildren) "/" "[Gmail]"',
        b'(\\HasNoChildren \\All) "/" "[Gmail]/All Mail"',
        b'(\\HasNoChildren \\Drafts) "/" "[Gmail]/Drafts"',
        b'(\\HasNoChildren \\Important) "/" "[Gmail]/Important"',
        b'(\\HasNoChildren \\Sent) "/" "[Gmail]/Sent Mail"',
        b'(\\HasNoChildren \\Junk) "/" "[Gmail]/Spam"',
        b'(\\HasNoChildren \\Flagged) "/" "[Gmail]/Starred"',
        b'(\\HasNoChildren \\Trash) "/" "[Gmail]/Trash"',
    ]


def test_localised_names_and_prefix_in_modified_utf7():
    server = GmailServer(names=GERMAN)
    lines = connect(server).list()[1]
    assert b'(\\Noselect \\HasChildren) "/" "[Google Mail]"' in lines
    assert b'(\\HasNoChildren \\All) "/" "[Google Mail]/Alle Nachrichten"' in lines
    assert b'(\\HasNoChildren \\Drafts) "/" "[Google Mail]/Entw&APw-rfe"' in lines
    assert connect(server).select('"[Google Mail]/Papierkorb"')[0] == "OK"


def test_list_extended_selection_return_status_and_xlist(gmail):
    gmail.add_message(raw(1))
    client = connect(gmail)
    _, lines = client.list('""', '"*" RETURN (SPECIAL-USE STATUS (MESSAGES UIDNEXT))')
    assert len(lines) == 9
    assert b'"INBOX" (MESSAGES 1 UIDNEXT 2)' in client.response("STATUS")[1]
    _, special = client.list('(SPECIAL-USE) ""', '"*"')
    assert len(special) == 7 and all(b"[Gmail]/" in line for line in special)
    client.xatom("XLIST", '""', '"*"')
    xlist = client.response("XLIST")[1]
    assert b'(\\HasNoChildren \\Inbox) "/" "INBOX"' in xlist
    assert b'(\\HasNoChildren \\AllMail) "/" "[Gmail]/All Mail"' in xlist


def test_one_message_shows_in_a_folder_per_label_with_its_own_uids(gmail):
    gmail.add_message(raw(0), labels=["\\Inbox"])
    msgid = gmail.add_message(raw(1), labels=["\\Inbox", "\\Sent", "\\Important", "\\Draft", "Work"],
                              flags=["\\Flagged"])
    spam = gmail.add_message(raw(2), labels=["\\Spam"])
    trash = gmail.add_message(raw(3), labels=["\\Trash", "Work"])
    client = connect(gmail)
    found = {}
    for folder in ("INBOX", "[Gmail]/Sent Mail", "[Gmail]/Important", "[Gmail]/Drafts", "[Gmail]/Starred", "Work",
                   "[Gmail]/All Mail"):
        client.select(f'"{folder}"')
        typ, data = client.uid("SEARCH", None, "X-GM-MSGID", str(msgid))
        found[folder] = int(data[0])
    assert found == {"INBOX": 2, "[Gmail]/Sent Mail": 1, "[Gmail]/Important": 1, "[Gmail]/Drafts": 1,
                     "[Gmail]/Starred": 1, "Work": 1, "[Gmail]/All Mail": 2}
    assert spam not in folder_of(gmail, "[Gmail]/All Mail") and trash not in folder_of(gmail, "Work")
    assert folder_of(gmail, "[Gmail]/Spam") == [spam] and folder_of(gmail, "[Gmail]/Trash") == [trash]


def test_select_examine_and_status_give_each_folder_its_numbers(gmail):
    gmail.add_message(raw(1), flags=["\\Seen", "$Forwarded"])
    client = connect(gmail)
    typ, data = client.select("INBOX")
    assert (typ, data) == ("OK", [b"1"])
    assert client.response("UIDNEXT")[1] == [b"2"]
    assert b"$Forwarded" in client.response("PERMANENTFLAGS")[1][0]
    assert client.response("HIGHESTMODSEQ")[1][0].isdigit()
    inbox_validity = client.response("UIDVALIDITY")[1][0]
    client.select('"[Gmail]/All Mail"', readonly=True)
    assert client.response("READ-ONLY")[1] and client.response("UIDVALIDITY")[1][0] != inbox_validity
    _, status = client.status('"[Gmail]/Sent Mail"', "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)")
    assert re.fullmatch(rb'"\[Gmail\]/Sent Mail" \(MESSAGES 0 UIDNEXT 1 UIDVALIDITY \d+ UNSEEN 0 HIGHESTMODSEQ 1\)',
                        status[0])
    assert client.select('"[Gmail]"')[0] == "NO"


# --- reading --------------------------------------------------------------------------


def test_uid_search_all_ranges_and_gmail_ids(gmail):
    msgids = [gmail.add_message(raw(n)) for n in range(4)]
    client = connect(gmail, "INBOX")
    assert client.uid("SEARCH", None, "ALL")[1] == [b"1 2 3 4"]
    assert client.uid("SEARCH", None, "UID", "2:3")[1] == [b"2 3"]
    assert client.uid("SEARCH", None, "UID", "9:*")[1] == [b"4"]
    assert client.uid("SEARCH", None, "X-GM-MSGID", str(msgids[2]))[1] == [b"3"]
    assert client.search(None, "UNSEEN", "NOT", "UID", "1")[1] == [b"2 3 4"]
    client.uid("SEARCH", "RETURN", "(COUNT MIN)", "ALL")
    assert client.response("ESEARCH")[1][0].endswith(b") UID MIN 1 COUNT 4")


def test_fetch_items_migrator_and_gmail_clients_ask_for(gmail):
    message = raw(1, size=50)
    msgid = gmail.add_message(message, flags=["\\Seen"], date=WHEN, thrid=77)
    client = connect(gmail, "INBOX")
    (line,) = uid_fetch(client, "1:*", "(UID FLAGS RFC822.SIZE INTERNALDATE X-GM-MSGID X-GM-THRID MODSEQ)")
    assert line.startswith(b'1 (UID 1 FLAGS (\\Seen) RFC822.SIZE %d INTERNALDATE "04-Mar-2024 05:06:07 +0000" '
                           b"X-GM-MSGID %d X-GM-THRID 77 MODSEQ (" % (len(message), msgid))
    (line,) = uid_fetch(client, "1", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
    assert line.endswith(b"BODY[] {%d}\r\n" % len(message) + message + b")")
    header = message.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    assert uid_fetch(client, "1", "BODY.PEEK[HEADER]")[0].endswith(header + b")")
    (line,) = uid_fetch(client, "1", "(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID SUBJECT)])")
    fields = b"Message-ID: <1@standin.test>\r\nSubject: number 1\r\n\r\n"
    assert line.endswith(b"BODY[HEADER.FIELDS (MESSAGE-ID SUBJECT)] {51}\r\n" + fields + b")")
    assert uid_fetch(client, "1", "BODY.PEEK[]<0.10>")[0].endswith(b"BODY[]<0> {10}\r\nMessage-ID)")


def test_body_without_peek_sets_seen_and_peek_does_not(gmail):
    msgid = gmail.add_message(raw(1))
    client = connect(gmail, "INBOX")
    uid_fetch(client, "1", "BODY.PEEK[]")
    assert "\\Seen" not in gmail.message(msgid).flags
    assert b"FLAGS (\\Seen)" in uid_fetch(client, "1", "BODY[]")[0]
    assert "\\Seen" in gmail.message(msgid).flags


def test_labels_as_gmail_sends_them_less_the_folders_own(gmail):
    gmail.add_message(raw(1), labels=["\\Inbox", "\\Sent", "Work", "Work/Projects", "Ümlaut"], flags=["\\Flagged"])
    client = connect(gmail, "INBOX")
    assert labels_in(client, 1) == b'"\\\\Sent" "\\\\Starred" Work "Work/Projects" "&ANw-mlaut"'
    client.select('"[Gmail]/All Mail"')
    assert labels_in(client, 1).startswith(b'"\\\\Inbox" "\\\\Sent" "\\\\Starred" Work')
    client.select("Work")
    assert b" Work " not in labels_in(client, 1) + b" "


# --- writing --------------------------------------------------------------------------


def test_append_gives_the_folders_label_keeps_flags_and_date_and_answers_appenduid(gmail):
    client = connect(gmail)
    typ, data = client.append('"[Gmail]/Sent Mail"', "(\\Seen $Forwarded)", imaplib.Time2Internaldate(WHEN), raw(1))
    assert typ == "OK" and re.fullmatch(rb"\[APPENDUID \d+ 1\] \(Success\)", data[0])
    (message,) = gmail.folder("[Gmail]/Sent Mail")
    assert message.labels == {"\\Sent"} and message.flags == {"\\Seen", "$Forwarded"} and message.date == WHEN
    client.append('"[Gmail]/All Mail"', None, None, raw(2))
    assert gmail.folder("[Gmail]/All Mail")[-1].labels == set()
    client.append('"[Gmail]/Starred"', None, None, raw(3))
    assert gmail.folder("[Gmail]/Starred")[-1].flags == {"\\Flagged"}
    assert client.append('"Nowhere"', None, None, raw(4))[0] == "NO"


def test_append_of_a_message_already_there_keeps_one_copy_with_a_new_uid(gmail):
    msgid = gmail.add_message(raw(1), labels=["\\Inbox"])
    client = connect(gmail)
    client.create("Work")
    client.append("Work", None, None, raw(1))
    assert list(gmail.account.messages) == [msgid] and gmail.message(msgid).labels == {"\\Inbox", "Work"}
    typ, data = client.append("INBOX", None, None, raw(1))
    assert data[0].startswith(b"[APPENDUID") and data[0].split()[2] == b"2]"
    assert gmail.uids("INBOX") == {2: msgid} and gmail.appended == 2


def test_append_over_the_limit_is_refused_as_gmail_words_it():
    server = GmailServer(appendlimit=100)
    client = connect(server)
    with pytest.raises(imaplib.IMAP4.error, match=r"\[TOOBIG\] Message too large"):
        client.append("INBOX", None, None, raw(1, size=200))
    assert client.noop()[0] == "OK" and server.account.messages == {}
    assert server.commands[-2] == f"APPEND INBOX {{{len(raw(1, size=200))} bytes}}"


def test_store_flags_plus_minus_and_replace(gmail):
    msgid = gmail.add_message(raw(1))
    client = connect(gmail, "INBOX")
    assert client.uid("STORE", "1", "+FLAGS", "(\\Seen $Label1)")[1] == [b"1 (UID 1 FLAGS (\\Seen $Label1))"]
    client.uid("STORE", "1", "-FLAGS.SILENT", "($Label1)")
    assert gmail.message(msgid).flags == {"\\Seen"}
    client.store("1", "FLAGS", "(\\Answered)")
    assert gmail.message(msgid).flags == {"\\Answered"}


def test_store_labels_moves_the_message_between_folders(gmail):
    msgid = gmail.add_message(raw(1), labels=["\\Inbox"])
    client = connect(gmail, "INBOX")
    client.uid("STORE", "1", "+X-GM-LABELS", "(Receipts \\Starred)")
    assert folder_of(gmail, "Receipts") == [msgid] and folder_of(gmail, "[Gmail]/Starred") == [msgid]
    client.uid("STORE", "1", "-X-GM-LABELS", "(\\Inbox)")
    assert folder_of(gmail, "INBOX") == [] and gmail.message(msgid).labels == {"Receipts"}
    assert client.noop()[0] == "OK" and client.response("EXPUNGE")[1] == [b"1"]
    client.select("Receipts")
    client.uid("STORE", "1", "X-GM-LABELS", "(\\Important)")
    assert gmail.message(msgid).labels == {"\\Important"} and "\\Flagged" not in gmail.message(msgid).flags


def test_uid_copy_adds_a_label_and_move_swaps_it(gmail):
    msgid = gmail.add_message(raw(1), labels=["\\Inbox"])
    client = connect(gmail)
    client.create("Work")
    client.create("Later")
    client.select("INBOX")
    assert client.uid("COPY", "1", "Work")[0] == "OK"
    assert re.fullmatch(rb"\d+ 1 1", client.response("COPYUID")[1][0])
    assert gmail.message(msgid).labels == {"\\Inbox", "Work"}
    client.select("Work")
    assert client.uid("MOVE", "1", "Later")[0] == "OK"
    assert gmail.message(msgid).labels == {"\\Inbox", "Later"} and client.response("EXPUNGE")[1] == [b"1"]


def test_expunge_removes_the_label_archives_in_all_mail_and_deletes_from_trash(gmail):
    msgid = gmail.add_message(raw(1), labels=["\\Inbox", "Work"])
    client = connect(gmail, "INBOX")
    client.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
    assert client.expunge()[1] == [b"1"]
    assert gmail.message(msgid).labels == {"Work"}
    client.select('"[Gmail]/All Mail"')
    client.store("1", "+FLAGS", "(\\Deleted)")
    client.expunge()
    assert folder_of(gmail, "[Gmail]/All Mail") == [msgid] and gmail.message(msgid).labels == {"Work"}
    client.uid("COPY", "1", '"[Gmail]/Trash"')
    assert folder_of(gmail, "[Gmail]/All Mail") == [] and folder_of(gmail, "Work") == []
    client.select('"[Gmail]/Trash"')
    client.store("1", "+FLAGS", "(\\Deleted)")
    client.expunge()
    assert gmail.account.messages == {}


def test_uid_expunge_only_takes_its_set_and_deleted_is_kept_per_folder(gmail):
    first, second = gmail.add_message(raw(1)), gmail.add_message(raw(2))
    client = connect(gmail, "INBOX")
    client.uid("STORE", "1:2", "+FLAGS", "(\\Deleted)")
    client.select('"[Gmail]/All Mail"')
    assert b"\\Deleted" not in uid_fetch(client, "1", "FLAGS")[0]
    client.select("INBOX")
    client.uid("EXPUNGE", "2")
    assert folder_of(gmail, "INBOX") == [first] and gmail.message(second).labels == set()


def test_auto_expunge_removes_a_deleted_message_at_once():
    server = GmailServer(auto_expunge=True)
    server.add_message(raw(1))
    client = connect(server, "INBOX")
    client.uid("STORE", "1", "+FLAGS.SILENT", "(\\Deleted)")
    assert server.folder("INBOX") == [] and len(server.folder("[Gmail]/All Mail")) == 1


def test_housekeeping_commands_and_bad_for_the_rest(gmail):
    gmail.add_message(raw(1))
    client = connect(gmail)
    assert client.xatom("ENABLE", "CONDSTORE")[0] == "OK" and client.response("ENABLED")[1] == [b"CONDSTORE"]
    client.select("INBOX")
    assert client.noop()[0] == client.check()[0] == "OK"
    assert client.namespace()[1] == [b'(("" "/")) NIL NIL']
    assert client.xatom("ID", "NIL")[0] == "OK" and b'"GImap"' in client.response("ID")[1][0]
    client.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
    assert client.unselect()[0] == "OK" and len(gmail.folder("INBOX")) == 1
    client.select("INBOX")
    assert client.close()[0] == "OK" and gmail.folder("INBOX") == []
    with pytest.raises(imaplib.IMAP4.error, match="BAD.*Unknown command RENAME"):
        client.rename("a", "b")
    assert client.logout()[0] == "BYE"


# --- budgets, throttling, records -----------------------------------------------------


def test_a_session_past_its_download_budget_is_expired():
    server = GmailServer(budgets=Budgets(download=400))  # two messages of 170 bytes
    for number in range(3):
        server.add_message(raw(number, size=100))
    client = connect(server, "INBOX")
    with pytest.raises(imaplib.IMAP4.abort):
        client.uid("FETCH", "1:*", "BODY.PEEK[]")
    assert client.untagged_responses["BYE"] == [SESSION_EXPIRED.encode()]
    assert server.bodies_sent == 2
    assert uid_fetch(connect(server, "INBOX"), "3", "BODY.PEEK[]")  # a new session has a budget of its own


def test_an_account_past_its_upload_budget_is_expired():
    server = GmailServer(budgets=Budgets(upload=250, per="account"))
    connect(server).append("INBOX", None, None, raw(1, size=100))
    client = connect(server)
    with pytest.raises(imaplib.IMAP4.abort):
        client.append("INBOX", None, None, raw(2, size=100))
    assert server.appended == 1 and server.uploaded == len(raw(1, size=100))


def test_throttle_refuses_a_command_after_n_messages_as_gmail_or_microsoft_would():
    server = GmailServer(throttle=Throttle("UID FETCH", after=2, times=1))
    for number in range(3):
        server.add_message(raw(number))
    client = connect(server, "INBOX")
    uid_fetch(client, "1:2", "BODY.PEEK[]")
    typ, data = client.uid("FETCH", "3", "BODY.PEEK[]")
    assert typ == "NO" and data[0].startswith(b"[THROTTLED]")
    assert uid_fetch(client, "3", "BODY.PEEK[]")  # the one refusal given, it works again
    microsoft = GmailServer(throttle=Throttle("APPEND", after=1, reply=microsoft_throttled(299961), bye=True))
    client = connect(microsoft)
    client.append("INBOX", None, None, raw(1))
    with pytest.raises(imaplib.IMAP4.error, match="BAD.*Request is throttled. Suggested Backoff Time: 299961"):
        client.append("INBOX", None, None, raw(2))
    with pytest.raises(imaplib.IMAP4.abort):  # then "* BYE Connection closed.", and the connection is gone
        client.noop()
    assert microsoft.appended == 1


def test_commands_are_recorded_with_literals_as_their_size(gmail):
    gmail.add_message(raw(1))
    client = connect(gmail, "INBOX")
    uid_fetch(client, "1", "BODY.PEEK[]")
    client.append("INBOX", "(\\Seen)", None, raw(2))
    assert gmail.commands[-2:] == ["UID FETCH 1 BODY.PEEK[]", f"APPEND INBOX (\\Seen) {{{len(raw(2))} bytes}}"]
    assert gmail.bodies_sent == 1 and gmail.appended == 1


# --- migrator's client ----------------------------------------------------------------


@pytest.fixture
def password_env(gmail):
    os.environ["MIGRATOR_GMAIL_PW"] = gmail.password
    yield "MIGRATOR_GMAIL_PW"
    del os.environ["MIGRATOR_GMAIL_PW"]


def test_migrator_lists_its_folders(gmail, password_env, capsys):
    gmail.add_message(raw(1), labels=["\\Inbox", "Work"])
    assert main(["folders", gmail.endpoint(password_env)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\[Gmail\]/All Mail +1 .* all", out) and re.search(r"Work +1 ", out)


def test_migrator_copies_the_inbox_into_a_maildir(gmail, password_env, tmp_path: Path):
    inbox = [raw(n) for n in range(3)]
    for message in inbox:
        gmail.add_message(message, labels=["\\Inbox"], flags=["\\Seen"], date=WHEN)
    gmail.add_message(raw(9), labels=["Elsewhere"])
    target = tmp_path / "md"
    assert main(["copy", gmail.endpoint(password_env), f"maildir:{target}", "--folder", "INBOX", "--no-state"]) == 0
    assert sorted(path.read_bytes() for path in (target / "cur").iterdir()) == sorted(inbox)
