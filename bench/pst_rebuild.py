"""What a rerun into a PST that must be rebuilt costs: 1 % new mail into a file another program wrote.

``python -m bench.pst_rebuild [--messages 5000 50000] [--repeats R] [--before DIR]`` seeds the bench's Dovecot
with the corpus of N messages less 1 % (as ``bench.pst_append`` does), copies it into a PST, makes that file
look as if another program had written it (``tests/support/pst_foreign.py``: migrator's property set gets
another GUID), then adds the 1 %: the rerun cannot add in place and rebuilds the whole file, copying each
message's blocks as they are (``migrator/stores/pst/rebuild.py``). The rerun is timed from the same PST and
state file with this repository's code and, given ``--before``, with the code in DIR (a ``git worktree`` or an
unpacked ``git archive``), interleaved. Each run's peak RssAnon and RssFile are sampled every 5 ms, and its CPU
seconds (user and system) are counted beside its wall time, which other work on a shared machine stretches.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
from pathlib import Path

from bench.corpus import load_corpus
from bench.pst_append import Sample, _empty, held_back, link, run_sampled
from bench.runs import REPO, default_python
from bench.server import BenchServer
from harness.dovecot import DovecotServer
from tests.support.pst_foreign import make_foreign

Run = tuple[Sample, float]  # and its CPU seconds


def measure_size(n: int, codes: dict[str, Path], out: Path, repeats: int, python: str) -> dict[str, list[Run]]:
    """Return the rebuild reruns' Samples and CPU seconds by code name for a corpus of ``n`` messages."""
    corpus = load_corpus(n, out)
    new_files = held_back(corpus)
    work = out / "work" / f"pst-rebuild-{n}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    runs: dict[str, list[Run]] = {name: [] for name in codes}
    with DovecotServer() as dovecot:
        server = BenchServer(dovecot)
        account = server.new_account("source")
        server.seed(account, _empty(corpus, work))
        link(server, account, corpus, new_files, new=False)
        pst, state = work / "mail.pst", work / "state.sqlite"
        env = {"BENCH_PASSWORD": server.password, "XDG_STATE_HOME": str(work / "xdg")}
        argv = [python, "-m", "migrator", "copy", "--quiet", "--state", str(state), account.url("imaps"), f"pst:{pst}"]
        assert run_sampled(argv, env, REPO).ok, "the first copy failed"
        make_foreign(pst)
        link(server, account, corpus, new_files, new=True)
        shutil.copyfile(pst, work / "saved.pst")
        shutil.copyfile(state, work / "saved.sqlite")
        for _ in range(repeats):
            for name, code in codes.items():
                shutil.copyfile(work / "saved.pst", pst)
                shutil.copyfile(work / "saved.sqlite", state)
                os.sync()
                inode = pst.stat().st_ino
                runs[name].append(_timed(argv, env, code))
                assert pst.stat().st_ino != inode, "the rerun added to the file in place instead of rebuilding it"
    shutil.rmtree(work, ignore_errors=True)
    return runs


def _timed(argv: list[str], env: dict[str, str], code: Path) -> Run:
    """Return the Sample of one run and the CPU seconds it used (its children's too)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    sample = run_sampled(argv, env, code)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return sample, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def table(n: int, runs: dict[str, list[Run]]) -> str:
    """Return one line per code: median wall and CPU seconds, peak RssAnon (the largest of the repeats), RssFile."""
    lines = []
    for name, found in runs.items():
        samples = [sample for sample, _ in found]
        seconds, cpu = sorted(s.seconds for s in samples), sorted(c for _, c in found)
        ok = "" if all(s.ok for s in samples) else " (a run failed)"
        lines.append(f"| {n} | {name} | {_median(seconds)} | {_median(cpu)} "
                     f"| {max(s.anon_mb for s in samples):.0f} ({', '.join(f'{s.anon_mb:.0f}' for s in samples)}) "
                     f"| {max(s.file_mb for s in samples):.0f} |{ok}")
    return "\n".join(lines)


def _median(values: list[float]) -> str:
    return f"{values[len(values) // 2]:.2f} ({', '.join(f'{v:.2f}' for v in values)})"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pst_rebuild", description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="a directory with other code to time the same way")
    parser.add_argument("--messages", type=int, nargs="+", default=[5000, 50000])
    parser.add_argument("-r", "--repeats", type=int, default=3)
    parser.add_argument("--python", default=default_python())
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    args = parser.parse_args(argv)
    codes = {"this": REPO, **({"before": args.before.resolve()} if args.before else {})}
    print("| messages | code | wall s: median (each) | CPU s: median (each) | peak anon MB (each) "
          "| peak file-mapped MB |")
    print("|---|---|---|---|---|---|")
    for n in args.messages:
        print(table(n, measure_size(n, codes, args.out, args.repeats, args.python)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
