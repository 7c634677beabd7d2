"""How fast a run may use one server: bytes and messages a second, shared by all of the run's connections to it.

A token bucket per limit: it holds up to ``burst`` tokens, refilled at ``rate`` a second; each message
takes one message token and its size in byte tokens. A message larger than the bucket (or one that finds
it empty) is let through at once and the bucket goes into debt, which the next message waits off, so the
average stays at the rate whatever the sizes. The clock and the sleep are injected (``CLOCK`` and
``SLEEP`` unless given, which a test of whole runs sets in their place), so a test sees the waits
without taking them. The waits for throttling the server asked for are counted here too
(``waits``), so the summary can tell them for the whole run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from migrator.endpoints.endpoint import Endpoint
from migrator.stores.network.throttle import Waits

CLOCK: Callable[[], float] = time.monotonic
SLEEP: Callable[[float], None] = time.sleep


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; ``take`` waits until the tokens taken are paid for."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = burst
        self._last = clock()
        self.waited = 0.0

    def take(self, amount: float) -> float:
        """Take ``amount`` tokens, first waiting off any debt; return the seconds waited."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        wait = 0.0
        if self._tokens < 0:
            wait = -self._tokens / self.rate
            self._sleep(wait)
            self.waited += wait
            self._tokens = 0.0
            self._last = self._clock()
        self._tokens -= amount
        return wait


class Pace(NamedTuple):
    """The limits of one server: None for no limit. ``byte_burst`` is how many bytes may go before the rate
    applies (a provider's allowance, as imapsync's --maxbytesafter); by default one second's worth."""

    bytes_per_second: float | None = None
    messages_per_second: float | None = None
    byte_burst: float | None = None


class Pacing:
    """One server's pace for a run, shared by a store and its siblings (thread-safe): call ``spend`` per message."""

    def __init__(self, pace: Pace, clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], None] | None = None) -> None:
        clock, sleep = clock or CLOCK, sleep or SLEEP
        self.pace = pace
        self.waits = Waits()
        self._lock = threading.Lock()
        self._bytes = self._messages = None
        if pace.bytes_per_second:
            burst = pace.byte_burst or pace.bytes_per_second
            self._bytes = TokenBucket(pace.bytes_per_second, burst, clock, sleep)
        if pace.messages_per_second:
            self._messages = TokenBucket(pace.messages_per_second, max(pace.messages_per_second, 1.0), clock, sleep)

    @property
    def waited(self) -> float:
        """Return the seconds waited to keep to the limits (not counting throttling)."""
        return sum(bucket.waited for bucket in (self._bytes, self._messages) if bucket is not None)

    def spend(self, size: int) -> None:
        """Count one message of ``size`` bytes, first waiting as long as the limits ask."""
        if self._bytes is None and self._messages is None:
            return
        with self._lock:  # a waiting connection holds the others back too: the limit is the server's
            if self._messages is not None:
                self._messages.take(1)
            if self._bytes is not None:
                self._bytes.take(size)


def pacing_for(endpoint: Endpoint) -> Pacing:
    """Return the pace the endpoint's limits (its own, the run's, its preset's) set for its server.

    A preset's byte rate applies once its allowance has gone (Gmail's first 1 GB); a rate the user gave
    applies from the first byte.
    """
    pace, preset = endpoint.pace, endpoint.preset
    burst = preset.byte_burst if preset is not None and endpoint.limits.max_bytes_per_second is None else None
    return Pacing(Pace(pace.max_bytes_per_second, pace.max_messages_per_second, burst))
