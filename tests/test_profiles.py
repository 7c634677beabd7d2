"""Profiles: loading and validation with exact error places, the example profiles end to end, status and log."""

from __future__ import annotations

import email
import mailbox
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from harness.corpus import expected_dump, seed_items
from migrator.cli import main
from migrator.core.errors import ConfigError
from migrator.core.message import Flag, Flags, Message
from migrator.endpoints.kinds import KINDS
from migrator.pipeline.foldermap import MapRule
from migrator.pipeline.options import DEFAULT_CONNECTIONS
from migrator.profile import load_profile, plan_run
from migrator.profile.schema import size
from migrator.profile.template import TEMPLATE

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "profiles").glob("*.yaml"))
UTC = timezone.utc
DUMMY_ENV = {name: "1993" if name.endswith("PORT") else "x" for name in (
    "IMAP_HOST", "IMAP_PORT", "IMAP_USER", "IMAP_CA_FILE", "POP3_HOST", "POP3_PORT", "POP3_USER", "POP3_CA_FILE",
    "OLD_IMAP_HOST", "OLD_IMAP_PORT", "OLD_IMAP_USER", "OLD_IMAP_CA_FILE",
    "NEW_IMAP_HOST", "NEW_IMAP_PORT", "NEW_IMAP_USER", "NEW_IMAP_CA_FILE")}


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private HOME and state directory, so ~ in the example profiles points into tmp_path."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "home" / ".local" / "state"))
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def write(directory: Path, text: str, name: str = "profile.yaml", mode: int = 0o600) -> Path:
    path = directory / name
    path.write_text(text)
    path.chmod(mode)
    return path


MINIMAL = """\
version: 1
source:
  type: imap
  host: mail.example.com
  user: alice
  password_env: PW
targets:
  - type: maildir
    path: backup
"""


# --- loading and validating ------------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_profile_validates(example):
    profile = load_profile(example, environ=DUMMY_ENV)
    plan = plan_run(profile)
    assert plan.targets and plan.source.kind in ("imap", "pop3", "maildir")
    assert profile.warnings == ()


def test_examples_are_the_six_documented_ones():
    assert [p.name for p in EXAMPLES] == [
        "gmail-to-microsoft365.yaml", "leave-server.yaml", "microsoft365-to-own-server.yaml", "nightly-backup.yaml",
        "pop3-archive.yaml", "restore.yaml",
    ]


