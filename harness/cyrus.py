"""A throwaway Cyrus IMAP 3.6 for tests, started as root on 127.0.0.1 beside the suite's Dovecot.

Debian's ``cyrus-imapd`` conflicts with Dovecot, so .ci/setup installs only the parts that do
not conflict (``cyrus-common`` has ``master`` and ``ctl_cyrusdb``, ``sasl2-bin`` has
``saslpasswd2``) and unpacks ``imapd`` and ``pop3d`` into UNPACKED_SERVERS. ``CyrusServer`` writes
its own imapd.conf and cyrus.conf into a temporary directory and runs ``master`` in the
foreground; master drops to the ``cyrus`` user. Ports: ``imaps``, ``imap`` (STARTTLS),
``pop3s`` and ``pop3`` (STLS). Users live in a private sasldb; each is logged in once when
added, which creates the INBOX and the special folders.

What a client meets (as on a real Cyrus with Debian's defaults): the personal namespace is
``INBOX.`` with separator ``.`` (so a folder name cannot contain a dot), SPECIAL-USE attributes
in lower case (``\\sent``), CREATE of an existing folder is a plain ``NO Mailbox already
exists``, at most 100 keywords per folder, APPEND of bare LF or NUL refused, 8-bit bytes in
headers turned into ``X``. Without a syslog daemon Cyrus logs nothing; ``enable_rawlog`` turns
on its per-user protocol telemetry instead.
"""

from __future__ import annotations

import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
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
    user_name,
    wait_listening,
)
from harness.tlsca import make_pki

CYRUS_BIN = Path("/usr/lib/cyrus/bin")
IMAPD = UNPACKED_SERVERS / "cyrus-imapd/usr/lib/cyrus/bin/imapd"
POP3D = UNPACKED_SERVERS / "cyrus-pop3d/usr/lib/cyrus/bin/pop3d"

DEFAULT_SPECIAL_FOLDERS: Mapping[str, str] = {
    "Drafts": "\\Drafts", "Sent": "\\Sent", "Trash": "\\Trash", "Junk": "\\Junk", "Archive": "\\Archive",
}
"""Folders created at a user's first login, with their SPECIAL-USE attribute."""

_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # "." is the hierarchy separator, even in user names


class CyrusUnavailable(ServerUnavailable):
    """Cyrus cannot run here: not unpacked by .ci/setup, or not running as root."""


