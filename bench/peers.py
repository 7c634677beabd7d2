"""The peers, run on the same server as migrator: mbsync, offlineimap3 (IMAP -> Maildir), getmail6 (POP3 -> Maildir).

Each gets a configuration file written into its private work directory, TLS verified
against the throwaway server's CA, the source opened read-only where the tool allows it
(mbsync ``Sync Pull``, offlineimap ``readonly``), and otherwise its defaults: the point
is to compare with what a user of the tool gets.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from bench.counts import single_maildir_counts, tree_counts
from bench.measure import Invocation
from bench.server import Account
from harness.dovecot import MAIL_USER


def _write_private(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def mbsync(account: Account, work: Path) -> Invocation:
    """Return the mbsync (isync) invocation that pulls every folder into a tree of Maildirs."""
    mail = work / "mail"
    mail.mkdir()
    config = _write_private(work / "mbsyncrc", f"""\
IMAPAccount source
Host {account.host}
Port {account.imap_port}
User {account.user}
Pass {account.password}
SSLType IMAPS
CertificateFile {account.ca_file}

IMAPStore source
Account source

MaildirStore archive
Path {mail}/
Inbox {mail}/INBOX
SubFolders Verbatim

Channel backup
Far :source:
Near :archive:
Patterns *
Create Near
Sync Pull
Expunge None
SyncState *
""")
    return Invocation(["mbsync", "-q", "-c", str(config), "-a"], {}, lambda: tree_counts(mail))


def offlineimap(account: Account, work: Path) -> Invocation:
    """Return the offlineimap3 invocation that pulls every folder into a tree of Maildirs."""
    mail = work / "mail"
    config = _write_private(work / "offlineimaprc", f"""\
[general]
accounts = source
metadata = {work / "metadata"}

[Account source]
localrepository = archive
remoterepository = server

[Repository archive]
type = Maildir
localfolders = {mail}
sep = /

[Repository server]
type = IMAP
remotehost = {account.host}
remoteport = {account.imap_port}
remoteuser = {account.user}
remotepass = {account.password}
ssl = yes
sslcacertfile = {account.ca_file}
readonly = True
""")
    return Invocation(["offlineimap", "-c", str(config), "-u", "quiet"], {}, lambda: tree_counts(mail))


def getmail(account: Account, work: Path) -> Invocation:
    """Return the getmail6 invocation that retrieves INBOX over POP3 into one Maildir."""
    mail = work / "mail"
    for sub in ("cur", "new", "tmp"):
        (mail / sub).mkdir(parents=True, exist_ok=True)
    (work / "getmail").mkdir(exist_ok=True)
    # getmail refuses to deliver as root: its delivery child switches to the mail user, who must own the Maildir.
    owner = pwd.getpwnam(MAIL_USER)
    for path in (work, mail, *(mail / sub for sub in ("cur", "new", "tmp"))):
        os.chown(path, owner.pw_uid, owner.pw_gid)
    config = _write_private(work / "getmailrc", f"""\
[retriever]
type = SimplePOP3SSLRetriever
server = {account.host}
port = {account.pop3_port}
username = {account.user}
password = {account.password}
ca_certs = {account.ca_file}

[destination]
type = Maildir
path = {mail}/
user = {MAIL_USER}

[options]
read_all = false
delete = false
verbose = 0
""")
    argv = ["getmail", "--getmaildir", str(work / "getmail"), "--rcfile", str(config)]
    return Invocation(argv, {}, lambda: single_maildir_counts(mail))
