"""`migrator status PROFILE.yaml`: the last runs of a profile, from its state file."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from migrator.cli.app import app
from migrator.cli.help import Command
from migrator.core.errors import ConfigError, ExitCode

if TYPE_CHECKING:
    from migrator.state.statefile import RunRecord

_RESULTS: dict[int, str] = {  # looked up with the state file's exit codes, plain ints
    ExitCode.OK: "ok",
    ExitCode.PARTIAL: "some messages failed",
    ExitCode.USAGE: "configuration error",
    ExitCode.CONNECT: "could not connect or log in",
    ExitCode.LIMITED: "stopped by the provider's limit",
    ExitCode.HANGUP: "stopped: the terminal closed",
    ExitCode.INTERRUPTED: "interrupted",
    ExitCode.TERMINATED: "stopped (SIGTERM)",
}
_KILLED = "did not finish (killed or the machine stopped)"


@app.command(cls=Command)
def status(
    profile: Path = typer.Argument(..., metavar="PROFILE", help="The profile whose runs to show."),
    last: int = typer.Option(10, "--last", min=1, metavar="N", help="How many runs to show."),
) -> int:
    """Show the last runs of PROFILE: start, duration, counts, result and why a run failed."""
    # imported when run: see cli/__init__.py
    from migrator.profile import load_profile, plan_run
    from migrator.profile.execute import state_of

    try:
        plan = plan_run(load_profile(profile))
    except ConfigError as error:
        # A profile edited since its last run is a likely reason why runs fail: show them anyway.
        _show_runs(profile.stem, state_of(profile.stem), last, lock=None)
        raise ConfigError(f"the profile is now invalid, so its next run will stop before copying: {error}") from None
    _show_runs(plan.name, plan.state_path, last, lock=plan.lock_path)
    return 0


def _show_runs(name: str, state_path: Path, last: int, lock: Path | None) -> None:
    """Print the last runs recorded in ``state_path``, each failed one with why it failed."""
    from migrator.state.statefile import StateStore

    if not state_path.exists():
        typer.echo(f"{name} has not run yet (no state file {state_path})")
        return
    state = StateStore(state_path)
    try:
        runs = state.last_runs(last)
    finally:
        state.close()
    newest_unfinished = _unfinished(lock)
    typer.echo(f"last runs of {name} (state file {state_path}):")
    typer.echo(f"{'started':<25}  {'duration':>8}  {'copied':>7}  {'already there':>13}  {'left out':>8}  "
               f"{'failed':>6}  {'MB':>8}  result")
    for index, record in enumerate(runs):
        typer.echo(_row(record, newest_unfinished if index == 0 else _KILLED))
        if record.error:
            typer.echo(f"    why: {record.error}")


def _unfinished(lock: Path | None) -> str:
    """Return how the newest run reads when it has no end yet: running, killed, or (lock unknown) either."""
    from migrator.state.lock import locked_by

    if lock is None:
        # Without a loadable profile its lock is unknown, so a live run cannot be told from a killed one.
        return "did not finish, or still running"
    holder = locked_by(lock)
    return f"running ({holder})" if holder else _KILLED


def _row(record: RunRecord, unfinished: str) -> str:
    started = datetime.fromtimestamp(record.started).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")
    duration = f"{record.ended - record.started:.0f} s" if record.ended is not None else "-"
    counted = record.exit_code in (ExitCode.OK, ExitCode.PARTIAL, ExitCode.LIMITED)
    counts = [str(v) if counted and v is not None else "-"
              for v in (record.copied, record.already_there, record.left_out, record.failed)]
    size = f"{(record.bytes or 0) / 1e6:.1f}" if counted else "-"
    return (f"{started:<25}  {duration:>8}  {counts[0]:>7}  {counts[1]:>13}  {counts[2]:>8}  "
            f"{counts[3]:>6}  {size:>8}  "
            f"{_result(record, unfinished)}{' (dry run)' if record.name.endswith('(dry run)') else ''}")


def _result(record: RunRecord, unfinished: str) -> str:
    if record.exit_code is None:
        return unfinished
    return f"{_RESULTS.get(record.exit_code, 'failed')} (exit {record.exit_code})"
