"""The PST reader on real Outlook-written files, cross-checked against pffexport and readpst."""

from __future__ import annotations

import email
import hashlib
import re
import subprocess
from email import policy
from email.utils import getaddresses
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrator.core.errors import MigratorError, StoreError
from migrator.core.folder import Role
from migrator.core.message import Flag, Message
from migrator.endpoints.endpoint import parse_endpoint
from migrator.stores import open_store
from migrator.stores.pst.convert.meta_from_mapi import mapi_date
from migrator.stores.pst.convert.mime_from_mapi import build_mime, format_address, header_field, transport_headers
from migrator.stores.pst.convert.rtf import decompress_rtf, html_from_rtf
from migrator.stores.pst.messaging import props as p
from migrator.stores.pst.messaging.reader import message_nids, read_message
from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb import permute
from migrator.stores.pst.ndb.reader import Ndb
from migrator.stores.pst.reader import PstReader
from tests.support.data import PST_SAMPLES as SAMPLES
from tests.support.pst_corpus import corpus, expected_attachments
from tests.support.tools import require_tools

READABLE = [
    "javalibpst_dist-list.pst",
    "pstsdk_sample1.pst",
    "pstsdk_sample2.pst",
    "pstsdk_submessage.pst",
    "rubymsg_200_recipients.pst",
    "rubymsg_attachAndInline.pst",
    "rubymsg_msgInMsg.pst",
]
PASSWORDED = ["javalibpst_passworded.pst", "pstsdk_test_ansi.pst", "pstsdk_test_unicode.pst"]
ITEM_DIR = re.compile(r"^[A-Z][A-Za-z]+\d{5}$")


def read_all(name: str) -> dict[tuple[str, ...], list[email.message.EmailMessage]]:
    """Return every message of a sample, parsed, by folder path."""
    with PstReader(SAMPLES / name) as pst:
        return {folder.path: [parse(m.raw) for m in pst.fetch(folder, pst.scan(folder))] for folder in pst.folders()}


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def only_message(name: str) -> email.message.EmailMessage:
    messages = [m for folder in read_all(name).values() for m in folder]
    assert len(messages) == 1
    return messages[0]


@pytest.fixture(scope="module")
def pffexport_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tools("pffexport")
    out = tmp_path_factory.mktemp("pff")
    for name in READABLE:
        subprocess.run(["pffexport", "-f", "all", "-m", "items", "-q", "-t", str(out / name), str(SAMPLES / name)],
                       check=True, capture_output=True)
    return out


def pff_counts(export: Path, root_name: str) -> dict[tuple[str, ...], int]:
    """Return the number of exported items per folder below the IPM subtree directory."""
    counts: dict[tuple[str, ...], int] = {}
    root = export / root_name
    for directory in [root, *(d for d in root.rglob("*") if d.is_dir() and not ITEM_DIR.match(d.name))]:
        if any(ITEM_DIR.match(part) for part in directory.relative_to(root).parts):
            continue  # attachments and embedded items of an item
        items = [d for d in directory.iterdir() if d.is_dir() and ITEM_DIR.match(d.name)]
        relative = directory.relative_to(root).parts
        counts[relative or (root_name,)] = len(items)
    return counts


@pytest.mark.parametrize("name", READABLE)
def test_folder_tree_and_counts_match_pffexport(name: str, pffexport_dir: Path) -> None:
    with PstReader(SAMPLES / name) as pst:
        folders = pst.folders()
        ours = {("Inbox",) if f.path == ("INBOX",) else f.path: f.count for f in folders}
        assert all(len(list(pst.scan(f))) == f.count for f in folders)
    export = pffexport_dir / f"{name}.export"
    root_name = next(d.name for d in export.iterdir() if d.name.startswith(("Top of", "Outlook")))
    theirs = {path: count for path, count in pff_counts(export, root_name).items() if count or path != (root_name,)}
    assert ours == theirs


