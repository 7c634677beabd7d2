"""One account's run in a process of its own: ``python -m migrator.batch.worker``, the job as JSON on stdin.

The worker runs the account's profile the way `migrator run` does (load, plan, run under the profile's
lock with the run recorded), with the template's ``${NAME}``s filled from the row first, then the
environment. It tells the coordinator how it goes in JSON lines on stdout, writes its log to stderr (the
account's log file) and its result to the account's result.json. A process per account, not a thread:
one account's crash, or memory, or a library that hangs, ends that process and no other.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import sys
import threading
import time
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TextIO

from migrator.batch.accounts import PASSWORD_COLUMNS
from migrator.batch.report import EXACT, LOCKED, AccountResult, mask, status_of, write_result
from migrator.core.errors import ConfigError, ExitCode, Interrupted, MigratorError
from migrator.core.stopping import STOP_SIGNALS, stop_on_signals
from migrator.endpoints.credentials import PasswordSource
from migrator.pipeline.progress import Progress
from migrator.pipeline.summary import Failure, Summary

_VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PROGRESS_EVERY = 0.25  # seconds between two progress lines to the coordinator
STATE_FILE = "state.sqlite"
LOG_FILE = "log"


@dataclass(frozen=True)
class Job:
    """What a worker is asked: the account, its row, the profile, and where its directory is."""

    account: str
    line: int
    values: dict[str, str]
    profile: str  # the template, or the row's own profile
    account_dir: str
    list_dir: str  # PasswordFile and Profile are relative to the list's directory
    dry_run: bool = False


def variables_used(template: str) -> set[str]:
    """Return the names a profile's text uses as ``${NAME}``."""
    return set(_VARIABLE.findall(template))


def row_variables(job: Job, used: set[str]) -> dict[str, str]:
    """Return the row's values for the template, with Password, TargetPassword and AdminPassword from
    whichever of their columns (clear, Env, File, Command) the row fills in, read only when the template uses them."""
    values = dict(job.values)
    for variable, columns in PASSWORD_COLUMNS.items():
        given = next((c for c in columns if c in job.values), None)
        if variable not in used or given is None or given == variable:
            continue
        kind, value = given.removeprefix(variable).lower(), job.values[given]
        if kind == "file":
            value = str(Path(job.list_dir) / os.path.expanduser(value))
        values[variable] = PasswordSource(**{kind: value}).resolve(f"{job.account} ({given} on line {job.line})")
    return values


def run_account(job: Job, progress: Progress | None = None, signals_held: bool = False) -> AccountResult:
    """Return the result of running ``job``'s account; the result is also written to its directory
    (except in a dry run, and when another run holds its lock: that run writes its own).

    ``signals_held``: the process started with stop signals blocked (a worker, see coordinator.py), to be
    let in here, where one that came meanwhile stops the account like any other.
    """
    started = time.time()
    secrets = [v for k, v in job.values.items() if k in PASSWORD_COLUMNS]
    try:
        if signals_held:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        summary = _run(job, progress)
        result = _from_summary(job.account, summary, started)
    except MigratorError as error:
        result = _ended(job.account, int(error.exit_code), mask(str(error), secrets), started)
    except KeyboardInterrupt as stopped:
        code = Interrupted.of(stopped).exit_code
        result = _ended(job.account, code, f"stopped by a signal (exit {code}); rerun to continue", started)
    result = replace(result, first_error=mask(result.first_error, secrets),
                     peak_memory_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    if result.status != LOCKED and not job.dry_run:  # a dry run's "exact" is no reason for --skip-done to skip
        write_result(Path(job.account_dir), result)
    return result


def _run(job: Job, progress: Progress | None) -> Summary:
    from migrator.profile import load_profile, plan_run
    from migrator.profile.execute import run_profile

    path = Path(job.list_dir) / os.path.expanduser(job.profile)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read the profile {path}: {error.strerror}") from None
    environ: Mapping[str, str] = ChainMap(row_variables(job, variables_used(text)), dict(os.environ))
    profile = load_profile(path, environ)
    profile = replace(profile, name=job.account, state=Path(job.account_dir) / STATE_FILE, quiet=True)
    return run_profile(plan_run(profile, dry_run=job.dry_run, quiet=True), progress, remember_state=False)


def _from_summary(account: str, summary: Summary, started: float) -> AccountResult:
    first = summary.failures[0].describe() if summary.failures else (str(summary.limit) if summary.limit else "")
    code = int(summary.exit_code)
    return AccountResult(account, status_of(code), summary.copied, summary.already_there, summary.failed,
                         summary.bytes, round(time.time() - started, 3), code, first, started, time.time())


def _ended(account: str, code: int, error: str, started: float) -> AccountResult:
    return AccountResult(account, status_of(code), exit_code=code, first_error=error, started=started,
                         finished=time.time(), seconds=round(time.time() - started, 3))


class Relay(Progress):
    """Sends the run's progress to the coordinator (JSON lines) and to the account's log (text lines)."""

    def __init__(self, out: TextIO, log: TextIO, secrets: list[str]) -> None:
        self.out, self.log, self.secrets = out, log, secrets
        self.lock = threading.Lock()
        self.messages = self.bytes = 0
        self.sent = 0.0
        self.gone = False

    def send(self, event: dict[str, object]) -> None:
        """Write one event line for the coordinator, unless it is gone."""
        with self.lock:
            if self.gone:
                return
            try:
                self.out.write(json.dumps(event) + "\n")
                self.out.flush()
            except OSError:
                # The coordinator was killed: its SIGTERM is on its way. Until it arrives, a copy thread that
                # reports progress must not fail its folder over a pipe nobody reads; the log and result stay.
                self.gone = True

    def note(self, text: str) -> None:
        """Write one timestamped line to the account's log."""
        moment = datetime.now().astimezone().isoformat(timespec="seconds")
        with self.lock:
            self.log.write(f"{moment} {mask(text, self.secrets)}\n")
            self.log.flush()

    def folder_started(self, folder: str, messages: int, size: int) -> None:
        self.send({"event": "folder", "folder": folder, "messages": messages, "size": size})

    def messages_done(self, count: int, size: int) -> None:
        with self.lock:
            self.messages, self.bytes = self.messages + count, self.bytes + size
            due = time.monotonic() - self.sent >= _PROGRESS_EVERY
            if due:
                self.sent = time.monotonic()
        if due:
            self.send({"event": "progress", "messages": self.messages, "bytes": self.bytes})

    def folder_done(self, folder: str, copied: int, failed: int) -> None:
        if copied or failed:
            self.note(f"folder {folder} done: {copied} copied, {failed} failed")

    def failed(self, failure: Failure) -> None:
        self.note(f"failed: {failure.describe()}")


def main() -> int:
    """Run the job read from stdin; return the account's exit code."""
    job = Job(**json.loads(sys.stdin.read()))
    relay = Relay(sys.stdout, sys.stderr, [v for k, v in job.values.items() if k in PASSWORD_COLUMNS])
    relay.note(f"start: {job.account} (line {job.line}) with {job.profile}")
    with stop_on_signals():
        result = run_account(job, relay, signals_held=True)
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # the account is done: its result is reported
    relay.send({"event": "progress", "messages": relay.messages, "bytes": relay.bytes})
    relay.note(f"end: {result.status}, {result.copied} copied, {result.already_there} already there, "
               f"{result.failed} failed, exit {result.exit_code}" + (f": {result.first_error}"
                                                                     if result.first_error else ""))
    relay.send({"event": "result", **asdict(result)})
    return result.exit_code if result.status != EXACT else int(ExitCode.OK)


if __name__ == "__main__":
    sys.exit(main())
