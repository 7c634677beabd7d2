"""OAuth2 logins for real: Dovecot's oauth2 passdb asks a stand-in provider (harness/oauth2_provider.py) about tokens.

The whole way a user goes: `migrator login` (device code, or the browser with PKCE), then copies
that log in with XOAUTH2 or OAUTHBEARER and refresh the 2-second access tokens as they reconnect;
helpers' tokens (token_command, token_file, token_env); and what the user reads when a token is
refused, revoked, or for another mailbox. No network: everything is on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

from harness.oauth2_provider import OAuth2Provider
from harness.proxy import FaultProxy
from migrator.cli import main
from migrator.core.errors import ConfigError, ConnectError
from migrator.endpoints.endpoint import parse_endpoint
from migrator.endpoints.oauth2 import grants
from migrator.endpoints.oauth2.flows import loopback_flow
from migrator.endpoints.oauth2.login import log_in, login_endpoint
from migrator.endpoints.oauth2.providers import provider_for
from migrator.stores.network import sasl

INBOX = ("INBOX",)
WHEN = datetime(2024, 1, 1, 12, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def provider():
    with OAuth2Provider() as started:
        yield started


@pytest.fixture
def oauth(provider, dovecot_server, monkeypatch, tmp_path):
    """Return (provider, server): the provider reset for this test, Dovecot asking it about every token."""
    provider.access_lifetime, provider.fail_token_with, provider.pending_polls = 2.0, None, 1
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    server = dovecot_server(oauth2_introspection_url=f"{provider.url}/introspect")
    return provider, server


@pytest.fixture
def account(oauth, make_user):
    """Return a fresh user on the OAuth2 server, who is the one signing in at the provider."""
    provider, server = oauth
    user = make_user(server)
    provider.user = user.name
    return user


def url(server, user, provider=None, scheme="imaps", port=None, **options):
    """Return the endpoint URL of ``user`` with OAuth2 options (the stand-in's client and URLs with ``provider``)."""
    query = {"ca_file": str(server.ca_file), "auth": "xoauth2", **options}
    text = "&".join(f"{key}={value}" for key, value in query.items())
    if provider is not None:
        text += f"&oauth_provider=microsoft&{provider.options()}"
    return f"{scheme}://{user.name}@127.0.0.1:{port or server.ports[scheme]}?{text}"


def seed(server, user, count, size=4000):
    server.seed(user, [(INBOX, f"Message-ID: <m{n}@oauth>\r\nSubject: {n}\r\n\r\n".encode() + b"x" * size + b"\r\n",
                        [], WHEN) for n in range(count)])


def cli(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def maildir_count(path: Path) -> int:
    return len(list(path.glob("cur/*"))) + len(list(path.glob("new/*")))


# --- SASL, pure ------------------------------------------------------------------------------


def test_sasl_messages_are_as_google_microsoft_and_rfc7628_write_them():
    assert sasl.first_message("xoauth2", "a@b.c", "T0K", "h", 993) == b"user=a@b.c\x01auth=Bearer T0K\x01\x01"
    assert (sasl.first_message("oauthbearer", "a,b=c", "T", "imap.example.com", 993)
            == b"n,a=a=2Cb=3Dc,\x01host=imap.example.com\x01port=993\x01auth=Bearer T\x01\x01")
    assert sasl.error_answer("xoauth2") == b"" and base64.b64decode(sasl.error_answer("oauthbearer")) == b"\x01"
    assert sasl.choose("oauth2", ["PLAIN", "XOAUTH2"]) == "xoauth2"
    assert sasl.choose("oauth2", ["XOAUTH2", "OAUTHBEARER"]) == "oauthbearer"
    assert sasl.choose("oauth2", ["PLAIN"]) is None and sasl.choose("xoauth2", []) == "xoauth2"
    error = base64.b64encode(json.dumps({"status": "invalid_token", "schemes": "bearer"}).encode())
    assert sasl.challenge_error(error) == "status invalid_token, schemes bearer"


def test_endpoint_options_name_token_sources_and_never_show_secrets():
    endpoint = parse_endpoint("imaps://a@outlook.office365.com?auth=xoauth2&token_command=oama access a"
                              "&client_id=C&client_secret=S3CRET")
    assert endpoint.uses_oauth2 and endpoint.token.command == "oama access a"
    assert "S3CRET" not in repr(endpoint) and "oama access a" in repr(endpoint)
    assert provider_for(endpoint.host, endpoint.oauth).name == "microsoft"
    assert provider_for("imap.gmail.com", endpoint.oauth).flow == "loopback"
    for wrong, says in [("imaps://a@h?token_env=X", "add auth=xoauth2"),
                        ("imaps://a@h?auth=xoauth2&token_env=X&token_file=Y", "one access token source"),
                        ("imaps://a@h?auth=xoauth2&password_env=X", "not a password"),
                        ("imaps://a@h?auth=xoauth2&oauth_provider=yahoo", "microsoft, google")]:
        with pytest.raises(ConfigError, match=says):
            parse_endpoint(wrong)
    with pytest.raises(ConfigError, match="which OAuth2 provider"):
        provider_for("mail.example.com", endpoint.oauth.__class__(client_id="C"))


def test_profile_keys_are_the_url_options(tmp_path):
    from migrator.profile.load import load_profile
    from migrator.profile.to_run import plan_run

    profile = tmp_path / "p.yaml"
    profile.write_text("version: 1\nsource:\n  type: imap\n  host: outlook.office365.com\n  user: a@example.com\n"
                       "  auth: xoauth2\n  client_id: C\n  tenant: example.com\ntargets:\n  - type: maildir\n"
                       "    path: out\n")
    source = plan_run(load_profile(profile)).source
    assert source.uses_oauth2 and source.oauth.client_id == "C" and not source.token
    assert provider_for(source.host or "", source.oauth).token_url.startswith(
        "https://login.microsoftonline.com/example.com/")
    profile.write_text(profile.read_text().replace("  client_id: C\n", "  password_env: PW\n"))
    with pytest.raises(ConfigError, match="line 7.*not a password|not a password"):
        load_profile(profile)


# --- migrator login, then runs that refresh ----------------------------------------------------


def test_device_login_then_a_copy_outlives_its_token_and_refreshes_mid_run(oauth, account, tmp_path, capsys):
    provider, server = oauth
    provider.access_lifetime = 1.0
    seed(server, account, 40)
    code, out, err = cli(["login", url(server, account, provider)], capsys)
    assert code == 0, err
    assert "enter the code TEST-" in out and f"Logged in to 127.0.0.1 as {account.name}." in out
    grant = grants.grant_file(f"{account.name}@127.0.0.1", provider.clients[0])
    assert stat.S_IMODE(grant.stat().st_mode) == 0o600 and stat.S_IMODE(grant.parent.stat().st_mode) == 0o700

    # The first connection is dropped after its token has expired, halfway through the messages.
    started = time.monotonic()

    dropped = []

    def expire_then_drop(number, direction, sent, chunk):
        if dropped or direction != "down" or sent < 60_000:
            return False
        dropped.append(number)
        time.sleep(max(0.0, provider.access_lifetime + 0.5 - (time.monotonic() - started)))
        return True

    refreshes = provider.refreshes
    proxy = FaultProxy("127.0.0.1", server.ports["imaps"], when=expire_then_drop)
    debug = tmp_path / "debug.log"
    try:
        code, out, err = cli(["-v", "--debug-imap", "--debug-file", str(debug), "copy",
                              url(server, account, provider, port=proxy.port), f"maildir:{tmp_path}/out"], capsys)
    finally:
        proxy.close()
    assert dropped and proxy.connections > dropped[0]
    assert code == 0, err
    assert maildir_count(tmp_path / "out") == 40
    assert provider.refreshes > refreshes
    trace = debug.read_text()
    assert "refreshing the OAuth2 access token" in trace and "AUTHENTICATE XOAUTH2 ***" in trace
    for token in provider.issued_access:
        assert token not in trace and token not in out + err
    state = b"".join(path.read_bytes() for path in (tmp_path / "state").rglob("*.sqlite*"))
    assert not any(token.encode() in state for token in provider.issued_access)


def test_loopback_login_with_pkce_keeps_the_grant(oauth, account, capsys):
    provider, server = oauth
    google = url(server, account, provider).replace("oauth_provider=microsoft", "oauth_provider=google")
    endpoint = login_endpoint(google)
    assert provider_for("127.0.0.1", endpoint.oauth).flow == "loopback"
    opened = []

    def browser(address):  # a browser that follows the provider's redirect back to migrator
        opened.append(address)
        threading.Thread(target=lambda: urllib.request.urlopen(address, timeout=10).read(), daemon=True).start()

    done = log_in(endpoint, show_code=print, open_url=browser)
    assert "code_challenge_method=S256" in opened[0] and "state=" in opened[0]
    assert json.loads(done.grant_file.read_text())["refresh_token"].startswith("rt-")
    code, out, err = cli(["folders", url(server, account, provider, auth="oauth2")], capsys)
    assert code == 0, err
    assert "INBOX" in out


def test_loopback_refuses_a_redirect_with_another_state(oauth):
    provider, _ = oauth
    endpoint = login_endpoint(f"imaps://alice@imap.gmail.com?{provider.options()}")

    def forged(address):
        redirect = address.split("redirect_uri=")[1].split("&")[0]
        target = urllib.parse.unquote(redirect) + "?code=stolen&state=not-ours"
        threading.Thread(target=_get, args=(target,), daemon=True).start()

    with pytest.raises(ConnectError, match="state did not match"):
        loopback_flow(provider_for("imap.gmail.com", endpoint.oauth), "migrator-test-client", None, "alice", forged)


def _get(address):
    try:
        urllib.request.urlopen(address, timeout=10).read()
    except OSError:
        pass


# --- helpers' tokens, POP3, the mechanisms -------------------------------------------------------


@pytest.mark.parametrize("source", ["token_command", "token_file", "token_env"])
def test_helper_tokens_are_read_at_every_connection(oauth, account, source, tmp_path, monkeypatch, capsys):
    provider, server = oauth
    seed(server, account, 3, size=10)
    token_file = tmp_path / "token"
    token_file.write_text(provider.access_token_for(account.name, lifetime=60) + "\n")
    monkeypatch.setenv("ACCESS_TOKEN", provider.access_token_for(account.name, lifetime=60))
    value = {"token_command": f"cat {token_file}", "token_file": str(token_file), "token_env": "ACCESS_TOKEN"}[source]
    code, out, err = cli(["copy", url(server, account, **{source: value}), f"maildir:{tmp_path}/out"], capsys)
    assert code == 0, err
    assert maildir_count(tmp_path / "out") == 3


def test_pop3_with_oauthbearer_and_automatic_choice(oauth, account, tmp_path, monkeypatch, capsys):
    provider, server = oauth
    seed(server, account, 3, size=10)
    monkeypatch.setenv("ACCESS_TOKEN", provider.access_token_for(account.name, lifetime=60))
    debug = tmp_path / "debug.log"
    code, _, err = cli(["--debug-pop3", "--debug-file", str(debug), "copy",
                        url(server, account, scheme="pop3s", auth="oauthbearer", token_env="ACCESS_TOKEN"),
                        f"maildir:{tmp_path}/out"], capsys)
    assert code == 0, err
    assert maildir_count(tmp_path / "out") == 3
    assert "AUTH OAUTHBEARER" in debug.read_text() and os.environ["ACCESS_TOKEN"] not in debug.read_text()
    code, _, err = cli(["-v", "folders", url(server, account, auth="oauth2", token_env="ACCESS_TOKEN")], capsys)
    assert code == 0, err
    assert "with OAUTHBEARER (chosen from the server's LOGIN, OAUTHBEARER, PLAIN, XOAUTH2)" in err


@pytest.mark.parametrize(("scheme", "mechanism"), [("imaps", "oauthbearer"), ("pop3s", "xoauth2")])
def test_a_refused_token_is_explained(oauth, account, scheme, mechanism, monkeypatch, capsys):
    _, server = oauth
    monkeypatch.setenv("ACCESS_TOKEN", "at-expired-or-forged")
    code, _, err = cli(["folders", url(server, account, scheme=scheme, auth=mechanism, token_env="ACCESS_TOKEN")],
                       capsys)
    assert code == 3
    assert f"cannot log in to 127.0.0.1 as {account.name} with {mechanism.upper()}" in err
    assert "run `migrator login` again, or check token_command" in err and "Traceback" not in err


# --- what users meet --------------------------------------------------------------------------


def test_a_revoked_refresh_token_says_to_log_in_again(oauth, account, capsys):
    provider, server = oauth
    assert cli(["login", "--no-check", url(server, account, provider)], capsys)[0] == 0
    provider.revoke(account.name)
    grants.forget_access_token(parse_endpoint(url(server, account, provider)))
    code, _, err = cli(["folders", url(server, account, provider)], capsys)
    assert code == 3
    assert "invalid_grant" in err and "AADSTS70008" in err
    assert f"run `migrator login 'imaps://{account.name}@127.0.0.1:{server.ports['imaps']}?auth=xoauth2" in err
    assert "7 days" in err


def test_an_access_token_the_server_refuses_is_refreshed_once(oauth, account, capsys):
    provider, server = oauth
    provider.access_lifetime = 60.0
    assert cli(["login", url(server, account, provider)], capsys)[0] == 0
    provider.invalidate_access_tokens(account.name)  # the held token is refused long before its end
    refreshes = provider.refreshes
    code, out, err = cli(["folders", url(server, account, provider)], capsys)
    assert code == 0, err
    assert provider.refreshes == refreshes + 1 and "INBOX" in out


@pytest.mark.parametrize(("error", "advice"), [
    ("AADSTS65001: The user or administrator has not consented to use the application.", "admin consent"),
    ("AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or "
     "'client_secret'.", "Allow public client flows"),
])
def test_token_endpoint_errors_say_what_to_do(oauth, account, error, advice, capsys):
    provider, server = oauth
    provider.fail_token_with = ("invalid_client" if "7000218" in error else "invalid_grant", error)
    code, _, err = cli(["login", url(server, account, provider)], capsys)
    assert code == 3
    assert error.split(":")[0] in err and advice in err and "Traceback" not in err


def test_no_grant_yet_says_to_log_in(oauth, account, capsys):
    provider, server = oauth
    code, _, err = cli(["folders", url(server, account, provider)], capsys)
    assert code == 2
    assert "no OAuth2 login for" in err and "migrator login '" in err


def test_authenticated_but_not_connected_is_a_failed_login(fake, monkeypatch, capsys):
    """Microsoft takes the AUTHENTICATE of a token for another mailbox, then fails the first command after it."""

    def answer(tag, command):
        if command.startswith("AUTHENTICATE"):
            return [f"{tag} OK AUTHENTICATE completed.".encode()]
        if command.startswith("LIST"):
            return [f"{tag} NO User is authenticated but not connected.".encode()]
        return [b"* CAPABILITY IMAP4rev1 AUTH=XOAUTH2 SASL-IR", f"{tag} OK done".encode()]

    server = fake(b"* OK The Microsoft Exchange IMAP4 service is ready.", answer)
    monkeypatch.setenv("ACCESS_TOKEN", "at-for-someone-else")
    code, _, err = cli(["folders", f"imap://shared@127.0.0.1:{server.port}?tls=none&auth=xoauth2"
                                   "&token_env=ACCESS_TOKEN"], capsys)
    assert code == 3
    assert "User is authenticated but not connected" in err and "another mailbox" in err


def test_login_opens_the_browser_and_takes_its_redirect(oauth, account, tmp_path):
    """The command line as a user runs it: BROWSER is a program that follows the provider's redirect."""
    provider, server = oauth
    browser = tmp_path / "browser.py"
    browser.write_text("import sys, urllib.request\nurllib.request.urlopen(sys.argv[1], timeout=10).read()\n")
    google = url(server, account, provider).replace("oauth_provider=microsoft", "oauth_provider=google")
    done = subprocess.run([sys.executable, "-m", "migrator", "login", google], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "BROWSER": f"{sys.executable} {browser} %s"})
    assert done.returncode == 0, done.stderr
    assert "open this page" in done.stdout and "Signed in to google" in done.stdout
    assert f"Logged in to 127.0.0.1 as {account.name}." in done.stdout


def test_no_secret_in_a_repr(tmp_path):
    from migrator.endpoints.login_secret import LoginSecret
    from migrator.endpoints.oauth2.flows import Grant
    from migrator.stores.imap.commands import Secret

    grant = Grant("at-SECRET", time.time() + 60, "rt-SECRET")
    endpoint = parse_endpoint("imaps://a@h?auth=xoauth2&token_env=TOKEN_VAR&client_secret=cs-SECRET")
    shown = [repr(grant), repr(Secret(b"at-SECRET")), repr(endpoint), repr(LoginSecret(endpoint))]
    assert not any("SECRET" in text for text in shown), shown
