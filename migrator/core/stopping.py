"""Stopping a run at a safe point when the process is told to stop: SIGINT (Ctrl-C), SIGTERM, SIGHUP.

systemd stops a service with SIGTERM and a closed terminal sends SIGHUP; either used to end the
process where it stood, leaving a PST's temporary file behind. Within ``stop_on_signals`` each of
them raises ``Interrupted`` in the main thread, as Ctrl-C raises KeyboardInterrupt, so the run
unwinds as it does after Ctrl-C: what is durable is recorded, what was being built is thrown away.
Two things make the point it stops at a safe one:

- a write into a target runs ``uninterrupted``: a signal that arrives meanwhile is raised when the
  write is done, so a batch is never left half staged or half committed; a second signal is raised
  at once (the user insists, and whatever it leaves the next run cleans up, as after a kill);
- a signal reaches the main thread only: the further workers of a run ask ``raise_if_stopping``
  before each batch.

A signal the process was started ignoring stays ignored (``nohup`` ignores SIGHUP).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from migrator.core.errors import Interrupted

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Received:
    """The stop signal received, if any, and whether the main thread is in the middle of a write."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.held = False  # received during a write, raised when it ends
        self.writing = 0  # depth of uninterrupted() blocks in the main thread

    def forget(self) -> None:
        """Forget the signal received: the next run in this process (a test's) starts afresh."""
        self.signum, self.held = None, False


# Signal handlers belong to the process, so what they received is kept once per process.
_received = _Received()


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Make SIGINT, SIGTERM and SIGHUP raise Interrupted in the main thread while the block runs."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = {}
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, _on_signal)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _received.forget()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _received.signum is None:
        _received.signum = signum  # the exit status names the first signal, whatever follows
        if _received.writing:
            _received.held = True
            return
    raise Interrupted(_received.signum)


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold a stop signal back until the block ends, then raise Interrupted (in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.writing += 1
    try:
        yield
    finally:
        _received.writing -= 1
    if not _received.writing and _received.held and _received.signum is not None:
        _received.held = False
        raise Interrupted(_received.signum)


def raise_if_stopping() -> None:
    """Raise Interrupted when a stop signal was received (for the threads a signal does not reach)."""
    signum = _received.signum
    if signum is not None:
        raise Interrupted(signum)
