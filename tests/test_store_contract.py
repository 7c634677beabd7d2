"""The Store contract, written once and run against every store, as CPython's test_mailbox runs one class per format.

Each store of ``migrator.endpoints.kinds`` (a Maildir, an mbox tree, a Thunderbird directory, an EML tree, a
PST file, an IMAP account on each real server the suite starts, and Dovecot's POP3 side) must list, scan and
fetch what it holds, give back exactly the bytes, flags and received dates it was given, keep folders with odd
names and empty ones, keep its folders' identities across a reopen, agree on content keys, keep what was
appended once it is closed, and refuse writes when it is read-only.

Which parts apply to a store is read from its class's capability flags (``writable``, ``supports_flag_updates``,
``durable_on_append``, ``stages_writes``, ``parallel_folders``): a new store gets the contract by being added
to the kinds, and a part it cannot do is skipped with the flag's name. What a real server does differently
is asserted as that difference (``Held``), measured on the server, never by checking less for every store.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest

from migrator.core.contentkey import content_key
from migrator.core.errors import FolderError, StoreError
from migrator.core.message import Flag, Flags, FolderPath, Message
from migrator.endpoints.credentials import PasswordSource
from migrator.endpoints.endpoint import Endpoint, parse_endpoint
from migrator.endpoints.kinds import KINDS
from migrator.stores import open_store
from migrator.stores.base import Store

INBOX: FolderPath = ("INBOX",)
ZONES = [timezone(timedelta(minutes=m)) for m in (0, 345, -720, 840, -210, 60)]
_accounts = itertools.count(1)


# --- the messages every store is given -------------------------------------------------------------------


def _raw(number: int, subject: bytes, rest: bytes, eol: bytes = b"\n") -> bytes:
    """Return a message with the headers a content key reads (Date saying its received date), then ``rest``."""
    head = [b"From: Alice <alice@example.org>", b"To: bob@example.net", b"Subject: " + subject,
            b"Message-ID: <%d@contract.example>" % number, b"Date: " + format_datetime(_date(number)).encode()]
    return eol.join(head) + eol + rest


def _date(number: int) -> datetime:
    # POP3 has no received date but the message's own headers: each message's Date says its received date.
    zone = ZONES[number % len(ZONES)]
    return datetime(2001 + number % 25, 1 + number % 12, 2 + number % 27, 3, 4, number % 60, tzinfo=zone)


SAMPLES = {
    "LF line ends": _raw(0, b"LF", b"\none\ntwo\n"),
    "CRLF line ends": _raw(1, b"CRLF", b"\r\none\r\ntwo\r\n", eol=b"\r\n"),
    "no final newline": _raw(2, b"no final newline", b"\nthe last line has no end"),
    "headers only": _raw(3, b"headers only", b""),
    "From lines in the body": _raw(4, b"From lines", b"\nFrom the start\n>From quoted\n>>From twice\n"
                                   b"From alice@example.org Mon Jan  1 00:00:00 2024\n\nFrom after a blank line\n"),
    "8-bit bytes": _raw(5, b"caf\xc3\xa9 and Latin-1 \xe4", b"\n\xc3\xa9t\xc3\xa9, \xff\x80 not UTF-8\n"),
}
CORPUS = [Message(raw, received=_date(n), folder=INBOX) for n, raw in enumerate(SAMPLES.values())]
ODD_FOLDERS: list[FolderPath] = [
    ("With  spaces ",), ("Entwürfe",), ("日本語", "Unterordner"), ("R&D",), ("\U0001F4E7 mail",),
    ("v1.2 notes",), ("a/b",), ("Deep", "er", "and", "deeper", "still"),
]
# Every combination of the six system flags, with a keyword on two messages of three.
FLAG_COMBINATIONS = [Flags(frozenset(f for i, f in enumerate(Flag) if n >> i & 1),
                           frozenset({f"k{n % 5}", "$Label1"} if n % 3 else ())) for n in range(64)]


# --- the stores ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Held:
    """How a store holds a message where that is not the bytes it was given, each difference measured.

    ``crlf``: read back with CRLF line ends (IMAP and POP3, whose only line end it is); ``final_crlf``: a
    message without a final line end gets one (Courier stores it; POP3 sends it before its terminator, so
    there a listing's size, ``sent_final_crlf``, does not count it); ``header_8bit``: what each
    8-bit byte of the header becomes (Cyrus); ``refused_folders``: names the server will not create,
    with the words ``ensure_folder`` must report (Courier and characters outside the BMP).
    """

    crlf: bool = False
    final_crlf: bool = False
    sent_final_crlf: bool = False
    header_8bit: bytes | None = None
    refused_folders: dict[str, str] = field(default_factory=dict)

    def bytes_of(self, raw: bytes) -> bytes:
        """Return the bytes the store gives back for ``raw``."""
        if self.crlf:
            raw = re.sub(rb"(?<!\r)\n", b"\r\n", raw)
        if self.final_crlf and not raw.endswith(b"\r\n"):
            raw += b"\r\n"
        if self.header_8bit is not None:
            end = raw.find(b"\r\n\r\n")
            end = len(raw) if end < 0 else end
            raw = re.sub(rb"[\x80-\xff]", self.header_8bit, raw[:end]) + raw[end:]
        return raw

    def listed_size(self, raw: bytes) -> int:
        """Return the size a scan of the store reports for ``raw``."""
        held = self.bytes_of(raw)
        return len(held) - 2 if self.sent_final_crlf and not raw.endswith(b"\n") else len(held)


# Measured on Cyrus 3.6 and Courier 5.0 (tests/test_every_server.py's LIMITS says the same of full migrations).
# A name holding the server's separator gets "_" in its place ("a/b" on Dovecot, "v1.2 notes" on Cyrus and Courier,
# which nest with "."); a "/" in a name is refused by Cyrus and Courier.
SERVER_HELD = {
    "dovecot": Held(crlf=True),
    "cyrus": Held(crlf=True, header_8bit=b"X", refused_folders={"a/b": "Invalid mailbox name"}),
    "courier": Held(crlf=True, final_crlf=True,
                    refused_folders={"\U0001F4E7 mail": "Error in IMAP command received by server",
                                     "a/b": "Invalid mailbox name"}),
}


@dataclass
class Subject:
    """One store under the contract: how to open it afresh, how to put mail in it, and how it holds mail."""

    name: str
    endpoint: Endpoint
    held: Held = Held()
    separator: str | None = None  # an IMAP server's: a name holding it is written with "_" in its place
    seed_by_server: Callable[[Sequence[Message]], None] | None = None  # for a store that cannot be written

    def open(self, *, readonly: bool = True) -> Store:
        """Return a new, unopened store object on the same place."""
        return open_store(self.endpoint, readonly=readonly)

    @property
    def cls(self) -> type[Store]:
        return type(self.open())

    def require(self, capability: str) -> None:
        """Skip the test where the store's class says it cannot do ``capability``."""
        if not getattr(self.cls, capability):
            pytest.skip(f"skipped-because-{capability}: {self.cls.__name__}.{capability} is False")

    def put(self, messages: Sequence[Message]) -> None:
        """Put ``messages`` in the store: through the store itself where it can be written, else the server."""
        if self.seed_by_server is not None and not self.cls.writable:
            self.seed_by_server(messages)
            return
        with self.open(readonly=False) as store:
            write(store, messages)

    def stored_path(self, folder: FolderPath) -> FolderPath:
        """Return where ``ensure_folder(folder)`` is expected to put the folder."""
        if self.separator is None:
            return folder
        return tuple(part.replace(self.separator, "_") for part in folder)


def write(store: Store, messages: Sequence[Message]) -> list[str]:
    """Write ``messages`` (to their folders, ensured first) and return the new uids; fail on any refusal."""
    uids = []
    for folder, batch in itertools.groupby(messages, key=lambda m: m.folder):
        target = store.ensure_folder(folder)
        results = store.append_batch(target, list(batch))
        assert [r.error for r in results] == [None] * len(results)
        uids += [r.uid for r in results]
    return uids


def _server_subject(request: pytest.FixtureRequest, name: str) -> Subject:
    """Return an IMAP (or POP3) account on a fresh user of the server ``name``; skip without the server."""
    protocol, server_name = name.split("-")
    server = request.getfixturevalue(server_name)
    number = next(_accounts)
    user = server.add_user(f"contract{number}", f"secret-{number}")
    port = "imaps" if protocol == "imap" else "pop3s"
    endpoint = Endpoint(kind=protocol, host=server.host, port=server.ports[port], user=user.name, tls="implicit",
                        ca_file=str(server.ca_file), password=PasswordSource(literal=user.password))
    held = SERVER_HELD[server_name]
    if protocol == "pop3":  # POP3 ends every message with a line end: it is the line before the terminator
        return Subject(name, endpoint, replace(held, final_crlf=True, sent_final_crlf=True),
                       seed_by_server=lambda messages: server.seed(user, [
                           (m.folder, m.raw, [], m.received) for m in messages]))
    return Subject(name, endpoint, held, separator=server.separator)


LOCAL = [name for name, kind in KINDS.items() if not kind.is_server]
SERVERS = ["imap-dovecot", "imap-cyrus", "imap-courier", "pop3-dovecot"]


@pytest.fixture(params=LOCAL + SERVERS)
def subject(request: pytest.FixtureRequest, tmp_path: Path) -> Subject:
    """Return each store in turn, empty: a local archive in ``tmp_path``, or a fresh user on a server."""
    name = request.param
    if name in LOCAL:
        return Subject(name, parse_endpoint(f"{name}:{tmp_path / ('archive.pst' if name == 'pst' else 'archive')}"))
    return _server_subject(request, name)


def test_every_kind_of_store_is_under_the_contract() -> None:
    assert {name.split("-")[0] for name in LOCAL + SERVERS} == set(KINDS)


# --- reading: every store ----------------------------------------------------------------------------------


def contents(store: Store, folder: FolderPath) -> list[tuple[bytes, datetime]]:
    return [(m.raw, m.received) for m in store.messages(folder)]


def test_fetch_gives_back_the_bytes_it_holds(subject: Subject) -> None:
    subject.put(CORPUS)
    with subject.open() as store:
        assert INBOX in [f.path for f in store.list_folders() if f.selectable]
        got = [m.raw for m in store.messages(INBOX)]
    assert got == [subject.held.bytes_of(m.raw) for m in CORPUS]


def test_received_dates_are_kept_to_the_second(subject: Subject) -> None:
    subject.put(CORPUS)
    with subject.open() as store:
        assert [m.received for m in store.messages(INBOX)] == [m.received for m in CORPUS]


def test_scan_agrees_with_fetch(subject: Subject) -> None:
    subject.put(CORPUS)
    with subject.open() as store:
        refs = list(store.scan(INBOX).refs)
        fetched = list(store.fetch(INBOX, refs))
        assert len({r.uid for r in refs}) == len(CORPUS)
        assert [r.uid for r in refs] == [m.uid for m in fetched]
        assert [r.size for r in refs] == [subject.held.listed_size(m.raw) for m in CORPUS]
        assert [r.flags for r in refs] == [m.flags for m in fetched]
        assert [r.received for r in refs] in ([m.received for m in fetched], [None] * len(refs))
        assert [m.uid for m in store.fetch(INBOX, refs[::2])] == [r.uid for r in refs[::2]]
        stats = store.stats(INBOX)
    assert (stats.messages, stats.size) == (len(CORPUS), sum(r.size or 0 for r in refs))


def test_content_keys_are_the_same_from_every_store(subject: Subject) -> None:
    subject.put(CORPUS)
    with subject.open() as store:
        keys = store.content_keys(INBOX)
        uids = {m.content_key: m.uid for m in store.messages(INBOX)}
    assert keys == {key: [uid] for key, uid in uids.items()}
    # A message's key is the same whatever its line ends: it changes only where the store changed the message.
    assert set(keys) == {content_key(subject.held.bytes_of(m.raw)) for m in CORPUS}
    unchanged = [m for m in CORPUS if subject.held.bytes_of(m.raw) == Held(crlf=True).bytes_of(m.raw)]
    assert {m.content_key for m in unchanged} <= set(keys)


def test_folder_validity_and_uids_are_stable_across_a_reopen(subject: Subject) -> None:
    subject.put(CORPUS)
    with subject.open() as first:
        scan = first.scan(INBOX)
        before = (scan.validity, [r.uid for r in scan.refs])
    with subject.open() as second:
        scan = second.scan(INBOX)
        assert (scan.validity, [r.uid for r in scan.refs]) == before
    assert before[0]


def test_an_empty_folder_reads_as_empty(subject: Subject) -> None:
    folder = ("Empty",) if subject.cls.writable else INBOX
    if subject.cls.writable:
        with subject.open(readonly=False) as store:
            folder = store.ensure_folder(folder)
    with subject.open() as store:
        assert folder in [f.path for f in store.list_folders() if f.selectable]
        assert list(store.scan(folder).refs) == []
        assert list(store.messages(folder)) == []
        assert store.stats(folder).messages == 0
        assert store.content_keys(folder) == {}


def test_exists_once_there_is_mail(subject: Subject) -> None:
    if not subject.endpoint.is_server:
        assert not subject.open().exists()  # nothing written at the path yet
    subject.put(CORPUS[:1])
    with subject.open() as store:
        assert store.exists()


def test_a_read_only_store_refuses_every_write_and_names_itself(subject: Subject) -> None:
    subject.put(CORPUS[:2])
    for readonly in (True, False) if not subject.cls.writable else (True,):
        with subject.open(readonly=readonly) as store:
            uid = next(iter(store.scan(INBOX).refs)).uid
            for write_attempt in (lambda: store.ensure_folder(("New",)),
                                  lambda: store.append_batch(INBOX, CORPUS[2:3]),
                                  lambda: store.set_flags(INBOX, uid, Flags.of(Flag.FLAGGED))):
                with pytest.raises(StoreError, match=r"read-only|cannot be written|cannot change") as refused:
                    write_attempt()
                assert str(store.endpoint) in str(refused.value)
    with subject.open() as store:
        assert [f.path for f in store.list_folders() if f.path == ("New",)] == []
        assert [(m.raw, m.flags) for m in store.messages(INBOX)] == [
            (subject.held.bytes_of(m.raw), m.flags) for m in CORPUS[:2]]


# --- writing: stores whose class is writable ------------------------------------------------------------


def test_append_gives_back_every_byte_after_a_reopen(subject: Subject) -> None:
    subject.require("writable")
    messages = [replace(m, flags=Flags.of(Flag.SEEN)) for m in CORPUS]
    with subject.open(readonly=False) as store:
        uids = write(store, messages)
    with subject.open() as reopened:
        got = list(reopened.messages(INBOX))
    assert [m.raw for m in got] == [subject.held.bytes_of(m.raw) for m in messages]
    assert [(m.flags, m.received) for m in got] == [(m.flags, m.received) for m in messages]
    assert [m.uid for m in got] == uids  # the uids a state file records find the messages again


def test_every_flag_combination_and_keyword_is_kept(subject: Subject) -> None:
    subject.require("writable")
    messages = [Message(_raw(n, b"flags %d" % n, b"\nx\n"), flags, _date(n), ("Flags",))
                for n, flags in enumerate(FLAG_COMBINATIONS)]
    subject.put(messages)
    with subject.open() as store:
        assert [m.flags for m in store.messages(("Flags",))] == FLAG_COMBINATIONS


def test_flags_can_be_replaced_in_place(subject: Subject) -> None:
    subject.require("writable")
    subject.require("supports_flag_updates")
    with subject.open(readonly=False) as store:
        uids = write(store, [replace(m, flags=Flags.of(Flag.SEEN, keywords=("old",))) for m in CORPUS[:3]])
        store.set_flags(INBOX, uids[1], Flags.of(Flag.ANSWERED, Flag.FORWARDED, keywords=("new",)))
        store.set_flags(INBOX, uids[2], Flags())
    with subject.open() as store:
        assert [(m.uid, m.flags) for m in store.messages(INBOX)] == [
            (uids[0], Flags.of(Flag.SEEN, keywords=("old",))),
            (uids[1], Flags.of(Flag.ANSWERED, Flag.FORWARDED, keywords=("new",))),
            (uids[2], Flags())]


def test_folders_with_odd_names_nested_deep_are_listed_parents_first(subject: Subject) -> None:
    subject.require("writable")
    refused = set(subject.held.refused_folders)
    with subject.open(readonly=False) as store:
        for folder in ODD_FOLDERS:
            if folder[0] in refused:
                with pytest.raises(FolderError, match=re.escape(subject.held.refused_folders[folder[0]])):
                    store.ensure_folder(folder)
                continue
            target = store.ensure_folder(folder)
            assert target == subject.stored_path(folder)
            write(store, [replace(CORPUS[0], folder=target)])
    kept = [subject.stored_path(f) for f in ODD_FOLDERS if f[0] not in refused]
    with subject.open() as store:
        listed = [f.path for f in store.list_folders()]
        assert {path: contents(store, path) for path in kept} == {
            path: [(subject.held.bytes_of(CORPUS[0].raw), CORPUS[0].received)] for path in kept}
    assert len(listed) == len(set(listed))
    for path in kept:  # every ancestor is listed, before its children
        lineage = [path[:n] for n in range(1, len(path) + 1)]
        assert set(lineage) <= set(listed)
        assert [listed.index(p) for p in lineage] == sorted(listed.index(p) for p in lineage)


def test_an_empty_folder_is_kept_and_probed(subject: Subject) -> None:
    subject.require("writable")
    with subject.open(readonly=False) as store:
        empty = store.ensure_folder(("Empty", "Deeper"))
    with subject.open() as store:
        assert empty in [f.path for f in store.list_folders() if f.selectable]
        probe = store.probe_folder(empty)
        assert probe is not None and probe.identity
        assert probe.messages in (0, None) and probe.size in (0, None)


def test_probe_folder_keeps_a_folders_identity_across_reopens_and_appends(subject: Subject) -> None:
    subject.require("writable")
    subject.put(CORPUS[:2])
    with subject.open() as store:
        first = store.probe_folder(INBOX)
        assert store.probe_folder(("Never", "Made")) is None
    assert first is not None and first.identity
    assert first.messages in (2, None) and (first.messages, first.size) != (None, None)
    subject.put(CORPUS[2:])
    with subject.open() as store:
        later = store.probe_folder(INBOX)
    assert later is not None and later.identity == first.identity
    assert later.messages in (len(CORPUS), None)
    assert later.size is None or later.size > (first.size or 0)


def test_appended_mail_is_durable_before_close(subject: Subject) -> None:
    subject.require("writable")
    subject.require("durable_on_append")
    with subject.open(readonly=False) as writer:
        write(writer, CORPUS)
        with subject.open() as reader:  # another store object, as a second run or a crash would see it
            assert [m.raw for m in reader.messages(INBOX)] == [subject.held.bytes_of(m.raw) for m in CORPUS]


def test_staged_writes_appear_at_commit(subject: Subject) -> None:
    subject.require("writable")
    subject.require("stages_writes")
    with subject.open(readonly=False) as writer:
        target = writer.ensure_folder(INBOX)
        results = writer.stage_batch(target, CORPUS)
        assert all(r.ok for r in results)
        with subject.open() as reader:
            assert list(reader.messages(INBOX)) == []
        assert writer.commit_staged() == {}
        with subject.open() as reader:
            assert [m.uid for m in reader.messages(INBOX)] == [r.uid for r in results]


def test_a_sibling_writes_other_folders_at_the_same_time(subject: Subject) -> None:
    subject.require("writable")
    subject.require("parallel_folders")
    folders = [("Left",), ("Right",)]
    with subject.open(readonly=False) as store, store.sibling() as sibling, ThreadPoolExecutor(2) as pool:
        done = pool.map(lambda pair: write(pair[0], [replace(m, folder=pair[1]) for m in CORPUS]),
                        [(store, folders[0]), (sibling, folders[1])])
        assert [len(uids) for uids in done] == [len(CORPUS)] * 2
    with subject.open() as store:
        for folder in folders:
            assert [m.raw for m in store.messages(folder)] == [subject.held.bytes_of(m.raw) for m in CORPUS]

