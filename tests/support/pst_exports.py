"""Read a PST with the independent readers (readpst, pffexport; pypff in pst_pypff.py) and describe what they show.

Exit codes are not enough (both return 0 while skipping items), so these helpers count and describe what
the tools actually wrote: per folder, each message's subject, plain-text body, attachment hashes and attached
messages, and where a reader exports them its sender, recipients and dates. ``described`` says what they should
show of a source message, and ``differences`` compares the two.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

from migrator.core.message import Flag, Message
from tests.support.tools import require_tools

IGNORED_TOP_FOLDERS = {"Search Root", "SPAM Search Folder 2"}


@dataclass
class Exported:
    """One message as a reader exported it; None where the reader does not say."""

    subject: str
    body: str
    attachments: dict[str, str] = field(default_factory=dict)  # file name -> sha256 of the bytes
    sender: str | None = None  # the sender's address
    recipients: tuple[str, ...] | None = None  # sorted "to:address", "cc:address", "bcc:address"
    sent: datetime | None = None
    received: datetime | None = None
    flags: frozenset[Flag] | None = None
    embedded: tuple[str, ...] | None = None  # sorted subjects of the attached messages


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
    # readpst starts each attached message with an mbox "From " line (quoted as ">From "), which ends its headers
    data = re.sub(rb"(Content-Type: message/rfc822\n\n)>From [^\n]*\n", rb"\1", data)
    parsed = parse(data)
    body = ""
    attachments = {}
    embedded = []
    for part in own_parts(parsed):
        filename = part.get_filename()
        if part.get_content_type() == "message/rfc822":
            embedded.append(str(part.get_payload(0).get("Subject", "")))
        elif filename:
            attachments[filename] = hashlib.sha256(part.get_payload(decode=True) or b"").hexdigest()
        elif part.get_content_type() == "text/plain" and not body:
            body = part.get_content()
    return Exported(str(parsed.get("Subject", "")).strip(), body, attachments, sender=_address(parsed, "From"),
                    recipients=header_recipients(parsed), sent=header_date(parsed), embedded=tuple(sorted(embedded)))


class _Part(email.message.EmailMessage):
    """A part whose type a message/* other than message/rfc822 only seems to be to the email package's parser.

    The parser would read such a body (a delivery-status, a disposition-notification) as header blocks, to be
    written back with other line ends; a PST keeps it as the bytes it is, and so must the comparison.
    """

    def get_content_type(self) -> str:
        """Return the part's content type, a message/* other than message/rfc822 disguised as application/*."""
        kind = super().get_content_type()
        if kind.startswith("message/") and kind != "message/rfc822":
            return f"application/x-{kind.replace('/', '-')}"
        return kind


def parse(data: bytes) -> email.message.EmailMessage:
    """Return a message as the email package parses it, its message/* parts but message/rfc822 left unparsed."""
    return email.message_from_bytes(data, _class=_Part, policy=email.policy.default)


def own_parts(part: email.message.Message) -> Iterator[email.message.Message]:
    """Yield the leaves of a message, and its attached messages whole: not the parts those hold."""
    if part.is_multipart() and part.get_content_type() != "message/rfc822":
        for child in part.get_payload():
            yield from own_parts(child)
    else:
        yield part


def _address(parsed: email.message.Message, name: str) -> str:
    found = getaddresses([str(value) for value in parsed.get_all(name) or []])
    return found[0][1] if found else ""


def header_recipients(parsed: email.message.Message) -> tuple[str, ...]:
    """Return the sorted "to:address", "cc:address", "bcc:address" of a message's header fields."""
    return tuple(sorted(f"{kind.lower()}:{address}" for kind in ("To", "Cc", "Bcc")
                        for _, address in getaddresses([str(v) for v in parsed.get_all(kind) or []]) if address))


def header_date(parsed: email.message.Message) -> datetime | None:
    """Return the Date field as an aware datetime, None when it is missing or unreadable."""
    try:
        moment = parsedate_to_datetime(str(parsed.get("Date", "")))
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo is not None else None


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
    body_file = directory / "Message.txt"
    body = body_file.read_text("utf-8", "replace") if body_file.exists() else ""
    attachments = {}
    embedded = []
    attachment_dir = directory / "Attachments"
    if attachment_dir.is_dir():
        for item in attachment_dir.iterdir():
            if item.is_file():
                name = item.name.split("_", 1)[1]
                attachments[name] = hashlib.sha256(item.read_bytes()).hexdigest()
            else:  # an attached message, exported as AttachmentNNNNN/Message00001/
                inner = (next(item.glob("Message*/OutlookHeaders.txt"))).read_text("utf-8", "replace")
                embedded.append(_pff_field(inner, "Subject"))
    return Exported(_pff_field(headers, "Subject"), body, attachments,
                    sender=_pff_field(headers, "Sender email address"), recipients=_pff_recipients(directory),
                    sent=_pff_time(headers, "Client submit time"), received=_pff_time(headers, "Delivery time"),
                    embedded=tuple(sorted(embedded)))


def _pff_field(headers: str, name: str) -> str:
    match = re.search(rf"^{name}:\t+(.*)$", headers, re.MULTILINE)
    return match.group(1) if match else ""


