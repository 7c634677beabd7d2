"""`migrator batch ACCOUNTS.csv --profile TEMPLATE.yaml --dir DIR`: many accounts, one worker process each.

Also `migrator batch status DIR` (how a running or finished batch stands) and `migrator batch merge DIR...`
(the shards' reports joined). The batch itself is migrator/batch/; this draws its table and prints.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from typer.core import TyperGroup

from migrator.cli.app import app
from migrator.cli.help import Command

if TYPE_CHECKING:
    from typer._click import Context

    from migrator.batch.coordinator import Observer
    from migrator.batch.report import AccountResult

BATCH_EXIT_CODES = """\
\b
Exit codes:
  0    every account is exact
  1    some accounts failed or are partial (report.csv and failed.csv name them); the others were copied
  2    bad usage, list of accounts or template: nothing ran
  4    the accounts not exact are being copied by another run (their locks are held)
  129, 130, 143  stopped by a signal: the workers stopped at a safe point; rerun to continue
"""


class _RunByDefault(TyperGroup):
    """`migrator batch LIST ...` means `migrator batch run LIST ...`; status and merge are named."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


batch_app = typer.Typer(cls=_RunByDefault, no_args_is_help=True, rich_markup_mode=None,
                        help="Migrate many accounts: a list (Exchange's CSV or imapsync's lines) and a template "
                             "profile, accounts side by side, reports at the end.")
app.add_typer(batch_app, name="batch")


@batch_app.command(cls=Command, epilog=BATCH_EXIT_CODES)
def run(
    accounts: Path = typer.Argument(..., metavar="ACCOUNTS", help="The list: a CSV with a header, or imapsync lines."),
    profile: Path = typer.Option(..., "--profile", "-p", metavar="TEMPLATE",
                                 help="The template profile; ${COLUMN} is filled from each row, then the environment."),
    directory: Path = typer.Option(..., "--dir", metavar="DIR",
                                   help="Where each account's state, lock and log and the reports go."),
    jobs: int = typer.Option(4, "--jobs", "-j", min=1, metavar="N", help="Accounts copied at once."),
    shard: str | None = typer.Option(None, "--shard", metavar="I/N",
                                     help="Copy only shard I (from 0) of N; also from JOB_COMPLETION_INDEX or "
                                          "SLURM_ARRAY_TASK_ID."),
    shards: int | None = typer.Option(None, "--shards", min=1, metavar="N", envvar="MIGRATOR_SHARDS",
                                      help="How many shards, with Kubernetes' JOB_COMPLETION_INDEX."),
    skip_done: bool = typer.Option(False, "--skip-done",
                                   help="Leave out accounts whose last run was exact (default: rerun them, "
                                        "copying only what is new)."),
    list_format: str = typer.Option("auto", "--format", metavar="FORMAT",
                                    help="csv, imapsync (host1;user1;password1;host2;user2;password2;), or auto."),
    allow_columns: bool = typer.Option(False, "--allow-columns",
                                       help="Accept columns migrator does not know, as ${NAME}s for the template."),
    worker_memory: str | None = typer.Option(None, "--worker-memory", metavar="SIZE",
                                             help="The most memory (address space) each account's process may "
                                                  "take, e.g. 2GB; past it that account fails alone."),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="List what would be copied; write nothing."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No table; print only the accounts that failed."),
) -> int:
    """Copy every account of ACCOUNTS with the TEMPLATE profile; write report.csv, report.json, report.html."""
    from migrator.batch.accounts import FORMATS, read_accounts
    from migrator.batch.coordinator import BatchSettings, run_batch
    from migrator.batch.shards import choose_shard
    from migrator.core.errors import ConfigError

    if list_format not in FORMATS:
        raise ConfigError(f"--format {list_format}: use one of {', '.join(FORMATS)}")
    listed = read_accounts(accounts, format=list_format, allow_columns=allow_columns)
    settings = BatchSettings(template=profile, directory=directory, jobs=jobs, skip_done=skip_done,
                             shard=choose_shard(shard, shards, os.environ), dry_run=dry_run,
                             worker_memory=_size(worker_memory))
    display = _display(quiet)
    outcome = run_batch(listed, settings, display)
    _print_end(outcome.results, outcome.reports, outcome.failed_file, quiet, f"--profile {profile} --dir {directory}")
    return outcome.exit_code


