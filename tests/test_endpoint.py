"""Endpoints are written the same way everywhere; mistakes give one clear sentence."""

import re
from pathlib import Path

import pytest

from migrator.core.errors import ConfigError
from migrator.endpoints.endpoint import parse_endpoint
from migrator.endpoints.kinds import KINDS
from migrator.stores import open_store


def test_imaps_defaults_to_implicit_tls_on_993():
    ep = parse_endpoint("imaps://alice@mail.example.com")
    assert (ep.kind, ep.host, ep.port, ep.user, ep.tls) == ("imap", "mail.example.com", 993, "alice", "implicit")


def test_imap_requires_starttls_on_143_unless_plaintext_is_asked_for():
    assert parse_endpoint("imap://bob@h").tls == "starttls"
    assert parse_endpoint("imap://bob@h").port == 143
    assert parse_endpoint("imap://bob@h?tls=none").tls == "none"


def test_pop3_schemes():
    assert (parse_endpoint("pop3s://c@h").port, parse_endpoint("pop3s://c@h").tls) == (995, "implicit")
    assert (parse_endpoint("pop3://c@h:1110").port, parse_endpoint("pop3://c@h").tls) == (1110, "starttls")


def test_query_parameters_name_password_source_and_ca():
    ep = parse_endpoint("imaps://alice%40corp@h:1993?password_env=PW&ca_file=/etc/ca.pem")
    assert ep.user == "alice@corp"
    assert ep.password.env == "PW"
    assert ep.ca_file == "/etc/ca.pem"


def test_local_archives_take_a_path(tmp_path):
    assert parse_endpoint(f"maildir:{tmp_path}").path == tmp_path
    assert parse_endpoint("mbox:~/x").path == Path.home() / "x"
    assert parse_endpoint("eml:out").kind == "eml"
    assert parse_endpoint("pst:a.pst").kind == "pst"


@pytest.mark.parametrize(
    "text, words",
    [
        ("ftp://a@h", "cannot understand"),
        ("maildir:", "names no path"),
        ("imaps://h", "names no user"),
        ("imaps://a:secret@h", "password in the endpoint URL"),
        ("imaps://a@h?passwd=x", "unknown option 'passwd'"),
        ("imaps://a@h?tls=maybe", "not one of implicit, starttls, none"),
        ("imaps://a@h:99999", "port"),
        ("pop3s://a@h?auth=login", "not a pop3 login method"),
    ],
)
def test_mistakes_are_one_sentence(text, words):
    with pytest.raises(ConfigError, match=words):
        parse_endpoint(text)


def test_password_never_shows_in_repr():
    from migrator.endpoints.credentials import PasswordSource

    assert "hunter2" not in repr(PasswordSource(literal="hunter2"))


def test_password_from_env_file_and_command(tmp_path, monkeypatch):
    from migrator.endpoints.credentials import PasswordSource

    monkeypatch.setenv("PW", "from-env")
    (tmp_path / "pw").write_text("from-file\nignored\n")
    assert PasswordSource(env="PW").resolve("a@h") == "from-env"
    assert PasswordSource(file=str(tmp_path / "pw")).resolve("a@h") == "from-file"
    assert PasswordSource(command="printf 'from-command\\nsecond'").resolve("a@h") == "from-command"
    with pytest.raises(ConfigError, match=r"\$MISSING"):
        PasswordSource(env="MISSING").resolve("a@h")


def test_pst_part_size_is_written_after_the_path():
    ep = parse_endpoint("pst:/tmp/a.pst?part_size=10GB")
    assert (ep.path, ep.part_size) == (Path("/tmp/a.pst"), 10 * 10**9)
    with pytest.raises(ConfigError, match="not a size"):
        parse_endpoint("pst:a.pst?part_size=big")


def test_the_pst_store_takes_its_part_size_from_the_endpoint(tmp_path):
    from migrator.stores import open_store

    assert open_store(parse_endpoint(f"pst:{tmp_path}/a.pst?part_size=600KB")).part_size == 600_000


@pytest.mark.parametrize("text, hint", [
    ("maildr:~/Mail", "did you mean maildir:…?"),
    ("imap5://alice@h", "did you mean imap://…?"),
    ("pop3ss://alice@h", "did you mean pop3s://…?"),
    ("imaps://alice@h?pasword_env=PW", "did you mean 'password_env'?"),
])
def test_a_mistyped_scheme_or_option_suggests_the_right_one(text, hint):
    with pytest.raises(ConfigError, match=re.escape(hint)):
        parse_endpoint(text)


def test_every_kind_in_the_registry_round_trips_through_its_written_form(tmp_path):
    # The one table of kinds drives parsing, printing and the store factory alike.
    for kind in KINDS.values():
        for form in kind.forms():
            written = form.replace("USER@HOST[:PORT]", "alice@h").replace("PATH", str(tmp_path / "a"))
            endpoint = parse_endpoint(written)
            assert endpoint.kind == kind.name
            assert parse_endpoint(str(endpoint)) == endpoint
            assert type(open_store(endpoint)).__name__ == kind.store_class.split(":")[1]
