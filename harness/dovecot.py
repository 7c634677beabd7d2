"""A throwaway Dovecot 2.3 for tests, the demo and the benchmark, started as root on 127.0.0.1.

``DovecotServer`` makes a fresh CA with openssl, writes a configuration into a temporary
directory (harness/dovecotconf.py) and runs ``dovecot -F -c DIR/dovecot.conf`` on free
ports: ``imaps`` (implicit TLS), ``imap`` (offers STARTTLS), ``pop3s`` and ``pop3`` (offers
STLS). ``add_user`` works while the server runs. Seeding and reading back go through
imaplib and harness/mailboxes.py only, never migrator's code: what they report is
independent proof of what migrator did.

Mail locations that read what migrator's local stores write (verified with this Dovecot;
``add_archive_user`` builds them on a private copy, because Dovecot writes into what it
reads: index and uidlist files in a Maildir, X-UID/X-IMAPbase/Status headers in mbox files):

- Maildir++ (root = INBOX; ``.Parent.Child`` folder directories; names in modified UTF-7;
  ``.``, ``/``, ``\\`` and a leading ``~`` escaped as ``\\NN`` hex, e.g. ``.v1\\2e2 notes``
  is "v1.2 notes"): ``maildir:PATH`` with the default ``separator="/"`` (listescape is
  always loaded). Keywords come from each folder's ``dovecot-keywords`` (a CONTROL= elsewhere
  would hide them); INTERNALDATE is the file's mtime, and S= in the name must be exact.
  Dovecot has no Maildir letter for $Forwarded: it keeps it as a keyword, not as ``P``.
- A tree of mbox files, INBOX being the file ``INBOX``:
  ``mbox:PATH:INBOX=PATH/INBOX`` reads folder ("A", "B") from the file ``A/B`` (a folder
  with children then cannot hold messages); with ``:DIRNAME=NAME`` every folder is a
  directory and its messages are in ``DIR/NAME``, so ("A",) is ``A/NAME`` and ("A", "B")
  is ``A/B/NAME`` (migrator's tree: ``DIRNAME=mbox``, INBOX the file ``INBOX/mbox``). See
  ``mbox_location``. Dovecot takes flags from Status/X-Status (every such header counts) and
  hides those headers; it reads X-Keywords (the first one) only for keywords declared in an
  ``X-IMAPbase: UIDVALIDITY UIDNEXT keyword...`` header of the file's first message; it does
  not undo ``>From`` quoting, and takes a Content-Length that points at the next From line.
"""

from __future__ import annotations

import atexit
import grp
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

from harness import imapwire
from harness.dovecotconf import ServerSettings, render_config, render_oauth2_config
from harness.mailserver import (
    MailServer,
    MailUser,
    ServerUnavailable,
    chown_tree,
    die_with_parent,
    user_name,
    wait_listening,
)
from harness.tlsca import make_pki

__all__ = ["DEFAULT_SPECIAL_FOLDERS", "MAIL_USER", "OUTLOOK_SPECIAL_FOLDERS", "DovecotServer", "DovecotUnavailable",
           "MailUser", "mbox_location"]

MAIL_USER = "migratortest"
"""The unprivileged system user that owns every mailbox of the test servers."""

DEFAULT_SPECIAL_FOLDERS: Mapping[str, str] = {
    "Drafts": "\\Drafts", "Sent": "\\Sent", "Trash": "\\Trash", "Junk": "\\Junk", "Archive": "\\Archive",
}
"""Folders created at a user's first login, with their SPECIAL-USE attribute."""

OUTLOOK_SPECIAL_FOLDERS: Mapping[str, str] = {
    "Drafts": "\\Drafts", "Sent Items": "\\Sent", "Trash": "\\Trash", "Junk": "\\Junk", "Archive": "\\Archive",
}
"""The same, with the sent folder named the way Outlook and Exchange name it."""

_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class DovecotUnavailable(ServerUnavailable):
    """Dovecot cannot run here: not installed, or not running as root."""


