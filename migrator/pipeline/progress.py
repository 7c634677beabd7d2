"""How the pipeline reports progress: a callback object; the CLI draws it with tqdm."""

from __future__ import annotations

from migrator.pipeline.summary import Failure


class Progress:
    """Receives progress events; every method does nothing unless overridden."""

    def run_started(self, folders: int) -> None:
        """Called once with the number of folders to copy."""

    def folder_started(self, folder: str, messages: int, size: int) -> None:
        """Called before a folder's messages are copied, with what is to be copied."""

    def messages_done(self, count: int, size: int) -> None:
        """Called as messages are written to every target."""

    def adopted(self, folder: str, count: int) -> None:
        """Called when a target already held ``count`` messages (written by a run stopped before recording
        them, or copied by other means): they are recorded, not written again."""

    def flags_updated(self, folder: str, count: int) -> None:
        """Called when flags changed at the source since an earlier run were set on ``count`` messages of a target."""

    def folder_done(self, folder: str, copied: int, failed: int) -> None:
        """Called when a folder is finished."""

    def failed(self, failure: Failure) -> None:
        """Called for each failure as it happens."""

    def close(self) -> None:
        """Called at the end of the run."""
