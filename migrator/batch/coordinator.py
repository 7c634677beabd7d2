"""Run a batch: each account of this shard in a worker process, ``jobs`` at a time, then the reports.

One account's failure never stops the others: a worker that fails, crashes or is killed is that account's
row. An account whose lock another process holds (a second pod of the same index) is skipped, saying so.
A rerun resumes each account from its state file; ``skip_done`` leaves out those whose last run was exact.
Workers die with the coordinator (PR_SET_PDEATHSIG: SIGTERM, so they stop at a safe point) and a stop
signal to the coordinator is passed to each of them once.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import resource
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from migrator.batch.accounts import Account, AccountList, failed_file_name, write_rows
from migrator.batch.progress import Board, Running
from migrator.batch.report import (
    CRASHED,
    EXACT,
    LOCKED,
    AccountResult,
    batch_exit_code,
    mask,
    merged,
    read_report,
    read_result,
    write_json_atomic,
    write_reports,
    write_result,
)
from migrator.batch.shards import Shard
from migrator.batch.worker import LOG_FILE, STATE_FILE, Job, variables_used
from migrator.core.errors import ConfigError
from migrator.core.stopping import STOP_SIGNALS, uninterrupted
from migrator.state.lock import locked_by

ACCOUNTS_DIR = "accounts"
_TICK = 0.25


@dataclass(frozen=True)
class BatchSettings:
    """How to run a list: the template profile, the batch directory, jobs at once, which shard."""

    template: Path
    directory: Path
    jobs: int = 4
    shard: Shard = field(default_factory=lambda: Shard(0, 1))
    skip_done: bool = False
    dry_run: bool = False
    worker_memory: int | None = None  # bytes of address space each worker may take (RLIMIT_AS), or no limit

    @property
    def report_dir(self) -> Path:
        """Return where this run's reports go: the batch directory, or its shard's under reports/."""
        if self.shard.whole:
            return self.directory
        return self.directory / "reports" / f"shard-{self.shard.index}-of-{self.shard.count}"


class Observer:
    """What the command line sees of a batch; every method does nothing unless overridden."""

    def started(self, board: Board) -> None:
        """Called once, before the first account."""

    def event(self, account: Account, event: dict[str, object]) -> None:
        """Called for each event an account's worker sends (folder started, progress)."""

    def finished(self, result: AccountResult, board: Board, note: str) -> None:
        """Called when an account is finished; ``note`` says why it was not run, if it was not."""

    def tick(self, board: Board) -> None:
        """Called a few times a second while accounts run."""


@dataclass
class BatchOutcome:
    """What a batch run did: a result per account of the shard, the files written, the exit code."""

    results: list[AccountResult]
    reports: list[Path]
    failed_file: Path | None
    exit_code: int


def account_dir(directory: Path, account: Account) -> Path:
    """Return the account's directory below the batch directory; raise ConfigError should it be elsewhere."""
    base = (directory / ACCOUNTS_DIR).resolve()
    path = base / account.dir_name
    if path.resolve().parent != base:
        raise ConfigError(f"line {account.line}: the account {account.id!r} cannot be given a directory in {base}")
    return path


def check_variables(listed: AccountList, template: Path, environ: dict[str, str]) -> None:
    """Raise ConfigError for the first row whose profile uses a ${NAME} neither its columns nor the environment
    give, so that a list that cannot run stops before any account does."""
    texts: dict[Path, set[str]] = {}
    for account in listed.accounts:
        path = profile_of(listed, account, template)
        if path not in texts:
            try:
                texts[path] = variables_used(path.read_text(encoding="utf-8"))
            except OSError as error:
                raise ConfigError(f"{listed.path}, line {account.line}: cannot read the profile {path}: "
                                  f"{error.strerror}") from None
        given = set(account.values) | set(environ) | {"Password", "TargetPassword", "AdminPassword"} & \
            {name.removesuffix(kind) for name in account.values for kind in ("Env", "File", "Command")}
        missing = sorted(texts[path] - given)
        if missing:
            raise ConfigError(f"{listed.path}, line {account.line}: {path.name} uses ${{{missing[0]}}}, which is "
                              "neither a column of this row nor set in the environment")


