"""Provider presets: ``gmail:ADDRESS`` and ``provider: gmail`` stand for a provider's server, login and limits,
and what the user writes as well wins; a message over what the target takes fails up front (APPENDLIMIT).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.endpoints import stand_in_endpoint
from harness.gmail import GmailServer
from migrator.cli import main
from migrator.core.errors import ConfigError
from migrator.core.folder import Role, role_by_name
from migrator.endpoints.endpoint import parse_endpoint
from migrator.endpoints.presets import PRESETS, Limits
from migrator.pipeline.options import CopyOptions
from migrator.pipeline.run import run_copy
from migrator.profile import load_profile, plan_run
from migrator.state.statefile import StateStore
from migrator.stores.imap.appendlimit import announced

REPO = Path(__file__).resolve().parent.parent
SERVERS = {  # the providers' documented IMAP servers (sources in migrator/endpoints/presets.py)
    "gmail": "imap.gmail.com", "microsoft365": "outlook.office365.com", "outlook.com": "outlook.office365.com",
    "yahoo": "imap.mail.yahoo.com", "aol": "imap.aol.com", "icloud": "imap.mail.me.com",
    "fastmail": "imap.fastmail.com",
}


@pytest.mark.parametrize("name", SERVERS)
def test_a_shortcut_names_the_providers_server(name: str) -> None:
    endpoint = parse_endpoint(f"{name}:alice@example.com?password_env=PW")
    assert (endpoint.kind, endpoint.host, endpoint.port, endpoint.tls) == ("imap", SERVERS[name], 993, "implicit")
    assert (endpoint.user, endpoint.provider) == ("alice@example.com", name)
    assert str(endpoint) == f"imaps://alice@example.com@{SERVERS[name]}:993"  # the same state file as the URL's


def test_the_login_follows_the_credentials_given() -> None:
    assert parse_endpoint("microsoft365:bob@example.com").auth == "xoauth2"  # it takes nothing else
    assert parse_endpoint("outlook.com:bob@outlook.com?token_command=oama").auth == "xoauth2"
    assert parse_endpoint("gmail:alice@gmail.com?token_command=oama").auth == "xoauth2"
    assert parse_endpoint("gmail:alice@gmail.com?client_id=my-client").auth == "xoauth2"
    assert parse_endpoint("gmail:alice@gmail.com?password_env=PW").auth is None  # an app password
    assert parse_endpoint("yahoo:carol@yahoo.com?password_env=PW").auth is None
    assert parse_endpoint("gmail:alice@gmail.com?password_env=PW&auth=login").auth == "login"  # the user's wins


def test_the_users_limits_win_over_the_presets() -> None:
    gmail = parse_endpoint("gmail:alice@gmail.com?max_bytes_per_second=1MB&connections=2")
    assert gmail.pace == Limits(max_bytes_per_second=1_000_000, connections=2, append_limit=35_651_584)
    microsoft = parse_endpoint("microsoft365:bob@example.com?append_limit=150MB")
    assert microsoft.pace == Limits(max_messages_per_second=4, append_limit=150_000_000)
    plain = parse_endpoint("imaps://dave@mail.example.com?max_messages_per_second=0.5")
    assert (plain.provider, plain.pace) == (None, Limits(max_messages_per_second=0.5))
    assert parse_endpoint("imaps://dave@imap.gmail.com?provider=gmail&password_env=PW").pace == PRESETS["gmail"].limits


@pytest.mark.parametrize(("text", "words"), [
    ("gmial:alice@gmail.com", "did you mean gmail:…?"),
    ("hotmail:bob@hotmail.com", "PROVIDER:ADDRESS (gmail, microsoft365, outlook.com, yahoo, aol, icloud, fastmail)"),
    ("gmail:", "names no account: write gmail:ADDRESS"),
    ("gmail:alice@gmail.com?conections=2", "unknown option 'conections' in 'gmail:alice@gmail.com?conections=2'"),
    ("imaps://a@b.example?provider=fastmial", "not a provider migrator knows (did you mean 'fastmail'?)"),
    ("icloud:a@icloud.com?max_bytes_per_second=fast", "max_bytes_per_second=fast in"),
    ("icloud:a@icloud.com?connections=0", "not a whole number of connections, 1 or more"),
])
def test_mistakes_are_named(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=None) as error:
        parse_endpoint(text)
    assert words in str(error.value)


def test_folders_of_providers_without_special_use_are_found_by_name() -> None:
    names = {"Sent Items": Role.SENT, "Deleted Items": Role.TRASH, "Junk Email": Role.JUNK,  # Microsoft
             "Sent Messages": Role.SENT, "Deleted Messages": Role.TRASH, "Junk": Role.JUNK,  # iCloud
             "Bulk Mail": Role.JUNK, "Draft": Role.DRAFTS, "Archive": Role.ARCHIVE}  # Yahoo, AOL
    assert {name: role_by_name((name,)) for name in names} == names


# --- profiles ----------------------------------------------------------------------------------


PROFILE = """\
version: 1
source:
  type: imap
  provider: gmail
  user: alice@gmail.com
  password_env: GMAIL_PW