def _size(text: str | None) -> int | None:
    from migrator.core.errors import ConfigError
    from migrator.core.sizes import parse_size

    if text is None:
        return None
    try:
        return parse_size(text)
    except ValueError:
        raise ConfigError(f"--worker-memory {text}: write a size like 2GB or 1500MB") from None


@batch_app.command(cls=Command)
def status(directory: Path = typer.Argument(..., metavar="DIR", help="The batch directory (--dir).")) -> int:
    """Show how every account of the batch in DIR stands: its last result, running, or waiting."""
    from migrator.batch.status import batch_rows

    rows = batch_rows(directory)
    for line in _table(rows):
        typer.echo(line)
    return 0


@batch_app.command(cls=Command)
def merge(
    directories: list[Path] = typer.Argument(..., metavar="DIR...", help="Batch directories whose reports to join."),
    out: Path | None = typer.Option(None, "--out", metavar="DIR", help="Where the joined reports go (default: "
                                                                         "the first DIR)."),
) -> int:
    """Join the reports of shards (DIR/reports/*/ and each DIR's own) into one report.csv, .json and .html."""
    from migrator.batch.report import batch_exit_code
    from migrator.batch.status import merge_reports

    rows, written = merge_reports(directories, out or directories[0])
    for line in _table(rows):
        typer.echo(line)
    for path in written:
        typer.echo(f"wrote {path}")
    return batch_exit_code(rows)


def _table(rows: list[AccountResult]) -> list[str]:
    from collections import Counter

    from migrator.core.display import pad, shorten
    from migrator.core.sizes import format_size

    counts = Counter(row.status for row in rows)
    width = min(max([len(row.account) for row in rows] + [7]), 40)
    lines = [f"{len(rows)} accounts: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())),
             f"{pad('account', width)}  status   copied  already  failed        size  seconds  exit  first error"]
    for row in rows:
        lines.append(f"{pad(shorten(row.account, width), width)}  {row.status:<7} {row.copied:>7}  "
                     f"{row.already_there:>7}  {row.failed:>6}  {format_size(row.bytes):>10}  {row.seconds:>7.1f}  "
                     f"{row.exit_code:>4}  {row.first_error}")
    return lines


def _display(quiet: bool) -> Observer:
    from migrator.batch.coordinator import Observer
    from migrator.batch.progress import Board, result_line

    class Lines(Observer):
        """A line per finished account: for logs and pipes."""

        def finished(self, result: AccountResult, board: Board, note: str) -> None:
            typer.echo(result_line(result, len(board.finished), board.total) + (f" ({note})" if note else ""))

    class Table(Observer):
        """The table redrawn in place on a terminal."""

        drawn = 0

        def tick(self, board: Board) -> None:
            self.draw(board)

        def finished(self, result: AccountResult, board: Board, note: str) -> None:
            self.draw(board)

        def draw(self, board: Board) -> None:
            width = shutil.get_terminal_size().columns - 1
            lines = board.lines(width)[: max(shutil.get_terminal_size().lines - 2, 3)]
            up = f"\x1b[{self.drawn}F" if self.drawn else ""
            sys.stdout.write(up + "\x1b[J" + "".join(line + "\n" for line in lines))
            sys.stdout.flush()
            self.drawn = len(lines)

    if quiet:
        return Observer()
    return Table() if sys.stdout.isatty() else Lines()


def _print_end(results: list[AccountResult], reports: list[Path], failed: Path | None, quiet: bool,
               options: str) -> None:
    from migrator.batch.progress import result_line
    from migrator.batch.report import EXACT

    bad = [r for r in results if r.status != EXACT]
    for number, result in enumerate(bad, 1):
        typer.echo(result_line(result, number, len(bad)), err=True)
    if quiet:
        return
    exact = len(results) - len(bad)
    typer.echo(f"{exact} of {len(results)} accounts exact" + (f", {len(bad)} not: see above" if bad else ""))
    for path in reports:
        typer.echo(f"report: {path}")
    if failed is not None:
        typer.echo(f"failed rows, to rerun once fixed: migrator batch {failed} {options}")
