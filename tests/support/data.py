"""Where the test data kept in the repository lives: tests read nothing outside the clone."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"
PST_SAMPLES = DATA / "pst-samples"  # Outlook-written files; provenance and licences in its README.md
