"""Scheduling: crontab lines and systemd units that really run the profile, their installation, what a
scheduled run will lack, and the log and status of those runs."""

from __future__ import annotations

import getpass
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from migrator.cli import main
from migrator.cli import scheduling as schedule
from tests.support.tools import require_tools
from tests.test_lock import local_profile

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def profile(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return local_profile(tmp_path)


@pytest.fixture
def cron_home(tmp_path, monkeypatch):
    """A private HOME and no XDG variables, so this process and a cron-like child find the same state file."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return tmp_path / "home"


def imap_profile(directory: Path) -> Path:
    """A profile whose run asks for the password before it connects: no server needs to answer."""
    path = directory / "mail.yaml"
    path.write_text("version: 1\n"
                    "source: {type: imap, host: 127.0.0.1, port: 9, user: alice, password_env: PW}\n"
                    "targets:\n  - {type: maildir, path: out}\n")
    return path


def cron_environment(home: Path) -> dict[str, str]:
    """The environment cron gives a job (plus PYTHONPATH, so that this checkout's migrator runs)."""
    return {"HOME": str(home), "LOGNAME": getpass.getuser(), "SHELL": "/bin/sh", "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO)}


def cron_command(line: str) -> list[str]:
    """Return the command of a crontab line written by `migrator schedule`."""
    command = line.split(" ", 5)[5].rsplit(f"  {schedule.CRON_MARKER}", 1)[0]
    return shlex.split(command.replace("\\%", "%"))


def fake_tool(directory: Path, name: str, script: str) -> None:
    """Put a stand-in for a system tool on PATH that records what it was asked (never the real crontab)."""
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)


def test_cron_lines_use_absolute_paths_and_quiet_logged_runs(profile, tmp_path):
    log = tmp_path / "state" / "backup.log"
    expected_fields = {"1h": "* * * *", "hourly": "* * * *", "Hourly": "* * * *", "2h": "*/2 * * *",
                       "6h": "*/6 * * *", "12h": "*/12 * * *", "daily": "3 * * *", "weekly": "3 * * 0"}
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
    assert events[0].startswith("start: maildir:") and events[-1].startswith("summary: 1 folder")
    assert ": 1 copied, " in events[-1]
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
    for every in schedule.EVERY:
        calendar = schedule.EVERY[every][1].format(m=chosen.minute)
        checked = subprocess.run(["systemd-analyze", "calendar", calendar], capture_output=True, text=True)
        assert checked.returncode == 0, (every, checked.stderr)


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
    assert main(["schedule", str(profile), "--every", "hourly", "--cron"]) == 0
    assert capsys.readouterr().out.split(" ", 2)[1:2] == ["*"]
    for refused in ("5h", "24h", "monthly"):
        assert main(["schedule", str(profile), "--every", refused, "--cron"]) == 2
        assert capsys.readouterr().err == (
            f"migrator: --every {refused!r} is not an interval migrator can schedule: use hourly, daily, weekly, "
            "or a number of hours that divides a day (1h, 2h, 3h, 4h, 6h, 8h, 12h)\n")


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


def test_systemd_install_writes_units_enables_the_timer_and_mentions_lingering(profile, tmp_path, monkeypatch,
                                                                                  capsys):
    calls = tmp_path / "systemctl-calls.txt"
    fake_tool(tmp_path / "bin", "systemctl", f'echo "$@" >> {calls}\n')
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setattr(schedule, "LINGER_DIR", tmp_path / "linger")
    assert main(["schedule", str(profile), "--every", "daily", "--systemd", "--install"]) == 0
    unit_dir = tmp_path / "config" / "systemd" / "user"
    assert sorted(p.name for p in unit_dir.iterdir()) == ["migrator-backup.service", "migrator-backup.timer"]
    assert calls.read_text().splitlines() == ["--user daemon-reload", "--user enable --now migrator-backup.timer"]
    out = capsys.readouterr().out
    assert "enabled migrator-backup.timer" in out
    linger_note = ("# the timer runs only while you are logged in; to run it when you are not: "
                   f"loginctl enable-linger {getpass.getuser()}")
    assert linger_note in out.splitlines()
    (tmp_path / "linger").mkdir()
    (tmp_path / "linger" / getpass.getuser()).touch()
    assert main(["schedule", str(profile), "--every", "daily", "--systemd", "--install"]) == 0
    assert "enable-linger" not in capsys.readouterr().out


def test_systemd_install_without_systemctl_fails_with_the_remaining_steps(profile, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(schedule, "LINGER_DIR", tmp_path / "linger")
    assert main(["schedule", str(profile), "--every", "daily", "--systemd", "--install"]) == 1
    unit_dir = tmp_path / "config" / "systemd" / "user"
    assert capsys.readouterr().err == (
        f"migrator: wrote the units to {unit_dir}, but `systemctl --user daemon-reload` failed (systemctl is not "
        "installed), so the timer is not enabled: finish by hand with `systemctl --user daemon-reload`, then "
        f"`systemctl --user enable --now migrator-backup.timer`, then `loginctl enable-linger {getpass.getuser()}`\n")
    assert (unit_dir / "migrator-backup.timer").exists()


def test_systemd_install_where_systemd_is_not_running_fails_with_systemctls_reason(profile, tmp_path, monkeypatch,
                                                                                   capsys):
    if schedule.systemd_is_running():
        pytest.skip("systemd runs here: the real systemctl would enable a timer for this user")
    require_tools("systemctl")
    monkeypatch.setattr(schedule, "LINGER_DIR", tmp_path / "linger")
    assert main(["schedule", str(profile), "--every", "daily", "--systemd", "--install"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("migrator: wrote the units to ") and "`systemctl --user daemon-reload` failed (" in err
    assert "(systemctl is not installed)" not in err  # systemctl's own words, e.g. "Failed to connect to bus: ..."
    assert err.endswith("finish by hand with `systemctl --user daemon-reload`, then "
                        "`systemctl --user enable --now migrator-backup.timer`, then "
                        f"`loginctl enable-linger {getpass.getuser()}`\n")


def test_systemd_is_the_default_only_where_it_is_the_running_init(profile, tmp_path, monkeypatch, capsys):
    fake_tool(tmp_path / "bin", "systemctl", "exit 0\n")  # installed, as on many machines systemd does not run
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    monkeypatch.setattr(schedule, "SYSTEMD_RUNNING", tmp_path / "run" / "systemd" / "system")
    assert main(["schedule", str(profile), "--every", "daily"]) == 0
    out = capsys.readouterr().out
    assert "[Timer]" not in out and out.splitlines()[-2].endswith("--every daily --cron --install")
    (tmp_path / "run" / "systemd" / "system").mkdir(parents=True)
    assert main(["schedule", str(profile), "--every", "daily"]) == 0
    assert "[Timer]" in capsys.readouterr().out


# --- what a scheduled run will lack, and what status shows after it -----------------------------


def test_password_env_is_flagged_at_schedule_time_and_status_says_why_the_run_failed(tmp_path, cron_home,
                                                                                     monkeypatch, capsys):
    profile = imap_profile(tmp_path)
    monkeypatch.setenv("PW", "secret")  # this shell has it; cron will not
    assert main(["schedule", str(profile), "--every", "daily", "--cron"]) == 0
    captured = capsys.readouterr()
    assert captured.err == (
        "migrator: warning: source alice@127.0.0.1: password_env PW will not be set when cron runs the profile, "
        "so every scheduled run would stop with exit 2; read the password from a file only you can read "
        "(password_file: ~/.config/migrator/mail.password, made with `install -m 600 /dev/null FILE` before the "
        "password goes in) or from a command (password_command: pass show mail/alice@127.0.0.1, "
        "or secret-tool lookup mail alice@127.0.0.1)\n")

    night = subprocess.run(cron_command(captured.out.splitlines()[0]), capture_output=True, text=True, cwd="/",
                           env=cron_environment(cron_home))
    assert night.returncode == 2
    assert main(["status", str(profile)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[2].endswith("configuration error (exit 2)")
    assert rows[3].startswith("    why: the password for ") and "should come from $PW, which is not set" in rows[3]


def test_systemd_reads_password_env_from_its_env_file(tmp_path, cron_home, capsys):
    profile = imap_profile(tmp_path)
    assert main(["schedule", str(profile), "--every", "daily", "--systemd"]) == 0
    env_file = cron_home / ".config" / "migrator" / "mail.env"
    assert capsys.readouterr().err.endswith(
        f", or add PW=… to {env_file} (mode 0600), which the service reads\n")
    env_file.parent.mkdir(parents=True)
    env_file.write_text("# read by migrator-mail.service\nPW='secret'\n")
    assert main(["schedule", str(profile), "--every", "daily", "--systemd"]) == 0
    assert capsys.readouterr().err == ""


def test_a_variable_only_this_shell_has_is_flagged(profile, tmp_path, monkeypatch, capsys):
    profile.write_text(profile.read_text().replace("path: source", "path: '${MIGRATOR_TEST_SOURCE}'"))
    monkeypatch.setenv("MIGRATOR_TEST_SOURCE", "source")
    assert main(["schedule", str(profile), "--every", "daily", "--cron"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("migrator: warning: the profile will not load when cron runs it (cron sets only HOME, "
                          "LOGNAME, PATH and SHELL), so every scheduled run would stop with exit 2: ")
    assert "the environment variable MIGRATOR_TEST_SOURCE is not set" in err
    assert err.endswith("; instead, write the value into the profile itself\n")


@pytest.mark.parametrize("state_line", ["", "state: elsewhere/kept.sqlite\n"], ids=["default-state", "own-state"])
def test_status_shows_the_runs_of_a_profile_that_no_longer_loads(profile, tmp_path, state_line, capsys):
    profile.write_text(profile.read_text() + state_line)
    assert main(["run", str(profile), "--quiet"]) == 0
    profile.write_text(profile.read_text().replace("type: mbox", "type: mbxo"))
    assert main(["status", str(profile)]) == 2
    captured = capsys.readouterr()
    state = tmp_path / "elsewhere" / "kept.sqlite" if state_line else tmp_path / "state" / "migrator" / "backup.sqlite"
    rows = captured.out.splitlines()
    assert rows[0] == f"last runs of backup (state file {state}):"
    assert len(rows) == 3 and rows[2].endswith("ok (exit 0)")
    assert captured.err.startswith("migrator: the profile is now invalid, so its next run will stop before copying: "
                                   f"{profile}, line 4")
    assert "'mbxo'" in captured.err


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
    assert night() == [
        "copying 2 folders",
        "folder Archive done: 0 copied, 0 failed, 1 found already in the target (recorded, not copied again)",
        "folder INBOX done: 0 copied, 0 failed, 2 found already in the target (recorded, not copied again)",
    ]
