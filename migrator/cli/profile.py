"""`migrator profile check|init`: validate a profile (optionally logging in), or write a template."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from migrator.cli.app import app
from migrator.cli.help import Command
from migrator.core.errors import ConfigError

if TYPE_CHECKING:
    from migrator.endpoints.endpoint import Endpoint

profile_app = typer.Typer(help="Check a profile, or write a commented template.", no_args_is_help=True,
                          rich_markup_mode=None)
app.add_typer(profile_app, name="profile")


@profile_app.command(cls=Command)
def check(
    profile: Path = typer.Argument(..., metavar="PROFILE", help="The profile to check."),
    connect: bool = typer.Option(False, "--connect", help="Also log in to the servers and list the source's folders."),
) -> int:
    """Check PROFILE without running it; exit 2 with the line and key of the first mistake."""
    from migrator.profile import load_profile, plan_run

    loaded = load_profile(profile)
    for warning in loaded.warnings:
        typer.echo(f"migrator: warning: {warning}", err=True)
    plan = plan_run(loaded)
    typer.echo(f"{profile} is a valid profile (schema version 1)")
    typer.echo(f"  source:  {plan.source}")
    for target in plan.targets:
        typer.echo(f"  target:  {target}")
    typer.echo(f"  state:   {plan.state_path}")
    if plan.options.deletes:
        when = f" after {plan.options.keep_days} days" if plan.options.keep_days else ""
        typer.echo(f"  deletes from the source what every target holds{when}")
    if connect:
        _connect(plan.source, plan.targets)
    return 0


def _connect(source: Endpoint, targets: tuple[Endpoint, ...]) -> None:
    from migrator.core.display import plural, printable
    from migrator.stores import open_store

    with open_store(source) as store:
        names = [printable(folder.name) for folder in store.list_folders()]
    listed = ", ".join(names[:20]) + (" …" if len(names) > 20 else "")
    typer.echo(f"  logged in to the source: {plural(len(names), 'folder')}: {listed}")
    for target in targets:
        if not target.is_server:
            exists = "exists" if target.path is not None and target.path.exists() else "will be created"
            typer.echo(f"  target {target}: {exists}")
            continue
        with open_store(target) as store:
            count = len(store.list_folders())
        typer.echo(f"  logged in to {target}: {plural(count, 'folder')}")


@profile_app.command(cls=Command)
def init(path: Path | None = typer.Argument(None, metavar="PATH",
                                            help="Where to write the template (default: print it).")) -> int:
    """Write a commented profile template to PATH (private, never overwriting), or print it."""
    from migrator.profile.template import TEMPLATE

    if path is None:
        typer.echo(TEMPLATE, nl=False)
        return 0
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} already exists: choose another path, or delete it first") from None
    except OSError as error:
        raise ConfigError(f"cannot write {path}: {error.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(TEMPLATE)
    typer.echo(f"wrote {path}: edit it, then run `migrator profile check {path}`")
    return 0
