"""Stores: every place mail can be read from or written to, behind one interface."""

from __future__ import annotations

import importlib

from migrator.endpoint import Endpoint
from migrator.stores.base import AppendResult, FolderScan, Store

__all__ = ["AppendResult", "FolderScan", "Store", "open_store"]

# Imported lazily: a rerun that copies nothing should not pay for PST or IMAP imports.
_STORE_CLASSES = {
    "imap": ("migrator.stores.imap", "ImapStore"),
    "pop3": ("migrator.stores.pop3", "Pop3Store"),
    "maildir": ("migrator.stores.maildir", "MaildirStore"),
    "mbox": ("migrator.stores.mbox", "MboxStore"),
    "eml": ("migrator.stores.eml", "EmlStore"),
    "pst": ("migrator.stores.pst", "PstStore"),
}


def open_store(endpoint: Endpoint, *, readonly: bool = True) -> Store:
    """Return an unopened store for ``endpoint``; use it as a context manager."""
    module_name, class_name = _STORE_CLASSES[endpoint.kind]
    store_class = getattr(importlib.import_module(module_name), class_name)
    return store_class(endpoint, readonly=readonly)
