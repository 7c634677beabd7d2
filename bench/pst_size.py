"""How big a PST of the benchmark corpus is beside the corpus as a Maildir, and how fast it is written.

``python -m bench.pst_size [-n N] [--out DIR]`` writes the corpus, with CRLF line endings as an IMAP server
serves it, through ``PstStore`` into a new PST in one process (no server: the bytes and the write alone), then
reads every message back and compares it with the original. It prints one Markdown row: the Maildir's size on
disk (the corpus files), the mail as IMAP serves it, the PST, their ratios, the write's wall and CPU seconds and
MB/s of mail, and the process's peak RSS. Run it with ``PYTHONPATH`` set to another checkout (a ``git
worktree`` of an earlier commit) for the figures of that code.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from bench.corpus import Corpus, load_corpus
from migrator.core.message import Message
from migrator.endpoints.endpoint import parse_endpoint
from migrator.stores import open_store


def corpus_messages(corpus: Corpus) -> Iterator[Message]:
    """Yield the corpus's messages one at a time, CRLF, with their folder and received date."""
    for folder in corpus.folders:
        path = tuple(folder.name.split("/"))
        for file in sorted(folder.directory.iterdir()):
            received = datetime.fromtimestamp(file.stat().st_mtime, timezone.utc)
            yield Message(file.read_bytes().replace(b"\n", b"\r\n"), received=received, folder=path)


def write_pst(corpus: Corpus, pst: Path) -> int:
    """Write the corpus into ``pst``; return the bytes of mail written."""
    total = 0
    with open_store(parse_endpoint(f"pst:{pst}"), readonly=False) as store:
        for message in corpus_messages(corpus):
            [result] = store.append_batch(store.ensure_folder(message.folder), [message])
            if not result.ok:
                raise SystemExit(f"bench.pst_size: {result.error}")
            total += len(message.raw)
    return total


def check_exact(corpus: Corpus, pst: Path) -> int:
    """Return how many messages the PST gives back other than they went in (0 is the only good answer)."""
    wanted = {message.raw for message in corpus_messages(corpus)}
    with open_store(parse_endpoint(f"pst:{pst}")) as store:
        found = [m.raw for folder in store.list_folders() for m in store.messages(folder.path)]
    return sum(1 for raw in found if raw not in wanted) + abs(len(found) - len(wanted))


def main() -> None:
    """Write the corpus into a PST and print the row."""
    parser = argparse.ArgumentParser(prog="python -m bench.pst_size", description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--messages", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    options = parser.parse_args()
    corpus = load_corpus(options.messages, options.out)
    work = options.out / "pst-size"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    pst = work / "mail.pst"
    start, cpu = time.perf_counter(), time.process_time()
    mail = write_pst(corpus, pst)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    maildir = sum(f.stat().st_size for folder in corpus.folders for f in folder.directory.iterdir())
    size = sum(part.stat().st_size for part in work.glob("*.pst"))
    wrong = check_exact(corpus, pst)
    print("| messages | Maildir MB | mail MB (CRLF) | PST MB | PST/Maildir | wall s | CPU s | MB/s | peak RSS MB "
          "| not exact |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {options.messages} | {maildir / 1e6:.1f} | {mail / 1e6:.1f} | {size / 1e6:.1f} | {size / maildir:.2f} "
          f"| {seconds:.2f} | {cpu:.2f} | {mail / 1e6 / seconds:.1f} | {peak:.0f} | {wrong} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
