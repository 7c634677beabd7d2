"""Protocol traces (--debug-imap, --debug-pop3): every line a connection sends and receives, logged.

A trace is what a user attaches to a bug report, so secrets never reach it: the IMAP commands
mark the password and SASL token they carry, the POP3 client masks PASS, APOP and AUTH, and the
trace shows each as ***. A message is shown as its size, ``{N bytes}``, so that the trace of a
large mailbox stays readable; everything else is escaped as any server text shown to the user is.
"""

from __future__ import annotations

import itertools
import logging

from migrator.core.display import printable

MASK = b"***"
_numbers = itertools.count(1)  # one number per traced connection, for runs on several connections


class WireTrace:
    """One connection's traffic, logged at DEBUG to ``migrator.wire.<protocol>``: ``imap#2 HOST:PORT C: …``."""

    def __init__(self, logger: logging.Logger, name: str) -> None:
        self._log = logger
        self._name = name

    @classmethod
    def start(cls, protocol: str, peer: str) -> WireTrace | None:
        """Return the trace of a new connection to ``peer``, or None when no one asked for traces of ``protocol``."""
        logger = logging.getLogger(f"migrator.wire.{protocol}")
        if not logger.isEnabledFor(logging.DEBUG):
            return None
        return cls(logger, f"{protocol}#{next(_numbers)} {peer}")

    def sent(self, line: bytes) -> None:
        """Log a line the client sent (already masked and abbreviated)."""
        self._log.debug("%s C: %s", self._name, shown(line))

    def received(self, line: bytes) -> None:
        """Log a line the server sent (already abbreviated)."""
        self._log.debug("%s S: %s", self._name, shown(line))


def shown(line: bytes) -> str:
    """Return ``line`` as a trace shows it: UTF-8 where it is, other bytes and control characters escaped."""
    return printable(line.decode("utf-8", "backslashreplace"))


def size_of(count: int) -> bytes:
    """Return how a trace shows a literal or a message body of ``count`` bytes instead of the bytes."""
    return b"{%d bytes}" % count
