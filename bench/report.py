"""The benchmark table: medians over repeats, throughput, peak RSS, completeness and ratios to the peers."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench.measure import Measurement

MB = 1_000_000
RERUN_LIMIT_S = 0.5  # at 5 000 messages; twice that above
RSS_LIMIT_MB = 60
COLUMNS = ("run", "phase", "wall s", "CPU s", "msg/s", "MB/s", "peak RSS MB", "complete", "× mbsync", "× getmail6",
           "× limit")


@dataclass(frozen=True)
class Result:
    """One measured run: ``mismatch`` says how its per-folder counts differ from the source's, if they do."""

    name: str
    protocol: str
    phase: str  # "cold" or "rerun"
    measurement: Measurement
    mismatch: str | None = None

    @property
    def complete(self) -> bool:
        """Return True when the run succeeded and left exactly the source's messages."""
        return self.measurement.ok and self.mismatch is None


@dataclass(frozen=True)
class Workload:
    """What a run of each protocol has to copy: messages and bytes (POP3 sees INBOX only)."""

    messages: dict[str, int]
    size: dict[str, int]


@dataclass(frozen=True)
class Row:
    """The results of one run and phase over every repeat."""

    name: str
    protocol: str
    phase: str
    results: tuple[Result, ...]
    unavailable: str | None = None

    @property
    def seconds(self) -> float | None:
        """Return the median wall time of the successful repeats, or None when none succeeded."""
        times = [r.measurement.seconds for r in self.results if r.measurement.ok]
        return statistics.median(times) if times else None

    @property
    def cpu_seconds(self) -> float | None:
        """Return the median client CPU time (user + system) of the successful repeats."""
        times = [r.measurement.cpu_seconds for r in self.results if r.measurement.ok and r.measurement.cpu_seconds]
        return statistics.median(times) if times else None

    @property
    def peak_rss_mb(self) -> float | None:
        """Return the largest peak RSS of any repeat in MB (a ceiling matters more than a median)."""
        peaks = [r.measurement.peak_rss_kb for r in self.results if r.measurement.peak_rss_kb]
        return max(peaks) * 1024 / MB if peaks else None

    @property
    def complete(self) -> str:
        """Return "yes", "no" with how many repeats were complete, or "n/a"."""
        if self.unavailable or not self.results:
            return "n/a"
        good = sum(r.complete for r in self.results)
        return "yes" if good == len(self.results) else f"no ({good}/{len(self.results)})"

    def problems(self) -> list[str]:
        """Return one line per failed or incomplete repeat."""
        lines = []
        for index, result in enumerate(self.results, 1):
            problem = result.measurement.error or result.mismatch
            if problem:
                lines.append(f"{self.name}, {self.phase}, repeat {index}: {problem}")
        return lines


def rows(results: list[Result], unavailable: dict[str, str]) -> list[Row]:
    """Return the table rows in the order the runs were first measured, then the unavailable ones."""
    keys: dict[tuple[str, str], list[Result]] = {}
    for result in results:
        keys.setdefault((result.name, result.phase), []).append(result)
    table = [Row(name, group[0].protocol, phase, tuple(group)) for (name, phase), group in keys.items()]
    table.sort(key=lambda row: row.phase != "cold")
    return table + [Row(name, "", "cold", (), why) for name, why in unavailable.items()]


