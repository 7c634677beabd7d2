"""Building a faithful RFC 5322 message from a MAPI message that has no stored original bytes.

Headers come from PidTagTransportMessageHeaders when present (their own Content-* fields are replaced by the body
structure built here; a missing From or Date is added), else they are synthesised from the sender, recipients,
dates and ids. The body is
text/plain, text/html or multipart/alternative; inline parts referenced by Content-ID join the HTML in a
multipart/related; attachments and embedded messages (message/rfc822) follow in a multipart/mixed.
Output is deterministic: boundaries derive from the content, and type guesses ignore the system's mime.types.
"""

from __future__ import annotations

import hashlib
import mimetypes
from datetime import datetime
from email import message_from_bytes, policy
from email.generator import BytesGenerator
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from io import BytesIO

from migrator.stores.pst.convert.meta_from_mapi import mapi_date
from migrator.stores.pst.convert.rtf import RtfError, decompress_rtf, html_from_rtf
from migrator.stores.pst.messaging import props as p
from migrator.stores.pst.messaging.reader import Attachment, MapiMessage, codec_name

_POLICY = policy.SMTP.clone(max_line_length=78, refold_source="none")  # parsed headers stay as they came
_TYPES = mimetypes.MimeTypes(filenames=())  # built-in table only: the same answer on every machine
_REPLACED_HEADERS = ("content-", "mime-version")
_MANDATORY_HEADERS = {"from", "date"}  # RFC 5322 §3.6
_RECIPIENT_HEADERS = ((p.RECIPIENT_TO, "To"), (p.RECIPIENT_CC, "Cc"), (p.RECIPIENT_BCC, "Bcc"))


def build_mime(message: MapiMessage, received: datetime) -> bytes:
    """Return the RFC 5322 bytes (CRLF line ends) of ``message``; ``received`` dates it if nothing else does."""
    content_headers, body = _split(_serialize(_body_entity(message)))
    kept = transport_headers(message.text(p.PID_TRANSPORT_MESSAGE_HEADERS))
    present = {line.split(b":", 1)[0].strip().lower() for line in kept.split(b"\r\n") if line[:1] not in b" \t"}
    wanted = _MANDATORY_HEADERS if kept else None  # transport headers are the original: only fill what RFC 5322 needs
    added = [(name, value) for name, value in synthesised_fields(message, received)
             if wanted is None or (name.lower() in wanted and name.lower().encode() not in present)]
    headers = kept + b"".join(header_field(name, value) for name, value in added)
    return headers + b"MIME-Version: 1.0\r\n" + content_headers + b"\r\n" + body


# --- headers -------------------------------------------------------------------------------------------------


def transport_headers(text: str) -> bytes:
    """Return the header fields of a transport header block, minus those the new body structure replaces."""
    kept: list[str] = []
    keep = False
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line.strip():
            continue
        if line[0] in " \t":
            if keep:
                kept.append(line)
            continue
        name = line.split(":", 1)[0].strip().lower()
        keep = ":" in line and not name.startswith(_REPLACED_HEADERS)
        if keep:
            kept.append(line)
    return "".join(line + "\r\n" for line in kept).encode("utf-8", errors="surrogateescape")


def synthesised_fields(message: MapiMessage, received: datetime) -> list[tuple[str, str]]:
    """Return From/To/Cc/Bcc/Date/Subject/Message-ID/In-Reply-To/References built from MAPI properties.

    They complete the transport headers (or stand in for them when the message has none).
    """
    fields: list[tuple[str, str]] = []
    sender = _sender(message)
    if sender:
        fields.append(("From", sender))
    for kind, name in _RECIPIENT_HEADERS:
        addresses = [format_address(r.name, r.address) for r in message.recipients if r.kind == kind]
        if addresses:
            fields.append((name, ", ".join(addresses)))
    date = message.props.get(p.PID_CLIENT_SUBMIT_TIME) or message.props.get(p.PID_MESSAGE_DELIVERY_TIME)
    fields.append(("Date", format_datetime(date if isinstance(date, datetime) else received)))
    fields.append(("Subject", subject(message)))
    for prop_id, name in ((p.PID_INTERNET_MESSAGE_ID, "Message-ID"), (p.PID_IN_REPLY_TO_ID, "In-Reply-To"),
                          (p.PID_INTERNET_REFERENCES, "References")):
        value = message.text(prop_id).strip()
        if value:
            fields.append((name, value))
    return fields


