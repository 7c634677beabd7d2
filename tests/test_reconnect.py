"""The reconnect policy the IMAP and POP3 stores share: attempts, pauses, and which errors end at once.

No server and no real pause: each test gives the policy a ``sleep`` that records what it would wait.
"""

from __future__ import annotations

import pytest

from migrator.core.errors import ConfigError, ConnectError, ConnectionLost, FolderError, Refused
from migrator.stores.network.reconnect import DELAYS, Reconnecting, ReconnectPolicy, refusal


class Flaky:
    """An operation that fails with each of ``errors`` in turn, then returns "done"; counts calls and disconnects."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.disconnects = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"

    def disconnect(self) -> None:
        self.disconnects += 1


def reconnecting(flaky: Flaky, slept: list[float]) -> Reconnecting:
    return Reconnecting("alice@imap.example.com", flaky.disconnect, ReconnectPolicy(sleep=slept.append))


def test_lost_connections_are_retried_after_growing_pauses() -> None:
    slept: list[float] = []
    flaky = Flaky(ConnectionLost("the connection was lost: reset"), TimeoutError("timed out"))
    assert reconnecting(flaky, slept).run(flaky, "scanning INBOX") == "done"
    assert flaky.calls == 3 and flaky.disconnects == 2
    assert slept == [0.5, 1.0] == list(DELAYS[:2])


def test_four_attempts_then_a_connection_lost_naming_the_operation() -> None:
    slept: list[float] = []
    flaky = Flaky(*[ConnectionResetError("reset by peer") for _ in range(5)])
    with pytest.raises(ConnectionLost) as caught:
        reconnecting(flaky, slept).run(flaky, "fetching message 7")
    assert str(caught.value) == ("lost the connection to alice@imap.example.com while fetching message 7: "
                                 "reset by peer (gave up after 3 reconnections)")
    assert flaky.calls == 4 and slept == [0.5, 1.0, 2.0]


def test_after_giving_up_each_operation_tries_once_until_a_connection_works() -> None:
    slept: list[float] = []
    flaky = Flaky(*[ConnectError("cannot connect to imap.example.com:993: no route") for _ in range(6)])
    store = reconnecting(flaky, slept)
    with pytest.raises(ConnectionLost, match="gave up after 3 reconnections"):
        store.run(flaky, "listing folders")
    with pytest.raises(ConnectionLost, match=r"no route \(not retried: reconnecting failed earlier in this run\)"):
        store.run(flaky, "scanning INBOX")
    assert flaky.calls == 5 and len(slept) == 3
    store.connected()
    assert store.run(flaky, "scanning INBOX") == "done"  # one failure left, then success: retried again
    assert len(slept) == 4


@pytest.mark.parametrize("error", [
    Refused("cannot log in to imap.example.com as alice: the server said 'AUTHENTICATIONFAILED'"),
    Refused("imap.example.com:993 presented a certificate that cannot be verified"),
    ConfigError("auth='cram' for alice@imap.example.com is not one of plain, login"),
    FolderError("alice@imap.example.com sent a response that cannot be read while scanning INBOX"),
])
def test_what_another_attempt_would_repeat_fails_at_once_with_its_own_error(error: Exception) -> None:
    slept: list[float] = []
    flaky = Flaky(error)
    with pytest.raises(type(error)) as caught:
        reconnecting(flaky, slept).run(flaky, "scanning INBOX")
    assert caught.value is error
    assert flaky.calls == 1 and slept == []


def test_a_stream_that_progressed_gets_every_attempt_again() -> None:
    slept: list[float] = []
    store = reconnecting(Flaky(), slept)
    attempts = store.attempts("fetching from INBOX")
    for _ in range(3):
        attempts.failed(ConnectionLost("dropped"))
    attempts.progressed()
    for _ in range(3):
        attempts.failed(ConnectionLost("dropped"))
    with pytest.raises(ConnectionLost, match="dropped \\(gave up after 3 reconnections\\)"):
        attempts.failed(ConnectionLost("dropped"))
    assert slept == [0.5, 1.0, 2.0] * 2


def test_the_delays_set_the_number_of_attempts() -> None:
    slept: list[float] = []
    flaky = Flaky(*[ConnectionLost("dropped") for _ in range(3)])
    store = Reconnecting("alice", flaky.disconnect, ReconnectPolicy(delays=(0.0,), sleep=slept.append))
    with pytest.raises(ConnectionLost, match="gave up after 1 reconnections"):
        store.run(flaky, "listing folders")
    assert flaky.calls == 2 and slept == [0.0]


@pytest.mark.parametrize("words, kind", [
    ("[AUTHENTICATIONFAILED] Authentication failed.", Refused),
    ("-ERR [AUTH] Authentication failed.", Refused),
    ("[UNAVAILABLE] Temporary authentication failure.", ConnectError),
    ("-ERR [IN-USE] Mailbox locked by another session", ConnectError),
    ("-ERR [SYS/TEMP] Server shutting down", ConnectError),
])
def test_a_refused_login_is_retried_only_when_the_server_says_it_is_temporary(words: str, kind: type) -> None:
    assert refusal(words) is kind
