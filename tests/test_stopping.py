"""A copy stopped before its end: by a signal, by SIGKILL, by a full or a read-only disk.

Everything is real: Dovecot as the source, the command line in a subprocess, real signals (a run
is held with SIGSTOP at the moment the test wants, so that the signal lands mid-run whatever the
machine's speed), and real file systems: tmpfs mounts of a few megabytes, filled up or remounted
read-only. After each stop the test checks what the user sees (the exit status, one line), what
is left on disk (no temporary file, a PST as it was), and that a rerun ends with exactly the
source's messages.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from harness.corpus import corpus, seed_items, server_safe
from migrator.endpoints.endpoint import parse_endpoint
from migrator.stores import open_store
from migrator.stores.pst.validate import validate
from tests.support.archives import write_archive
from tests.support.pst_exports import readpst_export
from tests.support.pst_space import as_its_maps_see
from tests.support.tools import unavailable

MB = 1024 * 1024
SOURCE_USER = "stopping-source"
STOPS = [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)]


def messages_with_large_ones():
    """Return the corpus with its large message and four more of them: a run that lasts long enough to stop."""
    messages = server_safe(corpus(large=True))
    large = max(messages, key=lambda m: len(m.raw))
    more = [replace(large, raw=large.raw.replace(b"Large attachment", f"Large attachment {n}".encode(), 1),
                    folder=("Big",)) for n in range(4)]
    return messages + more


@pytest.fixture(scope="module")
def source(dovecot) -> tuple[str, dict[str, list[bytes]]]:
    """Return the endpoint of a Dovecot account holding about 50 MB, and its messages by folder."""
    user = dovecot.add_user(SOURCE_USER, "secret-stopping")
    dovecot.seed(user, seed_items(messages_with_large_ones()))
    os.environ["PW_STOPPING"] = user.password
    endpoint = (f"imaps://{user.name}@{dovecot.host}:{dovecot.ports['imaps']}?password_env=PW_STOPPING"
                f"&ca_file={dovecot.ca_file}")
    dump = dovecot.dump(user, include_empty=False)
    expected = {name: sorted(raw for raw, _, _ in items) for name, items in dump.items()}
    return endpoint, expected


def contents(endpoint: str) -> dict[str, list[bytes]]:
    """Return the raw messages of each non-empty folder of a local archive, sorted, read by migrator's store."""
    with open_store(parse_endpoint(endpoint)) as archive:
        folders = [folder for folder in archive.list_folders() if folder.selectable]
        found = {folder.name: sorted(m.raw for m in archive.messages(folder.path)) for folder in folders}
    return {name: raws for name, raws in found.items() if raws}


def migrator(*args: str) -> subprocess.CompletedProcess:
    """Run the command line to its end."""
    return subprocess.run([sys.executable, "-m", "migrator", *args], capture_output=True, text=True, timeout=300)


