"""What a server may not do to a run: send a message over the limit on one message, or stall.

End to end through the command line against the real Dovecot, over IMAP and POP3. A message over
MIGRATOR_MAX_MESSAGE_SIZE is one failed message, named, and the rest of the folder is copied. A server
that stops making progress (a proxy on a real socket trickling its bytes, one a second) ends the run
within a bound set by MIGRATOR_STALL_SECONDS, with one clear line, exit status 1 and the profile's lock
released; the rerun then ends exact.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from harness.endpoints import url
from harness.proxy import FaultProxy
from migrator.cli import main
from migrator.profile import load_profile, plan_run
from migrator.state.lock import locked_by

SCHEMES = {"imap": "imaps", "pop3": "pop3s"}
WHEN = datetime(2024, 5, 6, 7, 8, tzinfo=timezone.utc)


def message(number: int, size: int) -> bytes:
    """Return a message of about ``size`` bytes, CRLF throughout, as both IMAP and POP3 serve it back."""
    line = b"%05d the quick brown fox jumps over the lazy dog, again and again\r\n" % number
    return b"Message-ID: <%d@limits.test>\r\nSubject: number %d\r\n\r\n" % (number, number) + line * (size // len(line))


def maildir_inbox(path: Path) -> list[bytes]:
    """Return the messages of a Maildir's INBOX, read from its files (not through migrator), sorted."""
    return sorted(file.read_bytes() for file in [*path.glob("cur/*"), *path.glob("new/*")])


@pytest.mark.parametrize("kind", ["imap", "pop3"])
def test_a_message_over_the_limit_fails_alone_and_the_rest_is_copied(dovecot, user, kind, tmp_path, capsys,
                                                                     monkeypatch):
    raws = [message(1, 3000), message(2, 60_000), message(3, 3000)]
    dovecot.seed(user, [(("INBOX",), raw, [], WHEN) for raw in raws])
    copy = ["copy", url(dovecot, user, SCHEMES[kind]), f"maildir:{tmp_path / 'md'}", "--state", str(tmp_path / "s")]
    monkeypatch.setenv("MIGRATOR_MAX_MESSAGE_SIZE", "20KB")
    assert main(copy) == 1
    err = capsys.readouterr().err
    assert re.search(rf"migrator: failed: folder 'INBOX', message \S+: not read: it is {len(raws[1])} bytes "
                     r"\(60\.\d KB\), over the limit of 20\.0 KB on one message \(MIGRATOR_MAX_MESSAGE_SIZE\)\n", err)
    assert maildir_inbox(tmp_path / "md") == sorted([raws[0], raws[2]])
    monkeypatch.delenv("MIGRATOR_MAX_MESSAGE_SIZE")
    assert main(copy) == 0
    assert maildir_inbox(tmp_path / "md") == sorted(raws)


@pytest.mark.parametrize("name, value, expected", [
    ("MIGRATOR_MAX_MESSAGE_SIZE", "big", "is not a size: write it as 500MB, 4GB or a number of bytes"),
    ("MIGRATOR_STALL_SECONDS", "soon", "is not a number of seconds above 0, such as 300"),
    ("MIGRATOR_STALL_SECONDS", "0", "is not a number of seconds above 0, such as 300"),
])
def test_a_bad_limit_stops_the_run_before_anything_is_written(dovecot, user, name, value, expected, tmp_path, capsys,
                                                             monkeypatch):
    monkeypatch.setenv(name, value)
    assert main(["copy", url(dovecot, user, "imaps"), f"maildir:{tmp_path / 'md'}", "--no-state"]) == 2
    assert capsys.readouterr().err == f"migrator: {name}={value!r} {expected}\n"
    assert not (tmp_path / "md").exists()


NIGHTLY = """\
version: 1
source:
  type: {kind}
  host: 127.0.0.1
  port: ${{SOURCE_PORT}}
  user: {user}
  password_env: PW_{user}
  ca_file: {ca_file}
targets:
  - type: maildir
    path: md
options:
  quiet: true
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["imap", "pop3"])
def test_a_stalled_server_ends_the_run_and_frees_its_lock(dovecot, user, kind, tmp_path):
    raws = [message(n, 20_000) for n in range(30)]
    dovecot.seed(user, [(("INBOX",), raw, [], WHEN) for raw in raws])
    profile = tmp_path / "nightly.yaml"
    profile.write_text(NIGHTLY.format(kind=kind, user=user.name, ca_file=dovecot.ca_file))
    profile.chmod(0o600)
    environment = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "MIGRATOR_STALL_SECONDS": "2",
                   f"PW_{user.name}": user.password}
    # From 200 KB on (in the middle of the messages), and on every later connection from its first
    # byte, the server sends one byte a second: each read returns in time, and nothing completes.
    proxy = FaultProxy(dovecot.host, dovecot.ports[SCHEMES[kind]], fault="trickle", after=200_000, repeat=True)
    try:
        started = time.monotonic()
        stalled = subprocess.run([sys.executable, "-m", "migrator", "run", str(profile)], capture_output=True,
                                 text=True, env={**environment, "SOURCE_PORT": str(proxy.port)}, timeout=300)
        took = time.monotonic() - started
    finally:
        proxy.close()
    assert stalled.returncode == 1, stalled.stderr
    assert took < 60  # it ran for ever before
    assert "the server stalled: no progress for 2 s" in stalled.stderr and "Traceback" not in stalled.stderr
    assert locked_by(plan_run(load_profile(profile, environ=environment | {"SOURCE_PORT": "1"})).lock_path) is None
    rerun = subprocess.run([sys.executable, "-m", "migrator", "run", str(profile)], capture_output=True, text=True,
                           env={**environment, "SOURCE_PORT": str(dovecot.ports[SCHEMES[kind]])}, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert maildir_inbox(tmp_path / "md") == sorted(raws)
