"""Mapping an RFC 5322 message and its IMAP metadata to MAPI properties ([MS-OXCMAIL], simplified).

Pure: a Message in, property values out. The exact original bytes travel beside the mapped properties in
migrator's named properties, so a restore never depends on this mapping.
"""

from __future__ import annotations

import email.errors
import hashlib
import json
import re
from datetime import datetime
from email.header import decode_header, make_header
from email.message import Message as EmailMessage
from email.utils import getaddresses, parsedate_to_datetime

from migrator.core.message import Flag, Flags, Message
from migrator.stores.pst.convert.mime_tree import base64_body, decoded_body, parse_message
from migrator.stores.pst.convert.raw_copy import Sources, skeleton
from migrator.stores.pst.convert.streamed_base64 import streamed_base64
from migrator.stores.pst.ltp import props as pt
from migrator.stores.pst.ltp.values_writer import PropValue, StreamedBinary
from migrator.stores.pst.ltp.writer import Properties
from migrator.stores.pst.messaging import props as p
from migrator.stores.pst.messaging.namemap_writer import NamedProperty
from migrator.stores.pst.messaging.writer import MapiAttachment, MapiMessage

_ONE_OFF_PROVIDER = bytes.fromhex("812B1FA4BEA310199D6E00DD010F5402")
_ONE_OFF_FLAGS = 0x8001  # MAPI_ONE_OFF_UNICODE | MAPI_ONE_OFF_NO_RICH_INFO
_SUBJECT_PREFIX = re.compile(r"[^\W\d_]{1,3}: ")
_LINE_BREAK = re.compile(r"\r\n|[\r\n]")
_ICON_REPLIED = 0x105
_ICON_FORWARDED = 0x106
STREAM_FROM = 256 * 1024  # encoded bytes from which an attachment is decoded while written, not before



def parse_mime(raw: bytes) -> EmailMessage:
    """Return the parsed MIME tree of ``raw``; lenient, it never raises on bad input."""
    return parse_message(raw)


def header_text(parsed: EmailMessage, name: str) -> str:
    """Return the first value of header ``name`` unfolded, encoded words decoded, or '' when missing."""
    values = header_values(parsed, name)
    return decode_words(values[0]).strip() if values else ""


def header_values(parsed: EmailMessage, name: str) -> list[str]:
    """Return every value of header ``name`` as written, unfolded, its 8-bit bytes read as text."""
    wanted = name.lower()
    return [unfold(eight_bit_text(value)) for key, value in parsed.raw_items() if key.lower() == wanted]


def unfold(value: str) -> str:
    """Return a header value unfolded (RFC 5322 §2.2.3): its line breaks removed, the spaces after them kept."""
    return _LINE_BREAK.sub("", value)


def eight_bit_text(value: str) -> str:
    """Return a header value with the raw 8-bit bytes the parser kept (as surrogates) decoded: as UTF-8, which
    RFC 6532 allows in headers, else as Latin-1, which reads any byte."""
    if value.isascii():
        return value
    raw = value.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def addresses(parsed: EmailMessage, name: str) -> list[tuple[str, str]]:
    """Return the (display name, address) pairs of header ``name``, names decoded."""
    return [(decode_words(display), address) for display, address in getaddresses(header_values(parsed, name))]


def decode_words(text: str) -> str:
    """Return ``text`` with RFC 2047 encoded words decoded; undecodable words are kept as written."""
    try:
        return str(make_header(decode_header(text)))
    except (ValueError, LookupError, UnicodeError, email.errors.HeaderParseError):
        return text


def mapi_from_message(message: Message, named: dict[str, NamedProperty]) -> MapiMessage:
    """Return the MAPI form of ``message``: headers, bodies, recipients, attachments, flags, named props."""
    parsed = parse_mime(message.raw)
    mapped = mapi_from_mime(parsed, message.raw, message.received)
    base_flags = mapped.props.get(pt.tag(p.PID_MESSAGE_FLAGS, pt.PT_LONG), 0)
    assert isinstance(base_flags, int)  # a PT_LONG
    mapped.props.update(flag_properties(message, base_flags))
    mapped.props.update(migrator_properties(message, named))
    mapped.props.update(raw_copy_properties(message.raw, parsed, mapped, named))
    if message.flags.keywords or message.labels:  # Outlook's categories: IMAP keywords, and Gmail's labels
        mapped.props[named[p.KEYWORDS_NAME].tag] = sorted(message.flags.keywords | message.labels)
    return mapped


