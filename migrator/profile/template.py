"""The commented profile `migrator profile init` writes: every key of schema v1, most commented out."""

TEMPLATE = """\
# A migrator profile (schema version 1).
#   Check it:     migrator profile check THIS_FILE [--connect]
#   Run it:       migrator run THIS_FILE [--dry-run] [--quiet] [--log FILE]
#   Schedule it:  migrator schedule THIS_FILE --every daily
# ${NAME} in any value is replaced from the environment (write $${ for a literal ${).
# Relative paths are relative to the directory of this file.
version: 1

# Where mail is read from: one endpoint, type imap, pop3, maildir, mbox, eml or pst.
source:
  type: imap
  host: imap.example.com
  # port: 993                  # default 993 with tls: implicit, 143 otherwise (POP3: 995 / 110)
  # tls: implicit              # implicit (TLS from the start), starttls, or none (trusted networks only)
  user: alice@example.com
  # Exactly one password source:
  password_command: pass show mail/alice   # a command; its first line of output is the password
  # password_env: MAIL_PASSWORD            # an environment variable
  # password_file: ~/.config/migrator/alice.password
  # password: ...                          # in clear text: then keep this file private (chmod 600)
  # ca_file: /etc/ssl/private-ca.pem       # trust a private certificate authority
  # auth: plain                            # imap: plain or login; pop3: user, apop or plain
  # Microsoft 365, Gmail: OAuth2 instead of a password (docs/usage.md#oauth2):
  # auth: xoauth2
  # client_id: YOUR_CLIENT_ID              # then run `migrator login` once; or instead a helper's token:
  # token_command: oama access alice@example.com
  # An admin logging in for alice instead of a password source (docs/usage.md#admin-logins):
  # admin_user: admin
  # admin_password_command: pass show mail/admin

# Where mail is written: one or more endpoints; each message is fetched once for all of them.
targets:
  - type: maildir
    path: ~/Mail/alice
  # - type: mbox
  #   path: ~/Backup/alice-mbox
  # - type: imap
  #   host: imap.new-provider.example
  #   user: alice@new-provider.example
  #   password_env: NEW_PROVIDER_PASSWORD

# Which folders are copied ('/' between levels, * and ? as wildcards) and their names in the targets.
# folders:
#   include: [INBOX, "Projects/*"]
#   exclude: [Trash, Junk]
#   map:
#     - "Sent Items=Sent"                              # the folder and its subfolders
#     - {from: "re:^Lists/(.*)", to: 'Archive/\\1'}   # a regular expression over the whole name

# Which messages are copied.
# filters:
#   since: 2020-01-01          # received on or after this date
#   before: 2025-01-01         # received before this date
#   max_size: 25MB             # skip larger messages (KB, MB, GB: powers of 1000; KiB, MiB, GiB: of 1024)
#   unseen_only: false

# The state file that makes reruns copy only what is new (default: ~/.local/state/migrator/NAME.sqlite).
# state: ~/.local/state/migrator/alice.sqlite

# POP3 sources only. Mail stays on the server unless you ask; deletion happens only for messages
# every target holds durably, at the end of the session.
# delete_after: true
# keep_days: 7                 # delete only mail first copied at least 7 days ago

# options:
#   dry_run: false             # list what would be copied, write nothing
#   quiet: false               # print nothing unless something fails (for cron)
#   connections: 2             # folders copied at once, each on its own connections (default 2)
"""
