"""`migrator batch`: a list of accounts, a template profile, a worker process per account, shards, reports.

The small tests read lists (Exchange's CSV unchanged, more columns, imapsync's lines, hostile addresses),
do the shard arithmetic, write failed rows back and render the HTML report. Against the real Dovecot: a
few accounts with a wrong password and a held lock, then (slow) 200 accounts of varied size copied with
--jobs 4, and again as 8 shards in separate processes under Kubernetes' and Slurm's variables, one shard
SIGKILLed and rerun; every account's Maildir is compared with its source, message by message.
"""

from __future__ import annotations

import contextlib
import csv
import json
import mailbox
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from harness.dovecot import DovecotServer, MailUser
from migrator.batch.accounts import read_accounts, safe_name, write_rows
from migrator.batch.coordinator import BatchSettings, Observer, account_dir, run_batch
from migrator.batch.report import AccountResult, batch_exit_code, read_report, write_reports
from migrator.batch.shards import Shard, choose_shard, parse_shard, shard_of
from migrator.batch.status import batch_rows, merge_reports
from migrator.cli import main
from migrator.core.errors import ConfigError
from migrator.state.lock import ProfileLock, locked_by

REPO = Path(__file__).resolve().parent.parent
DATE = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- the list of accounts ----------------------------------------------------------------------------

EXCHANGE = ("EmailAddress,UserName,Password\r\n"
            "terrya@contoso.edu,contoso\\terry.adams,1091990\r\n"
            "annb@contoso.edu,contoso\\ann.beebe,2111991\r\n")


def test_exchange_onlines_file_loads_unchanged(tmp_path):
    listed = read_accounts(write(tmp_path / "users.csv", "\ufeff" + EXCHANGE))
    assert listed.format == "csv" and listed.columns == ("EmailAddress", "UserName", "Password")
    assert [(a.line, a.id, a.values) for a in listed.accounts] == [
        (2, "terrya@contoso.edu", {"EmailAddress": "terrya@contoso.edu", "UserName": "contoso\\terry.adams",
                                   "Password": "1091990"}),
        (3, "annb@contoso.edu", {"EmailAddress": "annb@contoso.edu", "UserName": "contoso\\ann.beebe",
                                 "Password": "2111991"}),
    ]
    assert "1091990" not in repr(listed.accounts[0])


def test_further_columns_name_what_differs_per_row(tmp_path):
    listed = read_accounts(write(tmp_path / "users.csv",
                                 "EmailAddress,UserName,PasswordEnv,UserRoot,SourceHost,TargetUser,"
                                 "TargetPasswordCommand,AdminUser,AdminPasswordFile,Profile\n"
                                 "a@x.org,a,PW_A,/users/a,old.x.org,a@new.x.org,pass show a,admin,admin.pw,"
                                 "slow.yaml\n"))
    assert listed.accounts[0].values["TargetPasswordCommand"] == "pass show a"
    assert listed.accounts[0].secrets == ()  # references, not passwords


def test_an_unknown_column_is_named_with_its_line_the_known_ones_and_a_guess(tmp_path):
    path = write(tmp_path / "users.csv", "EmailAddress,UserName,Password,SorceHost\na@x.org,a,pw,h\n")
    with pytest.raises(ConfigError) as error:
        read_accounts(path)
    assert str(error.value).startswith(f"{path}, line 1: unknown column 'SorceHost' (did you mean 'SourceHost'?); "
                                       "the columns are EmailAddress, UserName, Password, UserRoot, Account, ")
    assert read_accounts(path, allow_columns=True).accounts[0].values["SorceHost"] == "h"


