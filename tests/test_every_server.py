"""A full migration into and out of every real server (Dovecot, Cyrus IMAP, Courier-IMAP), message by message.

Each test runs against each server of ``imap_server`` with the real command line: from a Dovecot
whose sent folder is "Sent Items" into the server and back into another such Dovecot, from a
Maildir as mail systems write them (LF line ends), killed in the middle of an APPEND and run
again. What arrives is read back with the harness (harness/), not with migrator, and must
be exactly what was sent (bytes, flags, keywords, dates, folders) but for what the server itself
cannot hold. That is named per server in ``LIMITS``, as data: measured on Cyrus 3.6 and Courier
5.0, each limit turns into what the server is expected to hold instead, or into a refusal that
the run must report in the server's words, with exit status 1. ``verify`` must then agree: it
finds missing exactly what was refused or changed past recognition, and nothing else.
"""

from __future__ import annotations

import imaplib
import logging
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from harness.corpus import imap_flags
from harness.dovecot import OUTLOOK_SPECIAL_FOLDERS
from harness.endpoints import url
from harness.mailboxes import Dump
from harness.mailserver import MailServer, MailUser
from harness.proxy import FaultProxy, KillProxy
from migrator.cli import main
from migrator.core.contentkey import content_key
from migrator.core.errors import ExitCode
from migrator.core.message import Flag, Flags, Message
from migrator.endpoints.endpoint import parse_endpoint
from migrator.pipeline.run import run_copy
from migrator.pipeline.verify import verify
from migrator.state.statefile import StateStore
from migrator.stores import open_store
from migrator.stores.imap import writing as imap_writing
from migrator.stores.network import reconnect
from tests.support.archives import write_archive

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NIGHT = datetime(2026, 12, 6, 23, 0, tzinfo=UTC)
ZONES = [timezone(timedelta(minutes=m)) for m in (0, 345, -720, 840, -210)]
SERVER_NAMES = {"DovecotServer": "dovecot", "CyrusServer": "cyrus", "CourierServer": "courier"}


@dataclass(frozen=True)
class Item:
    """One message as the source holds it: folder as the user sees it, bytes, IMAP flags, received date."""

    folder: str
    raw: bytes
    flags: frozenset[str] = frozenset()
    date: datetime = datetime(2021, 3, 7, 5, 6, 7, tzinfo=ZONES[1])


def message(subject: str, body: bytes = b"body\r\n", *, headers: bytes = b"", eol: bytes = b"\r\n") -> bytes:
    """Return a message with From, To, Date, Subject and Message-ID, then ``headers``, a blank line and ``body``."""
    lines = [b"From: Sender <sender@example.org>", b"To: rcpt@example.net", b"Date: Sun, 7 Mar 2021 05:06:07 +0545",
             b"Subject: " + subject.encode(), b"Message-ID: <" + re.sub(rb"\W+", b"-", subject.encode()) + b"@every>"]
    return eol.join(lines) + eol + headers + eol + body


def items() -> list[Item]:
    """Return what the source Dovecot holds: every kind of folder, flag, keyword and line a server may not keep."""
    ordinary = [
        Item("INBOX", message("plain"), frozenset({"\\Seen"})),
        Item("INBOX", message("forwarded"), frozenset({"\\Answered", "$Forwarded", "work"}),
             datetime(2019, 1, 2, 3, 4, 5, tzinfo=ZONES[2])),
        Item("INBOX", message("every flag"), frozenset({"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft",
                                                        "$Forwarded", "Important"}),
             datetime(2000, 1, 1, tzinfo=ZONES[3])),
        Item("Sent Items", message("sent"), frozenset({"\\Seen"})),
        Item("Drafts", message("draft"), frozenset({"\\Draft"})),
        Item("Trash", message("thrown away"), frozenset({"\\Deleted", "\\Seen"})),
        Item("Projects/2024/Q1", message("nested"), frozenset({"$Label1"}),
             datetime(2024, 2, 29, 23, 59, 59, tzinfo=ZONES[4])),
        Item("Entwürfe", message("non-ASCII folder")),
        Item("日本語", message("CJK folder"), frozenset({"\\Flagged"})),
        Item("v1.2 notes", message("a dot in the folder name")),
        Item("Work Stuff", message("a space in the folder name")),
        Item("R&D", message("an ampersand in the folder name")),
        Item("📁 Stuff", message("emoji folder")),
        Item("Edge", message("bare CR", b"before\rafter\r\n")),
        Item("Edge", message("8-bit UTF-8 header \u00e4\u00f6\u00fc")),
        Item("Edge", message("Latin-1 header").replace(b"Latin-1", b"Latin-\xe4")),
        Item("Edge", message("no final CRLF", b"the last line has no end")),
        Item("Edge", message("a header line without a colon", headers=b"Not a header line\r\n")),
    ]
    keywords = [Item("Many keywords", message(f"keywords {n}"),
                     frozenset({"\\Seen", *(f"kw{n:02d}_{k}" for k in range(10))})) for n in range(12)]
    return ordinary + keywords


