"""A real Dovecot serves the Maildir and mbox archives migrator writes: same messages, flags, keywords, dates, names.

Dovecot reads a private copy (it writes into what it reads). IMAP serves CRLF line ends, so the
messages are CRLF to begin with. For mbox, what Dovecot cannot show as the source had it, and
the test allows for exactly that and no more: a message with a line starting ``From `` has it
(and its ``>From `` lines) quoted once more, as in any mbox, since Dovecot does not undo quoting;
Dovecot hides a message's own Status, X-Status, X-Keywords, X-UID, X-IMAPbase and Content-Length
headers, and adds the flags of its own Status lines to those it was copied with. Everything else
is exact: bytes (a message without a final newline too), flags, keywords, dates.
"""

from __future__ import annotations

import collections
import re
import shutil
from pathlib import Path

import pytest

from harness.corpus import corpus, expected_dump, server_safe
from harness.dovecot import DovecotServer
from migrator.core.message import Flag, Flags, Message
from migrator.endpoints.endpoint import parse_endpoint
from migrator.stores import open_store

EXTRA_FOLDERS = (("a.b",), ("~tilde",), ("back\\slash",), ("INBOX", "child"), ("Case",), ("case",), ("x.eml",))
# Dovecot cannot open a folder called like its DIRNAME (the mbox file), so only the Maildir has one.
MBOX_FOLDER = ("mbox",)
# A message carrying status lines of its own, copied with other flags.
OWN_STATUS = b"Status: RO\r\nX-Status: F\r\nX-Keywords: theirs\r\nSubject: own status lines\r\n\r\nbody\r\n"
_FROM_LINE = re.compile(rb"^From ", re.MULTILINE)
_QUOTABLE = re.compile(rb"^(>*From )", re.MULTILINE)
_HIDDEN = re.compile(rb"^(?:Status|X-Status|X-Keywords|X-UID|X-IMAPbase|X-IMAP|Content-Length):[^\r\n]*\r\n",
                     re.MULTILINE | re.IGNORECASE)
_OWN_FLAGS = {b"R": "\\Seen", b"A": "\\Answered", b"F": "\\Flagged", b"T": "\\Draft", b"D": "\\Deleted"}


@pytest.fixture(scope="module")
def messages() -> list[Message]:
    safe = server_safe(corpus())
    extra = [Message(m.raw, m.flags, m.received, folder) for m, folder in zip(safe, EXTRA_FOLDERS)]
    own = Message(OWN_STATUS, Flags.of(Flag.ANSWERED, keywords=("ours",)), safe[0].received, ("INBOX",))
    return safe + extra + [own]


def _write_archive(kind: str, path: Path, messages: list[Message]) -> None:
    # One append per message: the keyword list of each mbox file grows in place.
    with open_store(parse_endpoint(f"{kind}:{path}"), readonly=False) as store:
        for message in messages:
            store.ensure_folder(message.folder)
            assert all(r.ok for r in store.append_batch(message.folder, [message]))


def test_dovecot_serves_our_maildir(dovecot: DovecotServer, tmp_path: Path, messages: list[Message]) -> None:
    messages = messages + [Message(messages[0].raw, messages[0].flags, messages[0].received, MBOX_FOLDER)]
    _write_archive("maildir", tmp_path / "maildir", messages)
    reader = dovecot.add_archive_user("maildirreader", "secret", tmp_path / "maildir", kind="maildir")
    got = dovecot.dump(reader, include_empty=False)
    assert _without_recent(got) == expected_dump(messages)


def test_dovecot_serves_our_mbox_as_the_source_had_it(dovecot: DovecotServer, tmp_path: Path,
                                                      messages: list[Message]) -> None:
    _write_archive("mbox", tmp_path / "mbox", messages)
    reader = dovecot.add_archive_user("mboxreader", "secret", tmp_path / "mbox", kind="mbox", mbox_dirname="mbox",
                                      mbox_inbox="INBOX/mbox")
    served = _without_recent(dovecot.dump(reader, include_empty=False))
    expected = expected_dump(messages)
    assert sorted(served) == sorted(expected)
    table: collections.Counter[str] = collections.Counter()
    for folder, entries in expected.items():
        assert len(served[folder]) == len(entries), folder
        for (raw, flags, date), (got_raw, got_flags, got_date) in zip(entries, served[folder]):
            assert (got_raw, got_flags, got_date) == (_as_dovecot_shows(raw), flags | _own_flags(raw), date)
            _count(table, raw, flags, got_raw, got_flags)
    print("Dovecot serving a migrator mbox, against the source:", dict(table))
    assert table["messages"] == len(messages) and table["bytes exact"] >= len(messages) - 8
    with open_store(parse_endpoint(f"mbox:{tmp_path / 'mbox'}")) as store:  # and migrator reads it back exactly
        own = [m for m in store.messages(("INBOX",)) if m.raw == OWN_STATUS]
    assert [m.flags for m in own] == [Flags.of(Flag.ANSWERED, keywords=("ours",))]


