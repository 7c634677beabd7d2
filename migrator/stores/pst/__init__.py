"""PST (Outlook personal folders) support: a Unicode PST writer and reader behind the Store interface."""

from __future__ import annotations

__all__ = ["PstStore"]


def __getattr__(name: str) -> object:
    # Lazy, so that the format modules can be imported without the store and its reader.
    if name == "PstStore":
        from migrator.stores.pst.store import PstStore

        return PstStore
    raise AttributeError(name)
