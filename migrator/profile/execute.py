"""Run a profile: under its lock, with the run's start, end, counts and exit status in the state file."""

from __future__ import annotations

from migrator.errors import ExitCode, MigratorError
from migrator.lock import ProfileLock
from migrator.pipeline import Progress, Summary, run_copy
from migrator.profile.to_run import RunPlan
from migrator.state import StateStore


def run_profile(plan: RunPlan, progress: Progress | None = None) -> Summary:
    """Return the summary of running ``plan``; raise LockedError when another run holds the profile."""
    with ProfileLock(plan.lock_path, plan.name):
        state = StateStore(plan.state_path)
        try:
            return _recorded_run(plan, state, progress)
        finally:
            state.close()


def _recorded_run(plan: RunPlan, state: StateStore, progress: Progress | None) -> Summary:
    run_id = state.start_run(plan.name + (" (dry run)" if plan.options.dry_run else ""))
    try:
        summary = run_copy(plan.source, plan.targets, plan.options, state, progress)
    except MigratorError as error:
        state.end_run(run_id, copied=0, skipped=0, failed=0, size=0, exit_code=int(error.exit_code))
        raise
    except KeyboardInterrupt:
        state.end_run(run_id, copied=0, skipped=0, failed=0, size=0, exit_code=int(ExitCode.INTERRUPTED))
        raise
    state.end_run(run_id, copied=summary.copied, skipped=summary.skipped, failed=summary.failed,
                  size=summary.bytes, exit_code=int(summary.exit_code))
    return summary
