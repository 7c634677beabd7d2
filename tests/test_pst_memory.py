"""The memory the PST writer and reader need for one message, and the base64 decoding that keeps it small."""

from __future__ import annotations

import base64
import binascii
import email
import tracemalloc
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from migrator.core.message import Message
from migrator.endpoints.endpoint import parse_endpoint
from migrator.stores import open_store
from migrator.stores.pst.convert.mime_tree import decoded_body, parse_message
from migrator.stores.pst.convert.streamed_base64 import streamed_base64
from migrator.stores.pst.reader import PstReader
from migrator.stores.pst.writer import PstWriter
from tests.support.pst_corpus import big_mail

# Beside the message itself the writer needs a few pieces of its attachment (0.04 now); a decoded copy of
# the attachment (3/4 of the message) crosses this bound. It once needed 5.5, then 1.75, then 1.2.
PEAK_PER_MESSAGE_BYTE = 0.1


def test_writing_a_big_message_needs_little_more_than_the_message(tmp_path: Path) -> None:
    raw, _, _ = big_mail(1, 7_500_000)
    message = Message(raw, folder=("INBOX",))
    with open(tmp_path / "memory.pst", "w+b") as file:
        writer = PstWriter(file, "memory")
        tracemalloc.start()
        try:
            writer.add_message(message.folder, message)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < PEAK_PER_MESSAGE_BYTE * len(raw)


def test_the_memory_kept_per_message_written_is_small(tmp_path: Path) -> None:
    """Contents-table rows wait on disk until the file is finished, not as properties in memory."""
    messages = [
        Message(b"From: a%d@example.org\r\nTo: b@example.org\r\nSubject: message %d\r\n\r\nbody\r\n" % (n, n),
                folder=("INBOX",))
        for n in range(2000)
    ]
    with open(tmp_path / "many.pst", "w+b") as file:
        writer = PstWriter(file, "many", scratch=str(tmp_path))
        writer.add_message(("INBOX",), messages[0])  # folders, named properties and caches made once
        tracemalloc.start()
        try:
            for message in messages[1:]:
                writer.add_message(message.folder, message)
            kept = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        writer.finish()
    assert kept / len(messages) < 600  # bytes per message: 345 now, 1 235 while the rows stayed in memory


# Reading a message back holds it once, in a buffer that grows by an eighth at most; a list of its blocks joined
# at the end held it twice (2.0).
READ_PEAK_PER_MESSAGE_BYTE = 1.3


def test_reading_a_big_message_holds_it_about_once(tmp_path: Path) -> None:
    raw, _, _ = big_mail(2, 7_500_000)
    path = tmp_path / "big.pst"
    with open_store(parse_endpoint(f"pst:{path}"), readonly=False) as store:
        assert all(r.ok for r in store.append_batch(store.ensure_folder(("INBOX",)), [Message(raw, folder=("INBOX",))]))
    with PstReader(path) as pst:
        [folder] = [f for f in pst.folders() if f.count]
        refs = list(pst.scan(folder))
        tracemalloc.start()
        try:
            [message] = list(pst.fetch(folder, refs))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert message.raw == raw
    assert peak < READ_PEAK_PER_MESSAGE_BYTE * len(raw)


@given(st.binary(max_size=60), st.integers(0, 3),
       st.lists(st.tuples(st.integers(0, 90), st.sampled_from([b"\r\n", b"\n", b"=", b" ", b"*", b"\xe9"])),
                max_size=3),
       st.sampled_from(["base64", "BASE64", "base64 ", "7bit"]))
def test_decoded_body_decodes_as_the_standard_library(
    data: bytes, cut: int, noise: list[tuple[int, bytes]], encoding: str
) -> None:
    body = bytearray(base64.encodebytes(data)[:-cut or None])
    for position, extra in noise:
        body[position:position] = extra
    raw = f"Content-Transfer-Encoding: {encoding}\r\n\r\n".encode() + bytes(body)
    assert decoded_body(parse_message(raw)) == email.message_from_bytes(raw).get_payload(decode=True)
    assert parse_message(raw).get_payload(decode=True) == email.message_from_bytes(raw).get_payload(decode=True)


@given(st.binary(max_size=200), st.integers(0, 3), st.integers(1, 40),
       st.lists(st.tuples(st.integers(0, 300), st.sampled_from([b"\r\n", b"\n", b"=", b"==", b" ", b"*", b"\xe9"])),
                max_size=4))
def test_a_streamed_body_joins_to_what_the_whole_decodes_to(
    data: bytes, cut: int, piece: int, noise: list[tuple[int, bytes]]
) -> None:
    body = bytearray(base64.encodebytes(data)[:-cut or None])
    for position, extra in noise:
        body[position:position] = extra
    streamed = streamed_base64(memoryview(bytes(body)), piece)
    try:
        whole = binascii.a2b_base64(body)
    except ValueError:
        assert streamed is None  # the caller's lenient path decides, as it did before
        return
    assert streamed is not None, "only a pad far before the end is decoded whole"
    assert len(streamed) == len(whole)
    assert b"".join(streamed.pieces()) == whole
    assert b"".join(streamed.pieces()) == whole, "a stream can be read again"


def test_a_well_formed_body_is_streamed_in_pieces_of_the_size_asked_for() -> None:
    data = bytes(range(256)) * 4000
    streamed = streamed_base64(memoryview(base64.encodebytes(data)), 65536)
    assert streamed is not None
    pieces = list(streamed.pieces())
    assert b"".join(pieces) == data
    assert max(len(piece) for piece in pieces) <= 65536 * 3 // 4
