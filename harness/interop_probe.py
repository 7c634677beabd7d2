"""`python -m harness.interop_probe [OUTDIR]`: a full migration Dovecot -> Cyrus/Courier and back.

Not a test: a probe that says what fails and why, for the work of making migrator pass against
every real server. As root, it starts a Dovecot, a Cyrus and a Courier (harness/), seeds
a Dovecot user with ``server_safe(corpus())`` plus a few messages the other servers are known
not to hold (bare CR, 8-bit headers, 120 keywords in one folder), and for each other server:

1. seeds a user there with the harness (imaplib, one message at a time): what the server
   itself refuses or changes, whatever client writes to it;
2. runs ``migrator copy`` from Dovecot to a fresh user there, twice, and ``migrator verify``;
3. runs the same from the harness-seeded user back into a fresh Dovecot user.

After each copy it dumps the target with the harness and compares it with what the source
held, message by message (matched by content with 8-bit bytes and CR left out): found, exact
bytes, flags, keywords, dates, folders. Each command's output and its ``--debug-imap`` trace
stay in OUTDIR (default /tmp/interop-probe); the report lists the server's NO and BAD answers
with the commands they answered.
"""

from __future__ import annotations

import imaplib
import os
import re
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from harness.corpus import corpus, seed_items, server_safe
from harness.courier import CourierServer
from harness.cyrus import CyrusServer
from harness.dovecot import DovecotServer
from harness.mailboxes import Dump, SeedItem
from harness.mailserver import MailServer, MailUser

