"""The command line: a thin layer over the library; each command module registers itself."""

from migrator.cli import copy, folders, profile, run, schedule, status, verify  # noqa: F401  (registers the commands)
from migrator.cli.app import app, entry_point, main

__all__ = ["app", "entry_point", "main"]
