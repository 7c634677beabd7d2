"""Where migrator keeps its own files: state and locks under the user's state directory."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def state_dir() -> Path:
    """Return ``$XDG_STATE_HOME/migrator`` (default ``~/.local/state/migrator``)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "migrator"


def default_state_path(*endpoints: object) -> Path:
    """Return the state file for a run between these endpoints (same endpoints, same file)."""
    digest = hashlib.sha1("\n".join(str(e) for e in endpoints).encode()).hexdigest()[:16]
    return state_dir() / f"copy-{digest}.sqlite"
