"""The POP3 store: one read-only INBOX, incremental by UIDL, deleting only when asked."""

from migrator.stores.pop3.store import Pop3Store

__all__ = ["Pop3Store"]
