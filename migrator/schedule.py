"""Scheduled runs: a crontab line or a systemd service and timer that run a profile.

Both run ``migrator run PROFILE --quiet --log LOG`` with absolute paths, so they work from
cron's bare environment; the profile's lock keeps overlapping runs apart.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from migrator.errors import ConfigError

# every: (crontab fields, systemd OnCalendar); {m} is the minute this profile runs at.
EVERY = {
    "1h": ("{m} * * * *", "*-*-* *:{m:02d}:00"),
    "6h": ("{m} */6 * * *", "*-*-* 00/6:{m:02d}:00"),
    "daily": ("{m} 3 * * *", "*-*-* 03:{m:02d}:00"),
    "weekly": ("{m} 3 * * 0", "Sun *-*-* 03:{m:02d}:00"),
}
CRON_MARKER = "# migrator-profile:"


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
    if every not in EVERY:
        raise ConfigError(f"--every {every!r} is not one of {', '.join(EVERY)}")
    profile = profile.resolve()
    command = (*migrator_command(), "run", str(profile), "--quiet", "--log", str(log.resolve()))
    return Schedule(name, profile, every, command)


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
EnvironmentFile=-%h/.config/migrator/{schedule.slug}.env
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


def install_systemd(schedule: Schedule) -> list[str]:
    """Write the units and enable the timer; return what the user still has to do (may be empty)."""
    directory = systemd_user_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in systemd_units(schedule).items():
            (directory / name).write_text(text, encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot write the systemd units to {directory}: {error.strerror}") from None
    steps = [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", f"{schedule.unit}.timer"],
    ]
    for index, step in enumerate(steps):
        if shutil.which(step[0]) is None or subprocess.run(step, capture_output=True).returncode != 0:
            return [shlex.join(s) for s in steps[index:]]
    return []


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
