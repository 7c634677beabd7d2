"""Per-folder message counts of a run's result, read from disk without migrator's stores.

Folder names come back as '/'-separated Unicode names so that every layout compares
with the source: the peers' Maildir trees (mbsync, offlineimap), a single Maildir
(getmail), migrator's Maildir++ and mbox trees, and a PST as ``readpst`` reads it. Only
migrator's pure folder-name codecs are reused; messages are counted by their own rules
(a file in cur/ or new/, a ``From `` line after a blank line, a readpst message file).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from migrator.stores.foldernames import MBOX_FILE, decode_maildir_name, decode_tree_name, maildir_path


def maildir_size(directory: Path) -> int:
    """Return the number of messages in the Maildir ``directory`` (files in cur/ and new/)."""
    total = 0
    for sub in ("cur", "new"):
        path = directory / sub
        if path.is_dir():
            total += sum(1 for entry in path.iterdir() if not entry.name.startswith("."))
    return total


def single_maildir_counts(directory: Path) -> dict[str, int]:
    """Return the counts of one Maildir that holds only INBOX (getmail's layout)."""
    return {"INBOX": maildir_size(directory)}


def tree_counts(root: Path) -> dict[str, int]:
    """Return the counts of a tree of Maildirs, one directory level per folder level (mbsync, offlineimap)."""
    counts = {}
    for cur in sorted(root.rglob("cur")):
        folder = cur.parent.relative_to(root)
        if folder.parts:
            # These tools name directories by the server's modified UTF-7 names, which this decodes.
            counts["/".join(decode_maildir_name(part) for part in folder.parts)] = maildir_size(cur.parent)
    return counts


def maildirpp_counts(root: Path) -> dict[str, int]:
    """Return the counts of a Maildir++ (root is INBOX, ``.A.B`` directories, Dovecot's listescape)."""
    return {name: maildir_size(directory) for name, directory in maildirpp_folders(root).items()}


def maildirpp_folders(root: Path) -> dict[str, Path]:
    """Return the directory of every folder of the Maildir++ at ``root``, by '/'-separated name."""
    folders = {"INBOX": root}
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") and (entry / "cur").is_dir():
            folders["/".join(maildir_path(entry.name))] = entry
    return folders


def mbox_counts(path: Path) -> int:
    """Return the number of messages in the mbox file ``path`` (``From `` lines after a blank line)."""
    count = 0
    previous_blank = True
    with open(path, "rb") as mbox:
        for line in mbox:
            if previous_blank and line.startswith(b"From "):
                count += 1
            previous_blank = line in (b"\n", b"\r\n")
    return count


def pst_counts(pst: Path) -> dict[str, int]:
    """Return the counts of a PST as ``readpst -S`` sees it: messages are the files named by a number.

    ``-j 0``: readpst's default parallel jobs share one file offset after forking and skip
    items at random.

    readpst puts every folder under a directory named after the PST's root folder (left out
    here), writes attachments as ``N-name`` beside message ``N``, and calls INBOX "Inbox".
    """
    # The extracted files stay beside the PST, in the run's work directory, which the session
    # removes at its end: deleted here, they would slow the file creations of the next run.
    out = tempfile.mkdtemp(prefix="readpst-", dir=pst.parent)
    subprocess.run(["readpst", "-S", "-q", "-j", "0", "-o", out, str(pst)], check=True, capture_output=True)
    counts = {}
    for directory in sorted(Path(out).rglob("*")):
        parts = directory.relative_to(out).parts[1:]
        if directory.is_dir() and parts:
            name = "INBOX" if parts == ("Inbox",) else "/".join(parts)
            counts[name] = sum(1 for f in directory.iterdir() if f.is_file() and f.name.isdigit())
    return counts


def mbox_tree_counts(root: Path) -> dict[str, int]:
    """Return the counts of migrator's mbox tree: folder ``A/B`` is the file ``ROOT/A/B/mbox``."""
    counts = {}
    for path in sorted(root.rglob(MBOX_FILE)):
        folder = path.parent.relative_to(root)
        counts["/".join(decode_tree_name(part) for part in folder.parts)] = mbox_counts(path)
    return counts
