"""What a nightly rerun into a PST costs: adding 1 % new mail in place, beside rebuilding the whole file.

``python -m bench.pst_append --before DIR [--messages 5000 50000] [--repeats R]`` seeds the bench's Dovecot
with the corpus of N messages less 1 % (the newest of INBOX and Sent, in their shares of the corpus: where a
night's mail lands) and copies it into a PST twice: with this repository's code (the full write, timed: MB/s
of mail from IMAP) and with the code in DIR, a ``git worktree`` of a commit before the in-place append, into
the file that code writes itself (timed too, for the full write's speed side by side; it runs second, when the
server has read the mail once, which favours it). It times a rerun that finds nothing (what any rerun costs:
starting, logging in, looking at every folder), then adds the 1 % and times three reruns, each from a copy of
the files as they were: this code appending in place; the code before rebuilding the file it wrote (what a
nightly run cost before); and the code before rebuilding this code's file (smaller, so cheaper to rebuild: the
stricter comparison). Each run's memory is sampled from /proc every 5 ms: the peak of its own anonymous memory
(RssAnon) and of the file pages it maps (RssFile: the PST read through mmap, the interpreter's own files).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.corpus import Corpus, load_corpus
from bench.counts import maildirpp_folders
from bench.report import MB
from bench.runs import REPO, compile_bytecode, default_python
from bench.server import Account, BenchServer
from harness.dovecot import DovecotServer

NEW_SHARE = 0.01
NEW_FOLDERS = {"INBOX": 28, "Sent": 10}  # the corpus's shares (bench/corpus.py FOLDERS)


@dataclass(frozen=True)
class Sample:
    """One run: wall seconds, peak RssAnon and RssFile in MB, and whether it succeeded."""

    seconds: float
    anon_mb: float
    file_mb: float
    ok: bool


def run_sampled(argv: list[str], env: dict[str, str], cwd: Path) -> Sample:
    """Run ``argv`` and return its Sample, reading /proc/PID/status every 5 ms."""
    started = time.monotonic()
    process = subprocess.Popen(argv, env={**os.environ, **env}, cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    anon = mapped = 0
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            anon = max(anon, int(fields.get("RssAnon", "0 kB").split()[0]))
            mapped = max(mapped, int(fields.get("RssFile", "0 kB").split()[0]))
        except (OSError, ValueError):
            pass
        time.sleep(0.005)
    seconds = time.monotonic() - started
    error = process.stderr.read() if process.stderr else b""
    if process.returncode:
        print(error.decode(errors="replace")[-500:], file=sys.stderr)
    return Sample(seconds, anon / 1024, mapped / 1024, process.returncode == 0)


def held_back(corpus: Corpus) -> dict[str, set[str]]:
    """Return the files of the 1 % new mail by folder: the last of INBOX and Sent, in their shares."""
    total = sum(NEW_FOLDERS.values())
    wanted = {name: round(corpus.n * NEW_SHARE * share / total) for name, share in NEW_FOLDERS.items()}
    return {name: set(sorted(os.listdir(corpus.folder(name).directory))[-count:]) for name, count in wanted.items()}


def link(server: BenchServer, account: Account, corpus: Corpus, files: dict[str, set[str]], new: bool) -> None:
    """Put into the account the corpus files not in ``files`` (``new`` False) or only those (``new`` True)."""
    maildir = maildirpp_folders(server.dovecot.home(account.user) / "Maildir")
    for folder in corpus.folders:
        chosen = files.get(folder.name, set())
        target = maildir[folder.name] / "cur"
        owner = os.stat(target)
        for entry in os.scandir(folder.directory):
            if (entry.name in chosen) == new:
                os.link(entry.path, target / entry.name)
                os.chown(target / entry.name, owner.st_uid, owner.st_gid)


def measure_size(n: int, before: Path, out: Path, repeats: int, python: str) -> dict[str, object]:
    """Return the figures for a corpus of ``n`` messages (see the module docstring)."""
    corpus = load_corpus(n, out)
    new_files = held_back(corpus)
    new_bytes = sum(os.path.getsize(corpus.folder(name).directory / f) for name, fs in new_files.items() for f in fs)
    work = out / "work" / f"pst-append-{n}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with DovecotServer() as dovecot:
        server = BenchServer(dovecot)
        account = server.new_account("source")
        server.seed(account, _empty(corpus, work))
        link(server, account, corpus, new_files, new=False)
        env = {"BENCH_PASSWORD": server.password, "XDG_STATE_HOME": str(work / "xdg")}
        pst, state = work / "mail.pst", work / "state.sqlite"
        own_pst, own_state = work / "before.pst", work / "before.sqlite"  # the file the code before writes itself
        argv = [python, "-m", "migrator", "copy", "--quiet", "--state", str(state), account.url("imaps"), f"pst:{pst}"]
        own_argv = [*argv[:6], str(own_state), argv[7], f"pst:{own_pst}"]
        full = run_sampled(argv, env, REPO)
        full_before = run_sampled(own_argv, env, before)
        nothing = [run_sampled(argv, env, REPO) for _ in range(repeats)]
        first_bytes = corpus.size - new_bytes
        link(server, account, corpus, new_files, new=True)
        for path in (pst, state, own_pst, own_state):
            shutil.copyfile(path, _saved(path))
        runs: dict[str, list[Sample]] = {"append": [], "rebuild": [], "rebuild own": []}
        for _ in range(repeats):
            for name, code, files, command in (("append", REPO, (pst, state), argv),
                                               ("rebuild", before, (pst, state), argv),
                                               ("rebuild own", before, (own_pst, own_state), own_argv)):
                for path in files:
                    shutil.copyfile(_saved(path), path)
                runs[name].append(run_sampled(command, env, code))
        shutil.copyfile(_saved(pst), pst)
        run_sampled(argv, env, REPO)  # the size reported is that of the file appended to
        sizes = pst.stat().st_size, own_pst.stat().st_size
    shutil.rmtree(work, ignore_errors=True)
    return {"n": n, "full": full, "full_before": full_before, "full_mb_s": first_bytes / MB / full.seconds,
            "full_before_mb_s": first_bytes / MB / full_before.seconds, "runs": runs, "nothing": nothing,
            "pst_mb": sizes[0] / MB, "own_mb": sizes[1] / MB, "new": sum(len(fs) for fs in new_files.values())}


def _saved(path: Path) -> Path:
    """Return where the copy of ``path`` each rerun starts from is kept."""
    return path.with_name(path.name + ".saved")


def _empty(corpus: Corpus, work: Path) -> Corpus:
    """Return a corpus with ``corpus``'s folders and no files: the seed creates the folders only."""
    from bench.corpus import CorpusFolder

    empty = work / "empty"
    empty.mkdir()
    return Corpus(0, tuple(CorpusFolder(f.name, empty, 0, 0) for f in corpus.folders))


