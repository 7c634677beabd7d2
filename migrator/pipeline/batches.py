"""Group a message stream into write batches, cut and read ahead while the last one is written."""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence

from migrator.core.listing import Listing
from migrator.core.message import Message, MessageRef

BATCH_MESSAGES = 500
BATCH_BYTES = 2 * 1024 * 1024
LARGE_MESSAGE = BATCH_BYTES
_RESYNC_WINDOW = 64


def write_batches(
    messages: Iterable[Message], refs: Sequence[MessageRef], gate: LargeMessageGate
) -> Generator[list[Message], None, None]:
    """Yield write batches of ``messages`` (the messages of ``refs``, in order), read ahead in a thread.

    A large message is read only when ``gate``, shared by every folder the run copies at
    once, holds no other, and it holds the gate until the caller, having written its
    batch, asks for the next one.
    """
    hold = _GateHold(gate, Listing.of(refs))

    def after_read(message: Message, stop: threading.Event) -> bool:
        # Worked out here, on the reading thread, which mostly waits for the writing one:
        # writing is the slower side of the copy, and it needs every message's key.
        message.content_key  # noqa: B018 - a cached property: the lookup computes it
        return hold.after_read(message, stop)

    # A large message must fill its batch alone: a batch waiting for one more message,
    # which waits for the gate, would never be written.
    batches = prefetched_batches(
        iter(messages),
        max_bytes=min(BATCH_BYTES, gate.threshold),
        before_read=hold.before_read,
        after_read=after_read,
    )
    try:
        for batch in batches:
            yield batch
            hold.written(batch)
            del batch  # the caller let go of it too before asking for the next (see folder_copy)
    finally:
        batches.close()
        hold.release()


class LargeMessageGate:
    """Lets one large message at a time be in memory, across every folder a run copies at once.

    The read-ahead budget bounds small messages per folder; a 10 MB message it cannot.
    Without the gate, two connections each holding one or two of them made the peak
    memory of a run grow with the number of large messages in the mailbox.
    """

    def __init__(self, threshold: int = LARGE_MESSAGE) -> None:
        self.threshold = threshold
        self._holder: object | None = None
        self._changed = threading.Condition()

    def is_large(self, size: int | None) -> bool:
        """Return True when a message of ``size`` bytes (None: unknown) must pass the gate."""
        return size is not None and size > self.threshold

    def enter(self, holder: object, stop: threading.Event) -> bool:
        """Wait until the gate is free, then hold it for ``holder``; return False if stopped first."""
        with self._changed:
            while self._holder is not None:
                if stop.is_set():
                    return False
                self._changed.wait(0.1)
            self._holder = holder
            return True

    def leave(self, holder: object) -> None:
        """Free the gate if ``holder`` holds it."""
        with self._changed:
            if self._holder is holder:
                self._holder = None
                self._changed.notify_all()


class _GateHold:
    """One folder's use of the run's gate, steered by the sizes its listing gave.

    ``before_read`` and ``after_read`` run on the reading thread; ``written`` and ``release``
    on the writing one, which sees ``held`` only after the message's batch was handed over.
    """

    def __init__(self, gate: LargeMessageGate, refs: Listing) -> None:
        self.gate = gate
        self.refs = refs
        self.next = 0  # the position in ``refs`` of the message read next
        self.entered = False
        self.held: Message | None = None

    def before_read(self, stop: threading.Event) -> bool:
        """Enter the gate before reading a message the listing says is large."""
        expected = self.refs.size_at(self.next) if self.next < len(self.refs) else None
        if self.gate.is_large(expected):
            self.entered = self.gate.enter(self, stop)
            return self.entered
        return True

    def after_read(self, message: Message, stop: threading.Event) -> bool:
        """Enter the gate for a large message the listing did not announce; leave it for a small one."""
        self.next = self._position_after(message.uid)
        large = self.gate.is_large(message.size)
        if large and not self.entered and not self.gate.enter(self, stop):
            return False
        if self.entered and not large:
            self.gate.leave(self)
        self.entered = False
        if large:
            self.held = message
        return True

    def _position_after(self, uid: str) -> int:
        # A message gone from the source since the listing is skipped: follow the uids, not the
        # count, looking a little way ahead only, so that a stream that matches no uid costs no more.
        for position in range(self.next, min(self.next + _RESYNC_WINDOW, len(self.refs))):
            if self.refs.uid_at(position) == uid:
                return position + 1
        return self.next + 1

    def written(self, batch: list[Message]) -> None:
        """Let the next large message in once the batch holding this folder's is written."""
        if self.held is not None and any(message is self.held for message in batch):
            self.release()

    def release(self) -> None:
        """Free the gate if this folder holds it."""
        self.held = None
        self.gate.leave(self)


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_Item = list[Message] | _Failure | None  # a batch, the reading thread's error, or None: the end


