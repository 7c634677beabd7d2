"""A provider that throttles or stops a run: waited out as asked, or a clean stop with what is left counted.

Against the Gmail stand-in (harness/gmail.py): Gmail's ``NO [THROTTLED]`` after some messages,
Microsoft 365's ``BAD Request is throttled. Suggested Backoff Time: N milliseconds`` followed by a BYE,
and an account whose download budget ends every new session (``* BYE Session expired, please login
again.``), as Gmail does once its 2500 MB a day are spent. The waits are recorded, never slept; the
rate limits' token bucket is driven by an injected clock.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from harness.endpoints import endpoint, stand_in_endpoint
from harness.gmail import GMAIL_OVERQUOTA, GMAIL_THROTTLED, Budgets, GmailServer, Throttle, microsoft_throttled
from migrator.cli import main
from migrator.core.errors import ExitCode
from migrator.endpoints.endpoint import parse_endpoint
from migrator.endpoints.presets import Limits
from migrator.pipeline import batches
from migrator.pipeline.run import run_copy
from migrator.state.statefile import StateStore
from migrator.stores.imap import reading
from migrator.stores.network import reconnect
from migrator.stores.network.pacing import Pace, Pacing, TokenBucket
from migrator.stores.network.throttle import MAX_WAIT, pause, throttle_in
from migrator.stores.network.throttle import Throttle as Asked

MESSAGES = 12
WHEN = datetime(2026, 12, 7, 3, 0, tzinfo=timezone.utc)
SIZE = 200  # bytes, about, each


def raw(number: int) -> bytes:
    return (f"Message-ID: <throttle-{number}@example.com>\r\nFrom: ana@example.com\r\nSubject: number {number}\r\n"
            f"Date: Mon, 7 Dec 2026 03:00:{number:02d} +0000\r\n\r\nMessage {number}.\r\n" + "x" * 100).encode()


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the reconnect policy's pauses and throttling waits instead of taking them; fetch 2 messages a
    command and write 2 a batch, so that a throttle after N messages falls between commands."""
    monkeypatch.setattr(reading, "FETCH_BATCH_MESSAGES", 2)
    monkeypatch.setattr(batches, "BATCH_MESSAGES", 2)
    pauses: list[float] = []
    monkeypatch.setattr(reconnect, "POLICY", reconnect.ReconnectPolicy(delays=(0.0, 0.0, 0.0), sleep=pauses.append))
    return pauses


def gmail_with_mail(**options: object) -> GmailServer:
    server = GmailServer(user="alice", **options)  # type: ignore[arg-type]
    for number in range(1, MESSAGES + 1):
        server.add_message(raw(number), ["\\Inbox"])
    return server


def maildir_count(path) -> int:
    return sum(1 for folder in path.rglob("cur") for _ in folder.iterdir())


# --- recognising what providers say ---------------------------------------------------------


@pytest.mark.parametrize(("words", "budget", "wait"), [
    ("Request is throttled. Suggested Backoff Time: 1500 milliseconds", False, 1.5),
    ("Request is throttled. Suggested Backoff Time: 299961 milliseconds", False, 299.961),
    ("Request is throttled. Suggested Backoff Time: 900000 milliseconds", False, MAX_WAIT),
    ("[THROTTLED] Account exceeded command or bandwidth limits. (Failure)", False, None),
    ("[OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)", True, None),
    ("Session expired, please login again.", True, None),
])
def test_provider_words_are_recognised(words: str, budget: bool, wait: float | None) -> None:
    throttle = throttle_in(words)
    assert throttle is not None and (throttle.budget, throttle.wait) == (budget, wait)


@pytest.mark.parametrize("words", ["[TRYCREATE] no such folder", "LOGOUT Requested", "Quota exceeded soon", ""])
def test_other_words_are_not_throttling(words: str) -> None:
    assert throttle_in(words) is None


def test_an_unsaid_wait_doubles_and_is_bounded() -> None:
    unsaid = Asked("[THROTTLED]")
    assert [pause(unsaid, n) for n in (1, 2, 3)] == [10.0, 20.0, 40.0]
    assert pause(unsaid, 20) == MAX_WAIT


# --- throttled runs ------------------------------------------------------------------------


def test_gmail_throttling_is_waited_out_and_every_message_copied(slept, tmp_path, capsys) -> None:
    # Two FETCH commands are in flight at a time: both are refused, then one more after the first wait.
    server = gmail_with_mail(throttle=Throttle("UID FETCH", after=4, reply=GMAIL_THROTTLED, times=3))
    try:
        endpoint = stand_in_endpoint(server.port)
        summary = run_copy(endpoint, [parse_endpoint(f"maildir:{tmp_path / 'Mail'}")],
                           state=StateStore(tmp_path / "state.db"))
    finally:
        server.close()
    assert (summary.copied, summary.failed, summary.exit_code) == (MESSAGES, 0, ExitCode.OK)
    assert maildir_count(tmp_path / "Mail") == MESSAGES
    assert slept == [10.0, 20.0]  # Gmail names no wait: 10 s, then twice that
    assert "127.0.0.1 asked to slow down 2 times, waited 30.0 s in all" in " ".join(summary.notes)


