"""`migrator verify SOURCE TARGET`: prove that the target holds every source message."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from migrator.cli.app import app
from migrator.cli.help import ENDPOINTS, Command
from migrator.display import columns, pad, printable, shorten

if TYPE_CHECKING:
    from migrator.verify import FolderComparison, Headline


@app.command(cls=Command, epilog=ENDPOINTS)
def verify(
    source: str = typer.Argument(..., metavar="SOURCE", help="The original store (an endpoint)."),
    target: str = typer.Argument(..., metavar="TARGET", help="The copy to check (an endpoint)."),
    folder: list[str] = typer.Option([], "--folder", "-f", metavar="GLOB",
                                     help="Check only folders matching this glob; repeatable."),
    exclude: list[str] = typer.Option([], "--exclude", "-x", metavar="GLOB",
                                      help="Skip folders matching this glob; repeatable."),
    map_: list[str] = typer.Option([], "--map", metavar="OLD=NEW",
                                   help="The folder renames the copy used ('OLD=NEW' or 're:REGEX=NEW')."),
    details: bool = typer.Option(False, "--details", help="List every missing or extra message and flag difference."),
) -> int:
    """Check that TARGET holds every message of SOURCE. Compares folder by folder; exits 0 only when it does."""
    from migrator.endpoint import parse_endpoint  # imported when run: see cli/profile.py
    from migrator.foldermap import FolderRules
    from migrator.stores import open_store
    from migrator.verify import verify as compare_stores

    rules = FolderRules.build(folder, exclude, map_)
    with open_store(parse_endpoint(source)) as src, open_store(parse_endpoint(target)) as dst:
        results = compare_stores(src, dst, rules, details=details)
    names = [printable(r.source_folder) for r in results]
    width = max([columns(name) for name in names] + [6])
    typer.echo(f"{pad('folder', width)}  {'source':>7}  {'target':>7}  {'missing':>7}  {'extra':>6}  {'flags≠':>6}  ok")
    for name, r in zip(names, results):
        ok = "yes" if r.complete else "NO" if r.target_folder else "NO (no such folder in target)"
        typer.echo(f"{pad(name, width)}  {r.source_count:>7}  {r.target_count:>7}  {len(r.missing):>7}  "
                   f"{len(r.extra):>6}  {len(r.flag_differences):>6}  {ok}")
        if details:
            _print_details(r)
    complete = all(r.complete for r in results)
    typer.echo("every source message is in the target" if complete else "the target is missing messages")
    return 0 if complete else 1


def _print_details(result: FolderComparison) -> None:
    for uid in result.missing:
        typer.echo(f"    missing: source message {uid}{_about(result.headlines.get(uid))}")
    for uid in result.extra:
        typer.echo(f"    extra:   target message {uid}{_about(result.extra_headlines.get(uid))}")
    for uid, ours, theirs in result.flag_differences:
        typer.echo(f"    flags:   source message {uid}: {ours.describe()} -> {theirs.describe()}")


def _about(headline: Headline | None) -> str:
    """Return ': DATE, from SENDER, "SUBJECT", MESSAGE-ID', each escaped and shortened, or "" without a headline."""
    if headline is None:
        return ""
    date = shorten(printable(headline.date), 31) or "no date"
    sender = f"from {shorten(printable(headline.sender), 40)}" if headline.sender else "no sender"
    subject = f'"{shorten(printable(headline.subject), 50)}"' if headline.subject else "no subject"
    message_id = shorten(printable(headline.message_id), 60) or "no Message-ID"
    return f": {date}, {sender}, {subject}, {message_id}"
