"""`migrator schedule PROFILE.yaml --every …`: print (and install) a crontab line or systemd timer."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from migrator.cli.app import app
from migrator.errors import ConfigError

if TYPE_CHECKING:
    from migrator.schedule import Schedule


@app.command()
def schedule(
    profile: Path = typer.Argument(..., help="The profile to run on a schedule (checked first)."),
    every: str = typer.Option(..., "--every", help="How often: 1h, 6h, daily or weekly."),
    systemd: bool = typer.Option(
        False, "--systemd", help="A systemd user service and timer (the default where systemctl exists)."
    ),
    cron: bool = typer.Option(False, "--cron", help="A crontab line."),
    install: bool = typer.Option(
        False, "--install", help="Also install it: write and enable the units, or add the crontab line."
    ),
) -> int:
    """Print what runs PROFILE every 1h, 6h, day or week; --install puts it in place."""
    if systemd and cron:
        raise ConfigError("choose one of --systemd and --cron")
    from migrator import schedule as scheduling  # imported when run: see cli/profile.py
    from migrator.profile import load_profile, plan_run

    plan = plan_run(load_profile(profile))
    log = plan.state_path.with_suffix(".log")
    chosen = scheduling.make_schedule(profile, plan.name, every, log)
    use_systemd = systemd or (not cron and shutil.which("systemctl") is not None)
    if use_systemd:
        _systemd(chosen, install)
    else:
        _cron(chosen, install)
    typer.echo(f"# each run appends to {log}; see the last runs with: migrator status {chosen.profile}")
    return 0


def _systemd(chosen: Schedule, install: bool) -> None:
    from migrator import schedule as scheduling

    directory = scheduling.systemd_user_dir()
    for name, text in scheduling.systemd_units(chosen).items():
        typer.echo(f"# {directory / name}\n{text}")
    if not install:
        typer.echo(f"# to install: migrator schedule {chosen.profile} --every {chosen.every} --systemd --install")
        return
    remaining = scheduling.install_systemd(chosen)
    typer.echo(f"# installed the units in {directory}")
    if remaining:
        typer.echo("# systemctl could not enable the timer here; run:")
        for step in remaining:
            typer.echo(f"  {step}")
    else:
        typer.echo(f"# enabled {chosen.unit}.timer; check it with: systemctl --user list-timers")


def _cron(chosen: Schedule, install: bool) -> None:
    from migrator import schedule as scheduling

    typer.echo(scheduling.cron_line(chosen))
    if install:
        scheduling.install_cron(chosen)
        typer.echo("# added to your crontab (replacing an earlier line for this profile); see it with: crontab -l")
    else:
        typer.echo(f"# to install: migrator schedule {chosen.profile} --every {chosen.every} --cron --install")
