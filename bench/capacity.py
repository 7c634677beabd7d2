"""`python -m bench.capacity`: what a batch of many accounts costs, for planning a move.

A mix of many small accounts and a few large ones (each a bench corpus: 100 and 5 000 messages by default)
is seeded into the bench's Dovecot once; then `migrator batch` copies the whole list, as its real command
line, with --jobs 1, 2, 4 and 8, each time into fresh targets (new IMAP accounts on the same server by
default, or Maildirs). For each: wall time, accounts an hour, MB/s, the CPU time of migrator's processes
and of Dovecot's, MB/s per core of migrator's CPU, each worker's peak RSS (from the batch's report.json)
and whether every account ended exact. The --jobs after which more jobs add less than 10 % is where this
machine's throughput stops growing. Client and server share the machine, as in the main benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from bench.capacity_report import BatchRun, machine, table
from bench.corpus import Corpus, load_corpus
from bench.limit import main as read_everything
from bench.measure import measure
from bench.memory import recycle_memory
from bench.report import MB
from bench.runs import REPO, default_python
from bench.server import Account, BenchServer
from harness.dovecot import DovecotServer

OUT = Path(__file__).resolve().parent / "out"
JOBS = (1, 2, 4, 8)
TICKS = os.sysconf("SC_CLK_TCK")


def template(account: Account, target: str, work: Path) -> str:
    """Return the batch's template profile: ${EmailAddress} copied into ${TargetUser} or a Maildir of its own,
    on ``account``'s server."""
    endpoint = (f"  host: {account.host}\n  port: {account.imap_port}\n  ca_file: {account.ca_file}\n"
                "  password_env: BENCH_PASSWORD\n")
    source = f"source:\n  type: imap\n  user: ${{EmailAddress}}\n{endpoint}"
    if target == "imap":
        into = f"targets:\n  - type: imap\n    user: ${{TargetUser}}\n{endpoint.replace('  ', '    ')}"
    else:
        into = f"targets:\n  - type: maildir\n    path: {work}/mail/${{EmailAddress}}\n"
    return f"version: 1\n{source}{into}"


def seed_accounts(server: BenchServer, small: Corpus, large: Corpus, counts: tuple[int, int]) -> list[Account]:
    """Return the source accounts: ``counts[0]`` holding ``small``, ``counts[1]`` holding ``large``."""
    accounts = []
    for corpus, prefix, count in ((small, "small", counts[0]), (large, "large", counts[1])):
        for _ in range(count):
            account = server.new_account(prefix)
            server.seed(account, corpus)
            accounts.append(account)
    return accounts


def warm_up(accounts: list[Account], scratch: Path) -> None:
    """Read every source account once, unmeasured, so each run finds Dovecot's indexes and the page cache warm."""
    for account in accounts:
        read_everything([account.host, str(account.imap_port), account.user, account.ca_file,
                         str(scratch / "counts.json")])


def run_batch(server: BenchServer, accounts: list[Account], jobs: int, target: str, python: str, work: Path,
              size: int) -> BatchRun:
    """Return the measurement of one `migrator batch` of ``accounts`` at ``jobs`` into fresh targets."""
    if target == "imap":
        rows = ["EmailAddress,TargetUser", *(f"{account.user},{server.new_account('t').user}" for account in accounts)]
    else:
        rows = ["EmailAddress", *(account.user for account in accounts)]
    (work / "accounts.csv").write_text("\n".join(rows) + "\n")
    (work / "template.yaml").write_text(template(accounts[0], target, work))
    argv = [python, "-m", "migrator", "batch", "run", str(work / "accounts.csv"), "--profile",
            str(work / "template.yaml"), "--dir", str(work / "batch"), "--jobs", str(jobs), "--quiet"]
    env = {"BENCH_PASSWORD": server.password, "XDG_STATE_HOME": str(work / "xdg"), "PYTHONPATH": str(REPO)}
    os.sync()
    recycle_memory(size)
    served = server_cpu_seconds(server.dovecot)
    done = measure(argv, env=env, timeout=3600)
    served = server_cpu_seconds(server.dovecot) - served
    rows_done = _report(work / "batch" / "report.json")
    if not done.ok and not rows_done:
        raise RuntimeError(f"migrator batch --jobs {jobs} failed: {done.error}")
    return BatchRun(jobs, done.seconds, done.cpu_seconds or 0.0, served, len(accounts),
                    sum(row["status"] == "exact" for row in rows_done), sum(int(row["bytes"]) for row in rows_done),
                    tuple(int(row["peak_memory_kb"]) for row in rows_done if row.get("peak_memory_kb")),
                    done.peak_rss_kb, tuple((int(row["bytes"]), float(row["seconds"])) for row in rows_done))


