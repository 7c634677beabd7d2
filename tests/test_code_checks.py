"""ruff and mypy pass, with the settings in pyproject.toml: CI's one test command checks the code too."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.tools import unavailable

REPO = Path(__file__).resolve().parent.parent


def check(tool: str, *args: str) -> None:
    """Run ``tool`` from this interpreter's environment in the repository; fail with its report."""
    if importlib.util.find_spec(tool) is None:
        unavailable(f"needs {tool} in {sys.executable}'s environment: pip install -e '.[test]'")
    result = subprocess.run([sys.executable, "-m", tool, *args], cwd=REPO, capture_output=True, text=True,
                            timeout=600)
    if result.returncode != 0:
        command = " ".join(["python -m", tool, *args])
        pytest.fail(f"{command} exited with {result.returncode}:\n{result.stdout}{result.stderr}", pytrace=False)


def test_ruff_finds_nothing() -> None:
    check("ruff", "check", "migrator", "tests", "bench", "harness")


def test_mypy_finds_nothing() -> None:
    check("mypy")  # the files and options are in pyproject.toml
