"""Messages for the PST tests: nested and non-ASCII folders, plain/HTML bodies, attachments, inline images,
embedded messages, flags and keywords; plus the expectations an exported copy must meet."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import SMTP

from migrator.message import Flag, Flags, Message

BASE_DATE = datetime(2024, 3, 1, 8, 30, tzinfo=timezone(timedelta(hours=2)))
FOLDERS = [("INBOX",), ("INBOX", "Receipts"), ("Archive", "2024", "Größe"), ("日本語",), ("Sent Items",)]


def pattern_bytes(size: int, seed: int) -> bytes:
    """Return ``size`` reproducible, poorly compressible bytes."""
    block = hashlib.sha256(b"%d" % seed).digest()
    return (block * (size // len(block) + 1))[:size]


def mail(number: int, subject: str | None = None, *, html: bool = False, attachments: int = 0,
         attachment_size: int = 2000, inline_image: bool = False, embedded: bool = False) -> bytes:
    """Return the bytes of test message ``number`` with the requested parts."""
    message = EmailMessage()
    message["From"] = f"Sender {number} <sender{number}@example.com>"
    message["To"] = "Bob <bob@example.com>, Zoë Ünïcode <zoe@example.org>"
    message["Cc"] = "carol@example.net"
    message["Subject"] = subject or f"Message {number} — grüße"
    message["Date"] = (BASE_DATE + timedelta(minutes=number)).strftime("%a, %d %b %Y %H:%M:%S %z")
    message["Message-ID"] = f"<msg{number}@example.com>"
    message.set_content(body_text(number))
    if html:
        message.add_alternative(f"<html><body><p>{body_text(number)}</p></body></html>", subtype="html")
    if inline_image:  # multipart/related holding the text and an image it refers to
        message.add_related(pattern_bytes(300, number), "image", "png", cid=f"<img{number}@example.com>",
                            filename=f"img-{number}.png", disposition="inline")
    for index in range(attachments):
        message.add_attachment(pattern_bytes(attachment_size, number * 100 + index), "application", "octet-stream",
                               filename=f"file-{number}-{index}.bin")
    if embedded:
        inner = EmailMessage()
        inner["From"] = "inner@example.com"
        inner["Subject"] = f"Inner of {number}"
        inner.set_content(f"inner body of {number}\n")
        message.add_attachment(inner)
    return message.as_bytes(policy=SMTP)


def big_mail(number: int, size: int) -> tuple[bytes, str, str]:
    """Return (raw bytes, subject, sha256 of the attachment) of a message with one ``size``-byte attachment.

    Built by hand rather than with the email package, which is slow for attachments of many megabytes.
    """
    data = pattern_bytes(size, number)
    subject = f"Big {number}"
    head = (f"From: big@example.com\r\nTo: bob@example.com\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\n"
            f"body {number}\r\n--B\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Disposition: attachment; filename=big-{number}.bin\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n")
    encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")
    return head.encode() + encoded + b"--B--\r\n", subject, hashlib.sha256(data).hexdigest()


def body_text(number: int) -> str:
    """Return the plain-text body of message ``number``."""
    return f"Hello {number}, this is the body — with ünïcödé and €.\n"


def corpus() -> list[Message]:
    """Return a small varied corpus spread over FOLDERS."""
    flags = [Flags(), Flags.of(Flag.SEEN), Flags.of(Flag.SEEN, Flag.ANSWERED, keywords=("work",)),
             Flags.of(Flag.FLAGGED, Flag.FORWARDED), Flags.of(Flag.DRAFT, keywords=("$Label1", "urgent"))]
    messages = []
    for number in range(25):
        html = number % 2 == 1
        raw = mail(number, html=html, attachments=number % 3, inline_image=number % 5 == 4 and not html,
                   embedded=number % 7 == 6)
        messages.append(Message(raw, flags[number % len(flags)], BASE_DATE + timedelta(hours=number),
                                FOLDERS[number % len(FOLDERS)]))
    return messages


def expected_attachments(message: Message) -> dict[str, str]:
    """Return the file attachments of ``message`` (name -> sha256), as readers should export them."""
    import email
    from email.policy import default

    parsed = email.message_from_bytes(message.raw, policy=default)
    found = {}
    for part in parsed.walk():
        filename = part.get_filename()
        if filename and not part.is_multipart():
            found[filename] = hashlib.sha256(part.get_payload(decode=True)).hexdigest()
    return found