PASSWORD = "probe-secret"
WHEN = datetime(2022, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
SHOWN_PROBLEMS = 20
SYSTEM_FLAGS = {"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "$Forwarded"}
_HEAD = b"From: a@example.org\r\nTo: b@example.org\r\nDate: Wed, 1 Jun 2022 12:00:00 +0000\r\n"


def hard_messages() -> list[SeedItem]:
    """Return messages Dovecot holds and Cyrus or Courier are known not to: bare CR, 8-bit headers, 120 keywords."""
    items: list[SeedItem] = [
        (("Edge",), _HEAD + b"Subject: bare CR\r\nMessage-ID: <cr@probe>\r\n\r\nbefore\rafter\r\n", ["\\Seen"], WHEN),
        (("Edge",), _HEAD + "Subject: 8-bit \u00e4 header\r\nMessage-ID: <8bit@probe>\r\n\r\nbody\r\n".encode(),
         [], WHEN),
        (("Edge",), _HEAD + b"Subject: latin-1 \xe4 header\r\nMessage-ID: <latin1@probe>\r\n\r\nbody\r\n", [], WHEN),
    ]
    for number in range(12):
        raw = _HEAD + f"Subject: keywords {number}\r\nMessage-ID: <kw{number}@probe>\r\n\r\nk\r\n".encode()
        items.append((("Many keywords",), raw, [f"kw{number:02d}_{k}" for k in range(10)], WHEN))
    return items


# --- comparing dumps ---------------------------------------------------------------------------

def content_key(raw: bytes) -> bytes:
    """Return what identifies a message across servers that change bytes: 8-bit bytes as X, no CR."""
    return re.sub(rb"[\x80-\xff]", b"X", raw).replace(b"\r", b"").rstrip()


def compare(source: Dump, target: Dump) -> dict:
    """Return counts, differences ("missing", "bytes", "flags", "keywords", "date") and renamed folders."""
    unmatched: dict[bytes, list] = {}
    for folder, messages in target.items():
        for message in messages:
            unmatched.setdefault(content_key(message[0]), []).append((folder, message))
    counts: Counter = Counter()
    problems: list[tuple[str, str, str, str]] = []
    placed: dict[str, Counter] = {}
    for folder, messages in source.items():
        for raw, flags, date in messages:
            counts["source"] += 1
            candidates = unmatched.get(content_key(raw), [])
            if not candidates:
                problems.append(("missing", folder, subject(raw), ""))
                continue
            target_folder, copied = candidates.pop(0)
            placed.setdefault(folder, Counter())[target_folder] += 1
            _compare_message(folder, (raw, flags, date), copied, counts, problems)
    counts["folders kept"] = sum(1 for folder in source if set(placed.get(folder, {})) == {folder})
    counts["source folders"] = len(source)
    renamed = {folder: dict(where) for folder, where in placed.items() if set(where) != {folder}}
    return {"counts": dict(counts), "problems": problems, "renamed": renamed,
            "extra": sum(len(left) for left in unmatched.values())}


def _compare_message(folder: str, original: tuple, copied: tuple, counts: Counter, problems: list) -> None:
    (raw, flags, date), (copy_raw, copy_flags, copy_date) = original, copied
    name = subject(raw)
    system, copy_system = flags & SYSTEM_FLAGS, copy_flags & SYSTEM_FLAGS
    keywords, copy_keywords = flags - SYSTEM_FLAGS, copy_flags - SYSTEM_FLAGS
    checks = {"bytes": (raw == copy_raw, lambda: byte_difference(raw, copy_raw)),
              "flags": (system == copy_system, lambda: f"{sorted(system)} -> {sorted(copy_system)}"),
              "keywords": (keywords == copy_keywords, lambda: f"{sorted(keywords)} -> {sorted(copy_keywords)}"),
              "dates": (date == copy_date, lambda: f"{date.isoformat()} -> {copy_date.isoformat()}")}
    counts["found"] += 1
    for what, (same, describe) in checks.items():
        counts[what] += same
        if not same:
            problems.append((what, folder, name, describe()))


def subject(raw: bytes) -> str:
    """Return a message's Subject for the report."""
    match = re.search(rb"^Subject: (.*?)\r?$", raw, re.M)
    return match.group(1).decode("utf-8", "replace") if match else "(no subject)"


def byte_difference(before: bytes, after: bytes) -> str:
    """Return where two messages first differ, briefly."""
    index = next((i for i, (x, y) in enumerate(zip(before, after)) if x != y), min(len(before), len(after)))
    return (f"{len(before)} -> {len(after)} bytes; at {index}: "
            f"{before[index:index + 24]!r} -> {after[index:index + 24]!r}")


# --- running migrator --------------------------------------------------------------------------

def migrator(out: Path, label: str, *args: str) -> tuple[int, str]:
    """Run ``migrator --debug-imap ARGS`` into OUT/LABEL.out and .trace; return (exit status, output)."""
    command = [sys.executable, "-m", "migrator", "--debug-imap", "--debug-file", str(out / f"{label}.trace"), *args]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PROBE_PW": PASSWORD})
    output = done.stdout + done.stderr
    (out / f"{label}.out").write_text(f"$ {' '.join(command)}\nexit {done.returncode} "
                                      f"in {time.monotonic() - started:.1f}s\n{output}")
    return done.returncode, output


def endpoint(server: MailServer, user: MailUser) -> str:
    """Return the imaps:// endpoint of ``user`` with the server's CA."""
    return (f"imaps://{user.name}@{server.host}:{server.ports['imaps']}"
            f"?password_env=PROBE_PW&ca_file={server.ca_file}")


def refusals(trace: Path) -> list[str]:
    """Return each NO and BAD answer in a --debug-imap trace with the command it answered."""
    sent: dict[tuple[str, str], str] = {}
    found = []
    lines = trace.read_text(errors="replace").splitlines() if trace.exists() else []
    for line in lines:
        match = re.match(r"\S+ (\S+) \S+ (C|S): (\S+) (.*)$", line)
        if not match:
            continue
        connection, side, tag, rest = match.groups()
        if side == "C":
            sent[(connection, tag)] = re.sub(r"\{\d+ bytes\}.*", "{literal}", rest)[:110]
        elif rest.startswith(("NO", "BAD")):
            found.append(f"{sent.get((connection, tag), '?')}  =>  {rest[:200]}")
    return found


def probe_copy(out: Path, name: str, source: tuple[MailServer, MailUser], target: tuple[MailServer, MailUser],
               expected: Dump) -> None:
    """Copy twice and verify with migrator, compare the target's dump with ``expected``, and print it all."""
    state = str(out / f"{name}.state")
    print(f"\n## {name}")
    for run in ("copy", "copy-again"):
        code, output = migrator(out, f"{name}-{run}", "copy", endpoint(*source), endpoint(*target), "--state", state)
        summary = next((line for line in output.splitlines() if " folders: " in line or " folder: " in line), "")
        print(f"migrator {run}: exit {code}: {summary.strip()}")
        for line, count in Counter(refusals(out / f"{name}-{run}.trace")).most_common():
            print(f"    {count}x  {line}")
    code, output = migrator(out, f"{name}-verify", "verify", "--details", endpoint(*source), endpoint(*target))
    print(f"migrator verify: exit {code}\n" + "\n".join("    " + line for line in output.strip().splitlines()))
    print_comparison(compare(expected, target[0].dump(target[1], include_empty=False)))


def print_comparison(comparison: dict) -> None:
    """Print what ``compare`` found."""
    print(f"harness comparison: {comparison['counts']}, extra in target: {comparison['extra']}")
    if comparison["renamed"]:
        print(f"    renamed folders: {comparison['renamed']}")
    problems = comparison["problems"]
    for problem in problems[:SHOWN_PROBLEMS]:
        print("    - " + " | ".join(problem))
    if len(problems) > SHOWN_PROBLEMS:
        print(f"    ... and {len(problems) - SHOWN_PROBLEMS} more: {dict(Counter(p[0] for p in problems))}")


# --- the probe ---------------------------------------------------------------------------------

def seed_one_by_one(server: MailServer, user: MailUser, items: list[SeedItem]) -> list[str]:
    """Seed each item with the harness on its own ("." in names as "_"); return the server's refusals."""
    refused = []
    for folder, raw, flags, date in items:
        path = tuple(part.replace(".", "_") for part in (folder.split("/") if isinstance(folder, str) else folder))
        try:
            server.seed(user, [(path, raw, flags, date)])
        except imaplib.IMAP4.error as error:
            refused.append(f"{'/'.join(path)} | {subject(raw)} | {error}")
    return refused


def probe_server(out: Path, label: str, server: MailServer, dovecot: MailServer, source: MailUser,
                 expected: Dump, items: list[SeedItem]) -> None:
    """Probe one target server: the harness writes to it, migrator copies to it and back from it."""
    direct = server.add_user(f"direct{label}", PASSWORD)
    refused = seed_one_by_one(server, direct, items)
    held = server.dump(direct, include_empty=False)
    print(f"\n## {label} itself: the harness's APPENDs, one message at a time")
    for line in refused:
        print(f"    refused: {line}")
    print_comparison(compare(expected, held))
    probe_copy(out, f"dovecot-to-{label}", (dovecot, source), (server, server.add_user(f"to{label}", PASSWORD)),
               expected)
    probe_copy(out, f"{label}-to-dovecot", (server, direct), (dovecot, dovecot.add_user(f"from{label}", PASSWORD)),
               held)


def main(out: Path) -> None:
    """Start the three servers, seed the source and probe Cyrus and Courier; print the report."""
    out.mkdir(parents=True, exist_ok=True)
    servers: dict[str, MailServer] = {}
    try:
        for name, kind in (("dovecot", DovecotServer), ("cyrus", CyrusServer), ("courier", CourierServer)):
            started = time.monotonic()
            servers[name] = kind().start()
            print(f"{name} started in {time.monotonic() - started:.2f} s")
        dovecot = servers["dovecot"]
        items = seed_items(server_safe(corpus())) + hard_messages()
        source = dovecot.add_user("source", PASSWORD)
        for item in items:  # one APPEND each, as on the other servers
            dovecot.seed(source, [item])
        expected = dovecot.dump(source, include_empty=False)
        for label in ("cyrus", "courier"):
            probe_server(out, label, servers[label], dovecot, source, expected, items)
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/interop-probe"))
