"""A URL for the other kind of port: told at once, with the URL that fits, against the real Dovecot's ports.

imap:// (STARTTLS) at an implicit-TLS port used to wait the 120 s read timeout for a greeting
that never comes, pop3:// 60 s; imaps:// and pop3s:// at a plain port reported OpenSSL's
WRONG_VERSION_NUMBER.
"""

from __future__ import annotations

import re
import time

import pytest

from migrator.cli import main
from migrator.core.errors import ExitCode
from migrator.stores.network import tls

PATIENCE = 30.0  # seconds; the old behaviour waited 60 s (POP3) or 120 s (IMAP)


def url(server, user, scheme: str, port: str, *params: str) -> str:
    query = "&".join(["password_env=MIGRATOR_TEST_PW", f"ca_file={server.ca_file}", *params])
    return f"{scheme}://{user.name}@{server.host}:{server.ports[port]}?{query}"


def folders_error(address: str, capsys) -> tuple[str, float]:
    started = time.monotonic()
    code = main(["folders", address])
    waited = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == ExitCode.CONNECT
    assert err.count("\n") == 1 and "Traceback" not in err
    return err.rstrip("\n"), waited


@pytest.fixture(autouse=True)
def password(user, monkeypatch):
    monkeypatch.setenv("MIGRATOR_TEST_PW", user.password)


@pytest.mark.slow
def test_imap_url_at_an_implicit_tls_port_gives_up_soon_and_names_imaps(dovecot, user, capsys):
    port = dovecot.ports["imaps"]
    err, waited = folders_error(url(dovecot, user, "imap", "imaps"), capsys)
    assert err == (f"migrator: 127.0.0.1:{port} did not greet {user.name} within 10 s: "
                   f"is this an imaps:// (implicit TLS) port? Try imaps://{user.name}@127.0.0.1:{port}")
    assert waited < PATIENCE


@pytest.mark.parametrize("scheme, port, params, suggested", [
    ("imap", "imaps", ["tls=none"], "an imaps://"),
    ("pop3", "pop3s", [], "a pop3s://"),
])
def test_other_plain_urls_at_implicit_tls_ports(dovecot, user, capsys, monkeypatch, scheme, port, params, suggested):
    monkeypatch.setattr(tls, "GREETING_TIMEOUT", 2.0)  # the 10 s are waited for once, above
    err, waited = folders_error(url(dovecot, user, scheme, port, *params), capsys)
    assert f"did not greet {user.name} within 2 s: is this {suggested} (implicit TLS) port?" in err
    assert err.endswith(f"Try {suggested.split()[1]}{user.name}@127.0.0.1:{dovecot.ports[port]}")
    assert waited < PATIENCE


@pytest.mark.parametrize("scheme, port, greeting, suggested", [
    # Whatever the server's greeting says (a loaded Dovecot first answers "* OK Waiting for authentication…").
    ("imaps", "imap", r"\* OK [^']*", "an imap://"),
    ("pop3s", "pop3", r"\+OK [^']*", "a pop3://"),
])
def test_tls_urls_at_plain_ports_name_the_plain_url(dovecot, user, capsys, scheme, port, greeting, suggested):
    err, _ = folders_error(url(dovecot, user, scheme, port), capsys)
    plain = f"{suggested.split()[1]}{user.name}@127.0.0.1:{dovecot.ports[port]}"
    assert re.fullmatch(rf"migrator: 127\.0\.0\.1:\d+ answered the TLS handshake for {user.name} in clear text "
                        rf"\('{greeting}'\): is this {suggested} port\? Try {re.escape(plain)}", err), err


def test_the_right_urls_still_connect(dovecot, user, capsys):
    for scheme, port in (("imap", "imap"), ("imaps", "imaps"), ("pop3", "pop3"), ("pop3s", "pop3s")):
        assert main(["folders", url(dovecot, user, scheme, port)]) == ExitCode.OK
        assert "INBOX" in capsys.readouterr().out
