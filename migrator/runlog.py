"""`--log FILE`: one timestamped line per event of a run, appended, for cron and systemd runs."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import TextIO

from migrator.errors import ConfigError
from migrator.pipeline import Failure, Progress, Summary


class RunLog(Progress):
    """Writes start, each finished folder, each failure and the summary to a log file."""

    def __init__(self, path: Path, name: str) -> None:
        self.path = Path(path)
        self.name = name
        try:
            # The default log of a scheduled run sits in the state directory, absent before the first run.
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as error:
            raise ConfigError(f"cannot write the log file {self.path}: {error.strerror}; check --log") from None
        self._file: TextIO = os.fdopen(fd, "a", encoding="utf-8", buffering=1)

    def event(self, text: str) -> None:
        """Append one line: local time with its offset, the profile name, and ``text``."""
        moment = datetime.now().astimezone().isoformat(timespec="seconds")
        self._file.write(f"{moment} {self.name}: {text}\n")
        self._file.flush()

    def run_started(self, folders: int) -> None:
        self.event(f"copying {folders} folders")

    def folder_done(self, folder: str, copied: int, failed: int) -> None:
        self.event(f"folder {folder} done: {copied} copied, {failed} failed")

    def failed(self, failure: Failure) -> None:
        self.event(f"failed: {failure.describe()}")

    def summary(self, summary: Summary, exit_code: int) -> None:
        """Log the run's summary and its exit status."""
        self.event(f"summary: {summary.describe()}; exit status {exit_code}")

    def close_file(self) -> None:
        """Close the log file (``close`` is the end of the copy, which is logged by ``summary``)."""
        self._file.close()


class ProgressGroup(Progress):
    """Hands every progress event to each of its members (the display and the log)."""

    def __init__(self, *members: Progress) -> None:
        self.members = members

    def run_started(self, folders: int) -> None:
        for member in self.members:
            member.run_started(folders)

    def folder_started(self, folder: str, messages: int, size: int) -> None:
        for member in self.members:
            member.folder_started(folder, messages, size)

    def messages_done(self, count: int, size: int) -> None:
        for member in self.members:
            member.messages_done(count, size)

    def folder_done(self, folder: str, copied: int, failed: int) -> None:
        for member in self.members:
            member.folder_done(folder, copied, failed)

    def failed(self, failure: Failure) -> None:
        for member in self.members:
            member.failed(failure)

    def close(self) -> None:
        for member in self.members:
            member.close()
