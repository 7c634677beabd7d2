"""The command line a newcomer meets first: help, filters and logs on copy, usage errors, --traceback, --version.

Sources are local archives written with the stores; what a copy wrote is read back with the
standard library's mailbox module.
"""

from __future__ import annotations

import mailbox
import re
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import pytest

from migrator.cli import main
from migrator.endpoint import parse_endpoint
from migrator.errors import ExitCode
from migrator.message import Message
from tests.support.corpus import write_archive

REPO = Path(__file__).resolve().parent.parent


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def sample(number: int, received: datetime, folder: tuple[str, ...] = ("INBOX",), body_size: int = 10) -> Message:
    raw = f"Message-ID: <m{number}@test>\r\nSubject: sample {number}\r\n\r\n".encode() + b"x" * body_size + b"\r\n"
    return Message(raw, received=received, folder=folder)


def eml_source(path: Path, messages: list[Message]) -> str:
    write_archive(parse_endpoint(f"eml:{path}"), messages)
    return f"eml:{path}"


def maildir_ids(path: Path) -> list[str]:
    box = mailbox.Maildir(path, create=False)
    return sorted(message["Message-ID"] for message in box)


def on(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T12:00:00+00:00")


# --- 7. a password command that is not installed ---------------------------------------------------------


def test_a_missing_password_command_is_named(dovecot, user, capsys):
    program = "no-such-password-program-for-migrator"
    server = (f"imaps://{user.name}@{dovecot.host}:{dovecot.ports['imaps']}"
              f"?ca_file={dovecot.ca_file}&password_command={program} show mail")
    code, _, err = run_cli(["folders", server], capsys)
    assert code == ExitCode.USAGE
    assert f"command not found: {program}; install it, or write its full path in password_command" in err
    assert "status" not in err
