"""A real Dovecot serves the Maildir and mbox archives migrator writes: same messages, flags, dates, names.

Dovecot reads a private copy (it writes into what it reads). What it cannot show as we
wrote it, and the test allows for: IMAP serves CRLF line ends. For mbox, Dovecot keeps the
``X-Migrator-Mbox`` marker line in the header, does not undo ``>From`` quoting, shows a
message without a final newline with one, hides every Status, X-Status and X-Keywords
header (the message's own too), and reads keywords from X-Keywords only when its private
X-IMAPbase header lists them, which migrator does not write: it shows system flags only.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
from pathlib import Path

import pytest

from migrator.endpoint import parse_endpoint
from migrator.message import Message
from migrator.stores import open_store
from tests.support.corpus import corpus, crlf, expected_dump, server_safe
from tests.support.dovecot import MAIL_USER, DovecotServer

EXTRA_FOLDERS = (("a.b",), ("~tilde",), ("back\\slash",), ("INBOX", "child"), ("Case",), ("case",), ("x.eml",))
# Dovecot cannot open a folder called like its DIRNAME (the mbox file), so only the Maildir has one.
MBOX_FOLDER = ("mbox",)
_MARKER = re.compile(rb"\AX-Migrator-Mbox: [^\r\n]*\r\n")
_QUOTED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)
_FLAG_HEADER = re.compile(rb"^(?:Status|X-Status|X-Keywords):[^\r\n]*\r\n", re.MULTILINE | re.IGNORECASE)


@pytest.fixture(scope="module")
def messages() -> list[Message]:
    safe = server_safe(corpus())
    extra = [Message(m.raw, m.flags, m.received, folder) for m, folder in zip(safe, EXTRA_FOLDERS)]
    return safe + extra


def _write_archive(kind: str, path: Path, messages: list[Message]) -> None:
    with open_store(parse_endpoint(f"{kind}:{path}"), readonly=False) as store:
        for message in messages:
            store.ensure_folder(message.folder)
            assert all(r.ok for r in store.append_batch(message.folder, [message]))


def _copy_for_dovecot(server: DovecotServer, archive: Path, name: str) -> Path:
    copy = server.root / "archives" / name
    shutil.copytree(archive, copy)
    account = pwd.getpwnam(MAIL_USER)
    for directory, dirs, files in os.walk(copy):
        for entry in [directory] + [os.path.join(directory, e) for e in dirs + files]:
            os.chown(entry, account.pw_uid, account.pw_gid)
    return copy


def test_dovecot_serves_our_maildir(dovecot: DovecotServer, tmp_path: Path, messages: list[Message]) -> None:
    messages = messages + [Message(messages[0].raw, messages[0].flags, messages[0].received, MBOX_FOLDER)]
    _write_archive("maildir", tmp_path / "maildir", messages)
    reader = dovecot.add_archive_user("maildirreader", "secret", tmp_path / "maildir", kind="maildir")
    got = dovecot.dump(reader, include_empty=False)
    assert _without_recent(got) == expected_dump(messages)


def test_dovecot_serves_our_mbox_tree(dovecot: DovecotServer, tmp_path: Path, messages: list[Message]) -> None:
    _write_archive("mbox", tmp_path / "mbox", messages)
    copy = _copy_for_dovecot(dovecot, tmp_path / "mbox", "mboxreader")
    location = f"mbox:{copy}:INBOX={copy}/INBOX/mbox:LAYOUT=fs:DIRNAME=mbox:INDEX={copy}.index:UTF-8"
    reader = dovecot.add_user("mboxreader", "secret", mail_location=location, auto_folders=False)
    got = {
        folder: [(_without_flag_headers(_as_written(raw)), flags, date) for raw, flags, date in entries]
        for folder, entries in _without_recent(dovecot.dump(reader, include_empty=False)).items()
    }
    expected = {
        folder: [(_without_flag_headers(_with_final_newline(raw)), _system(flags), date) for raw, flags, date in entries]
        for folder, entries in expected_dump(messages).items()
    }
    assert got == expected


def _without_recent(dump: dict) -> dict:
    return {folder: [(raw, flags - {"\\Recent"}, date) for raw, flags, date in entries] for folder, entries in dump.items()}


def _as_written(served: bytes) -> bytes:
    """Return a message Dovecot served from our mbox without the two things Dovecot leaves in."""
    return _QUOTED_FROM.sub(rb"\1", _MARKER.sub(b"", served, count=1))


def _with_final_newline(raw: bytes) -> bytes:
    return raw if raw.endswith(b"\n") else crlf(raw + b"\n")


def _without_flag_headers(raw: bytes) -> bytes:
    head, blank, body = raw.partition(b"\r\n\r\n")
    return _FLAG_HEADER.sub(b"", head + b"\r\n")[:-2] + blank + body


def _system(flags: frozenset[str]) -> frozenset[str]:
    return frozenset(flag for flag in flags if flag.startswith("\\"))
