"""``--profile``: one cold migrator IMAP -> Maildir run under cProfile, summarised as text."""

from __future__ import annotations

import io
import pstats
from pathlib import Path

from bench.measure import measure
from bench.runs import Context, imap_to_maildir

TOP = 30


def profile_imap_to_maildir(context: Context, work: Path) -> str:
    """Return the run's wall time and its top functions by own time and by cumulative time."""
    invocation = imap_to_maildir(context, work)
    stats_file = work / "cprofile.out"
    argv = [invocation.argv[0], "-m", "cProfile", "-o", str(stats_file), *invocation.argv[1:]]
    measurement = measure(argv, env=invocation.env)
    if not measurement.ok:
        return f"the profiled run failed: {measurement.error}\n"
    text = io.StringIO()
    stats = pstats.Stats(str(stats_file), stream=text)
    text.write(f"migrator IMAP→Maildir under cProfile: {measurement.seconds:.2f} s wall\n")
    stats.sort_stats("tottime").print_stats(TOP)
    stats.sort_stats("cumulative").print_stats(TOP)
    return text.getvalue()
