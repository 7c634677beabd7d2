"""Batching and read-ahead keep memory bounded and order intact."""

from datetime import datetime, timezone

import pytest

from migrator.message import Message
from migrator.pipeline.batches import batched, prefetched

WHEN = datetime(2024, 1, 1, tzinfo=timezone.utc)


def messages(sizes):
    return [Message(b"x" * size, received=WHEN, uid=str(i)) for i, size in enumerate(sizes)]


def test_batches_respect_count_and_bytes_but_never_split_a_message():
    got = list(batched(messages([10, 10, 10, 50, 10]), max_messages=2, max_bytes=40))
    assert [[m.uid for m in b] for b in got] == [["0", "1"], ["2"], ["3"], ["4"]]


def test_prefetch_keeps_order_and_passes_huge_messages():
    source = messages([5, 500, 5, 5])
    assert [m.uid for m in prefetched(iter(source), max_bytes=100)] == ["0", "1", "2", "3"]


def test_prefetch_raises_the_readers_error_after_what_was_read():
    def failing():
        yield from messages([1, 1])
        raise ConnectionError("dropped")

    seen = []
    with pytest.raises(ConnectionError, match="dropped"):
        for message in prefetched(failing()):
            seen.append(message.uid)
    assert seen == ["0", "1"]


def test_closing_early_stops_the_reader():
    stream = prefetched(iter(messages([10] * 100)), max_bytes=30)
    assert next(stream).uid == "0"
    stream.close()
