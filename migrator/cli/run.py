"""`migrator run PROFILE.yaml`: run a profile, safe under cron and systemd timers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from migrator.cli.app import app
from migrator.errors import MigratorError

if TYPE_CHECKING:
    from migrator.profile import RunPlan
    from migrator.runlog import RunLog


@app.command()
def run(
    profile: Path = typer.Argument(..., help="The profile (YAML, schema version 1) to run."),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="List what would be copied; write and delete nothing."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing unless something fails (for cron)."),
    log: Path | None = typer.Option(None, "--log", help="Append one timestamped line per event to this file."),
) -> int:
    """Run PROFILE: copy, record the run in its state file; exit 4 at once if the profile is already running."""
    from migrator.runlog import RunLog  # imported when run, like the profile code: see cli/profile.py

    run_log = RunLog(log, profile.stem) if log is not None else None
    try:
        return _run(profile, dry_run, quiet, run_log)
    except MigratorError as error:
        if run_log is not None:
            run_log.event(f"stopped: {error} (exit status {int(error.exit_code)})")
        raise
    finally:
        if run_log is not None:
            run_log.close_file()


def _run(path: Path, dry_run: bool, quiet: bool, run_log: RunLog | None) -> int:
    from migrator.cli.progress_bars import choose_progress, print_summary
    from migrator.profile import load_profile, plan_run
    from migrator.profile.execute import run_profile
    from migrator.runlog import ProgressGroup

    profile = load_profile(path)
    for warning in profile.warnings:
        typer.echo(f"migrator: warning: {warning}", err=True)
    plan = plan_run(profile, dry_run=dry_run, quiet=quiet)
    display = choose_progress(plan.quiet, plan.options.dry_run)
    if run_log is not None:
        run_log.event(f"start: {_describe(plan)}")
    summary = run_profile(plan, display if run_log is None else ProgressGroup(display, run_log))
    if run_log is not None:
        run_log.summary(summary, int(summary.exit_code))
    print_summary(summary, quiet=plan.quiet, dry_run=plan.options.dry_run)
    return int(summary.exit_code)


def _describe(plan: RunPlan) -> str:
    targets = ", ".join(str(t) for t in plan.targets)
    return f"{plan.source} -> {targets}" + (" (dry run)" if plan.options.dry_run else "")
