"""The command line a newcomer meets first: help, filters and logs on copy, usage errors, --traceback, --version.

Sources are local archives written with the stores; what a copy wrote is read back with the
standard library's mailbox module.
"""

from __future__ import annotations

import mailbox
import re
import subprocess
import sys
from datetime import datetime
from importlib import metadata
from pathlib import Path

import pytest

from migrator.cli import main
from migrator.core.errors import ExitCode
from migrator.core.message import Message
from migrator.endpoints.endpoint import parse_endpoint
from tests.support.archives import write_archive

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


# --- 1. help: real names, the endpoint forms, the server options, the exit codes --------------------


@pytest.mark.parametrize(("command", "usage"), [
    (["copy"], "copy [OPTIONS] SOURCE TARGET..."),
    (["folders"], "folders [OPTIONS] ENDPOINT"),
    (["login"], "login [OPTIONS] ENDPOINT"),
    (["verify"], "verify [OPTIONS] SOURCE TARGET"),
    (["run"], "run [OPTIONS] PROFILE"),
    (["schedule"], "schedule [OPTIONS] PROFILE"),
    (["status"], "status [OPTIONS] PROFILE"),
    (["profile", "check"], "profile check [OPTIONS] PROFILE"),
    (["profile", "init"], "profile init [OPTIONS] [PATH]"),
])
def test_help_names_arguments_and_values_as_written(command, usage, capsys):
    code, out, _ = run_cli([*command, "--help"], capsys)
    assert code == 0
    assert out.startswith(f"Usage: migrator {usage}\n")
    assert not re.search(r"<[a-z][a-z ]*>|\{[a-z_]+\}", out), out  # no typer placeholders such as <str> or {source}


def test_copy_help_shows_endpoints_server_options_and_exit_codes(capsys):
    _, out, _ = run_cli(["copy", "--help"], capsys)
    for form in ("imaps://USER@HOST[:PORT]", "imap://USER@HOST[:PORT]", "pop3s://USER@HOST[:PORT]",
                 "pop3://USER@HOST[:PORT]", "maildir:PATH", "mbox:PATH", "eml:PATH", "pst:PATH",
                 "?password_env=VAR", "?password_file=PATH", "?password_command=CMD", "?ca_file=PATH", "?tls="):
        assert form in out
    for option in ("--folder GLOB", "--since DATE", "--before DATE", "--max-size SIZE", "--log FILE", "--state FILE"):
        assert option in out
    for code in ExitCode:
        assert re.search(rf"^\s+{int(code)}\s+\w", out, re.MULTILINE), f"exit code {int(code)} is not explained"


def test_main_help_says_where_exit_codes_and_endpoints_are(capsys):
    _, out, _ = run_cli(["--help"], capsys)
    assert "migrator copy --help" in out
    assert all(re.search(rf"^\s+{int(code)}\s+\w", out, re.MULTILINE) for code in ExitCode)


# --- 2. copy takes the profile's filters and the run's --log -------------------------------------------


def test_copy_filters_by_date_and_size_as_profiles_do(tmp_path, capsys):
    source = eml_source(tmp_path / "src", [
        sample(1, on("2024-01-15")), sample(2, on("2024-02-15")), sample(3, on("2024-02-20"), body_size=5000),
        sample(4, on("2024-03-15")),
    ])
    code, out, _ = run_cli(["copy", source, f"maildir:{tmp_path}/dst", "--no-state",
                            "--since", "2024-02-01", "--before", "2024-03-01", "--max-size", "2KB"], capsys)
    assert code == ExitCode.OK, out
    assert maildir_ids(tmp_path / "dst") == ["<m2@test>"]