def header_field(name: str, value: str) -> bytes:
    """Return one header field, RFC 2047-encoded when not ASCII and folded below 78 characters."""
    value = " ".join(value.split())  # CR/LF from a property must never start a new header
    if value.isascii():
        folded = Header(value, "us-ascii", header_name=name).encode(linesep="\r\n", splitchars=", ")
    else:
        folded = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {folded}\r\n".encode("ascii")


def format_address(name: str, address: str) -> str:
    """Return a mailbox for a header: 'Name <addr>', or an empty group 'Name:;' when there is no Internet address."""
    name = " ".join(name.split())
    if "@" not in address:
        return f"{display_name(name)}:;" if name else "undisclosed-recipients:;"
    return formataddr((name if name != address else "", address), charset="utf-8")


def display_name(name: str) -> str:
    """Return a display name as a header phrase: RFC 2047-encoded, or quoted when it has specials."""
    if not name.isascii():
        return Header(name, "utf-8").encode()
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def subject(message: MapiMessage) -> str:
    """Return the subject without Outlook's leading U+0001 prefix-length marker."""
    text = message.text(p.PID_SUBJECT)
    return text[2:] if text.startswith("\x01") else text


def _sender(message: MapiMessage) -> str:
    name = message.text(p.PID_SENT_REPRESENTING_NAME) or message.text(p.PID_SENDER_NAME)
    for smtp_id, email_id, type_id in (
        (p.PID_SENT_REPRESENTING_SMTP_ADDRESS, p.PID_SENT_REPRESENTING_EMAIL_ADDRESS,
         p.PID_SENT_REPRESENTING_ADDRESS_TYPE),
        (p.PID_SENDER_SMTP_ADDRESS, p.PID_SENDER_EMAIL_ADDRESS, p.PID_SENDER_ADDRESS_TYPE),
    ):
        address = message.text(smtp_id) or (message.text(email_id) if message.text(type_id) == "SMTP" else "")
        if address:
            return format_address(name, address)
    return format_address(name, "") if name else ""


# --- body structure -----------------------------------------------------------------------------------------


def _body_entity(message: MapiMessage) -> EmailMessage:
    html = _html(message)
    inline = [a for a in message.attachments if html is not None and _is_inline(a, html)]
    others = [a for a in message.attachments if a not in inline and _has_content(a)]
    text = message.text(p.PID_BODY)
    entity = _text_entity(text, html)
    if inline:
        entity = _multipart("related", [entity, *(_attachment_part(a) for a in inline)])
    if others:
        entity = _multipart("mixed", [entity, *(_attachment_part(a) for a in others)])
    return entity


def _text_entity(text: str, html: str | None) -> EmailMessage:
    plain = _text_part(text, "plain")
    if html is None:
        return plain
    if not text.strip():
        return _text_part(html, "html")
    return _multipart("alternative", [plain, _text_part(html, "html")])


def _html(message: MapiMessage) -> str | None:
    value = message.props.get(p.PID_HTML)
    if value is None:
        value = _html_in_rtf(message)
    if isinstance(value, bytes):
        value = value.decode(codec_name(message.props.get(p.PID_INTERNET_CODEPAGE)), errors="replace")
    return value.rstrip("\0") if isinstance(value, str) and value.strip("\0 \r\n") else None


def _html_in_rtf(message: MapiMessage) -> str | None:
    compressed = message.props.raw(p.PID_RTF_COMPRESSED)
    if not compressed:
        return None
    try:
        return html_from_rtf(decompress_rtf(compressed))
    except RtfError:
        return None  # the plain-text body still carries the message


def _is_inline(attachment: Attachment, html: str) -> bool:
    content_id = attachment.text(p.PID_ATTACH_CONTENT_ID).strip("<>")
    return bool(content_id) and f"cid:{content_id}" in html and attachment.method == p.ATTACH_BY_VALUE


def _has_content(attachment: Attachment) -> bool:
    # Attached by value, even with no bytes: an empty file is still a file the message carries.
    return attachment.embedded is not None or attachment.method == p.ATTACH_BY_VALUE


