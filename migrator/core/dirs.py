"""Where migrator keeps its own files: under the user's state directory (state files, locks, OAuth2 tokens)."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """Return ``$XDG_STATE_HOME/migrator`` (default ``~/.local/state/migrator``)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "migrator"
