"""The two limits on what a server may do to a run, each a default that an environment variable changes.

- ``MIGRATOR_MAX_MESSAGE_SIZE`` (default 2 GB; ``500MB``, ``4GB``, ``3GiB`` or a number of bytes): the largest
  message read from an IMAP or POP3 server, and the largest IMAP literal of any kind. A larger message is
  never read into memory: it is counted failed, and the run goes on.
- ``MIGRATOR_STALL_SECONDS`` (default 120): how long a connection may go without useful progress (a whole
  response, or 1 MB either way) before it is closed and treated as a dropped connection.

Both are read each time a connection is opened, so that a wrapper script, or a test, can set them for a run.
"""

from __future__ import annotations

import math
import os

from migrator.core.errors import ConfigError, MessageError
from migrator.core.sizes import format_size, parse_size

MAX_MESSAGE_SIZE = 2 * 10**9
STALL_SECONDS = 120.0


def max_message_size() -> int:
    """Return the largest message a server may send, in bytes; raise ConfigError for a bad value in the environment."""
    text = os.environ.get("MIGRATOR_MAX_MESSAGE_SIZE")
    if text is None:
        return MAX_MESSAGE_SIZE
    try:
        return parse_size(text)
    except ValueError:
        raise ConfigError(
            f"MIGRATOR_MAX_MESSAGE_SIZE={text!r} is not a size: write it as 500MB, 4GB or a number of bytes"
        ) from None


def stall_seconds() -> float:
    """Return how long a connection may make no progress; raise ConfigError for a bad MIGRATOR_STALL_SECONDS."""
    text = os.environ.get("MIGRATOR_STALL_SECONDS")
    if text is None:
        return STALL_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise ConfigError(f"MIGRATOR_STALL_SECONDS={text!r} is not a number of seconds above 0, such as 300")
    return seconds


def over_limit(size: int, limit: int) -> str:
    """Return the words for a message of ``size`` bytes that is not read because of ``limit``."""
    return (f"{size} bytes ({format_size(size)}), over the limit of {format_size(limit)} on one message "
            "(MIGRATOR_MAX_MESSAGE_SIZE)")


def not_read(refused: list[tuple[str, str]]) -> MessageError:
    """Return the error reporting the messages of a folder left unread, as (uid, reason): each one a failed message."""
    return MessageError("; ".join(f"message {uid} {reason}" for uid, reason in refused), unreadable=tuple(refused))
