"""A Gmail account copied by its labels: each message fetched once, written into a folder per label.

Against the stand-in (harness/gmail.py), with a German account ([Google Mail], localised names):
a message with three labels, one in INBOX only, one archived, one starred, a draft, one sent
(and marked important), one in Spam and one in Trash. Copied to Maildir, PST, Dovecot and a
second Gmail; then copied again (nothing), then one message is labelled anew at the source and
copied again (only that label's copy), and verify finds everything there.
"""

from __future__ import annotations

import imaplib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.dovecot import DovecotServer, MailUser
from harness.endpoints import endpoint, stand_in_endpoint
from harness.gmail import GmailServer
from harness.gmail_account import GERMAN
from migrator.endpoints.endpoint import Endpoint, parse_endpoint
from migrator.pipeline.foldermap import FolderRules
from migrator.pipeline.options import CopyOptions
from migrator.pipeline.run import run_copy
from migrator.pipeline.summary import Summary
from migrator.pipeline.verify import verify
from migrator.state.statefile import StateStore
from migrator.stores import open_store
from migrator.stores.pst.messaging.props import PID_SUBJECT
from migrator.stores.pst.messaging.reader import message_nids, read_message
from migrator.stores.pst.reader import PstReader

G = "[Google Mail]"
ACCOUNT = [  # subject, labels, flags
    ("three labels", ["\\Inbox", "Work", "Work/Projects"], []),
    ("inbox only", ["\\Inbox"], ["\\Seen"]),
    ("archived", [], ["\\Seen"]),
    ("starred", ["\\Inbox"], ["\\Flagged"]),
    ("draft", ["\\Draft"], ["\\Draft"]),
    ("sent", ["\\Sent", "\\Important"], ["\\Seen"]),
    ("spam", ["\\Spam"], []),
    ("trash", ["\\Trash"], ["\\Seen"]),
]
LABELLED = {  # what a local archive shows: the source's own folder names
    "INBOX": [("inbox only", "seen"), ("starred", "flagged"), ("three labels", "-")],
    "Work": [("three labels", "-")],
    "Work/Projects": [("three labels", "-")],
    f"{G}/Alle Nachrichten": [("archived", "seen")],
    f"{G}/Entwürfe": [("draft", "draft")],
    f"{G}/Gesendet": [("sent", "seen")],
    f"{G}/Papierkorb": [("trash", "seen")],
    f"{G}/Spam": [("spam", "-")],
}
DOVECOT_NAMES = {f"{G}/Entwürfe": "Drafts", f"{G}/Gesendet": "Sent", f"{G}/Papierkorb": "Trash", f"{G}/Spam": "Junk"}
GMAIL_NAMES = {f"{G}/Alle Nachrichten": "[Gmail]/All Mail", f"{G}/Entwürfe": "[Gmail]/Drafts",
               f"{G}/Gesendet": "[Gmail]/Sent Mail", f"{G}/Papierkorb": "[Gmail]/Trash", f"{G}/Spam": "[Gmail]/Spam"}
BODIES = len(ACCOUNT)  # each message's body fetched once: All Mail's six, Spam's and Trash's


def raw(number: int, subject: str) -> bytes:
    return (f"Message-ID: <gmail-{number}@example.com>\r\nFrom: ana@example.com\r\nTo: bo@example.com\r\n"
            f"Subject: {subject}\r\nDate: Mon, 7 Dec 2026 03:0{number}:00 +0000\r\n\r\nMessage {number}.\r\n").encode()


@pytest.fixture
def gmail() -> Iterator[GmailServer]:
    """The Gmail-shaped account, localised."""
    server = GmailServer(user="alice", names=GERMAN)
    for number, (subject, labels, flags) in enumerate(ACCOUNT, 1):
        server.add_message(raw(number, subject), labels, flags)
    yield server
    server.close()


def shown(target: Endpoint) -> dict[str, list[tuple[str, str]]]:
    """Return {folder: sorted [(subject, flags)]} of every folder holding messages, read through migrator."""
    result = {}
    with open_store(target) as store:
        for folder in store.list_folders():
            if folder.selectable:
                messages = sorted((subject_of(m.raw), m.flags.describe()) for m in store.messages(folder.path))
                if messages:
                    result[folder.name] = messages
    return result


def subject_of(message: bytes) -> str:
    return message.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode()