@pytest.mark.parametrize(("text", "message"), [
    ("EmailAddress,UserName\na@x.org,a,extra\n", "line 2: 3 fields where the header names 2"),
    ("EmailAddress,Password,PasswordEnv\na@x.org,pw,PW\n", "line 2: give one source of Password, not both "
                                                           "Password and PasswordEnv"),
    ("EmailAddress\nA@x.org\nb@x.org\na@X.org\n", "line 4: the account a@X.org is on line 2 already"),
    ("Password\npw\n", "line 1: no column names the account"),
])
def test_a_list_with_a_mistake_says_where(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        read_accounts(write(tmp_path / "users.csv", text))


def test_imapsyncs_lines_are_an_import_format_detected_or_named(tmp_path):
    text = "# from the old server\nimap.old;alice;s3cret;imap.new;alice@new;n3w;\n\nimap.old;bob;pw;imap.new;bob;p\n"
    path = write(tmp_path / "file.txt", text)
    for listed in (read_accounts(path), read_accounts(path, format="imapsync")):
        assert listed.format == "imapsync"
        assert [(a.line, a.id, a.values) for a in listed.accounts] == [
            (2, "alice", {"SourceHost": "imap.old", "UserName": "alice", "Password": "s3cret",
                          "TargetHost": "imap.new", "TargetUser": "alice@new", "TargetPassword": "n3w"}),
            (4, "bob", {"SourceHost": "imap.old", "UserName": "bob", "Password": "pw", "TargetHost": "imap.new",
                        "TargetUser": "bob", "TargetPassword": "p"}),
        ]
    assert read_accounts(path).accounts[0].secrets == ("s3cret", "n3w")
    with pytest.raises(ConfigError, match="line 1: 3 fields; imapsync's lines are"):
        read_accounts(write(tmp_path / "bad.txt", "a;b;c\n"), format="imapsync")


@pytest.mark.parametrize("address", ["../../etc/passwd", "/nowhere/.ssh", "..", ".hidden", "a/../../b", "a\x00b",
                                     "C:\\Windows", "x" * 300, "ünïcode@exämple.org"])
def test_a_hostile_address_gets_a_directory_inside_the_batch_directory(tmp_path, address):
    listed = read_accounts(write(tmp_path / "users.csv", f'EmailAddress\n"{address}"\nplain@x.org\n'))
    hostile, plain = listed.accounts
    place = account_dir(tmp_path / "batch", hostile)
    assert place.parent == (tmp_path / "batch" / "accounts").resolve()
    assert "/" not in hostile.dir_name and not hostile.dir_name.startswith(".") and len(hostile.dir_name) <= 91
    assert account_dir(tmp_path / "batch", plain).name == "plain@x.org"
    assert safe_name("a/b") != safe_name("a_b")  # names made safe keep accounts apart


# --- shards ------------------------------------------------------------------------------------------

def test_the_shard_hash_is_stable_and_ignores_case_and_spaces():
    # sha256, not hash(): the same on every machine and in every process (PYTHONHASHSEED).
    assert shard_of("alice@example.com", 8) == shard_of(" Alice@Example.COM", 8) == 7
    assert shard_of("bob@example.com", 1000) == 388
    probe = "from migrator.batch.shards import shard_of; print(shard_of('alice@example.com', 8))"
    other = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": "123"}, cwd=REPO)
    assert other.stdout.strip() == "7"


def test_the_shards_together_hold_every_account_exactly_once():
    keys = [f"user{n}@example.org" for n in range(1000)]
    taken = [key for index in range(8) for key in keys if Shard(index, 8).holds(key)]
    assert sorted(taken) == sorted(keys)
    sizes = [sum(Shard(index, 8).holds(key) for key in keys) for index in range(8)]
    assert min(sizes) > 80  # the hash spreads them


def test_the_shard_comes_from_the_option_kubernetes_or_slurm():
    assert choose_shard("3/8", None, {}) == Shard(3, 8, "--shard 3/8")
    assert choose_shard(None, None, {}).whole
    assert choose_shard(None, 8, {"JOB_COMPLETION_INDEX": "5"}).index == 5
    assert choose_shard(None, None, {"JOB_COMPLETION_INDEX": "5", "MIGRATOR_SHARDS": "6"}).count == 6
    with pytest.raises(ConfigError, match="pass --shards N or set MIGRATOR_SHARDS"):
        choose_shard(None, None, {"JOB_COMPLETION_INDEX": "5"})
    for bad in ("8/8", "x/2", "1"):
        with pytest.raises(ConfigError):
            parse_shard(bad)


def test_slurm_array_ids_that_do_not_start_at_0_or_follow_each_other_are_positions():
    # sbatch --array=10-31:3 runs tasks 10, 13, ... 31: eight tasks, shards 0 to 7.
    ids = range(10, 32, 3)
    slurm = [choose_shard(None, None, {"SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_TASK_MIN": "10",
                                       "SLURM_ARRAY_TASK_STEP": "3", "SLURM_ARRAY_TASK_COUNT": "8"})
             for task in ids]
    assert [(s.index, s.count) for s in slurm] == [(n, 8) for n in range(8)]
    with pytest.raises(ConfigError, match="not MIN 10 plus a multiple of STEP 3"):
        choose_shard(None, None, {"SLURM_ARRAY_TASK_ID": "11", "SLURM_ARRAY_TASK_MIN": "10",
                                  "SLURM_ARRAY_TASK_STEP": "3", "SLURM_ARRAY_TASK_COUNT": "8"})


# --- failed rows, reports ----------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "text"), [
    ("users.csv", EXCHANGE.replace("Password\r\n", "Password,UserRoot\r\n").replace("1091990\r\n", "1091990,\r\n")
     .replace("2111991\r\n", '"21,11991",/r\r\n')),
    ("users.txt", "h1;terry;pw;h2;terry@new;pw2;\nh1;ann;pw;h2;ann@new;pw3;\n"),
])
def test_failed_rows_are_written_in_the_lists_own_format_and_read_back(tmp_path, name, text):
    listed = read_accounts(write(tmp_path / name, text))
    again = tmp_path / ("failed" + Path(name).suffix)
    write_rows(again, listed, listed.accounts[1:])
    assert oct(again.stat().st_mode & 0o777) == "0o600"
    replay = read_accounts(again)
    assert replay.format == listed.format and replay.columns == listed.columns
    assert [a.values for a in replay.accounts] == [a.values for a in listed.accounts[1:]]


