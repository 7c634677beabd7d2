"""Thunderbird's mail directories: Local Folders and ImapMail caches, read and written; see store.py."""

from __future__ import annotations

from migrator.stores.thunderbird.store import ThunderbirdStore

__all__ = ["ThunderbirdStore"]
