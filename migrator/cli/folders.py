"""`migrator folders ENDPOINT`: the folders of a store with counts, sizes and roles."""

from __future__ import annotations

import typer

from migrator.cli.app import app
from migrator.cli.help import ENDPOINTS, Command
from migrator.endpoint import parse_endpoint
from migrator.stores import open_store


@app.command(cls=Command, epilog=ENDPOINTS)
def folders(endpoint: str = typer.Argument(..., metavar="ENDPOINT", help="A store: an endpoint (forms below).")) -> int:
    """List the folders of ENDPOINT. Each with its message count, total size and special-use role."""
    with open_store(parse_endpoint(endpoint)) as store:
        rows = [(folder, store.stats(folder.path) if folder.selectable else None) for folder in store.list_folders()]
    width = max([len(f.name) for f, _ in rows] + [6])
    typer.echo(f"{'folder':<{width}}  {'messages':>8}  {'size':>10}  role")
    total_messages = total_size = 0
    for folder, stats in rows:
        role = folder.role.value if folder.role else ""
        if stats is None:
            typer.echo(f"{folder.name:<{width}}  {'-':>8}  {'-':>10}  (not selectable)")
            continue
        total_messages += stats.messages
        total_size += stats.size
        typer.echo(f"{folder.name:<{width}}  {stats.messages:>8}  {_size(stats.size):>10}  {role}")
    typer.echo(f"{len(rows)} folders, {total_messages} messages, {_size(total_size)}")
    return 0


def _size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return str(size)