def test_template_validates_and_init_writes_it_privately(tmp_path, capsys):
    path = tmp_path / "new.yaml"
    assert main(["profile", "init", str(path)]) == 0
    assert path.read_text() == TEMPLATE and path.stat().st_mode & 0o777 == 0o600
    assert load_profile(path).source.host == "imap.example.com"
    assert main(["profile", "init", str(path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["profile", "init"]) == 0
    assert capsys.readouterr().out == TEMPLATE


FULL_EXAMPLE = """\
version: 1
source:
  type: pop3
  host: ${HOST}
  port: "995"
  tls: implicit
  user: alice
  password_command: printf 'first line\\nsecond line\\n'
  ca_file: certs/ca.pem
  auth: plain
targets:
  - type: maildir
    path: ~/Mail/alice
  - type: imap
    host: imap.new.example
    tls: starttls
    user: alice@new.example
    password_file: pw.txt
folders:
  include: INBOX
  exclude: [Trash]
  map:
    - INBOX=Archive/OldISP
    - {from: "re:^Lists/(.*)", to: 'Archive/\\1'}
filters:
  since: 2020-01-31
  before: 2025-01-01T12:00:00+02:00
  max_size: 1.5 GB
  unseen_only: ${UNSEEN}
state: state/alice.sqlite
delete_after: true
keep_days: 7
options:
  dry_run: false
  quiet: yes
  connections: 1
"""


def test_full_example_converts_every_key(tmp_path, home):
    path = write(tmp_path, FULL_EXAMPLE)
    profile = load_profile(path, environ={"HOST": "pop.example.com", "UNSEEN": "true"})
    plan = plan_run(profile)
    source = plan.source
    assert (source.host, source.port, source.tls, source.auth) == ("pop.example.com", 995, "implicit", "plain")
    assert source.ca_file == str(tmp_path / "certs" / "ca.pem")
    assert source.password.resolve(source.account) == "first line"
    maildir, imap = plan.targets
    assert maildir.path == home / "Mail" / "alice"
    assert (imap.port, imap.tls, imap.password.file) == (143, "starttls", str(tmp_path / "pw.txt"))
    rules = plan.options.rules
    assert (rules.include, rules.exclude) == (("INBOX",), ("Trash",))
    assert rules.target_path(("INBOX",)) == ("Archive", "OldISP")
    assert rules.target_path(("Lists", "python")) == ("Archive", "python")
    filters = plan.options.message_filter
    assert filters.since == datetime(2020, 1, 31).astimezone()
    assert filters.before == datetime(2025, 1, 1, 10, tzinfo=UTC)
    assert (filters.max_size, filters.unseen_only) == (1_500_000_000, True)
    assert plan.state_path == tmp_path / "state" / "alice.sqlite"
    assert (plan.options.delete_after, plan.options.keep_days, plan.quiet) == (True, 7, True)


def test_defaults_state_path_and_ports(tmp_path, home):
    plan = plan_run(load_profile(write(tmp_path, MINIMAL, name="my-backup.yaml")))
    assert plan.state_path == home / ".local" / "state" / "migrator" / "my-backup.sqlite"
    assert plan.lock_path.name == "my-backup.sqlite.lock"
    assert (plan.source.port, plan.source.tls) == (993, "implicit")
    assert plan.targets[0].path == tmp_path / "backup"
    assert not plan.options.deletes


@pytest.mark.parametrize("text, expected", [
    ("25MB", 25_000_000), ("1.5 GB", 1_500_000_000), ("512 KiB", 524_288), ("100", 100), (4096, 4096), ("2k", 2000),
])
def test_sizes(text, expected):
    assert size(text) == expected


def test_dollar_escape_and_variables_inside_strings(tmp_path):
    text = MINIMAL.replace("user: alice", "user: ${WHO}-x").replace("path: backup", "path: $${HOME}/b$x")
    profile = load_profile(write(tmp_path, text), environ={"WHO": "bob"})
    assert profile.source.user == "bob-x"
    assert profile.targets[0].path == tmp_path / "${HOME}" / "b$x"


def test_literal_password_readable_by_others_warns(tmp_path):
    text = MINIMAL.replace("password_env: PW", "password: hunter2")
    assert "other users can read it" in load_profile(write(tmp_path, text, mode=0o644)).warnings[0]
    assert load_profile(write(tmp_path, text, mode=0o600)).warnings == ()
    from_env = MINIMAL.replace("password_env: PW", "password: ${PW}")
    assert load_profile(write(tmp_path, from_env, mode=0o644), environ={"PW": "x"}).warnings == ()


def test_literal_password_warning_on_stderr_of_check(tmp_path, capsys):
    path = write(tmp_path, MINIMAL.replace("password_env: PW", "password: hunter2"), mode=0o640)
    assert main(["profile", "check", str(path)]) == 0
    captured = capsys.readouterr()
    assert "warning" in captured.err and "chmod 600" in captured.err and "hunter2" not in captured.err
    assert "is a valid profile" in captured.out


BAD_PROFILES = {
    "typo-key": (MINIMAL.replace("  host:", "  hots:"), 4, "source: unknown key 'hots'; did you mean 'host'?"),
    "wrong-type": (MINIMAL.replace("  user: alice", "  user: alice\n  port: abc"), 6,
                   "source: port expects a port number from 1 to 65535, got 'abc'"),
    "number-as-password": (MINIMAL.replace("password_env: PW", "password: 0123"), 6, "password expects a string"),
    "no-password": (MINIMAL.replace("  password_env: PW\n", ""), 3,
                     "source: no password source for alice@mail.example.com"),
    "unknown-type": (MINIMAL.replace("type: maildir", "type: maildri"), 8,
                     f"target 1: type expects one of {', '.join(KINDS)}, got 'maildri'"),
    "yaml-syntax": (MINIMAL.replace("  user: alice", " user: alice"), 5, "not valid YAML"),
    "unclosed-quote": (MINIMAL.replace("path: backup", 'path: "backup'), 9, "a quote opened here is never closed"),
    "pop3-target": (MINIMAL.replace("type: maildir\n    path: backup",
                                    "type: pop3\n    host: h\n    user: u\n    password_env: P"), 8,
                    "target 1: pop3 cannot be a target"),
    "delete-imap": (MINIMAL + "delete_after: true\n", 10, "delete_after applies to pop3 sources only"),
    "missing-variable": (MINIMAL.replace("mail.example.com", "${NO_SUCH_VARIABLE_HERE}"), 4,
                         "the environment variable NO_SUCH_VARIABLE_HERE is not set"),
    "duplicate-key": (MINIMAL.replace("  user: alice", "  user: alice\n  user: bob"), 6, "appears twice"),
    "no-version": (MINIMAL.replace("version: 1\n", ""), 1, "no version: start the profile with `version: 1`"),
    "future-version": (MINIMAL.replace("version: 1", "version: 2"), 1, "version expects the schema version, 1"),
    "key-for-other-type": (MINIMAL.replace("    path: backup", "    path: backup\n    host: x"), 10,
                           "host does not apply to a maildir endpoint"),
    "bad-size": (MINIMAL + "filters:\n  max_size: 25 parsecs\n", 11, "max_size expects a size like 25MB"),
    "empty-window": (MINIMAL + "filters:\n  since: 2024-05-01\n  before: 2024-01-01\n", 12,
                     "before must be later than since"),
    "bad-map": (MINIMAL + "folders:\n  map: [Archive]\n", 11, "cannot read the folder map 'Archive'"),
    "targets-not-list": (MINIMAL.replace("  - type: maildir\n    path: backup", "  type: maildir"), 8,
                         "targets expects a list of endpoints"),
    "top-level-typo": (MINIMAL + "optoins:\n  quiet: true\n", 10, "unknown key 'optoins'; did you mean 'options'?"),
}


@pytest.mark.parametrize("name", BAD_PROFILES)
def test_bad_profile_is_one_line_with_its_place_and_exit_2(name, tmp_path, capsys):
    text, line, expected = BAD_PROFILES[name]
    path = write(tmp_path, text)
    assert main(["profile", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"migrator: {path}, line {line}, column "), err
    assert expected in err


def test_bad_profile_from_a_subprocess(tmp_path):
    path = write(tmp_path, BAD_PROFILES["typo-key"][0])
    done = subprocess.run([sys.executable, "-m", "migrator", "run", str(path)], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2
    assert done.stderr == f"migrator: {path}, line 4, column 3: source: unknown key 'hots'; did you mean 'host'?\n"


def test_missing_and_empty_profiles(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert "no profile" in capsys.readouterr().err
    assert main(["profile", "check", str(write(tmp_path, "# nothing\n"))]) == 2
    assert "is empty" in capsys.readouterr().err


def test_connections_reach_the_copy_options_and_default_to_the_pipelines(tmp_path):
    given = plan_run(load_profile(write(tmp_path, MINIMAL + "options:\n  connections: 4\n", "four.yaml")))
    assert given.options.connections == 4
    assert plan_run(load_profile(write(tmp_path, MINIMAL))).options.connections == DEFAULT_CONNECTIONS


def test_map_rules_from_profile_match_the_command_line_form(tmp_path):
    profile = load_profile(write(tmp_path, MINIMAL + "folders:\n  map:\n    - {from: Old, to: New/Place}\n"))
    assert profile.renames == (MapRule.parse("Old=New/Place"),)
    with pytest.raises(ConfigError, match="line 12, column 8: folders map: from cannot contain '='"):
        load_profile(write(tmp_path, MINIMAL + "folders:\n  map:\n    - {from: a=b, to: c}\n"))


@pytest.mark.parametrize(
    "command", [["run"], ["status"], ["schedule"], ["profile"], ["profile", "check"], ["profile", "init"]]
)
def test_every_command_has_help(command, capsys):
    assert main([*command, "--help"]) == 0
    assert "Usage" in capsys.readouterr().out


# --- the example profiles end to end against Dovecot -----------------------------------------


def sample_messages() -> list[Message]:
    when = datetime(2024, 2, 1, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    layout = [(("INBOX",), Flags.of(Flag.SEEN)), (("INBOX",), Flags()), (("Projects", "2024"), Flags.of(Flag.FLAGGED)),
              (("Archive",), Flags.of(keywords=("work",))), (("Junk",), Flags()), (("Trash",), Flags.of(Flag.SEEN))]
    return [Message(f"Message-ID: <p{i}@test>\r\nSubject: sample {i}\r\n\r\nbody {i}\r\n".encode(), flags,
                    when + timedelta(hours=i), folder)
            for i, (folder, flags) in enumerate(layout)]


def imap_env(monkeypatch, server, user, prefix: str = "IMAP") -> None:
    monkeypatch.setenv(f"{prefix}_HOST", server.host)
    monkeypatch.setenv(f"{prefix}_PORT", str(server.ports["imaps"]))
    monkeypatch.setenv(f"{prefix}_USER", user.name)
    monkeypatch.setenv(f"{prefix}_PASSWORD", user.password)
    monkeypatch.setenv(f"{prefix}_CA_FILE", str(server.ca_file))


def message_ids(messages) -> list[str]:
    return sorted(email.message_from_bytes(m if isinstance(m, bytes) else m.raw)["Message-ID"] for m in messages)


def mbox_message_ids(root: Path) -> dict[str, list[str]]:
    """Read every mbox file under ``root`` with the standard library: {relative path: Message-IDs}."""
    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
        box = mailbox.mbox(path, create=False)
        found[str(path.relative_to(root))] = sorted(m["Message-ID"] for m in box)
        box.close()
    return found


def test_nightly_backup_runs_incrementally_with_status_and_log(dovecot, user, make_user, home, monkeypatch, capsys):
    messages = sample_messages()
    dovecot.seed(user, seed_items(messages))
    imap_env(monkeypatch, dovecot, user)
    profile = str(REPO / "profiles" / "nightly-backup.yaml")
    log = home / "nightly.log"
    assert main(["run", profile, "--log", str(log)]) == 0
    assert capsys.readouterr().out == ""  # quiet: true in the profile
    new = Message(
        b"Message-ID: <p-new@test>\r\nSubject: later\r\n\r\nlater\r\n", Flags(), datetime(2024, 3, 1, tzinfo=UTC)
    )
    dovecot.seed(user, seed_items([new]))
    assert main(["run", profile, "--log", str(log)]) == 0

    kept = [m for m in messages if m.folder[0] not in ("Junk", "Trash")] + [new]
    archive = dovecot.add_archive_user(f"{user.name}-nightly", "pw", home / "Mail" / "nightly-backup")
    assert dovecot.dump(archive, include_empty=False) == expected_dump(kept)

    lines = log.read_text().splitlines()
    assert [line.split(" ", 2)[2].split(":")[0] for line in lines if "start" in line or "summary" in line] == \
        ["start", "summary", "start", "summary"]
    assert "folder INBOX done: 2 copied, 0 failed" in log.read_text()
    assert ": 1 copied, 4 already there" in lines[-1] and lines[-1].endswith("exit status 0")

    assert main(["status", profile]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert "nightly-backup" in rows[0] and len(rows) == 4
    assert all(row.endswith("ok (exit 0)") for row in rows[2:])
    assert rows[2].split()[5:9] == ["1", "4", "0", "0"] and rows[3].split()[5:9] == ["4", "0", "0", "0"]


def test_pop3_archive_leaves_mail_on_the_server(dovecot, user, home, monkeypatch, capsys):
    first = sample_messages()[:2]
    dovecot.seed(user, seed_items(first))
    monkeypatch.setenv("POP3_HOST", dovecot.host)
    monkeypatch.setenv("POP3_PORT", str(dovecot.ports["pop3s"]))
    monkeypatch.setenv("POP3_USER", user.name)
    monkeypatch.setenv("POP3_PASSWORD", user.password)
    monkeypatch.setenv("POP3_CA_FILE", str(dovecot.ca_file))
    profile = str(REPO / "profiles" / "pop3-archive.yaml")
    assert main(["status", profile]) == 0
    assert "pop3-archive has not run yet" in capsys.readouterr().out
    assert main(["run", profile, "--dry-run"]) == 0
    assert "dry run: would copy 2 messages" in capsys.readouterr().out
    assert not (home / "Mail" / "pop3-archive").exists()
    assert main(["profile", "check", profile, "--connect"]) == 0
    assert "logged in to the source: 1 folder: INBOX" in capsys.readouterr().out
    assert main(["run", profile, "--quiet"]) == 0
    later = Message(
        b"Message-ID: <pop-later@test>\r\nSubject: later\r\n\r\nx\r\n", Flags(), datetime(2024, 3, 1, tzinfo=UTC)
    )
    dovecot.seed(user, seed_items([later]))
    assert main(["run", profile, "--quiet"]) == 0
    archived = mbox_message_ids(home / "Mail" / "pop3-archive")
    assert list(archived.values()) == [message_ids([*first, later])]
    assert "Archive" in next(iter(archived)) and "POP3" in next(iter(archived))
    assert len(dovecot.dump(user)["INBOX"]) == 3
    assert main(["status", profile]) == 0
    results = [row.rsplit("  ", 1)[-1] for row in capsys.readouterr().out.splitlines()[2:]]
    assert results == ["ok (exit 0)", "ok (exit 0)", "ok (exit 0) (dry run)"]
    monkeypatch.setenv("POP3_PASSWORD", "wrong")
    assert main(["profile", "check", profile, "--connect"]) == 3
    assert "cannot log in" in capsys.readouterr().err


def test_leave_server_copies_to_maildir_mbox_and_a_new_account(dovecot, user, make_user, home, monkeypatch):
    messages = sample_messages()
    dovecot.seed(user, seed_items(messages))
    new_account = make_user()
    imap_env(monkeypatch, dovecot, user, prefix="OLD_IMAP")
    imap_env(monkeypatch, dovecot, new_account, prefix="NEW_IMAP")
    assert main(["run", str(REPO / "profiles" / "leave-server.yaml"), "--quiet"]) == 0

    renamed = [Message(m.raw, m.flags, m.received, ("Imported", *m.folder) if m.folder[0] == "Projects" else m.folder)
               for m in messages]
    assert dovecot.dump(new_account, include_empty=False) == expected_dump(renamed)
    archive = dovecot.add_archive_user(f"{user.name}-leave", "pw", home / "Mail" / "old-provider")
    assert dovecot.dump(archive, include_empty=False) == expected_dump(renamed)
    in_mbox = mbox_message_ids(home / "Mail" / "old-provider-mbox")
    assert sorted(i for ids in in_mbox.values() for i in ids) == message_ids(messages)


def test_restore_puts_the_nightly_backup_into_an_account(dovecot, user, make_user, home, monkeypatch):
    messages = [m for m in sample_messages() if m.folder[0] not in ("Junk", "Trash")]
    dovecot.seed(user, seed_items(messages))
    imap_env(monkeypatch, dovecot, user)
    assert main(["run", str(REPO / "profiles" / "nightly-backup.yaml")]) == 0
    fresh = make_user()
    imap_env(monkeypatch, dovecot, fresh)
    restore = str(REPO / "profiles" / "restore.yaml")
    assert main(["run", restore, "--quiet"]) == 0
    assert main(["run", restore, "--quiet"]) == 0  # a rerun uploads nothing twice
    assert dovecot.dump(fresh, include_empty=False) == expected_dump(messages)


def test_log_records_a_failed_start(tmp_path, capsys):
    log = tmp_path / "run.log"
    path = write(tmp_path, BAD_PROFILES["typo-key"][0])
    assert main(["run", str(path), "--log", str(log)]) == 2
    line = log.read_text().strip()
    assert "profile: stopped:" in line and "unknown key 'hots'" in line and line.endswith("(exit status 2)")
    assert log.stat().st_mode & 0o777 == 0o600
