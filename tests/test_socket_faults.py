"""Socket faults between migrator and the real Dovecot: dropped, reset and stalled connections, swept.

A proxy on a real socket (harness/proxy.py) breaks the conversation once, at byte N of
one direction: server to client while copying IMAP -> Maildir, client to server while copying
Maildir -> IMAP. The N are taken from a clean run of the same copy: in the greeting and the login,
the LIST, the scan, at the start, middle and end of message literals (FETCH bodies, APPEND
literals), and in the LOGOUT. After each fault the run has either recovered by itself (exit 0 and
the target exact) or failed with one clear line and exit 1 or 3; then a rerun must end exact: the
target holds each source message exactly once. Plain IMAP (tls=none, which Dovecot allows from its
own address) lets the clean run show where each part of the conversation is.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from harness.endpoints import url
from harness.proxy import FaultProxy
from migrator.cli import main
from migrator.core.message import Flags, Message
from migrator.endpoints.endpoint import Endpoint
from migrator.stores.network import reconnect
from tests.support.archives import write_archive

FOLDERS = ("INBOX", "Work", "Notes")
STALL_SECONDS = "1"
# Each fault at every landmark, every other one, or every third one: about 60 runs in all.
SWEEPS = [("drop", slice(None)), ("reset", slice(None, None, 2)), ("stall", slice(1, None, 3))]
CAUSES = {  # what a run that fails must say
    "drop": ("the server closed the connection",),
    "reset": ("Connection reset by peer", "the server closed the connection"),  # an RST after the data reads as the end
    "stall": (f"the server stalled: no progress for {STALL_SECONDS} s",),
}
Contents = dict[str, Counter]  # folder -> how many times each message's bytes are there


def corpus() -> list[Message]:
    """Return messages of 1 KB to 300 KB in three folders, so that a fault can land inside one."""
    sizes = [1_000, 3_000, 150_000, 2_000, 300_000, 1_500, 40_000, 2_500]
    messages = []
    for number in range(24):
        line = b"%04d: pack my box with five dozen liquor jugs\r\n" % number
        raw = (b"Message-ID: <%d@faults.test>\r\nSubject: fault %d\r\n\r\n" % (number, number)
               + line * (sizes[number % len(sizes)] // len(line)))
        when = datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(hours=number)
        messages.append(Message(raw, Flags(), when, (FOLDERS[number % 3],)))
    return messages


def expected(messages: list[Message]) -> Contents:
    return {folder: Counter(m.raw for m in messages if m.folder == (folder,)) for folder in FOLDERS}


def maildir_contents(root: Path) -> Contents:
    """Return what a Maildir holds, read from its files (not through migrator)."""
    directories = {"INBOX": root, **{name: root / f".{name}" for name in FOLDERS[1:]}}
    return {name: Counter(f.read_bytes() for f in [*path.glob("cur/*"), *path.glob("new/*")])
            for name, path in directories.items()}


def server_contents(server, user) -> Contents:
    """Return what the server holds for ``user``, read over imaplib (not through migrator)."""
    dump = server.dump(user)
    return {folder: Counter(raw for raw, _, _ in dump.get(folder, [])) for folder in FOLDERS}


@dataclass
class Tally:
    """The outcome of a sweep: trials, and how each ended; a run that fails must say one of ``causes``."""

    causes: tuple[str, ...]
    trials: int = 0
    recovered: int = 0
    failed_cleanly: int = 0
    lost: int = 0
    duplicated: int = 0
    problems: list[str] = field(default_factory=list)
    endings: list[str] = field(default_factory=list)  # per trial: where the fault struck and how the run ended

    def judge(self, offset: int, code: int, err: str, after_fault: Contents, after_rerun: Contents, rerun_code: int,
              wanted: Contents) -> None:
        """Count one trial, the fault at byte ``offset``: how the faulty run ended, and what the rerun left."""
        self.trials += 1
        self.endings.append(f"byte {offset}: exit {code} {err.strip()}")
        if code == 0 and after_fault == wanted:
            self.recovered += 1
        elif code in (1, 3) and err.startswith("migrator: ") and any(cause in err for cause in self.causes):
            self.failed_cleanly += 1
        else:
            self.problems.append(f"exit {code}: {err!r}")
        self.lost += any(after_rerun[f][raw] < count for f in wanted for raw, count in wanted[f].items())
        self.duplicated += any(count > wanted[f][raw] for f in wanted for raw, count in after_rerun[f].items())
        if rerun_code != 0:
            self.problems.append(f"the rerun exited {rerun_code}")

    def row(self, fault: str, direction: str) -> str:
        return (f"| {fault} | {direction} | {self.trials} | {self.recovered} | {self.failed_cleanly} | "
                f"{self.lost} | {self.duplicated} |")


def landmarks_down(stream: bytes) -> list[int]:
    """Return byte offsets across what Dovecot sends while an IMAP -> Maildir copy runs."""
    literals = [(m.end(), int(m.group(1))) for m in re.finditer(rb"BODY\[\] \{(\d+)\}\r\n", stream)]
    largest = max(literals, key=lambda literal: literal[1])
    return [
        10,  # in the greeting
        stream.index(b"Logged in") - 5,  # in the login's reply
        stream.index(b"* LIST") + 10,  # in the folder list
        stream.index(b"RFC822.SIZE") + 3,  # in the scan of the first folder
        literals[0][0],  # a FETCH body announced, not one byte of it yet
        literals[0][0] + literals[0][1] // 2,
        largest[0] + largest[1] // 2,
        largest[0] + largest[1] - 1,  # one byte short of the whole body
        int(len(stream) * 0.6),
        literals[-1][0] + literals[-1][1] // 2,
        len(stream) - 8,  # in the LOGOUT's reply
    ]


def landmarks_up(stream: bytes) -> list[int]:
    """Return byte offsets across what migrator sends while a Maildir -> IMAP copy runs."""
    literals = [(m.end(), int(m.group(1))) for m in re.finditer(rb"\{(\d+)\+?\}\r\n", stream)]
    largest = max(literals, key=lambda literal: literal[1])
    return [
        3,  # in the first command
        stream.index(b"AUTHENTICATE") + 15,  # in the login
        stream.index(b"LIST") + 3,
        stream.index(b"APPEND") + 4,  # in the first APPEND's command line
        literals[0][0],  # an APPEND literal announced, not one byte of it yet
        literals[0][0] + literals[0][1] // 2,
        largest[0] + largest[1] // 2,
        largest[0] + largest[1] - 1,  # one byte short of the whole literal
        literals[len(literals) // 2][0] + literals[len(literals) // 2][1],  # between two messages of a group
        literals[-1][0] + literals[-1][1] // 2,
        len(stream) - 4,  # in the LOGOUT
    ]


@pytest.fixture(autouse=True)
def quick_faults(monkeypatch):
    """Reconnect at once and stall after 1 s, to keep the sweep short.

    The pause before resending unconfirmed APPENDs (writing.py) stays as it is: no duplicate rests on it.
    """
    monkeypatch.setattr(reconnect, "POLICY", reconnect.ReconnectPolicy(delays=(0.05, 0.05, 0.05)))
    monkeypatch.setenv("MIGRATOR_STALL_SECONDS", STALL_SECONDS)


def copy(source: str, target: str, state: Path, capsys) -> tuple[int, str]:
    """Run ``migrator copy`` on one connection; return its exit status and what it printed on stderr."""
    code = main(["copy", source, target, "--state", str(state), "--connections", "1", "--quiet"])
    return code, capsys.readouterr().err


def sweep_fetch(dovecot, user, fault: str, pick: slice, tmp_path, capsys, monkeypatch) -> Tally:
    """IMAP -> Maildir, the fault on what the server sends, once at each landmark ``pick`` chooses."""
    messages = corpus()
    dovecot.seed(user, [(m.folder, m.raw, [], m.received) for m in messages])
    wanted = expected(messages)
    clean = FaultProxy(dovecot.host, dovecot.ports["imap"], record=True)
    source = url(dovecot, user, "imap", port=clean.port, tls="none")
    assert copy(source, f"maildir:{tmp_path / 'clean'}", tmp_path / "clean.db", capsys) == (0, "")
    clean.close()
    assert maildir_contents(tmp_path / "clean") == wanted
    tally = Tally(CAUSES[fault])
    for trial, offset in enumerate(landmarks_down(bytes(clean.streams["down"]))[pick]):
        proxy = FaultProxy(dovecot.host, dovecot.ports["imap"], fault=fault, after=offset, direction="down")
        target, state = tmp_path / f"md{trial}", tmp_path / f"state{trial}.db"
        code, err = copy(url(dovecot, user, "imap", port=proxy.port, tls="none"), f"maildir:{target}", state, capsys)
        proxy.close()
        after_fault = maildir_contents(target)
        rerun, _ = copy(url(dovecot, user, "imap", tls="none"), f"maildir:{target}", state, capsys)
        tally.judge(offset, code, err, after_fault, maildir_contents(target), rerun, wanted)
    return tally


def sweep_append(dovecot, make_user, fault: str, pick: slice, tmp_path, capsys, monkeypatch) -> Tally:
    """Maildir -> IMAP, the fault on what migrator sends, once at each landmark ``pick`` chooses."""
    messages = corpus()
    write_archive(Endpoint("maildir", path=tmp_path / "source"), messages)
    source, wanted = f"maildir:{tmp_path / 'source'}", expected(messages)
    clean, target = FaultProxy(dovecot.host, dovecot.ports["imap"], record=True), make_user()
    clean_target = url(dovecot, target, "imap", port=clean.port, tls="none")
    assert copy(source, clean_target, tmp_path / "clean.db", capsys) == (0, "")
    clean.close()
    assert server_contents(dovecot, target) == wanted
    tally = Tally(CAUSES[fault])
    for trial, offset in enumerate(landmarks_up(bytes(clean.streams["up"]))[pick]):
        proxy, target, state = FaultProxy(dovecot.host, dovecot.ports["imap"], fault=fault, after=offset,
                                          direction="up"), make_user(), tmp_path / f"state{trial}.db"
        code, err = copy(source, url(dovecot, target, "imap", port=proxy.port, tls="none"), state, capsys)
        proxy.close()
        after_fault = server_contents(dovecot, target)
        rerun, _ = copy(source, url(dovecot, target, "imap", tls="none"), state, capsys)
        tally.judge(offset, code, err, after_fault, server_contents(dovecot, target), rerun, wanted)
    return tally



@pytest.mark.slow
@pytest.mark.parametrize("fault, pick", SWEEPS, ids=[fault for fault, _ in SWEEPS])
def test_faults_while_fetching_then_a_rerun_ends_exact(dovecot, user, fault, pick, tmp_path, capsys, monkeypatch):
    tally = sweep_fetch(dovecot, user, fault, pick, tmp_path, capsys, monkeypatch)
    print(tally.row(fault, "IMAP -> Maildir, server to client"), *tally.endings, sep="\n")
    assert (tally.lost, tally.duplicated, tally.problems) == (0, 0, [])
    assert tally.recovered + tally.failed_cleanly == tally.trials > 0


@pytest.mark.slow
@pytest.mark.parametrize("fault, pick", SWEEPS, ids=[fault for fault, _ in SWEEPS])
def test_faults_while_appending_then_a_rerun_ends_exact(dovecot, make_user, fault, pick, tmp_path, capsys,
                                                        monkeypatch):
    tally = sweep_append(dovecot, make_user, fault, pick, tmp_path, capsys, monkeypatch)
    print(tally.row(fault, "Maildir -> IMAP, client to server"), *tally.endings, sep="\n")
    assert (tally.lost, tally.duplicated, tally.problems) == (0, 0, [])
    assert tally.recovered + tally.failed_cleanly == tally.trials > 0
