"""Progress drawn with tqdm: the whole run and the current folder, messages and bytes."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from migrator.core.display import plural, printable
from migrator.pipeline.progress import Progress
from migrator.pipeline.summary import Failure, Summary

if TYPE_CHECKING:
    from tqdm import tqdm as Bar


class BarProgress(Progress):
    """Two bars: folders done overall (with messages and MB) and the current folder's messages."""

    def __init__(self) -> None:
        from tqdm import tqdm as bar_type  # only a terminal run draws bars: a cron run skips the import

        self.bar = bar_type
        self.overall: Bar | None = None
        self.folder: Bar | None = None
        self.messages = 0
        self.bytes = 0

    def run_started(self, folders: int) -> None:
        self.overall = self.bar(total=folders, unit="folder", position=0, leave=True, dynamic_ncols=True)

    def folder_started(self, folder: str, messages: int, size: int) -> None:
        if self.folder is not None:
            self.folder.close()
        self.folder = self.bar(total=messages, unit="msg", desc=printable(folder)[:30], position=1, leave=False,
                               dynamic_ncols=True)

    def messages_done(self, count: int, size: int) -> None:
        self.messages += count
        self.bytes += size
        if self.folder is not None:
            self.folder.update(count)
            self.folder.set_postfix_str(f"{self.bytes / 1e6:.1f} MB", refresh=False)
        if self.overall is not None:
            self.overall.set_postfix_str(f"{self.messages} msg, {self.bytes / 1e6:.1f} MB")

    def folder_done(self, folder: str, copied: int, failed: int) -> None:
        if self.overall is not None:
            self.overall.update(1)

    def failed(self, failure: Failure) -> None:
        self.bar.write(f"migrator: failed: {failure.describe()}", file=sys.stderr)

    def close(self) -> None:
        for bar in (self.folder, self.overall):
            if bar is not None:
                bar.close()


class QuietProgress(Progress):
    """No bars: failures only, each on one line on stderr."""

    def failed(self, failure: Failure) -> None:
        typer.echo(f"migrator: failed: {failure.describe()}", err=True)


class DryRunProgress(QuietProgress):
    """Lists what a run would copy, one line per folder."""

    def folder_started(self, folder: str, messages: int, size: int) -> None:
        noun = "message " if messages == 1 else "messages"  # the same width, so the columns stay put
        typer.echo(f"would copy {messages:6d} {noun} ({size / 1e6:8.1f} MB) from {printable(folder)}")


def choose_progress(quiet: bool, dry_run: bool) -> Progress:
    """Return bars on a terminal, else the quiet or dry-run reporter."""
    if dry_run:
        return DryRunProgress()
    if quiet or not sys.stdout.isatty():
        return QuietProgress()
    return BarProgress()


def print_summary(summary: Summary, *, quiet: bool, dry_run: bool) -> None:
    """Print what a run did: nothing when quiet and all went well, failures on stderr."""
    if dry_run:
        typer.echo(f"dry run: would copy {plural(summary.copied, 'message')} ({summary.bytes / 1e6:.1f} MB), "
                   f"{summary.already_there} already there, {summary.left_out} left out; nothing written")
        for note in summary.notes:
            typer.echo(f"  {note}")
        return
    advice = summary.stop_advice()
    if quiet and not summary.failures and advice is None:
        return
    typer.echo(summary.describe())
    for note in summary.notes:
        typer.echo(f"  {note}")
    for failure in summary.failures:
        typer.echo(f"  failed: {failure.describe()}", err=True)
    if advice is not None:
        typer.echo(f"migrator: {advice}", err=True)