def test_microsofts_suggested_backoff_is_waited_and_appends_resume(slept, tmp_path) -> None:
    source = gmail_with_mail()
    target = GmailServer(user="alice", throttle=Throttle("APPEND", after=5, reply=microsoft_throttled(2500),
                                                          times=2, bye=True))
    try:
        summary = run_copy(stand_in_endpoint(source.port), [stand_in_endpoint(target.port)],
                           state=StateStore(tmp_path / "state.db"))
        inbox = target.folder("INBOX")
    finally:
        source.close()
        target.close()
    assert (summary.copied, summary.failed, summary.exit_code) == (MESSAGES, 0, ExitCode.OK)
    assert slept == [2.5, 2.5]
    assert sorted(m.raw for m in inbox) == sorted(raw(n) for n in range(1, MESSAGES + 1))  # each once


def test_throttling_that_never_lets_up_stops_the_run(slept, tmp_path) -> None:
    server = gmail_with_mail(throttle=Throttle("UID FETCH", after=3, reply=GMAIL_THROTTLED))
    try:
        summary = run_copy(stand_in_endpoint(server.port), [parse_endpoint(f"maildir:{tmp_path / 'Mail'}")],
                           state=StateStore(tmp_path / "state.db"))
    finally:
        server.close()
    assert summary.exit_code == ExitCode.LIMITED
    assert summary.copied + summary.left == MESSAGES and summary.copied >= 3
    assert len(slept) == reconnect.POLICY.throttle_waits
    assert summary.stop_advice() == (
        "alice@127.0.0.1 keeps refusing to serve this run for now (it said '[THROTTLED] Account exceeded command or "
        f"bandwidth limits. (Failure)'): {summary.left} messages left; rerun later to continue")


# --- a spent daily budget: a clean stop, and a rerun that finishes exactly --------------------


def test_a_spent_budget_stops_cleanly_and_the_rerun_finishes_exactly(slept, tmp_path, capsys, monkeypatch) -> None:
    server = gmail_with_mail(budgets=Budgets(download=5 * SIZE, per="account"))
    monkeypatch.setenv("GMAIL_PW", "secret")
    source = f"imap://alice@127.0.0.1:{server.port}/?tls=none&password_env=GMAIL_PW&provider=gmail"
    target = f"maildir:{tmp_path / 'Mail'}"
    state = str(tmp_path / "state.db")
    try:
        status = main(["copy", source, target, "--state", state])
        out, err = capsys.readouterr()
        copied = maildir_count(tmp_path / "Mail")
        server.budgets = Budgets()  # the next day
        again = main(["copy", source, target, "--state", state])
        rerun, _ = capsys.readouterr()
        fetched = server.bodies_sent
    finally:
        server.close()
    assert status == ExitCode.LIMITED == 5
    assert 0 < copied < MESSAGES
    left = MESSAGES - copied
    assert f"stopped by the server's limit with {left} messages left" in out
    assert (f"Gmail's daily download limit reached (about 2500 MB a day over IMAP): {left} messages left; "
            "rerun tomorrow (or later today) to continue") in err
    assert again == ExitCode.OK and f"{left} copied, {copied} already there" in rerun
    assert maildir_count(tmp_path / "Mail") == MESSAGES  # nothing missing, nothing twice
    assert fetched == MESSAGES  # each body fetched once: the one refused at the budget was never sent


def test_a_profile_run_stopped_by_a_budget_shows_in_status(slept, tmp_path, capsys, monkeypatch) -> None:
    server = gmail_with_mail(budgets=Budgets(download=5 * SIZE, per="account"))
    monkeypatch.setenv("GMAIL_PW", "secret")
    profile = tmp_path / "gmail.yaml"
    profile.write_text(f"""\
version: 1
source:
  type: imap
  provider: gmail
  host: 127.0.0.1
  port: {server.port}
  tls: none
  user: alice
  password_env: GMAIL_PW
targets:
  - type: maildir
    path: Mail
""")
    try:
        status = main(["run", str(profile)])
    finally:
        server.close()
    capsys.readouterr()
    assert status == ExitCode.LIMITED
    assert main(["status", str(profile)]) == 0
    shown = capsys.readouterr().out
    assert "stopped by the provider's limit (exit 5)" in shown
    assert "why: Gmail's daily download limit reached" in shown


