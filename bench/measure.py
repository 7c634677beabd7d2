"""Run one command and measure it: wall time, peak RSS (from ``/usr/bin/time -v``) and exit status."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from subprocess import PIPE

TIME = "/usr/bin/time"
_PEAK_RSS = re.compile(rb"Maximum resident set size \(kbytes\): (\d+)")
_CPU = re.compile(rb"(?:User|System) time \(seconds\): ([\d.]+)")


@dataclass(frozen=True)
class Invocation:
    """A command to measure and how to count, per folder, the messages it left behind."""

    argv: list[str]
    env: dict[str, str]
    count: Callable[[], dict[str, int]]


@dataclass(frozen=True)
class Measurement:
    """How one command ran: ``error`` is None when it exited with status 0 in time."""

    seconds: float
    peak_rss_kb: int | None
    error: str | None = None
    stdout: bytes = b""
    cpu_seconds: float | None = None  # user + system time of the command and its children

    @property
    def ok(self) -> bool:
        """Return True when the command succeeded."""
        return self.error is None


def measure(argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 3600.0) -> Measurement:
    """Run ``argv`` under ``/usr/bin/time -v`` and return its Measurement (never raises for a failed command)."""
    with tempfile.NamedTemporaryFile(prefix="bench-time-") as report:
        started = time.monotonic()
        try:
            status, stdout, stderr = _run([TIME, "-v", "-o", report.name, *argv], _environment(env), timeout)
        except OSError as error:
            return Measurement(0.0, None, f"cannot run {argv[0]}: {error.strerror}")
        seconds = time.monotonic() - started
        usage = report.read()
    if status is None:
        return Measurement(seconds, peak_rss_kb(usage), f"killed after the {timeout:.0f} s time limit", stdout)
    error = None if status == 0 else failure_text(status, stderr or stdout)
    return Measurement(seconds, peak_rss_kb(usage), error, stdout, cpu_seconds(usage))


def _run(command: list[str], env: dict[str, str], timeout: float) -> tuple[int | None, bytes, bytes]:
    """Return the exit status (None when killed for the time limit), stdout and stderr of ``command``."""
    # A session of its own, so that a timeout kills the measured program and not only /usr/bin/time.
    with subprocess.Popen(command, env=env, stdout=PIPE, stderr=PIPE, start_new_session=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            return None, stdout, stderr
    return process.returncode, stdout, stderr


def _environment(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra or {})
    return env


def peak_rss_kb(time_report: bytes) -> int | None:
    """Return the peak RSS in kB that ``/usr/bin/time -v`` reported, or None when it is missing."""
    match = _PEAK_RSS.search(time_report)
    return int(match.group(1)) if match else None


def cpu_seconds(time_report: bytes) -> float | None:
    """Return the user plus system CPU seconds that ``/usr/bin/time -v`` reported, or None."""
    times = _CPU.findall(time_report)
    return sum(float(t) for t in times) if len(times) == 2 else None


def failure_text(status: int, output: bytes) -> str:
    """Return a one-line description of a failed command: its status and last non-empty output line."""
    lines = [line.strip() for line in output.decode("utf-8", "replace").splitlines() if line.strip()]
    last = lines[-1] if lines else "no output"
    return f"exit {status}: {last[:200]}"
