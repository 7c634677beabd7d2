"""What a PST keeps of each message's raw bytes (convert/raw_copy.py), and that it always gives them back.

Every message must come back byte for byte, whichever way it was kept: a skeleton whose part bodies are
references to the stored attachments and bodies, a skeleton that keeps everything (compressed), or the raw
bytes themselves. The size that buys is a documented property, checked here on a corpus shaped like the
benchmark's.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import zlib
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.corpus import corpus as shared_corpus
from migrator.core.message import Message
from migrator.endpoints.endpoint import parse_endpoint
from migrator.stores import open_store
from migrator.stores.pst.convert.mapi_from_mime import mapi_from_message
from migrator.stores.pst.convert.raw_copy import MAGIC, RebuildError, Sources, base64_lines, canonical_length, rebuild
from migrator.stores.pst.ltp import props as pt
from migrator.stores.pst.messaging import props as p
from migrator.stores.pst.messaging.namemap_writer import writer_named_properties
from migrator.stores.pst.messaging.reader import read_message
from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb import permute
from migrator.stores.pst.ndb.reader import Ndb, is_internal
from migrator.stores.pst.reader import PstReader
from migrator.stores.pst.store import PstStore
from migrator.stores.pst.validate import validate
from tests.support.pst_corpus import awkward, corpus

PDF = bytes(range(256)) * 40  # 10 KB of every byte value


def attachment_mail(encoded: bytes, *, eol: bytes = b"\r\n", tail: bytes = b"") -> bytes:
    """Return a multipart message with one attachment whose base64 body is ``encoded`` as given."""
    text = eol.join([
        b"From: a@example.com", b"To: b@example.com", b"Subject: attached", b"MIME-Version: 1.0",
        b'Content-Type: multipart/mixed; boundary="XyZ"', b"", b"--XyZ", b"Content-Type: text/plain; charset=utf-8",
        b"", "Grüße, see the file.".encode() * 4, b"--XyZ", b"Content-Type: application/pdf; name=a.pdf",
        b"Content-Transfer-Encoding: base64", b"Content-Disposition: attachment; filename=a.pdf", b"",
    ])
    return text + eol + encoded + tail + eol + b"--XyZ--" + eol


def lined(data: bytes, line: int, eol: bytes) -> bytes:
    """Return ``data`` in base64, lines of ``line`` characters joined by ``eol`` (no final line break)."""
    text = base64.b64encode(data)
    return eol.join(text[i:i + line] for i in range(0, len(text), line)) if line else text


def storage_cases() -> dict[str, bytes]:
    """Return one message per way of keeping it, and the odd ones each way must survive."""
    big = bytes(range(256)) * 1200  # 300 KB: decoded while written
    cases = {
        "base64 CRLF 76": attachment_mail(lined(PDF, 76, b"\r\n")),
        "base64 LF 76": attachment_mail(lined(PDF, 76, b"\n"), eol=b"\n"),
        "base64 64 with final break": attachment_mail(lined(PDF, 64, b"\r\n"), tail=b"\r\n"),
        "base64 one line": attachment_mail(lined(PDF, 0, b"")),
        "base64 big streamed": attachment_mail(lined(big, 76, b"\r\n")),
        "base64 big one line": attachment_mail(lined(big, 0, b"")),
        "base64 72 not a multiple of 4 kept": attachment_mail(lined(PDF, 78, b"\r\n")),
        "base64 ragged lines kept": attachment_mail(lined(PDF, 76, b"\r\n").replace(b"\r\n", b"", 1)),
        "base64 big ragged kept": attachment_mail(lined(big, 76, b"\r\n").replace(b"\r\n", b"\r\n\r\n", 3)),
        "base64 bits after the data kept": attachment_mail(lined(PDF, 76, b"\r\n")[:-4] + b"/x=="),
        "base64 big bits after the data kept": attachment_mail(lined(big + b"\xff", 76, b"\r\n")[:-4] + b"/x=="),
        "base64 stray character kept": attachment_mail(lined(PDF, 76, b"\r\n").replace(b"A", b"A!", 1)),
        "base64 big stray character kept": attachment_mail(lined(big, 76, b"\r\n").replace(b"A", b"A\t", 1)),
        "base64 trailing junk": attachment_mail(lined(PDF, 76, b"\r\n"), tail=b"\r\n\r\n  \r\n"),
        "headers only": b"From: a@example.com\r\nSubject: nothing else\r\n",
        "no final newline": b"From: a@example.com\r\nSubject: x\r\n\r\n" + b"last line without newline " * 10,
        "8-bit latin-1 body": (b"From: a@example.com\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
                               b"Content-Transfer-Encoding: 8bit\r\n\r\n"
                               + "Grüße aus Zürich\r\n".encode("latin-1") * 9),
        "invalid utf-8 body": (b"From: a@example.com\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                               + b"caf\xe9 \xff\xfe broken " * 9),
        "NUL in body": b"From: a@example.com\r\n\r\n" + b"a NUL \x00 here and there\x00\r\n" * 6,
        "quoted-printable": (b"From: a@example.com\r\nContent-Type: text/plain; charset=utf-8\r\n"
                             b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                             + b"Gr=C3=BC=C3=9Fe =\r\nsoft\r\n" * 9),
        "broken MIME": (b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=\"nope\"\r\n\r\n"
                        b"--other\r\nno part of this is where it says\r\n" * 5),
        "tiny": b"Subject: x\r\n\r\ny",
        "empty": b"",
    }
    return cases


def references(reader: PstReader, uid: str) -> str | None:
    """Return the kinds of the references in message ``uid``'s skeleton ('a', 'b', 'h'), None when it keeps
    the raw bytes."""
    props = read_message(reader.ndb, int(uid)).props
    if reader.named.migrator[p.MIGRATOR_RAW] in props:
        return None
    value = props.raw(reader.named.migrator[p.MIGRATOR_SKELETON])
    assert value is not None and value[:4] == MAGIC
    payload = zlib.decompress(value[5:]) if value[4:5] == b"z" else value[5:]
    return "".join(reference[1] for reference in json.loads(payload.split(b"\n", 1)[0])["refs"])


def way_kept(reader: PstReader, uid: str) -> str:
    """Return how message ``uid`` keeps its bytes: 'raw', 'references' or 'compressed'."""
    kinds = references(reader, uid)
    return "raw" if kinds is None else "references" if kinds else "compressed"


def write_and_read(path: Path, messages: list[Message], **options: int) -> tuple[list[str], dict[str, bytes]]:
    """Write ``messages`` into a PST, validate it, and return their uids and the bytes read back by uid."""
    uids = []
    with PstStore(parse_endpoint(f"pst:{path}"), readonly=False, **options) as store:
        for message in messages:
            (result,) = store.append_batch(store.ensure_folder(message.folder), [message])
            assert result.ok, result.error
            uids.append(result.uid)
    for part in path.parent.glob("*.pst"):
        assert validate(part) == [], part
    back = {}
    with open_store(parse_endpoint(f"pst:{path}")) as source:
        for folder in source.list_folders():
            back.update({m.uid: m.raw for m in source.messages(folder.path)})
    return uids, back


def test_every_way_of_keeping_a_message_gives_back_its_exact_bytes(tmp_path: Path) -> None:
    cases = storage_cases()
    messages = [Message(raw, folder=("INBOX",)) for raw in cases.values()]
    uids, back = write_and_read(tmp_path / "cases.pst", messages)
    with PstReader(tmp_path / "cases.pst") as reader:
        kinds = {name: references(reader, uid) for name, uid in zip(cases, uids, strict=True)}
    for name, uid in zip(cases, uids, strict=True):
        assert back[uid] == cases[name], name
    for name, found in kinds.items():
        if name.startswith("base64"):  # the attachment a reference unless kept; the text body one in all
            assert found == ("b" if name.endswith("kept") else "ba"), name
    assert kinds["8-bit latin-1 body"] == kinds["no final newline"] == "b"
    assert kinds["broken MIME"] == "a"  # no delimiter: the body is one leaf, stored as an attachment as it is
    assert kinds["invalid utf-8 body"] == kinds["NUL in body"] == kinds["quoted-printable"] == ""  # compressed
    assert kinds["headers only"] is kinds["tiny"] is kinds["empty"] is None  # raw


def test_every_corpus_message_comes_back_exactly(tmp_path: Path) -> None:
    messages = shared_corpus(large=True) + corpus() + awkward()
    uids, back = write_and_read(tmp_path / "corpus.pst", messages)
    assert [back[uid] for uid in uids] == [m.raw for m in messages]
    with PstReader(tmp_path / "corpus.pst") as reader:
        ways = Counter(way_kept(reader, uid) for uid in uids)
    assert ways["references"] and ways["compressed"] and ways["raw"]


def test_scan_reports_the_size_of_the_original(tmp_path: Path) -> None:
    raw = storage_cases()["base64 big streamed"]
    path = tmp_path / "size.pst"
    write_and_read(path, [Message(raw, folder=("INBOX",))])
    with open_store(parse_endpoint(f"pst:{path}")) as source:
        [ref] = source.scan(("INBOX",)).refs
    assert ref.size == len(raw)


def test_a_skeleton_whose_sources_changed_refuses_to_give_back_other_bytes() -> None:
    raw = storage_cases()["base64 CRLF 76"]
    named = writer_named_properties()
    mapped = mapi_from_message(Message(raw), named)
    kept = mapped.props[named[p.MIGRATOR_SKELETON].tag]
    assert isinstance(kept, bytes) and len(kept) < len(raw) // 10
    body = mapped.props[pt.tag(p.PID_BODY, pt.PT_UNICODE)]
    assert isinstance(body, str)
    assert rebuild(kept, Sources(lambda index: PDF, body, None)) == raw
    changed = PDF[:-1] + b"?"
    with pytest.raises(RebuildError, match="does not rebuild into the message that was written"):
        rebuild(kept, Sources(lambda index: changed, body, None))
    with pytest.raises(RebuildError, match="refers to a missing attachment"):
        rebuild(kept, Sources(lambda index: None, body, None))
    with pytest.raises(RebuildError, match="damaged"):
        rebuild(kept[:-9], Sources(lambda index: PDF, body, None))


def edit_text_in_place(path: Path, old: str, new: str) -> int:
    """Replace ``old`` by ``new`` (as long) in every data block holding it as UTF-16, as Outlook saves an edited
    body, each block's CRC made right again; return how many blocks changed."""
    data = bytearray(path.read_bytes())
    ndb = Ndb(bytes(data))
    changed = 0
    for entry in ndb.blocks():
        if is_internal(entry.bid):
            continue
        payload = ndb.payload(entry)
        edited = payload.replace(old.encode("utf-16-le"), new.encode("utf-16-le"))
        if edited == payload:
            continue
        stored = permute.encode(edited) if ndb.header.crypt_method == fmt.CRYPT_PERMUTE else edited
        data[entry.ib:entry.ib + entry.cb] = stored
        trailer = entry.ib + ndb.layout.block_size_on_disk(entry.cb) - ndb.layout.block_trailer.size
        cb, signature, _, bid = ndb.layout.block_trailer.unpack_from(data, trailer)
        ndb.layout.block_trailer.pack_into(data, trailer, cb, signature, fmt.crc32(stored), bid)
        changed += 1
    path.write_bytes(bytes(data))
    return changed


