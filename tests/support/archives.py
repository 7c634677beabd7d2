"""Write a corpus into a local archive through migrator's own stores, for tests that start from an archive.

Test-only, and kept out of ``harness/``: the harness seeds and reads without migrator's stores,
so that what it reports is independent proof of what migrator did.
"""

from __future__ import annotations

from collections.abc import Iterable

from migrator.core.message import Message
from migrator.stores import open_store


def write_archive(endpoint: object, messages: Iterable[Message]) -> None:
    """Write ``messages`` into the local archive at ``endpoint`` (a migrator Endpoint), each in its folder."""
    messages = list(messages)
    with open_store(endpoint, readonly=False) as store:
        for folder in sorted({m.folder for m in messages}):
            store.ensure_folder(folder)
            results = store.append_batch(folder, [m for m in messages if m.folder == folder])
            assert all(r.ok for r in results), [r.error for r in results if not r.ok]
