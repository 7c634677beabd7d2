"""What a copy is asked to do: the folder rules, the message filter, dry run, deletion, connections.

Kept apart from the pipeline's machinery so that the command line can name its defaults without
loading it: every start of `migrator` registers the copy command.
"""

from __future__ import annotations

from typing import NamedTuple

from migrator.endpoints.presets import Limits
from migrator.pipeline.filters import MessageFilter
from migrator.pipeline.foldermap import FolderRules

# Measured with bench/ on 2 cores shared with the server: 2 connections instead of 1 take
# a fifth off IMAP -> Maildir and a quarter off IMAP -> IMAP; 3 or 4 gained nothing more
# there. A remote server's round trips reward more; most servers allow 10 per user and IP.
DEFAULT_CONNECTIONS = 2


class CopyOptions(NamedTuple):
    """What to copy and how. ``keep_days`` deletes from the source only mail copied that long ago.

    ``connections`` is how many folders are copied at once, each on connections of its own
    (see parallel.py); stores that cannot be shared (PST, POP3) use one. ``limits`` apply to every
    server of the run where its endpoint sets none of its own (--max-bytes-per-second...); a
    provider preset's limits apply where neither does, and a server's connections cap ``connections``.
    """

    rules: FolderRules = FolderRules()
    message_filter: MessageFilter = MessageFilter()
    dry_run: bool = False
    delete_after: bool = False
    keep_days: int | None = None
    connections: int = DEFAULT_CONNECTIONS
    limits: Limits = Limits()

    @property
    def deletes(self) -> bool:
        """Return True when the run may delete messages from the source."""
        return self.delete_after or self.keep_days is not None
