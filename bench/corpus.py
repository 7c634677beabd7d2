"""The benchmark corpus: N realistic messages over 24 folders, deterministic, cached on disk by N.

Messages are mostly 2-20 KB of text, one in twenty carries a 100 KB-2 MB base64
attachment, and one in 1 667 is a 10 MB message. Every message is written once as a
Dovecot Maildir file (LF line endings, ``,S=``/``,W=`` sizes and flags in the name,
received date as the mtime), so seeding a server is linking files into place.
Keywords use Dovecot's letters: ``a`` = ``$Label1``, ``b`` = ``work``, ``c`` = ``Important``.
No message carries ``\\Deleted``: several peers skip such messages, which would make
their counts differ for a reason that has nothing to do with speed.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

VERSION = 1
SEED = 20250501
KEYWORDS = ("$Label1", "work", "Important")
LARGE_SHARE = 0.05
HUGE_EVERY = 1667  # one 10 MB message per this many: 3 at N=5 000
HUGE_SIZE = 10 * 1024 * 1024
END = datetime(2025, 5, 1, tzinfo=timezone.utc)
SPAN = timedelta(days=3 * 365)

# (folder, relative share of the messages)
FOLDERS: tuple[tuple[str, float], ...] = (
    ("INBOX", 28), ("Sent", 10), ("Drafts", 1), ("Trash", 3), ("Junk", 2),
    ("Archive", 2), ("Archive/2022", 6), ("Archive/2023", 7), ("Archive/2024", 8),
    ("Projects", 1), ("Projects/Alpha", 4), ("Projects/Alpha/Specs", 2), ("Projects/Beta", 3),
    ("Clients/Müller GmbH", 3), ("Clients/Société Générale", 2),
    ("Family", 2), ("Family/Photos", 3), ("Newsletters", 5), ("Receipts", 3),
    ("Travel/日本", 1), ("Entwürfe", 1), ("Lists/python-dev", 4),
    ("Ideas & Plans", 1), ("📁 Misc", 1), ("v1.2 notes", 1),
)
_ZONES = tuple(timezone(timedelta(minutes=m)) for m in (0, 60, 120, -300, -480, 330, 540, 600, 345))
_WORDS = (  # noqa: SIM905 - a paragraph of words reads better than a list of 154 strings
    "the of and to in is that for it with as was on be at by this had not are but from or have an they which one "
    "you were her all she there would their we him been has when who will more no if out so said what up its about "
    "into than them can only other new some could time these two may then do first any my now such like our over man "
    "me even most made after also did many before must through back years where much your way well down should "
    "because each just those people how too little state good very make world still own see men work long get here "
    "between both life being under never day same another know while last might us great old year off come since "
    "against go came right used take three meeting invoice quarter budget release schedule review draft report"
).split()
_UNICODE_WORDS = ("Grüße", "Straße", "café", "naïve", "日本語", "привет", "Zürich", "€", "fiancée", "東京")


@dataclass(frozen=True)
class CorpusFolder:
    """One folder of the corpus: its '/'-separated name, file directory, count and CRLF size."""

    name: str
    directory: Path
    count: int
    size: int


@dataclass(frozen=True)
class Corpus:
    """A generated corpus on disk."""

    n: int
    folders: tuple[CorpusFolder, ...]

    @property
    def counts(self) -> dict[str, int]:
        """Return the message count of every folder, by name."""
        return {f.name: f.count for f in self.folders}

    @property
    def size(self) -> int:
        """Return the total size in bytes as an IMAP server reports it (CRLF)."""
        return sum(f.size for f in self.folders)

    def folder(self, name: str) -> CorpusFolder:
        """Return the folder called ``name``; raise KeyError when there is none."""
        return next(f for f in self.folders if f.name == name)


def load_corpus(n: int, out_dir: Path) -> Corpus:
    """Return the corpus of ``n`` messages, generating it under ``out_dir`` unless cached there."""
    root = out_dir / f"corpus-{n}-v{VERSION}"
    if not (root / "manifest.json").exists():
        _generate(n, root)
    return _read_manifest(root)


def _read_manifest(root: Path) -> Corpus:
    manifest = json.loads((root / "manifest.json").read_text())
    folders = tuple(
        CorpusFolder(f["name"], root / f["dir"], f["count"], f["size"]) for f in manifest["folders"]
    )
    return Corpus(manifest["n"], folders)


def _generate(n: int, root: Path) -> None:
    """Write the corpus into a scratch directory, then rename it to ``root`` (a cache is whole or absent)."""
    scratch = root.with_name(root.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    names = [name for name, _ in FOLDERS]
    directories = {name: scratch / f"f{index:02d}" for index, name in enumerate(names)}
    for directory in directories.values():
        directory.mkdir(parents=True)
    chooser = random.Random(SEED)
    tally = {name: [0, 0] for name in names}  # count, CRLF bytes
    for i in range(n):
        name = chooser.choices(names, [share for _, share in FOLDERS])[0]
        tally[name][0] += 1
        tally[name][1] += _write_message(i, n, name, directories[name])
    folders = [
        {"name": name, "dir": directory.name, "count": tally[name][0], "size": tally[name][1]}
        for name, directory in directories.items()
    ]
    manifest = {"version": VERSION, "n": n, "seed": SEED, "keywords": KEYWORDS, "folders": folders}
    (scratch / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    scratch.rename(root)


def _write_message(i: int, n: int, folder: str, directory: Path) -> int:
    """Write message ``i`` of ``folder`` into ``directory``; return its size with CRLF line endings."""
    raw, file_name, received = _message_file(i, n, folder)
    path = directory / file_name
    path.write_bytes(raw)
    os.utime(path, (received, received))
    return len(raw) + raw.count(b"\n")


def _message_file(i: int, n: int, folder: str) -> tuple[bytes, str, int]:
    """Return message ``i``'s bytes, its Maildir file name and its received time (epoch seconds)."""
    rng = random.Random(f"{SEED}-{i}")
    received = END - SPAN + SPAN * (i / n) + timedelta(seconds=rng.randrange(3600))
    raw = _message(rng, i, folder, received, _target_size(rng, i))
    seconds = int(received.timestamp())
    crlf = len(raw) + raw.count(b"\n")
    name = f"{seconds}.M{i:06d}P{i}.bench,S={len(raw)},W={crlf}:2,{_flags(rng, folder)}"
    return raw, name, seconds


