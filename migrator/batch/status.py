"""A batch directory read back: every account listed by its runs, how it stands now, and shards joined."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from migrator.batch.coordinator import ACCOUNTS_DIR
from migrator.batch.report import AccountResult, merged, read_report, read_result, report_files, write_reports
from migrator.batch.worker import STATE_FILE
from migrator.core.errors import ConfigError
from migrator.state.lock import locked_by

RUNNING, WAITING = "running", "waiting"
FAILED_FILES = ("failed.csv", "failed.txt")


def batch_rows(directory: Path) -> list[AccountResult]:
    """Return a row per account the runs in ``directory`` listed: its last result, or running, or waiting."""
    listed = _listed(directory)
    if not listed:
        raise ConfigError(f"{directory} holds no batch: no accounts.json (migrator batch writes one as it starts)")
    rows = []
    for account, name in sorted(listed.items(), key=lambda item: item[0].lower()):
        place = directory / ACCOUNTS_DIR / name
        if locked_by(place / (STATE_FILE + ".lock")):
            rows.append(AccountResult(account, RUNNING))
        else:
            rows.append(read_result(place) or AccountResult(account, WAITING))
    return rows


def _listed(directory: Path) -> dict[str, str]:
    listed: dict[str, str] = {}
    for path in [directory / "accounts.json", *sorted((directory / "reports").glob("*/accounts.json"))]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        listed.update((entry["account"], entry["dir"]) for entry in data.get("accounts", []))
    return listed


def merge_reports(directories: Iterable[Path], out: Path) -> tuple[list[AccountResult], list[Path]]:
    """Join the reports of ``directories`` (and their shards') into one in ``out``; return its rows and files."""
    directories = list(directories)
    files = [path for directory in directories for path in report_files(directory)]
    if not files:
        raise ConfigError(f"no report.json in {', '.join(map(str, directories))} nor in their reports/*/: "
                          "nothing to merge")
    try:
        rows = merged(read_report(path) for path in files)
    except (OSError, ValueError, KeyError) as error:
        raise ConfigError(f"cannot read a report to merge: {error}") from None
    written = write_reports(out, rows, f"Mailbox migration: {len(files)} reports merged")
    failed = _merge_failed(directories, out)
    return rows, written + failed


def _merge_failed(directories: list[Path], out: Path) -> list[Path]:
    written = []
    for name in FAILED_FILES:
        parts = [path for directory in directories for path in sorted((directory / "reports").glob(f"*/{name}"))]
        if not parts:
            continue
        lines: list[str] = []
        for part in parts:
            text = part.read_text(encoding="utf-8").splitlines(keepends=True)
            header = name == "failed.csv" and lines and text and text[0] == lines[0]
            lines += text[1:] if header else text
        path = out / name
        path.touch(mode=0o600)
        path.write_text("".join(lines), encoding="utf-8")
        written.append(path)
    return written
