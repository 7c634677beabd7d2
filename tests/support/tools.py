"""Decide what a test does when an external tool it needs is missing: skip locally, fail in CI."""

from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    """Return True when running under CI (``CI=true``), where missing tools are failures."""
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    """Fail the current test under CI, skip it otherwise; always raises pytest's outcome exception."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true, so this is a failure, not a skip)")
    pytest.skip(reason)


def require_tools(*names: str) -> None:
    """Return when every named executable is on PATH; otherwise skip or fail (see ``unavailable``)."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        unavailable(f"needs {', '.join(missing)} on PATH")
