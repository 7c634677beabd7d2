"""Temporary files a killed run left in a local archive, and their removal by the next run that writes there.

Every file of an archive is written under a temporary name first and renamed into place. A run
stopped by a signal removes its own; one killed (SIGKILL, an OOM kill, a power cut) cannot, and its
files stay, hidden, for good: a PST's is as large as the PST. So a store opened for writing first
removes those of earlier runs, and of all the files it finds only these:

- the names migrator gives: ``temp_name`` below, a Maildir's ``tmp/`` names (maildir.py); and a
  PST's or an EML's from before the host was part of the name;
- made by a process of this host that is gone (the name holds its pid and host); or, where that
  cannot be asked (another host, an older name without them), unchanged for ``STALE_AFTER``.

A live run's files, in another process or this one, are never touched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger(__name__)

STALE_AFTER = 36 * 3600.0  # seconds: what Dovecot waits before it removes a file from a Maildir's tmp/
_TEMP = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)@(?P<host>[^@/]+)\.[0-9a-f]{8}\.tmp")
# Names of earlier versions: ".NAME.PID.HEX.tmp" (no host), and a PST's ".NAME.XXXXXXXX.tmp" (mkstemp).
_OLD_TEMPS = (re.compile(r"\.(?P<name>.+)\.\d+\.[0-9a-f]{8}\.tmp"), re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp"))


class Maker(NamedTuple):
    """Who made a temporary file: the pid of a process of this host, or None when that cannot be told."""

    pid: int | None


def temp_name(name: str) -> str:
    """Return a hidden, unique name to write ``name`` under before renaming it into place."""
    return f".{name}.{os.getpid()}@{this_host()}.{secrets.token_hex(4)}.tmp"


def this_host() -> str:
    """Return this host's name as a file name holds it."""
    return socket.gethostname().replace("/", "_")


def temp_maker(filename: str, writes: Callable[[str], bool]) -> Maker | None:
    """Return who made ``filename`` if it is a temporary name migrator gives to a file it ``writes``
    (a predicate on the final name), else None."""
    match = _TEMP.fullmatch(filename)
    if match is not None and writes(match["name"]):
        return Maker(int(match["pid"]) if match["host"] == this_host() else None)
    for old in _OLD_TEMPS:
        match = old.fullmatch(filename)
        if match is not None and writes(match["name"]):
            return Maker(None)
    return None


def process_gone(pid: int) -> bool:
    """Return True when no process ``pid`` runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, under another user
    return False


def remove_abandoned(directory: Path | str, maker: Callable[[str], Maker | None], *, below: bool = False) -> None:
    """Remove the files in ``directory`` (and, with ``below``, in every directory under it, not following
    links) that ``maker`` says migrator made, once abandoned (see above).

    A directory that cannot be read, or a file that cannot be removed, is left as it is: the run
    does not need them gone, it only should not leave them forever.
    """
    try:
        entries = os.scandir(directory)
    except OSError:
        return
    with entries:
        for entry in entries:
            if below and entry.is_dir(follow_symlinks=False):
                remove_abandoned(entry.path, maker, below=True)
                continue
            made_by = maker(entry.name)
            if made_by is not None and entry.is_file(follow_symlinks=False) and _abandoned(made_by, entry):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    log.info("removed %s, left by a run that was killed", entry.path)


def _abandoned(made_by: Maker, entry: os.DirEntry) -> bool:
    if made_by.pid is not None:
        return made_by.pid != os.getpid() and process_gone(made_by.pid)
    try:
        return time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER
    except OSError:
        return False
