"""`migrator verify SOURCE TARGET`: prove that the target holds every source message."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from migrator.cli.app import app
from migrator.cli.help import ENDPOINTS, Command
from migrator.core.display import columns, pad, plural, printable, shorten

if TYPE_CHECKING:
    from migrator.pipeline.verify import FolderComparison, Headline


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
    """Check that TARGET holds every message of SOURCE, in the folders copy put them in. Exits 0 only when it does."""
    from migrator.endpoints.endpoint import parse_endpoint  # imported when run: see cli/__init__.py
    from migrator.pipeline.foldermap import FolderRules
    from migrator.pipeline.verify import verify as compare_stores
    from migrator.stores import open_store

    rules = FolderRules.build(folder, exclude, map_)
    with open_store(parse_endpoint(source)) as src, open_store(parse_endpoint(target)) as dst:
        results = compare_stores(src, dst, rules, details=details)
    names = [_row_name(r) for r in results]
    width = max([columns(name) for name in names] + [6])
    typer.echo(f"{pad('folder', width)}  {'source':>7}  {'target':>7}  {'missing':>7}  {'extra':>6}  {'flags≠':>6}  ok")
    for name, r in zip(names, results):
        source_count = r.source_count if r.source_folder is not None else "-"
        target_count = r.target_count if r.target_folder is not None else "-"
        typer.echo(f"{pad(name, width)}  {source_count:>7}  {target_count:>7}  {len(r.missing):>7}  "
                   f"{len(r.extra):>6}  {len(r.flag_differences):>6}  {_verdict(r)}")
        if details:
            _print_details(r)
    typer.echo(_conclusion(results))
    return 0 if all(r.complete for r in results) else 1


def _row_name(result: FolderComparison) -> str:
    """Return the folder as its row names it: the source folder, with the target folder where that is another."""
    if result.source_folder is None:
        return printable(result.target_folder or "")
    if result.target_folder is None or result.target_folder == result.source_folder:
        return printable(result.source_folder)
    return f"{printable(result.source_folder)} → {printable(result.target_folder)}"


def _verdict(result: FolderComparison) -> str:
    if result.error is not None:
        return f"NO ({printable(result.error)})"
    if result.source_folder is None:
        return "only in the target"
    if result.target_folder is None:
        return "NO (no such folder in target)"
    return "yes" if result.complete else "NO"


def _conclusion(results: list[FolderComparison]) -> str:
    """Return the last line: that the target holds everything, or what it lacks."""
    if all(r.complete for r in results):
        return "every source message is in the target"
    lacking = sum(1 for r in results if r.source_folder is not None and r.target_folder is None and r.error is None)
    missing = sum(len(r.missing) for r in results)
    unread = sum(1 for r in results if r.error is not None)
    lacks = [plural(count, noun) for count, noun in ((lacking, "folder"), (missing, "message")) if count]
    sentences = [f"the target is missing {' and '.join(lacks)}"] if lacks else []
    if unread:
        sentences.append(f"{plural(unread, 'folder')} could not be compared")
    return "; ".join(sentences)


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