def markdown(table: list[Row], workload: Workload, header: str) -> str:
    """Return the whole report (header, table, targets, problems) as markdown."""
    baselines = _baselines(table)
    lines = [header, "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cells(row, workload, baselines)) + " |" for row in table]
    lines += ["", *targets(table, workload.messages["imap"])]
    problems = [line for row in table for line in row.problems()]
    problems += [f"{row.name}: n/a, {row.unavailable}" for row in table if row.unavailable]
    if problems:
        lines += ["", "Problems:", *[f"- {line}" for line in problems]]
    return "\n".join(lines) + "\n"


def _baselines(table: list[Row]) -> dict[tuple[str, str], float]:
    """Return the wall time of each baseline run by (baseline, phase)."""
    names = {"mbsync IMAP→Maildir": "mbsync", "getmail6 POP3→Maildir": "getmail6", "server limit": "limit"}
    return {(names[row.name], row.phase): row.seconds for row in table if row.name in names and row.seconds}


def _cells(row: Row, workload: Workload, baselines: dict[tuple[str, str], float]) -> list[str]:
    if row.unavailable:
        return [row.name, row.phase] + ["n/a"] * (len(COLUMNS) - 2)
    seconds, rss = row.seconds, row.peak_rss_mb
    cold = row.phase == "cold" and seconds
    messages, size = workload.messages[row.protocol], workload.size[row.protocol]
    return [
        row.name, row.phase,
        f"{seconds:.2f}" if seconds else "failed",
        f"{row.cpu_seconds:.2f}" if row.cpu_seconds else "-",
        f"{messages / seconds:.0f}" if cold else "-",
        f"{size / MB / seconds:.1f}" if cold else "-",
        f"{rss:.0f}" if rss else "-",
        row.complete,
        _ratio(seconds, baselines.get(("mbsync", row.phase)), row.protocol == "imap"),
        _ratio(seconds, baselines.get(("getmail6", row.phase)), row.protocol == "pop3"),
        _ratio(seconds, baselines.get(("limit", row.phase)), row.protocol == "imap"),
    ]


def _ratio(seconds: float | None, baseline: float | None, comparable: bool) -> str:
    if not (comparable and seconds and baseline):
        return "-"
    return f"{seconds / baseline:.2f}"


RATIO_TARGETS = (
    # (label, run, baseline run, largest allowed ratio of their cold wall times)
    ("IMAP→Maildir ≤ 0.5× mbsync", "migrator IMAP→Maildir", "mbsync IMAP→Maildir", 0.5),
    ("POP3→Maildir ≤ 0.2× getmail6", "migrator POP3→Maildir", "getmail6 POP3→Maildir", 0.2),
    ("IMAP→IMAP ≤ 1.5× migrator IMAP→Maildir", "migrator IMAP→IMAP", "migrator IMAP→Maildir", 1.5),
)


def targets(table: list[Row], messages: int) -> list[str]:
    """Return issue 6's targets, each with the measured value and whether it is met."""
    cold = {row.name: row.seconds for row in table if row.phase == "cold"}
    lines = ["Targets (issue 6):"]
    lines += [_target(label, cold.get(run), cold.get(base), factor) for label, run, base, factor in RATIO_TARGETS]
    migrator_rows = [row for row in table if row.name.startswith("migrator") and not row.unavailable]
    rerun_limit = RERUN_LIMIT_S if messages <= 5_000 else 2 * RERUN_LIMIT_S
    reruns = [(row.name, row.seconds) for row in migrator_rows if row.phase == "rerun"]
    lines.append(_ceiling(f"rerun ≤ {rerun_limit} s", reruns, rerun_limit, "s"))
    peaks = [(f"{row.name} {row.phase}", row.peak_rss_mb) for row in migrator_rows]
    lines.append(_ceiling(f"peak RSS ≤ {RSS_LIMIT_MB} MB", peaks, RSS_LIMIT_MB, "MB"))
    complete = all(row.complete in ("yes", "n/a") for row in table)
    lines.append(f"- every run complete: {'met' if complete else 'NOT met'}")
    return lines


def _target(label: str, value: float | None, baseline: float | None, factor: float) -> str:
    if not (value and baseline):
        return f"- {label}: not measured"
    ratio = value / baseline
    return f"- {label}: {ratio:.2f}× ({'met' if ratio <= factor else 'NOT met'})"


def _ceiling(label: str, values: list[tuple[str, float | None]], limit: float, unit: str) -> str:
    measured = [(name, value) for name, value in values if value is not None]
    if not measured:
        return f"- {label}: not measured"
    name, worst = max(measured, key=lambda item: item[1])
    verdict = "met" if worst <= limit else "NOT met"
    return f"- {label}: worst {worst:.2f} {unit} ({name}) ({verdict})"
