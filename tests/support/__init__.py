"""Test-side helpers: a throwaway Dovecot, a shared message corpus and IMAP wire helpers.

Nothing here imports migrator's stores: what these helpers seed and read back is an
independent proof of what migrator wrote.
"""
