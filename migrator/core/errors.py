"""Errors grouped by how a run recovers from them, each with its exit status."""

from __future__ import annotations

import difflib
import enum
import signal
from collections.abc import Iterable


class ExitCode(enum.IntEnum):
    """Process exit statuses, documented in the README."""

    OK = 0
    PARTIAL = 1  # some messages or folders failed; the rest was copied
    USAGE = 2  # bad command line, endpoint or profile: nothing ran
    CONNECT = 3  # could not connect or log in
    LOCKED = 4  # another run of the same profile holds the lock
    LIMITED = 5  # a provider's limit (a daily budget, throttling that does not end) stopped the run: rerun later
    # Stopped by a signal, at a safe point: 128 + the signal's number, as the shell reports a process killed by it.
    HANGUP = 129  # SIGHUP: the terminal closed
    INTERRUPTED = 130  # SIGINT: Ctrl-C
    TERMINATED = 143  # SIGTERM: systemd stopping the service, kill, shutdown


class MigratorError(Exception):
    """Base of every error shown to the user as one sentence (never a traceback)."""

    exit_code = ExitCode.PARTIAL


class ConfigError(MigratorError):
    """The command line, an endpoint or a profile is wrong; fix it and rerun."""

    exit_code = ExitCode.USAGE


class ConnectError(MigratorError):
    """A server could not be reached, its certificate was refused, or the login failed."""

    exit_code = ExitCode.CONNECT


class Refused(ConnectError):
    """A connection turned down for good: a login, a certificate, a feature the endpoint needs; never retried."""


class ConnectionLost(MigratorError):
    """An established connection dropped; the caller may reconnect and resume."""

    exit_code = ExitCode.CONNECT


class FolderError(MigratorError):
    """One folder cannot be read or written; the run skips it and goes on."""


class MessageError(MigratorError):
    """One message cannot be read or written; the run counts it and goes on.

    A source that could read the rest of a folder lists the messages it could not in ``unreadable``,
    as (uid, reason): each is then counted as a failed message rather than the folder failing.
    """

    def __init__(self, text: str, unreadable: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(text)
        self.unreadable = unreadable


class StoreError(MigratorError):
    """A store as a whole cannot be used (unwritable path, unreadable archive)."""

    exit_code = ExitCode.USAGE


class DiskError(MigratorError):
    """A local target's file system refused a write (full, read-only): the run stops, what was written is kept."""


class LimitReached(MigratorError):
    """A provider keeps refusing a run its service: a daily budget spent, or throttling that does not let up.

    The run stops cleanly: what was copied is recorded, what is left is counted, and a later run continues.
    ``provider`` is the preset's name (gmail, microsoft365...) or None; ``direction`` is download or upload
    when the refused operation tells; ``left`` counts the messages of the folder being copied not yet copied.
    """

    exit_code = ExitCode.LIMITED

    def __init__(self, text: str, *, server: str, said: str, provider: str | None = None,
                 direction: str | None = None) -> None:
        super().__init__(text)
        self.server = server
        self.said = said  # the server's words
        self.provider = provider
        self.direction = direction
        self.left = 0


class Interrupted(KeyboardInterrupt):
    """The run was stopped by the signal ``signum`` and unwound like Ctrl-C: what is durable is kept.

    A KeyboardInterrupt, so that every layer that cleans up after Ctrl-C does the same for it.
    ``discarded`` names the files the run was building and threw away instead of finishing (a PST).
    """

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.discarded: list[str] = []

    @property
    def exit_code(self) -> int:
        """Return 128 + the signal's number, as a shell reports a process the signal killed."""
        return 128 + self.signum

    @classmethod
    def of(cls, stopped: KeyboardInterrupt) -> Interrupted:
        """Return ``stopped`` as an Interrupted: a plain KeyboardInterrupt is Ctrl-C's, SIGINT."""
        return stopped if isinstance(stopped, Interrupted) else cls(signal.SIGINT)


class LockedError(MigratorError):
    """Another run already holds the lock of this profile or state file."""

    exit_code = ExitCode.LOCKED


def closest(word: str, choices: Iterable[str]) -> str | None:
    """Return the one of ``choices`` a mistyped ``word`` most likely meant, or None (for "did you mean")."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return `` (did you mean 'x'?)`` for a mistyped ``word``, or an empty string, to go into a message."""
    close = closest(word, choices)
    return f" (did you mean {close!r}?)" if close else ""
