"""SIGKILL sweeps: copies killed at random moments, then rerun, in every direction a backup takes.

For each direction, 20 runs of the real command line are SIGKILLed by a proxy on a real socket
when a random share of the bytes a clean run sends (seeded, so a failure can be replayed) has
passed: in the middle of a FETCH or RETR literal from the source, of an APPEND literal to an IMAP
target, or of the POP3 commands that end in DELE and QUIT. Each killed run is rerun, and the target
must then hold exactly the source's messages, byte for byte: none missing, none twice. With
POP3 and --delete, no message may be gone from the server that the archive does not hold whole,
right after the kill as after the rerun. Each direction prints its figures (pytest -s shows them).
"""

from __future__ import annotations

import base64
import collections
import random
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import pytest

from harness.corpus import corpus, seed_items, server_safe
from harness.endpoints import url
from harness.proxy import KillProxy
from migrator.core.message import Flags, Message
from tests.test_migrate import run_killed
from tests.test_stopping import contents, leftovers

TRIALS = 20
Raws = dict[str, list[bytes]]


def sweep_messages() -> list[Message]:
    """Return 40 messages: half the corpus and three large ones (10, 1.5 and 1.5 MB), for kills mid-literal."""
    # Each ends with a line end, which POP3 would otherwise add: what is sent is what comes back.
    small = [m for m in server_safe(corpus()) if m.raw.endswith(b"\r\n")][::2]
    large = max(server_safe(corpus(large=True)), key=lambda m: len(m.raw))
    return small + [replace(large, folder=("Big",)), _attachment(1), _attachment(2)]


def _attachment(number: int) -> Message:
    payload = base64.encodebytes(random.Random(number).randbytes(1_100_000)).replace(b"\n", b"\r\n")
    raw = (f"Subject: attachment {number}\r\nMessage-ID: <attachment{number}@sweep>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n").encode() + payload
    return Message(raw, Flags(), datetime(2024, 5, number, tzinfo=timezone.utc), ("Big",))


def raws(dump: dict[str, list[tuple[bytes, object, object]]]) -> Raws:
    """Return a server's dump as sorted raw messages by folder."""
    return {name: sorted(raw for raw, _, _ in items) for name, items in dump.items() if items}


def migrator(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "migrator", *args, "--quiet"], capture_output=True, text=True,
                          timeout=300)


def tally(figures: collections.Counter, got: Raws, expected: Raws) -> None:
    """Count the trial as exact or not, and the messages lost and those there twice (or partial)."""
    figures["exact after rerun"] += got == expected
    for name in got.keys() | expected.keys():
        have, want = collections.Counter(got.get(name, [])), collections.Counter(expected.get(name, []))
        figures["lost"] += sum((want - have).values())
        figures["duplicated"] += sum((have - want).values())


@dataclass
class Trial:
    """One killed run and its rerun: the arguments (given the ports the proxies listen on) and what to compare."""

    args: Callable[[int], list[str]]  # the killed run's arguments, given the proxy's port
    rerun: list[str]
    target: Callable[[], Raws]


def sweep(name: str, make: Callable[[int], Trial], proxied: tuple, directions: tuple[str, ...], expected: Raws,
          after_kill: Callable[[int], None] = lambda trial: None) -> collections.Counter:
    """Run the trials of one direction of copying, each killed after a random share of the bytes a clean
    run sends one of ``directions`` ("down": to migrator, "up": from it) through ``proxied``; return the figures."""
    measure = KillProxy(*proxied)
    clean = make(-1)
    assert migrator(*clean.args(measure.port)).returncode == 0
    measure.close()
    moments = random.Random(f"sweep {name}")
    figures = collections.Counter(trials=0, **{"killed mid-run": 0, "exact after rerun": 0, "lost": 0, "duplicated": 0})
    for number in range(TRIALS):
        trial = make(number)
        direction = moments.choice(directions)
        kill_after = int(moments.uniform(0.02, 1.0) * measure.sent[direction])
        proxy = KillProxy(*proxied, kill_after=kill_after, direction=direction)
        figures["trials"] += 1
        figures["killed mid-run"] += run_killed(trial.args(proxy.port), proxy) == -9 and proxy.killed
        proxy.close()
        after_kill(number)
        rerun = migrator(*trial.rerun)
        assert rerun.returncode == 0, rerun.stderr
        tally(figures, trial.target(), expected)
    print(f"\nSIGKILL sweep, {name}: {dict(figures)}")
    return figures


