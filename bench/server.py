"""The benchmark's mail server: the test suite's throwaway Dovecot, loaded with the corpus.

Seeding links the corpus's Maildir files straight into the user's Maildir++ before
anything reads it, so Dovecot indexes them on first access: seconds instead of minutes
of APPENDs. The folder directories are the ones Dovecot itself created for ``CREATE``,
and the result is checked through IMAP before any run starts.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from bench.corpus import KEYWORDS, Corpus
from bench.counts import maildirpp_folders
from harness import imapwire
from harness.dovecot import DovecotServer, MailUser


@dataclass(frozen=True)
class Account:
    """One mail account on the benchmark server, as every client is told about it."""

    host: str
    imap_port: int
    pop3_port: int
    user: str
    password: str
    ca_file: str

    def url(self, scheme: str) -> str:
        """Return the migrator endpoint of this account for ``imaps`` or ``pop3s``."""
        port = self.imap_port if scheme == "imaps" else self.pop3_port
        return f"{scheme}://{self.user}@{self.host}:{port}?password_env=BENCH_PASSWORD&ca_file={self.ca_file}"


class BenchServer:
    """A running Dovecot whose accounts all share one random password (``$BENCH_PASSWORD``)."""

    def __init__(self, dovecot: DovecotServer) -> None:
        self.dovecot = dovecot
        self.password = secrets.token_hex(12)
        self._users = 0

    def new_account(self, prefix: str) -> Account:
        """Return a new, empty account whose name starts with ``prefix``."""
        self._users += 1
        user = self.dovecot.add_user(f"{prefix}{self._users}", self.password)
        return self.account(user)

    def account(self, user: MailUser) -> Account:
        """Return the Account of an existing user."""
        ports = self.dovecot.ports
        # "localhost", not 127.0.0.1: mbsync 1.4 does not match IP addresses against the certificate.
        return Account("localhost", ports["imaps"], ports["pop3s"], user.name, self.password,
                       str(self.dovecot.ca_file))

    def folder_counts(self, account: Account) -> dict[str, int]:
        """Return the message count of every selectable folder of ``account``, read through IMAP STATUS."""
        conn = self.dovecot.imap(account.user, self.password)
        try:
            counts = {}
            for line in conn.list('""', '"*"')[1]:
                attributes, separator, name = imapwire.parse_list_line(line)
                if {"\\Noselect", "\\NonExistent"} & attributes:
                    continue
                typ, data = conn.status(imapwire.quote(imapwire.mutf7_encode(name)), "(MESSAGES)")
                counts[name.replace(separator, "/")] = int(data[0].rsplit(b"MESSAGES ", 1)[1].rstrip(b")"))
            return counts
        finally:
            conn.logout()

    def seed(self, account: Account, corpus: Corpus) -> None:
        """Load ``corpus`` into ``account``; raise RuntimeError unless IMAP then shows every message."""
        self._create_folders(account, corpus)
        maildir = self.dovecot.home(account.user) / "Maildir"
        directories = maildirpp_folders(maildir)
        for folder in corpus.folders:
            self._link_folder(folder.directory, directories[folder.name])
        counts = self.folder_counts(account)
        missing = {name: n for name, n in corpus.counts.items() if counts.get(name) != n}
        if missing:
            raise RuntimeError(f"seeding failed: the server shows {counts}, the corpus has {corpus.counts}")

    def _create_folders(self, account: Account, corpus: Corpus) -> None:
        conn = self.dovecot.imap(account.user, self.password)
        try:
            for folder in corpus.folders:
                if folder.name != "INBOX":
                    conn.create(imapwire.mailbox_name(tuple(folder.name.split("/")), self.dovecot.separator))
        finally:
            conn.logout()

    def _link_folder(self, source: Path, maildir: Path) -> None:
        """Put the corpus files of one folder into ``maildir``/cur, owned by the mail user."""
        uid, gid = os.stat(maildir).st_uid, os.stat(maildir).st_gid
        keywords = maildir / "dovecot-keywords"
        keywords.write_text("".join(f"{index} {name}\n" for index, name in enumerate(KEYWORDS)))
        os.chown(keywords, uid, gid)
        for entry in os.scandir(source):
            target = maildir / "cur" / entry.name
            try:
                os.link(entry.path, target)  # the cache and the server share the files: no copy
            except OSError:
                shutil.copy2(entry.path, target)
            os.chown(target, uid, gid)
