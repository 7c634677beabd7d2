"""The command line: every command has help; user mistakes are one sentence and an exit code."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from migrator.cli import app, main
from migrator.core.errors import ExitCode

COMMANDS = sorted(command.name or command.callback.__name__ for command in app.registered_commands)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    assert main([command, "--help"]) == 0
    assert "Usage: migrator " + command in capsys.readouterr().out


def endpoint(server, user, **params) -> str:
    query = {"password_env": "MIGRATOR_TEST_PW", "ca_file": str(server.ca_file), **params}
    return (
        f"imaps://{user.name}@{server.host}:{server.ports['imaps']}?" + "&".join(f"{k}={v}" for k, v in query.items())
    )


def run_cli(args, password, capsys):
    os.environ["MIGRATOR_TEST_PW"] = password
    code = main(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_copy_backs_up_and_summarises(dovecot, user, tmp_path, capsys):
    dovecot.seed(user, [(("INBOX",), b"Subject: hi\r\n\r\nhello\r\n", ["\\Seen"], _when())])
    code, out, _ = run_cli(["copy", endpoint(dovecot, user), f"maildir:{tmp_path}/md", "--state", str(tmp_path / "s")],
                           user.password, capsys)
    assert code == ExitCode.OK
    assert "1 copied, 0 already there, 0 left out, 0 failed" in out


def test_dry_run_lists_folders_and_writes_nothing(dovecot, user, tmp_path, capsys):
    dovecot.seed(user, [(("Work",), b"Subject: hi\r\n\r\nhello\r\n", [], _when())])
    code, out, _ = run_cli(["copy", "--dry-run", endpoint(dovecot, user), f"mbox:{tmp_path}/mb"], user.password, capsys)
    assert code == ExitCode.OK
    assert "would copy      1 message  (" in out and "Work" in out
    assert not (tmp_path / "mb").exists()


def test_wrong_password_is_exit_3_with_a_fix(dovecot, user, tmp_path, capsys):
    code, _, err = run_cli(["folders", endpoint(dovecot, user)], "not-the-password", capsys)
    assert code == ExitCode.CONNECT
    assert user.name in err and "password" in err.lower()
    assert len(err.strip().splitlines()) == 1


def test_connection_refused_is_exit_3(user, capsys):
    code, _, err = run_cli(["folders", f"imaps://{user.name}@127.0.0.1:{free_port()}?password_env=MIGRATOR_TEST_PW"],
                           "x", capsys)
    assert code == ExitCode.CONNECT
    assert "refused" in err.lower()


def test_untrusted_certificate_is_exit_3_and_names_ca_file(dovecot, user, capsys):
    code, _, err = run_cli(
        ["folders", endpoint(dovecot, user, ca_file=dovecot.untrusted_ca_file)], user.password, capsys
    )
    assert code == ExitCode.CONNECT
    assert "ca_file" in err


def test_unknown_folder_is_exit_2(dovecot, user, tmp_path, capsys):
    code, _, err = run_cli(["copy", "--folder", "Nope", endpoint(dovecot, user), f"maildir:{tmp_path}/md"],
                           user.password, capsys)
    assert code == ExitCode.USAGE
    assert "matches 'Nope' from --folder" in err


def test_unwritable_path_is_exit_2(dovecot, user, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _, err = run_cli(
        ["copy", endpoint(dovecot, user), f"maildir:{blocker}/md", "--no-state"], user.password, capsys
    )
    assert code == ExitCode.USAGE
    assert str(blocker) in err


def test_bad_endpoint_is_exit_2(capsys):
    code, _, err = run_cli(["folders", "imaps://nobody"], "", capsys)
    assert code == ExitCode.USAGE
    assert "names no user" in err


def test_installed_command_runs_as_a_subprocess(tmp_path):
    done = subprocess.run([sys.executable, "-m", "migrator", "folders", f"maildir:{tmp_path}/none"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == ExitCode.USAGE
    assert done.stderr.startswith("migrator: no Maildir at") and "Traceback" not in done.stderr


def _when():
    from datetime import datetime, timezone

    return datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
