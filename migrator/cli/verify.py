"""`migrator verify SOURCE TARGET`: prove that the target holds every source message."""

from __future__ import annotations

import typer

from migrator.cli.app import app
from migrator.cli.help import ENDPOINTS, Command


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
        results = compare_stores(src, dst, rules)
    width = max([len(r.source_folder) for r in results] + [6])
    typer.echo(f"{'folder':<{width}}  {'source':>7}  {'target':>7}  {'missing':>7}  {'extra':>6}  {'flags≠':>6}  ok")
    for r in results:
        ok = "yes" if r.complete else "NO" if r.target_folder else "NO (no such folder in target)"
        typer.echo(f"{r.source_folder:<{width}}  {r.source_count:>7}  {r.target_count:>7}  {len(r.missing):>7}  "
                   f"{len(r.extra):>6}  {len(r.flag_differences):>6}  {ok}")
        if details:
            _print_details(r)
    complete = all(r.complete for r in results)
    typer.echo("every source message is in the target" if complete else "the target is missing messages")
    return 0 if complete else 1


def _print_details(result) -> None:
    for uid in result.missing:
        typer.echo(f"    missing: source message {uid}")
    for uid in result.extra:
        typer.echo(f"    extra:   target message {uid}")
    for uid, ours, theirs in result.flag_differences:
        typer.echo(f"    flags:   source message {uid}: {ours.describe()} -> {theirs.describe()}")
