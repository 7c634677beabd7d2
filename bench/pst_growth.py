"""How a PST grows over nightly runs that add to it in place: new mail, flag changes, and the tables they supersede.

``python -m bench.pst_growth [-n N] [--nights K] [--out DIR]`` writes the corpus less K % (the newest of INBOX and
Sent, in their shares of the corpus: where a night's mail lands) into a PST through ``PstStore``, in one process
and without a server, then runs K nights: each adds 1 % of the corpus and changes the flags of as many messages
already in the file (read and flagged turned over, chosen at random with a fixed seed). It prints one Markdown row
a night: the file's size, its growth, the free space its allocation maps hold (cbAMapFree) and the seconds the
night took (open the file, list what it holds, add, change flags, close). Run it as ``PYTHONPATH=DIR python
bench/pst_growth.py`` for the figures of the code in DIR, a ``git worktree`` of another commit.
"""

from __future__ import annotations

import argparse
import random
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

from bench.corpus import Corpus, load_corpus
from migrator.core.message import Flag, Flags, Message
from migrator.endpoints.endpoint import parse_endpoint
from migrator.stores import open_store
from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb.reader import parse_header

NIGHTLY_SHARE = 0.01
NEW_FOLDERS = {"INBOX": 28, "Sent": 10}  # the corpus's shares (bench/corpus.py FOLDERS)
MB = 1e6


def read_message(corpus: Corpus, name: str, file: Path) -> Message:
    """Return the corpus file ``file`` of folder ``name`` as a message: CRLF, its received date the file's mtime."""
    received = datetime.fromtimestamp(file.stat().st_mtime, timezone.utc)
    return Message(file.read_bytes().replace(b"\n", b"\r\n"), received=received, folder=tuple(name.split("/")))


def split_nights(corpus: Corpus, nights: int) -> tuple[list[Message], list[list[Message]]]:
    """Return the messages of the first write, and those of each night (the newest of INBOX and Sent)."""
    total = sum(NEW_FOLDERS.values())
    first: list[Message] = []
    per_night: list[list[Message]] = [[] for _ in range(nights)]
    for folder in corpus.folders:
        files = sorted(folder.directory.iterdir())
        count = round(corpus.n * NIGHTLY_SHARE * NEW_FOLDERS.get(folder.name, 0) / total)
        held = len(files) - count * nights
        first += [read_message(corpus, folder.name, file) for file in files[:held]]
        for night in range(nights):
            chunk = files[held + night * count:held + (night + 1) * count]
            per_night[night] += [read_message(corpus, folder.name, file) for file in chunk]
    return first, per_night


def add(pst: Path, messages: list[Message], flag_changes: int, rng: random.Random) -> None:
    """Add ``messages`` to ``pst`` and turn over the read and flagged marks of ``flag_changes`` messages in it."""
    with open_store(parse_endpoint(f"pst:{pst}"), readonly=False) as store:
        held = [(folder.path, ref) for folder in store.list_folders() for ref in store.scan(folder.path).refs]
        for path in sorted({message.folder for message in messages}):
            batch = [message for message in messages if message.folder == path]
            if not all(result.ok for result in store.append_batch(store.ensure_folder(path), batch)):
                raise SystemExit(f"bench.pst_growth: a message of {'/'.join(path)} was not written")
        for path, ref in rng.sample(held, min(flag_changes, len(held))):
            turned = ref.flags.system ^ {Flag.SEEN, Flag.FLAGGED}
            store.set_flags(path, ref.uid, Flags(frozenset(turned), ref.flags.keywords))


def free_bytes(pst: Path) -> int:
    """Return the header's cbAMapFree: the bytes the allocation maps mark free."""
    with open(pst, "rb") as file:
        return parse_header(file.read(fmt.HEADER_SIZE)).amap_free


def main() -> None:
    """Write the corpus less the nights' mail, run the nights, print a row for each."""
    parser = argparse.ArgumentParser(prog="python -m bench.pst_growth", description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--messages", type=int, default=5000)
    parser.add_argument("--nights", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    options = parser.parse_args()
    first, nights = split_nights(load_corpus(options.messages, options.out), options.nights)
    work = options.out / "pst-growth"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    pst, rng = work / "mail.pst", random.Random(20250501)
    add(pst, first, 0, rng)
    print("| night | messages added | flags changed | PST MB | growth MB | free in maps MB | seconds |")
    print("|---|---|---|---|---|---|---|")
    size = pst.stat().st_size
    print(f"| 0 (first write) | {len(first)} | 0 | {size / MB:.2f} | | {free_bytes(pst) / MB:.2f} | |")
    for number, messages in enumerate(nights, start=1):
        started = time.perf_counter()
        add(pst, messages, len(messages), rng)
        seconds = time.perf_counter() - started
        before, size = size, pst.stat().st_size
        print(f"| {number} | {len(messages)} | {len(messages)} | {size / MB:.2f} | {(size - before) / MB:.2f} "
              f"| {free_bytes(pst) / MB:.2f} | {seconds:.2f} |", flush=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
