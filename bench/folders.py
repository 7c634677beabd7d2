"""`python -m bench.folders`: seconds per folder of a copy of N folders holding one message each.

A target should cost the same per folder however many folders there are. A cost that grows
with the count, such as the folder list read again for every folder, shows here as seconds per
folder rising with N. The source is an EML tree written directly (not through migrator); each
copy runs in this process with a state file, as ``migrator copy`` does, and is checked to have
made every folder. IMAP goes into the test suite's throwaway Dovecot (run as root); where it
cannot start, that row is left out and the reason printed. Beside the time each folder took is
the CPU time migrator's process spent on it: where the first grows and the second does not, the
cost is the server's (Dovecot's CREATE and SUBSCRIBE take longer as an account's folders grow).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from migrator.endpoints.endpoint import parse_endpoint
from migrator.pipeline.options import DEFAULT_CONNECTIONS, CopyOptions
from migrator.pipeline.run import run_copy
from migrator.state.statefile import StateStore
from migrator.stores import open_store

COUNTS = (10, 100, 1000, 5000)
TARGETS = ("maildir", "mbox", "eml", "pst", "imap")
MESSAGE = (b"From: bench@example.com\nTo: you@example.com\nSubject: folder %d\n"
           b"Message-ID: <folder-%d@bench.example>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\nOne message.\n")


def write_source(root: Path, count: int) -> None:
    """Write an EML tree of ``count`` folders, each holding one message."""
    for number in range(count):
        folder = root / folder_name(number)
        folder.mkdir(parents=True)
        (folder / "000001.eml").write_bytes(MESSAGE % (number, number))


def folder_name(number: int) -> str:
    """Return the name of folder ``number``: all beside each other, the hardest case for a directory listing."""
    return f"Folder {number:05d}"


def seconds_per_folder(source: str, target: str, count: int, work: Path, connections: int) -> tuple[float, float]:
    """Return the seconds, and the CPU seconds of this process, per folder of copying ``source`` into
    ``target``; raise RuntimeError if a folder is missing."""
    state = StateStore(work / "state.sqlite")
    try:
        started, cpu_started = time.perf_counter(), time.process_time()
        options = CopyOptions(connections=connections)
        summary = run_copy(parse_endpoint(source), [parse_endpoint(target)], options, state)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    finally:
        state.close()
    with open_store(parse_endpoint(target)) as store:
        made = sum(1 for folder in store.list_folders() if folder.path[0].startswith("Folder "))
    if made != count or summary.failed:
        raise RuntimeError(f"{target} holds {made} of {count} folders, {summary.failed} messages failed")
    return elapsed / count, cpu / count


def target_urls(work: Path, new_imap_account: Callable[[], str] | None) -> dict[str, str]:
    """Return the endpoint of a fresh target of each kind in ``work``."""
    urls = {"maildir": f"maildir:{work / 'maildir'}", "mbox": f"mbox:{work / 'mbox'}", "eml": f"eml:{work / 'eml'}",
            "pst": f"pst:{work / 'out.pst'}"}
    if new_imap_account is not None:
        urls["imap"] = new_imap_account()
    return urls


def measure(counts: Sequence[int], kinds: Sequence[str], new_imap_account: Callable[[], str] | None,
            connections: int, scratch: Path) -> dict[str, dict[int, tuple[float, float]]]:
    """Return seconds and CPU seconds per folder by target kind and folder count."""
    results: dict[str, dict[int, tuple[float, float]]] = {kind: {} for kind in kinds}
    for count in counts:
        source = scratch / f"source-{count}"
        write_source(source, count)
        for kind in kinds:
            work = Path(tempfile.mkdtemp(prefix=f"{kind}-{count}-", dir=scratch))
            urls = target_urls(work, new_imap_account if kind == "imap" else None)
            results[kind][count] = seconds_per_folder(f"eml:{source}", urls[kind], count, work, connections)
            print(f"{count:>5} folders into {kind:<7} {_cell(results[kind][count])} ms per folder",
                  file=sys.stderr, flush=True)
            shutil.rmtree(work)
        shutil.rmtree(source)
    return results


def table(results: dict[str, dict[int, tuple[float, float]]], counts: Sequence[int]) -> str:
    """Return the results as a markdown table: one row per target, milliseconds per folder for each count."""
    lines = ["| target | " + " | ".join(f"{n} folders" for n in counts) + " |",
             "| --- |" + " ---: |" * len(counts)]
    for kind, by_count in results.items():
        cells = [_cell(by_count[n]) if n in by_count else "-" for n in counts]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n(milliseconds per folder of one message; in brackets, migrator's CPU milliseconds)"


def _cell(seconds: tuple[float, float]) -> str:
    elapsed, cpu = seconds
    return f"{elapsed * 1000:.2f} ({cpu * 1000:.2f})"


def parse(argv: list[str]) -> argparse.Namespace:
    """Return the options of the command line ``argv``; argparse exits on a usage error."""
    parser = argparse.ArgumentParser(prog="python -m bench.folders", description=__doc__.split("\n")[0])
    parser.add_argument("--counts", default=",".join(map(str, COUNTS)), help="folder counts, comma-separated")
    parser.add_argument("--targets", default=",".join(TARGETS), help=f"target kinds among {', '.join(TARGETS)}")
    parser.add_argument("-c", "--connections", type=int, default=DEFAULT_CONNECTIONS, help="as copy --connections")
    args = parser.parse_args(argv)
    args.counts = [int(n) for n in args.counts.split(",")]
    args.targets = args.targets.split(",")
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}: choose among {', '.join(TARGETS)}")
    return args


def main(argv: list[str]) -> int:
    """Measure and print the table."""
    args = parse(argv)
    with tempfile.TemporaryDirectory(prefix="bench-folders-") as scratch:
        if "imap" not in args.targets:
            results = measure(args.counts, args.targets, None, args.connections, Path(scratch))
        else:
            results = _with_dovecot(args, Path(scratch))
    print(table(results, args.counts))
    return 0


def _with_dovecot(args: argparse.Namespace, scratch: Path) -> dict[str, dict[int, tuple[float, float]]]:
    from bench.server import BenchServer
    from harness.dovecot import DovecotServer, DovecotUnavailable

    try:
        dovecot = DovecotServer().start()
    except DovecotUnavailable as error:
        print(f"no IMAP column: {error}", file=sys.stderr)
        return measure(args.counts, [k for k in args.targets if k != "imap"], None, args.connections, scratch)
    try:
        server = BenchServer(dovecot)
        os.environ["BENCH_PASSWORD"] = server.password
        return measure(args.counts, args.targets, lambda: server.new_account("folders").url("imaps"),
                       args.connections, scratch)
    finally:
        dovecot.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
