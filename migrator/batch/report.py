"""What a batch did, account by account: the result of each, report.csv and report.json, and joining shards'.

A row is an account's last run in this batch directory. It never holds a password: the first error is
the worker's message with every secret of its row masked.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from migrator.core.errors import ExitCode

EXACT, PARTIAL, FAILED, LOCKED, STOPPED, CRASHED = "exact", "partial", "failed", "locked", "stopped", "crashed"
RESULT_FILE = "result.json"


@dataclass(frozen=True)
class AccountResult:
    """One account's run: counts as the run's summary has them, when it ran, and how it ended."""

    account: str
    status: str
    copied: int = 0
    already_there: int = 0
    failed: int = 0
    bytes: int = 0
    seconds: float = 0.0
    exit_code: int = 0
    first_error: str = ""
    started: float = 0.0  # Unix times
    finished: float = 0.0
    peak_memory_kb: int = 0  # the worker's ru_maxrss

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> AccountResult:
        """Return the result a report row or result.json holds (values as strings or numbers)."""
        kinds = {f.name: f.type for f in fields(cls)}
        values = {}
        for name, value in data.items():
            if name in kinds:
                kind = {"int": int, "float": float}.get(str(kinds[name]), str)
                values[name] = kind(value) if value not in (None, "") else kind()
        return cls(**values)

    @property
    def held(self) -> int:
        """Return the messages the target holds from this account: copied now or before."""
        return self.copied + self.already_there


def status_of(exit_code: int) -> str:
    """Return the status word of a worker's exit code."""
    if exit_code == ExitCode.OK:
        return EXACT
    if exit_code == ExitCode.PARTIAL:
        return PARTIAL
    if exit_code == ExitCode.LOCKED:
        return LOCKED
    if exit_code in (ExitCode.HANGUP, ExitCode.INTERRUPTED, ExitCode.TERMINATED):
        return STOPPED
    return FAILED if 0 < exit_code < 128 else CRASHED


def batch_exit_code(results: Iterable[AccountResult]) -> int:
    """Return 0 when every account is exact, 4 when the others are held by another run, 1 otherwise."""
    statuses = {result.status for result in results} - {EXACT}
    if not statuses:
        return int(ExitCode.OK)
    return int(ExitCode.LOCKED if statuses == {LOCKED} else ExitCode.PARTIAL)


def mask(text: str, secrets: Iterable[str]) -> str:
    """Return ``text`` with every secret replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def write_json_atomic(path: Path, data: object) -> None:
    """Write ``data`` as JSON to ``path`` by rename, so a reader never sees half a file."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(data, file, indent=1)
        file.write("\n")
    os.replace(temporary, path)


def read_result(account_dir: Path) -> AccountResult | None:
    """Return the last result recorded in an account's directory, or None before its first run ends."""
    try:
        return AccountResult.from_dict(json.loads((account_dir / RESULT_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def write_result(account_dir: Path, result: AccountResult) -> None:
    """Record ``result`` as the account's last result."""
    write_json_atomic(account_dir / RESULT_FILE, asdict(result))


COLUMNS = tuple(f.name for f in fields(AccountResult))


def write_reports(directory: Path, results: list[AccountResult], title: str) -> list[Path]:
    """Write report.csv, report.json and report.html into ``directory``; return their paths."""
    from migrator.batch.html import render_html

    directory.mkdir(parents=True, exist_ok=True)
    ordered = sorted(results, key=lambda r: r.account.lower())
    csv_path, json_path, html_path = (directory / f"report.{kind}" for kind in ("csv", "json", "html"))
    with open(csv_path, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        writer.writerows([getattr(r, c) if c != "seconds" else f"{r.seconds:.1f}" for c in COLUMNS]
                         for r in ordered)
    write_json_atomic(json_path, {"title": title, "exit_code": batch_exit_code(ordered),
                                  "accounts": [asdict(r) for r in ordered]})
    html_path.write_text(render_html(title, ordered), encoding="utf-8")
    return [csv_path, json_path, html_path]


def read_report(path: Path) -> list[AccountResult]:
    """Return the rows of a report.json; raise OSError or ValueError when it is not one."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return [AccountResult.from_dict(row) for row in data["accounts"]]


def report_files(directory: Path) -> list[Path]:
    """Return the report.json files of a batch directory: its own and its shards' (reports/*/)."""
    found = [directory / "report.json"] if (directory / "report.json").exists() else []
    return found + sorted((directory / "reports").glob("*/report.json"))


def merged(reports: Iterable[list[AccountResult]]) -> list[AccountResult]:
    """Return one row per account from several reports: where two have it, the one that finished last."""
    rows: dict[str, AccountResult] = {}
    for report in reports:
        for row in report:
            key = row.account.lower()
            if key not in rows or row.finished >= rows[key].finished:
                rows[key] = row
    return sorted(rows.values(), key=lambda r: r.account.lower())
