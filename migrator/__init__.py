"""migrator: copy mailboxes between IMAP, POP3, Maildir, mbox, EML and PST, byte for byte."""