def result(account: str, status: str = "exact", **counts: object) -> AccountResult:
    return AccountResult(account, status, **counts)  # type: ignore[arg-type]


def test_the_html_report_stands_alone_and_holds_every_row(tmp_path):
    rows = [result(f"user{n}@x.org", copied=n, started=1000.0, finished=1000.0 + n) for n in range(50)]
    rows.append(result("<script>alert(1)</script>@x.org", "failed", exit_code=3, first_error="cannot log in & <b>",
                       started=1000.0, finished=1070.0))
    write_reports(tmp_path, rows, "Contoso's move")
    page = (tmp_path / "report.html").read_text()
    assert "<script" not in page and "<link" not in page and "@import" not in page and "url(" not in page
    assert [link for link in page.split('"') if link.startswith("http")] == ["http://www.w3.org/2000/svg"]
    assert "<svg" in page and "<polyline" in page
    assert page.count("<tr") == 52  # the head and every account
    assert "&lt;script&gt;alert(1)&lt;/script&gt;@x.org" in page and "cannot log in &amp; &lt;b&gt;" in page
    rows_csv = list(csv.DictReader((tmp_path / "report.csv").open()))
    assert len(rows_csv) == 51 and rows_csv[0]["account"] == "<script>alert(1)</script>@x.org"
    assert read_report(tmp_path / "report.json") == sorted(rows, key=lambda r: r.account.lower())


def test_the_batch_exit_code():
    assert batch_exit_code([result("a"), result("b")]) == 0
    assert batch_exit_code([result("a"), result("b", "locked")]) == 4
    assert batch_exit_code([result("a", "partial"), result("b", "locked")]) == 1
    assert batch_exit_code([result("a", "crashed")]) == 1


# --- against the real Dovecot ------------------------------------------------------------------------

def template(path: Path, server: DovecotServer, options: str = "") -> Path:
    """Write a template profile: the row's user on the server, into a Maildir under ${OUT}."""
    return write(path, f"""version: 1
source:
  type: imap
  host: 127.0.0.1
  port: {server.ports['imaps']}
  user: ${{UserName}}
  password: ${{Password}}
  ca_file: {server.ca_file}
targets:
  - type: maildir
    path: ${{OUT}}/${{UserName}}
{options}""")


def seed(server: DovecotServer, user: MailUser, counts: dict[str, int], rng: random.Random) -> None:
    server.seed(user, [
        (folder, (f"From: sender@example.org\r\nTo: {user.name}@example.org\r\nSubject: {folder} {number}\r\n"
                  f"Message-ID: <{user.name}.{folder}.{number}@batch>\r\n\r\n").encode()
         + b"x" * rng.choice([40, 200, 200, 2000, 9000]) + b"\r\n", ["\\Seen"] if number % 3 else [], DATE)
        for folder, count in counts.items() for number in range(count)
    ])


