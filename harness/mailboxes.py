"""Seed and read back a mailbox over a logged-in imaplib connection, independently of migrator."""

from __future__ import annotations

import imaplib
from collections.abc import Iterable
from datetime import datetime

from harness import imapwire

SeedItem = tuple[tuple[str, ...] | str, bytes, Iterable[str], datetime]
"""(folder path or "/"-joined name, raw message, IMAP flag strings, internaldate) for ``seed``."""

Dump = dict[str, list[tuple[bytes, frozenset[str], datetime]]]
"""Folder name ("/"-separated, Unicode) -> [(raw, IMAP flags, internaldate)] sorted by UID."""


def seed(conn: imaplib.IMAP4, separator: str, messages: Iterable[SeedItem]) -> None:
    """APPEND each message in order, creating its folder first; raise imaplib.IMAP4.error on refusal."""
    created: set[str] = set()
    for folder, raw, flags, internaldate in messages:
        mailbox = imapwire.mailbox_name(_folder_path(folder), separator)
        if mailbox not in created:
            create_mailbox(conn, mailbox)
            created.add(mailbox)
        append_exact(conn, mailbox, flags, internaldate, raw)


def _folder_path(folder: tuple[str, ...] | str) -> tuple[str, ...]:
    return tuple(folder.split("/")) if isinstance(folder, str) else tuple(folder)


def create_mailbox(conn: imaplib.IMAP4, mailbox: str) -> None:
    """CREATE a quoted wire mailbox name unless it is INBOX or exists; raise imaplib.IMAP4.error."""
    if mailbox.upper() == '"INBOX"':
        return
    typ, data = conn.create(mailbox)
    if typ != "OK" and b"[ALREADYEXISTS]" not in b" ".join(d for d in data if d) and not _selectable(conn, mailbox):
        raise imaplib.IMAP4.error(f"CREATE {mailbox} failed: {data!r}")


def _selectable(conn: imaplib.IMAP4, mailbox: str) -> bool:
    # Cyrus and Courier refuse to CREATE an existing folder without [ALREADYEXISTS].
    typ, lines = conn.list('""', mailbox)
    listed = [imapwire.parse_list_line(line) for line in lines if typ == "OK" and isinstance(line, bytes)]
    return any(not {"\\noselect", "\\nonexistent"} & {a.lower() for a in attributes}
               for attributes, _separator, _name in listed)


def append_exact(conn: imaplib.IMAP4, mailbox: str, flags: Iterable[str], date: datetime, raw: bytes) -> None:
    """APPEND ``raw`` byte for byte to a quoted wire mailbox name; raise imaplib.IMAP4.error."""
    # imaplib's append() turns bare LF into CRLF; seeding must send the bytes exactly as
    # given, so this sends the same command with the literal left alone.
    conn.literal = raw
    typ, data = conn._simple_command("APPEND", mailbox, "(" + " ".join(flags) + ")",
                                     imapwire.format_internaldate(date))
    if typ != "OK":
        raise imaplib.IMAP4.error(f"APPEND to {mailbox} failed: {data!r}")


def dump(conn: imaplib.IMAP4, separator: str, *, include_empty: bool = True) -> Dump:
    """Return every selectable folder's messages, read with EXAMINE and UID FETCH, sorted by UID."""
    result: Dump = {}
    for name in selectable_folders(conn):
        messages = read_folder(conn, imapwire.quote(imapwire.mutf7_encode(name)))
        if messages or include_empty:
            result[name.replace(separator, "/")] = messages
    return result


def selectable_folders(conn: imaplib.IMAP4) -> list[str]:
    """Return the Unicode names (with the server's separator) of all folders that can be selected."""
    typ, lines = conn.list('""', '"*"')
    if typ != "OK":
        raise imaplib.IMAP4.error(f"LIST failed: {lines!r}")
    folders = []
    for line in lines:
        attributes, _separator, name = imapwire.parse_list_line(line)
        if not {"\\noselect", "\\nonexistent"} & {a.lower() for a in attributes}:
            folders.append(name)
    return folders


def read_folder(conn: imaplib.IMAP4, mailbox: str) -> list[tuple[bytes, frozenset[str], datetime]]:
    """Return (raw, flags, internaldate) of each message of a quoted wire mailbox name, by UID."""
    typ, data = conn.select(mailbox, readonly=True)
    if typ != "OK":
        raise imaplib.IMAP4.error(f"EXAMINE {mailbox} failed: {data!r}")
    if int(data[0]) == 0:
        return []
    typ, data = conn.uid("FETCH", "1:*", "(UID BODY.PEEK[] FLAGS INTERNALDATE)")
    if typ != "OK":
        raise imaplib.IMAP4.error(f"UID FETCH in {mailbox} failed: {data!r}")
    messages = sorted(imapwire.parse_fetch(data), key=lambda message: message[0])
    return [(raw, flags, date) for _uid, raw, flags, date in messages]