def profile_of(listed: AccountList, account: Account, template: Path) -> Path:
    """Return the profile of ``account``: its Profile column (relative to the list), else the template."""
    own = account.values.get("Profile")
    return (listed.path.parent / os.path.expanduser(own)) if own else template


def run_batch(listed: AccountList, settings: BatchSettings, observer: Observer | None = None) -> BatchOutcome:
    """Run every account of the shard and write the reports; return what happened.

    Raises ConfigError before anything runs when the list and the template do not fit; Interrupted when a
    signal stops the batch (after the workers have stopped and the reports are written).
    """
    observer = observer or Observer()
    accounts = settings.shard.select(listed.accounts)
    check_variables(listed, settings.template, dict(os.environ))
    dirs = {account.key: account_dir(settings.directory, account) for account in accounts}
    board = Board(len(accounts), settings.jobs)
    pool = _Pool(listed, settings, observer, board)
    settings.report_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(settings.report_dir / "accounts.json",
                      {"shard": str(settings.shard), "accounts": [{"account": a.id, "dir": dirs[a.key].name}
                                                                  for a in accounts]})
    observer.started(board)
    try:
        pool.run(accounts, dirs)
    finally:
        pool.stop()
        outcome = _finish(listed, settings, pool.results, accounts)
    return outcome


def _finish(listed: AccountList, settings: BatchSettings, results: dict[str, AccountResult],
            accounts: list[Account]) -> BatchOutcome:
    rows = [results[a.key] for a in accounts if a.key in results]
    if settings.dry_run:  # what a dry run found is printed, not mixed into the directory's report
        return BatchOutcome(rows, [], None, batch_exit_code(rows))
    reported = rows
    with contextlib.suppress(OSError, ValueError, KeyError):
        # A replay of failed.csv, or a run cut short, updates its rows of the directory's report; the others stay.
        reported = merged([read_report(settings.report_dir / "report.json"), rows])
    title = f"{listed.path.name}" + ("" if settings.shard.whole else f", shard {settings.shard}")
    reports = write_reports(settings.report_dir, reported, f"Mailbox migration: {title}")
    failed = [a for a in accounts if a.key in results and results[a.key].status not in (EXACT, LOCKED)]
    failed_path = settings.report_dir / failed_file_name(listed)
    if failed:
        write_rows(failed_path, listed, failed)
    else:
        failed_path.unlink(missing_ok=True)
    return BatchOutcome(rows, reports, failed_path if failed else None, batch_exit_code(rows))


class _Worker:
    """A running worker process: its account, its output as it comes, its last result line."""

    def __init__(self, account: Account, process: subprocess.Popen, log: int) -> None:
        self.account, self.process, self.log = account, process, log
        self.buffer = b""
        self.result: AccountResult | None = None


