"""`migrator copy SOURCE TARGET...`: one run from any store into one or more stores."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import typer

from migrator.cli.app import app
from migrator.cli.help import ENDPOINTS, EXIT_CODES, Command
from migrator.core.errors import ConfigError
from migrator.endpoints.presets import Limits, parse_limits
from migrator.pipeline.filters import MessageFilter
from migrator.pipeline.foldermap import FolderRules
from migrator.pipeline.options import DEFAULT_CONNECTIONS, CopyOptions


def _as_profile_filter(key: str) -> Callable[[str], object]:
    """Return a parser reading an option's text as the profile's ``filters: KEY`` reads its value."""

    def parse(text: str) -> object:
        from migrator.profile.schema import FILTERS_KEYS  # imported when used: the profile code brings in YAML

        key_spec = FILTERS_KEYS[key]
        assert key_spec.convert is not None  # only sections have none, and filters holds none
        try:
            return key_spec.convert(text)
        except ValueError:
            raise typer.BadParameter(f"expects {key_spec.expected}, got {text!r}") from None

    return parse


@app.command(cls=Command, epilog=f"{ENDPOINTS}\n\n{EXIT_CODES}")
def copy(
    source: str = typer.Argument(..., metavar="SOURCE", help="Where to read: an endpoint (forms below)."),
    targets: list[str] = typer.Argument(..., metavar="TARGET...",
                                        help="Where to write (one or more endpoints); each message is fetched once."),
    folder: list[str] = typer.Option([], "--folder", "-f", metavar="GLOB",
                                     help="Copy only folders matching this glob ('/' between levels); repeatable."),
    exclude: list[str] = typer.Option([], "--exclude", "-x", metavar="GLOB",
                                      help="Skip folders matching this glob; repeatable."),
    map_: list[str] = typer.Option([], "--map", metavar="OLD=NEW",
                                   help="Rename folders: 'OLD=NEW' (with subfolders) or 're:REGEX=NEW'; repeatable."),
    since: datetime | None = typer.Option(None, "--since", metavar="DATE", parser=_as_profile_filter("since"),
                                          help="Copy only messages received on or after DATE (2024-01-31)."),
    before: datetime | None = typer.Option(None, "--before", metavar="DATE", parser=_as_profile_filter("before"),
                                           help="Copy only messages received before DATE (2024-12-31)."),
    max_size: int | None = typer.Option(None, "--max-size", metavar="SIZE", parser=_as_profile_filter("max_size"),
                                        help="Skip messages larger than SIZE (25MB, 1.5GB, 512KiB)."),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="List what would be copied; write nothing."),
    delete: bool = typer.Option(False, "--delete",
                                help="Delete from the source what every target holds durably (POP3)."),
    state: Path | None = typer.Option(None, "--state", metavar="FILE",
                                      help="State file for incremental runs (default: one per endpoint set)."),
    no_state: bool = typer.Option(False, "--no-state", help="Keep no state: every run compares by content instead."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing unless something fails."),
    log: Path | None = typer.Option(None, "--log", metavar="FILE",
                                    help="Append one timestamped line per event to this file."),
    connections: int = typer.Option(DEFAULT_CONNECTIONS, "--connections", "-c", min=1, metavar="N",
                                    help="Folders copied at once, each on connections of its own "
                                         "(IMAP, Maildir, mbox, EML); a server's connections= caps it."),
    max_bytes_per_second: str | None = typer.Option(
        None, "--max-bytes-per-second", metavar="SIZE",
        help="Move at most SIZE a second (500KB, 2MB) to or from each server, unless its endpoint says otherwise."),
    max_messages_per_second: float | None = typer.Option(
        None, "--max-messages-per-second", metavar="N", min=0.001,
        help="Copy at most N messages a second to or from each server, unless its endpoint says otherwise."),
) -> int:
    """Copy every folder of SOURCE into each TARGET. Incrementally and byte for byte; each message is fetched once."""
    from migrator.cli.logged import describe, logged_copy, opened_log  # imported when run: see cli/__init__.py
    from migrator.cli.progress_bars import choose_progress, print_summary
    from migrator.endpoints.endpoint import parse_endpoint
    from migrator.pipeline.run import run_copy
    from migrator.state.paths import default_state_path
    from migrator.state.statefile import StateStore

    with opened_log(log, "copy") as run_log:
        source_ep = parse_endpoint(source)
        target_eps = [parse_endpoint(t) for t in targets]
        options = CopyOptions(rules=FolderRules.build(folder, exclude, map_), dry_run=dry_run, delete_after=delete,
                              message_filter=_message_filter(since, before, max_size), connections=connections,
                              limits=_limits(max_bytes_per_second, max_messages_per_second))
        state_store = None if no_state else StateStore(state or default_state_path(source_ep, *target_eps))
        try:
            summary = logged_copy(run_log, describe(source_ep, target_eps, dry_run), choose_progress(quiet, dry_run),
                                  lambda progress: run_copy(source_ep, target_eps, options, state_store, progress))
        finally:
            if state_store is not None:
                state_store.close()
    print_summary(summary, quiet=quiet, dry_run=dry_run)
    return int(summary.exit_code)


def _limits(max_bytes_per_second: str | None, max_messages_per_second: float | None) -> Limits:
    """Return the run's limits for every server; raise ConfigError for a size that is not one."""
    return parse_limits({"max_bytes_per_second": max_bytes_per_second,
                         "max_messages_per_second": max_messages_per_second}, "the command line")


def _message_filter(since: datetime | None, before: datetime | None, max_size: int | None) -> MessageFilter:
    """Return the filter the options ask for; raise ConfigError when no message could pass it."""
    message_filter = MessageFilter(since, before, max_size)
    if message_filter.empty_window:
        raise ConfigError("--before must be later than --since, or no message can match")
    return message_filter
