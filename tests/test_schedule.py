"""Scheduling: crontab lines and systemd units that really run the profile, and their installation."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from migrator import schedule
from migrator.cli import main
from tests.support.tools import require_tools
from tests.test_lock import local_profile

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def profile(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return local_profile(tmp_path)


def fake_tool(directory: Path, name: str, script: str) -> None:
    """Put a stand-in for a system tool on PATH that records what it was asked (never the real crontab)."""
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)


def test_cron_lines_use_absolute_paths_and_quiet_logged_runs(profile, tmp_path):
    log = tmp_path / "state" / "backup.log"
    expected_fields = {"1h": "* * * *", "6h": "*/6 * * *", "daily": "3 * * *", "weekly": "3 * * 0"}
    for every, fields in expected_fields.items():
        chosen = schedule.make_schedule(profile, "backup", every, log)
        line = schedule.cron_line(chosen)
        minute, rest = line.split(" ", 1)
        assert 0 <= int(minute) < 60 and rest.startswith(fields + " ")
        words = shlex.split(rest[len(fields) + 1:].split("  # ")[0])
        assert Path(words[0]).is_absolute()
        assert words[-5:] == ["run", str(profile.resolve()), "--quiet", "--log", str(log.resolve())]
        assert line.endswith(f"# migrator-profile:{profile.resolve()}")


def test_the_scheduled_command_runs_the_profile(profile, tmp_path):
    log = tmp_path / "state" / "backup.log"
    chosen = schedule.make_schedule(profile, "backup", "daily", log)
    done = subprocess.run(chosen.command, capture_output=True, text=True, cwd="/",
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    events = [line.split(" ", 2)[2] for line in log.read_text().splitlines()]
    assert events[0].startswith("start: maildir:") and events[-1].startswith("summary: 1 folders: 1 copied")
    assert any(e.startswith("folder INBOX done: 1 copied") for e in events)


def test_systemd_units(profile, tmp_path):
    chosen = schedule.make_schedule(profile, "my backup", "6h", tmp_path / "b.log")
    units = schedule.systemd_units(chosen)
    assert set(units) == {"migrator-my-backup.service", "migrator-my-backup.timer"}
    service, timer = units["migrator-my-backup.service"], units["migrator-my-backup.timer"]
    exec_start = next(line for line in service.splitlines() if line.startswith("ExecStart="))
    assert shlex.split(exec_start[len("ExecStart="):]) == list(chosen.command)
    assert "Type=oneshot" in service and "Persistent=true" in timer and "WantedBy=timers.target" in timer
    calendar = next(line for line in timer.splitlines() if line.startswith("OnCalendar="))[len("OnCalendar="):]
    assert calendar == f"*-*-* 00/6:{chosen.minute:02d}:00"
    require_tools("systemd-analyze")
    checked = subprocess.run(["systemd-analyze", "calendar", calendar], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_systemd_quoting_keeps_odd_paths_literal():
    assert schedule._systemd_quote("/plain/path.yaml") == "/plain/path.yaml"
    assert schedule._systemd_quote('/my dir/100%/$HOME/"x"') == '"/my dir/100%%/$$HOME/\\"x\\""'


def test_migrator_script_is_preferred_to_python_m(tmp_path, monkeypatch):
    script = tmp_path / "bin" / "migrator"
    fake_tool(tmp_path / "bin", "migrator", "exit 0\n")
    monkeypatch.setattr(sys, "argv", [str(script)])
    assert schedule.migrator_command() == (str(script.resolve()),)
    monkeypatch.setattr(sys, "argv", ["/somewhere/pytest"])
    assert schedule.migrator_command() == (str(Path(sys.executable).absolute()), "-m", "migrator")


def test_schedule_command_prints_and_rejects(profile, capsys):
    assert main(["schedule", str(profile), "--every", "1h", "--cron"]) == 0
    out = capsys.readouterr().out
    assert f"run {profile.resolve()} --quiet --log" in out and "--install" in out
    assert main(["schedule", str(profile), "--every", "weekly", "--systemd"]) == 0
    assert "OnCalendar=Sun *-*-* 03:" in capsys.readouterr().out
    assert main(["schedule", str(profile), "--every", "2h", "--cron"]) == 2
    assert "--every '2h' is not one of 1h, 6h, daily, weekly" in capsys.readouterr().err


def test_cron_install_replaces_this_profiles_line_and_keeps_others(profile, tmp_path, monkeypatch, capsys):
    table = tmp_path / "crontab.txt"
    table.write_text("MAILTO=me@example.com\n5 5 * * * /usr/bin/other-job\n")
    fake_tool(tmp_path / "bin", "crontab",
              f'if [ "$1" = "-l" ]; then cat {table}; else cat > {table}; fi\n')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    assert main(["schedule", str(profile), "--every", "daily", "--cron", "--install"]) == 0
    assert main(["schedule", str(profile), "--every", "1h", "--cron", "--install"]) == 0
    lines = table.read_text().splitlines()
    assert lines[:2] == ["MAILTO=me@example.com", "5 5 * * * /usr/bin/other-job"]
    assert len(lines) == 3 and lines[2].split()[1:5] == ["*", "*", "*", "*"]
    assert "added to your crontab" in capsys.readouterr().out


def test_cron_install_without_crontab_says_so(profile, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["schedule", str(profile), "--every", "daily", "--cron", "--install"]) == 2
    assert "crontab is not installed: install cron, or use --systemd" in capsys.readouterr().err


def test_systemd_install_writes_units_and_enables_the_timer(profile, tmp_path, monkeypatch, capsys):
    calls = tmp_path / "systemctl-calls.txt"
    fake_tool(tmp_path / "bin", "systemctl", f'echo "$@" >> {calls}\n')
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert main(["schedule", str(profile), "--every", "daily", "--systemd", "--install"]) == 0
    unit_dir = tmp_path / "config" / "systemd" / "user"
    assert sorted(p.name for p in unit_dir.iterdir()) == ["migrator-backup.service", "migrator-backup.timer"]
    assert calls.read_text().splitlines() == ["--user daemon-reload", "--user enable --now migrator-backup.timer"]
    assert "enabled migrator-backup.timer" in capsys.readouterr().out


def test_systemd_install_without_systemctl_prints_the_remaining_steps(profile, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["schedule", str(profile), "--every", "daily", "--systemd", "--install"]) == 0
    out = capsys.readouterr().out
    assert "systemctl --user daemon-reload" in out and "systemctl --user enable --now migrator-backup.timer" in out
    assert (tmp_path / "config" / "systemd" / "user" / "migrator-backup.timer").exists()


# --- the run log ----------------------------------------------------------------------------


def test_the_log_has_a_line_only_for_folders_where_something_happened(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    source = tmp_path / "source"
    for folder in (source, source / ".Archive"):
        for sub in ("cur", "new", "tmp"):
            (folder / sub).mkdir(parents=True)
    (source / "cur" / "1.M1P1Q1.host:2,S").write_bytes(b"Subject: one\n\n1\n")
    (source / ".Archive" / "cur" / "2.M2P2Q2.host:2,S").write_bytes(b"Subject: two\n\n2\n")
    profile = tmp_path / "nightly.yaml"
    profile.write_text("version: 1\nsource: {type: maildir, path: source}\ntargets:\n  - {type: maildir, path: out}\n")
    log = tmp_path / "nightly.log"

    def night() -> list[str]:
        """Run the profile once; return the events it logged other than its start and summary, sorted
        (folders are copied in no fixed order)."""
        before = len(log.read_text().splitlines()) if log.exists() else 0
        assert main(["run", str(profile), "--quiet", "--log", str(log)]) == 0
        events = [line.split(" ", 2)[2] for line in log.read_text().splitlines()[before:]]
        assert events[0].startswith("start: ") and events[-1].startswith("summary: ")
        return sorted(events[1:-1])

    assert night() == ["copying 2 folders", "folder Archive done: 1 copied, 0 failed",
                       "folder INBOX done: 1 copied, 0 failed"]
    assert night() == ["copying 2 folders"]
    (source / "new" / "3.M3P3Q3.host").write_bytes(b"Subject: three\n\n3\n")
    assert night() == ["copying 2 folders", "folder INBOX done: 1 copied, 0 failed"]
    (source / ".Archive" / "cur" / "2.M2P2Q2.host:2,S").rename(source / ".Archive" / "cur" / "2.M2P2Q2.host:2,FS")
    assert night() == ["copying 2 folders", "folder Archive done: 0 copied, 0 failed, flags updated on 1"]
    for path in (tmp_path / "state" / "migrator").glob("nightly.sqlite*"):
        path.unlink()  # the state is lost: the next run finds the messages in the target
    assert night() == ["copying 2 folders",
                       "folder Archive done: 0 copied, 0 failed, 1 found already in the target (recorded, not copied again)",
                       "folder INBOX done: 0 copied, 0 failed, 2 found already in the target (recorded, not copied again)"]