@pytest.mark.parametrize(("option", "value", "expected"), [
    ("--since", "yesterday", "Invalid value for '--since': expects a date like 2024-01-31"),
    ("--before", "31/12/2024", "Invalid value for '--before': expects a date like 2024-12-31"),
    ("--max-size", "25 parsecs", "Invalid value for '--max-size': expects a size like 25MB"),
])
def test_a_bad_filter_value_is_a_usage_error_naming_what_is_expected(option, value, expected, tmp_path, capsys):
    source = eml_source(tmp_path / "src", [sample(1, on("2024-01-15"))])
    code, _, err = run_cli(["copy", source, f"maildir:{tmp_path}/dst", "--no-state", option, value], capsys)
    assert code == ExitCode.USAGE
    assert expected in err
    assert not (tmp_path / "dst").exists()


def test_an_empty_date_window_is_a_usage_error(tmp_path, capsys):
    source = eml_source(tmp_path / "src", [sample(1, on("2024-01-15"))])
    code, _, err = run_cli(["copy", source, f"maildir:{tmp_path}/dst", "--no-state",
                            "--since", "2024-05-01", "--before", "2024-01-01"], capsys)
    assert code == ExitCode.USAGE
    assert err == "migrator: --before must be later than --since, or no message can match\n"


def test_copy_log_records_the_run_and_a_failed_start(tmp_path, capsys):
    source = eml_source(tmp_path / "src", [sample(1, on("2024-01-15"))])
    log = tmp_path / "copy.log"
    assert main(["copy", source, f"maildir:{tmp_path}/dst", "--no-state", "--quiet", "--log", str(log)]) == 0
    assert main(["copy", source, f"maildir:{tmp_path}/dst", "--no-state", "--folder", "Nope", "--log", str(log)]) == 2
    lines = [line.split(" ", 1)[1] for line in log.read_text().splitlines()]
    assert lines[0] == lines[-2] == f"copy: start: {source} -> maildir:{tmp_path}/dst"
    assert lines[-3].startswith("copy: summary: ") and lines[-3].endswith("exit status 0")
    assert lines[-1].startswith("copy: stopped: no folder of") and lines[-1].endswith("(exit status 2)")
    assert log.stat().st_mode & 0o777 == 0o600


# --- 3. a folder rule that matches nothing is a mistake --------------------------------------------------


def test_a_glob_matching_no_folder_is_exit_2_with_a_suggestion(tmp_path, capsys):
    source = eml_source(tmp_path / "src", [sample(1, on("2024-01-15"), ("Notes",))])
    code, _, err = run_cli(["copy", "--folder", "Ntoes*", source, f"maildir:{tmp_path}/dst", "--no-state"], capsys)
    assert code == ExitCode.USAGE
    assert err.startswith(f"migrator: no folder of {source} matches 'Ntoes*' from --folder (did you mean 'Notes'?)")
    assert f"see them all with `migrator folders {source}`" in err


def test_the_folder_list_in_the_error_says_how_many_it_leaves_out(tmp_path, capsys):
    folders = [(f"Folder {n:02d}",) for n in range(15)]
    source = eml_source(tmp_path / "src", [sample(n, on("2024-01-15"), folder) for n, folder in enumerate(folders)])
    code, _, err = run_cli(["copy", "--folder", "Nope*", source, f"maildir:{tmp_path}/dst", "--no-state"], capsys)
    assert code == ExitCode.USAGE
    listed = re.search(r"it has (.*) and (\d+) more;", err)
    assert listed, err
    assert len(listed.group(1).split(", ")) + int(listed.group(2)) == len(folders)


def test_a_profile_include_matching_no_folder_is_exit_2_and_names_the_profile(tmp_path, capsys):
    source = eml_source(tmp_path / "src", [sample(1, on("2024-01-15"), ("Projects",))])
    profile = tmp_path / "backup.yaml"
    profile.write_text(f"version: 1\nsource:\n  type: eml\n  path: {tmp_path / 'src'}\ntargets:\n"
                       f"  - type: maildir\n    path: {tmp_path / 'dst'}\nstate: {tmp_path / 'state.sqlite'}\n"
                       "folders:\n  include: [\"Projcts/*\"]\n")
    code, _, err = run_cli(["run", str(profile)], capsys)
    assert code == ExitCode.USAGE
    assert f"matches 'Projcts/*' from folders: include in {profile}" in err and source in err
    assert not (tmp_path / "dst").exists()