def assert_sound(figures: collections.Counter) -> None:
    assert figures["exact after rerun"] == TRIALS and figures["lost"] == figures["duplicated"] == 0, figures
    assert figures["killed mid-run"] >= TRIALS * 3 // 4, figures  # the kills did land in the middle of runs


@pytest.fixture(scope="module")
def imap_source(dovecot) -> tuple[object, Raws]:
    user = dovecot.add_user("sweep-source", "secret-sweep")
    dovecot.seed(user, seed_items(sweep_messages()))
    return user, raws(dovecot.dump(user, include_empty=False))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["maildir", "mbox", "pst"])
def test_imap_to_an_archive_killed_at_random_moments_ends_exact_on_rerun(dovecot, imap_source, tmp_path, kind):
    user, expected = imap_source

    def make(number: int) -> Trial:
        target = f"pst:{tmp_path / f'{number}.pst'}" if kind == "pst" else f"{kind}:{tmp_path / str(number)}"
        state = ["--state", str(tmp_path / f"{number}.sqlite")]
        return Trial(lambda port: ["copy", url(dovecot, user, port=port), target, *state],
                     ["copy", url(dovecot, user), target, *state], lambda: contents(target))

    figures = sweep(f"IMAP -> {kind}", make, (dovecot.host, dovecot.ports["imaps"]), ("down",), expected)
    assert_sound(figures)
    assert leftovers(tmp_path) == []  # what each killed run left was removed by its rerun


@pytest.mark.slow
def test_imap_to_imap_killed_at_random_moments_ends_exact_on_rerun(dovecot, imap_source, make_user, tmp_path):
    user, expected = imap_source
    targets = {}

    def make(number: int) -> Trial:
        target = targets[number] = make_user()
        state = ["--state", str(tmp_path / f"{number}.sqlite")]
        return Trial(lambda port: ["copy", url(dovecot, user), url(dovecot, target, port=port), *state],
                     ["copy", url(dovecot, user), url(dovecot, target), *state],
                     lambda: raws(dovecot.dump(target, include_empty=False)))

    assert_sound(sweep("IMAP -> IMAP", make, (dovecot.host, dovecot.ports["imaps"]), ("up",), expected))


@pytest.mark.slow
def test_pop3_with_delete_killed_at_random_moments_deletes_only_what_is_archived(dovecot, make_user, tmp_path):
    """Killed in the middle of a RETR (down), or of the commands, which end in DELE and QUIT (up)."""
    messages = [replace(m, folder=("INBOX",)) for m in sweep_messages()]
    expected = {"INBOX": sorted(m.raw for m in messages)}
    users = {}

    def make(number: int) -> Trial:
        source = users[number] = make_user()
        dovecot.seed(source, seed_items(messages))
        target, state = f"mbox:{tmp_path / str(number)}", ["--state", str(tmp_path / f"{number}.sqlite"), "--delete"]
        return Trial(lambda port: ["copy", url(dovecot, source, "pop3s", port=port), target, *state],
                     ["copy", url(dovecot, source, "pop3s"), target, *state],
                     lambda: contents(target))

    unarchived = collections.Counter()

    def deleted_but_not_archived(number: int) -> None:
        left_on_server = collections.Counter(raws(dovecot.dump(users[number], include_empty=False)).get("INBOX", []))
        deleted = collections.Counter(expected["INBOX"]) - left_on_server
        archive = tmp_path / str(number)
        archived = collections.Counter(contents(f"mbox:{archive}").get("INBOX", []) if archive.exists() else [])
        unarchived["deleted by the killed run"] += sum(deleted.values())
        unarchived["deleted but not archived"] += sum((deleted - archived).values())

    figures = sweep("POP3 -> mbox --delete", make, (dovecot.host, dovecot.ports["pop3s"]), ("down", "up"), expected,
                    deleted_but_not_archived)
    print(f"  and {dict(unarchived)}; left on the server after the reruns: "
          f"{sum(len(raws(dovecot.dump(u, include_empty=False)).get('INBOX', [])) for u in users.values())}")
    assert_sound(figures)
    assert unarchived["deleted but not archived"] == 0
    assert all(not raws(dovecot.dump(u, include_empty=False)) for u in users.values())  # the reruns deleted the rest
