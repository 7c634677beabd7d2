"""`migrator schedule PROFILE.yaml --every …`: print (and install) a crontab line or systemd timer."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from migrator.cli.app import app
from migrator.cli.help import Command
from migrator.core.errors import ConfigError

if TYPE_CHECKING:
    from migrator.cli.scheduling import Schedule


@app.command(cls=Command)
def schedule(
    profile: Path = typer.Argument(..., metavar="PROFILE", help="The profile to run on a schedule (checked first)."),
    every: str = typer.Option(
        ..., "--every", metavar="INTERVAL", help="How often: hourly, daily, weekly, or 1h, 2h, 3h, 4h, 6h, 8h or 12h."
    ),
    systemd: bool = typer.Option(
        False, "--systemd", help="A systemd user service and timer (the default where systemd is the running init)."
    ),
    cron: bool = typer.Option(False, "--cron", help="A crontab line (the default elsewhere)."),
    install: bool = typer.Option(
        False, "--install",
        help="Also install it: write and enable the units (exit 1, with the commands to finish by hand, "
             "if systemctl cannot), or add the crontab line.",
    ),
) -> int:
    """Print what runs PROFILE every hour, few hours, day or week; --install puts it in place.

    Warns on stderr when the profile needs something cron or systemd will not have (a password in
    password_env, a ${VAR}).
    """
    if systemd and cron:
        raise ConfigError("choose one of --systemd and --cron")
    from migrator.cli import scheduling  # imported when run: see cli/__init__.py
    from migrator.profile import load_profile, plan_run

    plan = plan_run(load_profile(profile))
    log = plan.state_path.with_suffix(".log")
    chosen = scheduling.make_schedule(profile, plan.name, every, log)
    use_systemd = systemd or (not cron and scheduling.systemd_is_running())
    for warning in scheduling.environment_warnings(chosen, use_systemd):
        typer.echo(f"migrator: warning: {warning}", err=True)
    if use_systemd:
        _systemd(chosen, install)
    else:
        _cron(chosen, install)
    typer.echo(f"# each run appends to {log}; see the last runs with: migrator status {chosen.profile}")
    return 0


def _systemd(chosen: Schedule, install: bool) -> None:
    from migrator.cli import scheduling

    directory = scheduling.systemd_user_dir()
    for name, text in scheduling.systemd_units(chosen).items():
        typer.echo(f"# {directory / name}\n{text}")
    if not install:
        typer.echo(f"# to install: migrator schedule {chosen.profile} --every {chosen.every} --systemd --install")
        return
    scheduling.install_systemd(chosen)
    typer.echo(f"# installed the units in {directory} and enabled {chosen.unit}.timer; "
               "check it with: systemctl --user list-timers")
    linger = scheduling.linger_step()
    if linger:
        typer.echo(f"# the timer runs only while you are logged in; to run it when you are not: {linger}")


def _cron(chosen: Schedule, install: bool) -> None:
    from migrator.cli import scheduling

    typer.echo(scheduling.cron_line(chosen))
    if install:
        scheduling.install_cron(chosen)
        typer.echo("# added to your crontab (replacing an earlier line for this profile); see it with: crontab -l")
    else:
        typer.echo(f"# to install: migrator schedule {chosen.profile} --every {chosen.every} --cron --install")
