"""What every throwaway test server shares: free ports, start-up, TLS clients, seeding and reading back.

``MailServer`` is the base of ``DovecotServer`` (dovecot.py), ``CyrusServer`` (cyrus.py) and
``CourierServer`` (courier.py). A subclass starts its server and fills in ``ports``, ``tls_files``
and its users' passwords; the clients, ``seed`` and ``dump`` are the same for all three. Folders
are named as a user sees them: ``("Projects", "2024")`` is ``Projects/2024`` on Dovecot and
``INBOX.Projects.2024`` on a server whose personal namespace is ``INBOX.``; ``dump`` gives both as
``"Projects/2024"``, so one expected dump fits every server.
"""

from __future__ import annotations

import atexit
import ctypes
import imaplib
import os
import poplib
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from harness import mailboxes
from harness.mailboxes import Dump, SeedItem
from harness.tlsca import TlsFiles

START_TIMEOUT = 10.0

# harness/ sits one level below the repository's root, where .servers/ is.
UNPACKED_SERVERS = Path(os.environ.get("MIGRATOR_TEST_SERVERS") or Path(__file__).resolve().parents[1] / ".servers")
"""Where .ci/setup unpacks the servers whose packages conflict with Dovecot's (Cyrus, Courier)."""


class ServerUnavailable(RuntimeError):
    """A test server cannot run here: not installed, or not running as root."""


@dataclass(frozen=True)
class MailUser:
    """A user of a test server: log in with ``name`` and ``password``; ``home`` holds the user's files."""

    name: str
    password: str
    home: Path


PORT_NAMES = ("imap", "imaps", "pop3", "pop3s")  # IMAP with STARTTLS, IMAPS, POP3 with STLS, POP3S


class MailServer:
    """The clients, seeding and dumping of a started test server; subclasses start and stop it.

    ``separator`` is the IMAP hierarchy separator; ``personal_prefix`` the personal namespace
    ("" or "INBOX"), which ``seed`` adds to folder names and ``dump`` takes off again.
    """

    host = "127.0.0.1"
    separator = "/"
    personal_prefix = ""
    tls_files: TlsFiles

    def __init__(self) -> None:
        self.ports: dict[str, int] = {}
        self._passwords: dict[str, str] = {}

    def __enter__(self) -> MailServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> MailServer:
        raise NotImplementedError

    def _launch_on_free_ports(self, configure: Callable[[], None]) -> None:
        """Launch the server on free ports, ``configure`` first writing them where the server reads them.

        Three tries: another program may take a port between its choice and the server binding it.
        """
        for attempt in range(3):
            self.ports = free_ports(PORT_NAMES)
            configure()
            if self._launch(last_try=attempt == 2):
                break
        atexit.register(self.stop)

    def _launch(self, *, last_try: bool) -> bool:
        """Start the server on ``ports`` and return True once it listens; False to try other ports."""
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def add_user(self, name: str, password: str) -> MailUser:
        """Create a user with an empty mailbox (no restart needed) and return it; raise ValueError."""
        raise NotImplementedError

    # --- clients ---------------------------------------------------------------------------

    @property
    def ca_file(self) -> Path:
        """Return the CA certificate that verifies this server."""
        return self.tls_files.ca_file

    @property
    def untrusted_ca_file(self) -> Path:
        """Return a CA certificate that did not sign this server's certificate (for negative tests)."""
        return self.tls_files.untrusted_ca_file

    def ssl_context(self) -> ssl.SSLContext:
        """Return a client TLS context that trusts only this server's CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def imap(self, user: MailUser | str, password: str | None = None) -> imaplib.IMAP4_SSL:
        """Return an IMAPS connection logged in as ``user``; raise imaplib.IMAP4.error on failure."""
        conn = imaplib.IMAP4_SSL(self.host, self.ports["imaps"], ssl_context=self.ssl_context())
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # see DOVECOT-NOTES on Nagle
        conn.login(user_name(user), password or self._password(user))
        return conn

    def pop3(self, user: MailUser | str, password: str | None = None) -> poplib.POP3:
        """Return a POP3 connection over TLS logged in as ``user``; raise poplib.error_proto on failure.

        Implicit TLS (``pop3s``) where the server has it, else STLS on ``pop3``.
        """
        if "pop3s" in self.ports:
            conn: poplib.POP3 = poplib.POP3_SSL(self.host, self.ports["pop3s"], context=self.ssl_context())
        else:
            conn = poplib.POP3(self.host, self.ports["pop3"])
            conn.stls(self.ssl_context())
        conn.user(user_name(user))
        conn.pass_(password or self._password(user))
        return conn

    def _password(self, user: MailUser | str) -> str:
        return user.password if isinstance(user, MailUser) else self._passwords[user]

    # --- seeding and reading back ----------------------------------------------------------

    def seed(self, user: MailUser | str, messages: Iterable[SeedItem]) -> None:
        """APPEND each (folder, raw, flags, internaldate) exactly, creating folders; raise imaplib.IMAP4.error."""
        conn = self.imap(user)
        try:
            mailboxes.seed(conn, self.separator, ((self.server_folder(folder), raw, flags, date)
                                                  for folder, raw, flags, date in messages))
        finally:
            conn.logout()

    def dump(self, user: MailUser | str, *, include_empty: bool = True) -> Dump:
        """Return {"/"-separated folder: [(raw, flags, internaldate)] by UID} of every selectable folder."""
        conn = self.imap(user)
        try:
            found = mailboxes.dump(conn, self.separator, include_empty=include_empty)
        finally:
            conn.logout()
        return {self.user_folder(name): messages for name, messages in found.items()}

    def server_folder(self, folder: tuple[str, ...] | str) -> tuple[str, ...]:
        """Return the server's path of a folder as the user names it (INBOX stays INBOX)."""
        path = tuple(folder.split("/")) if isinstance(folder, str) else tuple(folder)
        if not self.personal_prefix or path == ("INBOX",):
            return path
        return (self.personal_prefix, *path)

    def user_folder(self, name: str) -> str:
        """Return a "/"-separated folder name of ``dump`` without the personal prefix."""
        prefix = self.personal_prefix + "/"
        return name[len(prefix):] if self.personal_prefix and name.startswith(prefix) else name


