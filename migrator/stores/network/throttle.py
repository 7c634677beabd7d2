"""What a provider says when it wants a client to slow down or to stop for now, recognised in one place.

- Microsoft 365 (and Outlook.com) refuse a command with ``BAD Request is throttled. Suggested Backoff
  Time: N milliseconds`` (some clients saw NO), and close the session after about ten such errors with
  ``* BYE Connection closed. 14`` (imapsync's FAQ.Office365; MailKit issue 849). The wait asked for was
  seen up to 299961 ms: five minutes.
- Gmail refuses with ``NO [THROTTLED]`` when a client goes too fast, and with ``[OVERQUOTA] Account exceeded
  command or bandwidth limits.`` or by ending the session, ``* BYE Session expired, please login again.``,
  when the account's bandwidth for the day is spent (Google Workspace Admin Help, "Gmail bandwidth
  limits": 2500 MB a day down and 500 MB up over IMAP).

A pace (throttling) is waited out as asked and the command resumed; a budget (OVERQUOTA, the session
expired) is reconnected to under the reconnect policy. Either one that keeps coming back without the
run getting anywhere ends the run cleanly (``LimitReached``, in network/reconnect.py), since the
provider will not serve it again before its budget is renewed.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from migrator.core.errors import ConnectionLost

MAX_WAIT = 300.0  # seconds: the longest Microsoft 365 was seen to ask for; a longer ask is waited this long
FIRST_WAIT = 10.0  # seconds, when the provider does not say: doubled at each refusal in a row
_SUGGESTED = re.compile(r"Request is throttled\. Suggested Backoff Time: (\d+) milliseconds", re.IGNORECASE)
_PACE = re.compile(r"\[THROTTLED\]", re.IGNORECASE)
_BUDGET = re.compile(r"\[OVERQUOTA\]|Session expired, please login again", re.IGNORECASE)


class Throttle(NamedTuple):
    """A provider's request to slow down (``budget`` False) or to stop until its budget is renewed (True).

    ``wait`` is the pause it asked for in seconds, bounded by MAX_WAIT, or None when it named none.
    """

    words: str
    budget: bool = False
    wait: float | None = None


def throttle_in(words: str) -> Throttle | None:
    """Return the throttle a server's words (a tagged reply's text, a BYE's) express, or None."""
    suggested = _SUGGESTED.search(words)
    if suggested:
        return Throttle(words, wait=min(int(suggested.group(1)) / 1000, MAX_WAIT))
    if _BUDGET.search(words):
        return Throttle(words, budget=True)
    if _PACE.search(words):
        return Throttle(words)
    return None


def pause(throttle: Throttle, in_a_row: int) -> float:
    """Return how long to wait after the ``in_a_row``-th refusal in a row (from 1): as asked, else doubling."""
    if throttle.wait is not None:
        return throttle.wait
    return min(FIRST_WAIT * 2 ** (in_a_row - 1), MAX_WAIT)


class Throttled(ConnectionLost):
    """The server refused a command or ended the session to slow the client down; its connection is closed.

    A lost connection like any other to the code that resumes operations, with the throttle to honour.
    """

    def __init__(self, text: str, throttle: Throttle) -> None:
        super().__init__(text)
        self.throttle = throttle


class Waits:
    """The throttling one server imposed on a run, over all its connections: refusals and seconds waited."""

    __slots__ = ("refusals", "seconds", "budget_ends")

    def __init__(self) -> None:
        self.refusals = 0
        self.seconds = 0.0
        self.budget_ends = 0  # sessions the server ended for a spent budget

    def describe(self, server: str) -> str | None:
        """Return the summary's note on these waits, or None when there were none."""
        if not self.refusals and not self.budget_ends:
            return None
        parts = []
        if self.refusals:
            parts.append(f"asked to slow down {self.refusals} time{'s' * (self.refusals != 1)}, "
                         f"waited {self.seconds:.1f} s in all")
        if self.budget_ends:
            parts.append(f"ended {self.budget_ends} session{'s' * (self.budget_ends != 1)} for a spent budget")
        return f"{server} {' and '.join(parts)}"