def _report(path: Path) -> list[dict]:
    try:
        return list(json.loads(path.read_text())["accounts"])
    except (OSError, ValueError, KeyError):
        return []


def server_cpu_seconds(dovecot: DovecotServer) -> float:
    """Return the CPU seconds of Dovecot's master and every child it has reaped (the imap and login processes
    of finished sessions; the long-lived auth and log processes are not in it)."""
    pid = (dovecot.root / "run" / "master.pid").read_text().strip()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / TICKS  # utime, stime, cutime, cstime


def parse(argv: list[str]) -> argparse.Namespace:
    """Return the options of the command line ``argv``; argparse exits on a usage error."""
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=40, help="small accounts (default 40)")
    parser.add_argument("--small-messages", type=int, default=100, help="messages of a small account (100)")
    parser.add_argument("--large", type=int, default=3, help="large accounts (default 3)")
    parser.add_argument("--large-messages", type=int, default=5000, help="messages of a large account (5000)")
    parser.add_argument("--jobs", default=",".join(map(str, JOBS)), help="--jobs values, comma-separated")
    parser.add_argument("-r", "--repeats", type=int, default=3, help="repeats of every --jobs; medians count (3)")
    parser.add_argument("--target", choices=("imap", "maildir"), default="imap",
                        help="new IMAP accounts on the same server (default) or Maildirs")
    parser.add_argument("--python", default=default_python(), help="the Python that runs migrator")
    parser.add_argument("--out", type=Path, default=OUT, help="where the corpora are cached")
    args = parser.parse_args(argv)
    args.jobs = [int(n) for n in args.jobs.split(",")]
    return args


def main(argv: list[str]) -> int:
    """Seed the accounts, run the batch at every --jobs, print the table."""
    args = parse(argv)
    small, large = load_corpus(args.small_messages, args.out), load_corpus(args.large_messages, args.out)
    size = args.small * small.size + args.large * large.size
    runs = []
    with DovecotServer() as dovecot, tempfile.TemporaryDirectory(prefix="bench-capacity-", dir=args.out) as scratch:
        server = BenchServer(dovecot)
        os.environ["BENCH_PASSWORD"] = server.password  # for the warm-up's reads
        accounts = seed_accounts(server, small, large, (args.small, args.large))
        warm_up(accounts, Path(scratch))
        _say(f"seeded {len(accounts)} accounts, {size / MB:.0f} MB")
        # Each round runs every --jobs once, so that a busy minute spreads over all of them. Targets are deleted
        # only at the end: ext4 hands out inodes slowly right after a mass deletion (bench/session.py).
        for repeat in range(args.repeats):
            for jobs in args.jobs:
                work = Path(scratch) / f"jobs-{jobs}-{repeat}"
                work.mkdir()
                runs.append(run_batch(server, accounts, jobs, args.target, args.python, work, size))
                _say(f"[{repeat + 1}/{args.repeats}] " + table(runs[-1:]).splitlines()[2])
    command = shlex.join(["python", "-m", "bench.capacity", *argv])
    into = "IMAP" if args.target == "imap" else "Maildir"
    print(f"## Capacity ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)\n\n`{command}`: {args.small} accounts of "
          f"{args.small_messages} messages ({small.size / MB:.1f} MB) and {args.large} of {args.large_messages} "
          f"({large.size / MB:.0f} MB), {size / MB:.0f} MB in all, IMAP → {into} on one "
          f"Dovecot over TLS; {machine()}, client and server sharing it; "
          f"{args.repeats} repeats, each --jobs its median wall time (the range in brackets).\n\n{table(runs)}")
    return 0


def _say(text: str) -> None:
    print(f"bench.capacity: {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