def mapi_from_mime(parsed: EmailMessage, raw: bytes, received: datetime) -> MapiMessage:
    """Return the properties, recipients and attachments of a parsed MIME message (no IMAP metadata)."""
    props: dict[int, PropValue] = {}
    props.update(envelope_properties(parsed, received))
    props.update(header_block_properties(raw))
    body_parts, attachment_parts = split_parts(parsed)
    props.update(body_properties(body_parts))
    recipients = [without_nul(row) for row in recipient_rows(parsed)]
    props.update(display_recipients(recipients))
    attachments = [attachment(part, number, received) for number, part in enumerate(attachment_parts)]
    props[pt.tag(p.PID_HAS_ATTACHMENTS, pt.PT_BOOLEAN)] = bool(attachments)
    props[pt.tag(p.PID_MESSAGE_FLAGS, pt.PT_LONG)] = p.MSGFLAG_HASATTACH if attachments else 0
    props[pt.tag(p.PID_SEARCH_KEY, pt.PT_BINARY)] = hashlib.md5(raw).digest()
    return MapiMessage(without_nul(props), recipients, attachments)


def without_nul(values: dict[int, PropValue]) -> dict[int, PropValue]:
    """Return ``values`` with U+0000 taken out of their text: readers end a string property at its first NUL.

    The NUL stays in the raw message migrator keeps beside these properties.
    """
    return {tag: value.replace("\0", "") if isinstance(value, str) else value for tag, value in values.items()}


def envelope_properties(parsed: EmailMessage, received: datetime) -> Properties:
    """Return class, subject, sender, dates and identifiers taken from the header fields."""
    subject = header_text(parsed, "Subject")
    values: dict[int, PropValue] = {
        pt.tag(p.PID_MESSAGE_CLASS, pt.PT_UNICODE): "IPM.Note",
        pt.tag(p.PID_IMPORTANCE, pt.PT_LONG): importance(parsed),
        pt.tag(p.PID_PRIORITY, pt.PT_LONG): 0,
        pt.tag(p.PID_SENSITIVITY, pt.PT_LONG): 0,
        pt.tag(p.PID_MESSAGE_STATUS, pt.PT_LONG): 0,
        pt.tag(p.PID_MESSAGE_DELIVERY_TIME, pt.PT_SYSTIME): received,
        pt.tag(p.PID_CREATION_TIME, pt.PT_SYSTIME): received,
        pt.tag(p.PID_LAST_MODIFICATION_TIME, pt.PT_SYSTIME): received,
        pt.tag(p.PID_CLIENT_SUBMIT_TIME, pt.PT_SYSTIME): sent_date(parsed) or received,
        pt.tag(p.PID_MESSAGE_CODEPAGE, pt.PT_LONG): p.CODEPAGE_UTF8,
        pt.tag(p.PID_INTERNET_CODEPAGE, pt.PT_LONG): p.CODEPAGE_UTF8,
    }
    if subject:
        prefix, normalized = split_subject(subject)
        values[pt.tag(p.PID_SUBJECT, pt.PT_UNICODE)] = subject
        values[pt.tag(p.PID_SUBJECT_PREFIX, pt.PT_UNICODE)] = prefix
        values[pt.tag(p.PID_NORMALIZED_SUBJECT, pt.PT_UNICODE)] = normalized
        values[pt.tag(p.PID_CONVERSATION_TOPIC, pt.PT_UNICODE)] = normalized
    for prop_id, name in ((p.PID_INTERNET_MESSAGE_ID, "Message-ID"), (p.PID_IN_REPLY_TO_ID, "In-Reply-To"),
                          (p.PID_INTERNET_REFERENCES, "References")):
        if value := header_text(parsed, name):
            values[pt.tag(prop_id, pt.PT_UNICODE)] = value
    values.update(sender_properties(parsed))
    return values


def split_subject(subject: str) -> tuple[str, str]:
    """Return (prefix, normalized subject): a prefix is up to 3 letters and ': ', e.g. 'RE: ' ([MS-OXCMSG])."""
    match = _SUBJECT_PREFIX.match(subject)
    if match is None:
        return "", subject
    return match.group(0), subject[match.end():]