def held_when(args: list[str], ready: Callable[[], bool]) -> subprocess.Popen:
    """Start the command line and return it held by SIGSTOP at the first moment ``ready()`` holds."""
    with stop_signals_at_default_in_children():
        process = subprocess.Popen([sys.executable, "-m", "migrator", *args], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
    while process.poll() is None:
        if ready():
            process.send_signal(signal.SIGSTOP)
            _wait_held(process.pid)
            if ready():  # still so now that it cannot move on
                return process
            process.send_signal(signal.SIGCONT)
        time.sleep(0.0005)
    pytest.fail(f"the run ended (exit {process.returncode}) before the moment to stop it came: {process.stderr.read()}")


@contextlib.contextmanager
def stop_signals_at_default_in_children() -> Iterator[None]:
    """Let a command started inside begin with the stop signals at their defaults, as a user's shell starts it.

    The suite may run with some of them ignored (under nohup, or as a background job of a script), and an
    ignored signal stays ignored across exec, which migrator respects: the run would not stop. A signal with a
    handler is reset to its default by exec, so the test's process gives those a handler that ignores them.
    """
    ignored = [signum for signum, _ in STOPS if signal.getsignal(signum) is signal.SIG_IGN]
    for signum in ignored:
        signal.signal(signum, _ignore)
    try:
        yield
    finally:
        for signum in ignored:
            signal.signal(signum, signal.SIG_IGN)


def _ignore(signum: int, frame: object) -> None:
    pass


def _wait_held(pid: int) -> None:
    while Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "T":
        time.sleep(0.0005)


def signalled(process: subprocess.Popen, signum: int) -> tuple[int, str, str]:
    """Send ``signum`` to the held process, let it go on, and return its exit status, stdout and stderr."""
    process.send_signal(signum)
    process.send_signal(signal.SIGCONT)
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def written(directory: Path) -> int:
    """Return the bytes in the files below ``directory`` (0 before it exists)."""
    total = 0
    for path in directory.rglob("*"):
        with contextlib.suppress(OSError):
            total += path.stat().st_size if path.is_file() else 0
    return total


def leftovers(directory: Path) -> list[Path]:
    """Return the temporary files, and files in a Maildir's tmp/, and dotlocks below ``directory``."""
    return sorted(path for path in directory.rglob("*") if path.is_file()
                  and (path.name.endswith((".tmp", ".lock")) or path.parent.name == "tmp"))


def target_of(kind: str, directory: Path) -> str:
    return f"pst:{directory / 'backup.pst'}" if kind == "pst" else f"{kind}:{directory / kind}"


# --- stopped by a signal ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pst", "maildir", "mbox"])
@pytest.mark.parametrize(("signum", "status"), STOPS, ids=[s.name for s, _ in STOPS])
def test_a_signal_stops_the_copy_at_a_safe_point_and_the_rerun_ends_exact(source, tmp_path, kind, signum, status):
    endpoint, expected = source
    (tmp_path / "target").mkdir()
    target, state = target_of(kind, tmp_path / "target"), str(tmp_path / "state.sqlite")
    previous, previous_path = b"", tmp_path / "target" / "backup.pst"
    if kind == "pst":  # a PST from an earlier run, which a stopped run must leave as it is
        assert migrator("copy", endpoint, target, "--state", state, "--folder", "INBOX").returncode == 0
        previous = previous_path.read_bytes()

    process = held_when(["copy", endpoint, target, "--state", state],
                        lambda: written(tmp_path / "target") > len(previous) + 10 * MB)
    code, out, err = signalled(process, signum)

    assert code == status
    kept = "what was copied is kept,"
    if kind == "pst":
        kept = f"what was copied is kept, except in {previous_path}, which stays as it was before this run;"
    assert (out, err) == ("", f"migrator: stopped by {signum.name}; {kept} rerun to continue\n")
    assert leftovers(tmp_path / "target") == []
    if kind == "pst":
        assert as_its_maps_see(previous, previous_path.read_bytes())  # what it wrote may stay in free space
    else:  # stopped mid-run, and what it wrote is whole
        got = contents(target)
        assert sum(map(len, got.values())) < sum(map(len, expected.values()))
        assert all(set(raws) <= set(expected[name]) for name, raws in got.items())

    rerun = migrator("copy", endpoint, target, "--state", state)
    assert rerun.returncode == 0, rerun.stderr
    assert contents(target) == expected
    assert leftovers(tmp_path / "target") == []


def test_a_profile_run_records_the_signal_that_stopped_it(dovecot, source, tmp_path):
    profile = tmp_path / "nightly.yaml"
    profile.write_text(f"""version: 1
source:
  type: imap
  host: {dovecot.host}
  port: {dovecot.ports['imaps']}
  tls: implicit
  user: {SOURCE_USER}
  password_env: PW_STOPPING
  ca_file: {dovecot.ca_file}
targets:
  - type: maildir
    path: {tmp_path / 'maildir'}
state: {tmp_path / 'state.sqlite'}
""")
    process = held_when(["run", str(profile)], lambda: written(tmp_path / "maildir") > 10 * MB)
    assert signalled(process, signal.SIGTERM)[0] == 143
    status = migrator("status", str(profile))
    assert re.search(r"stopped \(SIGTERM\) \(exit 143\)$", status.stdout, re.MULTILINE), status.stdout


# --- killed: what the next run removes -------------------------------------------------------------


def _temporary_files(directory: Path) -> Callable[[], bool]:
    return lambda: any(path.name.endswith(".tmp") or path.parent.name == "tmp"
                       for path in directory.rglob("*") if path.is_file())


@pytest.mark.parametrize("kind", ["pst", "maildir", "eml"])
def test_the_temporary_files_of_a_killed_run_are_removed_by_the_next(source, tmp_path, kind):
    endpoint, expected = source
    (tmp_path / "target").mkdir()
    target, state = target_of(kind, tmp_path / "target"), str(tmp_path / "state.sqlite")
    process = held_when(["copy", endpoint, target, "--state", state, "--connections", "1"],
                        _temporary_files(tmp_path / "target"))
    process.kill()
    process.communicate()
    left = leftovers(tmp_path / "target")
    assert left, "the kill left no temporary file to remove"

    rerun = migrator("-v", "copy", endpoint, target, "--state", state)
    assert rerun.returncode == 0, rerun.stderr
    assert all(f"removed {path}, left by a run that was killed" in rerun.stderr for path in left), rerun.stderr
    assert leftovers(tmp_path / "target") == []
    assert contents(target) == expected


def _gone_pid() -> int:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    return finished.pid


@pytest.mark.parametrize("kind", ["maildir", "mbox", "eml", "pst"])
def test_only_migrators_own_abandoned_temporary_files_are_removed(tmp_path, kind):
    """Files named as migrator names them, by a process gone from this host or long unchanged, go; nothing else."""
    target = target_of(kind, tmp_path)
    write_archive(parse_endpoint(target), corpus()[:3])
    folder = {"maildir": tmp_path / "maildir", "mbox": tmp_path / "mbox" / "INBOX", "eml": tmp_path / "eml" / "INBOX",
              "pst": tmp_path}[kind]
    inner = {"maildir": "dovecot-keywords", "mbox": "mbox.lock", "eml": "000009.eml", "pst": "backup.pst"}[kind]
    here, gone, days_ago = socket.gethostname(), _gone_pid(), time.time() - 2 * 86400
    planted = {
        f".{inner}.{gone}@{here}.0123abcd.tmp": "removed",  # its process is gone
        f".{inner}.{os.getpid()}@{here}.0123abcd.tmp": "kept",  # its process runs
        f".{inner}.{gone}@elsewhere.0123abcd.tmp": "kept",  # another host's, and recent
        f".{inner}.{gone}@elsewhere.4567abcd.tmp": "removed, old",
        f".{inner}.{gone}.89abcdef.tmp": "removed, old",  # the name before the host was in it
        f".{inner}.x.tmp": "kept, old",  # not a name migrator gives
        f".other.{gone}@{here}.0123abcd.tmp": "kept",  # not a file migrator writes there
    }
    if kind == "maildir":
        planted[f"tmp/1700000000.M1P{gone}Q1.{here},S=5,W=5"] = "removed"
        planted["tmp/1700000000.M1P1.otherprogram"] = "kept, old"
    for name, fate in planted.items():
        (folder / name).write_bytes(b"part")
        if "old" in fate:
            os.utime(folder / name, (days_ago, days_ago))

    with open_store(parse_endpoint(target)):  # read-only: removes nothing
        pass
    assert all((folder / name).exists() for name in planted)
    with open_store(parse_endpoint(target), readonly=False):
        pass
    assert {name for name in planted if (folder / name).exists()} == {n for n, f in planted.items() if "kept" in f}


# --- a full disk, a read-only disk -----------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """Return a tmpfs of 32 MB mounted for the test."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount)], capture_output=True).returncode:
        unavailable("needs to mount a tmpfs (root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.fixture
def local_source(tmp_path) -> tuple[str, dict[str, list[bytes]]]:
    """Return a Maildir of the corpus with one message of 10 MB, and its messages by folder."""
    endpoint = f"maildir:{tmp_path / 'source'}"
    write_archive(parse_endpoint(endpoint), corpus(large=True))
    return endpoint, contents(endpoint)


def fill(disk: Path, leave: int) -> Path:
    """Write a file that leaves ``leave`` bytes free on ``disk``; return it."""
    filler = disk / "filler"
    status = os.statvfs(disk)
    filler.write_bytes(b"\0" * (status.f_bavail * status.f_frsize - leave))
    return filler


@pytest.mark.parametrize("kind", ["maildir", "mbox", "eml", "pst"])
def test_a_full_disk_stops_the_run_in_one_sentence_and_a_rerun_after_freeing_space_ends_exact(
        local_source, small_disk, tmp_path, kind):
    endpoint, expected = local_source
    target, state = target_of(kind, small_disk), str(tmp_path / "state.sqlite")
    assert migrator("copy", endpoint, target, "--state", state, "--folder", "INBOX").returncode == 0
    before = contents(target)
    previous = (small_disk / "backup.pst").read_bytes() if kind == "pst" else b""
    filler = fill(small_disk, leave=MB)

    full = migrator("copy", endpoint, target, "--state", state)

    assert full.returncode == 1
    path = re.escape(str(small_disk / ("backup.pst" if kind == "pst" else kind)))
    assert re.fullmatch(rf"migrator: cannot write to {path}\S*: No space left on device; [^\n]+: free some space there "
                        r"and rerun\n", full.stderr), full.stderr
    assert leftovers(small_disk) == []
    got = contents(target)  # readable, holding whole messages of the source, those of the first run among them
    assert all(set(before.get(name, [])) <= set(raws) <= set(expected[name]) for name, raws in got.items())
    if kind == "pst":
        # As its header and maps see it, the file is the previous one: only space they mark free may hold what
        # the refused run wrote there.
        assert as_its_maps_see(previous, (small_disk / "backup.pst").read_bytes())
        assert validate(small_disk / "backup.pst") == []
        readpst_export(small_disk / "backup.pst", tmp_path / "readpst")

    filler.unlink()
    rerun = migrator("copy", endpoint, target, "--state", state)
    assert rerun.returncode == 0, rerun.stderr
    assert contents(target) == expected


@pytest.mark.parametrize("kind", ["maildir", "mbox", "eml", "pst"])
def test_a_read_only_target_is_one_sentence_and_exit_2(local_source, small_disk, tmp_path, kind):
    endpoint, expected = local_source
    target, state = target_of(kind, small_disk), str(tmp_path / "state.sqlite")
    assert migrator("copy", endpoint, target, "--state", state, "--folder", "INBOX").returncode == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)

    refused = migrator("copy", endpoint, target, "--state", state)

    assert refused.returncode == 2
    if kind == "pst":
        where = (f"{small_disk / 'backup.pst'}: the folder {small_disk} is on a read-only file system; "
                 "make it writable or choose another")
    else:
        archive = {"maildir": "Maildir", "mbox": "mbox archive", "eml": "EML directory"}[kind]
        where = (f"to the {archive} at {small_disk / kind}: it is on a read-only file system; make it writable or "
                 "choose another directory")
    assert refused.stderr == f"migrator: cannot write {where}\n"
    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert migrator("copy", endpoint, target, "--state", state).returncode == 0
    assert contents(target) == expected