targets:
  - type: imap
    provider: microsoft365
    user: alice@example.com
    token_command: oama access alice@example.com
    max_messages_per_second: 2
  - type: imap
    provider: fastmail
    host: mail.example.net
    port: 1993
    user: alice@example.net
    password_env: FASTMAIL_PW
options:
  max_bytes_per_second: 500KB
"""


def test_a_profile_names_a_provider_and_writes_only_what_differs(tmp_path: Path) -> None:
    path = tmp_path / "move.yaml"
    path.write_text(PROFILE)
    path.chmod(0o600)
    plan = plan_run(load_profile(path))
    gmail, microsoft, fastmail = plan.source, *plan.targets
    assert (gmail.host, gmail.port, gmail.tls, gmail.auth, gmail.provider) == (
        "imap.gmail.com", 993, "implicit", None, "gmail")
    assert (microsoft.host, microsoft.auth, microsoft.pace.max_messages_per_second) == (
        "outlook.office365.com", "xoauth2", 2)
    assert (fastmail.host, fastmail.port) == ("mail.example.net", 1993)  # the user's host and port win
    assert plan.options.limits == Limits(max_bytes_per_second=500_000)


def test_a_provider_is_for_imap_endpoints(tmp_path: Path) -> None:
    path = tmp_path / "pop.yaml"
    path.write_text(PROFILE.replace("type: imap\n  provider: gmail", "type: pop3\n  provider: gmail", 1))
    with pytest.raises(ConfigError, match="provider does not apply to a pop3 endpoint"):
        load_profile(path)


@pytest.mark.parametrize("name", ["gmail-to-microsoft365.yaml", "microsoft365-to-own-server.yaml"])
def test_the_example_migrations_pass_profile_check(name: str, monkeypatch, capsys) -> None:
    for variable in ("NEW_IMAP_HOST", "NEW_IMAP_USER", "NEW_IMAP_CA_FILE"):
        monkeypatch.setenv(variable, "x")
    monkeypatch.setenv("NEW_IMAP_PORT", "993")
    assert main(["profile", "check", str(REPO / "profiles" / name)]) == 0, capsys.readouterr().err


# --- the largest message a target takes ------------------------------------------------------


def raw(number: int, size: int) -> bytes:
    head = f"Message-ID: <big-{number}@example.com>\r\nFrom: ana@example.com\r\nSubject: number {number}\r\n\r\n"
    return head.encode() + b"x" * size + b"\r\n"


@pytest.mark.parametrize("capabilities", [{"IMAP4REV1", "APPENDLIMIT=35651584"}, {"APPENDLIMIT=35651584"}])
def test_appendlimit_is_read_from_the_capabilities(capabilities: set[str]) -> None:
    assert announced(capabilities) == 35_651_584
    assert announced({"IMAP4REV1", "APPENDLIMIT"}) is None  # limits by mailbox: STATUS would tell


@pytest.mark.parametrize("by", ["APPENDLIMIT", "append_limit"])
def test_a_message_over_the_targets_limit_fails_up_front_and_the_run_goes_on(by: str, tmp_path: Path) -> None:
    source = GmailServer(user="alice")
    for number, size in enumerate((100, 5000, 200, 8000, 300), 1):
        source.add_message(raw(number, size), ["\\Inbox"])
    target = GmailServer(user="alice", appendlimit=4000 if by == "APPENDLIMIT" else 10**8)
    changes = {} if by == "APPENDLIMIT" else {"limits": Limits(append_limit=4000)}
    try:
        summary = run_copy(stand_in_endpoint(source.port), [stand_in_endpoint(target.port, **changes)],
                           CopyOptions(), StateStore(tmp_path / "state.db"))
        appends = [command for command in target.commands if command.upper().startswith("APPEND")]
        inbox = target.folder("INBOX")
    finally:
        source.close()
        target.close()
    assert (summary.copied, summary.failed) == (3, 2)
    assert sorted(len(m.raw) for m in inbox) == sorted(len(raw(n, s)) for n, s in ((1, 100), (3, 200), (5, 300)))
    assert not any("bytes}" in command and int(command.split("{")[-1].split()[0]) > 4000 for command in appends)
    why = "its APPENDLIMIT" if by == "APPENDLIMIT" else "the append_limit given for it"
    assert sorted(failure.reason for failure in summary.failures) == [
        f"not sent: it is {size} bytes ({size / 1000:.1f} KB), over the 4.0 KB that alice@127.0.0.1 takes in one "
        f"message ({why})" for size in (5079, 8079)]


def test_the_presets_known_limit_is_told_as_such(tmp_path: Path) -> None:
    from migrator.stores.imap.appendlimit import append_limit

    microsoft = parse_endpoint("microsoft365:bob@example.com")
    assert append_limit({"IMAP4REV1"}, microsoft) == (
        36 * 1024 * 1024, "Microsoft 365's default; give append_limit= if yours allows more")
    assert append_limit({"APPENDLIMIT=1000"}, microsoft) == (1000, "its APPENDLIMIT")
