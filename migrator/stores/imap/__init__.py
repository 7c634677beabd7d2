"""The IMAP store: a small pipelined IMAP4rev1 client on the standard library's socket and ssl."""

from migrator.stores.imap.store import ImapStore

__all__ = ["ImapStore"]
