"""-v says what a run does; --debug-imap and --debug-pop3 trace every line, never a password, never a body.

Against the real Dovecot: it logs in with AUTHENTICATE PLAIN (SASL-IR) unless asked for LOGIN
(?auth=login), and POP3 with USER/PASS unless asked for AUTH PLAIN (?auth=plain).
"""

from __future__ import annotations

import base64
import re
from datetime import datetime, timezone

import pytest

from migrator.cli import main
from migrator.cli.diagnostics import start_logging
from migrator.core.errors import ExitCode

WHEN = datetime(2024, 3, 4, 10, 0, tzinfo=timezone.utc)
BODY = b"the body of the traced message, which a trace must not show"


@pytest.fixture(autouse=True)
def quiet_afterwards():
    yield
    start_logging(False, False, False, None)  # later tests must not write to this test's captured stderr


@pytest.fixture
def seeded(dovecot, user, monkeypatch):
    dovecot.seed(user, [(("INBOX",), b"Subject: traced\r\nMessage-ID: <t@example.com>\r\n\r\n" + BODY + b"\r\n",
                         [], WHEN)])
    monkeypatch.setenv("MIGRATOR_TEST_PW", user.password)
    return user


def url(server, user, scheme: str, *params: str) -> str:
    query = "&".join(["password_env=MIGRATOR_TEST_PW", f"ca_file={server.ca_file}", *params])
    return f"{scheme}://{user.name}@{server.host}:{server.ports[scheme]}?{query}"


def secrets(user) -> list[str]:
    token = base64.b64encode(b"\0" + user.name.encode() + b"\0" + user.password.encode()).decode()
    return [user.password, token]


def run(args: list[str], capsys) -> str:
    assert main(args) == ExitCode.OK
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return err


@pytest.mark.parametrize("params, login", [
    ((), r"M\d+ AUTHENTICATE PLAIN \*\*\*"),
    (("auth=login",), r'M\d+ LOGIN "{user}" \*\*\*'),
])
def test_imap_trace_masks_the_login(dovecot, seeded, capsys, tmp_path, params, login):
    err = run(["--debug-imap", "copy", url(dovecot, seeded, "imaps", *params), f"maildir:{tmp_path}/md",
               "--folder", "INBOX", "--no-state"], capsys)
    assert re.search(r"imap#\d+ 127\.0\.0\.1:\d+ S: \* OK ", err)
    assert re.search(r"imap#\d+ 127\.0\.0\.1:\d+ C: " + login.format(user=seeded.name) + "$", err, re.M)
    assert re.search(r"S: \* 1 FETCH \(.*\{\d+ bytes\}", err), "the message is shown as its size"
    assert BODY.decode() not in err
    assert not [secret for secret in secrets(seeded) if secret in err]


@pytest.mark.parametrize("params, login", [((), "PASS ***"), (("auth=plain",), "AUTH PLAIN ***")])
def test_pop3_trace_masks_the_login(dovecot, seeded, capsys, tmp_path, params, login):
    # Given after the command, as imapsync's and mbsync's users may type them.
    err = run(["copy", url(dovecot, seeded, "pop3s", *params), f"maildir:{tmp_path}/md", "--no-state",
               "--debug-pop3"], capsys)
    lines = [line.split(" S: ", 1)[-1].split(" C: ", 1)[-1] for line in err.splitlines()]
    assert lines[0].startswith("+OK ") and login in lines
    assert "RETR 1" in lines and re.fullmatch(r"\{\d+ bytes\}", lines[lines.index("RETR 1") + 2])
    assert BODY.decode() not in err
    assert not [secret for secret in secrets(seeded) if secret in err]


def test_verbose_says_what_the_run_does(dovecot, seeded, capsys, tmp_path):
    err = run(["copy", "-v", url(dovecot, seeded, "imaps"), f"maildir:{tmp_path}/md", "--folder", "INBOX",
               "--no-state"], capsys)
    assert f"connecting to imaps://{seeded.name}@127.0.0.1:{dovecot.ports['imaps']}" in err
    assert f"{seeded.name}@127.0.0.1: opened INBOX (read-only, 1 message)" in err
    assert "folder INBOX: 1 of 1 message to copy" in err
    assert "folder INBOX: writing a batch of 1 message" in err
    assert " C: " not in err, "no protocol trace unless asked for"


def test_traces_go_to_a_private_file_when_asked(dovecot, seeded, capsys, tmp_path):
    trace = tmp_path / "trace.log"
    err = run(["--debug-imap", "--debug-file", str(trace), "folders", url(dovecot, seeded, "imaps")], capsys)
    assert err == ""
    assert " C: M1 AUTHENTICATE PLAIN ***" in trace.read_text()
    assert trace.stat().st_mode & 0o777 == 0o600
    assert main(["folders", url(dovecot, seeded, "imaps")]) == ExitCode.OK
    assert capsys.readouterr().err == "" and trace.read_text().count("AUTHENTICATE") == 1, "traces only when asked"


def test_an_unwritable_debug_file_is_one_sentence(tmp_path, capsys):
    assert main(["-v", "--debug-file", str(tmp_path / "no" / "such" / "dir"), "folders", f"maildir:{tmp_path}"]) \
        == ExitCode.USAGE
    assert capsys.readouterr().err == (f"migrator: cannot write the debug log {tmp_path}/no/such/dir: "
                                       "No such file or directory; check --debug-file\n")
