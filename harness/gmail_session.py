"""One connection to the Gmail stand-in (harness/gmail.py): commands read, the selected folder, replies.

The commands that read and change messages (FETCH, STORE, SEARCH, APPEND, COPY, MOVE,
EXPUNGE) are in harness/gmail_messages.py; this module logs in, lists, selects and answers
the rest, and keeps the client's view of the selected folder (its sequence numbers) in step
with the account, announcing EXISTS and EXPUNGE where IMAP allows.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from io import BufferedIOBase
from typing import TYPE_CHECKING

from harness.gmail_account import Folder
from harness.gmail_messages import TOO_LARGE, MessageCommands, SessionEnd
from harness.gmail_syntax import CommandSyntaxError, Token, list_of, text_of, tokens
from harness.imapwire import mutf7_decode, mutf7_encode, quote

if TYPE_CHECKING:
    from harness.gmail import GmailServer

_LITERAL_AT_END = re.compile(rb"\{(\d+)(\+?)\}\r\n$")
_XLIST_NAMES = {"\\All": "\\AllMail", "\\Junk": "\\Spam", "\\Flagged": "\\Starred"}
# Google's answer to a bad OAuth token, base64 of {"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}
_OAUTH_ERROR = base64.b64encode(b'{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}').decode()
_NO_ANNOUNCE = ("FETCH", "STORE", "SEARCH")  # RFC 3501 7.4.1: no EXPUNGE during these (without UID)


class Session(MessageCommands):
    """The state of one connection: who logged in, which folder is open and what its client knows of it."""

    def __init__(self, server: GmailServer, stream: BufferedIOBase) -> None:
        super().__init__(server)
        self.stream = stream
        self.user: str | None = None
        self.tag = "*"
        self.closing = False

    def run(self) -> None:
        """Greet, then answer commands until LOGOUT, a BYE, or the client leaves."""
        self.line("* OK Gimap ready for requests from 127.0.0.1 stand-in")
        self.stream.flush()
        try:
            while not self.closing and (command := self._read()) is not None:
                if command:
                    with self.server.lock:
                        self._handle(command)
                self.stream.flush()
        except (SessionEnd, OSError):
            pass

    # --- the wire ---------------------------------------------------------------------

    def line(self, text: str | bytes) -> None:
        """Write one response line (bytes may hold literals)."""
        self.stream.write((text.encode() if isinstance(text, str) else text) + b"\r\n")

    def bye(self, text: str) -> None:
        """Say ``* BYE text`` and end the connection."""
        self.line(f"* BYE {text}")
        self.stream.flush()
        raise SessionEnd(text)

    def _read(self) -> bytes | None:
        """Return a command's wire bytes, literals inline (b"" for one already refused), or None at the end."""
        data, shown, refused = bytearray(), bytearray(), False
        while True:
            line = self.stream.readline()
            if not line:
                return None
            match = _LITERAL_AT_END.search(line)
            if not match:
                data += line.rstrip(b"\r\n")
                shown += line.rstrip(b"\r\n")
                break
            size = int(match.group(1))
            data += line
            shown += line[:match.start()] + b"{%d bytes}" % size
            if _is_append(data) and size > self.server.appendlimit:
                refused = True  # Gmail refuses before the "+", so a synchronising literal is never sent
                if not match.group(2):
                    break
                self.stream.read(size)
                continue
            if not match.group(2):
                self.line("+ go ahead")
                self.stream.flush()
            data += self.stream.read(size)
        self.server.commands.append(shown.split(b" ", 1)[-1].decode("utf-8", "replace"))
        if refused:
            self.line(bytes(data).split(b" ", 1)[0] + b" " + TOO_LARGE.encode())
            return b""
        return bytes(data)

    def _handle(self, data: bytes) -> None:
        tag, _, rest = data.partition(b" ")
        self.tag = tag.decode("utf-8", "replace")
        word, _, args = rest.partition(b" ")
        name = word.decode("utf-8", "replace").upper()
        if name == "UID":
            word, _, args = args.partition(b" ")
            name = "UID " + word.decode("utf-8", "replace").upper()
        try:
            reply = self._dispatch(name, args)
        except CommandSyntaxError as error:
            reply = f"BAD {name}: {error}"
        self.line(f"{self.tag} {reply}")
        if name == "LOGOUT":
            self.closing = True

    def _dispatch(self, name: str, args: bytes) -> str:
        handler = self._handlers().get(name)
        if handler is None:
            return f"BAD Unknown command {name}"
        needs = _STATE.get(name, "selected" if name.startswith("UID ") or name in _SELECTED else "auth")
        if needs != "any" and self.user is None:
            return f"BAD {name} is not allowed before login"
        if needs == "selected" and self.folder is None:
            return f"BAD {name} needs a selected folder"
        throttle = self.server.throttled(name.removeprefix("UID "))
        if throttle is not None:
            if throttle.bye:
                self.line(f"{self.tag} {throttle.reply}")
                self.bye("Connection closed. 14")
            return throttle.reply
        announce = self.folder is not None and name not in _NO_ANNOUNCE
        if announce:
            self.announce()
        reply = handler(args if name == "AUTHENTICATE" else tokens(args))
        if announce and self.folder is not None:
            self.announce()
        return reply

    def _handlers(self) -> dict[str, Callable[..., str]]:  # AUTHENTICATE takes its raw bytes, the others tokens
        return {
            "CAPABILITY": self.capability, "NOOP": self.noop, "CHECK": self.noop, "LOGOUT": self.logout,
            "ID": self.id, "LOGIN": self.login, "AUTHENTICATE": self.authenticate, "NAMESPACE": self.namespace,
            "ENABLE": self.enable, "SELECT": self.select, "EXAMINE": self.examine, "STATUS": self.status,
            "LIST": self.list_mailboxes, "LSUB": self.lsub, "XLIST": self.xlist, "CREATE": self.create,
            "DELETE": self.delete, "SUBSCRIBE": self.noop, "UNSUBSCRIBE": self.noop, "UNSELECT": self.unselect,
            "CLOSE": self.close,
            "APPEND": self.append, "FETCH": self.fetch, "UID FETCH": self.uid_fetch, "STORE": self.store,
            "UID STORE": self.uid_store, "SEARCH": self.search, "UID SEARCH": self.uid_search, "COPY": self.copy,
            "UID COPY": self.uid_copy, "MOVE": self.move, "UID MOVE": self.uid_move, "EXPUNGE": self.expunge,
            "UID EXPUNGE": self.uid_expunge,
        }

    # --- any state --------------------------------------------------------------------

    def capability(self, _args: list[Token]) -> str:
        """CAPABILITY: the list before or after login."""
        self.line("* CAPABILITY " + self.server.capabilities(self.user is not None))
        return "OK Thats all she wrote! (Success)"

    def noop(self, _args: list[Token]) -> str:
        """NOOP, CHECK, SUBSCRIBE, UNSUBSCRIBE: nothing to do (Gmail subscribes every folder)."""
        return "OK Success"

    def logout(self, _args: list[Token]) -> str:
        """LOGOUT."""
        self.line("* BYE LOGOUT Requested")
        return "OK 73 good day (Success)"

    def id(self, _args: list[Token]) -> str:
        """ID (RFC 2971), answered as the developer page shows."""
        self.line('* ID ("name" "GImap" "vendor" "Google, Inc." "support-url" "http://support.google.com/mail")')
        return "OK Success"

    def login(self, args: list[Token]) -> str:
        """LOGIN user password."""
        if len(args) != 2:
            raise CommandSyntaxError("LOGIN takes a user and a password")
        user, password = text_of(args[0]), text_of(args[1])
        return self._logged_in(user) if (user, password) == (self.server.user, self.server.password) else _FAILED

    def authenticate(self, args: bytes) -> str:
        """AUTHENTICATE PLAIN, XOAUTH2 or OAUTHBEARER, with an initial response (SASL-IR) or after a ``+``."""
        words = args.decode("utf-8", "replace").split()
        if not words:
            raise CommandSyntaxError("AUTHENTICATE needs a mechanism")
        mechanism = words[0].upper()
        if mechanism not in ("PLAIN", "XOAUTH2", "OAUTHBEARER"):
            return f"NO Unsupported mechanism {mechanism} (Failure)"
        answer = words[1] if len(words) > 1 else self._continuation("")
        try:
            decoded = base64.b64decode(answer if answer != "=" else "", validate=True)
        except ValueError:
            return "BAD Invalid SASL argument. (Failure)"
        user = _sasl_user(mechanism, decoded, self.server.password, self.server.token)
        if user == self.server.user:
            return self._logged_in(user)
        if mechanism != "PLAIN":
            self._continuation(_OAUTH_ERROR)  # Google explains a refused token, then waits for an empty reply
        return _FAILED

    def _continuation(self, text: str) -> str:
        self.line(f"+ {text}")
        self.stream.flush()
        reply = self.stream.readline().rstrip(b"\r\n").decode("ascii", "replace")
        self.server.commands.append("(a SASL response)")
        return reply

    def _logged_in(self, user: str) -> str:
        self.user = user
        self.line("* CAPABILITY " + self.server.capabilities(True))
        return f"OK {user} authenticated (Success)"

    # --- logged in --------------------------------------------------------------------

    def namespace(self, _args: list[Token]) -> str:
        """NAMESPACE: one personal namespace, no prefix, separator "/"."""
        self.line('* NAMESPACE (("" "/")) NIL NIL')
        return "OK Success"

    def enable(self, args: list[Token]) -> str:
        """ENABLE CONDSTORE and UTF8=ACCEPT (mailbox names in UTF-8 instead of modified UTF-7)."""
        enabled = [word for word in map(str.upper, map(text_of, args)) if word in ("CONDSTORE", "UTF8=ACCEPT")]
        self.utf8 = self.utf8 or "UTF8=ACCEPT" in enabled
        self.line("* ENABLED" + "".join(" " + word for word in enabled))
        return "OK Success"

    def select(self, args: list[Token]) -> str:
        """SELECT a folder read-write."""
        return self._open(args, writable=True)

    def examine(self, args: list[Token]) -> str:
        """EXAMINE a folder read-only."""
        return self._open(args, writable=False)

    def _open(self, args: list[Token], *, writable: bool) -> str:
        self.folder = None  # a failed SELECT leaves none selected (RFC 3501 6.3.1)
        name = self.mailbox(args[0])
        folder = self.account.folder(name)
        if folder is None:
            return f"NO [NONEXISTENT] Unknown Mailbox: {name} (now in authenticated state) (Failure)"
        self.folder, self.writable = folder, writable
        self.view = sorted(folder.uids.values())
        flags = "\\Answered \\Flagged \\Draft \\Deleted \\Seen $NotPhishing $Phishing" + self._keywords()
        permanent = flags + " \\*" if writable else ""
        self.line(f"* FLAGS ({flags})")
        self.line(f"* OK [PERMANENTFLAGS ({permanent})] Flags permitted.")
        self.line(f"* OK [UIDVALIDITY {folder.validity}] UIDs valid.")
        self.line(f"* {len(self.view)} EXISTS")
        self.line("* 0 RECENT")
        self.line(f"* OK [UIDNEXT {folder.uidnext}] Predicted next UID.")
        self.line(f"* OK [HIGHESTMODSEQ {self.highest_modseq(folder)}]")
        return f"OK [{'READ-WRITE' if writable else 'READ-ONLY'}] {name} selected. (Success)"

    def _keywords(self) -> str:
        used = {flag for m in self.account.messages.values() for flag in m.flags if not flag.startswith("\\")}
        return "".join(" " + keyword for keyword in sorted(used - {"$NotPhishing", "$Phishing"}))

    def unselect(self, _args: list[Token]) -> str:
        """UNSELECT: leave the folder, expunging nothing."""
        self.folder = None
        return "OK Returned to authenticated state. (Success)"

    def close(self, _args: list[Token]) -> str:
        """CLOSE: expunge what is marked \\Deleted here (when read-write) and leave the folder, silently."""
        if self.folder is not None and self.writable:
            self.account.expunge(self.folder, list(self.folder.deleted))
        self.folder = None
        return "OK Returned to authenticated state. (Success)"

    def status(self, args: list[Token]) -> str:
        """STATUS name (items)."""
        if len(args) != 2:
            raise CommandSyntaxError("STATUS takes a mailbox and a list of items")
        name = self.mailbox(args[0])
        folder = self.account.folder(name)
        if folder is None:
            return f"NO [NONEXISTENT] Unknown Mailbox: {name} (Failure)"
        self.line(f"* STATUS {self.wire_name(name)} ({self._status_items(folder, list_of(args[1]))})")
        return "OK Success"

    def _status_items(self, folder: Folder, items: list[str]) -> str:
        values = {
            "MESSAGES": len(folder.uids), "RECENT": 0, "UIDNEXT": folder.uidnext, "UIDVALIDITY": folder.validity,
            "UNSEEN": sum("\\Seen" not in self.account.messages[m].flags for m in folder.uids),
            "HIGHESTMODSEQ": self.highest_modseq(folder),
        }
        unknown = [item for item in items if item.upper() not in values]
        if unknown:
            raise CommandSyntaxError(f"unknown STATUS item {unknown[0]}")
        return " ".join(f"{item.upper()} {values[item.upper()]}" for item in items)

    def list_mailboxes(self, args: list[Token], kind: str = "LIST") -> str:
        """LIST (and LIST-EXTENDED: selection options, RETURN (SPECIAL-USE SUBSCRIBED CHILDREN STATUS (...)))."""
        selection = [word.upper() for word in list_of(args.pop(0))] if args and isinstance(args[0], list) else []
        if len(args) < 2:
            raise CommandSyntaxError(f"{kind} takes a reference and a mailbox pattern")
        reference, patterns = text_of(args[0]), list_of(args[1])
        returns = args[3] if len(args) > 3 and text_of(args[2]).upper() == "RETURN" else []
        if patterns == [""]:
            self.line(f'* {kind} (\\Noselect) "/" ""')
            return "OK Success"
        status = _status_return(returns)
        subscribed = "SUBSCRIBED" in selection or "SUBSCRIBED" in map(str.upper, _words(returns))
        for name, attributes in self._mailboxes(kind):
            if not any(_matches(reference + pattern, name) for pattern in patterns):
                continue
            folder = self.account.folder(name)
            if "SPECIAL-USE" in selection and (folder is None or folder.special_use is None):
                continue
            shown = attributes + (["\\Subscribed"] if subscribed else [])
            self.line(f'* {kind} ({" ".join(shown)}) "/" {self.wire_name(name)}')
            if status and folder is not None:
                self.line(f"* STATUS {self.wire_name(name)} ({self._status_items(folder, status)})")
        return "OK Success"

    def lsub(self, args: list[Token]) -> str:
        """LSUB: every folder is subscribed."""
        return self.list_mailboxes(args, "LSUB")

    def xlist(self, args: list[Token]) -> str:
        """XLIST, Gmail's special-use listing from before RFC 6154."""
        return self.list_mailboxes(args, "XLIST")

    def _mailboxes(self, kind: str) -> list[tuple[str, list[str]]]:
        """Return (name, attributes) of every folder in Gmail's order, ``[Gmail]`` among them."""
        prefix = self.account.names.prefix
        system = sorted(name for name in self.account.folders if name.startswith(prefix + "/"))
        names = ["INBOX", *sorted(self.account.user_labels), prefix, *system]
        entries = []
        for name in names:
            has_children = any(other.startswith(name + "/") for other in names)
            attributes = ["\\Noselect" if name == prefix else "\\HasChildren" if has_children else "\\HasNoChildren"]
            folder = self.account.folder(name)
            if name == prefix:
                attributes.insert(1, "\\HasChildren")
            elif folder is not None and folder.special_use:
                use = folder.special_use
                attributes.append(_XLIST_NAMES.get(use, use) if kind == "XLIST" else use)
            elif kind == "XLIST" and name == "INBOX":
                attributes.append("\\Inbox")
            entries.append((name, attributes))
        return entries

    def create(self, args: list[Token]) -> str:
        """CREATE a user label (and its parents)."""
        name = self.mailbox(args[0])
        prefix = self.account.names.prefix
        if name == prefix or name.startswith(prefix + "/"):
            return f"NO [CANNOT] Folder name is not allowed: {name} (Failure)"
        if self.account.folder(name) is not None:
            return "NO [ALREADYEXISTS] Duplicate folder name (Failure)"
        self.account.add_label(name)
        return "OK Success"

    def delete(self, args: list[Token]) -> str:
        """DELETE a user label: its messages keep their other labels."""
        name = self.mailbox(args[0])
        if name not in self.account.user_labels:
            return f"NO [CANNOT] Cannot delete {name} (Failure)"
        for child in [label for label in self.account.user_labels if label.startswith(name + "/")] + [name]:
            self.account.remove_label(child)
        return "OK Success"

    # --- names ------------------------------------------------------------------------

    def mailbox(self, token: Token) -> str:
        """Return a mailbox argument as Unicode (modified UTF-7 decoded unless UTF8=ACCEPT is on)."""
        name = text_of(token).rstrip("/")
        name = name if self.utf8 else mutf7_decode(name)
        return "INBOX" if name.upper() == "INBOX" else name

    def wire_name(self, name: str) -> str:
        """Return a mailbox name as the server sends it, quoted."""
        return quote(name if self.utf8 else mutf7_encode(name))

    def announce(self) -> None:
        """Tell the client what left the selected folder (EXPUNGE) and what came (EXISTS) since it last heard."""
        assert self.folder is not None
        present = set(self.folder.uids.values()) if self.account.folder(self.folder.name) is self.folder else set()
        for index in reversed(range(len(self.view))):
            if self.view[index] not in present:
                del self.view[index]
                self.line(f"* {index + 1} EXPUNGE")
        known = self.view[-1] if self.view else 0
        arrived = sorted(uid for uid in present if uid > known)
        if arrived:
            self.view += arrived
            self.line(f"* {len(self.view)} EXISTS")


