"""Conversion between migrator's messages (RFC 5322 bytes and their IMAP metadata) and MAPI messages: the
mapping written into a PST, and the MIME rebuilt from a message some other program wrote."""