def source_mail(server: DovecotServer, user: MailUser) -> dict[str, list[bytes]]:
    return {folder: sorted(raw for raw, _, _ in messages)
            for folder, messages in server.dump(user).items() if messages}


def target_mail(path: Path) -> dict[str, list[bytes]]:
    """Return the messages of a Maildir++ tree by folder ('/' between levels), read with the standard library."""
    if not path.exists():
        return {}
    box = mailbox.Maildir(path, factory=None, create=False)
    found = {"INBOX": sorted(box.get_bytes(key) for key in box.iterkeys())}
    for name in box.list_folders():
        folder = box.get_folder(name)
        found[name.replace(".", "/")] = sorted(folder.get_bytes(key) for key in folder.iterkeys())
    return {folder: messages for folder, messages in found.items() if messages}


def rows_of(path: Path) -> dict[str, dict[str, str]]:
    return {row["account"]: row for row in csv.DictReader(path.open(encoding="utf-8"))}


def test_a_few_accounts_side_by_side_a_wrong_password_a_held_lock_and_the_replay(dovecot, make_user, tmp_path,
                                                                                  monkeypatch, capsys):
    rng = random.Random(1)
    users = [make_user() for _ in range(5)]
    for number, user in enumerate(users):
        seed(dovecot, user, {"INBOX": number, "Projects/2024": number % 2}, rng)
    monkeypatch.setenv("OUT", str(tmp_path / "out"))
    monkeypatch.setenv("PW_ONE", users[1].password)
    write(tmp_path / "two.pw", users[2].password + "\n")
    accounts = write(tmp_path / "users.csv", "EmailAddress,UserName,Password,PasswordEnv,PasswordFile\n"
                     f"{users[0].name}@example.org,{users[0].name},{users[0].password},,\n"
                     f"{users[1].name}@example.org,{users[1].name},,PW_ONE,\n"
                     f"{users[2].name}@example.org,{users[2].name},,,two.pw\n"
                     f"{users[3].name}@example.org,{users[3].name},wrong-{users[3].password},,\n"
                     f"{users[4].name}@example.org,{users[4].name},{users[4].password},,\n")
    profile, batch = template(tmp_path / "template.yaml", dovecot), tmp_path / "batch"
    held = account_dir(batch, read_accounts(accounts).accounts[4]) / "state.sqlite.lock"
    with ProfileLock(held, "another pod"):
        code = main(["batch", str(accounts), "--profile", str(profile), "--dir", str(batch), "--jobs", "2"])
    out, err = capsys.readouterr()
    assert code == 1
    report = rows_of(batch / "report.csv")
    assert {row["status"] for name, row in report.items() if users[3].name not in name and
            users[4].name not in name} == {"exact"}
    wrong, locked = report[f"{users[3].name}@example.org"], report[f"{users[4].name}@example.org"]
    assert (wrong["status"], wrong["exit_code"]) == ("failed", "3") and "AUTHENTICATIONFAILED" in wrong["first_error"]
    assert (locked["status"], locked["exit_code"]) == ("locked", "4") and "another run" in locked["first_error"]
    assert f"failed  {users[3].name}@example.org: 0 copied" in err and "4 of 5 accounts exact" not in out
    for path in [batch / "report.csv", batch / "report.json", batch / "report.html",
                 *batch.glob("accounts/*/*")]:
        assert b"wrong-secret" not in path.read_bytes() and users[0].password.encode() not in path.read_bytes()
    replay = batch / "failed.csv"
    assert replay.read_text().splitlines()[1:] == [f"{users[3].name}@example.org,{users[3].name},"
                                                   f"wrong-{users[3].password},,"]
    write(replay, replay.read_text().replace(f"wrong-{users[3].password}", users[3].password))
    assert main(["batch", str(replay), "--profile", str(profile), "--dir", str(batch), "--quiet"]) == 0
    assert main(["batch", str(accounts), "--profile", str(profile), "--dir", str(batch), "--skip-done"]) == 0
    out, _ = capsys.readouterr()
    assert f"exact   {users[0].name}@example.org: 0 copied, 0 already there" in out  # skipped: done before
    assert "(done before (--skip-done))" in out
    assert {row["status"] for row in rows_of(batch / "report.csv").values()} == {"exact"}
    for user in users:
        assert target_mail(tmp_path / "out" / user.name) == source_mail(dovecot, user)
    assert main(["batch", "status", str(batch)]) == 0
    status = capsys.readouterr().out
    assert status.startswith("5 accounts: 5 exact\naccount")