class CyrusServer(IsolatedServer):
    """A private Cyrus IMAP instance; use it as a context manager, or call start() and stop().

    ``special_folders`` maps folders created at first login to their SPECIAL-USE flag;
    ``options`` are more imapd.conf lines (e.g. ``{"munge8bit": "no"}``), which win over ours.
    ``ports`` maps "imap", "imaps", "pop3", "pop3s" to port numbers once started.
    """

    separator = "."
    personal_prefix = "INBOX"

    def __init__(self, *, special_folders: Mapping[str, str] = DEFAULT_SPECIAL_FOLDERS,
                 options: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.special_folders = dict(special_folders)
        self.options = dict(options or {})
        self.root = Path()
        self._process: subprocess.Popen | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> CyrusServer:
        """Start the server and return it; raise CyrusUnavailable, or RuntimeError with what it logged."""
        _check_available()
        self.root = Path(tempfile.mkdtemp(prefix="cyrus-", dir="/tmp"))  # short: unix socket paths below
        self.root.chmod(0o755)
        self.tls_files = make_pki(self.root / "tls")
        for name in ("etc", "lib", "spool", "run", "log"):
            (self.root / name).mkdir()
        (self.root / "etc" / "sasldb2").touch()
        chown_tree(self.root, *_cyrus_ids())
        self._launch_on_free_ports(self._write_config)
        return self


    def _launch(self, *, last_try: bool) -> bool:
        command = [str(CYRUS_BIN / "master"), "-C", str(self.config_file), "-M", str(self.root / "etc" / "cyrus.conf"),
                   "-p", str(self.root / "run" / "master.pid"), "-L", str(self.root / "log" / "master.log")]
        self._process = spawn_isolated(command, self.root / "log" / "startup.log")
        started = wait_listening(self._process, self.ports.values())
        if started and listening_in_namespace(self._process, self.ports.values()):
            return True
        self._process.kill()
        self._process.wait()
        self._process = None
        if started and not last_try:
            return False  # another process took one of the free ports meanwhile (master goes on without it)
        cause = "another process listens on one of its ports" if started else "it did not listen in time"
        raise RuntimeError(f"Cyrus did not start with {self.config_file}: {cause}; Cyrus logs only to syslog, "
                           f"and master wrote:\n{self.log()}")

    @property
    def config_file(self) -> Path:
        """Return the path of the imapd.conf this server runs with."""
        return self.root / "etc" / "imapd.conf"

    def _write_config(self) -> None:
        self.config_file.write_text(_imapd_conf(self.root, self.special_folders, self.options))
        (self.root / "etc" / "cyrus.conf").write_text(_cyrus_conf(self.config_file, self.ports))

    def log(self) -> str:
        """Return master's output: with no syslog daemon Cyrus has little more to say (see enable_rawlog)."""
        parts = (self.root / "log" / "startup.log", self.root / "log" / "master.log")
        return "".join(path.read_text(errors="replace") for path in parts if path.exists())

    # --- users -----------------------------------------------------------------------------

    def add_user(self, name: str, password: str) -> MailUser:
        """Create a user, log it in once (INBOX and special folders appear) and return it; raise ValueError."""
        if not _USER_NAME.fullmatch(name) or name in self._passwords:
            raise ValueError(f"user name {name!r} is taken or not made of letters, digits, '_', '-'")
        if not password or "\n" in password:
            raise ValueError("a password must be non-empty and on one line")
        subprocess.run(["saslpasswd2", "-f", str(self.root / "etc" / "sasldb2"), "-u", "localhost", "-c", "-p", name],
                       input=password.encode(), check=True, capture_output=True)
        self._passwords[name] = password
        self.imap(name).logout()
        return MailUser(name, password, self.root / "spool")

    # --- protocol telemetry ----------------------------------------------------------------

    def enable_rawlog(self, user: MailUser | str) -> None:
        """Record the IMAP and POP3 sessions of ``user`` from the next connection on (Cyrus telemetry)."""
        directory = self.root / "lib" / "log" / user_name(user)
        directory.mkdir(parents=True, exist_ok=True)
        chown_tree(self.root / "lib" / "log", *_cyrus_ids())

    def protocol_log(self, user: MailUser | str) -> str:
        """Return the telemetry of ``user``'s sessions since ``enable_rawlog``: ``<time<`` client, ``>time>`` server."""
        files = sorted((self.root / "lib" / "log" / user_name(user)).glob("*"), key=lambda path: path.stat().st_mtime)
        return "".join(path.read_text(errors="replace") for path in files)


# --- configuration -------------------------------------------------------------------------

def _imapd_conf(root: Path, special_folders: Mapping[str, str], options: Mapping[str, str]) -> str:
    settings = {
        "configdirectory": f"{root}/lib",
        "partition-default": f"{root}/spool",
        "servername": "localhost",  # must equal the sasldb realm, or every login fails
        "sasl_pwcheck_method": "auxprop",
        "sasl_auxprop_plugin": "sasldb",
        "sasl_sasldb_path": f"{root}/etc/sasldb2",
        "sasl_mech_list": "PLAIN LOGIN",
        "allowplaintext": "yes",
        "unixhierarchysep": "no",
        "altnamespace": "no",
        "autocreate_quota": "0",
        "autocreate_inbox_folders": " | ".join(special_folders),
        "specialusealways": "1",
        "popminpoll": "0",  # else a second POP3 login within a minute is refused
        "tls_server_cert": f"{root}/tls/server.crt",
        "tls_server_key": f"{root}/tls/server.key",
        **{f"xlist-{flag.lstrip(chr(92)).lower()}": name for name, flag in special_folders.items()},
        **options,
    }
    return "".join(f"{key}: {value}\n" for key, value in settings.items())


def _cyrus_conf(config: Path, ports: Mapping[str, int]) -> str:
    services = {"imap": f"{IMAPD} -C {config}", "imaps": f"{IMAPD} -s -C {config}",
                "pop3": f"{POP3D} -C {config}", "pop3s": f"{POP3D} -s -C {config}"}
    lines = [f'  {name} cmd="{command}" listen="127.0.0.1:{ports[name]}" prefork=0\n'
             for name, command in services.items()]
    return ("START {\n"
            f'  recover cmd="{CYRUS_BIN}/ctl_cyrusdb -C {config} -r"\n'
            "}\n"
            "SERVICES {\n" + "".join(lines) + "}\n")


# --- helpers -------------------------------------------------------------------------------

def _check_available() -> None:
    check_root("Cyrus")
    missing = [path for path in (CYRUS_BIN / "master", IMAPD, POP3D) if not path.exists()]
    if shutil.which("saslpasswd2") is None:
        missing.append(Path("saslpasswd2"))
    if missing:
        raise CyrusUnavailable(f"Cyrus IMAP is not set up here ({', '.join(map(str, missing))} missing): "
                               "run .ci/setup, which unpacks it into " + str(UNPACKED_SERVERS))
    try:
        pwd.getpwnam("cyrus")
    except KeyError:
        raise CyrusUnavailable("the user 'cyrus' is missing: run .ci/setup (cyrus-common creates it)") from None


def _cyrus_ids() -> tuple[int, int]:
    entry = pwd.getpwnam("cyrus")
    return entry.pw_uid, entry.pw_gid