class DovecotServer(MailServer):
    """A private Dovecot instance; use it as a context manager, or call start() and stop().

    ``separator`` is the IMAP hierarchy separator of the one namespace ("/" or ".");
    ``special_folders`` maps folders created at first login to their SPECIAL-USE flag;
    ``plaintext_auth`` lets clients log in without TLS (see ``remote_host``).
    ``max_user_connections`` is how many IMAP connections a user may have at once (as on
    many real servers, a further login is refused with ``[LIMIT]``).
    ``ports`` maps "imap", "imaps", "pop3", "pop3s" to port numbers once started.
    ``oauth2_introspection_url`` also lets users log in with XOAUTH2 and OAUTHBEARER, their access
    tokens checked at that URL (harness/oauth2_provider.py's ``/introspect``).
    ``master_user`` = (NAME, PASSWORD) makes NAME a master user who logs in for any user with NAME's
    password: as ``USER*NAME``, or with SASL PLAIN and USER as the authorization identity.
    """

    remote_host = "127.0.0.2"
    """The same server at an address where Dovecot treats the client as remote.

    Dovecot counts a client whose IP equals the server's IP as secured and lets it log in
    without TLS whatever the settings say. At ``remote_host`` (the client's address is then
    127.0.0.1) the real policy applies: LOGIN/USER before STARTTLS/STLS is refused unless
    the server was made with ``plaintext_auth=True``. The certificate covers both addresses.
    """

    def __init__(self, *, separator: str = "/", special_folders: Mapping[str, str] = DEFAULT_SPECIAL_FOLDERS,
                 plaintext_auth: bool = False, max_user_connections: int = 10, root: Path | None = None,
                 oauth2_introspection_url: str | None = None, master_user: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.master_user = master_user
        self.oauth2_introspection_url = oauth2_introspection_url
        self.separator = separator
        self.max_user_connections = max_user_connections
        self.special_folders = dict(special_folders)
        self.plaintext_auth = plaintext_auth
        self._given_root = root
        self.root = Path()
        self._process: subprocess.Popen | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> DovecotServer:
        """Start the server and return it; raise DovecotUnavailable, or RuntimeError with Dovecot's log."""
        _check_available()
        self.root = self._given_root or Path(tempfile.mkdtemp(prefix="dovecot-", dir="/tmp"))
        self.root.chmod(0o755)  # the auth and mail processes must reach their files below
        self._uid, self._gid = _mail_user_ids()
        self.tls_files = make_pki(self.root / "tls")
        self._prepare_directories()
        if self.oauth2_introspection_url:
            (self.root / "dovecot-oauth2.conf.ext").write_text(render_oauth2_config(self.oauth2_introspection_url))
        if self.master_user:
            name, password = self.master_user
            _write_auth_file(self.root / "masters", f"{name}:{{PLAIN}}{password}")
        self._launch_on_free_ports(lambda: self.config_file.write_text(render_config(self._settings())))
        return self

    def stop(self) -> None:
        """Stop the server (a no-op when stopped) and remove its directory unless a root was given."""
        process, self._process = self._process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._given_root is None:
            shutil.rmtree(self.root, ignore_errors=True)

    def _settings(self) -> ServerSettings:
        return ServerSettings(root=self.root, uid=self._uid, gid=self._gid, cert=self.tls_files.server_cert,
                              key=self.tls_files.server_key, ports=self.ports, separator=self.separator,
                              special_folders=self.special_folders, plaintext_auth=self.plaintext_auth,
                              max_user_connections=self.max_user_connections,
                              oauth2_introspection_url=self.oauth2_introspection_url,
                              master_user=self.master_user is not None)

    def _prepare_directories(self) -> None:
        for name in ("run", "state", "home", "rawlog", "users", "archives"):
            (self.root / name).mkdir(exist_ok=True)
        for name in ("home", "rawlog", "archives"):
            os.chown(self.root / name, self._uid, self._gid)

    def _launch(self, *, last_try: bool) -> bool:
        # Started from the main thread, Dovecot dies with the test process even if nobody stops
        # it (the kernel signals a child when the *thread* that forked it ends, hence only then).
        in_main_thread = threading.current_thread() is threading.main_thread()
        with open(self.root / "startup.log", "wb") as startup_log:
            self._process = subprocess.Popen(["dovecot", "-F", "-c", str(self.config_file)],
                                             stdout=startup_log, stderr=startup_log,
                                             preexec_fn=die_with_parent if in_main_thread else None)
        if wait_listening(self._process, self.ports.values()):
            return True
        self._process.wait()
        self._process = None
        if "in use" in self.log() and not last_try:
            return False  # another process took one of the free ports meanwhile
        raise RuntimeError(f"Dovecot did not start with {self.config_file}:\n{self.log()}")

    @property
    def config_file(self) -> Path:
        """Return the path of the dovecot.conf this server runs with."""
        return self.root / "dovecot.conf"

    def log(self) -> str:
        """Return Dovecot's startup output and error log (logins and auth failures are in info.log)."""
        parts = (self.root / "startup.log", self.root / "dovecot.log")
        return "".join(path.read_text(errors="replace") for path in parts if path.exists())

    # --- users -----------------------------------------------------------------------------

    def add_user(self, name: str, password: str, *, mail_location: str | None = None,
                 auto_folders: bool | None = None) -> MailUser:
        """Create a user (no restart needed) and return it; raise ValueError for an unusable name or password.

        ``mail_location`` replaces the default ``maildir:~/Maildir`` for this user; it must not
        contain white space and the mail user must be able to write there (``add_archive_user``
        sees to that). ``auto_folders``: create the special folders at first login; by default
        only with the default mail location.
        """
        if not _USER_NAME.fullmatch(name) or name in self._passwords:
            raise ValueError(f"user name {name!r} is taken or not made of letters, digits, '.', '_', '-'")
        if not password or any(char in password for char in ": \t\r\n"):
            raise ValueError("a password must be non-empty, without ':' or white space")
        fields = [f"userdb_mail={mail_location}"] if mail_location else []
        if not (mail_location is None if auto_folders is None else auto_folders):
            fields += self._no_auto_folder_fields()
        home = self.home(name)
        home.mkdir(mode=0o700)
        os.chown(home, self._uid, self._gid)
        entry = [name, "{PLAIN}" + password, str(self._uid), str(self._gid), "", str(home), "", " ".join(fields)]
        self._write_passwd_file(name, ":".join(entry))
        self._passwords[name] = password
        return MailUser(name, password, home)

    def _no_auto_folder_fields(self) -> list[str]:
        # userdb fields are separated by spaces and address a folder's settings by its name.
        if any(" " in name for name in self.special_folders):
            raise ValueError("special folders with spaces in their names cannot be switched off per user: "
                             "use a server with the default special_folders")
        return [f"userdb_namespace/inbox/mailbox/{name}/auto=no" for name in self.special_folders]

    def _write_passwd_file(self, name: str, line: str) -> None:
        _write_auth_file(self.root / "users" / name, line)

    def add_archive_user(self, name: str, password: str, archive: Path, *, kind: str = "maildir",
                         mbox_dirname: str | None = None, mbox_inbox: str = "INBOX") -> MailUser:
        """Return a new user whose mail is a private copy of the Maildir or mbox tree ``archive``.

        ``kind`` is "maildir" or "mbox"; ``mbox_dirname`` and ``mbox_inbox`` as in ``mbox_location``
        (migrator's mbox tree is ``mbox_dirname="mbox", mbox_inbox="INBOX/mbox"``). The copy keeps
        modification times and belongs to the mail user; Dovecot's indexes go beside it.
        No special folders are created. Raises ValueError for an unknown kind.
        """
        copy, index = self.root / "archives" / name, self.root / "archives" / f"{name}.index"
        if kind == "maildir":
            location = f"maildir:{copy}:INDEX={index}"
        elif kind == "mbox":
            location = mbox_location(copy, index, dirname=mbox_dirname, inbox=mbox_inbox)
        else:
            raise ValueError(f"unknown archive kind {kind!r}: use 'maildir' or 'mbox'")
        shutil.copytree(archive, copy, symlinks=False)
        chown_tree(copy, self._uid, self._gid)
        return self.add_user(name, password, mail_location=location, auto_folders=False)

    def home(self, user: MailUser | str) -> Path:
        """Return the home directory of ``user``; mail of the default location is in ``home/Maildir``."""
        return self.root / "home" / user_name(user)

    # --- rawlog ----------------------------------------------------------------------------

    def enable_rawlog(self, user: MailUser | str) -> None:
        """Record the IMAP and POP3 traffic of ``user``'s sessions that log in from now on."""
        directory = self.root / "rawlog" / user_name(user)
        for path in (directory, directory / "imap", directory / "pop3"):
            path.mkdir(exist_ok=True)
            os.chown(path, self._uid, self._gid)

    def imap_sessions(self, user: MailUser | str) -> list[list[str]]:
        """Return the client commands of each of ``user``'s IMAP sessions since ``enable_rawlog`` (see below)."""
        logs = _rawlog_files(self.root / "rawlog" / user_name(user) / "imap")
        return [imapwire.rawlog_commands(log) for log in logs]

    def imap_commands(self, user: MailUser | str) -> list[str]:
        """Return the client commands, without tags, of ``user``'s IMAP sessions since ``enable_rawlog``.

        Sessions come in the order they started; commands before login are not recorded,
        and a session's record is complete once the client has logged out.
        """
        return [command for session in self.imap_sessions(user) for command in session]

    def pop3_commands(self, user: MailUser | str) -> list[str]:
        """Return the POP3 commands of ``user``'s sessions since ``enable_rawlog`` (see ``imap_commands``)."""
        logs = _rawlog_files(self.root / "rawlog" / user_name(user) / "pop3")
        return [line for log in logs for line in imapwire.rawlog_lines(log)]


# --- module helpers ------------------------------------------------------------------------

def mbox_location(path: Path, index: Path, *, dirname: str | None = None, inbox: str = "INBOX") -> str:
    """Return the mail_location of a tree of mbox files at ``path`` whose INBOX is the file ``path/inbox``.

    With ``dirname`` every folder is a directory holding its messages in the file ``dirname``
    (so a folder can have both messages and children); without, a folder is a file. Folder
    names on disk are UTF-8 (with listescape's ``\\NN`` escapes), as migrator writes them.
    """
    location = f"mbox:{path}:INBOX={path}/{inbox}:INDEX={index}:UTF-8"
    return f"{location}:DIRNAME={dirname}" if dirname else location


def _check_available() -> None:
    missing = [tool for tool in ("dovecot", "doveadm", "openssl") if shutil.which(tool) is None]
    if missing:
        raise DovecotUnavailable(f"{', '.join(missing)} not installed "
                                 "(apt-get install dovecot-imapd dovecot-pop3d openssl)")
    if os.geteuid() != 0:
        raise DovecotUnavailable("the test Dovecot must be started as root")


def _mail_user_ids() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(MAIL_USER)
    except KeyError:
        # check=False: a test run in parallel may have created the user meanwhile.
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", MAIL_USER],
                       capture_output=True, check=False)
        entry = pwd.getpwnam(MAIL_USER)
    return entry.pw_uid, entry.pw_gid


def _write_auth_file(path: Path, line: str) -> None:
    path.write_text(line + "\n")
    os.chown(path, 0, grp.getgrnam("dovecot").gr_gid)  # read by the auth process, user dovecot
    path.chmod(0o640)


def _rawlog_files(directory: Path) -> list[bytes]:
    return sorted((path.read_bytes() for path in directory.glob("*.in")), key=imapwire.rawlog_started)

