"""The command line: a thin layer over the library; each command module registers itself.

Each command imports what it uses when it runs: every start of `migrator` (a cron job's included)
registers all commands, and most of what they use (YAML, tqdm, the stores, the pipeline) one
command needs and the others do not. tests/test_startup.py holds the line.
"""

from migrator.cli import batch, copy, folders, login, profile, run, schedule, status, verify  # noqa: F401  (registers)
from migrator.cli.app import app, entry_point, main

__all__ = ["app", "entry_point", "main"]