class VanishingFolder(Observer):
    """Deletes an account's folder through IMAP once its worker has begun copying (listed, not yet copied)."""

    def __init__(self, server: DovecotServer, user: MailUser, folder: str) -> None:
        self.server, self.user, self.folder = server, user, folder
        self.deleted = False

    def event(self, account, event) -> None:
        if account.values.get("UserName") == self.user.name and event.get("event") == "folder" and not self.deleted:
            self.deleted = True
            connection = self.server.imap(self.user)
            assert connection.delete(self.folder)[0] == "OK"
            connection.logout()


def shard_processes(accounts: Path, profile: Path, batch: Path, environs: list[dict[str, str]],
                    *extra: str) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-m", "migrator", "batch", str(accounts), "--profile", str(profile),
                              "--dir", str(batch), "--jobs", "1", *extra], cwd=REPO,
                             env={**os.environ, **environ}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for environ in environs]


@pytest.mark.slow
def test_two_hundred_accounts_in_one_batch_then_as_eight_shards_one_killed(dovecot, make_user, tmp_path, monkeypatch):
    rng = random.Random(25)
    users = [make_user() for _ in range(200)]
    for number, user in enumerate(users):
        if number < 4:  # a few larger accounts
            counts = {"INBOX": rng.randint(150, 300), "Projects/2024": rng.randint(20, 60)}
        elif number == 4:  # its folder Vanish disappears once the batch copies it
            counts = {"INBOX": 200, "Vanish": 30}
        elif number < 40:
            counts = {"INBOX": rng.randint(2, 12), "Sent": rng.randint(0, 3)}
        else:  # most are empty or tiny
            counts = {"INBOX": rng.choice([0, 0, 0, 1, 2])}
        seed(dovecot, user, counts, rng)
    larger, vanishing, wrong = users[:4], users[4], users[5]
    address = {user.name: f"{user.name}@example.org" for user in users}
    lines = [f"{address[u.name]},{u.name},{'wrong-' if u is wrong else ''}{u.password},"
             f"{'one-connection.yaml' if u is vanishing else ''}" for u in users]
    accounts = write(tmp_path / "users.csv", "EmailAddress,UserName,Password,Profile\n" + "\n".join(lines) + "\n")
    profile = template(tmp_path / "template.yaml", dovecot)
    template(tmp_path / "one-connection.yaml", dovecot, "options:\n  connections: 1\n")

    # 1. One batch, 4 accounts at a time; a folder disappears mid-run.
    monkeypatch.setenv("OUT", str(tmp_path / "out1"))
    watcher = VanishingFolder(dovecot, vanishing, "Vanish")
    single = run_batch(read_accounts(accounts), BatchSettings(profile, tmp_path / "one", jobs=4), watcher)
    assert watcher.deleted and single.exit_code == 1
    by_name = {row.account: row for row in single.results}
    assert len(by_name) == 200
    assert (by_name[address[wrong.name]].status, by_name[address[wrong.name]].exit_code) == ("failed", 3)
    assert "AUTHENTICATIONFAILED" in by_name[address[wrong.name]].first_error
    gone = by_name[address[vanishing.name]]
    assert gone.status == "exact" or (gone.status == "partial" and "Vanish" in gone.first_error), gone
    assert {row.status for name, row in by_name.items() if name not in (address[wrong.name],
                                                                         address[vanishing.name])} == {"exact"}
    assert sum(row.copied for row in single.results) > 1000
    # The failed rows replayed once the password is right: every account is exact.
    replay = tmp_path / "one" / "failed.csv"
    assert address[wrong.name] in replay.read_text()
    write(replay, replay.read_text().replace(f"wrong-{wrong.password}", wrong.password))
    assert run_batch(read_accounts(replay), BatchSettings(profile, tmp_path / "one", jobs=4)).exit_code == 0
    for user in users:
        assert target_mail(tmp_path / "out1" / user.name) == source_mail(dovecot, user), user.name

    # 2. The same list as 8 shards in separate processes of a Kubernetes Indexed Job; one is SIGKILLed mid-run.
    monkeypatch.setenv("OUT", str(tmp_path / "out2"))
    batch = tmp_path / "shards"
    victim = larger[0]
    doomed = shard_of(address[victim.name], 8)
    kubernetes = [{"JOB_COMPLETION_INDEX": str(index), "MIGRATOR_SHARDS": "8"} for index in range(8)]
    processes = shard_processes(accounts, profile, batch, kubernetes, "--quiet")
    victim_lock = batch / "accounts" / address[victim.name] / "state.sqlite.lock"
    deadline = time.monotonic() + 60
    while not (locked_by(victim_lock) and (batch / "accounts" / address[victim.name] / "state.sqlite").exists()):
        assert time.monotonic() < deadline and processes[doomed].poll() is None
        time.sleep(0.02)
    time.sleep(0.3)  # mid-copy of its few hundred messages
    processes[doomed].send_signal(signal.SIGKILL)
    codes = [process.wait(timeout=120) for process in processes]
    assert codes[doomed] == -signal.SIGKILL
    wrong_shard = shard_of(address[wrong.name], 8)
    assert [code for index, code in enumerate(codes) if index not in (doomed, wrong_shard)] == [0] * 6
    while locked_by(victim_lock):  # its worker was told to stop (SIGTERM) when its coordinator died
        time.sleep(0.05)
    stopped = json.loads((victim_lock.parent / "result.json").read_text())
    assert stopped["status"] in ("stopped", "exact"), stopped
    taken = {index: {entry["account"] for entry in json.loads(
        (batch / "reports" / f"shard-{index}-of-8" / "accounts.json").read_text())["accounts"]} for index in range(8)}
    assert sorted(name for names in taken.values() for name in names) == sorted(address.values())  # each once

    # The killed shard's pod is replaced: it reruns its index, skipping the accounts done already.
    (rerun,) = shard_processes(accounts, profile, batch, [kubernetes[doomed]], "--skip-done")
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == (1 if doomed == wrong_shard else 0), err

    # 3. The same shards from a Slurm job array with ids 10, 13, ... 31: the same accounts, each index.
    slurm = [{"SLURM_ARRAY_TASK_ID": str(10 + 3 * index), "SLURM_ARRAY_TASK_MIN": "10",
              "SLURM_ARRAY_TASK_STEP": "3", "SLURM_ARRAY_TASK_COUNT": "8"} for index in range(8)]
    for process in shard_processes(accounts, profile, batch, slurm, "--skip-done", "--quiet"):
        process.wait(timeout=120)
    for index in range(8):
        listed = json.loads((batch / "reports" / f"shard-{index}-of-8" / "accounts.json").read_text())
        assert {entry["account"] for entry in listed["accounts"]} == taken[index]

    # Every account ends exact, nothing twice; the merged report has the single run's rows.
    for user in users:
        if user is not wrong:
            assert target_mail(tmp_path / "out2" / user.name) == source_mail(dovecot, user), user.name
    joined, _ = merge_reports([batch], batch)
    first = {row.account: row for row in single.results}
    assert [row.account for row in joined] == sorted(first, key=str.lower)
    for row in joined:
        if row.account != address[vanishing.name]:  # the folder had gone before the shards ran
            expected = first[row.account]
            assert (row.status, row.held, row.failed, row.exit_code) == (expected.status, expected.held,
                                                                         expected.failed, expected.exit_code), row
    assert [row.account for row in batch_rows(batch) if row.status != "exact"] == [address[wrong.name]]