def test_after_dovecot_rewrote_our_mbox_no_message_comes_back_wrong(dovecot: DovecotServer, tmp_path: Path,
                                                                      messages: list[Message]) -> None:
    """Dovecot writes its X-UID and X-IMAPbase into the files it reads, moving every message: the index
    beside each file is stale. Every message must then come back either exactly as it was copied, or as
    the file now holds it (what it would be without an index), and none may be lost, cut or merged."""
    _write_archive("mbox", tmp_path / "mbox", messages)
    reader = dovecot.add_archive_user("rewritten", "secret", tmp_path / "mbox", kind="mbox", mbox_dirname="mbox",
                                      mbox_inbox="INBOX/mbox")
    dovecot.dump(reader, include_empty=False)
    rewritten = dovecot.root / "archives" / "rewritten"
    assert b"X-UID: " in (rewritten / "INBOX" / "mbox").read_bytes()
    unindexed = tmp_path / "unindexed"
    shutil.copytree(rewritten, unindexed)
    for index in unindexed.rglob(".mbox.index"):
        index.unlink()
    with_index, without = _read_all(rewritten), _read_all(unindexed)
    copied = {(m.raw, m.flags) for m in messages}
    assert [len(v) for v in with_index.values()] == [len(v) for v in without.values()]
    assert sum(map(len, with_index.values())) == len(messages)
    for folder, got in with_index.items():
        for message, as_held in zip(got, without[folder]):
            assert message in copied or message == as_held, folder


def _read_all(root: Path) -> dict[str, list[tuple[bytes, Flags]]]:
    with open_store(parse_endpoint(f"mbox:{root}")) as store:
        folders = [f.path for f in store.list_folders() if f.selectable]
        return {"/".join(path): [(m.raw, m.flags) for m in store.messages(path)] for path in folders}


def _as_dovecot_shows(raw: bytes) -> bytes:
    """Return the bytes Dovecot serves of ``raw`` stored in an mbox: quoted if it holds a From line, its
    own status headers hidden."""
    if _FROM_LINE.search(raw):
        raw = _QUOTABLE.sub(rb">\1", raw)
    head, blank, body = raw.partition(b"\r\n\r\n")
    return _HIDDEN.sub(b"", head + b"\r\n")[:-2] + blank + body if blank else raw


def _own_flags(raw: bytes) -> frozenset[str]:
    """Return the system flags the Status and X-Status lines of ``raw`` itself give: Dovecot adds them."""
    head = raw.partition(b"\r\n\r\n")[0]
    values = b"".join(re.findall(rb"^(?:Status|X-Status):([^\r\n]*)", head, re.MULTILINE | re.IGNORECASE))
    return frozenset(flag for letter, flag in _OWN_FLAGS.items() if letter in values)


def _count(table: collections.Counter[str], raw: bytes, flags: frozenset[str], got_raw: bytes,
           got_flags: frozenset[str]) -> None:
    table["messages"] += 1
    table["bytes exact"] += got_raw == raw
    table["bytes: a From line quoted"] += bool(_FROM_LINE.search(raw))
    table["bytes: own status headers hidden"] += _HIDDEN.search(raw.partition(b"\r\n\r\n")[0]) is not None
    table["keywords exact"] += _keywords(got_flags) == _keywords(flags)
    table["flags exact"] += got_flags == flags
    table["flags: own Status lines added"] += got_flags != flags


def _keywords(flags: frozenset[str]) -> frozenset[str]:
    return frozenset(flag for flag in flags if not flag.startswith("\\"))


def _without_recent(dump: dict) -> dict:
    return {folder: [(raw, flags - {"\\Recent"}, date) for raw, flags, date in entries]
            for folder, entries in dump.items()}
