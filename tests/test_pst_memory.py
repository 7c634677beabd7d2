"""The memory the PST writer needs for one message, and the base64 decoding that keeps it small."""

from __future__ import annotations

import base64
import email
import tracemalloc
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from migrator.message import Message
from migrator.stores.pst.messaging_writer import PstWriter
from migrator.stores.pst.mime_tree import decoded_body, parse_message
from tests.support.pst_corpus import big_mail

# Beside the message itself the writer needs its decoded attachment (3/4 of the message's size); one more
# copy of the encoded body crosses this bound (the writer once needed 5.5, then 1.75).
PEAK_PER_MESSAGE_BYTE = 1.2


def test_writing_a_big_message_needs_little_more_than_its_decoded_attachment(tmp_path: Path) -> None:
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
