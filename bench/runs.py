"""Every run of the benchmark: migrator's copies, the peers and the server limit, as RunSpecs.

A RunSpec builds, in a fresh private work directory, the Invocation to measure. The
same Invocation is measured twice: cold (empty target, no state) and rerun (nothing
new). migrator runs as its real command line with ``--quiet`` and a state file in the
work directory.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import peers
from bench.counts import maildirpp_counts, mbox_tree_counts, pst_counts
from bench.measure import Invocation
from bench.server import Account, BenchServer

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Context:
    """What every run needs: the server, the seeded source account and the Python to run migrator with."""

    server: BenchServer
    source: Account
    python: str


@dataclass(frozen=True)
class RunSpec:
    """One benchmark run. ``protocol`` is what it reads (imap or pop3); POP3 sees INBOX only."""

    name: str
    protocol: str
    start: Callable[[Context, Path], Invocation]
    rerun: bool = True
    unavailable: str | None = None  # why this run cannot happen here ("n/a" in the table)


def default_python() -> str:
    """Return the repository's virtualenv Python when there is one, else the running one."""
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def compile_bytecode(python: str, tree: Path) -> None:
    """Write the bytecode of ``tree``'s package, as an install does: with PYTHONDONTWRITEBYTECODE set (as on the
    benchmark machine), a module changed since its bytecode was written is compiled again by every run timed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([python, "-m", "compileall", "-q", "migrator"], cwd=tree, env=env, check=True,
                   stdout=subprocess.DEVNULL)


def migrator(context: Context, work: Path, source: str, target: str) -> list[str]:
    """Return the migrator command line copying ``source`` into ``target`` with a state file in ``work``."""
    state = work / "state.sqlite"
    return [context.python, "-m", "migrator", "copy", "--quiet", "--state", str(state), source, target]


def _environment(context: Context, work: Path) -> dict[str, str]:
    # XDG_STATE_HOME keeps anything migrator writes by default inside the work directory.
    return {"BENCH_PASSWORD": context.server.password, "XDG_STATE_HOME": str(work / "xdg"),
            "PYTHONPATH": str(REPO)}


def imap_to_maildir(context: Context, work: Path) -> Invocation:
    """Return migrator IMAP -> Maildir."""
    argv = migrator(context, work, context.source.url("imaps"), f"maildir:{work / 'mail'}")
    return Invocation(argv, _environment(context, work), lambda: maildirpp_counts(work / "mail"))


def imap_to_mbox(context: Context, work: Path) -> Invocation:
    """Return migrator IMAP -> mbox tree."""
    argv = migrator(context, work, context.source.url("imaps"), f"mbox:{work / 'mail'}")
    return Invocation(argv, _environment(context, work), lambda: mbox_tree_counts(work / "mail"))


def imap_to_pst(context: Context, work: Path) -> Invocation:
    """Return migrator IMAP -> PST (counted by readpst)."""
    argv = migrator(context, work, context.source.url("imaps"), f"pst:{work / 'mail.pst'}")
    return Invocation(argv, _environment(context, work), lambda: pst_counts(work / "mail.pst"))


def imap_to_imap(context: Context, work: Path) -> Invocation:
    """Return migrator IMAP -> IMAP into a new, empty account on the same server."""
    target = context.server.new_account("target")
    argv = migrator(context, work, context.source.url("imaps"), target.url("imaps"))
    return Invocation(argv, _environment(context, work), lambda: context.server.folder_counts(target))


def pop3_to_maildir(context: Context, work: Path) -> Invocation:
    """Return migrator POP3 -> Maildir."""
    argv = migrator(context, work, context.source.url("pop3s"), f"maildir:{work / 'mail'}")
    return Invocation(argv, _environment(context, work), lambda: maildirpp_counts(work / "mail"))


def server_limit(context: Context, work: Path) -> Invocation:
    """Return the one-connection fetch of every folder, data discarded (see bench/limit.py)."""
    source = context.source
    output = work / "counts.json"
    argv = [context.python, "-m", "bench.limit", source.host, str(source.imap_port), source.user, source.ca_file,
            str(output)]
    return Invocation(argv, _environment(context, work), lambda: json.loads(output.read_text()))


def _peer(start: Callable[[Account, Path], Invocation]) -> Callable[[Context, Path], Invocation]:
    return lambda context, work: start(context.source, work)


def pst_unavailable() -> str | None:
    """Return why migrator cannot write PST here, or None when its PST store imports."""
    try:
        importlib.import_module("migrator.stores.pst.store").PstStore  # noqa: B018 - the lookup is the check
    except (ImportError, AttributeError) as error:
        return f"migrator.stores.pst.store does not import: {error}"
    return None


def all_runs() -> list[RunSpec]:
    """Return every run, in the order they are measured."""
    return [
        RunSpec("server limit", "imap", server_limit, rerun=False),
        RunSpec("mbsync IMAP→Maildir", "imap", _peer(peers.mbsync)),
        RunSpec("offlineimap3 IMAP→Maildir", "imap", _peer(peers.offlineimap)),
        RunSpec("getmail6 POP3→Maildir", "pop3", _peer(peers.getmail)),
        RunSpec("migrator IMAP→Maildir", "imap", imap_to_maildir),
        RunSpec("migrator IMAP→mbox", "imap", imap_to_mbox),
        RunSpec("migrator IMAP→PST", "imap", imap_to_pst, unavailable=pst_unavailable()),
        RunSpec("migrator IMAP→IMAP", "imap", imap_to_imap),
        RunSpec("migrator POP3→Maildir", "pop3", pop3_to_maildir),
    ]