def maildir_items() -> list[Item]:
    """Return what a Maildir as mail systems write holds: LF line ends, and what no IMAP server may take."""
    return [
        Item("INBOX", message("LF line ends", b"one\ntwo\n", eol=b"\n"), frozenset({"\\Seen", "work"})),
        Item("INBOX", message("mixed line ends", b"lf\ncrlf\r\nlf\n")),
        Item("Sent", message("sent from the Maildir", eol=b"\n"), frozenset({"\\Seen"})),
        Item("Archive/2001", message("NUL byte", b"before\0after\n", eol=b"\n")),
        Item("Archive/2001", b""),
        Item("Archive/1965", message("before 1970", eol=b"\n"), frozenset({"\\Seen", "old"}),
             datetime(1965, 3, 14, 9, 26, 53, tzinfo=ZONES[2])),
    ]


# --- what each server cannot hold ----------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """What a server does not keep of what it is given, each measured on the real server.

    ``refused`` maps a test on the bytes to the server's words when it refuses such a message;
    ``refused_folders`` the same for folder names; ``header_8bit`` replaces each 8-bit byte of the
    header; ``drops_bare_cr`` and ``adds_final_crlf`` change the bytes; ``keywords_per_folder``
    is how many keywords one folder takes; ``earliest`` the first received date it keeps (an
    earlier one is refused where ``refuses_early_dates``, and migrator leaves the date to the
    server, or else read back as another); ``nul`` is what a NUL byte becomes; ``condstore`` whether it
    can say what changed since a mod-sequence (RFC 7162), so that a rerun lists only that.
    """

    refused: dict[str, str] = field(default_factory=dict)
    refused_folders: dict[str, str] = field(default_factory=dict)
    header_8bit: bytes | None = None
    drops_bare_cr: bool = False
    adds_final_crlf: bool = False
    keywords_per_folder: int | None = None
    earliest: datetime | None = None
    refuses_early_dates: bool = False
    nul: bytes = b"\0"
    condstore: bool = True


REFUSAL_TESTS = {
    "empty": lambda raw: not raw,
    "NUL": lambda raw: b"\0" in raw,
    "header line without a colon": lambda raw: any(b":" not in line for line in _header_block(raw).splitlines()),
}
LIMITS = {
    "dovecot": Limits(refused={"empty": "Can't save a zero byte message"}, nul=b"\x80", earliest=EPOCH),
    "cyrus": Limits(refused={"empty": "Zero-length message literal", "NUL": "Message contains NUL characters",
                             "header line without a colon": "Message contains invalid header"},
                    header_8bit=b"X", keywords_per_folder=100, earliest=EPOCH, refuses_early_dates=True),
    "courier": Limits(refused_folders={"📁 Stuff": "Error in IMAP command received by server."}, drops_bare_cr=True,
                      adds_final_crlf=True, earliest=EPOCH, refuses_early_dates=True, condstore=False),
}
"""Beyond these, every server holds exactly what it is given; every server gets CRLF line ends, IMAP's only ones."""


