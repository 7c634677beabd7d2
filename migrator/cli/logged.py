"""`--log FILE` of the commands that copy (copy, run): one timestamped line per event of the run."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from migrator.core.errors import Interrupted, MigratorError

if TYPE_CHECKING:
    from migrator.cli.runlog import RunLog
    from migrator.endpoints.endpoint import Endpoint
    from migrator.pipeline.progress import Progress
    from migrator.pipeline.summary import Summary


@contextlib.contextmanager
def opened_log(path: Path | None, name: str) -> Iterator[RunLog | None]:
    """Yield the log at ``path`` (None without --log); log the error that stops the run, then close it."""
    if path is None:
        yield None
        return
    from migrator.cli.runlog import RunLog

    run_log = RunLog(path, name)
    try:
        yield run_log
    except MigratorError as error:
        run_log.event(f"stopped: {error} (exit status {int(error.exit_code)})")
        raise
    except KeyboardInterrupt as stopped:
        interrupted = Interrupted.of(stopped)
        run_log.event(f"stopped by {signal.Signals(interrupted.signum).name} (exit status {interrupted.exit_code})")
        raise
    finally:
        run_log.close_file()


def logged_copy(run_log: RunLog | None, start: str, display: Progress, copy: Callable[[Progress], Summary]) -> Summary:
    """Return ``copy``'s summary; with a log, the start line, every progress event and the summary go there too."""
    if run_log is None:
        return copy(display)
    from migrator.cli.runlog import ProgressGroup

    run_log.event(f"start: {start}")
    summary = copy(ProgressGroup(display, run_log))
    run_log.summary(summary, int(summary.exit_code))
    return summary


def describe(source: Endpoint, targets: Sequence[Endpoint], dry_run: bool) -> str:
    """Return the run's endpoints as the log's start line shows them."""
    return f"{source} -> {', '.join(str(t) for t in targets)}" + (" (dry run)" if dry_run else "")