@pytest.mark.parametrize("name", READABLE)
def test_subjects_match_pffexport(name: str, pffexport_dir: Path) -> None:
    theirs = []
    for summary in (pffexport_dir / f"{name}.export").rglob("*.txt"):
        text = summary.read_text(encoding="utf-8", errors="replace")
        top_level = sum(bool(ITEM_DIR.match(part)) for part in summary.parts) == 1  # not an attached item
        if top_level and text.startswith("Message:"):  # OutlookHeaders.txt, Contact.txt, Appointment.txt...
            theirs += [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Subject:")]
    ours = [str(m["Subject"]) for folder in read_all(name).values() for m in folder if m["Subject"]]
    assert sorted(ours) == sorted(theirs)


@pytest.mark.parametrize("name", ["pstsdk_sample1.pst", "pstsdk_sample2.pst"])
def test_jpeg_attachment_hash_equals_pffexport(name: str, pffexport_dir: Path) -> None:
    message = only_message(name)
    [attachment] = list(message.iter_attachments())
    exported = next((pffexport_dir / f"{name}.export").rglob("1_leah_thumper.jpg")).read_bytes()
    assert attachment.get_filename() == "leah_thumper.jpg"
    assert attachment.get_content_type() == "image/jpeg"
    assert len(exported) == 93142
    assert hashlib.sha256(attachment.get_content()).digest() == hashlib.sha256(exported).digest()


def test_sample1_headers_and_bodies(pffexport_dir: Path) -> None:
    message = only_message("pstsdk_sample1.pst")
    assert message["Subject"] == "Here is a sample message"
    assert message["From"] == "Terry Mahaffey <terrymah@microsoft.com>"
    assert message["Message-ID"] == (
        "<B2FDDB8BE384C94794441DB4A7F3D8B804AE624B@TK5EX14MBXC114.redmond.corp.microsoft.com>"
    )
    assert "application/ms-tnef" not in str(message["Content-Type"])
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    exported = next((pffexport_dir / "pstsdk_sample1.pst.export").rglob("Message.txt")).read_bytes()
    assert plain.encode("utf-8") == exported.replace(b"\xef\xbb\xbf", b"")
    assert "daughter" in html and html.lstrip().startswith("<html")


def test_sample1_flags_and_categories() -> None:
    with PstReader(SAMPLES / "pstsdk_sample1.pst") as pst:
        [ref] = list(pst.scan(pst.folder(("Sample1",))))
    assert ref.flags.system == {Flag.SEEN, Flag.FLAGGED}
    assert ref.flags.keywords == {"Green_Category", "Blue_Category"}
    assert ref.received is not None and ref.received.year == 2010


def test_ansi_sample_reads_like_unicode() -> None:
    unicode, ansi = only_message("pstsdk_sample1.pst"), only_message("pstsdk_sample2.pst")
    for header in ("Subject", "From", "To", "Message-ID"):
        assert ansi[header] == unicode[header]
    # The ANSI copy was saved with straight apostrophes; everything else is the same text.
    unicode_text = unicode.get_body(("plain",)).get_content().replace("\u2019", "'")
    assert ansi.get_body(("plain",)).get_content() == unicode_text


def test_embedded_message_becomes_message_rfc822() -> None:
    message = only_message("pstsdk_submessage.pst")
    [attached] = list(message.iter_attachments())
    assert attached.get_content_type() == "message/rfc822"
    inner = attached.get_content()
    assert inner["Subject"] == "This is an embedded message"
    assert "embedded" in inner.get_body(("plain", "html")).get_content().lower()


def test_message_in_message_with_japanese_subject() -> None:
    message = only_message("rubymsg_msgInMsg.pst")
    attachments = list(message.iter_attachments())
    assert len(attachments) == 2
    embedded = [a for a in attachments if a.get_content_type() == "message/rfc822"]
    assert len(embedded) == 1 and embedded[0].get_content()["Subject"]


def test_200_recipients() -> None:
    message = only_message("rubymsg_200_recipients.pst")
    addresses = getaddresses([str(message["To"])])
    assert len(addresses) == 200
    assert all("@" in address for _, address in addresses)


def test_inline_and_normal_attachment() -> None:
    message = only_message("rubymsg_attachAndInline.pst")
    related = message.get_body(("related",))
    assert related is not None  # the HTML (decoded from the RTF body) and the image it shows travel together
    assert "cid:image001.png@01D78380.EF6DC500" in message.get_body(("html",)).get_content()
    parts = {part.get_filename(): part for part in message.walk() if part.get_filename()}
    assert set(parts) == {"attach.png", "image001.png"}
    assert parts["image001.png"]["Content-ID"] == "<image001.png@01D78380.EF6DC500>"
    assert parts["image001.png"].get_content_disposition() == "inline"
    assert parts["attach.png"].get_content_disposition() == "attachment"
    assert parts["attach.png"].get_content().startswith(b"\x89PNG")


def test_drafts_and_roles() -> None:
    with PstReader(SAMPLES / "javalibpst_dist-list.pst") as pst:
        roles = {f.path: f.role for f in pst.folders() if f.role}
    assert roles == {("INBOX",): Role.INBOX, ("Sent Items",): Role.SENT, ("Drafts",): Role.DRAFTS,
                     ("Deleted Items",): Role.TRASH, ("Junk E-mail",): Role.JUNK}
    with PstReader(SAMPLES / "rubymsg_200_recipients.pst") as pst:
        [folder] = [f for f in pst.folders() if f.count]
        [ref] = list(pst.scan(folder))
    assert Flag.DRAFT in ref.flags


@pytest.mark.parametrize("name", READABLE)
def test_built_messages_are_deterministic_and_parse_cleanly(name: str) -> None:
    def raw_messages() -> list[bytes]:
        with PstReader(SAMPLES / name) as pst:
            return [m.raw for f in pst.folders() for m in pst.fetch(f, pst.scan(f))]

    first = raw_messages()
    assert first == raw_messages()
    for raw in first:
        assert b"\r\n\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
        assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
        parsed = parse(raw)
        assert parsed["MIME-Version"] == "1.0"
        assert not [d for part in parsed.walk() for d in part.defects]


@pytest.mark.parametrize("name", READABLE)
def test_message_counts_match_readpst(name: str, tmp_path: Path) -> None:
    require_tools("readpst")
    subprocess.run(["readpst", "-D", "-r", "-8", "-o", str(tmp_path), str(SAMPLES / name)], check=True,
                   capture_output=True)
    item_start = re.compile(rb"^(From |BEGIN:VEVENT|BEGIN:VCARD)", re.MULTILINE)  # mbox, calendar, contacts
    theirs = sum(len(item_start.findall(out.read_bytes())) for out in tmp_path.rglob("*") if out.is_file())
    with PstReader(SAMPLES / name) as pst:
        ours = sum(f.count for f in pst.folders())
    # readpst skips the distribution list it cannot convert; everything else must agree.
    assert ours == theirs + (1 if name == "javalibpst_dist-list.pst" else 0)


def test_a_folder_count_read_from_block_sizes_is_its_contents_table_rows(tmp_path: Path) -> None:
    many = tmp_path / "many.pst"  # 400 rows: a row matrix of several blocks
    with open_store(parse_endpoint(f"pst:{many}"), readonly=False) as store:
        folder = store.ensure_folder(("Big",))
        messages = [Message(f"Subject: {n}\r\n\r\n{n}\r\n".encode(), folder=folder) for n in range(400)]
        store.append_batch(folder, messages)
    for path in [many, *(SAMPLES / name for name in READABLE)]:
        with PstReader(path) as pst:
            counts = {f.path: (f.count, len(message_nids(pst.ndb, f.nid))) for f in pst.folders()}
        assert all(count == rows for count, rows in counts.values()), path.name
        assert path != many or counts[("Big",)] == (400, 400)


@pytest.mark.parametrize("name", PASSWORDED)
def test_password_protected_files_are_refused_clearly(name: str) -> None:
    with pytest.raises(StoreError, match="is password-protected: remove the password in Outlook first"):
        PstReader(SAMPLES / name)


def test_not_a_pst_truncated_and_missing_files(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_bytes(b"hello\n" * 200)
    with pytest.raises(StoreError, match="not a PST file"):
        PstReader(text)
    truncated = tmp_path / "half.pst"
    truncated.write_bytes((SAMPLES / "pstsdk_sample1.pst").read_bytes()[:100_000])
    with pytest.raises(StoreError, match="is truncated"):
        PstReader(truncated)
    empty = tmp_path / "empty.pst"
    empty.write_bytes(b"")
    with pytest.raises(StoreError, match="empty"):
        PstReader(empty)
    with pytest.raises(StoreError, match="cannot open"):
        PstReader(tmp_path / "absent.pst")


def test_high_encryption_is_refused_clearly(tmp_path: Path) -> None:
    data = bytearray((SAMPLES / "pstsdk_sample1.pst").read_bytes())
    data[fmt.HDR_CRYPT] = fmt.CRYPT_CYCLIC  # bCryptMethod = cyclic; the header CRC does not matter to this check
    path = tmp_path / "cyclic.pst"
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="high encryption"):
        PstReader(path)


@given(st.binary(max_size=600))
def test_permute_decode_inverts_encode(data: bytes) -> None:
    assert permute.decode(permute.encode(data)) == data
    assert len(permute.encode(data)) == len(data)


def test_permute_table_is_a_permutation() -> None:
    assert sorted(permute.encode(bytes(range(256)))) == list(range(256))


# --- migrator's own files -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def own_pst(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Message]]:
    """Return a PST migrator wrote, and the messages written (the corpus differs on each call)."""
    path = tmp_path_factory.mktemp("own") / "own.pst"
    messages = corpus()
    with open_store(parse_endpoint(f"pst:{path}"), readonly=False) as store:
        for message in messages:
            assert all(r.ok for r in store.append_batch(store.ensure_folder(message.folder), [message]))
    return path, messages


def test_own_files_read_back_exactly(own_pst: tuple[Path, list[Message]]) -> None:
    path, messages = own_pst
    expected = {(m.folder, m.raw): m for m in messages}
    with PstReader(path) as pst:
        folders = pst.folders()
        got = [m for f in folders for m in pst.fetch(f, pst.scan(f))]
        refs = {ref.uid: ref for f in folders for ref in pst.scan(f)}
    assert len(got) == len(expected)
    for message in got:
        source = expected[(message.folder, message.raw)]
        assert (message.flags, message.received, message.received.utcoffset()) == (
            source.flags, source.received, source.received.utcoffset())
        assert refs[message.uid].size == len(message.raw) and refs[message.uid].flags == source.flags
    roles = {f.path: f.role for f in folders}
    assert roles[("INBOX",)] == Role.INBOX and roles[("Sent Items",)] == Role.SENT


def test_own_files_rebuilt_from_mapi_alone_keep_the_content(own_pst: tuple[Path, list[Message]]) -> None:
    """What another program sees: the MAPI properties alone must carry subject, bodies and attachments."""
    path, messages = own_pst
    sources = {parse(m.raw)["Message-ID"]: m for m in messages}
    with PstReader(path) as pst:
        for folder in pst.folders():
            for ref in pst.scan(folder):
                mapi = read_message(pst.ndb, int(ref.uid))
                rebuilt = parse(build_mime(mapi, mapi_date(mapi)))
                source = sources[rebuilt["Message-ID"]]
                original = parse(source.raw)
                assert rebuilt["Subject"] == original["Subject"]
                assert rebuilt.get_body(("plain",)).get_content().strip() == \
                    original.get_body(("plain",)).get_content().strip()
                attachments = {part.get_filename(): hashlib.sha256(part.get_content()).hexdigest()
                               for part in rebuilt.walk() if part.get_filename() and not part.is_multipart()}
                assert attachments == expected_attachments(source)


# --- MIME building pieces ------------------------------------------------------------------------------------


def test_transport_headers_lose_their_body_structure_but_keep_folding() -> None:
    text = ("Received: from a\r\n by b\r\nContent-Type: application/ms-tnef;\r\n name=x\r\n"
            "Subject: Hi\r\nMIME-Version: 1.0\r\nX-Long:\r\n continued\r\n\r\n")
    assert transport_headers(text) == b"Received: from a\r\n by b\r\nSubject: Hi\r\nX-Long:\r\n continued\r\n"


def test_header_fields_are_encoded_folded_and_cannot_inject_headers() -> None:
    assert header_field("Subject", "Grüße") == b"Subject: =?utf-8?b?R3LDvMOfZQ==?=\r\n"
    assert header_field("Subject", "a\r\nBcc: evil@example.com") == b"Subject: a Bcc: evil@example.com\r\n"
    long = header_field("To", ", ".join(f"user{i}@example.com" for i in range(30)))
    assert all(len(line) <= 78 for line in long.split(b"\r\n"))


def test_addresses_without_an_internet_address_become_empty_groups() -> None:
    assert format_address("Bob", "bob@example.com") == "Bob <bob@example.com>"
    assert format_address("bob@example.com", "bob@example.com") == "bob@example.com"
    assert format_address('Terry "T" M', "/O=EXCHANGE/CN=TERRY") == '"Terry \\"T\\" M":;'
    assert format_address("", "") == "undisclosed-recipients:;"


# --- RTF bodies -----------------------------------------------------------------------------------------------


def test_lzfu_decompression_yields_the_announced_size() -> None:
    with PstReader(SAMPLES / "rubymsg_msgInMsg.pst") as pst:
        [folder] = [f for f in pst.folders() if f.count]
        [nid] = [int(ref.uid) for ref in pst.scan(folder)]
        compressed = read_message(pst.ndb, nid).props.raw(p.PID_RTF_COMPRESSED)
    assert compressed is not None
    rtf = decompress_rtf(compressed)
    assert len(rtf) == int.from_bytes(compressed[4:8], "little")
    assert rtf.startswith(b"{\\rtf1") and rtf.rstrip(b"\0").endswith(b"}")
    assert "I have attachments!" in (html_from_rtf(rtf) or "")


def test_uncompressed_rtf_and_encapsulated_html() -> None:
    rtf = (b"{\\rtf1\\ansi\\ansicpg1252\\fromhtml1 {\\fonttbl{\\f0 Arial;}}"
           b"{\\*\\htmltag64 <p>}\\htmlrtf {\\b\\htmlrtf0 caf\\'e9 \\u8364?\\htmlrtf }\\htmlrtf0 "
           b"{\\*\\htmltag72 </p>}\\htmlrtf\\par\\htmlrtf0}")
    stored = len(rtf).to_bytes(4, "little")
    packed = (len(rtf) + 12).to_bytes(4, "little") + stored + b"MELA" + bytes(4) + rtf
    assert decompress_rtf(packed) == rtf
    assert html_from_rtf(rtf) == "<p>caf\u00e9 \u20ac</p>"
    assert html_from_rtf(b"{\\rtf1\\ansi plain}") is None


# --- damaged files never raise anything but migrator's own errors ----------------------------------------------


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_damaged_blocks_give_one_sentence_errors(tmp_path: Path, data: st.DataObject) -> None:
    original = (SAMPLES / "pstsdk_sample1.pst").read_bytes()
    blocks = list(Ndb(original).blocks())
    damaged = bytearray(original)
    for _ in range(data.draw(st.integers(1, 3))):
        block = data.draw(st.sampled_from(blocks))
        damaged[block.ib + data.draw(st.integers(0, max(block.cb - 1, 0)))] = data.draw(st.integers(0, 255))
    path = tmp_path / "damaged.pst"
    path.write_bytes(bytes(damaged))
    try:
        with PstReader(path) as pst:
            for folder in pst.folders():
                try:
                    list(pst.fetch(folder, pst.scan(folder)))
                except MigratorError:
                    pass  # a message or folder refused with a sentence: the run goes on
    except MigratorError:
        pass
