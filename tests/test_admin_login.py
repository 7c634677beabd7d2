"""Admin logins: an admin's password opens a user's mailbox, so a migration needs no user's password.

Against Dovecot's master-user passdb (``DovecotServer(master_user=…)``): SASL PLAIN with the user as the
authorization identity (``admin_user`` and ``admin_password_*``, imapsync's --authuser) for IMAP and POP3,
and Dovecot's own ``USER*ADMIN`` login name; the admin's password is never in a trace, the output or the
state file. A scripted server shows the names going to the wire verbatim and a server without PLAIN.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from pathlib import Path

import pytest

from harness.cyrus import CyrusServer
from harness.mailserver import ServerUnavailable
from migrator.cli import main
from migrator.core.errors import ConfigError
from migrator.endpoints.endpoint import parse_endpoint
from migrator.profile.load import load_profile
from migrator.profile.to_run import plan_run
from migrator.stores.network import sasl
from tests.support.tools import unavailable

ADMIN, ADMIN_PASSWORD = "admin", "admin-Secret-42"
INBOX = ("INBOX",)
WHEN = datetime(2024, 1, 1, 12, tzinfo=timezone.utc)


@pytest.fixture
def server(dovecot_server, monkeypatch, tmp_path):
    """Return the Dovecot with one master user, the admin's password in $ADMIN_PW, state files in tmp_path."""
    monkeypatch.setenv("ADMIN_PW", ADMIN_PASSWORD)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return dovecot_server(master_user=(ADMIN, ADMIN_PASSWORD))


@pytest.fixture
def mailbox(server, make_user):
    """Return a user of ``server`` with three messages in INBOX, whose own password no test uses."""
    user = make_user(server)
    server.seed(user, [(INBOX, f"Message-ID: <m{n}@admin>\r\nSubject: {n}\r\n\r\nbody {n}\r\n".encode(), [], WHEN)
                       for n in range(3)])
    return user


def url(server, login, scheme="imaps", **options):
    query = "&".join(f"{key}={value}" for key, value in {"ca_file": server.ca_file, **options}.items())
    return f"{scheme}://{login}@127.0.0.1:{server.ports[scheme]}?{query}"