class _AnyDate:
    """The date of a message the server dated itself: equal to any date."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, datetime)

    def __repr__(self) -> str:
        return "<the server's date>"


@dataclass
class Expected:
    """What a server holds after a copy of some items, and what the run must report."""

    held: Dump = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # the server's words for each refused message or folder
    lost_keywords: int = 0  # messages written without some of their keywords
    unrecognisable: dict[str, int] = field(default_factory=dict)  # per folder: changed so verify cannot pair them


def expected(server: MailServer, source: Iterable[Item]) -> Expected:
    """Return what ``server`` holds once migrator copied ``source`` into it, by its LIMITS."""
    limits = LIMITS[SERVER_NAMES[type(server).__name__]]
    found = Expected()
    keywords: dict[str, _Keywords] = {}
    for item in source:
        refusal = _refusal(limits, item)
        if refusal is not None:
            found.refused.append(refusal)
            continue
        raw = _held_bytes(limits, item.raw)
        flags = _held_flags(limits, item, keywords.setdefault(item.folder, _Keywords()), found)
        date: datetime | _AnyDate = _AnyDate() if limits.earliest and item.date < limits.earliest else item.date
        folder = _target_folder(server, item.folder)
        found.held.setdefault(folder, []).append((raw, flags, date))
        if content_key(raw) != content_key(item.raw):
            found.unrecognisable[item.folder] = found.unrecognisable.get(item.folder, 0) + 1
    found.held = {folder: sorted(messages, key=_raw) for folder, messages in found.held.items()}
    return found


def _refusal(limits: Limits, item: Item) -> str | None:
    for name, words in limits.refused.items():
        if REFUSAL_TESTS[name](sent(item.raw)):
            return words
    return limits.refused_folders.get(item.folder)


def sent(raw: bytes) -> bytes:
    """Return the bytes of a message as migrator sends them to any IMAP server: with CRLF line ends."""
    return re.sub(rb"(?<!\r)\n", b"\r\n", raw)


def _held_bytes(limits: Limits, raw: bytes) -> bytes:
    raw = sent(raw).replace(b"\0", limits.nul)
    if limits.header_8bit is not None:
        header = _header_block(raw)
        raw = re.sub(rb"[\x80-\xff]", limits.header_8bit, header) + raw[len(header):]
    if limits.drops_bare_cr:
        raw = re.sub(rb"\r(?!\n)", b"", raw)
    if limits.adds_final_crlf and not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    return raw


@dataclass
class _Keywords:
    """A folder's keywords as a server with a limit on them sees them, and whether it refused some already."""

    taken: set[str] = field(default_factory=set)
    refusing: bool = False


def _held_flags(limits: Limits, item: Item, folder: _Keywords, found: Expected) -> frozenset[str]:
    """Return the flags the server keeps: a message that brings a folder past its keyword limit loses its
    keywords, and after that the folder takes only those it has (what migrator sends it from then on)."""
    keywords = {flag for flag in item.flags if not flag.startswith("\\")}
    limit = limits.keywords_per_folder
    if limit is None or not folder.refusing and len(folder.taken | keywords) <= limit:
        folder.taken |= keywords
        return item.flags
    kept = keywords & folder.taken if folder.refusing else set()
    folder.refusing = True
    if kept != keywords:
        found.lost_keywords += 1
    return frozenset(flag for flag in item.flags if flag.startswith("\\") or flag in kept)


def _target_folder(server: MailServer, folder: str) -> str:
    """Return where migrator puts ``folder`` on ``server``: Sent by its role, a separator in a name made "_"."""
    if folder == "Sent Items":
        return "Sent"
    return "/".join(part.replace(server.separator, "_") for part in folder.split("/"))


def _header_block(raw: bytes) -> bytes:
    end = raw.find(b"\r\n\r\n")
    return raw if end < 0 else raw[:end + 2]


def _raw(entry: tuple) -> bytes:
    return entry[0]


def held(server: MailServer, user: MailUser) -> Dump:
    """Return the server's own view of ``user``'s mail, non-empty folders only, each sorted by bytes."""
    return {folder: sorted(messages, key=_raw) for folder, messages in server.dump(user, include_empty=False).items()}


def seeded(server: MailServer, user: MailUser, source: list[Item]) -> list[Item]:
    """Seed ``source`` into ``user``'s mailbox with the harness and return it."""
    server.seed(user, [(tuple(item.folder.split("/")), item.raw, item.flags, item.date) for item in source])
    return source


# --- running migrator -----------------------------------------------------------------------------


