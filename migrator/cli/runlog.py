"""`--log FILE`: one timestamped line per event of a run, appended, for cron and systemd runs.

A nightly run mostly finds nothing new, so a folder gets a line only when something happened
to it (messages copied, failed or found already in a target, flags carried); the summary
line counts the rest.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import TextIO

from migrator.core.errors import ConfigError
from migrator.pipeline.progress import Progress
from migrator.pipeline.summary import Failure, Summary


class RunLog(Progress):
    """Writes start, each folder something happened to, each failure and the summary to a log file."""

    def __init__(self, path: Path, name: str) -> None:
        self.path = Path(path)
        self.name = name
        # Per folder, until it is done: messages adopted and flags updated (workers interleave folders).
        self._adopted: dict[str, int] = {}
        self._flags: dict[str, int] = {}
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

    def adopted(self, folder: str, count: int) -> None:
        self._adopted[folder] = self._adopted.get(folder, 0) + count

    def flags_updated(self, folder: str, count: int) -> None:
        self._flags[folder] = self._flags.get(folder, 0) + count

    def folder_done(self, folder: str, copied: int, failed: int) -> None:
        adopted, flags = self._adopted.pop(folder, 0), self._flags.pop(folder, 0)
        if not (copied or failed or adopted or flags):
            return
        text = f"folder {folder} done: {copied} copied, {failed} failed"
        if adopted:
            text += f", {adopted} found already in the target (recorded, not copied again)"
        if flags:
            text += f", flags updated on {flags}"
        self.event(text)

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

    def adopted(self, folder: str, count: int) -> None:
        for member in self.members:
            member.adopted(folder, count)

    def flags_updated(self, folder: str, count: int) -> None:
        for member in self.members:
            member.flags_updated(folder, count)

    def folder_done(self, folder: str, copied: int, failed: int) -> None:
        for member in self.members:
            member.folder_done(folder, copied, failed)

    def failed(self, failure: Failure) -> None:
        for member in self.members:
            member.failed(failure)

    def close(self) -> None:
        for member in self.members:
            member.close()