def cli(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def copied(path: Path) -> int:
    return len(list(path.glob("cur/*"))) + len(list(path.glob("new/*")))


def state_bytes(tmp_path: Path) -> bytes:
    return b"".join(path.read_bytes() for path in (tmp_path / "state").rglob("*.sqlite*"))


# --- pure: the SASL message, endpoints, profiles ------------------------------------------------


def test_plain_names_the_user_as_authorization_identity():
    assert base64.b64decode(sasl.plain_message("alice", "pw")) == b"\0alice\0pw"
    assert base64.b64decode(sasl.plain_message("alice", "pw", "admin")) == b"alice\0admin\0pw"
    assert base64.b64decode(sasl.plain_message("dom/admin/ä*x", "p")) == "\0dom/admin/ä*x\0p".encode()


@pytest.mark.parametrize(("written", "user"), [
    ("imaps://alice*admin@h", "alice*admin"), ("imaps://alice%2Aadmin@h", "alice*admin"),
    ("imaps://example.com%2Fadmin%2Falice@h", "example.com/admin/alice"),
    ("pop3s://alice%40example.com*admin@h", "alice@example.com*admin"),
])
def test_admin_forms_of_user_names_are_kept_verbatim(written, user):
    endpoint = parse_endpoint(f"{written}?password_env=PW")
    assert endpoint.user == user and endpoint.host == "h" and endpoint.admin_user is None


def test_admin_options_and_their_mistakes():
    endpoint = parse_endpoint("imaps://alice@h?admin_user=root&admin_password_command=pass show admin")
    assert endpoint.admin_user == "root" and endpoint.admin_password.command == "pass show admin"
    assert "pass show" not in str(endpoint)
    for wrong, says in [
        ("admin_password_env=X", "add admin_user"),
        ("admin_user=root", "add admin_password_command"),
        ("admin_user=root&admin_password_env=X&admin_password_file=Y", "one admin password source"),
        ("admin_user=root&admin_password_env=X&password_env=Y", "not the user's: drop password_env"),
        ("admin_user=root&admin_password_env=X&auth=login", "auth=login cannot carry it"),
        ("admin_user=root&admin_password_env=X&auth=xoauth2&token_env=T", "auth=xoauth2 cannot carry it"),
    ]:
        with pytest.raises(ConfigError, match=says):
            parse_endpoint(f"imaps://alice@h?{wrong}")


def test_profile_keys_are_the_url_options(tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text("version: 1\nsource:\n  type: pop3\n  host: h\n  user: alice\n  admin_user: root\n"
                       "  admin_password_file: admin.pw\ntargets:\n  - type: maildir\n    path: out\n")
    source = plan_run(load_profile(profile)).source
    assert source.admin_user == "root" and source.admin_password.file == str(tmp_path / "admin.pw")
    with_password = profile.read_text().replace("  admin_password_file", "  password_env: PW\n  admin_password_file")
    profile.write_text(with_password)
    with pytest.raises(ConfigError, match=r"line 7.*drop password_env"):
        load_profile(profile)
    profile.write_text(profile.read_text().replace("  admin_user: root\n", "").replace("  password_env: PW\n", ""))
    with pytest.raises(ConfigError, match=r"line 6.*add admin_user"):
        load_profile(profile)
    profile.write_text(profile.read_text().replace("user: alice", "user: 'example.com/admin/alice'")
                       .replace("  admin_password_file: admin.pw\n", "  password_env: PW\n"))
    assert plan_run(load_profile(profile)).source.user == "example.com/admin/alice"


def test_a_profile_may_hold_the_admin_password_as_a_batch_template_fills_it(tmp_path):
    profile = tmp_path / "template.yaml"
    profile.write_text("version: 1\nsource:\n  type: imap\n  host: h\n  user: ${UserName}\n  admin_user: root\n"
                       "  admin_password: ${AdminPassword}\ntargets:\n  - type: maildir\n    path: out\n")
    profile.chmod(0o644)
    row = {"UserName": "alice", "AdminPassword": ADMIN_PASSWORD}
    loaded = load_profile(profile, row)
    source = plan_run(loaded).source
    assert source.user == "alice" and source.admin_password.resolve("root") == ADMIN_PASSWORD
    assert ADMIN_PASSWORD not in repr(source) and not loaded.warnings  # from ${…}: the file holds no password
    profile.write_text(profile.read_text().replace("${AdminPassword}", "in-clear"))
    warning = load_profile(profile, row).warnings[0]
    assert "use admin_password_command, admin_password_env or admin_password_file" in warning


# --- for real, against Dovecot's master users ---------------------------------------------------


def test_admin_copies_a_users_inbox_and_its_password_is_nowhere(server, mailbox, tmp_path, capsys):
    debug = tmp_path / "debug.log"
    code, out, err = cli(["-v", "--debug-imap", "--debug-file", str(debug), "copy",
                          url(server, mailbox.name, admin_user=ADMIN, admin_password_env="ADMIN_PW"),
                          f"maildir:{tmp_path}/out"], capsys)
    assert code == 0, err
    assert copied(tmp_path / "out") == 3
    trace = debug.read_text()
    assert "AUTHENTICATE PLAIN ***" in trace
    encoded = sasl.plain_message(mailbox.name, ADMIN_PASSWORD, ADMIN).decode()
    for secret in (ADMIN_PASSWORD, encoded):
        assert secret not in trace and secret not in out + err
        assert secret.encode() not in state_bytes(tmp_path)


@pytest.mark.parametrize("separator", ["*", "%2A"])
def test_dovecot_master_user_name_logs_in_as_the_user(server, mailbox, separator, tmp_path, capsys):
    code, _, err = cli(["copy", url(server, f"{mailbox.name}{separator}{ADMIN}", password_env="ADMIN_PW"),
                        f"maildir:{tmp_path}/out"], capsys)
    assert code == 0, err
    assert copied(tmp_path / "out") == 3


def test_profile_with_the_master_user_name(server, mailbox, tmp_path, capsys):
    profile = tmp_path / "admin.yaml"
    profile.write_text(f"version: 1\nsource:\n  type: imap\n  host: 127.0.0.1\n  port: {server.ports['imaps']}\n"
                       f"  ca_file: {server.ca_file}\n  user: '{mailbox.name}*{ADMIN}'\n  password_env: ADMIN_PW\n"
                       f"targets:\n  - type: maildir\n    path: {tmp_path}/out\n")
    code, _, err = cli(["run", str(profile)], capsys)
    assert code == 0, err
    assert copied(tmp_path / "out") == 3


@pytest.mark.parametrize(("login", "options", "says"), [
    ("{user}", {"admin_user": ADMIN, "admin_password_env": "WRONG"}, "with the admin admin: the server said"),
    ("{user}*admin", {"password_env": "WRONG"}, "as {user}*admin: the server said"),
    ("{user}", {"admin_user": ADMIN, "admin_password_env": "WRONG", "auth": "plain"}, "Check admin_user"),
])
def test_a_wrong_admin_password_fails_as_a_wrong_password(server, mailbox, login, options, says, monkeypatch,
                                                          capsys):
    monkeypatch.setenv("WRONG", "not-the-admins")
    code, _, err = cli(["folders", url(server, login.format(user=mailbox.name), **options)], capsys)
    assert code == 3
    assert says.format(user=mailbox.name) in err and "AUTHENTICATIONFAILED" in err and "Traceback" not in err
    assert "not-the-admins" not in err


def test_pop3_admin_login(server, mailbox, tmp_path, capsys):
    debug = tmp_path / "debug.log"
    code, out, err = cli(["--debug-pop3", "--debug-file", str(debug), "copy",
                          url(server, mailbox.name, scheme="pop3s", admin_user=ADMIN, admin_password_env="ADMIN_PW"),
                          f"maildir:{tmp_path}/out"], capsys)
    assert code == 0, err
    assert copied(tmp_path / "out") == 3
    trace = debug.read_text()
    assert "AUTH PLAIN ***" in trace and ADMIN_PASSWORD not in trace + out + err
    assert ADMIN_PASSWORD.encode() not in state_bytes(tmp_path)


def test_a_cyrus_proxy_server_admin_copies_a_users_inbox(tmp_path, monkeypatch, capsys):
    """Cyrus lets a user listed in proxyservers act for others with the same SASL PLAIN: what docs/usage.md says."""
    try:
        cyrus = CyrusServer(options={"proxyservers": ADMIN}).start()
    except ServerUnavailable as error:
        unavailable(str(error))
    try:
        cyrus.add_user(ADMIN, ADMIN_PASSWORD)
        alice = cyrus.add_user("alice", "alice-own")
        cyrus.seed(alice, [(INBOX, b"Message-ID: <cyrus@admin>\r\n\r\nhi\r\n", [], WHEN)])
        monkeypatch.setenv("ADMIN_PW", ADMIN_PASSWORD)
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
        code, _, err = cli(["copy", url(cyrus, "alice", admin_user=ADMIN, admin_password_env="ADMIN_PW"),
                            f"maildir:{tmp_path}/out"], capsys)
        assert code == 0, err
        assert copied(tmp_path / "out") == 1
    finally:
        cyrus.stop()


# --- a scripted server: the wire, and a server without PLAIN -------------------------------------


def _scripted(capabilities: bytes):
    def answer(tag, command):
        word = command.split(" ", 1)[0].upper()
        if word in ("AUTHENTICATE", "LOGIN"):
            return [f"{tag} OK logged in".encode()]
        if word == "LIST":
            return [b'* LIST (\\HasNoChildren) "/" INBOX', f"{tag} OK done".encode()]
        return [b"* CAPABILITY " + capabilities, f"{tag} OK done".encode()]

    return answer


@pytest.mark.parametrize("name", ["example.com/admin/alice", "alice*admin"])
def test_the_admin_forms_reach_the_server_verbatim(fake, name, monkeypatch, capsys):
    monkeypatch.setenv("PW", "pw")
    written = name.replace("/", "%2F")
    plain = fake(b"* OK ready", _scripted(b"IMAP4rev1 AUTH=PLAIN SASL-IR"))
    cli(["folders", f"imap://{written}@127.0.0.1:{plain.port}?tls=none&password_env=PW"], capsys)
    sent = next(command for command in plain.commands if command.startswith("AUTHENTICATE PLAIN "))
    assert base64.b64decode(sent.split()[-1]) == f"\0{name}\0pw".encode()
    login = fake(b"* OK ready", _scripted(b"IMAP4rev1"))
    cli(["folders", f"imap://{written}@127.0.0.1:{login.port}?tls=none&password_env=PW"], capsys)
    assert f'LOGIN "{name}" "pw"' in login.commands or f"LOGIN {name} pw" in login.commands


def test_a_server_without_plain_says_so(fake, monkeypatch, capsys):
    monkeypatch.setenv("ADMIN_PW", ADMIN_PASSWORD)
    server = fake(b"* OK ready", _scripted(b"IMAP4rev1 AUTH=CRAM-MD5"))
    code, _, err = cli(["folders", f"imap://alice@127.0.0.1:{server.port}?tls=none&admin_user=admin"
                                   "&admin_password_env=ADMIN_PW"], capsys)
    assert code == 3
    assert "does not offer AUTHENTICATE PLAIN (it offers: CRAM-MD5)" in err and "LOGIN cannot name" in err
    assert not any(command.startswith(("LOGIN", "AUTHENTICATE")) for command in server.commands)


def test_scheduling_warns_of_an_admin_password_env_cron_will_not_have(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ADMIN_PW", ADMIN_PASSWORD)  # this shell has it; cron will not
    profile = tmp_path / "mail.yaml"
    profile.write_text("version: 1\nsource: {type: imap, host: 127.0.0.1, port: 9, user: alice, admin_user: admin,"
                       " admin_password_env: ADMIN_PW}\ntargets:\n  - {type: maildir, path: out}\n")
    assert main(["schedule", str(profile), "--every", "daily", "--cron"]) == 0
    err = capsys.readouterr().err
    assert "source alice@127.0.0.1: admin_password_env ADMIN_PW will not be set when cron runs the profile" in err
    assert "(admin_password_file: ~/.config/migrator/mail.password" in err and "(admin_password_command: " in err


# --- migrator batch: an admin for every row, or one for the whole batch -------------------------


@pytest.mark.parametrize("per_row", [True, False])
def test_a_batch_logs_in_as_the_admin(server, make_user, per_row, tmp_path, capsys):
    users = [make_user(server) for _ in range(2)]
    for user in users:
        server.seed(user, [(INBOX, f"Message-ID: <{user.name}@batch>\r\n\r\nhello\r\n".encode(), [], WHEN)])
    if per_row:  # the list names the admin and where the admin's password is
        rows = ["EmailAddress,AdminUser,AdminPasswordEnv", *(f"{user.name},{ADMIN},ADMIN_PW" for user in users)]
        admin = "  admin_user: ${AdminUser}\n  admin_password: ${AdminPassword}\n"
    else:  # the template does, once for the whole batch
        rows = ["EmailAddress", *(user.name for user in users)]
        admin = f"  admin_user: {ADMIN}\n  admin_password_env: ADMIN_PW\n"
    (tmp_path / "users.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "template.yaml").write_text(
        f"version: 1\nsource:\n  type: imap\n  host: 127.0.0.1\n  port: {server.ports['imaps']}\n"
        f"  ca_file: {server.ca_file}\n  user: ${{EmailAddress}}\n{admin}"
        f"targets:\n  - type: maildir\n    path: {tmp_path}/mail/${{EmailAddress}}\n")
    code, out, err = cli(["batch", str(tmp_path / "users.csv"), "--profile", str(tmp_path / "template.yaml"),
                          "--dir", str(tmp_path / "batch"), "--quiet"], capsys)
    assert code == 0, out + err
    assert all(copied(tmp_path / "mail" / user.name) == 1 for user in users)
    written = b"".join(path.read_bytes() for path in (tmp_path / "batch").rglob("*") if path.is_file())
    assert ADMIN_PASSWORD.encode() not in written + (out + err).encode()
