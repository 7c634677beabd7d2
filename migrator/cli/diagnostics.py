"""-v and --debug-imap/--debug-pop3: what a run is doing, and every protocol line, to stderr or a file."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TextIO

from migrator.core.errors import ConfigError

GLOBAL_FLAGS = ("-v", "--verbose", "--debug-imap", "--debug-pop3")
GLOBAL_OPTIONS = ("--debug-file",)  # followed by a value
_handlers: list[logging.Handler] = []  # what an earlier start_logging installed (tests run main() many times)


def start_logging(verbose: bool, imap: bool, pop3: bool, path: Path | None) -> None:
    """Send the run's log (with ``verbose``) and the protocol traces asked for to stderr, or to ``path``.

    Raises ConfigError when ``path`` cannot be written.
    """
    log = logging.getLogger("migrator")
    for handler in _handlers:
        log.removeHandler(handler)
        handler.close()
    _handlers.clear()
    log.setLevel(logging.INFO if verbose else logging.NOTSET)
    for protocol, wanted in (("imap", imap), ("pop3", pop3)):
        logging.getLogger(f"migrator.wire.{protocol}").setLevel(logging.DEBUG if wanted else logging.NOTSET)
    if verbose or imap or pop3:
        handler = logging.StreamHandler(_opened(path) if path is not None else sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
        _handlers.append(handler)


def _opened(path: Path) -> TextIO:
    try:
        # Traces name the account and its folders: readable by the user alone, as the state file is.
        return os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "a", encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot write the debug log {path}: {error.strerror}; check --debug-file") from None


def global_options_first(argv: list[str]) -> list[str]:
    """Return ``argv`` with -v, --debug-imap, --debug-pop3 and --debug-file moved before the command.

    They are options of the program, not of each command; moved, `migrator copy -v …` works too.
    """
    moved: list[str] = []
    rest: list[str] = []
    arguments = iter(argv)
    for argument in arguments:
        if argument == "--":
            rest += [argument, *arguments]
        elif argument in GLOBAL_FLAGS or argument.startswith(tuple(f"{o}=" for o in GLOBAL_OPTIONS)):
            moved.append(argument)
        elif argument in GLOBAL_OPTIONS:
            value = next(arguments, None)  # missing, typer says that the option needs a value
            moved += [argument] if value is None else [argument, value]
        else:
            rest.append(argument)
    return moved + rest
