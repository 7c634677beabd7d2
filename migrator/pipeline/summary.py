"""What a run did: counts, bytes, time, and every failure with its folder and uid."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from migrator.core.display import plural
from migrator.core.errors import ExitCode, LimitReached
from migrator.endpoints.presets import preset_named


class Failure(NamedTuple):
    """One message or folder that could not be copied; ``uid`` is None for a whole folder."""

    folder: str
    reason: str
    uid: str | None = None
    size: int | None = None
    target: str | None = None

    def describe(self) -> str:
        """Return one line naming the folder, the message and the reason."""
        return f"{place(self.folder, self.uid, self.size, self.target)}: {self.reason}"


def place(folder: str, uid: str | None = None, size: int | None = None, target: str | None = None) -> str:
    """Return where something happened, for the summary: ``folder 'X', message 12 (300 bytes), to T``."""
    where = f"folder {folder!r}"
    if uid is not None:
        where += f", message {uid}" + (f" ({size} bytes)" if size is not None else "")
    if target:
        where += f", to {target}"
    return where


@dataclass
class Summary:
    """Counts of one run, in the words the README defines.

    *copied*: written by this run. *already there*: in the target before this run, as the state file
    recorded (and the target confirmed) or found there by content key. *left out*: not copied
    because a filter (since, before, max size) excludes it; ``folders_left_out`` counts the folders
    the folder rules leave out. *failed*: could not be read or written; each is in ``failures``.
    *left*: not reached by a run a provider's limit stopped (``limit``), in the folder it stopped in
    (``left``) and in the folders it did not start (``folders_left``): the next run copies them.
    """

    folders: int = 0
    folders_left_out: int = 0
    copied: int = 0
    already_there: int = 0
    flags_updated: int = 0
    deleted: int = 0
    failed: int = 0
    bytes: int = 0
    seconds: float = 0.0
    left_out: int = 0
    failures: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    left: int = 0
    folders_left: int = 0
    limit: LimitReached | None = None
    _noted: set[str] = field(default_factory=set, repr=False)  # the notes, to say each once

    def add(self, other: Summary) -> None:
        """Add the counts, failures and notes of ``other`` (a part of the same run) to this summary."""
        for name in ("folders", "folders_left_out", "copied", "already_there", "left_out", "flags_updated", "deleted",
                     "failed", "bytes", "left", "folders_left"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.limit = self.limit or other.limit
        self.failures.extend(other.failures)
        for text in other.notes:
            self.note(text)

    def note(self, text: str) -> None:
        """Add a note for the end of the run, unless it was noted already (a worker of the same run may have)."""
        if text not in self._noted:
            self._noted.add(text)
            self.notes.append(text)

    def fail(self, failure: Failure) -> None:
        """Record a failure; a message failure also counts as a failed message."""
        self.failures.append(failure)
        if failure.uid is not None:
            self.failed += 1

    def stopped(self, limit: LimitReached, folder_started: bool) -> None:
        """Note that ``limit`` stopped the run in a folder: its ``left`` messages, or the whole folder, are left."""
        self.limit = self.limit or limit
        self.left += limit.left
        if not folder_started:
            self.folders_left += 1

    @property
    def exit_code(self) -> ExitCode:
        """Return LIMITED when a provider's limit stopped the run, else OK when nothing failed, PARTIAL otherwise."""
        if self.limit is not None:
            return ExitCode.LIMITED
        return ExitCode.PARTIAL if self.failures else ExitCode.OK

    def stop_advice(self) -> str | None:
        """Return what to tell the user of a run a provider's limit stopped, or None: what is left, when to rerun."""
        limit = self.limit
        if limit is None:
            return None
        left = plural(self.left, "message") + " left"
        if self.folders_left:
            left += f" (and {plural(self.folders_left, 'folder')} not started)"
        preset = preset_named(limit.provider or "")
        if preset is not None:
            return preset.limit_reached(limit.direction, left)
        return (f"{limit.server} keeps refusing to serve this run for now (it said {limit.said!r}): {left}; "
                "rerun later to continue")

    @property
    def rate(self) -> float:
        """Return messages copied per second."""
        return self.copied / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        """Return the one-paragraph summary printed at the end of a run."""
        folders = plural(self.folders, "folder") + (
            f" ({self.folders_left_out} left out)" if self.folders_left_out else ""
        )
        failed_folders = sum(1 for failure in self.failures if failure.uid is None)
        failed = f"{self.failed} failed" + (f", {plural(failed_folders, 'folder')} failed" if failed_folders else "")
        text = (f"{folders}: {self.copied} copied, {self.already_there} already there, {self.left_out} left out, "
                f"{failed}; {self._throughput()}")
        if self.flags_updated:
            text += f"; flags updated on {self.flags_updated}"
        if self.deleted:
            text += f"; {self.deleted} deleted from the source"
        if self.limit is not None:
            text += f"; stopped by the server's limit with {plural(self.left, 'message')} left"
        return text

    def _throughput(self) -> str:
        # A rerun that finds nothing new has no rate to speak of: "0.0 MB in 0.3 s (0 msg/s)" reads like a fault.
        if not self.copied:
            nothing = "nothing copied" if self.failed or self.failures else "nothing new to copy"
            return f"{nothing} ({self.seconds:.1f} s)"
        return f"{self.bytes / 1_000_000:.1f} MB in {self.seconds:.1f} s ({self.rate:.0f} msg/s)"