def table(results: list[dict[str, object]]) -> str:
    """Return the results as a markdown table (medians of the repeats; peaks the largest)."""
    lines = ["| messages | new | PST MB (before's own) | full write s (MB/s): this / before | "
             "rerun finding nothing s | rebuild of its own file s | rebuild of this file s | append s | "
             "append / rebuilds | "
             "peak anon MB (full / rebuild / append) | peak file-mapped MB (full / rebuild / append) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for result in results:
        runs: dict[str, list[Sample]] = result["runs"]  # type: ignore[assignment]
        full: Sample = result["full"]  # type: ignore[assignment]
        nothing: list[Sample] = result["nothing"]  # type: ignore[assignment]
        own, rebuild, append = (_median(runs[k]) for k in ("rebuild own", "rebuild", "append"))
        anon = [full.anon_mb, *(max(s.anon_mb for s in runs[k]) for k in ("rebuild", "append"))]
        mapped = [full.file_mb, *(max(s.file_mb for s in runs[k]) for k in ("rebuild", "append"))]
        full_before: Sample = result["full_before"]  # type: ignore[assignment]
        ok = full.ok and full_before.ok and all(s.ok for k in runs for s in runs[k]) and all(s.ok for s in nothing)
        lines.append(
            f"| {result['n']} | {result['new']} | {result['pst_mb']:.0f} ({result['own_mb']:.0f}) | {full.seconds:.2f} "
            f"({result['full_mb_s']:.1f}) / {full_before.seconds:.2f} ({result['full_before_mb_s']:.1f}) | "
            f"{_median(nothing):.2f} | {own:.2f} | {rebuild:.2f} | {append:.2f} | "
            f"{append / own:.3f} / {append / rebuild:.3f} | "
            f"{' / '.join(f'{m:.0f}' for m in anon)} | {' / '.join(f'{m:.0f}' for m in mapped)} |"
            + ("" if ok else " (a run failed)")
        )
    return "\n".join(lines)


def _median(samples: list[Sample]) -> float:
    return sorted(s.seconds for s in samples)[len(samples) // 2]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pst_append", description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="a worktree of the code that rebuilds")
    parser.add_argument("--messages", type=int, nargs="+", default=[5000, 50000])
    parser.add_argument("-r", "--repeats", type=int, default=3)
    parser.add_argument("--python", default=default_python())
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    args = parser.parse_args(argv)
    for tree in (REPO, args.before):
        compile_bytecode(args.python, tree)
    results = []
    for n in args.messages:
        results.append(measure_size(n, args.before.resolve(), args.out, args.repeats, args.python))
        print(table(results[-1:]), flush=True)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
