"""Shared fixtures: throwaway Dovecot servers (one per configuration per test session) and fresh users.

- ``dovecot``: the main server (separator "/", listescape, Drafts/Sent/Trash/Junk/Archive).
- ``dovecot_server(**options)``: a server with other ``DovecotServer`` options, started once per
  session and option set, e.g. ``dovecot_server(separator=".")``,
  ``dovecot_server(special_folders=OUTLOOK_SPECIAL_FOLDERS)``, ``dovecot_server(plaintext_auth=True)``.
- ``user``: a new user on ``dovecot`` for each test (its mailbox starts empty).
- ``make_user(server=None)``: more fresh users, on ``dovecot`` or another server.
- ``cyrus``, ``courier``: a Cyrus IMAP and a Courier-IMAP server, started once per session.
- ``imap_server``: (server, fresh user) on each of Dovecot, Cyrus and Courier in turn, for tests
  that every real server must pass.
- ``fake(greeting, answer)``: a scripted fake IMAP server (harness/fake.py), for what no
  real server will do.

Without a server these fixtures skip the test, or fail it when ``CI=true``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import NamedTuple, TypeVar

import pytest
from hypothesis import settings

from harness.courier import CourierServer
from harness.cyrus import CyrusServer
from harness.dovecot import DovecotServer, DovecotUnavailable, MailUser
from harness.fake import ScriptedServer
from harness.mailserver import MailServer, ServerUnavailable
from tests.support.tools import unavailable

# Hypothesis fails an example that runs longer than 200 ms: a timing assertion, which this suite
# does not make (speed is the benchmark's business). A long folder name on a loaded machine tripped it.
settings.register_profile("migrator", deadline=None)
settings.load_profile("migrator")

_user_numbers = itertools.count(1)
Started = TypeVar("Started", bound=MailServer)


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[Callable[..., DovecotServer]]:
    """Return a function giving a started server per option set, stopped at the end of the session."""
    servers: dict[tuple, DovecotServer] = {}

    def server(**options: object) -> DovecotServer:
        key = tuple(sorted((name, repr(value)) for name, value in options.items()))
        if key not in servers:
            try:
                servers[key] = DovecotServer(**options).start()
            except DovecotUnavailable as error:
                unavailable(str(error))
        return servers[key]

    yield server
    for started in servers.values():
        started.stop()


@pytest.fixture(scope="session")
def dovecot(dovecot_server: Callable[..., DovecotServer]) -> DovecotServer:
    """Return the session's main test server."""
    return dovecot_server()


@pytest.fixture
def make_user(dovecot: DovecotServer) -> Callable[..., MailUser]:
    """Return a function creating a fresh user (password "secret-N") on ``server`` or the main server."""

    def make(server: DovecotServer | None = None, **options: object) -> MailUser:
        number = next(_user_numbers)
        return (server or dovecot).add_user(f"user{number}", f"secret-{number}", **options)

    return make


@pytest.fixture
def user(make_user: Callable[..., MailUser]) -> MailUser:
    """Return a fresh user with an empty mailbox on the main test server."""
    return make_user()


@pytest.fixture(scope="session")
def cyrus() -> Iterator[CyrusServer]:
    """Return the session's Cyrus IMAP server (separator ".", INBOX. prefix, special folders as on Dovecot)."""
    yield from _run(CyrusServer())


@pytest.fixture(scope="session")
def courier() -> Iterator[CourierServer]:
    """Return the session's Courier-IMAP server (separator ".", INBOX. prefix, special folders by name)."""
    yield from _run(CourierServer())


def _run(server: Started) -> Iterator[Started]:
    try:
        server.start()
    except ServerUnavailable as error:
        unavailable(str(error))
    yield server
    server.stop()


class ServerUser(NamedTuple):
    """A test server and a fresh user with an empty mailbox on it."""

    server: MailServer
    user: MailUser


@pytest.fixture(params=["dovecot", "cyrus", "courier"])
def imap_server(request: pytest.FixtureRequest) -> ServerUser:
    """Return (server, fresh user) on each real IMAP server in turn; only the servers asked for are started."""
    server = request.getfixturevalue(request.param)
    number = next(_user_numbers)
    return ServerUser(server, server.add_user(f"user{number}", f"secret-{number}"))


@pytest.fixture
def fake() -> Iterator[Callable[[bytes, Callable[[str, str], list[bytes]]], ScriptedServer]]:
    """Return a function starting a ScriptedServer with a greeting and an answer function, closed after the test."""
    started: list[ScriptedServer] = []

    def make(greeting: bytes, answer: Callable[[str, str], list[bytes]]) -> ScriptedServer:
        started.append(ScriptedServer(greeting, answer))
        return started[-1]

    yield make
    for server in started:
        server.close()
