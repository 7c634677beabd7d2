"""The one reconnect policy of the server stores (IMAP, POP3): how often, after which pauses, for which errors.

An operation that loses its connection is tried again on a new one, after each pause of
``ReconnectPolicy.delays`` in turn: 0.5, 1 and 2 s by default, so four attempts in all. A lost
connection is a drop, a reset, a timeout or a stall (``MIGRATOR_STALL_SECONDS``), and also a new
connection that cannot be opened for such a reason. What another attempt would only repeat fails at
once with its own error: a refused login, an untrusted certificate, a server without what the
endpoint asks for (each a ``Refused``), a configuration error, a folder or a message the server refuses.

Once a store gave up, each later operation gets one attempt until a connection works again: a server
that stalls costs the stall limit per attempt, and a run against it must still end in reasonable time.

A server that asks the client to slow down (network/throttle.py) is waited out as it asks, up to
``throttle_waits`` times in a row without progress, and the operation resumed on a new connection. A
session ended for a spent budget is reconnected to like a lost connection. Either one that does not let
up ends the operation with ``LimitReached``, which stops the run cleanly instead of failing each folder.

``POLICY`` is the policy every store follows; a test of whole runs sets a faster one in its place.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import NamedTuple, TypeVar

from migrator.core.errors import ConnectError, ConnectionLost, LimitReached, MigratorError, Refused
from migrator.stores.network.throttle import Throttled, Waits, pause

DELAYS = (0.5, 1.0, 2.0)  # seconds: long enough for a server restarting, short enough not to stall a run
# What an operation raises when its connection failed: IMAP's own errors, or poplib's socket errors.
LOST = (ConnectionLost, ConnectError, OSError)
# Refusals a server marks as temporary: RFC 5530's UNAVAILABLE (IMAP), RFC 3206's SYS/TEMP, RFC 2449's IN-USE (POP3).
_TEMPORARY = re.compile(r"\[(UNAVAILABLE|SYS/TEMP|IN-USE)\]", re.IGNORECASE)
log = logging.getLogger(__name__)
T = TypeVar("T")


def refusal(words: str) -> type[ConnectError]:
    """Return the error for a login the server refused with ``words``: Refused, unless it says it is temporary."""
    return ConnectError if _TEMPORARY.search(words) else Refused


class ReconnectPolicy(NamedTuple):
    """How an operation is tried again after a lost connection.

    ``delays`` are the pauses before each new attempt, so there are ``len(delays) + 1`` attempts;
    ``sleep`` waits them out (a test passes one that only records them). ``throttle_waits`` is how many
    times in a row a server's request to slow down is waited out before the run stops.
    """

    delays: tuple[float, ...] = DELAYS
    sleep: Callable[[float], None] = time.sleep
    throttle_waits: int = 5

    @staticmethod
    def retries(error: BaseException) -> bool:
        """Return True for an error a new connection may not meet: a lost connection, a timeout, a failed connect."""
        return isinstance(error, LOST) and not isinstance(error, Refused)


POLICY = ReconnectPolicy()


class Reconnecting:
    """Runs one store's operations under ``policy`` (``POLICY`` unless given), and remembers giving up.

    ``disconnect`` closes the store's connection after a failure, so that the next attempt opens a
    new one; the store calls ``connected`` whenever a new connection works. ``waits`` counts the
    throttling (a store's siblings share it); ``provider`` names the preset, for the words of a stop.
    """

    def __init__(self, account: str, disconnect: Callable[[], None], policy: ReconnectPolicy | None = None,
                 provider: str | None = None) -> None:
        self.account = account
        self.policy = policy or POLICY
        self.gave_up = False
        self.disconnect = disconnect
        self.provider = provider
        self.waits = Waits()

    def connected(self) -> None:
        """Note that a connection works: later operations get every attempt again."""
        self.gave_up = False

    def run(self, operation: Callable[[], T], what: str, direction: str | None = None) -> T:
        """Return ``operation()``, called again after a lost connection; raise ConnectionLost once out of attempts,
        LimitReached when the server keeps refusing (``direction``, download or upload, words it)."""
        attempts = self.attempts(what, direction)
        while True:
            try:
                return operation()
            except LOST as error:
                attempts.failed(error)

    def attempts(self, what: str, direction: str | None = None) -> Attempts:
        """Return the count of attempts at a new operation, described by ``what`` ("scanning INBOX")."""
        return Attempts(self, what, direction)


class Attempts:
    """The attempts at one operation: ``failed`` after each failure, ``progressed`` when one got somewhere."""

    def __init__(self, reconnecting: Reconnecting, what: str, direction: str | None = None) -> None:
        self._of = reconnecting
        self._what = what
        self._direction = direction
        self._failures = 0
        self._throttled = 0

    def progressed(self) -> None:
        """Give the operation every attempt again: it got further than before (a stream, message by message)."""
        self._failures = 0
        self._throttled = 0

    def failed(self, error: Exception) -> None:
        """Disconnect, log and pause before the next attempt; raise ``error`` itself if no attempt could help,
        ConnectionLost once there is no attempt left, LimitReached when the server keeps refusing."""
        of, delays = self._of, self._of.policy.delays
        of.disconnect()
        if isinstance(error, Throttled) and not error.throttle.budget:
            self._slow_down(error)
            return
        if not of.policy.retries(error):
            raise error
        if isinstance(error, Throttled):
            of.waits.budget_ends += 1
        if of.gave_up:
            raise self._end(error, "not retried: reconnecting failed earlier in this run") from None
        if self._failures >= len(delays):
            of.gave_up = True
            raise self._end(error, f"gave up after {self._failures} reconnections") from None
        log.info("lost the connection to %s while %s (%s): reconnecting in %g s (%d of %d)",
                 of.account, self._what, error, delays[self._failures], self._failures + 1, len(delays))
        of.policy.sleep(delays[self._failures])
        self._failures += 1

    def _slow_down(self, error: Throttled) -> None:
        """Wait as long as the server asked (network/throttle.py); raise LimitReached after too many in a row."""
        of = self._of
        self._throttled += 1
        if self._throttled > of.policy.throttle_waits:
            raise self._limit(error, f"after {of.policy.throttle_waits} waits in a row") from None
        wait = pause(error.throttle, self._throttled)
        of.waits.refusals += 1
        of.waits.seconds += wait
        log.warning("%s asked to slow down while %s (%s): waiting %g s, then resuming", of.account, self._what,
                    error.throttle.words, wait)
        of.policy.sleep(wait)

    def _end(self, error: Exception, why: str) -> MigratorError:
        """Return the error ending the operation: LimitReached for a server that ended sessions for its budget."""
        if isinstance(error, Throttled):
            return self._limit(error, why)
        return self._lost(error, why)

    def _limit(self, error: Throttled, why: str) -> LimitReached:
        of = self._of
        return LimitReached(f"{of.account} keeps refusing while {self._what}, saying {error.throttle.words!r} ({why}); "
                            "rerun later to continue", server=of.account, said=error.throttle.words,
                            provider=of.provider, direction=self._direction)

    def _lost(self, error: Exception, why: str) -> ConnectionLost:
        """Return the ConnectionLost ending the operation: ``error`` as a sentence, and ``why`` no attempt is left."""
        if isinstance(error, MigratorError):  # already a sentence naming the server
            return ConnectionLost(f"{error} ({why})")
        # A socket's own error says nothing of the server or the operation.
        return ConnectionLost(f"lost the connection to {self._of.account} while {self._what}: {error} ({why})")