def importance(parsed: EmailMessage) -> int:
    """Return PidTagImportance (0 low, 1 normal, 2 high) from Importance or X-Priority."""
    text = (header_text(parsed, "Importance") or header_text(parsed, "X-Priority")).lower()
    if text.startswith(("high", "1", "2")):
        return 2
    if text.startswith(("low", "4", "5")):
        return 0
    return 1


def sent_date(parsed: EmailMessage) -> datetime | None:
    """Return the Date header as an aware datetime, or None when missing or unparsable."""
    try:
        value = parsedate_to_datetime(header_text(parsed, "Date"))
    except (TypeError, ValueError, IndexError):
        return None
    return value if value.tzinfo is not None else None


def sender_properties(parsed: EmailMessage) -> Properties:
    """Return the sender and sent-representing properties from From (or Sender)."""
    found = addresses(parsed, "From") or addresses(parsed, "Sender")
    if not found or not any(found[0]):
        return {}
    name, address = found[0]
    name = name or address
    values: dict[int, PropValue] = {}
    for ids in ((p.PID_SENDER_NAME, p.PID_SENDER_EMAIL_ADDRESS, p.PID_SENDER_ADDRESS_TYPE,
                 p.PID_SENDER_SMTP_ADDRESS, p.PID_SENDER_ENTRY_ID, p.PID_SENDER_SEARCH_KEY),
                (p.PID_SENT_REPRESENTING_NAME, p.PID_SENT_REPRESENTING_EMAIL_ADDRESS,
                 p.PID_SENT_REPRESENTING_ADDRESS_TYPE, p.PID_SENT_REPRESENTING_SMTP_ADDRESS,
                 p.PID_SENT_REPRESENTING_ENTRY_ID, p.PID_SENT_REPRESENTING_SEARCH_KEY)):
        values[pt.tag(ids[0], pt.PT_UNICODE)] = name
        if address:
            values[pt.tag(ids[1], pt.PT_UNICODE)] = address
            values[pt.tag(ids[2], pt.PT_UNICODE)] = "SMTP"
            values[pt.tag(ids[3], pt.PT_UNICODE)] = address
            values[pt.tag(ids[4], pt.PT_BINARY)] = one_off_entry_id(name, address)
            values[pt.tag(ids[5], pt.PT_BINARY)] = search_key(address)
    return values


def one_off_entry_id(name: str, address: str) -> bytes:
    """Return the one-off EntryID of an SMTP address ([MS-OXCDATA] §2.2.5.1)."""
    strings = b"".join((text + "\0").encode("utf-16-le") for text in (name, "SMTP", address))
    return bytes(4) + _ONE_OFF_PROVIDER + (0).to_bytes(2, "little") + _ONE_OFF_FLAGS.to_bytes(2, "little") + strings


def search_key(address: str) -> bytes:
    """Return the search key of an SMTP address: ``SMTP:ADDRESS`` upper-case, NUL-terminated."""
    return ("SMTP:" + address.upper()).encode("ascii", "replace") + b"\0"


def header_block_properties(raw: bytes) -> Properties:
    """Return PidTagTransportMessageHeaders: the header block as it came, decoded as UTF-8."""
    end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0), default=len(raw))
    text = raw[:end].decode("utf-8", "replace")
    return {pt.tag(p.PID_TRANSPORT_MESSAGE_HEADERS, pt.PT_UNICODE): text + "\r\n\r\n"} if text else {}


def recipient_rows(parsed: EmailMessage) -> list[dict[int, PropValue]]:
    """Return one recipient-table row per address in To, Cc and Bcc (groups without members give none)."""
    rows = []
    for kind, header in ((p.RECIPIENT_TO, "To"), (p.RECIPIENT_CC, "Cc"), (p.RECIPIENT_BCC, "Bcc")):
        for name, address in addresses(parsed, header):
            if address:
                rows.append(recipient_row(kind, name or address, address))
    return rows