def _pff_time(headers: str, name: str) -> datetime | None:
    # "Mar 01, 2024 06:40:00.000000000 UTC": nanoseconds, of which a datetime keeps microseconds
    text = _pff_field(headers, name)
    if not text:
        return None
    whole, _, fraction = text.removesuffix(" UTC").partition(".")
    moment = datetime.strptime(whole, "%b %d, %Y %H:%M:%S").replace(tzinfo=timezone.utc)
    return moment.replace(microsecond=int(fraction[:6] or 0))


def _pff_recipients(directory: Path) -> tuple[str, ...]:
    path = directory / "Recipients.txt"
    text = path.read_text("utf-8", "replace") if path.exists() else ""
    found = []
    for block in text.split("\n\n"):
        if "Recipient type:" in block:
            kind = _pff_field(block, "Recipient type").lower()
            found.append(f"{kind}:{_pff_field(block, 'Email address')}")
    return tuple(sorted(found))


# --- what the readers should show -----------------------------------------------------------------------------


def described(message: Message) -> Exported:
    """Return what a reader of a PST migrator wrote should show for the source ``message``, from its MIME alone.

    As migrator maps MIME to MAPI: the first text/plain and text/html leaves not marked as attachments are the
    bodies, every other leaf an attachment (named ``attachment-N`` when it has no file name), a message/rfc822
    part an attached message. The body loses its NUL characters (a text property cannot hold one); the flags are
    those a PST keeps in Outlook's properties (``pst_flags``).
    """
    parsed = parse(message.raw)
    attachments, embedded, bodies = {}, [], {}
    for part in own_parts(parsed):
        kind = part.get_content_type()
        if kind in ("text/plain", "text/html") and part.get_content_disposition() != "attachment" \
                and kind not in bodies:
            bodies[kind] = _text(part)
        elif kind == "message/rfc822":
            embedded.append(str(part.get_payload(0).get("Subject", "")).strip())
        else:
            name = part.get_filename() or f"attachment-{len(attachments) + len(embedded) + 1}"
            attachments[name] = hashlib.sha256(part.get_payload(decode=True) or b"").hexdigest()
    return Exported(str(parsed.get("Subject", "")).strip(), bodies.get("text/plain", "").replace("\0", ""),
                    attachments, sender=_address(parsed, "From"), recipients=header_recipients(parsed),
                    sent=header_date(parsed) or message.received, received=message.received,
                    flags=pst_flags(message.flags.system), embedded=tuple(sorted(embedded)))


def _text(part: email.message.Message) -> str:
    payload = part.get_payload(decode=True) or b""
    try:
        return payload.decode(part.get_content_charset() or "us-ascii", "replace")
    except LookupError:  # a charset Python does not know
        return payload.decode("latin-1")


def pst_flags(flags: frozenset[Flag]) -> frozenset[Flag]:
    """Return the system flags a PST keeps in Outlook's own properties (one last action: forwarded wins)."""
    kept = flags & {Flag.SEEN, Flag.DRAFT, Flag.FLAGGED}
    last = Flag.FORWARDED if Flag.FORWARDED in flags else Flag.ANSWERED if Flag.ANSWERED in flags else None
    return kept | ({last} if last else set())


def differences(got: Exported, want: Exported) -> list[str]:
    """Return one line per field a reader showed differently from ``want`` (fields it does not show are skipped)."""
    found = []
    for name in (f.name for f in fields(Exported)):
        shown, wanted = getattr(got, name), getattr(want, name)
        if name == "body":
            shown, wanted = normalised(shown), normalised(wanted)
        if shown is not None and shown != wanted:
            found.append(f"{name}: {shown!r} instead of {wanted!r}")
    return found


def normalised(body: str) -> str:
    """Return a body with CRLF as LF and without trailing blank lines."""
    return body.replace("\r\n", "\n").rstrip("\n") + "\n"


# --- what the command-line readers show of the flags ------------------------------------------------------------


def read_marks(pst: Path, out: Path) -> dict[str, dict[tuple[tuple[str, ...], str], bool]]:
    """Return, for readpst and pffexport, whether each message (folder, subject) of ``pst`` shows as read.

    Of the flags these two show only that: readpst writes ``Status: RO`` for a read message, pffexport the
    message flags (MSGFLAG_READ is 0x1). Subjects must be unique within a folder.
    """
    out.mkdir(parents=True, exist_ok=True)
    readpst_export(pst, out / "readpst")
    pffexport_export(pst, out / "pffexport")
    (top,) = [child for child in (out / "readpst").iterdir() if child.is_dir()]
    readpst = {}
    for eml in top.rglob("*.eml"):
        parsed = parse(eml.read_bytes())
        key = (eml.parent.relative_to(top).parts, str(parsed.get("Subject", "")).strip())
        readpst[key] = "R" in str(parsed.get("Status", ""))
    pff_top = out / "pffexport.export" / "Top of Personal Folders"
    pffexport = {}
    for headers in pff_top.rglob("Message0*/OutlookHeaders.txt"):
        if "Attachments" in headers.relative_to(pff_top).parts:
            continue  # an attached message's
        text = headers.read_text("utf-8", "replace")
        key = (headers.parent.parent.relative_to(pff_top).parts, _pff_field(text, "Subject"))
        pffexport[key] = bool(int(_pff_field(text, "Flags").split()[0], 16) & 0x1)
    assert len(readpst) == len(pffexport), "a subject is not unique within its folder, or a reader skipped one"
    return {"readpst": readpst, "pffexport": pffexport}
