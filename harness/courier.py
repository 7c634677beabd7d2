"""A throwaway Courier-IMAP 5.0 for tests, started as root on 127.0.0.1 beside the suite's Dovecot.

Debian's ``courier-imap`` and ``courier-pop`` conflict with Dovecot, so .ci/setup installs only
the parts that do not conflict (``couriertcpd``, ``couriertls``, ``authdaemond``, ``makeuserdb``)
and unpacks the IMAP and POP3 servers into UNPACKED_SERVERS. courier-authlib reads
``/etc/courier/authdaemonrc`` and ``/etc/courier/userdb.dat`` and listens on
``/run/courier/authdaemon/socket``, with no way to name other paths, so every process of a
``CourierServer`` runs in a private mount namespace where this server's directory is mounted
over those paths (the host's /etc/courier is never touched), and in a private PID namespace
whose end ends them all, ``gam_server`` included. Settings are Debian's ``imapd``/``pop3d``
files with a few changes (below); ports: ``imaps``, ``imap`` (STARTTLS), ``pop3s``, ``pop3`` (STLS).
Mail belongs to the ``mail`` user: with a uid that has no passwd entry, ``gam_server`` stalls
every session for about 3 s.

What a client meets: personal namespace ``INBOX.`` with separator ``.``; no SPECIAL-USE (the
special folders exist by name only); a nested CREATE makes the parent a ``\\Noselect``
placeholder; APPEND into the folder the connection has open with EXAMINE fails with ``NO Current
box is selected READ-ONLY.``; CREATE of an existing folder is ``NO Cannot create this folder.``;
emoji folder names are refused; a bare CR is dropped. Debian's ``IMAP_EMPTYTRASH=Trash:7`` (mail
older than 7 days deleted from Trash at login) is switched off here; real servers may have it on.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from harness.mailserver import (
    UNPACKED_SERVERS,
    IsolatedServer,
    MailUser,
    ServerUnavailable,
    check_root,
    chown_tree,
    listening_in_namespace,
    spawn_isolated,
    wait_listening,
)
from harness.tlsca import make_pki

IMAP_PACKAGE = UNPACKED_SERVERS / "courier-imap"
POP3_PACKAGE = UNPACKED_SERVERS / "courier-pop"
AUTHDAEMOND = Path("/usr/lib/courier/courier-authlib/authdaemond")
_HOST_TOOLS = ("couriertcpd", "couriertls", "makeuserdb", "unshare", "openssl")

DEFAULT_SPECIAL_FOLDERS = ("Drafts", "Sent", "Trash", "Junk", "Archive")
"""Folders every new user has (by name: Courier has no SPECIAL-USE)."""

CHANGED_SETTINGS: Mapping[str, str] = {
    "IMAP_EMPTYTRASH": "",  # Debian's Trash:7 would delete old mail a test put into Trash
    "IMAP_SHAREDINDEXFILE": "",  # no shared folders: the index would be read from /etc/courier
    "TLS_CACHEFILE": "",  # Debian's is under /var/lib/courier
    "TLS_DHPARAMS": "",  # ECDHE needs none; Debian's sits in the host's /etc/courier
}
"""What differs from Debian's imapd, imapd-ssl, pop3d and pop3d-ssl settings, besides paths and ports."""

_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


class CourierUnavailable(ServerUnavailable):
    """Courier cannot run here: not unpacked by .ci/setup, or not running as root."""