# --- 4. YAML syntax errors in plain words --------------------------------------------------------------

GOOD_START = "version: 1\nsource:\n  type: maildir\n"


@pytest.mark.parametrize(("text", "place", "words"), [
    (GOOD_START + "\tpath: x\n", "line 4, column 1", "a tab character: YAML indents with spaces only"),
    (GOOD_START + "  path: a: b\n", "line 4, column 10", "a value that contains a colon must be quoted"),
    (GOOD_START + "  path: x\n   type: y\n", "line 5, column 8", "this key is indented more than the one above"),
    (GOOD_START + "  path: x\n type: y\n", "line 5, column 2", "this line's indentation matches none of the lines"),
    (GOOD_START + '  path: "x\n', "line 4, column 9", "a quote opened here is never closed"),
    (GOOD_START + "targets: [a, b\n", "line 4, column 10", "a '[' opened here is never closed"),
])
def test_yaml_syntax_errors_name_the_place_and_the_fix(text, place, words, tmp_path, capsys):
    profile = tmp_path / "p.yaml"
    profile.write_text(text)
    code, _, err = run_cli(["profile", "check", str(profile)], capsys)
    assert code == ExitCode.USAGE
    assert err.startswith(f"migrator: {profile}, {place}: not valid YAML: ") and words in err, err
    for parser_words in ("mapping values are not allowed", "cannot start any token", "<block end>", "scanning"):
        assert parser_words not in err


# --- 5. --traceback adds the traceback and keeps the exit status ------------------------------------------


def test_traceback_keeps_the_exit_status(tmp_path):
    done = subprocess.run([sys.executable, "-m", "migrator", "--traceback", "folders", f"maildir:{tmp_path}/none"],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == ExitCode.USAGE
    assert done.stderr.startswith("Traceback (most recent call last):")
    assert done.stderr.splitlines()[-1].startswith("migrator: no Maildir at")


# --- 6. a usage error creates nothing ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["maildir", "mbox", "eml", "pst"])
def test_a_run_stopped_by_a_folder_mistake_creates_no_target(kind, tmp_path, capsys):
    source = eml_source(tmp_path / "src", [sample(1, on("2024-01-15"))])
    (tmp_path / "out").mkdir()  # a PST is a file: its directory must exist
    target = tmp_path / "out" / ("archive.pst" if kind == "pst" else "archive")
    code, _, err = run_cli(["copy", "--folder", "Nope", source, f"{kind}:{target}", "--no-state"], capsys)
    assert code == ExitCode.USAGE and "matches 'Nope'" in err
    assert list((tmp_path / "out").iterdir()) == []


# --- 7. a password command that is not installed ---------------------------------------------------------


def test_a_missing_password_command_is_named(dovecot, user, capsys):
    program = "no-such-password-program-for-migrator"
    server = (f"imaps://{user.name}@{dovecot.host}:{dovecot.ports['imaps']}"
              f"?ca_file={dovecot.ca_file}&password_command={program} show mail")
    code, _, err = run_cli(["folders", server], capsys)
    assert code == ExitCode.USAGE
    assert f"command not found: {program}; install it, or write its full path in password_command" in err
    assert "status" not in err


# --- 8. --version ----------------------------------------------------------------------------------------


def test_version_is_the_one_pyproject_defines(capsys):
    code, out, _ = run_cli(["--version"], capsys)
    declared = re.search(r'^version = "([^"]+)"$', (REPO / "pyproject.toml").read_text(), re.MULTILINE).group(1)
    assert code == 0
    assert out == f"migrator {declared}\n" == f"migrator {metadata.version('migrator')}\n"
