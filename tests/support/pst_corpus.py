"""Messages for the PST tests: nested and non-ASCII folders, plain/HTML bodies, attachments, inline images,
embedded messages, flags and keywords; plus the expectations an exported copy must meet."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta, timezone
from email.header import Header
from email.message import EmailMessage
from email.policy import SMTP
from urllib.parse import quote

from migrator.core.message import Flag, Flags, Message

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


# --- awkward messages ------------------------------------------------------------------------------------------

AWKWARD_FOLDER = ("INBOX", "Awkward")
LONG_NAME = "Übersicht für das Projekt 日本語 " + "sehr lang " * 19 + ".pdf"  # 232 bytes: a file name can have 255


def _awkward(subject: str, content: str) -> bytes:
    head = (f"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.de>\r\nTo: Bob <bob@example.com>\r\n"
            f"Cc: carol@example.net\r\nSubject: {subject}\r\nDate: Tue, 02 Jul 2024 09:15:00 +0200\r\n"
            f"Message-ID: <{_digest(subject)}@awkward.test>\r\nMIME-Version: 1.0\r\n")
    return (head + content).encode("utf-8")


def _multipart(kind: str, *parts: str, params: str = "") -> str:
    boundary = _digest("".join(parts))  # nested multiparts need boundaries of their own
    body = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts)
    return f'Content-Type: multipart/{kind}; boundary="{boundary}"{params}\r\n\r\n{body}--{boundary}--\r\n'


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_TEXT = "Content-Type: text/plain; charset=utf-8\r\n\r\n{}"
_ORIGINAL = ("Content-Type: message/rfc822\r\n\r\nFrom: bob@example.com\r\nTo: nobody@example.org\r\n"
             "Subject: The original\r\n\r\nwhat was sent\r\n")
_DELIVERY_STATUS = ("Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n"
                    "Final-Recipient: rfc822; nobody@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n")


def awkward_mails() -> dict[str, bytes]:
    """Return messages that independent readers (and migrator's own) have trouble with, by what is awkward."""
    digest_part = "\r\nFrom: list@example.org\r\nSubject: Digest item {}\r\n\r\nitem {} text\r\n"
    return {
        "nul in body": _awkward("NUL in the body", "Content-Type: text/plain; charset=utf-8\r\n"
                                "Content-Transfer-Encoding: 8bit\r\n\r\nbefore\0after\r\n"),
        "folded subject": _awkward("A subject long enough\r\n to be folded\r\n\tacross three lines, and\r\n"
                                   " =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\n =?utf-8?q?_aus_K=C3=B6ln?=",
                                   _TEXT.format("hi\r\n")),
        "digest": _awkward("A digest", _multipart("digest", digest_part.format(1, 1), digest_part.format(2, 2),
                                                  _ORIGINAL)),
        "zero-byte attachment": _awkward("Zero bytes", _multipart(
            "mixed", _TEXT.format("see the empty file\r\n"),
            "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"empty.bin\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n",
            "Content-Type: text/plain\r\nContent-Disposition: attachment; filename=\"blank.txt\"\r\n\r\n")),
        "delivery status": _awkward("Undelivered Mail Returned to Sender", _multipart(
            "report", _TEXT.format("The message could not be delivered.\r\n"), _DELIVERY_STATUS, _ORIGINAL,
            params="; report-type=delivery-status")),
        "delivery status with headers only": _awkward("Delivery Status Notification (Failure)", _multipart(
            "report", _TEXT.format("Delivery failed.\r\n"), _DELIVERY_STATUS,
            "Content-Type: text/rfc822-headers\r\n\r\nFrom: bob@example.com\r\nSubject: The original\r\n",
            params="; report-type=delivery-status")),
        "read receipt": _awkward("Read: The original", _multipart(
            "report", _TEXT.format("Your message was read.\r\n"),
            "Content-Type: message/disposition-notification\r\n\r\nReporting-UA: mail.example.com\r\n"
            "Final-Recipient: rfc822; bob@example.com\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n",
            params="; report-type=disposition-notification")),
        "calendar invitation": _awkward("Invitation: Planning @ Tue 9:00", _multipart(
            "mixed", _multipart("alternative", _TEXT.format("You are invited.\r\n"),
                                "Content-Type: text/calendar; charset=utf-8; method=REQUEST\r\n\r\n"
                                "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nSUMMARY:Planning\r\n"
                                "END:VEVENT\r\nEND:VCALENDAR\r\n"),
            "Content-Type: application/ics; name=invite.ics\r\nContent-Disposition: attachment; filename=invite.ics"
            "\r\n\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")),
        "contact card": _awkward("My card", _multipart(
            "mixed", _TEXT.format("Here is my card.\r\n"),
            "Content-Type: text/vcard; charset=utf-8\r\nContent-Disposition: attachment; filename=\"jürgen.vcf\"\r\n"
            "\r\nBEGIN:VCARD\r\nVERSION:3.0\r\nFN:Jürgen Müller\r\nEND:VCARD\r\n")),
        "nested messages": _awkward("Fwd: Fwd: three deep", _multipart(
            "mixed", _TEXT.format("forwarded twice\r\n"),
            "Content-Type: message/rfc822\r\n\r\nFrom: a@example.com\r\nSubject: Fwd: two deep\r\nMIME-Version: 1.0\r\n"
            + _multipart("mixed", _TEXT.format("forwarded once\r\n"),
                         "Content-Type: message/rfc822\r\n\r\nFrom: b@example.com\r\nSubject: the innermost\r\n"
                         "MIME-Version: 1.0\r\n" + _multipart(
                             "mixed", _TEXT.format("deepest\r\n"),
                             "Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=inner.pdf\r\n"
                             "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n")))),
        "long non-ascii names": long_names_mail(LONG_NAME),
    }


def long_names_mail(filename: str) -> bytes:
    """Return a message with a long non-ASCII subject (RFC 2047) and an attachment called ``filename`` (RFC 2231)."""
    subject = Header("Größe " + "日本語の件名 " * 40, "utf-8").encode(linesep="\r\n")
    return _awkward(subject, _multipart(
        "mixed", _TEXT.format("Long names.\r\n"),
        "Content-Type: application/pdf\r\nContent-Disposition: attachment;\r\n filename*=utf-8''"
        + quote(filename) + "\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"))


def awkward() -> list[Message]:
    """Return the awkward messages in one folder, each with other flags and received dates."""
    flags = [Flags(), Flags.of(Flag.SEEN), Flags.of(Flag.SEEN, Flag.ANSWERED), Flags.of(Flag.FLAGGED, Flag.FORWARDED)]
    return [Message(raw, flags[number % len(flags)], BASE_DATE + timedelta(days=number), AWKWARD_FOLDER)
            for number, raw in enumerate(awkward_mails().values())]
