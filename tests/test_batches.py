"""Batching and read-ahead keep memory bounded and order intact."""

import threading
import time
from datetime import datetime, timezone

import pytest

from migrator.core.message import Message, MessageRef
from migrator.pipeline.batches import LargeMessageGate, prefetched_batches, write_batches

WHEN = datetime(2024, 1, 1, tzinfo=timezone.utc)


def messages(sizes):
    return [Message(b"x" * size, received=WHEN, uid=str(i)) for i, size in enumerate(sizes)]


def uids(batches):
    return [[m.uid for m in batch] for batch in batches]


def test_batches_respect_count_and_bytes_but_never_split_a_message():
    got = prefetched_batches(iter(messages([10, 10, 10, 50, 10])), max_messages=2, max_bytes=40)
    assert uids(got) == [["0", "1"], ["2"], ["3"], ["4"]]


def test_a_message_larger_than_a_batch_has_a_batch_of_its_own():
    got = prefetched_batches(iter(messages([5, 500, 5, 5])), max_bytes=100)
    assert uids(got) == [["0"], ["1"], ["2", "3"]]


def test_the_readers_error_is_raised_after_what_was_read_before_it():
    def failing():
        yield from messages([1, 1])
        raise ConnectionError("dropped")

    seen = []
    with pytest.raises(ConnectionError, match="dropped"):
        for batch in prefetched_batches(failing()):
            seen.extend(m.uid for m in batch)
    assert seen == ["0", "1"]


def test_closing_early_stops_the_reader():
    stream = prefetched_batches(iter(messages([10] * 100)), max_bytes=30)
    assert uids([next(stream)]) == [["0", "1", "2"]]
    stream.close()


def test_a_full_batch_is_handed_over_before_the_next_message_is_read():
    second_may_come = threading.Event()

    def source():
        first, second = messages([50, 10])
        yield first
        second_may_come.wait()
        yield second

    batches = prefetched_batches(source(), max_bytes=40)
    assert uids([next(batches)]) == [["0"]], "the full batch does not wait for the next message"
    second_may_come.set()
    assert uids(batches) == [["1"]]


def test_the_reader_keeps_one_batch_ahead_of_the_writer():
    read = []

    def source():
        for message in messages([10] * 10):
            read.append(message.uid)
            yield message

    batches = prefetched_batches(source(), max_messages=2)
    assert uids([next(batches)]) == [["0", "1"]]
    deadline = time.monotonic() + 10
    while len(read) < 4 and time.monotonic() < deadline:  # the next batch is read ahead...
        time.sleep(0.01)
    time.sleep(0.05)  # ...and one more message would be a third batch in memory: it waits
    assert read == ["0", "1", "2", "3"]
    assert uids([next(batches)]) == [["2", "3"]]
    batches.close()


def refs_of(batch):
    return [MessageRef(m.uid, size=m.size) for m in batch]


def copy_folders_at_once(folders, gate, reading_hook=lambda alive: None):
    """Run write_batches over each list of messages on a thread of its own, as parallel folder
    copies do; return the most large messages ever read and not yet written."""
    alive = {"now": 0, "most": 0}
    lock = threading.Lock()

    def source(batch):
        for message in batch:
            if gate.is_large(message.size):
                reading_hook(alive)
                with lock:
                    alive["now"] += 1
                    alive["most"] = max(alive["most"], alive["now"])
            yield message

    def copy(batch):
        for written in write_batches(source(batch), refs_of(batch), gate):
            time.sleep(0.01)  # the write
            with lock:
                alive["now"] -= sum(gate.is_large(m.size) for m in written)

    threads = [threading.Thread(target=copy, args=(folder,)) for folder in folders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return alive["most"]


def test_folders_copied_at_once_hold_one_large_message_at_a_time():
    gate = LargeMessageGate(threshold=100)
    folders = [messages([500, 10, 500, 500, 10, 500]) for _ in range(3)]
    assert copy_folders_at_once(folders, gate) == 1


def test_a_large_message_is_not_read_while_another_is_held():
    gate = LargeMessageGate(threshold=100)
    seen_at_read = []
    folders = [messages([10, 500, 500, 10]) for _ in range(3)]
    copy_folders_at_once(folders, gate, reading_hook=lambda alive: seen_at_read.append(alive["now"]))
    assert seen_at_read == [0] * 6


def test_a_large_message_the_listing_did_not_announce_still_waits_for_the_gate():
    gate = LargeMessageGate(threshold=100)
    held = object()
    assert gate.enter(held, threading.Event())
    unannounced = messages([500])
    stream = write_batches(iter(unannounced), [MessageRef("0", size=None)], gate)
    got = []
    reader = threading.Thread(target=lambda: got.extend(next(stream)))
    reader.start()
    reader.join(0.3)
    assert got == []
    gate.leave(held)
    reader.join()
    assert [m.uid for m in got] == ["0"]
    stream.close()


def test_messages_gone_since_the_listing_do_not_put_the_gate_out_of_step():
    gate = LargeMessageGate(threshold=100)
    listed = messages([10, 10, 10, 500])
    held = object()
    assert gate.enter(held, threading.Event())
    reads = []

    def source():  # message 1 left the source after the listing
        for message in (listed[0], listed[2], listed[3]):
            reads.append(message.uid)
            yield message

    got = []
    copier = threading.Thread(
        target=lambda: got.extend(m.uid for b in write_batches(source(), refs_of(listed), gate) for m in b)
    )
    copier.start()
    time.sleep(0.3)
    assert reads == ["0", "2"], "the large message waits for the gate before it is read"
    gate.leave(held)
    copier.join()
    assert got == ["0", "2", "3"]


def test_content_keys_are_worked_out_on_the_reading_thread():
    readers = set()

    class Watched(Message):
        @property
        def content_key(self):
            readers.add(threading.current_thread())
            return super().content_key

    folder = [Watched(b"Subject: %d\r\n\r\nbody" % i, received=WHEN, uid=str(i)) for i in range(5)]
    batches = list(write_batches(iter(folder), refs_of(folder), LargeMessageGate()))
    assert uids(batches) == [["0", "1", "2", "3", "4"]]
    assert readers and threading.current_thread() not in readers
