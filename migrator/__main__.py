"""`python -m migrator`: the same command line as the `migrator` script."""

from migrator.cli import entry_point

entry_point()
