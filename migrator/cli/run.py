"""`migrator run PROFILE.yaml`: run a profile, safe under cron and systemd timers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from migrator.cli.app import app
from migrator.cli.help import EXIT_CODES, Command
from migrator.cli.logged import describe, logged_copy, opened_log

if TYPE_CHECKING:
    from migrator.cli.runlog import RunLog


@app.command(cls=Command, epilog=EXIT_CODES)
def run(
    profile: Path = typer.Argument(..., metavar="PROFILE", help="The profile (YAML, schema version 1) to run."),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="List what would be copied; write and delete nothing."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing unless something fails (for cron)."),
    log: Path | None = typer.Option(None, "--log", metavar="FILE",
                                    help="Append one timestamped line per event to this file."),
) -> int:
    """Run PROFILE and record the run in its state file. Exits 4 at once if the profile is already running."""
    with opened_log(log, profile.stem) as run_log:
        return _run(profile, dry_run, quiet, run_log)


def _run(path: Path, dry_run: bool, quiet: bool, run_log: RunLog | None) -> int:
    # Imported when run, like the profile code: see cli/__init__.py.
    from migrator.cli.progress_bars import choose_progress, print_summary
    from migrator.profile import load_profile, plan_run
    from migrator.profile.execute import run_profile

    profile = load_profile(path)
    for warning in profile.warnings:
        typer.echo(f"migrator: warning: {warning}", err=True)
    plan = plan_run(profile, dry_run=dry_run, quiet=quiet)
    display = choose_progress(plan.quiet, plan.options.dry_run)
    start = describe(plan.source, plan.targets, plan.options.dry_run)
    summary = logged_copy(run_log, start, display, lambda progress: run_profile(plan, progress))
    print_summary(summary, quiet=plan.quiet, dry_run=plan.options.dry_run)
    return int(summary.exit_code)
