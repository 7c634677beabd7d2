"""The capacity table: one row per --jobs, what a planner needs, and the jobs where throughput stops growing."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from dataclasses import dataclass

from bench.report import MB

GROWTH = 1.10  # a doubling of --jobs that adds less than 10 % throughput is where it stops growing


@dataclass(frozen=True)
class BatchRun:
    """One measured `migrator batch` at ``jobs``: its wall and CPU time, and what its report.json says."""

    jobs: int
    seconds: float
    client_cpu: float  # the batch command and its workers: user + system
    server_cpu: float  # Dovecot's processes that served the run (its imap and login processes)
    accounts: int
    exact: int
    bytes: int
    worker_peaks_kb: tuple[int, ...]  # each account's worker, as the batch reports it
    batch_peak_kb: int | None  # the largest process of the whole command, from /usr/bin/time
    account_times: tuple[tuple[int, float], ...] = ()  # each account's bytes and seconds, as the batch reports them

    @property
    def complete(self) -> bool:
        """Return True when every account ended exact."""
        return self.exact == self.accounts

    @property
    def mb_per_s(self) -> float:
        """Return the batch's throughput in MB a second of wall time."""
        return self.bytes / MB / self.seconds

    @property
    def accounts_per_hour(self) -> float:
        """Return the accounts this mix copies an hour at this --jobs."""
        return self.accounts / self.seconds * 3600

    @property
    def mb_per_client_core(self) -> float:
        """Return the MB migrator moves for each second of one core it uses (client CPU only)."""
        return self.bytes / MB / self.client_cpu if self.client_cpu else 0.0

    def account_cells(self) -> str:
        """Return the median seconds an account took and the MB/s of the largest account, as table cells."""
        if not self.account_times:
            return "- | -"
        size, seconds = max(self.account_times)
        rate = f"{size / MB / seconds:.1f}" if seconds else "-"
        return f"{statistics.median(s for _, s in self.account_times):.1f} | {rate}"


def medians(runs: list[BatchRun]) -> list[BatchRun]:
    """Return, for each --jobs, its run of median wall time (of the complete ones, when there are any)."""
    chosen = []
    for jobs in sorted({run.jobs for run in runs}):
        repeats = [run for run in runs if run.jobs == jobs]
        pool = sorted([run for run in repeats if run.complete] or repeats, key=lambda run: run.seconds)
        chosen.append(pool[(len(pool) - 1) // 2])
    return chosen


def fastest(runs: list[BatchRun]) -> list[BatchRun]:
    """Return, for each --jobs, its fastest complete run: what the machine can do when nothing else runs on it."""
    done = [run for run in runs if run.complete]
    return [min((run for run in done if run.jobs == jobs), key=lambda run: run.seconds)
            for jobs in sorted({run.jobs for run in done})]


def knee(runs: list[BatchRun]) -> int | None:
    """Return the --jobs after which more jobs add less than 10 % throughput, or None when it grows up to the
    largest --jobs measured (or nothing was complete). Of several repeats the fastest counts: other work on a
    shared machine only ever slows a run, and spreads the medians more than more jobs change them."""
    done = fastest(runs)
    for run, more in zip(done, done[1:]):
        if more.mb_per_s < run.mb_per_s * GROWTH:
            return run.jobs
    return None


def table(runs: list[BatchRun]) -> str:
    """Return the runs as a markdown table: for each --jobs the repeat of median wall time, with the range of
    the repeats' wall times."""
    lines = ["| --jobs | wall s | accounts/h | MB/s | client CPU s | server CPU s | MB/s per client core "
             "| s per account (median) | largest account's MB/s | worker peak RSS MB (median / largest) | complete |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for run in medians(runs):
        times = [other.seconds for other in runs if other.jobs == run.jobs]
        spread = f" ({min(times):.0f}-{max(times):.0f})" if len(times) > 1 else ""
        peaks = run.worker_peaks_kb or ((run.batch_peak_kb,) if run.batch_peak_kb else ())
        memory = (f"{statistics.median(peaks) * 1024 / MB:.0f} / {max(peaks) * 1024 / MB:.0f}" if peaks else "-")
        lines.append(f"| {run.jobs} | {run.seconds:.1f}{spread} | {run.accounts_per_hour:.0f} | {run.mb_per_s:.1f} | "
                     f"{run.client_cpu:.1f} | {run.server_cpu:.1f} | {run.mb_per_client_core:.1f} | "
                     f"{run.account_cells()} | {memory} | "
                     f"{'yes' if run.complete else f'no ({run.exact}/{run.accounts})'} |")
    return "\n".join([*lines, "", _verdict(runs)])


def _verdict(runs: list[BatchRun]) -> str:
    stops, done = knee(runs), [run.jobs for run in runs if run.complete]
    best = ", ".join(f"{run.mb_per_s:.1f} at {run.jobs}" for run in fastest(runs))
    if stops is not None:
        return (f"Throughput stops growing at --jobs {stops}: more jobs add less than {GROWTH - 1:.0%} MB/s to the "
                f"fastest repeat (MB/s at --jobs: {best}).")
    if not done:
        return "No run was complete."
    return f"Throughput still grows at --jobs {max(done)}, the most measured (fastest repeats, MB/s at --jobs: {best})."


def machine() -> str:
    """Return this machine as lscpu, nproc and /proc/meminfo describe it."""
    model = _lscpu().get("Model name") or platform.processor() or "unknown CPU"
    virtual = _lscpu().get("Hypervisor vendor")
    memory = _meminfo_gb()
    where = f"a virtual machine ({virtual})" if virtual else "a machine"
    return f"{where} with {os.cpu_count()} cores ({model}) and {memory:.0f} GB of memory"


def _lscpu() -> dict[str, str]:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return {}
    return {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in text.splitlines())}


def _meminfo_gb() -> float:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    return 0.0
