"""Group a message stream into write batches, and fetch ahead while the batch is written."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator

from migrator.message import Message

BATCH_MESSAGES = 500
BATCH_BYTES = 2 * 1024 * 1024
PREFETCH_BYTES = 2 * 1024 * 1024


def batched(messages: Iterable[Message], max_messages: int = BATCH_MESSAGES, max_bytes: int = BATCH_BYTES) -> Iterator[list[Message]]:
    """Yield lists of messages, each at most ``max_messages`` long or ``max_bytes`` large.

    A batch always holds at least one message, however large.
    """
    batch: list[Message] = []
    size = 0
    for message in messages:
        if batch and (len(batch) >= max_messages or size + message.size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(message)
        size += message.size
    if batch:
        yield batch


_END = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _ByteBudget:
    """Bytes handed from the reading thread and not yet consumed; blocks the reader when full."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self.changed = threading.Condition()

    def take(self, size: int, stop: threading.Event) -> bool:
        """Wait until ``size`` fits (a lone item always fits); return False if stopped."""
        with self.changed:
            while self.in_flight and self.in_flight + size > self.limit:
                if stop.is_set():
                    return False
                self.changed.wait(0.1)
            self.in_flight += size
            return True

    def give_back(self, size: int) -> None:
        """Return ``size`` bytes to the budget."""
        with self.changed:
            self.in_flight -= size
            self.changed.notify()


def prefetched(messages: Iterator[Message], max_bytes: int = PREFETCH_BYTES) -> Iterator[Message]:
    """Yield from ``messages``, reading ahead in a thread up to about ``max_bytes``.

    Network reads of the next messages then overlap the writes of the current batch.
    Errors of the reading thread are raised here; closing this generator stops the thread.
    """
    budget = _ByteBudget(max_bytes)
    items: queue.Queue = queue.Queue()
    stop = threading.Event()

    def produce() -> None:
        try:
            for message in messages:
                if not budget.take(message.size, stop):
                    return
                items.put(message)
            items.put(_END)
        except BaseException as error:  # handed to the consumer, which raises it
            items.put(_Failure(error))

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        while (item := items.get()) is not _END:
            if isinstance(item, _Failure):
                raise item.error
            budget.give_back(item.size)
            yield item
    finally:
        stop.set()
        worker.join()
