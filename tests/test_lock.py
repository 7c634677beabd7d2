"""The per-profile lock: one run at a time, exit 4 for the second, stale locks of killed runs taken over."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from migrator.cli import main
from migrator.core.errors import ExitCode, LockedError
from migrator.profile import load_profile, plan_run
from migrator.state.lock import ProfileLock, locked_by

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def state_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state" / "migrator"


def wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def recorded_runs(state: Path) -> int:
    """Return how many runs the state file records (0 while it does not exist yet)."""
    try:
        with sqlite3.connect(f"file:{state}?mode=ro", uri=True) as db:
            return db.execute("SELECT count(*) FROM runs").fetchone()[0]
    except sqlite3.Error:
        return 0


def local_profile(directory: Path) -> Path:
    """A profile copying a one-message Maildir into an mbox tree: it runs without any server."""
    source = directory / "source"
    for sub in ("cur", "new", "tmp"):
        (source / sub).mkdir(parents=True, exist_ok=True)
    (source / "cur" / "1700000000.M1P1Q1.host:2,S").write_bytes(b"Subject: hello\n\nhi\n")
    path = directory / "backup.yaml"
    path.write_text("version: 1\nsource: {type: maildir, path: source}\ntargets:\n  - {type: mbox, path: out}\n")
    return path


def hanging_profile(directory: Path) -> Path:
    """A profile whose run takes the lock and then waits in its password command."""
    path = directory / "backup.yaml"
    path.write_text(
        "version: 1\n"
        "source: {type: imap, host: 127.0.0.1, port: 9, user: u, password_command: 'sleep 60; echo pw'}\n"
        "targets:\n  - {type: mbox, path: out}\n"
    )
    return path


def test_second_holder_is_refused_until_the_first_releases(tmp_path):
    path = tmp_path / "locks" / "p.lock"
    with ProfileLock(path, "nightly"):
        assert locked_by(path) == f"pid {os.getpid()}"
        with pytest.raises(LockedError, match=rf"another run of nightly is still going \(pid {os.getpid()}, lock "):
            ProfileLock(path, "nightly").acquire()
    assert locked_by(path) is None
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    with ProfileLock(path, "nightly"):
        pass


def test_lock_of_a_killed_holder_is_taken_over(tmp_path):
    path = tmp_path / "p.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from migrator.state.lock import ProfileLock; "
         "ProfileLock(sys.argv[1], 'p').acquire(); print('locked', flush=True); time.sleep(60)", str(path)],
        stdout=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert locked_by(path) == f"pid {holder.pid}"
        with pytest.raises(LockedError):
            ProfileLock(path, "p").acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert path.read_text().strip() == str(holder.pid)  # the killed run's pid is still in the file
    assert locked_by(path) is None
    with ProfileLock(path, "p"):
        assert path.read_text().strip() == str(os.getpid())


def test_two_runs_of_one_profile_then_a_killed_run_taken_over(tmp_path, state_home, capsys):
    profile = hanging_profile(tmp_path)
    plan = plan_run(load_profile(profile))
    lock = plan.lock_path
    first = subprocess.Popen([sys.executable, "-m", "migrator", "run", str(profile)], cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: locked_by(lock) == f"pid {first.pid}" and recorded_runs(plan.state_path) == 1)
        assert main(["run", str(profile)]) == ExitCode.LOCKED == 4
        err = capsys.readouterr().err
        assert err == (f"migrator: another run of backup is still going (pid {first.pid}, lock {lock}): "
                       "this run stops without doing anything; see `migrator status` for the last runs\n")
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the run and its password command, like `kill -9` from cron
        first.wait()

    local_profile(tmp_path)  # same file name, so the same state file and lock
    assert main(["run", str(profile), "--quiet"]) == 0
    assert main(["status", str(profile)]) == 0
    rows = capsys.readouterr().out.splitlines()[2:]
    assert rows[0].endswith("ok (exit 0)")
    assert rows[1].endswith("did not finish (killed or the machine stopped)")