def recipient_row(kind: int, name: str, address: str) -> dict[int, PropValue]:
    """Return the properties of one recipient."""
    return {
        pt.tag(p.PID_RECIPIENT_TYPE, pt.PT_LONG): kind,
        pt.tag(p.PID_RESPONSIBILITY, pt.PT_BOOLEAN): False,
        pt.tag(p.PID_OBJECT_TYPE, pt.PT_LONG): p.OBJECT_TYPE_MAIL_USER,
        pt.tag(p.PID_ENTRY_ID, pt.PT_BINARY): one_off_entry_id(name, address),
        pt.tag(p.PID_DISPLAY_NAME, pt.PT_UNICODE): name,
        pt.tag(p.PID_ADDRESS_TYPE, pt.PT_UNICODE): "SMTP",
        pt.tag(p.PID_EMAIL_ADDRESS, pt.PT_UNICODE): address,
        pt.tag(p.PID_SEARCH_KEY, pt.PT_BINARY): search_key(address),
        pt.tag(p.PID_DISPLAY_TYPE, pt.PT_LONG): 0,
        pt.tag(p.PID_SEND_RICH_INFO, pt.PT_BOOLEAN): False,
        pt.tag(p.PID_SMTP_ADDRESS, pt.PT_UNICODE): address,
    }


def display_recipients(rows: list[dict[int, PropValue]]) -> Properties:
    """Return DisplayTo/Cc/Bcc: the recipients' names joined by '; '."""
    values: dict[int, PropValue] = {}
    for kind, prop_id in ((p.RECIPIENT_TO, p.PID_DISPLAY_TO), (p.RECIPIENT_CC, p.PID_DISPLAY_CC),
                          (p.RECIPIENT_BCC, p.PID_DISPLAY_BCC)):
        names = [str(r[pt.tag(p.PID_DISPLAY_NAME, pt.PT_UNICODE)]) for r in rows
                 if r[pt.tag(p.PID_RECIPIENT_TYPE, pt.PT_LONG)] == kind]
        values[pt.tag(prop_id, pt.PT_UNICODE)] = "; ".join(names)
    return values


def split_parts(parsed: EmailMessage) -> tuple[list[EmailMessage], list[EmailMessage]]:
    """Return (the body parts: first text/plain and first text/html, the attachment parts)."""
    bodies: dict[str, EmailMessage] = {}
    attachments = []
    for part in leaf_parts(parsed):
        kind = part.get_content_type()
        disposition = part.get_content_disposition()
        if kind in ("text/plain", "text/html") and disposition != "attachment" and kind not in bodies:
            bodies[kind] = part
        else:
            attachments.append(part)
    return list(bodies.values()), attachments


def leaf_parts(part: EmailMessage) -> list[EmailMessage]:
    """Return the parts that carry content, in order; message/rfc822 parts count as one leaf."""
    if part.is_multipart() and part.get_content_type() != "message/rfc822":
        # A multipart's payload is the list of its parts, messages like itself.
        return [leaf for child in part.get_payload() for leaf in leaf_parts(child)]  # type: ignore[arg-type]
    return [part]


def body_properties(parts: list[EmailMessage]) -> Properties:
    """Return Body, Html and NativeBody from the chosen body parts."""
    values: dict[int, PropValue] = {}
    for part in parts:
        text = part_text(part)
        if not text:
            continue  # libpff reports an empty body value as missing data
        if part.get_content_type() == "text/plain":
            values[pt.tag(p.PID_BODY, pt.PT_UNICODE)] = text
        else:
            values[pt.tag(p.PID_HTML, pt.PT_BINARY)] = text.encode("utf-8")
    if values:
        html_only = pt.tag(p.PID_BODY, pt.PT_UNICODE) not in values
        values[pt.tag(p.PID_NATIVE_BODY, pt.PT_LONG)] = p.NATIVE_BODY_HTML if html_only else p.NATIVE_BODY_PLAIN
    return values


def part_text(part: EmailMessage) -> str:
    """Return a text part decoded to str, replacing what its declared charset cannot decode."""
    payload = decoded_body(part) or b""
    charset = part.get_content_charset() or "us-ascii"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("latin-1")


def part_bytes(part: EmailMessage) -> bytes:
    """Return an attachment's content decoded (a message/rfc822 part gives the attached message's bytes)."""
    return decoded_body(part) or b""


