"""Stores: every place mail can be read from or written to, behind one interface."""

from __future__ import annotations

import importlib

from migrator.endpoints.endpoint import Endpoint
from migrator.stores.base import AppendResult, FolderScan, Store

__all__ = ["AppendResult", "FolderScan", "Store", "open_store"]


def open_store(endpoint: Endpoint, *, readonly: bool = True) -> Store:
    """Return an unopened store for ``endpoint``; use it as a context manager."""
    # Imported only now: a rerun that copies nothing should not pay for PST or IMAP imports.
    module_name, class_name = endpoint.store_kind.store_class.split(":")
    store_class = getattr(importlib.import_module(module_name), class_name)
    return store_class(endpoint, readonly=readonly)
