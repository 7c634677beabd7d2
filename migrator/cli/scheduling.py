"""Scheduled runs: a crontab line or a systemd service and timer that run a profile.

Both run ``migrator run PROFILE --quiet --log LOG`` with absolute paths, so they work from
cron's bare environment; the profile's lock keeps overlapping runs apart. What that bare
environment lacks (a password in ``password_env``, a ``${VAR}`` in the profile) is found
when the schedule is made, not on the first night.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from migrator.core.errors import ConfigError, MigratorError
from migrator.profile import load_profile
from migrator.profile.schema import EndpointSpec

# Hours that divide a day, so that the runs stay evenly spaced across midnight.
EVERY_HOURS = (1, 2, 3, 4, 6, 8, 12)
# every: (crontab fields, systemd OnCalendar); {m} is the minute this profile runs at.
EVERY = {
    "1h": ("{m} * * * *", "*-*-* *:{m:02d}:00"),
    **{f"{n}h": (f"{{m}} */{n} * * *", f"*-*-* 00/{n}:{{m:02d}}:00") for n in EVERY_HOURS[1:]},
    "daily": ("{m} 3 * * *", "*-*-* 03:{m:02d}:00"),
    "weekly": ("{m} 3 * * 0", "Sun *-*-* 03:{m:02d}:00"),
}
EVERY_WORDS = {"hourly": "1h"}
CRON_MARKER = "# migrator-profile:"
# The environment file the systemd service reads, relative to the home directory (%h in the unit).
SYSTEMD_ENV_FILE = ".config/migrator/{slug}.env"
# The few variables cron gives a job, and a systemd user service: nothing else of this shell reaches a run.
CRON_VARIABLES = ("HOME", "LOGNAME", "PATH", "SHELL")
SYSTEMD_VARIABLES = (*CRON_VARIABLES, "USER", "XDG_RUNTIME_DIR")
# Where systemd keeps its runtime state when it is the running init: sd_booted() checks this.
SYSTEMD_RUNNING = Path("/run/systemd/system")
# logind's record of the users whose own services run while they are logged out.
LINGER_DIR = Path("/var/lib/systemd/linger")


class TimerNotEnabled(MigratorError):
    """The units are written, but systemctl could not enable the timer; the message says what to run."""


@dataclass(frozen=True)
class Schedule:
    """When and how a profile runs; ``command`` is the full command line."""

    name: str
    profile: Path
    every: str
    command: tuple[str, ...]

    @property
    def minute(self) -> int:
        """Return the minute past the hour this profile runs at, spread by its path (stable)."""
        return int(hashlib.sha1(str(self.profile).encode()).hexdigest(), 16) % 60

    @property
    def slug(self) -> str:
        """Return the profile name with only characters safe in unit and file names."""
        return re.sub(r"[^A-Za-z0-9_.-]", "-", self.name)

    @property
    def unit(self) -> str:
        """Return the systemd unit name (without suffix) for this profile."""
        return f"migrator-{self.slug}"


def make_schedule(profile: Path, name: str, every: str, log: Path) -> Schedule:
    """Return the schedule running ``profile`` every ``every``; raise ConfigError for an unknown interval."""
    profile = profile.resolve()
    command = (*migrator_command(), "run", str(profile), "--quiet", "--log", str(log.resolve()))
    return Schedule(name, profile, interval(every), command)


def interval(every: str) -> str:
    """Return ``every`` as a key of EVERY (``hourly`` is ``1h``); raise ConfigError listing what is accepted."""
    word = every.strip().lower()
    word = EVERY_WORDS.get(word, word)
    if word not in EVERY:
        hours = ", ".join(f"{n}h" for n in EVERY_HOURS)
        raise ConfigError(f"--every {every!r} is not an interval migrator can schedule: use hourly, daily, weekly, "
                          f"or a number of hours that divides a day ({hours})")
    return word


def migrator_command() -> tuple[str, ...]:
    """Return the absolute command that starts this migrator (its script, else this Python with -m)."""
    script = Path(sys.argv[0])
    if script.name == "migrator" and script.is_file() and os.access(script, os.X_OK):
        return (str(script.resolve()),)
    return (str(Path(sys.executable).absolute()), "-m", "migrator")


def cron_line(schedule: Schedule) -> str:
    """Return the crontab line (cron treats % specially, so it is escaped)."""
    fields = EVERY[schedule.every][0].format(m=schedule.minute)
    command = shlex.join(schedule.command).replace("%", "\\%")
    return f"{fields} {command}  {CRON_MARKER}{schedule.profile}"


def systemd_units(schedule: Schedule) -> dict[str, str]:
    """Return {file name: text} of the user service and timer units."""
    calendar = EVERY[schedule.every][1].format(m=schedule.minute)
    command = " ".join(_systemd_quote(part) for part in schedule.command)
    service = f"""\