def attachment_data(part: EmailMessage) -> bytes | StreamedBinary:
    """Return an attachment's content: a big base64 body as a stream decoded while it is written."""
    body = base64_body(part)
    if body is not None and len(body) >= STREAM_FROM and part.get_content_type() != "message/rfc822":
        streamed = streamed_base64(body)
        if streamed is not None:
            return streamed
    return part_bytes(part)


def attachment(part: EmailMessage, number: int, received: datetime) -> MapiAttachment:
    """Return the MAPI form of one attachment part: by value, or as an embedded message for message/rfc822."""
    data = attachment_data(part)
    kind = part.get_content_type()
    filename = decode_words(part_filename(part)) or _default_filename(kind, number)
    content_id = header_text(part, "Content-ID").strip("<>")
    inline = part.get_content_disposition() == "inline" and bool(content_id)
    values: dict[int, PropValue] = {
        pt.tag(p.PID_ATTACH_METHOD, pt.PT_LONG): p.ATTACH_BY_VALUE,
        pt.tag(p.PID_ATTACH_DATA, pt.PT_BINARY): data,
        pt.tag(p.PID_ATTACH_LONG_FILENAME, pt.PT_UNICODE): filename,
        pt.tag(p.PID_ATTACH_FILENAME, pt.PT_UNICODE): filename,
        pt.tag(p.PID_DISPLAY_NAME, pt.PT_UNICODE): filename,
        pt.tag(p.PID_ATTACH_MIME_TAG, pt.PT_UNICODE): kind,
        pt.tag(p.PID_RENDERING_POSITION, pt.PT_LONG): -1,
        pt.tag(p.PID_ATTACH_NUMBER, pt.PT_LONG): number,
        pt.tag(p.PID_OBJECT_TYPE, pt.PT_LONG): p.OBJECT_TYPE_ATTACHMENT,
        pt.tag(p.PID_ATTACH_SIZE, pt.PT_LONG): 0,
        pt.tag(p.PID_CREATION_TIME, pt.PT_SYSTIME): received,
        pt.tag(p.PID_LAST_MODIFICATION_TIME, pt.PT_SYSTIME): received,
        pt.tag(p.PID_ATTACH_FLAGS, pt.PT_LONG): p.ATTACH_FLAG_RENDERED_IN_BODY if inline else 0,
        pt.tag(p.PID_ATTACHMENT_HIDDEN, pt.PT_BOOLEAN): inline,
    }
    if "." in filename:
        values[pt.tag(p.PID_ATTACH_EXTENSION, pt.PT_UNICODE)] = filename[filename.rindex("."):]
    if content_id:
        values[pt.tag(p.PID_ATTACH_CONTENT_ID, pt.PT_UNICODE)] = content_id
    if kind == "message/rfc822" and data:
        assert isinstance(data, bytes)  # attachment_data streams no message/rfc822
        return embedded_attachment(without_nul(values), data, received)
    return MapiAttachment(without_nul(values))


def part_filename(part: EmailMessage) -> str:
    """Return the file name a part gives (Content-Disposition filename, else Content-Type name), unfolded and its
    raw 8-bit bytes read as text, where the email package would make them U+FFFD."""
    decoded = EmailMessage()
    for name in ("Content-Disposition", "Content-Type"):
        for value in header_values(part, name)[:1]:
            decoded[name] = value
    return decoded.get_filename() or ""


def _default_filename(kind: str, number: int) -> str:
    return "message.eml" if kind == "message/rfc822" else f"attachment-{number + 1}"


def embedded_attachment(values: dict[int, PropValue], raw: bytes, received: datetime) -> MapiAttachment:
    """Return an attachment holding ``raw`` as an embedded message (attach method 5)."""
    inner = mapi_from_mime(parse_mime(raw), raw, received)
    del values[pt.tag(p.PID_ATTACH_DATA, pt.PT_BINARY)]
    values[pt.tag(p.PID_ATTACH_METHOD, pt.PT_LONG)] = p.ATTACH_EMBEDDED_MSG
    subject = inner.props.get(pt.tag(p.PID_SUBJECT, pt.PT_UNICODE))
    if subject:
        values[pt.tag(p.PID_DISPLAY_NAME, pt.PT_UNICODE)] = subject
    flags_tag = pt.tag(p.PID_MESSAGE_FLAGS, pt.PT_LONG)
    inner_flags = inner.props[flags_tag]
    assert isinstance(inner_flags, int)  # a PT_LONG
    inner.props[flags_tag] = int(inner_flags) | p.MSGFLAG_READ
    return MapiAttachment(values, inner)