def renamed(names: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    return {names.get(folder, folder): messages for folder, messages in LABELLED.items()}


def relabel(server: GmailServer, subject: str, label: str, sign: str = "+") -> None:
    """Add (or with ``sign`` "-" remove) ``label`` to the message ``subject`` as a mail client does: UID STORE
    +X-GM-LABELS."""
    client = imaplib.IMAP4("127.0.0.1", server.port)
    client.login(server.user, server.password)
    client.select('"[Google Mail]/Alle Nachrichten"')
    uid = next(uid for uid, msgid in server.uids(f"{G}/Alle Nachrichten").items()
               if subject_of(server.message(msgid).raw) == subject)
    assert client.uid("STORE", str(uid), f"{sign}X-GM-LABELS", f"({label})")[0] == "OK"
    client.logout()


def copy(source: Endpoint, target: Endpoint, state: StateStore) -> Summary:
    summary = run_copy(source, [target], state=state)
    assert not summary.failures
    return summary


def check_copies(gmail: GmailServer, target: Endpoint, state: StateStore, expected: dict,
                 after_relabel: Callable[[], None] = lambda: None) -> None:
    """Copy, copy again, relabel and copy again, checking bodies fetched, messages written and what the target shows."""
    source = stand_in_endpoint(gmail.port)
    first = copy(source, target, state)
    assert (first.copied, gmail.bodies_sent) == (BODIES, BODIES)
    assert shown(target) == expected

    again = copy(source, target, state)
    assert (again.copied, gmail.bodies_sent) == (0, BODIES)

    relabel(gmail, "inbox only", "Later")
    relabelled = copy(source, target, state)
    assert (relabelled.copied, gmail.bodies_sent) == (1, BODIES + 1)  # the relabelled message, into Later only
    after_relabel()
    with open_store(source) as gmail_store, open_store(target) as target_store:
        rows = verify(gmail_store, target_store)
    assert all(row.complete for row in rows), rows
    assert not [row for row in rows if row.extra or row.flag_differences or row.error], rows
    assert not [command for command in gmail.commands if "EXPUNGE" in command.upper() or "DELETED" in command.upper()]
    assert {row.source_folder for row in rows} >= {"INBOX", "Later", f"{G}/Alle Nachrichten", f"{G}/Spam"}


def test_gmail_to_maildir(gmail: GmailServer, tmp_path: Path) -> None:
    target = parse_endpoint(f"maildir:{tmp_path / 'Mail'}")
    state = StateStore(tmp_path / "state.db")
    check_copies(gmail, target, state, LABELLED)
    assert shown(target)["Later"] == [("inbox only", "seen")]
    assert shown(target)["INBOX"] == LABELLED["INBOX"]  # the old label's copy stays


def test_a_label_taken_away_and_given_back_is_not_copied_again(gmail: GmailServer, tmp_path: Path) -> None:
    gmail.add_message(raw(9, "also work"), ["Work"])
    target = parse_endpoint(f"maildir:{tmp_path / 'Mail'}")
    state = StateStore(tmp_path / "state.db")
    source = stand_in_endpoint(gmail.port)
    copy(source, target, state)
    relabel(gmail, "three labels", "Work", sign="-")
    assert copy(source, target, state).copied == 0  # its copy in Work stays: migrator deletes nothing
    relabel(gmail, "three labels", "Work")
    assert copy(source, target, state).copied == 0
    assert shown(target)["Work"] == [("also work", "-"), ("three labels", "-")]


def test_gmail_to_pst(gmail: GmailServer, tmp_path: Path) -> None:
    target = parse_endpoint(f"pst:{tmp_path / 'gmail.pst'}")
    check_copies(gmail, target, StateStore(tmp_path / "state.db"), LABELLED)
    assert shown(target)["Later"] == [("inbox only", "seen")]
    # Outlook shows each copy with the message's Gmail labels as categories (the user's own labels).
    assert categories(tmp_path / "gmail.pst", ("INBOX",)) == {
        "three labels": ["Work", "Work/Projects"], "inbox only": [], "starred": []}
    assert categories(tmp_path / "gmail.pst", ("Later",)) == {"inbox only": ["Later"]}


def categories(path: Path, folder: tuple[str, ...]) -> dict[str, list[str]]:
    """Return {subject: Outlook categories} of the messages of a PST folder, as Outlook reads them."""
    found = {}
    with PstReader(path) as pst:
        for nid in message_nids(pst.ndb, pst.folder(folder).nid):
            props = read_message(pst.ndb, nid).props
            keywords = props.get(pst.named.keywords) if pst.named.keywords is not None else None
            found[str(props.get(PID_SUBJECT))] = sorted(keywords or [])
    return found


def test_gmail_to_dovecot(gmail: GmailServer, dovecot: DovecotServer, user: MailUser, tmp_path: Path) -> None:
    target = endpoint(dovecot, user)
    check_copies(gmail, target, StateStore(tmp_path / "state.db"), renamed(DOVECOT_NAMES))
    assert shown(target)["Later"] == [("inbox only", "seen")]


def test_gmail_to_gmail_uploads_each_message_once_and_adds_its_other_labels(gmail: GmailServer, tmp_path: Path) -> None:
    other = GmailServer(user="alice")
    try:
        target = stand_in_endpoint(other.port)
        # Gmail shows every message in All Mail, and the starred one in Starred, whatever was written where.
        expected = renamed(GMAIL_NAMES) | {
            "[Gmail]/All Mail": sorted(m for folder, messages in LABELLED.items() if "Spam" not in folder
                                       and "Papierkorb" not in folder for m in messages if folder != "Work"
                                       and folder != "Work/Projects"),
            "[Gmail]/Starred": [("starred", "flagged")],
        }

        def labelled_not_uploaded() -> None:
            assert other.appended == BODIES
            assert len(label_stores(other)) == 3  # Work, Work/Projects, and Later on the rerun
            assert not [command for command in other.commands if "EXPUNGE" in command.upper()]

        check_copies(gmail, target, StateStore(tmp_path / "state.db"), expected, labelled_not_uploaded)
        later = other.folder("Later")
        assert [subject_of(m.raw) for m in later] == ["inbox only"]
        assert "\\Inbox" in later[0].labels  # one message with both labels, not a second copy
        assert len(other.account.messages) == BODIES
    finally:
        other.close()


def label_stores(server: GmailServer) -> list[str]:
    return [command for command in server.commands if "X-GM-LABELS" in command.upper() and "STORE" in command.upper()]


def test_gmail_folder_by_folder_copies_each_label_as_before(gmail: GmailServer, tmp_path: Path) -> None:
    source = stand_in_endpoint(gmail.port, gmail="folders")
    target = parse_endpoint(f"maildir:{tmp_path / 'Mail'}")
    summary = copy(source, target, StateStore(tmp_path / "state.db"))
    # INBOX 3, Work 1, Work/Projects 1, All Mail 6, Drafts 1, Important 1, Sent 1, Spam 1, Starred 1, Trash 1
    assert summary.copied == gmail.bodies_sent == 17


def test_an_excluded_label_loses_its_copies_and_nothing_else(gmail: GmailServer, tmp_path: Path) -> None:
    target = parse_endpoint(f"maildir:{tmp_path / 'Mail'}")
    options = CopyOptions(rules=FolderRules.build(exclude=["Work/Projects"], maps=["Work=Job"]))
    summary = run_copy(stand_in_endpoint(gmail.port), [target], options, StateStore(tmp_path / "state.db"))
    assert (summary.copied, gmail.bodies_sent) == (BODIES, BODIES)
    expected = {("Job" if folder == "Work" else folder): messages for folder, messages in LABELLED.items()
                if folder != "Work/Projects"}
    assert shown(target) == expected


def test_all_mail_can_hold_every_message(gmail: GmailServer, tmp_path: Path) -> None:
    target = parse_endpoint(f"maildir:{tmp_path / 'Mail'}")
    state = StateStore(tmp_path / "state.db")
    source = stand_in_endpoint(gmail.port, all_mail="all")
    copy(source, target, state)
    assert gmail.bodies_sent == BODIES
    everything = sorted(m for folder, messages in LABELLED.items() if folder.split("/")[-1] not in (
        "Spam", "Papierkorb", "Work", "Projects") for m in messages)
    assert shown(target)[f"{G}/Alle Nachrichten"] == everything
    with open_store(source) as gmail_store, open_store(target) as target_store:
        assert all(row.complete and not row.extra for row in verify(gmail_store, target_store))


def test_gmail_to_maildir_with_hard_links_keeps_each_message_once_on_disk(gmail: GmailServer, tmp_path: Path) -> None:
    mail = tmp_path / "Mail"
    target = parse_endpoint(f"maildir:{mail}?links=hard")
    check_copies(gmail, target, StateStore(tmp_path / "state.db"), LABELLED)
    files = [path for path in mail.rglob("cur/*")]
    by_inode: dict[int, list[str]] = {}
    for path in files:
        by_inode.setdefault(path.stat().st_ino, []).append(subject_of(path.read_bytes()))
    # Eight messages on disk: three labels of one share a file, as do INBOX and Later (labelled since) of another.
    assert sorted(map(sorted, by_inode.values())) == sorted(
        [["three labels"] * 3, ["inbox only"] * 2] + [[subject] for subject, _, _ in ACCOUNT[2:]])
    assert len(files) == 11