[Unit]
Description=migrator: run the profile {schedule.profile}
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
# Optional KEY=value lines for password_env and ${{VAR}} in the profile.
EnvironmentFile=-%h/{SYSTEMD_ENV_FILE.format(slug=schedule.slug)}
ExecStart={command}
Nice=10
"""
    timer = f"""\
[Unit]
Description=migrator: run the profile {schedule.profile} ({schedule.every})

[Timer]
OnCalendar={calendar}
Persistent=true

[Install]
WantedBy=timers.target
"""
    return {f"{schedule.unit}.service": service, f"{schedule.unit}.timer": timer}


def _systemd_quote(word: str) -> str:
    # systemd expands %specifiers and $VARIABLES in ExecStart; double them to keep them literal.
    word = word.replace("%", "%%").replace("$", "$$")
    if re.fullmatch(r"[A-Za-z0-9_./:@+=,-]+", word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_user_dir() -> Path:
    """Return the directory of the user's own systemd units."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "systemd" / "user"


def systemd_is_running() -> bool:
    """Return True when systemd is this machine's init (a systemctl binary alone does not make it one)."""
    return SYSTEMD_RUNNING.is_dir()


def linger_step() -> str | None:
    """Return the command that lets the user's timers run while they are logged out, or None when they already do."""
    user = getpass.getuser()
    return None if (LINGER_DIR / user).exists() else f"loginctl enable-linger {user}"


def install_systemd(schedule: Schedule) -> None:
    """Write the units and enable the timer; raise TimerNotEnabled, naming the commands still to run, when it cannot."""
    directory = _write_units(schedule)
    steps = [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", f"{schedule.unit}.timer"],
    ]
    for index, step in enumerate(steps):
        refused = _refusal(step)
        if refused is None:
            continue
        by_hand = [shlex.join(s) for s in steps[index:]]
        linger = linger_step()
        if linger:
            by_hand.append(linger)
        raise TimerNotEnabled(
            f"wrote the units to {directory}, but `{shlex.join(step)}` failed ({refused}), so the timer is not "
            f"enabled: finish by hand with `{'`, then `'.join(by_hand)}`"
        )