def _target_size(rng: random.Random, i: int) -> int:
    if i % HUGE_EVERY == HUGE_EVERY // 2:
        return HUGE_SIZE
    if rng.random() < LARGE_SHARE:
        return int(100_000 * 20 ** rng.random())  # log-uniform 100 KB - 2 MB
    return rng.randrange(2_000, 20_000)


def _flags(rng: random.Random, folder: str) -> str:
    """Return the Maildir info letters (sorted, keywords as a/b/c) for a message of ``folder``."""
    if folder == "Drafts":
        letters = {"D"}
    elif folder in ("Sent", "Trash", "Junk") or folder.startswith("Archive"):
        letters = {"S"}
    else:
        letters = {"S"} if rng.random() < 0.8 else set()
    for letter, chance in (("R", 0.15), ("F", 0.05), ("P", 0.03)):
        if "S" in letters and rng.random() < chance:
            letters.add(letter)
    for letter, chance in (("a", 0.04), ("b", 0.06), ("c", 0.02)):
        if rng.random() < chance:
            letters.add(letter)
    return "".join(sorted(letters))


def _message(rng: random.Random, i: int, folder: str, received: datetime, size: int) -> bytes:
    headers = _headers(rng, i, folder, received)
    if size < 100_000:
        return headers + _text_body(rng, size - len(headers))
    return headers + _mixed_body(rng, i, size - len(headers))


def _headers(rng: random.Random, i: int, folder: str, received: datetime) -> bytes:
    sent = (received - timedelta(seconds=rng.randrange(5, 600))).astimezone(rng.choice(_ZONES))
    sender = f"{rng.choice(_WORDS)}.{rng.choice(_WORDS)}@{rng.choice(('example.com', 'example.net', 'beispiel.de'))}"
    me = "alice@example.org"
    author, recipient = (me, sender) if folder in ("Sent", "Drafts") else (sender, me)
    lines = [
        f"Return-Path: <{author}>",
        f"Received: from mx{rng.randrange(1, 9)}.example.net (mx.example.net [192.0.2.{rng.randrange(1, 255)}])",
        f"\tby mail.example.org with ESMTPS id {rng.getrandbits(48):012x}",
        f"\tfor <{recipient}>; {_rfc2822(received)}",
        f"Date: {_rfc2822(sent)}",
        f"From: {author}",
        f"To: {recipient}",
        f"Subject: {_subject(rng)}",
        f"Message-ID: <bench.{i}.{rng.getrandbits(32):08x}@example.org>",
        "MIME-Version: 1.0",
    ]
    if rng.random() < 0.3:
        lines.append(f"In-Reply-To: <bench.{rng.randrange(i + 1)}.0@example.org>")
    return ("\n".join(lines) + "\n").encode()


def _rfc2822(moment: datetime) -> str:
    return moment.strftime("%a, %d %b %Y %H:%M:%S %z")


def _subject(rng: random.Random) -> str:
    words = " ".join(rng.choices(_WORDS, k=rng.randrange(2, 9))).capitalize()
    if rng.random() < 0.15:
        text = f"{words} {rng.choice(_UNICODE_WORDS)}"
        return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="
    return words


def _text_body(rng: random.Random, size: int) -> bytes:
    unicode = rng.random() < 0.2
    encoding = "8bit" if unicode else "7bit"
    head = f'Content-Type: text/plain; charset="utf-8"\nContent-Transfer-Encoding: {encoding}\n\n'.encode()
    return head + _text(rng, max(size - len(head), 200), unicode)


def _text(rng: random.Random, size: int, unicode: bool) -> bytes:
    lines: list[str] = []
    total = 0
    while total < size:
        words = rng.choices(_WORDS, k=rng.randrange(6, 14))
        if unicode and rng.random() < 0.3:
            words.append(rng.choice(_UNICODE_WORDS))
        line = " ".join(words) + ("." if rng.random() < 0.3 else "")
        lines.append(line)
        total += len(line.encode()) + 1
    return ("\n".join(lines) + "\n").encode()


def _mixed_body(rng: random.Random, i: int, size: int) -> bytes:
    boundary = f"=_bench_{i}_{rng.getrandbits(40):010x}"
    kind, extension = rng.choice((("application/pdf", "pdf"), ("image/jpeg", "jpg"), ("application/zip", "zip")))
    text = _text(rng, rng.randrange(500, 4_000), unicode=False)
    attachment = base64.encodebytes(rng.randbytes(size * 3 // 4 - len(text)))
    parts = [
        (
            f'Content-Type: multipart/mixed; boundary="{boundary}"\n\n'
            "This is a multi-part message in MIME format.\n"
        ).encode(),
        f'--{boundary}\nContent-Type: text/plain; charset="us-ascii"\n\n'.encode() + text,
        (
            f'--{boundary}\nContent-Type: {kind}; name="file{i}.{extension}"\nContent-Transfer-Encoding: base64\n'
            f'Content-Disposition: attachment; filename="file{i}.{extension}"\n\n'
        ).encode() + attachment,
        f"--{boundary}--\n".encode(),
    ]
    return b"".join(parts)
