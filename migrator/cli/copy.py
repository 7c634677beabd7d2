"""`migrator copy SOURCE TARGET...`: one run from any store into one or more stores."""

from __future__ import annotations

from pathlib import Path

import typer

from migrator.cli.app import app
from migrator.cli.progress_bars import choose_progress, print_summary
from migrator.endpoint import parse_endpoint
from migrator.foldermap import FolderRules
from migrator.paths import default_state_path
from migrator.pipeline import DEFAULT_CONNECTIONS, CopyOptions, run_copy
from migrator.state import StateStore


@app.command()
def copy(
    source: str = typer.Argument(..., help="Where to read: imaps://USER@HOST, pop3s://…, maildir:PATH, mbox:PATH, eml:PATH, pst:PATH."),
    targets: list[str] = typer.Argument(..., help="Where to write (one or more); each message is fetched once."),
    folder: list[str] = typer.Option([], "--folder", "-f", help="Copy only folders matching this glob ('/' between levels); repeatable."),
    exclude: list[str] = typer.Option([], "--exclude", "-x", help="Skip folders matching this glob; repeatable."),
    map_: list[str] = typer.Option([], "--map", help="Rename folders: 'OLD=NEW' (with subfolders) or 're:REGEX=NEW'; repeatable."),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="List what would be copied; write nothing."),
    delete: bool = typer.Option(False, "--delete", help="Delete from the source what every target holds durably (POP3)."),
    state: Path | None = typer.Option(None, "--state", help="State file for incremental runs (default: one per endpoint set)."),
    no_state: bool = typer.Option(False, "--no-state", help="Keep no state: every run compares by content instead."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing unless something fails."),
    connections: int = typer.Option(DEFAULT_CONNECTIONS, "--connections", "-c", min=1,
                                    help="Folders copied at once, each on connections of its own (IMAP, Maildir, mbox, EML)."),
) -> int:
    """Copy every folder of SOURCE into each TARGET, incrementally and byte for byte."""
    source_ep = parse_endpoint(source)
    target_eps = [parse_endpoint(t) for t in targets]
    options = CopyOptions(rules=FolderRules.build(folder, exclude, map_), dry_run=dry_run, delete_after=delete,
                          connections=connections)
    state_store = None if no_state else StateStore(state or default_state_path(source_ep, *target_eps))
    try:
        summary = run_copy(source_ep, target_eps, options, state_store, choose_progress(quiet, dry_run))
    finally:
        if state_store is not None:
            state_store.close()
    print_summary(summary, quiet=quiet, dry_run=dry_run)
    return int(summary.exit_code)