_STATE = {"CAPABILITY": "any", "NOOP": "any", "LOGOUT": "any", "ID": "any", "LOGIN": "any", "AUTHENTICATE": "any"}
_SELECTED = ("FETCH", "STORE", "SEARCH", "COPY", "MOVE", "EXPUNGE", "CLOSE", "CHECK")
_FAILED = "NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)"


def _is_append(data: bytearray) -> bool:
    words = bytes(data[:64]).split(b" ", 2)
    return len(words) > 1 and words[1].upper() == b"APPEND"


def _sasl_user(mechanism: str, decoded: bytes, password: str, token: str | None) -> str | None:
    """Return the user a SASL response proves, or None when its password or token is wrong."""
    if mechanism == "PLAIN":
        parts = decoded.split(b"\0")
        if len(parts) == 3 and parts[2].decode("utf-8", "replace") == password:
            return parts[1].decode("utf-8", "replace")
        return None
    fields = decoded.replace(b",", b"\x01").split(b"\x01")
    user = next((f.split(b"=", 1)[1] for f in fields if f.startswith((b"user=", b"a="))), b"")
    bearer = next((f[len(b"auth=Bearer "):] for f in fields if f.startswith(b"auth=Bearer ")), None)
    if token is None or bearer is None or bearer.decode("utf-8", "replace") != token:
        return None
    return user.decode("utf-8", "replace")


def _matches(pattern: str, name: str) -> bool:
    """Return True when LIST's ``pattern`` (``*`` any, ``%`` any but "/") names the mailbox ``name``."""
    regex = "".join(".*" if c == "*" else "[^/]*" if c == "%" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name) is not None or (
        name == "INBOX" and re.fullmatch(regex, name, re.IGNORECASE) is not None)


def _words(token: Token) -> list[str]:
    return [item for item in token if isinstance(item, str)] if isinstance(token, list) else []


def _status_return(returns: Token) -> list[str]:
    """Return the STATUS items a LIST ... RETURN (STATUS (...)) asks for."""
    if not isinstance(returns, list):
        return []
    for index, item in enumerate(returns[:-1]):
        if isinstance(item, str) and item.upper() == "STATUS":
            return list_of(returns[index + 1])
    return []
