"""`migrator folders ENDPOINT`: the folders of a store with counts, sizes and roles."""

from __future__ import annotations

from collections.abc import Iterator

import typer

from migrator.cli.app import app
from migrator.cli.help import ENDPOINTS, Command
from migrator.core.display import columns, pad, plural, printable
from migrator.core.folder import Folder, FolderStats


@app.command(cls=Command, epilog=ENDPOINTS)
def folders(endpoint: str = typer.Argument(..., metavar="ENDPOINT", help="A store: an endpoint (forms below).")) -> int:
    """List the folders of ENDPOINT. Each with its message count, total size and special-use role."""
    from migrator.endpoints.endpoint import parse_endpoint  # imported when run: see cli/__init__.py
    from migrator.stores import open_store

    with open_store(parse_endpoint(endpoint)) as store:
        rows = [(folder, store.stats(folder.path) if folder.selectable else None) for folder in store.list_folders()]
    for line in _table(rows):
        typer.echo(line)
    return 0


def _table(rows: list[tuple[Folder, FolderStats | None]]) -> Iterator[str]:
    """Yield the table's lines: names escaped and padded by the columns they take (日本語 takes six)."""
    names = [printable(folder.name) for folder, _ in rows]
    width = max([columns(name) for name in names] + [6])
    yield f"{pad('folder', width)}  {'messages':>8}  {'size':>10}  role"
    for name, (folder, stats) in zip(names, rows):
        if stats is None:
            yield f"{pad(name, width)}  {'-':>8}  {'-':>10}  (not selectable)"
        else:
            role = folder.role.value if folder.role else ""
            yield f"{pad(name, width)}  {stats.messages:>8}  {_size(stats.size):>10}  {role}"
    yield _total([stats for _, stats in rows if stats is not None], len(rows))


def _total(counted: list[FolderStats], listed: int) -> str:
    # Parents that cannot hold mail are listed but not counted: `copy` counts the same folders.
    text = (f"{plural(len(counted), 'folder')}, {plural(sum(s.messages for s in counted), 'message')}, "
            f"{_size(sum(s.size for s in counted))}")
    unselectable = listed - len(counted)
    return text + (f" (and {unselectable} not selectable, not counted)" if unselectable else "")


def _size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return str(size)
