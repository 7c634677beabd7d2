"""The benchmark: migrator beside mbsync, offlineimap3, getmail6 and the server limit (see README.md)."""
