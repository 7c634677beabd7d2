"""What every start of `migrator` pays for: a cron job that finds nothing new should not load YAML, tqdm or PST.

Each command imports what it uses when it runs (migrator/cli/__init__.py); these tests hold that line
in a fresh interpreter, where nothing an earlier test imported hides a top-level import.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# What one command needs and the others do not: the YAML of profiles, the progress bars, the PST
# code, the copy machinery with its state file.
HEAVY = ("yaml", "tqdm", "migrator.stores.pst", "migrator.pipeline.run", "migrator.state.statefile", "sqlite3")


def loaded_after(code: str) -> list[str]:
    """Return the modules a fresh interpreter holds after running ``code``."""
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.splitlines()[-1])


def heavy_among(modules: list[str]) -> list[str]:
    return [name for name in modules if any(name == heavy or name.startswith(heavy + ".") for heavy in HEAVY)]


def test_importing_the_command_line_loads_none_of_what_one_command_needs() -> None:
    assert heavy_among(loaded_after("import migrator.cli")) == []


@pytest.mark.parametrize("arguments", [["--version"], ["--help"], ["copy", "--help"], ["run", "--help"]])
def test_asking_for_help_or_the_version_loads_none_of_it_either(arguments: list[str]) -> None:
    code = f"from migrator.cli import main\ntry:\n    main({arguments!r})\nexcept SystemExit:\n    pass"
    assert heavy_among(loaded_after(code)) == []


def test_the_check_sees_a_heavy_import() -> None:
    # The probe must notice what it looks for, or the tests above could never fail.
    assert "yaml" in heavy_among(loaded_after("import migrator.cli\nimport yaml"))
