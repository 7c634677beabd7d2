"""How a running batch stands, for the live table and `migrator batch status`: counts, rates, an estimate."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from migrator.batch.report import EXACT, AccountResult
from migrator.core.display import shorten
from migrator.core.sizes import format_size


@dataclass
class Running:
    """An account being copied: messages and bytes so far, and what the folders begun announced."""

    messages: int = 0
    bytes: int = 0
    planned: int = 0


@dataclass
class Board:
    """The batch's accounts: finished (by status), running, waiting; messages and bytes; since when."""

    total: int
    jobs: int = 1
    started: float = field(default_factory=time.monotonic)
    finished: list[AccountResult] = field(default_factory=list)
    running: dict[str, Running] = field(default_factory=dict)

    def done(self, result: AccountResult) -> None:
        """Count ``result`` as finished."""
        self.running.pop(result.account, None)
        self.finished.append(result)

    def lines(self, width: int = 100) -> list[str]:
        """Return the table: accounts by state, messages, bytes, rate and the batch's estimated time left."""
        statuses = Counter(r.status for r in self.finished)
        waiting = self.total - len(self.finished) - len(self.running)
        elapsed = max(time.monotonic() - self.started, 0.001)
        copied = sum(r.copied for r in self.finished) + sum(r.messages for r in self.running.values())
        size = sum(r.bytes for r in self.finished) + sum(r.bytes for r in self.running.values())
        failed = sum(n for status, n in statuses.items() if status != EXACT)
        lines = [
            f"accounts: {self.total}   done {statuses[EXACT]}   running {len(self.running)}   "
            f"failed {failed}   waiting {waiting}",
            f"messages: {copied} copied, {sum(r.already_there for r in self.finished)} already there, "
            f"{sum(r.failed for r in self.finished)} failed   {format_size(size)}   "
            f"{format_size(int(size / elapsed))}/s   {len(self.finished) * 3600 / elapsed:.0f} accounts/h   "
            f"{self.eta(elapsed)}",
        ]
        for account, running in sorted(self.running.items()):
            planned = f"/{running.planned}" if running.planned else ""
            lines.append(shorten(f"  {account}: {running.messages}{planned} messages, {format_size(running.bytes)}",
                                 width))
        return lines

    def eta(self, elapsed: float) -> str:
        """Return the time left at the pace of the accounts finished so far."""
        left = self.total - len(self.finished)
        if not left:
            return f"took {_clock(elapsed)}"
        if not self.finished:
            return "ETA: after the first account"
        return f"ETA {_clock(elapsed / len(self.finished) * left)}"


def _clock(seconds: float) -> str:
    minutes, second = divmod(round(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}"


def result_line(result: AccountResult, number: int, total: int) -> str:
    """Return the plain line of an account that finished, for logs and pipes."""
    text = (f"[{number:>{len(str(total))}}/{total}] {result.status:<7} {result.account}: {result.copied} copied, "
            f"{result.already_there} already there, {result.failed} failed, {format_size(result.bytes)}, "
            f"{result.seconds:.1f} s")
    return text + (f"; exit {result.exit_code}: {result.first_error}" if result.status != EXACT else "")