class _Pool:
    """Starts workers up to ``jobs``, reads their events, and keeps each account's result."""

    def __init__(self, listed: AccountList, settings: BatchSettings, observer: Observer, board: Board) -> None:
        self.listed, self.settings, self.observer, self.board = listed, settings, observer, board
        self.selector = selectors.DefaultSelector()
        self.workers: dict[int, _Worker] = {}
        self.results: dict[str, AccountResult] = {}

    def run(self, accounts: list[Account], dirs: dict[str, Path]) -> None:
        waiting = list(accounts)
        last_tick = 0.0
        while waiting or self.workers:
            while waiting and len(self.workers) < self.settings.jobs:
                account = waiting.pop(0)
                self._start(account, dirs[account.key])
            if self.workers:
                self._read(_TICK)
            if time.monotonic() - last_tick >= _TICK:
                last_tick = time.monotonic()
                self.observer.tick(self.board)

    def _start(self, account: Account, directory: Path) -> None:
        previous = read_result(directory)
        if self.settings.skip_done and previous is not None and previous.status == EXACT:
            self._done(account, previous, "done before (--skip-done)")
            return
        holder = locked_by(directory / (STATE_FILE + ".lock"))
        if holder is not None:
            self._done(account, AccountResult(account.id, LOCKED, exit_code=4, first_error=(
                f"another run ({holder}) is copying this account: skipped"), started=time.time(),
                finished=time.time()), "another run holds it")
            return
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        job = Job(account.id, account.line, account.values,
                  str(profile_of(self.listed, account, self.settings.template)), str(directory),
                  str(self.listed.path.parent.resolve()), self.settings.dry_run)
        # A stop signal is held until the worker is started and known, to be passed on to it: raised inside the
        # fork it was lost, and raised before the worker was known it left the worker running the account alone.
        with uninterrupted():
            log = os.open(directory / LOG_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            process = subprocess.Popen([sys.executable, "-m", "migrator.batch.worker"], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=log, start_new_session=True,
                                       preexec_fn=functools.partial(_prepare_worker, self.settings.worker_memory))
            assert process.stdin is not None and process.stdout is not None
            with contextlib.suppress(BrokenPipeError):
                process.stdin.write(json.dumps(asdict(job)).encode())
                process.stdin.close()
            worker = _Worker(account, process, log)
            self.workers[process.stdout.fileno()] = worker
            self.selector.register(process.stdout, selectors.EVENT_READ, worker)
            self.board.running[account.id] = Running()

    def _read(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            worker: _Worker = key.data
            chunk = os.read(key.fd, 65536)
            if not chunk:
                self._reap(key.fd, worker)
                continue
            worker.buffer += chunk
            *lines, worker.buffer = worker.buffer.split(b"\n")
            for line in lines:
                self._event(worker, line)

    def _event(self, worker: _Worker, line: bytes) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            return  # a stray line on stdout: the worker's log has the story
        running = self.board.running.get(worker.account.id)
        if event.get("event") == "result":
            worker.result = AccountResult.from_dict(event)
        elif running is not None and event.get("event") == "progress":
            running.messages, running.bytes = int(event["messages"]), int(event["bytes"])
        elif running is not None and event.get("event") == "folder":
            running.planned += int(event["messages"])
        self.observer.event(worker.account, event)

    def _reap(self, fd: int, worker: _Worker) -> None:
        self.selector.unregister(fd)
        del self.workers[fd]
        _, status, usage = os.wait4(worker.process.pid, 0)
        worker.process.returncode = os.waitstatus_to_exitcode(status)
        assert worker.process.stdout is not None
        worker.process.stdout.close()
        os.close(worker.log)
        result = worker.result or self._crashed(worker, usage.ru_maxrss)
        self._done(worker.account, result, "")

    def _crashed(self, worker: _Worker, peak: int) -> AccountResult:
        code, place = worker.process.returncode, account_dir(self.settings.directory, worker.account)
        why = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit {code} without a result"
        last = _last_line(place / LOG_FILE)
        if last and code >= 0:  # an uncaught error: Python's last line names it (MemoryError, ...)
            why += f" ({mask(last, worker.account.secrets)})"
        now = time.time()
        result = AccountResult(worker.account.id, CRASHED, exit_code=128 - code if code < 0 else code,
                               first_error=f"the worker process ended: {why}; see its log", started=now,
                               finished=now, peak_memory_kb=peak)
        write_result(place, result)
        return result

    def _done(self, account: Account, result: AccountResult, note: str) -> None:
        self.results[account.key] = result
        self.board.done(result)
        self.observer.finished(result, self.board, note)

    def stop(self) -> None:
        """Ask each running worker to stop (SIGTERM: at a safe point) and collect what they report."""
        for worker in list(self.workers.values()):
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)
        while self.workers:
            self._read(_TICK)


def _last_line(path: Path) -> str:
    try:
        with open(path, "rb") as file:
            file.seek(max(file.seek(0, os.SEEK_END) - 4096, 0))
            lines = file.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


_PR_SET_PDEATHSIG = 1
_PRCTL: Callable[[int, int], int] | None
try:
    _PRCTL = ctypes.CDLL(None).prctl  # looked up before forking: the child only calls it
except (OSError, AttributeError):  # not Linux: workers then outlive a killed coordinator
    _PRCTL = None


def _prepare_worker(memory: int | None) -> None:
    # In the child before exec: SIGTERM when the coordinator's thread that started it ends, however it ends;
    # stop signals held until the worker can stop at a safe point (worker.main lets them in), so that one sent
    # while it starts or reports is not a kill; and the address space it may take, so that a runaway account
    # fails alone (MemoryError) before the machine does.
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    if memory is not None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