class _Handover:
    """One batch at a time passed from the reading thread to the writing one.

    The reader waits with its next batch until the writer is done with the last (asks for
    another), so two batches at most are in memory: one being written, one read ahead.
    """

    def __init__(self) -> None:
        self._item: _Item = None
        self._full = False
        self._busy = False  # the writer still holds the last item handed over
        self._changed = threading.Condition()

    def put(self, item: _Item, stop: threading.Event) -> bool:
        """Hand ``item`` over once the writer is done with the last; return False if stopped first."""
        with self._changed:
            while self._full or self._busy:
                if stop.is_set():
                    return False
                self._changed.wait(0.1)
            self._item, self._full = item, True
            self._changed.notify_all()
            return True

    def take(self) -> _Item:
        """Return the next item, the last one being done with."""
        with self._changed:
            self._busy = False
            self._changed.notify_all()
            while not self._full:
                self._changed.wait()
            item, self._item, self._full, self._busy = self._item, None, False, True
            return item


def prefetched_batches(
    messages: Iterator[Message],
    max_messages: int = BATCH_MESSAGES,
    max_bytes: int = BATCH_BYTES,
    before_read: Callable[[threading.Event], bool] = lambda stop: True,
    after_read: Callable[[Message, threading.Event], bool] = lambda message, stop: True,
) -> Generator[list[Message], None, None]:
    """Yield ``messages`` in batches of at most ``max_messages`` or ``max_bytes``, read and cut on a thread.

    A batch holds at least one message, however large, and a full one is handed over
    before the next message is read. Reading the next batch overlaps writing the current
    one; the threads meet once a batch, not once a message, since every meeting wakes the
    other thread. Messages read before an error of the reading thread are handed over
    first, then the error is raised here; closing this generator stops the thread. The
    thread calls ``before_read`` and ``after_read`` around each message; either may wait,
    and returns False when it was stopped instead.
    """
    handover = _Handover()
    stop = threading.Event()

    # Neither thread keeps a message it has passed on while it waits or reads on: the run's
    # LargeMessageGate lets the next large message in once a written one is let go of.
    def read() -> Iterator[Message]:
        while before_read(stop):
            message = next(messages, None)
            if message is None or not after_read(message, stop):
                return
            yield message
            del message

    def produce() -> None:
        batch: list[Message] = []
        size = 0
        last: _Failure | None = None
        try:
            for message in read():
                if batch and size + message.size > max_bytes:
                    if not handover.put(batch, stop):
                        return
                    batch, size = [], 0
                batch.append(message)
                size += message.size
                if len(batch) >= max_messages or size >= max_bytes:
                    if not handover.put(batch, stop):
                        return
                    batch, size = [], 0
                del message
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which raises it
            last = _Failure(error)
        if not batch or handover.put(batch, stop):
            handover.put(last, stop)

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        while (item := handover.take()) is not None:
            if isinstance(item, _Failure):
                raise item.error
            yield item
            del item
    finally:
        stop.set()
        worker.join()
