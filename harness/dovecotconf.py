"""The dovecot.conf of a test server: everything in one directory, nothing from /etc/dovecot.

Choices that tests rely on, and why:
- ``listen`` on 127.0.0.1 and 127.0.0.2: see ``DovecotServer.remote_host``.
- one passwd-file per user (``users/%u``): Dovecot re-reads a changed passwd-file at most
  once a second, so a user appended to a shared file right after a login would stay
  unknown; a new file is read on first use.
- ``rawlog_dir`` per user and protocol: Dovecot writes a rawlog only when the directory
  exists, so ``enable_rawlog`` switches it on for one user by creating it.
- special folders as ``mailbox specialN { name = ... }`` sections: a folder's settings are
  addressed by ``name``, which lets a userdb field switch auto-creation off per user.
- no delay after a failed login and no growing penalty for an IP with failed logins: tests
  of wrong passwords would otherwise slow down every later login from 127.0.0.1.
- ``pop3_no_flag_updates``: POP3 RETR must not mark messages seen for later IMAP checks.
- with ``oauth2_introspection_url``, XOAUTH2 and OAUTHBEARER too, checked by the oauth2 passdb, which
  posts each token to that URL (RFC 7662 introspection, as harness/oauth2_provider.py answers) and
  takes the login when it says ``active`` for the same ``username``; passwords still work.
- with ``master_user``, Dovecot's master users: a passwd-file passdb with ``master = yes`` (``masters``,
  one admin) before the users' own. The admin logs in for a user as ``USER*ADMIN`` with the admin's
  password (``auth_master_user_separator``), or with SASL PLAIN naming the user as its authorization
  identity; ``result_success = continue`` then looks the user up, so an admin cannot log in as no one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.imapwire import quote


@dataclass(frozen=True)
class ServerSettings:
    """What varies between test servers: directory, mail user, TLS files, ports and namespace."""

    root: Path
    uid: int
    gid: int
    cert: Path
    key: Path
    ports: Mapping[str, int]
    separator: str
    special_folders: Mapping[str, str]
    plaintext_auth: bool
    max_user_connections: int
    oauth2_introspection_url: str | None = None
    master_user: bool = False


def render_config(settings: ServerSettings) -> str:
    """Return the text of dovecot.conf for ``settings``."""
    return _TEMPLATE.format(
        root=settings.root, uid=settings.uid, gid=settings.gid, cert=settings.cert, key=settings.key,
        plaintext="no" if settings.plaintext_auth else "yes", separator=settings.separator,
        mailboxes=_special_folder_sections(settings.special_folders),
        max_user_connections=settings.max_user_connections,
        mechanisms="plain login" + (" xoauth2 oauthbearer" if settings.oauth2_introspection_url else ""),
        oauth2_passdb=_OAUTH2_PASSDB.format(root=settings.root) if settings.oauth2_introspection_url else "",
        master_passdb=_MASTER_PASSDB.format(root=settings.root) if settings.master_user else "",
        **settings.ports)


def render_oauth2_config(introspection_url: str) -> str:
    """Return the text of dovecot-oauth2.conf.ext: tokens checked by POSTing them to ``introspection_url``."""
    return (f"introspection_mode = post\nintrospection_url = {introspection_url}\nforce_introspection = yes\n"
            "username_attribute = username\nactive_attribute = active\nactive_value = true\n")


def _special_folder_sections(special_folders: Mapping[str, str]) -> str:
    return "\n".join(
        f"  mailbox special{number} {{\n    name = {quote(name)}\n    special_use = {flag}\n"
        f"    auto = subscribe\n  }}" for number, (name, flag) in enumerate(special_folders.items()))


_OAUTH2_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/dovecot-oauth2.conf.ext
}}
"""

_MASTER_PASSDB = """\
auth_master_user_separator = *
passdb {{
  driver = passwd-file
  master = yes
  args = scheme=PLAIN {root}/masters
  result_success = continue
}}
"""

_TEMPLATE = """\
# Written by harness/dovecotconf.py for one test server.
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/info.log
auth_verbose = yes
protocols = imap pop3
listen = 127.0.0.1, 127.0.0.2
shutdown_clients = yes

ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = {plaintext}
auth_mechanisms = {mechanisms}
auth_failure_delay = 0

mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:~/Maildir
mail_plugins = $mail_plugins listescape
pop3_no_flag_updates = yes
pop3_uidl_format = %08Xu%08Xv

{master_passdb}{oauth2_passdb}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users/%u
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users/%u
}}

namespace inbox {{
  inbox = yes
  separator = {separator}
{mailboxes}
}}

protocol imap {{
  rawlog_dir = {root}/rawlog/%u/imap
  mail_max_userip_connections = {max_user_connections}
}}
protocol pop3 {{
  rawlog_dir = {root}/rawlog/%u/pop3
}}

service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = {pop3s}
    ssl = yes
  }}
}}
"""
