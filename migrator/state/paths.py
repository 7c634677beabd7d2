"""Where a run's state file is: under the user's state directory (``migrator.core.dirs``)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from migrator.core.dirs import state_dir


def default_state_path(*endpoints: object) -> Path:
    """Return the state file for a run between these endpoints (same endpoints, same file)."""
    digest = hashlib.sha1("\n".join(str(e) for e in endpoints).encode()).hexdigest()[:16]
    return state_dir() / f"copy-{digest}.sqlite"