@pytest.fixture
def outlook(dovecot_server, make_user):
    """Return (server, fresh user) on a Dovecot whose sent folder is "Sent Items" (\\Sent)."""
    server = dovecot_server(special_folders=OUTLOOK_SPECIAL_FOLDERS)
    return server, make_user(server)


def copy(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``migrator copy ARGS`` in this process; return its exit status, stdout and stderr."""
    code = main(["copy", *args])
    out, err = capsys.readouterr()
    return code, out, err


def check_reported(expect: Expected, code: int, out: str, err: str) -> None:
    """Assert the run failed exactly where the server refused, in the server's words, and said what was lost."""
    assert code == (ExitCode.PARTIAL if expect.refused else ExitCode.OK), out + err
    assert "Traceback" not in out + err
    for words in expect.refused:
        assert words in err
    assert len(re.findall(r"^  failed: .*the server said", err, re.M)) == len(expect.refused), err
    assert len(re.findall(r"written without the keywords", out)) == expect.lost_keywords, out


def check_verify(source: str, target: str, expect: Expected) -> None:
    """Assert that ``verify`` finds missing what was refused or changed past recognition, and nothing else."""
    with open_store(parse_endpoint(source)) as src, open_store(parse_endpoint(target)) as dst:
        rows = verify(src, dst)
    missing = sum(len(row.missing) for row in rows)
    assert missing == len(expect.refused) + sum(expect.unrecognisable.values()), rows
    assert sum(len(row.extra) for row in rows) == sum(expect.unrecognisable.values()), rows
    assert sum(len(row.flag_differences) for row in rows) == expect.lost_keywords, rows


# --- the tests --------------------------------------------------------------------------------------


def test_a_full_migration_into_the_server_and_back(imap_server, outlook, capsys, tmp_path):
    server, user = imap_server
    source = seeded(*outlook, items())
    expect = expected(server, source)
    into = url(server, user)
    code, out, err = copy(capsys, url(*outlook), into, "--state", str(tmp_path / "into.sqlite"))
    check_reported(expect, code, out, err)
    assert held(server, user) == expect.held
    assert copy(capsys, url(*outlook), into, "--state", str(tmp_path / "into.sqlite"))[1].count(" 0 copied,") == 1
    check_verify(url(*outlook), into, expect)

    back = outlook[0].add_user(f"back{user.name}", "back-secret")
    code, out, err = copy(capsys, into, url(outlook[0], back), "--state", str(tmp_path / "back.sqlite"))
    assert code == ExitCode.OK, out + err
    assert held(outlook[0], back) == {("Sent Items" if name == "Sent" else name): messages
                                      for name, messages in held(server, user).items()}
    assert all(row.complete and not row.flag_differences for row in _verified(into, url(outlook[0], back)))


def test_a_nightly_backup_lists_only_what_changed_where_the_server_can_say(imap_server, caplog, tmp_path):
    server, user = imap_server
    server.seed(user, [(("INBOX",), message(f"night {n}"), (), NIGHT) for n in range(5)])
    source, target = parse_endpoint(url(server, user)), parse_endpoint(f"maildir:{tmp_path / 'md'}")
    state = StateStore(tmp_path / "state.sqlite")
    run_copy(source, [target], state=state)
    server.seed(user, [(("INBOX",), message("night 5"), (), NIGHT)])
    conn = server.imap(user)
    conn.select("INBOX")
    conn.uid("STORE", "1", "+FLAGS.SILENT", "(\\Flagged)")
    conn.logout()
    with caplog.at_level(logging.INFO, logger="migrator"):
        summary = run_copy(source, [target], state=state)
    assert (summary.copied, summary.already_there, summary.flags_updated) == (1, 5, 1)
    condstore = LIMITS[SERVER_NAMES[type(server).__name__]].condstore
    assert ("listing what changed since the last run" in caplog.text) == condstore
    with open_store(target) as archive:
        kept = sorted((m.raw, imap_flags(m.flags)) for m in archive.messages(("INBOX",)))
    assert kept == sorted((raw, flags) for raw, flags, _ in held(server, user)["INBOX"])


def _verified(source: str, target: str):
    with open_store(parse_endpoint(source)) as src, open_store(parse_endpoint(target)) as dst:
        return verify(src, dst)


def test_a_restore_from_a_maildir(imap_server, capsys, tmp_path):
    server, user = imap_server
    source = maildir_items()
    write_archive(parse_endpoint(f"maildir:{tmp_path / 'Maildir'}"), [
        Message(item.raw, _canonical(item.flags), item.date, tuple(item.folder.split("/"))) for item in source])
    expect = expected(server, source)
    code, out, err = copy(capsys, f"maildir:{tmp_path / 'Maildir'}", url(server, user), "--no-state")
    check_reported(expect, code, out, err)
    assert held(server, user) == expect.held
    limits = LIMITS[SERVER_NAMES[type(server).__name__]]
    early = sum(1 for item in source if limits.earliest and item.date < limits.earliest and not _refusal(limits, item))
    assert out.count("written with the server's date, not ") == (early if limits.refuses_early_dates else 0)


def _canonical(flags: frozenset[str]) -> Flags:
    system = {"\\Seen": Flag.SEEN, "\\Answered": Flag.ANSWERED, "\\Flagged": Flag.FLAGGED, "\\Deleted": Flag.DELETED,
              "\\Draft": Flag.DRAFT, "$Forwarded": Flag.FORWARDED}
    return Flags(frozenset(system[f] for f in flags if f in system), frozenset(f for f in flags if f not in system))


@pytest.mark.slow
@pytest.mark.parametrize("fraction", [0.3, 0.7])
def test_killed_in_the_middle_of_an_append_and_rerun_ends_exact(imap_server, outlook, tmp_path, fraction):
    server, user = imap_server
    # All but what a server refuses (which is no test of recovery): what a server changes must be
    # recognised as the copy it is when the rerun looks for what the killed run wrote.
    source = seeded(*outlook, [item for item in items() if _refused_nowhere(item)] + _bulk(40))
    proxy = KillProxy(server.host, server.ports["imaps"], kill_after=int(sum(len(i.raw) for i in source) * fraction))
    state = str(tmp_path / "state.sqlite")
    args = ["copy", url(*outlook), url(server, user, port=proxy.port), "--state", state]
    killed = subprocess.Popen([sys.executable, "-m", "migrator", *args], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    proxy.victim = killed.pid
    assert killed.wait(timeout=120) == -9 and proxy.killed
    for _ in ("the rerun", "once more, which changes nothing"):
        done = copy_cli(url(*outlook), url(server, user), "--state", state)
        assert done.returncode == 0, done.stdout + done.stderr
        assert held(server, user) == expected(server, source).held
    assert " 0 copied," in done.stdout


@pytest.mark.parametrize("name", ["cyrus", "courier"])  # the servers that change what they are given
def test_killed_once_the_server_took_a_batch_the_rerun_finds_what_it_changed(request, name, outlook, tmp_path):
    server = request.getfixturevalue(name)
    user = server.add_user(f"taken{name}", "taken-secret")
    source = seeded(*outlook, _bulk(12))

    def batch_taken(connection: int, direction: str, sent: int, chunk: bytes) -> bool:
        return direction == "up" and b"(UID FLAGS INTERNALDATE)" in chunk  # the FETCH that follows the APPENDs

    proxy = FaultProxy(server.host, server.ports["imap"], fault="kill", when=batch_taken)
    plain = url(server, user, "imap", port=proxy.port, tls="none")  # a cleartext trigger
    killed = subprocess.Popen([sys.executable, "-m", "migrator", "copy", url(*outlook), plain, "--no-state"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proxy.victim = killed.pid
    assert killed.wait(timeout=120) == -9 and proxy.struck
    assert {name: len(got) for name, got in held(server, user).items()} == {"Bulk": 12}  # taken, never recorded
    assert copy_cli(url(*outlook), url(server, user), "--no-state").returncode == 0
    assert held(server, user) == expected(server, source).held


@pytest.mark.parametrize("name", ["cyrus", "courier"])
def test_a_connection_lost_before_the_servers_answer_writes_nothing_twice(request, name, monkeypatch):
    monkeypatch.setattr(reconnect, "POLICY", reconnect.ReconnectPolicy(delays=(0.0, 0.0, 0.0)))
    monkeypatch.setattr(imap_writing, "SETTLE_SECONDS", 0.1)
    server = request.getfixturevalue(name)
    user = server.add_user(f"lost{name}", "lost-secret")
    source = _bulk(8)[2:]  # the first with a bare CR, which Courier drops

    def answered(connection: int, direction: str, sent: int, chunk: bytes) -> bool:
        return not proxy.struck and direction == "down" and b"APPENDUID" in chunk  # the first answer, once

    proxy = FaultProxy(server.host, server.ports["imap"], fault="drop", when=answered)
    plain = url(server, user, "imap", port=proxy.port, tls="none")
    with open_store(parse_endpoint(plain), readonly=False) as store:
        store.ensure_folder(("Bulk",))
        results = store.append_batch(("Bulk",), [Message(i.raw, _canonical(i.flags), i.date) for i in source])
    assert proxy.struck and all(result.ok for result in results)
    assert held(server, user) == expected(server, source).held


def copy_cli(*args: str) -> subprocess.CompletedProcess:
    """Run ``migrator copy ARGS`` as its own process."""
    return subprocess.run([sys.executable, "-m", "migrator", "copy", *args], capture_output=True, text=True,
                          timeout=120)


def _refused_nowhere(item: Item) -> bool:
    return all(_refusal(limits, item) is None for limits in LIMITS.values())


def _bulk(count: int) -> list[Item]:
    """Return ``count`` messages of about 3 kB, so that a kill lands in the middle of the APPENDs, among
    them some that Cyrus or Courier change: an 8-bit subject, a bare CR, no line end at the end."""
    body = b"".join(b"line %04d of a message long enough to be cut in the middle\r\n" % n for n in range(50))
    bulk = []
    for n in range(count):
        subject = f"bulk {n}" + " \u00e4" * (n % 4 == 1)
        raw = message(subject, b"a bare\rCR\r\n" * (n % 4 == 2) + body + b"no line end" * (n % 4 == 3))
        bulk.append(Item("Bulk", raw, frozenset({"\\Seen"} if n % 2 else {"work"})))
    return bulk


# --- one class each: what the connection has open, what another one made ---------------------------


def test_appending_into_the_folder_just_read_from(imap_server):
    server, user = imap_server
    server.seed(user, [(("Box",), message("already there"), ["\\Seen"], Item("Box", b"").date)])
    with open_store(parse_endpoint(url(server, user)), readonly=False) as store:
        assert len(store.content_keys(("Box",))) == 1  # the folder is open read-only (EXAMINE) now
        [result] = store.append_batch(("Box",), [Message(message("new"), Flags.of(Flag.SEEN), Item("Box", b"").date)])
    assert result.ok, result.error
    assert len(held(server, user)["Box"]) == 2


def test_a_folder_another_client_creates_after_the_listing_is_used(imap_server):
    server, user = imap_server
    with open_store(parse_endpoint(url(server, user)), readonly=False) as store:
        store.list_folders()
        server.seed(user, [(("Race", "Child"), message("made by another client"), [], Item("", b"").date)])
        assert store.ensure_folder(("Race", "Child")) == ("Race", "Child")
        assert store.ensure_folder(("Race", "Sibling")) == ("Race", "Sibling")
        [result] = store.append_batch(("Race", "Child"), [Message(message("ours"), Flags(), Item("", b"").date)])
    assert result.ok, result.error
    assert {name: len(messages) for name, messages in held(server, user).items()} == {"Race/Child": 2}


def test_the_limits_are_the_servers_own(imap_server):
    """The harness, writing without migrator, meets the same limits (but the one on keywords, and on dates)."""
    server, user = imap_server
    limits = LIMITS[SERVER_NAMES[type(server).__name__]]
    every = items() + maildir_items()
    kept = [item for item in every if _refusal(limits, item) is None]
    server.seed(user, [(("Limits",), sent(item.raw), [], max(item.date, EPOCH)) for item in kept])
    assert sorted(raw for raw, _, _ in server.dump(user)["Limits"]) == sorted(_held_bytes(limits, i.raw) for i in kept)
    for item in every:
        words = _refusal(limits, item)
        if words is not None:
            with pytest.raises(imaplib.IMAP4.error, match=re.escape(words)):
                server.seed(user, [(tuple(item.folder.split("/")), sent(item.raw), [], item.date)])
