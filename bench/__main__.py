"""`python -m bench` (or `bench/run`): run the benchmark and print the table (see bench/README.md)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from bench.runs import default_python
from bench.session import Options, elapsed_since, run_benchmark, say

OUT = Path(__file__).resolve().parent / "out"


def parse(argv: list[str]) -> Options:
    """Return the Options of the command line ``argv``; argparse exits on a usage error."""
    parser = argparse.ArgumentParser(prog="python -m bench", description="migrator beside mbsync, offlineimap3, "
                                     "getmail6 and the server limit, on a throwaway Dovecot.")
    parser.add_argument("-n", "--messages", type=int, default=int(os.environ.get("N", 5000)),
                        help="corpus size in messages (default $N or 5000)")
    parser.add_argument("-r", "--repeats", type=int, default=int(os.environ.get("R", 3)),
                        help="repeats of every run; medians are reported (default $R or 3)")
    parser.add_argument("--only", action="append", default=[], metavar="TEXT",
                        help="run only the runs whose name contains TEXT (repeatable), e.g. --only migrator")
    parser.add_argument("--python", default=default_python(), help="the Python that runs migrator")
    parser.add_argument("--out", type=Path, default=OUT, help="corpus cache, work directories, latest.md")
    parser.add_argument("--keep", action="store_true", help="keep every run's work directory")
    parser.add_argument("--profile", action="store_true",
                        help="also run migrator IMAP→Maildir once under cProfile; summary in OUT/profile.txt")
    args = parser.parse_args(argv)
    if args.messages < 100 or args.repeats < 1:
        parser.error("use at least 100 messages and 1 repeat")
    command = shlex.join(["python", "-m", "bench", *argv])
    return Options(args.messages, args.repeats, tuple(args.only), args.python, args.out, args.keep, args.profile,
                   command)


def main(argv: list[str]) -> int:
    """Run the benchmark, print the report and write it to OUT/latest.md."""
    options = parse(argv)
    started = time.monotonic()
    options.out.mkdir(parents=True, exist_ok=True)
    report = run_benchmark(options)
    (options.out / "latest.md").write_text(report)
    print(report)
    say(f"done in {elapsed_since(started)}; this machine has {os.cpu_count()} cores; "
        f"the report is also in {options.out / 'latest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
