"""One benchmark session: corpus, server, every run cold then rerun, repeated, then the report."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from bench.corpus import Corpus, load_corpus
from bench.filesystem import DELETION_MARK, Probe, describe_probe, remove_work, wait_after_deletion, wait_until_quiet
from bench.measure import Invocation, Measurement, measure
from bench.memory import recycle_memory
from bench.profile import profile_imap_to_maildir
from bench.report import MB, Result, Workload, markdown, rows
from bench.runs import REPO, Context, RunSpec, all_runs
from bench.server import BenchServer
from harness.dovecot import DovecotServer


@dataclass(frozen=True)
class Options:
    """How to run the benchmark (see ``python -m bench --help``)."""

    messages: int
    repeats: int
    only: tuple[str, ...]
    python: str
    out: Path
    keep: bool
    profile: bool
    command: str


def run_benchmark(options: Options) -> str:
    """Run every selected run ``options.repeats`` times and return the report as markdown."""
    say(f"corpus of {options.messages} messages under {options.out}")
    corpus = load_corpus(options.messages, options.out)
    specs = [s for s in all_runs() if not options.only or any(o.lower() in s.name.lower() for o in options.only)]
    with DovecotServer() as dovecot:
        server = BenchServer(dovecot)
        source = server.new_account("source")
        server.seed(source, corpus)
        say(f"seeded {corpus.n} messages ({corpus.size / MB:.0f} MB) into {len(corpus.folders)} folders")
        context = Context(server, source, options.python)
        compile_bytecode(context)
        warm_up(context, options)
        say("timing file creation; waiting for a quiet filesystem if it is slow")
        after_deletion = wait_after_deletion(options.out / DELETION_MARK)
        probe = wait_until_quiet(options.out / "work")
        probe = replace(probe, waited=probe.waited + after_deletion)
        say(describe_probe(probe))
        results = []
        for repeat in range(1, options.repeats + 1):
            for spec in specs:
                if spec.unavailable is None:
                    results += measure_run(spec, context, corpus, options, repeat)
        if options.profile:
            write_profile(context, options)
    if not options.keep:
        remove_work(options.out / "work", options.out / DELETION_MARK)
    unavailable = {s.name: s.unavailable for s in specs if s.unavailable}
    return markdown(rows(results, unavailable), workload(corpus), header(corpus, options, probe))


def write_profile(context: Context, options: Options) -> None:
    """Profile one migrator IMAP→Maildir run and write the summary to OUT/profile.txt."""
    work = _fresh(options.out / "work" / "profile")
    path = options.out / "profile.txt"
    path.write_text(profile_imap_to_maildir(context, work))
    shutil.rmtree(work, ignore_errors=True)
    say(f"cProfile summary of migrator IMAP→Maildir written to {path}")


def say(text: str) -> None:
    """Print a progress line on stderr (stdout carries only the report)."""
    print(f"bench: {text}", file=sys.stderr, flush=True)


def compile_bytecode(context: Context) -> None:
    """Compile migrator's modules once, as pip does when it installs a package.

    Without it, a checkout run with PYTHONDONTWRITEBYTECODE set compiles every module on
    every run: 0.2 s of each rerun that no installed migrator spends.
    """
    done = subprocess.run([context.python, "-m", "compileall", "-q", str(REPO / "migrator")], capture_output=True)
    if done.returncode != 0:
        say(f"compiling migrator's bytecode failed; runs will compile it: {done.stderr.decode(errors='replace')}")


def warm_up(context: Context, options: Options) -> None:
    """Read the whole source once, unmeasured, so every run finds Dovecot's indexes and the page cache warm."""
    limit = next(spec for spec in all_runs() if spec.name == "server limit")
    work = _fresh(options.out / "work" / "warm-up")
    invocation = limit.start(context, work)
    done = measure(invocation.argv, env=invocation.env)
    if not done.ok:
        say(f"the warm-up read of the source failed ({done.error}); the first runs will find a cold cache")
    shutil.rmtree(work, ignore_errors=True)


def timeout_for(corpus: Corpus) -> float:
    """Return the time limit of one run: generous, since offlineimap moves about 2 MB/s."""
    return 600 + 2 * corpus.size / MB