def flag_properties(message: Message, base_flags: int) -> Properties:
    """Return MessageFlags and the follow-up and last-verb properties for the message's IMAP flags."""
    flags = message.flags
    values: dict[int, PropValue] = {}
    message_flags = base_flags
    if Flag.SEEN in flags:
        message_flags |= p.MSGFLAG_READ
    if Flag.DRAFT in flags:
        message_flags |= p.MSGFLAG_UNSENT
    values[pt.tag(p.PID_MESSAGE_FLAGS, pt.PT_LONG)] = message_flags
    if Flag.FLAGGED in flags:
        values[pt.tag(p.PID_FLAG_STATUS, pt.PT_LONG)] = p.FLAG_STATUS_FOLLOWUP_FLAGGED
        values[pt.tag(p.PID_FOLLOWUP_ICON, pt.PT_LONG)] = p.FOLLOWUP_ICON_RED
        values[pt.tag(p.PID_TODO_ITEM_FLAGS, pt.PT_LONG)] = 1
    verb = _last_verb(flags)
    if verb:
        values[pt.tag(p.PID_LAST_VERB_EXECUTED, pt.PT_LONG)] = verb[0]
        values[pt.tag(p.PID_ICON_INDEX, pt.PT_LONG)] = verb[1]
        values[pt.tag(p.PID_LAST_VERB_EXECUTION_TIME, pt.PT_SYSTIME)] = message.received
    return values


def _last_verb(flags: Flags) -> tuple[int, int] | None:
    # Outlook records one last verb; forwarding is the later action when both flags are set.
    if Flag.FORWARDED in flags:
        return p.VERB_FORWARD, _ICON_FORWARDED
    if Flag.ANSWERED in flags:
        return p.VERB_REPLY_TO_SENDER, _ICON_REPLIED
    return None


def migrator_properties(message: Message, named: dict[str, NamedProperty]) -> Properties:
    """Return migrator's named properties for the IMAP metadata, kept exactly."""
    values: dict[int, PropValue] = {
        named[p.MIGRATOR_FLAGS].tag: " ".join(sorted(f.value for f in message.flags.system)),
        named[p.MIGRATOR_RECEIVED].tag: message.received.isoformat(),
        named[p.MIGRATOR_FOLDER].tag: json.dumps(list(message.folder), ensure_ascii=False),
    }
    if message.flags.keywords:
        values[named[p.MIGRATOR_KEYWORDS].tag] = sorted(message.flags.keywords)
    return values


def raw_copy_properties(raw: bytes, parsed: EmailMessage, mapped: MapiMessage,
                        named: dict[str, NamedProperty]) -> Properties:
    """Return what keeps the raw bytes exactly: a skeleton and the size when that is smaller, else the bytes."""
    bodies, attachments = split_parts(parsed)
    leaves = [(part, "b" if part.get_content_type() == "text/plain" else "h", 0) for part in bodies]
    leaves += [(part, "a", index) for index, part in enumerate(attachments)]
    leaves.sort(key=lambda leaf: getattr(leaf[0], "span", (0, 0)))
    kept = skeleton(raw, leaves, written_sources(mapped))
    if len(kept) < len(raw):
        return {named[p.MIGRATOR_SKELETON].tag: kept, named[p.MIGRATOR_SIZE].tag: len(raw)}
    return {named[p.MIGRATOR_RAW].tag: raw}


def written_sources(mapped: MapiMessage) -> Sources:
    """Return the values about to be written that a skeleton may refer to."""
    def attachment(index: int) -> bytes | StreamedBinary | None:
        if index >= len(mapped.attachments):
            return None
        data = mapped.attachments[index].props.get(pt.tag(p.PID_ATTACH_DATA, pt.PT_BINARY))
        return data if isinstance(data, (bytes, StreamedBinary)) else None

    body = mapped.props.get(pt.tag(p.PID_BODY, pt.PT_UNICODE))
    html = mapped.props.get(pt.tag(p.PID_HTML, pt.PT_BINARY))
    return Sources(attachment, body if isinstance(body, str) else None, html if isinstance(html, bytes) else None)
