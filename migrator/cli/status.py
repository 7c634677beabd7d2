"""`migrator status PROFILE.yaml`: the last runs of a profile, from its state file."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from migrator.cli.app import app
from migrator.errors import ExitCode

if TYPE_CHECKING:
    from migrator.state import RunRecord

_RESULTS = {
    ExitCode.OK: "ok",
    ExitCode.PARTIAL: "some messages failed",
    ExitCode.USAGE: "configuration error",
    ExitCode.CONNECT: "could not connect or log in",
    ExitCode.INTERRUPTED: "interrupted",
}


@app.command()
def status(
    profile: Path = typer.Argument(..., help="The profile whose runs to show."),
    last: int = typer.Option(10, "--last", min=1, help="How many runs to show."),
) -> int:
    """Show the last runs of PROFILE: start, duration, counts and result."""
    from migrator.lock import locked_by  # imported when run: see cli/profile.py
    from migrator.profile import load_profile, plan_run
    from migrator.state import StateStore

    plan = plan_run(load_profile(profile))
    if not plan.state_path.exists():
        typer.echo(f"{plan.name} has not run yet (no state file {plan.state_path})")
        return 0
    state = StateStore(plan.state_path)
    try:
        runs = state.last_runs(last)
    finally:
        state.close()
    running = locked_by(plan.lock_path)
    typer.echo(f"last runs of {plan.name} (state file {plan.state_path}):")
    typer.echo(f"{'started':<25}  {'duration':>8}  {'copied':>7}  {'skipped':>7}  {'failed':>6}  {'MB':>8}  result")
    for index, record in enumerate(runs):
        typer.echo(_row(record, running if index == 0 else None))
    return 0


def _row(record: RunRecord, running: str | None) -> str:
    started = datetime.fromtimestamp(record.started).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")
    duration = f"{record.ended - record.started:.0f} s" if record.ended is not None else "-"
    counted = record.exit_code in (ExitCode.OK, ExitCode.PARTIAL)
    counts = [str(v) if counted else "-" for v in (record.copied, record.skipped, record.failed)]
    size = f"{(record.bytes or 0) / 1e6:.1f}" if counted else "-"
    return (f"{started:<25}  {duration:>8}  {counts[0]:>7}  {counts[1]:>7}  {counts[2]:>6}  {size:>8}  "
            f"{_result(record, running)}{' (dry run)' if record.name.endswith('(dry run)') else ''}")


def _result(record: RunRecord, running: str | None) -> str:
    if record.exit_code is None:
        return f"running ({running})" if running else "did not finish (killed or the machine stopped)"
    return f"{_RESULTS.get(record.exit_code, 'failed')} (exit {record.exit_code})"