def _text_part(text: str, subtype: str) -> EmailMessage:
    part = EmailMessage(policy=_POLICY)
    part.set_content(text.replace("\r\n", "\n"), subtype=subtype, charset="utf-8", cte="quoted-printable")
    del part["MIME-Version"]
    return part


def _attachment_part(attachment: Attachment) -> EmailMessage:
    disposition = "inline" if _rendered_inline(attachment) else "attachment"
    if attachment.embedded is not None:
        inner = build_mime(attachment.embedded, mapi_date(attachment.embedded))
        return _message_part("message/rfc822", inner, disposition)
    kind = mime_type(attachment)
    filename = attachment_name(attachment) or None
    if kind.startswith("message/") and _fits_message_part(attachment.data):
        part = _message_part(kind, attachment.data, disposition)
        if filename:
            part.set_param("filename", filename, header="Content-Disposition")
    else:
        part = EmailMessage(policy=_POLICY)
        maintype, subtype = ("application", "octet-stream") if kind.startswith("message/") else kind.split("/", 1)
        part.set_content(attachment.data, maintype, subtype, disposition=disposition, filename=filename)
        del part["MIME-Version"]
    content_id = attachment.text(p.PID_ATTACH_CONTENT_ID).strip().strip("<>")
    if content_id:
        part["Content-ID"] = f"<{content_id}>"
    return part


def _message_part(kind: str, body: bytes, disposition: str) -> EmailMessage:
    """Return a message/* part holding ``body`` as it is (RFC 2046 allows no base64 there).

    The email package writes a message/rfc822 or message/delivery-status part only from its parsed body (a
    message, header blocks), and any other message/* part's body as it is.
    """
    head = f"Content-Type: {kind}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
    if kind in ("message/rfc822", "message/delivery-status"):
        return _parse(head + body)
    part = _parse(head)
    part.set_payload(body.decode("ascii", "surrogateescape"))
    return part


def _fits_message_part(data: bytes) -> bool:
    """Return True when ``data`` can be a message/* body unencoded: no NUL, no line over RFC 5322's 998 bytes."""
    return b"\0" not in data and all(len(line) <= 998 for line in data.splitlines())


def _rendered_inline(attachment: Attachment) -> bool:
    flags = attachment.props.get(p.PID_ATTACH_FLAGS, 0)
    rendered = isinstance(flags, int) and bool(flags & p.ATTACH_FLAG_RENDERED_IN_BODY)
    return rendered or attachment.props.get(p.PID_ATTACHMENT_HIDDEN) is True


def attachment_name(attachment: Attachment) -> str:
    """Return the attachment's file name: long name, short name or display name ('' when none)."""
    for prop_id in (p.PID_ATTACH_LONG_FILENAME, p.PID_ATTACH_FILENAME, p.PID_DISPLAY_NAME):
        name = attachment.text(prop_id).strip()
        if name:
            return name
    return ""


def mime_type(attachment: Attachment) -> str:
    """Return the attachment's MIME type: PidTagAttachMimeTag, else guessed from its name, else octet-stream."""
    tag = attachment.text(p.PID_ATTACH_MIME_TAG).strip().lower()
    if tag.count("/") == 1 and " " not in tag and not tag.startswith("multipart/"):  # no boundary, no parts
        return tag
    guessed = _TYPES.guess_type(attachment_name(attachment), strict=False)[0]
    return guessed or "application/octet-stream"


def _multipart(subtype: str, parts: list[EmailMessage]) -> EmailMessage:
    container = EmailMessage(policy=_POLICY)
    container["Content-Type"] = f"multipart/{subtype}"
    digest = hashlib.sha256(b"".join(_serialize(part) for part in parts)).hexdigest()
    container.set_param("boundary", f"=_{digest[:40]}")  # "=_" never occurs in base64 or quoted-printable
    for part in parts:
        container.attach(part)
    return container


def _serialize(entity: EmailMessage) -> bytes:
    out = BytesIO()
    BytesGenerator(out, mangle_from_=False, policy=_POLICY).flatten(entity)
    return out.getvalue()


def _parse(raw: bytes) -> EmailMessage:
    return message_from_bytes(raw, policy=_POLICY)


def _split(entity: bytes) -> tuple[bytes, bytes]:
    headers, _, body = entity.partition(b"\r\n\r\n")
    return headers + b"\r\n", body