def measure_run(spec: RunSpec, context: Context, corpus: Corpus, options: Options, repeat: int) -> list[Result]:
    """Return the cold and rerun Results of one repeat of ``spec``; a failure is a Result, never an exception."""
    work = _fresh(options.out / "work" / f"{_slug(spec.name)}-{repeat}")
    try:
        invocation = spec.start(context, work)
    except Exception as error:  # noqa: BLE001 - a run that cannot even be set up is a failed row, not a crashed benchmark
        return [_failed(spec, "cold", f"setup failed: {error}")]
    results = [_measure_phase(spec, "cold", invocation, corpus, options, repeat)]
    if spec.rerun and results[0].measurement.ok:
        results.append(_measure_phase(spec, "rerun", invocation, corpus, options, repeat))
    elif spec.rerun:
        results.append(_failed(spec, "rerun", "not run: the cold run failed"))
    # Work directories are removed at the end of the session, not here: ext4 gives files
    # created within seconds of a mass deletion their inodes slowly (it skips the recently
    # freed ones), which would slow whichever run came next.
    return results


def _measure_phase(spec: RunSpec, phase: str, invocation: Invocation, corpus: Corpus, options: Options,
                   repeat: int) -> Result:
    expected = corpus.counts if spec.protocol == "imap" else {"INBOX": corpus.counts["INBOX"]}
    os.sync()  # what earlier runs wrote is on disk before the clock starts, not written back during this run
    recycle_memory(corpus.size)
    measurement = measure(invocation.argv, env=invocation.env, timeout=timeout_for(corpus))
    mismatch = compare(invocation, expected) if measurement.ok else None
    result = Result(spec.name, spec.protocol, phase, measurement, mismatch)
    say(f"[{repeat}/{options.repeats}] {spec.name} {phase}: {describe(result)}")
    return result


def _failed(spec: RunSpec, phase: str, error: str) -> Result:
    return Result(spec.name, spec.protocol, phase, Measurement(0.0, None, error))


def compare(invocation: Invocation, expected: dict[str, int]) -> str | None:
    """Return how the run's per-folder counts differ from ``expected``, or None when they are equal."""
    try:
        counts = invocation.count()
    except Exception as error:  # noqa: BLE001 - an unreadable result is an incomplete run, reported as such
        return f"cannot count the result: {error}"
    differences = [
        f"{name} {expected.get(name, 0)}→{counts.get(name, 0)}"
        for name in sorted(set(expected) | set(counts))
        if expected.get(name, 0) != counts.get(name, 0)
    ]
    if not differences:
        return None
    more = f" (+{len(differences) - 6} more)" if len(differences) > 6 else ""
    return "counts differ (source→result): " + ", ".join(differences[:6]) + more


def describe(result: Result) -> str:
    """Return a short progress description of one result."""
    m = result.measurement
    rss = f", {m.peak_rss_kb * 1024 / MB:.0f} MB" if m.peak_rss_kb else ""
    state = "complete" if result.complete else (m.error or result.mismatch)
    return f"{m.seconds:.2f} s{rss}, {state}"


def workload(corpus: Corpus) -> Workload:
    """Return what an IMAP run (every folder) and a POP3 run (INBOX) have to copy."""
    inbox = corpus.folder("INBOX")
    return Workload({"imap": corpus.n, "pop3": inbox.count}, {"imap": corpus.size, "pop3": inbox.size})


def header(corpus: Corpus, options: Options, probe: Probe) -> str:
    """Return the report's opening lines: workload, machine, command and the file-creation probe."""
    cores = os.cpu_count()
    return (
        f"## Benchmark ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)\n\n"
        f"`{options.command}`: {corpus.n} messages, {corpus.size / MB:.0f} MB (as IMAP counts them), "
        f"{len(corpus.folders)} folders; Dovecot on localhost over TLS, client and server sharing "
        f"{cores} cores ({_cpu_model()}); migrator run by `{options.python}`. "
        f"{options.repeats} repeats: median wall time, largest peak RSS. "
        f"cold = empty target, no state; rerun = the same command again with nothing new. "
        f"CPU s = the client's user + system time (the server's is not in it). "
        f"× columns = wall-time ratio to the same phase of mbsync, getmail6 and the server limit. "
        f"{describe_probe(probe)}"
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, mode=0o700)
    return path


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower().replace("→", "-to-")).strip("-")


def elapsed_since(started: float) -> str:
    """Return the time since ``started`` (a monotonic clock reading) as minutes and seconds."""
    minutes, seconds = divmod(round(time.monotonic() - started), 60)
    return f"{minutes} min {seconds} s"
