"""The benchmark's own logic: corpus, counting, measuring and the table (no timing is asserted)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from bench.corpus import FOLDERS, load_corpus
from bench.counts import maildirpp_counts, mbox_tree_counts, tree_counts
from bench.filesystem import (
    MOST_WAIT_SECONDS,
    SLOW_SECONDS,
    WAIT_STEP_SECONDS,
    Probe,
    describe_probe,
    file_creation_seconds,
    wait_until_quiet,
)
from bench.measure import Measurement, cpu_seconds, failure_text, measure, peak_rss_kb
from bench.report import Result, Workload, markdown, rows

TIME_REPORT = b"""\
\tCommand being timed: "true"
\tUser time (seconds): 1.25
\tSystem time (seconds): 0.50
\tMaximum resident set size (kbytes): 51234
"""


def _digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
            if path.name != "manifest.json":  # message files carry the received date as mtime
                digest.update(str(path.stat().st_mtime_ns).encode())
    return digest.hexdigest()


def test_corpus_is_the_same_every_time(tmp_path):
    first = load_corpus(120, tmp_path / "a")
    second = load_corpus(120, tmp_path / "b")
    assert first.counts == second.counts
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert sum(first.counts.values()) == 120
    assert [f.name for f in first.folders] == [name for name, _ in FOLDERS]


def test_corpus_files_carry_their_sizes_and_received_dates(tmp_path):
    corpus = load_corpus(120, tmp_path)
    for folder in corpus.folders:
        crlf_total = 0
        for path in folder.directory.iterdir():
            raw = path.read_bytes()
            seconds, _, rest = path.name.partition(".")
            sizes = dict(part.split("=") for part in rest.split(":2,")[0].split(",")[1:])
            assert int(sizes["S"]) == len(raw)
            assert int(sizes["W"]) == len(raw) + raw.count(b"\n")
            assert int(path.stat().st_mtime) == int(seconds)
            assert b"\r" not in raw and raw.endswith(b"\n")
            crlf_total += int(sizes["W"])
        assert crlf_total == folder.size


def test_a_cached_corpus_is_reused(tmp_path):
    load_corpus(100, tmp_path)
    marker = tmp_path / "corpus-100-v1" / "manifest.json"
    os.utime(marker, (1, 1))
    load_corpus(100, tmp_path)
    assert marker.stat().st_mtime == 1


def _maildir(path: Path, messages: int) -> None:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True)
    for i in range(messages):
        (path / ("cur" if i % 2 else "new") / f"{i}.host:2,S").write_bytes(b"x")
    (path / "tmp" / "partial").write_bytes(b"not a message yet")


def test_maildirpp_counts_decode_dovecot_names(tmp_path):
    _maildir(tmp_path, 3)
    _maildir(tmp_path / ".Clients.M&APw-ller GmbH", 2)
    _maildir(tmp_path / ".v1\\2e2 notes", 1)
    assert maildirpp_counts(tmp_path) == {"INBOX": 3, "Clients/Müller GmbH": 2, "v1.2 notes": 1}


def test_tree_counts_decode_modified_utf7_directories(tmp_path):
    _maildir(tmp_path / "INBOX", 4)
    _maildir(tmp_path / "Travel" / "&ZeVnLA-", 2)
    (tmp_path / "Travel" / "not-a-maildir").mkdir()
    assert tree_counts(tmp_path) == {"INBOX": 4, "Travel/日本": 2}


def test_mbox_tree_counts_only_unquoted_from_lines_after_a_blank_line(tmp_path):
    (tmp_path / "INBOX").mkdir()
    (tmp_path / "INBOX" / "mbox").write_bytes(
        b"From a@b Mon Jan  1 00:00:00 2024\nSubject: 1\n\n>From quoted, after a blank line\n\n"
        b"From c@d Mon Jan  1 00:00:01 2024\r\nSubject: 2\r\n\r\nbody\r\n\r\n"
    )
    assert mbox_tree_counts(tmp_path) == {"INBOX": 2}


def test_time_report_parsing():
    assert peak_rss_kb(TIME_REPORT) == 51234
    assert cpu_seconds(TIME_REPORT) == 1.75
    assert peak_rss_kb(b"") is None and cpu_seconds(b"") is None
    assert failure_text(2, b"starting\nmigrator: no such folder\n\n") == "exit 2: migrator: no such folder"


def test_a_failing_command_is_a_measurement_not_an_exception():
    failed = measure(["sh", "-c", "echo broken >&2; exit 3"])
    assert not failed.ok and failed.error == "exit 3: broken"
    assert measure(["true"]).ok


def test_table_takes_medians_and_reports_failures():
    def result(name: str, seconds: float, error: str | None = None, mismatch: str | None = None) -> Result:
        return Result(name, "imap", "cold", Measurement(seconds, 30_000, error, cpu_seconds=1.0), mismatch)

    results = [
        result("mbsync IMAP→Maildir", 10.0), result("mbsync IMAP→Maildir", 30.0), result("mbsync IMAP→Maildir", 20.0),
        result("migrator IMAP→Maildir", 4.0), result("migrator IMAP→Maildir", 0.0, error="exit 1: lost"),
        result("migrator IMAP→Maildir", 6.0, mismatch="counts differ (source→result): INBOX 3→2"),
    ]
    text = markdown(rows(results, {}), Workload({"imap": 5000, "pop3": 100}, {"imap": 10**8, "pop3": 10**6}), "# t")
    assert "| mbsync IMAP→Maildir | cold | 20.00 | 1.00 | 250 | 5.0 | 31 | yes | 1.00 |" in text
    assert "| migrator IMAP→Maildir | cold | 5.00 |" in text and "no (1/3)" in text
    assert "- IMAP→Maildir ≤ 0.5× mbsync: 0.25× (met)" in text
    assert "migrator IMAP→Maildir, cold, repeat 2: exit 1: lost" in text
    assert "repeat 3: counts differ (source→result): INBOX 3→2" in text


def test_the_file_creation_probe_creates_its_files_and_leaves_them(tmp_path):
    seconds = file_creation_seconds(tmp_path / "probe", count=50)
    assert seconds > 0
    assert sorted(int(p.name) for p in (tmp_path / "probe").iterdir()) == list(range(50))


def test_a_slow_probe_is_called_slow_in_the_report():
    assert describe_probe(Probe(0.21)) == "Creating 5000 files before the runs took 0.21 s (quiet)."
    assert "SLOW" in describe_probe(Probe(SLOW_SECONDS + 0.01))


def test_the_session_waits_for_a_slow_spell_to_pass_and_says_so(tmp_path):
    times = iter([2.5, 0.8, 0.2])
    slept = []
    probe = wait_until_quiet(tmp_path, probe=lambda directory: next(times), sleep=slept.append)
    assert probe == Probe(0.2, 2 * WAIT_STEP_SECONDS)
    assert slept == [WAIT_STEP_SECONDS, WAIT_STEP_SECONDS]
    assert describe_probe(probe) == ("Creating 5000 files before the runs took 0.20 s "
                                     f"(quiet, after waiting {2 * WAIT_STEP_SECONDS:.0f} s for a slow spell to pass).")


def test_the_wait_for_a_quiet_filesystem_ends_and_the_report_says_it_stayed_slow(tmp_path):
    slept = []
    probe = wait_until_quiet(tmp_path, probe=lambda directory: 1.0, sleep=slept.append)
    assert probe == Probe(1.0, MOST_WAIT_SECONDS)
    assert sum(slept) == MOST_WAIT_SECONDS
    assert "SLOW" in describe_probe(probe)


def test_each_probe_creates_its_files_in_a_new_directory(tmp_path):
    directories = []
    times = iter([1.0, 0.1])
    def probe(directory):
        directories.append(directory)
        return next(times)

    wait_until_quiet(tmp_path, probe=probe, sleep=lambda seconds: None)
    assert len(set(directories)) == 2 and all(d.parent == tmp_path for d in directories)


def test_memory_is_recycled_for_twice_the_corpus_but_never_more_than_half_of_what_is_free():
    from bench.memory import recycle_memory

    def free() -> int:
        return 1000 * 2**20

    assert recycle_memory(100 * 2**20, available=free) == 200 * 2**20
    assert recycle_memory(400 * 2**20, available=free) == 500 * 2**20
    assert recycle_memory(100 * 2**20, available=lambda: 0) == 0  # no /proc/meminfo: touch nothing


def test_a_session_that_removes_its_work_makes_the_next_one_wait_out_the_spell(tmp_path):
    from bench.filesystem import DELETION_SPELL_SECONDS, remove_work, wait_after_deletion

    (tmp_path / "work" / "run").mkdir(parents=True)
    mark = tmp_path / "last-deletion"
    remove_work(tmp_path / "work", mark)
    assert not (tmp_path / "work").exists()
    deleted = float(mark.read_text())
    slept = []
    assert wait_after_deletion(mark, sleep=slept.append, now=lambda: deleted + 100) == DELETION_SPELL_SECONDS - 100
    assert slept == [DELETION_SPELL_SECONDS - 100]
    assert wait_after_deletion(mark, sleep=slept.append, now=lambda: deleted + DELETION_SPELL_SECONDS + 1) == 0
    assert wait_after_deletion(mark, sleep=slept.append, now=lambda: deleted - 3600) == DELETION_SPELL_SECONDS
    assert wait_after_deletion(tmp_path / "no-mark", sleep=slept.append) == 0
    mark.write_text("not a time")
    assert wait_after_deletion(mark, sleep=slept.append) == 0


def test_capacity_table_names_where_more_jobs_stop_helping():
    from bench.capacity_report import BatchRun, knee, table

    def run(jobs, seconds, exact=4):
        return BatchRun(jobs, seconds, client_cpu=2.0, server_cpu=1.0, accounts=4, exact=exact, bytes=100 * 10**6,
                        worker_peaks_kb=(40_000, 50_000), batch_peak_kb=60_000,
                        account_times=((10 * 10**6, 1.0), (80 * 10**6, 4.0), (10 * 10**6, 3.0)))

    runs = [run(1, 10.0), run(2, 6.0), run(4, 5.8), run(8, 5.0)]
    assert knee(runs) == 2  # 4 jobs add 3 %, under the 10 % that counts as growing
    assert knee(runs[:2]) is None and knee([run(1, 1.0, exact=3)]) is None
    text = table(runs)
    assert "| 1 | 10.0 | 1440 | 10.0 | 2.0 | 1.0 | 50.0 | 3.0 | 20.0 | 46 / 51 | yes |" in text
    assert "Throughput stops growing at --jobs 2: more jobs add less than 10% MB/s to the fastest repeat" in text
    assert table(runs[:2]).endswith("still grows at --jobs 2, the most measured (fastest repeats, MB/s at --jobs: "
                                    "10.0 at 1, 16.7 at 2).")
    repeated = [*runs, run(2, 9.0), run(2, 5.2), run(4, 4.0)]  # the table shows medians, the knee takes the fastest
    assert "| 2 | 6.0 (5-9) | 2400 | 16.7 |" in table(repeated)
    assert knee(repeated) == 4 and knee([*repeated, run(8, 3.7)]) == 4
