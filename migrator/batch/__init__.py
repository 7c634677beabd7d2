"""Many accounts in one command: a list of accounts, a template profile, one worker process per account.

``accounts.py`` reads the list (Exchange Online's IMAP-migration CSV, with more columns, or imapsync's
lines); ``shards.py`` splits it between machines that do not talk; ``coordinator.py`` runs each account in
a worker process (``worker.py``) under its own lock, state and log; ``report.py`` and ``html.py`` write what
people read at the end. Above the profiles, below the command line.
"""
