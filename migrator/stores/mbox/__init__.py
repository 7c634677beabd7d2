"""mbox archives: a tree of mbox files other programs read as they are, read back byte for byte; see store.py."""

from __future__ import annotations

from migrator.stores.mbox.store import MboxStore

__all__ = ["MboxStore"]