def _write_units(schedule: Schedule) -> Path:
    """Write the service and timer into the user's unit directory and return it; raise ConfigError if it cannot."""
    directory = systemd_user_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in systemd_units(schedule).items():
            (directory / name).write_text(text, encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot write the systemd units to {directory}: {error.strerror}") from None
    return directory


def _refusal(step: list[str]) -> str | None:
    """Return why ``step`` failed (systemctl's own words where it gave some), or None when it worked."""
    if shutil.which(step[0]) is None:
        return f"{step[0]} is not installed"
    done = subprocess.run(step, capture_output=True, text=True)
    if done.returncode == 0:
        return None
    said = done.stderr.strip().splitlines()
    return said[0] if said else f"exit status {done.returncode}"


def install_cron(schedule: Schedule) -> None:
    """Add the crontab line to the user's crontab, replacing this profile's earlier line."""
    if shutil.which("crontab") is None:
        raise ConfigError("crontab is not installed: install cron, or use --systemd")
    current = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    # `crontab -l` fails when the user has no crontab yet; that is an empty one.
    lines = current.stdout.splitlines() if current.returncode == 0 else []
    marker = f"{CRON_MARKER}{schedule.profile}"
    kept = [line for line in lines if not line.endswith(marker)]
    written = subprocess.run(["crontab", "-"], input="\n".join([*kept, cron_line(schedule)]) + "\n",
                             capture_output=True, text=True)
    if written.returncode != 0:
        raise ConfigError(f"crontab refused the new line: {written.stderr.strip() or written.returncode}")


def environment_warnings(schedule: Schedule, systemd: bool) -> list[str]:
    """Return why runs that cron (or systemd) starts would fail where a run from this shell works."""
    environ = scheduled_environment(schedule, systemd)
    try:
        profile = load_profile(schedule.profile, environ)
    except ConfigError as error:
        return [_unloadable_warning(schedule, error, systemd)]
    endpoints = [("source", profile.source), *((f"target {n}", t) for n, t in enumerate(profile.targets, 1))]
    return [_password_env_warning(schedule, name, spec, key, variable, systemd) for name, spec in endpoints
            for key in ("password_env", "admin_password_env")
            if (variable := getattr(spec, key)) is not None and variable not in environ]


def scheduled_environment(schedule: Schedule, systemd: bool) -> dict[str, str]:
    """Return the variables a scheduled run will have: cron's few, and with systemd those of its env file."""
    given = SYSTEMD_VARIABLES if systemd else CRON_VARIABLES
    environ = {name: os.environ[name] for name in given if name in os.environ}
    if systemd:
        environ.update(_env_file_variables(systemd_env_file(schedule)))
    return environ


def _listed(names: tuple[str, ...]) -> str:
    return f"{', '.join(names[:-1])} and {names[-1]}"


def systemd_env_file(schedule: Schedule) -> Path:
    """Return the file of NAME=value lines the systemd service reads (it need not exist)."""
    return Path.home() / SYSTEMD_ENV_FILE.format(slug=schedule.slug)


def _env_file_variables(path: Path) -> dict[str, str]:
    # systemd's EnvironmentFile: NAME=value lines, comments starting with # or ;, values maybe quoted.
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}  # the unit's "-" makes a missing file no error
    variables = {}
    for line in lines:
        name, equals, value = line.strip().partition("=")
        if equals and not name.startswith(("#", ";")):
            variables[name.strip()] = value.strip().strip("\"'")
    return variables


def _unloadable_warning(schedule: Schedule, error: ConfigError, systemd: bool) -> str:
    if systemd:
        return (f"the profile will not load when systemd runs it, so every scheduled run would stop with exit 2: "
                f"{error}; instead, add the variable to {systemd_env_file(schedule)} as a NAME=value line")
    return (f"the profile will not load when cron runs it (cron sets only {_listed(CRON_VARIABLES)}), so every "
            f"scheduled run would stop with exit 2: {error}; instead, write the value into the profile itself")


def _password_env_warning(schedule: Schedule, name: str, spec: EndpointSpec, key: str, variable: str,
                          systemd: bool) -> str:
    """Return the warning for ``key`` (password_env or admin_password_env) naming ``variable``, unset when run."""
    account = f"{spec.user}@{spec.host}"
    prefix = key.removesuffix("env")  # password_ or admin_password_
    warning = (f"{name} {account}: {key} {variable} will not be set when "
               f"{'systemd' if systemd else 'cron'} runs the profile, so every scheduled run would stop with exit 2; "
               f"read the password from a file only you can read ({prefix}file: ~/.config/migrator/"
               f"{schedule.slug}.password, made with `install -m 600 /dev/null FILE` before the password goes in) "
               f"or from a command ({prefix}command: pass show mail/{account}, or secret-tool lookup mail {account})")
    if systemd:
        warning += (f", or add {variable}=… to {systemd_env_file(schedule)} (mode 0600), "
                    "which the service reads")
    return warning