def test_a_stop_while_the_workers_start_stops_them_and_kills_none(dovecot, make_user, tmp_path):
    users = [make_user() for _ in range(3)]
    for user in users:
        seed(dovecot, user, {"INBOX": 5}, random.Random(3))
    accounts = write(tmp_path / "users.csv", "UserName,Password\n" + "".join(f"{u.name},{u.password}\n" for u in users))
    profile, batch = template(tmp_path / "template.yaml", dovecot), tmp_path / "batch"
    command = [sys.executable, "-m", "migrator", "batch", str(accounts), "--profile", str(profile), "--dir", str(batch),
               "--jobs", "3"]
    running = subprocess.Popen(command, cwd=REPO, env={**os.environ, "OUT": str(tmp_path / "out")},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while len(list(batch.glob("accounts/*/log"))) < len(users):  # the three workers are starting
        assert running.poll() is None, running.communicate()
        time.sleep(0.001)
    running.send_signal(signal.SIGTERM)
    _, err = running.communicate(timeout=60)
    assert running.returncode == 143, err
    statuses = {row["status"] for row in rows_of(batch / "report.csv").values()}
    assert statuses <= {"stopped", "exact"}, statuses


def test_a_stopped_batch_stops_its_workers_at_a_safe_point_and_a_rerun_ends_exact(dovecot, make_user, tmp_path):
    rng = random.Random(2)
    users = [make_user() for _ in range(3)]
    for user in users:
        seed(dovecot, user, {"INBOX": 300}, rng)
    accounts = write(tmp_path / "users.csv", "UserName,Password\n" + "".join(f"{u.name},{u.password}\n" for u in users))
    profile, batch = template(tmp_path / "template.yaml", dovecot), tmp_path / "batch"
    environ = {**os.environ, "OUT": str(tmp_path / "out")}
    command = [sys.executable, "-m", "migrator", "batch", str(accounts), "--profile", str(profile), "--dir", str(batch)]
    dry = subprocess.run([*command, "--dry-run"], cwd=REPO, env=environ, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert not (batch / "report.csv").exists() and not list(batch.glob("accounts/*/result.json"))
    running = subprocess.Popen([*command, "--jobs", "3"], cwd=REPO, env=environ, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    first = batch / "accounts" / users[0].name
    while not (first / "state.sqlite").exists() or not locked_by(first / "state.sqlite.lock"):
        assert running.poll() is None, running.communicate()
        time.sleep(0.01)
    running.send_signal(signal.SIGTERM)
    out, err = running.communicate(timeout=60)
    assert running.returncode == 143, err
    assert "stopped by SIGTERM" in err
    statuses = {row["status"] for row in rows_of(batch / "report.csv").values()}
    assert statuses <= {"stopped", "exact"} and "stopped" in statuses  # none was cut anywhere but a safe point
    assert not any(locked_by(path) for path in batch.glob("accounts/*/state.sqlite.lock"))
    rerun = subprocess.run([*command, "--skip-done"], cwd=REPO, env=environ, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    for user in users:
        assert target_mail(tmp_path / "out" / user.name) == source_mail(dovecot, user)


def test_an_account_whose_worker_dies_or_outgrows_its_memory_fails_alone(dovecot, make_user, tmp_path, monkeypatch):
    rng = random.Random(3)
    users = [make_user() for _ in range(3)]
    for user in users:
        seed(dovecot, user, {"INBOX": 3}, rng)
    monkeypatch.setenv("OUT", str(tmp_path / "out"))
    accounts = write(tmp_path / "users.csv", "UserName,PasswordCommand\n"
                     f"{users[0].name},echo {users[0].password}\n"
                     f"{users[1].name},kill -9 $PPID\n"  # the shell's parent is the account's worker
                     f"{users[2].name},echo {users[2].password}\n")
    profile = template(tmp_path / "template.yaml", dovecot)
    outcome = run_batch(read_accounts(accounts), BatchSettings(profile, tmp_path / "batch", jobs=3))
    rows = {row.account: row for row in outcome.results}
    assert outcome.exit_code == 1
    assert (rows[users[0].name].status, rows[users[2].name].status) == ("exact", "exact")
    crashed = rows[users[1].name]
    assert (crashed.status, crashed.exit_code) == ("crashed", 137)
    assert crashed.first_error == "the worker process ended: killed by SIGKILL; see its log"
    assert read_accounts(tmp_path / "batch" / "failed.csv").accounts[0].values["UserName"] == users[1].name
    # 30 MB of address space is far less than Python and OpenSSL need: every worker fails, the batch does not.
    small = run_batch(read_accounts(accounts), BatchSettings(profile, tmp_path / "small", jobs=3,
                                                             worker_memory=30_000_000))
    assert [row.status for row in small.results] == ["crashed"] * 3
    assert "exit 1 without a result (" in small.results[0].first_error  # MemoryError, or a library not loaded


@pytest.mark.parametrize(("command", "usage"), [
    (["batch"], "batch [OPTIONS] COMMAND [ARGS]..."),
    (["batch", "run"], "batch run [OPTIONS] ACCOUNTS"),
    (["batch", "status"], "batch status [OPTIONS] DIR"),
    (["batch", "merge"], "batch merge [OPTIONS] DIR..."),
])
def test_every_batch_command_has_help(command, usage, capsys):
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Usage: migrator {usage}\n")
    assert "<str>" not in out and "{" not in out.replace("${COLUMN}", "").replace("${NAME}", "")


def test_a_list_is_the_run_command_and_its_mistakes_stop_before_anything_runs(tmp_path, capsys):
    accounts = write(tmp_path / "users.csv", "EmailAddress,UserName,Pasword\na@x.org,a,pw\n")
    profile = write(tmp_path / "t.yaml", "version: 1\n")
    assert main(["batch", str(accounts), "--profile", str(profile), "--dir", str(tmp_path / "b")]) == 2
    assert "unknown column 'Pasword' (did you mean 'Password'?)" in capsys.readouterr().err
    write(accounts, "EmailAddress,UserName\na@x.org,a\n")
    write(profile, "version: 1\nsource: {type: maildir, path: '${Mailroot}/${UserName}'}\n")
    assert main(["batch", str(accounts), "--profile", str(profile), "--dir", str(tmp_path / "b")]) == 2
    assert "line 2: t.yaml uses ${Mailroot}, which is neither a column of this row nor set in the environment" in \
        capsys.readouterr().err
    assert not (tmp_path / "b" / "accounts").exists()


def test_an_admin_logs_in_for_every_account_of_the_list(dovecot_server, make_user, tmp_path, monkeypatch):
    # The admin's login (SASL PLAIN with the user as authorization identity) from the AdminUser and
    # AdminPassword* columns: no user's password in the list.
    server = dovecot_server(master_user=("admin", "admin-Secret-42"))
    users = [make_user(server) for _ in range(2)]
    for user in users:
        seed(server, user, {"INBOX": 2}, random.Random(4))
    monkeypatch.setenv("OUT", str(tmp_path / "out"))
    monkeypatch.setenv("ADMIN_PW", "admin-Secret-42")
    accounts = write(tmp_path / "users.csv", "EmailAddress,UserName,AdminUser,AdminPasswordEnv\n" + "".join(
        f"{user.name}@example.org,{user.name},admin,ADMIN_PW\n" for user in users))
    profile = write(tmp_path / "template.yaml", template(tmp_path / "t.yaml", server).read_text().replace(
        "  password: ${Password}\n", "  admin_user: ${AdminUser}\n  admin_password: ${AdminPassword}\n"))
    outcome = run_batch(read_accounts(accounts), BatchSettings(profile, tmp_path / "batch", jobs=2))
    assert outcome.exit_code == 0, outcome.results
    for user in users:
        assert target_mail(tmp_path / "out" / user.name) == source_mail(server, user)
    assert not [path for path in tmp_path.rglob("*") if path.is_file() and b"admin-Secret-42" in path.read_bytes()]


def test_a_worker_whose_batch_is_gone_goes_on_to_its_safe_stop(tmp_path):
    # Killed, the coordinator leaves its workers a pipe nobody reads; their SIGTERM follows. Meanwhile a copy
    # thread that reports progress must not fail its folder with a broken pipe.
    from migrator.batch.worker import Relay

    read, written = os.pipe()
    os.close(read)
    out = open(written, "w")  # noqa: SIM115  (closing it flushes into the broken pipe again)
    with open(tmp_path / "log", "w") as log:
        relay = Relay(out, log, ["s3cret"])
        relay.folder_started("INBOX", 3, 300)
        relay.messages_done(3, 300)
        relay.note("end: s3cret")
    with contextlib.suppress(BrokenPipeError):
        out.close()
    assert relay.gone and (tmp_path / "log").read_text().endswith(" end: ***\n")