def test_a_message_edited_in_outlook_is_read_as_outlook_now_holds_it(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    # Its stored copy refers to a body that is no longer there: the message is not left out for it.
    raw = (b"From: ann@example.com\r\nTo: bob@example.com\r\nSubject: notes\r\n"
           b"Message-ID: <edited@example.com>\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + b"Meeting notes, line by line.\r\n" * 200)
    path = tmp_path / "edited.pst"
    (uid,), back = write_and_read(path, [Message(raw, folder=("INBOX",))])
    assert back[uid] == raw
    with PstReader(path) as reader:
        assert "b" in (references(reader, uid) or "")  # the body is kept once, as Outlook's body
    assert edit_text_in_place(path, "Meeting", "Mooting") >= 1
    with caplog.at_level(logging.WARNING), open_store(parse_endpoint(f"pst:{path}")) as source:
        (message,) = list(source.messages(("INBOX",)))
    assert b"Mooting notes, line by line." in message.raw and b"Meeting" not in message.raw
    assert b"Subject: notes" in message.raw
    assert "read from its Outlook properties instead" in caplog.text


# --- the pure parts --------------------------------------------------------------------------------------


@given(st.binary(max_size=3000), st.sampled_from([(76, b"\r\n"), (76, b"\n"), (64, b"\n"), (4, b"\r\n"), (0, b"")]),
       st.integers(1, 500))
def test_base64_lines_match_the_standard_encoder_however_the_bytes_come(data: bytes, layout: tuple[int, bytes],
                                                                        cut: int) -> None:
    line, eol = layout
    pieces = [data[i:i + cut] for i in range(0, len(data), cut)] or [b""]
    assert b"".join(base64_lines(pieces, line, eol)) == lined(data, line, eol)


@given(st.binary(min_size=1, max_size=600), st.sampled_from([(76, b"\r\n"), (76, b"\n"), (8, b"\n"), (0, b"")]),
       st.integers(0, 2000), st.sampled_from([b"", b"A", b"=", b"\n", b"\r", b"!", b"\r\n", b"AAAA", b"=="]),
       st.sampled_from([b"", b"\r\n", b"\n\n", b" \r\n"]))
def test_canonical_length_says_exactly_when_encoding_the_decoded_bytes_gives_the_body(
        data: bytes, layout: tuple[int, bytes], where: int, insert: bytes, tail: bytes) -> None:
    line, eol = layout
    body = lined(data, line, eol)
    where = min(where, len(body))
    body = body[:where] + insert + body[where:] + tail
    decoded = binascii.a2b_base64(body) if _decodes(body) else b""
    found = canonical_length(memoryview(body), line, eol, len(decoded))
    content = body.rstrip(b"\r\n\t ")
    assert (found is not None) == (bool(decoded) and lined(decoded, line, eol) == content)
    assert found is None or found == len(content)


def _decodes(body: bytes) -> bool:
    try:
        binascii.a2b_base64(body)
    except binascii.Error:
        return False
    return True


# --- the size -------------------------------------------------------------------------------------------


def test_a_pst_of_mail_like_the_benchmarks_is_at_most_a_fifth_bigger_than_the_mail(tmp_path: Path) -> None:
    from bench.corpus import load_corpus

    mail = load_corpus(400, tmp_path / "corpus")
    messages = [Message(file.read_bytes().replace(b"\n", b"\r\n"), folder=tuple(folder.name.split("/")))
                for folder in mail.folders for file in sorted(folder.directory.iterdir())]
    size = sum(len(m.raw) for m in messages)
    path = tmp_path / "bench.pst"
    uids, back = write_and_read(path, messages)
    assert [back[uid] for uid in uids] == [m.raw for m in messages]
    assert path.stat().st_size <= 1.2 * size, path.stat().st_size / size


# --- big archives in parts -------------------------------------------------------------------------------


def split_messages() -> list[Message]:
    """Return 12 messages of about 60 KB over three folders, one of them only in the later messages."""
    folders = [("INBOX",), ("Archive", "2024"), ("INBOX",), ("Late",)]
    return [Message(attachment_mail(lined(PDF * 6 + bytes([n]), 76, b"\r\n")), folder=folders[min(n % 4, n // 3)])
            for n in range(12)]


def test_parts_are_named_as_outlook_users_expect_and_read_as_one_store(tmp_path: Path) -> None:
    messages = split_messages()
    path = tmp_path / "archive.pst"
    uids, back = write_and_read(path, messages, part_size=150_000)
    assert sorted(part.name for part in tmp_path.iterdir()) == ["archive-2.pst", "archive-3.pst", "archive-4.pst",
                                                                "archive.pst"]
    assert len(set(uids)) == len(uids) and any(":" in uid for uid in uids)
    assert [back[uid] for uid in uids] == [m.raw for m in messages]  # every part's messages, by the writer's uids
    with open_store(parse_endpoint(f"pst:{path}")) as source:
        folders = [folder.path for folder in source.list_folders()]
        assert sorted(set(folders)) == sorted(folders)  # merged: each path once
        assert {m.folder for m in messages} <= set(folders)
        for folder in {m.folder for m in messages}:
            scan = list(source.scan(folder).refs)
            want = [uid for uid, m in zip(uids, messages, strict=True) if m.folder == folder]
            assert [ref.uid for ref in scan] == want  # in part order, stable: the uids the writer gave
            assert [ref.size for ref in scan] == [len(m.raw) for m in messages if m.folder == folder]
            assert source.probe_folder(folder).messages == len(want)  # type: ignore[union-attr]
            fetched = list(source.fetch(folder, reversed(scan[1:])))
            assert [m.uid for m in fetched] == want[1:][::-1]


def test_verify_against_a_split_archive_finds_every_message(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from migrator.cli import main

    source = tmp_path / "mail"
    with open_store(parse_endpoint(f"eml:{source}"), readonly=False) as eml:
        for message in split_messages():
            eml.append_batch(eml.ensure_folder(message.folder), [message])
    target = f"pst:{tmp_path / 'archive.pst'}"
    assert main(["copy", "--no-state", "--quiet", f"eml:{source}", target + "?part_size=150KB"]) == 0
    assert (tmp_path / "archive-3.pst").exists()
    capsys.readouterr()
    assert main(["verify", f"eml:{source}", target]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "every source message is in the target"
