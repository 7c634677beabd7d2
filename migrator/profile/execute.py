"""Run a profile: under its lock, with the run's start, end, counts, exit status and error in the state file."""

from __future__ import annotations

import contextlib
from pathlib import Path

from migrator.core.errors import Interrupted, MigratorError
from migrator.pipeline.progress import Progress
from migrator.pipeline.run import run_copy
from migrator.pipeline.summary import Summary
from migrator.profile.to_run import RunPlan, default_profile_state
from migrator.state.lock import ProfileLock
from migrator.state.statefile import StateStore


def run_profile(plan: RunPlan, progress: Progress | None = None, *, remember_state: bool = True) -> Summary:
    """Return the summary of running ``plan``; raise LockedError when another run holds the profile.

    ``remember_state`` False: no pointer to the state file under the profile's name (a batch keeps each
    account's state in its own directory, and an account's name is no file name).
    """
    with ProfileLock(plan.lock_path, plan.name):
        if remember_state:
            _remember_state(plan)
        state = StateStore(plan.state_path)
        try:
            return _recorded_run(plan, state, progress)
        finally:
            state.close()


def state_of(name: str) -> Path:
    """Return the state file the last run of the profile called ``name`` used, without loading the profile."""
    try:
        return Path(_state_pointer(name).read_text(encoding="utf-8"))
    except OSError:
        return default_profile_state(name)


def _remember_state(plan: RunPlan) -> None:
    # `migrator status` must find the runs of a profile that no longer loads, whose own state: it cannot read.
    pointer = _state_pointer(plan.name)
    # The pointer only helps `status`; a run must not fail because the state directory is read-only.
    with contextlib.suppress(OSError):
        if plan.state_path == default_profile_state(plan.name):
            pointer.unlink(missing_ok=True)
        else:
            pointer.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            pointer.write_text(str(plan.state_path), encoding="utf-8")


def _state_pointer(name: str) -> Path:
    return default_profile_state(name).with_suffix(".state-path")


def _recorded_run(plan: RunPlan, state: StateStore, progress: Progress | None) -> Summary:
    run_id = state.start_run(plan.name + (" (dry run)" if plan.options.dry_run else ""))
    try:
        summary = run_copy(plan.source, plan.targets, plan.options, state, progress)
    except MigratorError as error:
        state.end_run(run_id, copied=0, already_there=0, left_out=0, failed=0, size=0, exit_code=int(error.exit_code),
                      error=str(error))
        raise
    except KeyboardInterrupt as stopped:
        state.end_run(run_id, copied=0, already_there=0, left_out=0, failed=0, size=0,
                      exit_code=Interrupted.of(stopped).exit_code)
        raise
    first_failure = summary.failures[0].describe() if summary.failures else None
    state.end_run(run_id, copied=summary.copied, already_there=summary.already_there, left_out=summary.left_out,
                  failed=summary.failed,
                  size=summary.bytes, exit_code=int(summary.exit_code), error=summary.stop_advice() or first_failure)
    return summary
