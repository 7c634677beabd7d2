"""A stand-in for Gmail's IMAP server, for testing migrator's Gmail support where Gmail cannot run.

It is not Gmail: it copies only what Gmail does differently from the servers the suite runs for
real (Dovecot, Cyrus, Courier), so that tests can prove migrator copes with it. What it copies,
and where that is written down:

- Google's "IMAP Extensions" developer page (developers.google.com/gmail/imap/imap-extensions),
  the ``X-GM-EXT-1`` capability: X-GM-MSGID and X-GM-THRID (64-bit ids, FETCH and SEARCH),
  X-GM-LABELS (FETCH, STORE +/-/=, SEARCH), the greeting "Gimap ready for requests", the ID
  answer, and LIST with special-use attributes always on: INBOX, user labels nested with "/",
  ``[Gmail]`` as ``\\Noselect \\HasChildren`` and under it All Mail (``\\All``), Drafts, Important,
  Sent Mail, Spam (``\\Junk``), Starred (``\\Flagged``) and Trash. The prefix is ``[Google Mail]``
  in some countries and the names are localised (``SpecialNames``, ``GERMAN``).
- Gmail's help on IMAP: one message is stored once and shows in a folder per label, each folder
  numbering it with its own UID; Starred is the ``\\Flagged`` flag; a message in Spam or Trash is
  in no other folder; expunging a ``\\Deleted`` message from a label's folder removes the label, and
  the default "when a message is marked as deleted and expunged from the last visible IMAP
  folder: archive the message" keeps it in All Mail (expunged there, it stays); expunged from
  Spam or Trash it is deleted for good. The same setting's "Auto-Expunge on" (Gmail's default)
  is ``auto_expunge=True`` here; off by default, so tests see the EXPUNGE step.
- What clients have recorded Gmail saying (MailKit issue 1396, OfflineIMAP 724 and 672,
  gmailbuttons 10, emailjs-imap-client 142, ha-email-sensor 16, node-imap 593): the capabilities
  before and after login, "Session expired, please login again." when a session has used its
  bandwidth, ``[TOOBIG] Message too large.`` (answered BAD) for an APPEND over APPENDLIMIT,
  ``[OVERQUOTA] Account exceeded command or bandwidth limits.``, ``[THROTTLED]``, and that FETCH
  X-GM-LABELS leaves out the label of the folder it is asked in. Microsoft 365's throttling reply,
  "Request is throttled. Suggested Backoff Time: N milliseconds", is from imapsync's FAQ.
- An APPEND of a message already in the account (same Message-ID and bytes) keeps one copy,
  which gains the folder's label and a new UID there.

What it does not do: TLS, STARTTLS, IDLE, COMPRESS, QUOTA, RENAME, X-GM-RAW searches, threads
found by content (each message is its own thread unless seeded with one), Gmail's other
settings (expunge to Trash or delete forever, folder size limits), QRESYNC, ENVELOPE and
BODYSTRUCTURE, MIME part sections, the slowing-down that Gmail's "OK Success [THROTTLED]" tells
of, and several connections' limits. The words of replies not listed above are assumed.
Answers it cannot give are ``BAD`` naming the command. Tests seed it with ``add_message`` and
read it back through ``account``; ``commands`` records what clients sent (literals as their
size), ``bodies_sent`` and ``appended`` count messages fetched with a body and appended.

The model of the account is in gmail_account.py, the connection in gmail_session.py, the
commands on messages in gmail_messages.py, and the wire syntax in gmail_syntax.py.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote as url_quote

from harness.gmail_account import ENGLISH, GERMAN, GmailAccount, GmailMessage, SpecialNames
from harness.gmail_messages import SESSION_EXPIRED, TOO_LARGE
from harness.gmail_session import Session
from harness.listener import Listener

CAPABILITIES_BEFORE_LOGIN = (
    "IMAP4rev1 UNSELECT NAMESPACE ID XLIST CHILDREN X-GM-EXT-1 SASL-IR AUTH=XOAUTH2 AUTH=PLAIN AUTH=OAUTHBEARER")
# Gmail's own list less IDLE, QUOTA and COMPRESS=DEFLATE, which the stand-in does not implement.
CAPABILITIES = ("IMAP4rev1 UNSELECT NAMESPACE ID XLIST CHILDREN X-GM-EXT-1 UIDPLUS ENABLE MOVE CONDSTORE ESEARCH "
                "UTF8=ACCEPT LIST-EXTENDED LIST-STATUS LITERAL- SPECIAL-USE APPENDLIMIT={limit}")
APPENDLIMIT = 35_651_584
__all__ = ["GERMAN", "SESSION_EXPIRED", "TOO_LARGE", "GmailServer", "SpecialNames", "Throttle", "Budgets"]
GMAIL_THROTTLED = "NO [THROTTLED] Account exceeded command or bandwidth limits. (Failure)"  # NO assumed
GMAIL_OVERQUOTA = "NO [OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)"  # NO assumed


def microsoft_throttled(milliseconds: int) -> str:
    """Return Microsoft 365's reply to a throttled command, which suggests a wait of ``milliseconds``."""
    return f"BAD Request is throttled. Suggested Backoff Time: {milliseconds} milliseconds"