class CourierServer(IsolatedServer):
    """A private Courier-IMAP instance; use it as a context manager, or call start() and stop().

    ``special_folders`` are made for every new user; ``settings`` are more environment settings
    for imapd and pop3d (e.g. ``{"IMAP_EMPTYTRASH": "Trash:7"}``), which win over ours.
    ``ports`` maps "imap", "imaps", "pop3", "pop3s" to port numbers once started.
    """

    separator = "."
    personal_prefix = "INBOX"

    def __init__(self, *, special_folders: Iterable[str] = DEFAULT_SPECIAL_FOLDERS,
                 settings: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.special_folders = tuple(special_folders)
        self.settings = {**CHANGED_SETTINGS, **(settings or {})}
        self.root = Path()
        self._process: subprocess.Popen | None = None
        self._userdb_lines: list[str] = []

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> CourierServer:
        """Start the server and return it; raise CourierUnavailable, or RuntimeError with what it logged."""
        _check_available()
        self._mail = pwd.getpwnam("mail")
        self.root = Path(tempfile.mkdtemp(prefix="courier-", dir="/tmp"))
        self.root.chmod(0o755)
        self.tls_files = make_pki(self.root / "tls")
        for name in ("etc", "authdaemon", "home", "log"):
            (self.root / name).mkdir()
        self._write_static_files()
        self._launch_on_free_ports(lambda: (self.root / "run.sh").write_text(_run_script(self.root, self.ports)))
        return self


    def _launch(self, *, last_try: bool) -> bool:
        self._process = spawn_isolated(["/bin/sh", str(self.root / "run.sh")], self.root / "log" / "startup.log",
                                       env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        started = wait_listening(self._process, self.ports.values())
        if started and listening_in_namespace(self._process, self.ports.values()):
            return True
        self._process.kill()
        self._process.wait()
        self._process = None
        if (started or "in use" in self.log()) and not last_try:
            return False  # another process took one of the free ports meanwhile
        raise RuntimeError(f"Courier did not start from {self.root / 'run.sh'}:\n{self.log()}")

    def _write_static_files(self) -> None:
        etc = self.root / "etc"
        (etc / "authdaemonrc").write_text('authmodulelist="authuserdb"\ndaemons=1\n'
                                          "authdaemonvar=/run/courier/authdaemon\nDEBUG_LOGIN=0\n"
                                          'DEFAULTOPTIONS=""\nLOGGEROPTS=""\n')
        pem = etc / "server.pem"  # couriertls wants key and certificate in one file, readable by courier
        pem.write_bytes(self.tls_files.server_key.read_bytes() + self.tls_files.server_cert.read_bytes())
        pem.chmod(0o600)
        courier = pwd.getpwnam("courier")
        os.chown(pem, courier.pw_uid, courier.pw_gid)
        settings = {**self.settings, "TLS_CERTFILE": str(pem), "IMAP_STARTTLS": "YES", "POP3_STARTTLS": "YES"}
        (etc / "settings").write_text("".join(f"{key}={shlex.quote(value)}\n" for key, value in settings.items()))
        self._write_userdb()

    def log(self) -> str:
        """Return what the server wrote: start-up, authdaemond, and each service's log (logins, errors)."""
        paths = sorted((self.root / "log").glob("*.log"))
        return "".join(f"--- {path.name}\n{path.read_text(errors='replace')}" for path in paths)

    # --- users -----------------------------------------------------------------------------

    def add_user(self, name: str, password: str) -> MailUser:
        """Create a user with its Maildir and special folders (no restart needed) and return it; raise ValueError."""
        if not _USER_NAME.fullmatch(name) or name in self._passwords:
            raise ValueError(f"user name {name!r} is taken or not made of letters, digits, '_', '-'")
        if not password or "\n" in password:
            raise ValueError("a password must be non-empty and on one line")
        home = self.root / "home" / name
        self._make_maildir(home / "Maildir")
        hashed = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password.encode(),
                                capture_output=True, check=True).stdout.decode().strip()
        fields = {"uid": self._mail.pw_uid, "gid": self._mail.pw_gid, "home": home, "mail": home / "Maildir",
                  "systempw": hashed}
        self._userdb_lines.append(name + "\t" + "|".join(f"{key}={value}" for key, value in fields.items()))
        self._write_userdb()
        self._passwords[name] = password
        return MailUser(name, password, home)

    def _make_maildir(self, maildir: Path) -> None:
        folders = [maildir] + [maildir / f".{name}" for name in self.special_folders]
        for folder in folders:
            for sub in ("cur", "new", "tmp"):
                (folder / sub).mkdir(parents=True)
        for folder in folders[1:]:
            (folder / "maildirfolder").touch()
        subscribed = "".join(f"INBOX.{name}\n" for name in self.special_folders)
        (maildir / "courierimapsubscribed").write_text(subscribed)
        chown_tree(maildir.parent, self._mail.pw_uid, self._mail.pw_gid)
        maildir.parent.chmod(0o700)

    def _write_userdb(self) -> None:
        # makeuserdb builds userdb.dat (and userdbshadow.dat) beside the source; authdaemond
        # notices the new file at the next login.
        source = self.root / "etc" / "userdb"
        source.write_text("".join(line + "\n" for line in self._userdb_lines))
        source.chmod(0o600)
        subprocess.run(["makeuserdb", "-f", str(source)], check=True, capture_output=True)


# --- the namespace's first process -----------------------------------------------------------

def _run_script(root: Path, ports: Mapping[str, int]) -> str:
    """Return the shell script that mounts this server's files and runs authdaemond and the four services."""
    imap_files = [IMAP_PACKAGE / "etc/courier/imapd", IMAP_PACKAGE / "etc/courier/imapd-ssl"]
    pop3_files = [POP3_PACKAGE / "etc/courier/pop3d", POP3_PACKAGE / "etc/courier/pop3d-ssl"]
    imap = [IMAP_PACKAGE / "usr/lib/courier/courier/imaplogin", IMAP_PACKAGE / "usr/bin/imapd", "Maildir"]
    pop3 = [POP3_PACKAGE / "usr/lib/courier/courier/courierpop3login",
            POP3_PACKAGE / "usr/lib/courier/courier/courierpop3d", "Maildir"]
    tls = ["/usr/bin/couriertls", "-server", "-tcpd", "-user=courier"]
    services = [_service(root, "imap", ports["imap"], imap_files, [], imap),
                _service(root, "imaps", ports["imaps"], imap_files, ["IMAP_TLS=1"], tls + imap),
                _service(root, "pop3", ports["pop3"], pop3_files, [], pop3),
                _service(root, "pop3s", ports["pop3s"], pop3_files, ["POP3_TLS=1", "POP3_STARTTLS=NO"], tls + pop3)]
    return "\n".join([
        "set -e",
        "mkdir -p /run/courier/authdaemon",  # the mount points; Debian's packages make both
        f"mount --bind {root}/etc /etc/courier",
        f"mount --bind {root}/authdaemon /run/courier/authdaemon",
        f"{AUTHDAEMOND} 2>>{root}/log/authdaemond.log &",
        *services,
        "wait",
        "",
    ])


def _service(root: Path, name: str, port: int, settings_files: list[Path], extra: list[str],
             command: list[object]) -> str:
    sources = " ".join(f". {path};" for path in [*settings_files, root / "etc" / "settings"])
    tcpd = ["couriertcpd", "-address=127.0.0.1", "-maxprocs=$MAXDAEMONS", "-maxperip=$MAXPERIP", "-nodnslookup",
            "-noidentlookup", f"-stderr={root}/log/{name}.log", str(port), *map(str, command)]
    return f"(set -a; {sources} {' '.join(extra + [''])}exec {' '.join(tcpd)}) &"


# --- helpers -------------------------------------------------------------------------------

def _check_available() -> None:
    check_root("Courier")
    programs = (IMAP_PACKAGE / "usr/bin/imapd", POP3_PACKAGE / "usr/lib/courier/courier/courierpop3d", AUTHDAEMOND)
    missing = [str(path) for path in programs if not path.exists()]
    missing += [tool for tool in _HOST_TOOLS if shutil.which(tool) is None]
    if missing or not Path("/etc/courier").is_dir():
        raise CourierUnavailable(f"Courier-IMAP is not set up here ({', '.join(missing) or '/etc/courier'} missing): "
                                 "run .ci/setup, which unpacks it into " + str(UNPACKED_SERVERS))
    for user in ("mail", "courier"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            raise CourierUnavailable(f"the user {user!r} is missing: run .ci/setup") from None