def test_overquota_on_upload_says_upload(slept, tmp_path) -> None:
    source = gmail_with_mail()
    target = GmailServer(user="alice", throttle=Throttle("APPEND", after=4, reply=GMAIL_OVERQUOTA))
    try:
        endpoint = stand_in_endpoint(target.port, provider="gmail")
        summary = run_copy(stand_in_endpoint(source.port), [endpoint], state=StateStore(tmp_path / "state.db"))
    finally:
        source.close()
        target.close()
    assert summary.exit_code == ExitCode.LIMITED
    assert summary.stop_advice() == (f"Gmail's daily upload limit reached (about 500 MB a day over IMAP): "
                                     f"{summary.left} messages left; rerun tomorrow (or later today) to continue")


# --- rate limits -----------------------------------------------------------------------------


class Clock:
    """A clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_token_bucket_keeps_the_average_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(1000.0, 1000.0, clock, clock.sleep)
    for _ in range(10):
        bucket.take(500)  # 5000 bytes at 1000 a second, 1000 saved up; the last 500 are owed, not waited for
    assert sum(clock.slept) == pytest.approx(3.5)
    clock.now += 60  # an idle minute pays the debt and saves up only the burst
    bucket.take(1500)
    bucket.take(1)
    assert sum(clock.slept) == pytest.approx(4.0)


def test_pacing_limits_messages_and_bytes_together() -> None:
    clock = Clock()
    pacing = Pacing(Pace(bytes_per_second=10_000, messages_per_second=4), clock, clock.sleep)
    for _ in range(20):
        pacing.spend(100)  # 20 messages at 4 a second: the message limit is the one that bites
    assert clock.now - 100.0 == pytest.approx(15 / 4)  # 4 saved up and one owed go at once, then 4 a second
    assert pacing.waited == pytest.approx(15 / 4)


def test_a_large_message_is_let_through_and_paid_for_after() -> None:
    clock = Clock()
    pacing = Pacing(Pace(bytes_per_second=1000), clock, clock.sleep)
    pacing.spend(10_000)  # larger than a second's worth: goes at once
    assert clock.slept == []
    pacing.spend(10)
    assert clock.slept == [pytest.approx(9.0)]


def test_limits_reach_the_store_from_the_endpoint_the_run_and_the_preset(tmp_path) -> None:
    gmail = parse_endpoint("gmail:alice@gmail.com?max_messages_per_second=2")
    assert (gmail.pace.max_messages_per_second, gmail.pace.max_bytes_per_second) == (2, 20_000)
    from migrator.stores.imap import ImapStore

    store = ImapStore(gmail)
    assert store.pacing is not None and store.pacing.pace == Pace(20_000, 2, 1_000_000_000)
    assert store.sibling().pacing is store.pacing  # one bucket for all the run's connections to the server
    own = ImapStore(parse_endpoint("gmail:alice@gmail.com?max_bytes_per_second=1MB"))
    assert own.pacing is not None and own.pacing.pace == Pace(1_000_000, None, None)  # the user's, without burst


def test_a_rate_limited_run_waits_through_its_pacing(tmp_path, monkeypatch) -> None:
    clock = Clock()
    from migrator.stores.network import pacing as pacing_module

    monkeypatch.setattr(pacing_module, "CLOCK", clock)
    monkeypatch.setattr(pacing_module, "SLEEP", clock.sleep)
    server = gmail_with_mail()
    try:
        monkeypatch.setenv("GMAIL_PW", "secret")
        status = main(["copy", f"imap://alice@127.0.0.1:{server.port}/?tls=none&password_env=GMAIL_PW",
                       f"maildir:{tmp_path / 'Mail'}", "--no-state", "--max-messages-per-second", "4"])
    finally:
        server.close()
    assert status == 0 and maildir_count(tmp_path / "Mail") == MESSAGES
    assert sum(clock.slept) == pytest.approx((MESSAGES - 5) / 4)  # 5 go at once, then 4 a second


def test_a_pop3_source_keeps_to_its_limits(dovecot, user, tmp_path, monkeypatch) -> None:
    clock = Clock()
    from migrator.stores.network import pacing as pacing_module

    monkeypatch.setattr(pacing_module, "CLOCK", clock)
    monkeypatch.setattr(pacing_module, "SLEEP", clock.sleep)
    dovecot.seed(user, [("INBOX", raw(number), [], WHEN) for number in range(1, 7)])
    source = endpoint(dovecot, user, "pop3s", limits=Limits(max_messages_per_second=2))
    summary = run_copy(source, [parse_endpoint(f"maildir:{tmp_path / 'Mail'}")], state=None)
    assert summary.copied == 6
    assert sum(clock.slept) == pytest.approx((6 - 3) / 2)  # 2 saved up and one owed go at once, then 2 a second
    assert "kept to the limits of" in " ".join(summary.notes)