@dataclass
class Throttle:
    """Refuse ``command`` (``FETCH``, ``APPEND``..., with ``UID`` or not) with ``reply`` once ``after`` messages
    went through it.

    Messages are those fetched with a body (FETCH) or appended (APPEND); for other commands,
    the commands themselves. ``times`` refusals are given (None: every one after), then the
    command works again; ``bye`` ends the connection after each refusal, as Microsoft 365 does.
    """

    command: str
    after: int
    reply: str = GMAIL_THROTTLED
    times: int | None = None
    bye: bool = False


@dataclass
class Budgets:
    """Bytes of message data a session (or, with ``per="account"``, all sessions) may download and upload.

    Past either, the server says ``* BYE Session expired, please login again.`` and closes, as
    Gmail does when an account has used its bandwidth.
    """

    download: int | None = None
    upload: int | None = None
    per: str = "session"


class GmailServer(Listener):
    """The stand-in on a real socket on 127.0.0.1 (harness/listener.py): one account, one user."""

    def __init__(
        self, user: str = "alice@gmail.com", password: str = "secret", *, token: str | None = None,
        names: SpecialNames = ENGLISH, appendlimit: int = APPENDLIMIT, budgets: Budgets | None = None,
        throttle: Throttle | None = None, auto_expunge: bool = False,
    ) -> None:
        self.user, self.password, self.token = user, password, token
        self.account = GmailAccount(names)
        self.appendlimit = appendlimit
        self.budgets = budgets or Budgets()
        self.throttle = throttle
        self.auto_expunge = auto_expunge
        self.lock = threading.RLock()  # one command at a time changes the account
        self.commands: list[str] = []
        self.served: Counter[str] = Counter()  # messages (or commands) each command went through
        self.spent: Counter[str] = Counter()  # bytes of message data: "download", "upload"
        super().__init__()

    # --- for tests --------------------------------------------------------------------

    def add_message(self, raw: bytes, labels: Iterable[str] = ("\\Inbox",), flags: Iterable[str] = (),
                    date: datetime | None = None, thrid: int | None = None) -> int:
        """Store a message as delivered with ``labels`` and ``flags``; return its X-GM-MSGID."""
        with self.lock:
            return self.account.add_message(raw, labels, flags, date, thrid)

    def message(self, msgid: int) -> GmailMessage:
        """Return the stored message ``msgid``; raise KeyError."""
        return self.account.messages[msgid]

    def folder(self, name: str) -> list[GmailMessage]:
        """Return the messages the folder ``name`` shows, in UID order; raise KeyError."""
        with self.lock:
            return self.account.contents(name)

    def uids(self, name: str) -> dict[int, int]:
        """Return uid: X-GM-MSGID for the folder ``name``; raise KeyError."""
        folder = self.account.folder(name)
        if folder is None:
            raise KeyError(name)
        return folder.by_uid()

    @property
    def bodies_sent(self) -> int:
        """Return how many messages were fetched with (part of) their bytes, over every connection."""
        return self.served["FETCH"]

    @property
    def downloaded(self) -> int:
        """Return the bytes of message data sent over every connection."""
        return self.spent["download"]

    @property
    def uploaded(self) -> int:
        """Return the bytes of messages received by APPEND over every connection."""
        return self.spent["upload"]

    @property
    def appended(self) -> int:
        """Return how many messages APPEND stored (a copy already there counts too)."""
        return self.served["APPEND"]

    def endpoint(self, password_env: str) -> str:
        """Return migrator's endpoint for this account, in clear text, the password in ``password_env``."""
        return f"imap://{url_quote(self.user, safe='')}@127.0.0.1:{self.port}/?tls=none&password_env={password_env}"

    # --- connections ------------------------------------------------------------------

    def serve(self, connection: socket.socket) -> None:
        """Answer one client until it logs out, leaves, or is told BYE."""
        with connection, connection.makefile("rwb") as stream:
            Session(self, stream).run()

    def capabilities(self, authenticated: bool) -> str:
        """Return the CAPABILITY list before or after login."""
        return CAPABILITIES.format(limit=self.appendlimit) if authenticated else CAPABILITIES_BEFORE_LOGIN

    def throttled(self, command: str) -> Throttle | None:
        """Return the throttle that refuses ``command`` (without UID) now, counting the refusal; else None."""
        throttle = self.throttle
        if throttle is None or _counted(throttle.command) != command or self.served[command] < throttle.after:
            return None
        if throttle.times is not None:
            if throttle.times <= 0:
                return None
            throttle.times -= 1
        return throttle


def _counted(command: str) -> str:
    """Return the name ``served`` counts a command under: FETCH for UID FETCH too."""
    return command.upper().removeprefix("UID ")