# --- helpers for the subclasses ------------------------------------------------------------------

def user_name(user: MailUser | str) -> str:
    """Return the login name of ``user``."""
    return user.name if isinstance(user, MailUser) else user


class IsolatedServer(MailServer):
    """A server whose processes all run in a PID namespace of their own (see spawn_isolated)."""

    root: Path
    _process: subprocess.Popen | None = None

    def stop(self) -> None:
        """Stop every process of the server (a no-op when stopped) and remove its directory."""
        process, self._process = self._process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        process.kill()  # and with it every process of the server (see spawn_isolated)
        process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def free_ports(names: tuple[str, ...]) -> dict[str, int]:
    """Return {name: port} of ports on 127.0.0.1 that were free a moment ago."""
    sockets = [socket.socket() for _ in names]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = {name: sock.getsockname()[1] for name, sock in zip(names, sockets)}
    for sock in sockets:
        sock.close()
    return ports


_PRCTL = ctypes.CDLL(None).prctl  # looked up before forking: the child only calls it
_PR_SET_PDEATHSIG = 1


def die_with_parent(signal_number: int = signal.SIGTERM) -> None:
    """In a child before exec: be sent ``signal_number`` when the thread that forked it ends."""
    _PRCTL(_PR_SET_PDEATHSIG, signal_number)


def spawn(command: list[str], log: Path, *, env: Mapping[str, str] | None = None,
          death_signal: int = signal.SIGTERM) -> subprocess.Popen:
    """Start ``command`` with its output appended to ``log``; it gets ``death_signal`` when the tests end."""
    # The kernel signals a child when the *thread* that forked it ends, hence only from the main thread.
    in_main_thread = threading.current_thread() is threading.main_thread()
    with open(log, "ab") as output:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=output, env=env,
                                preexec_fn=(lambda: die_with_parent(death_signal)) if in_main_thread else None)


def spawn_isolated(command: list[str], log: Path, *, env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start ``command`` (as root) in private mount and PID namespaces; see ``spawn``.

    kill() of the result, or the end of the test process, kills every process ``command``
    started, even those that dropped root or left their session (``gam_server``): the first
    process of a PID namespace, here a root shell, takes them all with it. unshare ignores
    SIGTERM, so stop it with SIGKILL.
    """
    # The shell waits rather than exec: a server that drops root would lose the death signal.
    isolated = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--mount-proc",
                "/bin/sh", "-c", '"$@" & wait', "isolated", *command]
    return spawn(isolated, log, env=env, death_signal=signal.SIGKILL)


def wait_listening(process: subprocess.Popen, ports: Iterable[int], timeout: float = START_TIMEOUT) -> bool:
    """Return True once every port accepts connections; False if ``process`` ends or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if all(accepts(port) for port in ports):
            return True
        time.sleep(0.02)
    return False


def listening_in_namespace(process: subprocess.Popen, ports: Iterable[int]) -> bool:
    """Return True if processes in the mount namespace of ``process`` (see ``spawn_isolated``) listen on every port.

    A server whose port another process took between ``free_ports`` and its start may go on
    without it (Cyrus's master does), and then the other process answers ``wait_listening``.
    """
    namespace = _mount_namespace(process.pid)
    while namespace == _mount_namespace(os.getpid()) and process.poll() is None:
        time.sleep(0.01)  # unshare has not made its namespace yet
        namespace = _mount_namespace(process.pid)
    ours = _socket_inodes(namespace)
    listeners: dict[int, set[int]] = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A":  # LISTEN
            listeners.setdefault(int(fields[1].rsplit(":", 1)[1], 16), set()).add(int(fields[9]))
    return all(listeners.get(port, set()) & ours for port in ports)


def _mount_namespace(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return ""


def _socket_inodes(namespace: str) -> set[int]:
    inodes: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or _mount_namespace(int(entry.name)) != namespace:
            continue
        try:
            targets = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
        except OSError:
            continue  # ended meanwhile
        inodes.update(int(target[8:-1]) for target in targets if target.startswith("socket:["))
    return inodes


def accepts(port: int) -> bool:
    """Return True if something accepts a TCP connection on 127.0.0.1:``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def chown_tree(top: Path, uid: int, gid: int) -> None:
    """Give ``top`` and everything below it to ``uid``:``gid``."""
    os.chown(top, uid, gid)
    for directory, dirs, files in os.walk(top):
        for entry in dirs + files:
            os.chown(os.path.join(directory, entry), uid, gid)


def check_root(what: str) -> None:
    """Raise ServerUnavailable unless running as root, which every test server needs."""
    if os.geteuid() != 0:
        raise ServerUnavailable(f"the test {what} must be started as root")
