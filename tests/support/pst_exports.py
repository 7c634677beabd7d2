"""Read a PST with the independent readers (readpst, pffexport) and summarise what they exported.

Exit codes are not enough (both return 0 while skipping items), so these helpers count and describe what
the tools actually wrote: per folder, each message's subject, plain-text body and attachment hashes.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.tools import require_tools

IGNORED_TOP_FOLDERS = {"Search Root", "SPAM Search Folder 2"}


@dataclass
class Exported:
    """One message as a reader exported it."""

    subject: str
    body: str
    attachments: dict[str, str] = field(default_factory=dict)  # file name -> sha256 of the bytes


Export = dict[tuple[str, ...], list[Exported]]
"""Messages per folder path (relative to the top of the store)."""


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a reader and return its outcome; raise AssertionError with its output when it fails."""
    result = subprocess.run(command, capture_output=True, text=True, errors="replace")
    assert result.returncode == 0, f"{command[0]} failed ({result.returncode}): {result.stdout}{result.stderr}"
    return result


def readpst_export(pst: Path, out: Path) -> Export:
    """Return what ``readpst -j 0 -D -r -8 -e`` exports from ``pst``; assert it skipped nothing."""
    require_tools("readpst")
    out.mkdir()
    # -j 0: readpst's parallel jobs share one file offset after fork and then misread blocks at random.
    result = run(["readpst", "-j", "0", "-D", "-r", "-8", "-e", "-o", str(out), str(pst)])
    skipped = re.findall(r"(\d+) items skipped", result.stdout)
    assert all(count == "0" for count in skipped), result.stdout
    (top,) = [child for child in out.iterdir() if child.is_dir()]
    export: Export = {}
    for eml in sorted(top.rglob("*.eml"), key=lambda path: int(path.stem) if path.stem.isdigit() else 0):
        folder = eml.parent.relative_to(top).parts
        export.setdefault(folder, []).append(_from_eml(eml.read_bytes()))
    for directory in top.rglob("*"):
        if directory.is_dir():
            export.setdefault(directory.relative_to(top).parts, [])
    return export


def _from_eml(data: bytes) -> Exported:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    body = ""
    attachments = {}
    for part in parsed.walk():
        if part.is_multipart():
            continue
        filename = part.get_filename()
        if filename:
            attachments[filename] = hashlib.sha256(part.get_payload(decode=True) or b"").hexdigest()
        elif part.get_content_type() == "text/plain" and not body:
            body = part.get_content()
    return Exported(str(parsed.get("Subject", "")), body, attachments)


def pffexport_export(pst: Path, target: Path) -> Export:
    """Return what ``pffexport -m items`` exports from ``pst``; assert it reported no error."""
    require_tools("pffexport")
    result = run(["pffexport", "-f", "all", "-m", "items", "-t", str(target), str(pst)])
    errors = [line for line in result.stdout.splitlines() + result.stderr.splitlines()
              if "unable" in line.lower() or "libpff_" in line]
    assert not errors, errors
    top = Path(f"{target}.export") / "Top of Personal Folders"
    export: Export = {(): []}
    for directory in sorted(top.rglob("*")):
        if not directory.is_dir() or "Attachments" in directory.relative_to(top).parts:
            continue
        if (directory / "OutlookHeaders.txt").exists():
            export.setdefault(directory.parent.relative_to(top).parts, []).append(_from_pff_dir(directory))
        elif not any(part.startswith("Message0") for part in directory.relative_to(top).parts):
            export.setdefault(directory.relative_to(top).parts, [])
    return export


def _from_pff_dir(directory: Path) -> Exported:
    headers = (directory / "OutlookHeaders.txt").read_text("utf-8", "replace")
    match = re.search(r"^Subject:\t+(.*)$", headers, re.MULTILINE)
    body_file = directory / "Message.txt"
    body = body_file.read_text("utf-8", "replace") if body_file.exists() else ""
    attachments = {}
    attachment_dir = directory / "Attachments"
    if attachment_dir.is_dir():
        for item in attachment_dir.iterdir():
            if item.is_file():
                name = item.name.split("_", 1)[1]
                attachments[name] = hashlib.sha256(item.read_bytes()).hexdigest()
    return Exported(match.group(1) if match else "", body, attachments)
