"""The Gmail stand-in's commands on messages: FETCH, STORE, SEARCH, APPEND, COPY, MOVE, EXPUNGE.

Each works on the selected folder's view of the account (harness/gmail_account.py): flags
are the message's own, except ``\\Deleted``, which Gmail keeps per folder; labels are changed
with X-GM-LABELS or by filing a message into a folder. Bytes sent and received count against
the session's budgets (harness/gmail.py, ``Budgets``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from harness.gmail_account import (
    DELETED,
    DRAFT,
    IMPORTANT,
    INBOX,
    SENT,
    SPAM,
    STARRED,
    TRASH,
    Folder,
    GmailMessage,
)
from harness.gmail_syntax import (
    CommandSyntaxError,
    Token,
    compact_set,
    label_string,
    list_of,
    literal,
    section,
    section_bytes,
    selected,
    text_of,
)
from harness.imapwire import format_internaldate, mutf7_decode, parse_internaldate, quote

if TYPE_CHECKING:
    from harness.gmail import GmailServer

SESSION_EXPIRED = "Session expired, please login again."
TOO_LARGE = "BAD [TOOBIG] Message too large. https://support.google.com/mail/answer/6584#limit"
_ATTRIBUTES = ("UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "X-GM-MSGID", "X-GM-THRID", "X-GM-LABELS", "MODSEQ")
_SYSTEM_LABELS = {name.lower(): name for name in (INBOX, SENT, DRAFT, IMPORTANT, STARRED, SPAM, TRASH)}
_FLAG_KEYS = {"SEEN": "\\Seen", "DELETED": DELETED, "FLAGGED": "\\Flagged", "ANSWERED": "\\Answered",
              "DRAFT": "\\Draft"}
_SEQUENCE_SET = re.compile(r"[0-9*:,]+")
Target = tuple[int, int, GmailMessage]  # sequence number, uid, message
Test = Callable[[int, int, GmailMessage], bool]


class SessionEnd(Exception):
    """The server said BYE: the connection closes."""


class MessageCommands:
    """The message commands of a session; the session supplies the wire (``line``, ``bye``) and names."""

    def __init__(self, server: GmailServer) -> None:
        self.server = server
        self.account = server.account
        self.tag = "*"
        self.folder: Folder | None = None
        self.writable = False
        self.view: list[int] = []  # the uids of the selected folder as the client knows them, by sequence number
        self.utf8 = False
        self.spent: Counter[str] = Counter()

    def line(self, text: str | bytes) -> None:
        """Write one response line."""
        raise NotImplementedError

    def bye(self, text: str) -> None:
        """Say BYE and end the connection."""
        raise NotImplementedError

    def mailbox(self, token: Token) -> str:
        """Return a mailbox argument as Unicode."""
        raise NotImplementedError

    def highest_modseq(self, folder: Folder) -> int:
        """Return the largest MODSEQ of the folder's messages (1 when empty)."""
        return max((self.account.messages[m].modseq for m in folder.uids), default=1)

    # --- budgets ----------------------------------------------------------------------

    def spend(self, direction: str, size: int) -> None:
        """Count ``size`` bytes down- or uploaded; say BYE when that is past the budget."""
        budgets = self.server.budgets
        budget = getattr(budgets, direction)
        spent = self.spent if budgets.per == "session" else self.server.spent
        if budget is not None and spent[direction] + size > budget:
            self.bye(SESSION_EXPIRED)
        self.spent[direction] += size
        self.server.spent[direction] += size

    # --- FETCH ------------------------------------------------------------------------

    def fetch(self, args: list[Token]) -> str:
        """FETCH set items [(CHANGEDSINCE n)]."""
        return self._fetch(args, by_uid=False)

    def uid_fetch(self, args: list[Token]) -> str:
        """UID FETCH set items [(CHANGEDSINCE n)]."""
        return self._fetch(args, by_uid=True)

    def _fetch(self, args: list[Token], *, by_uid: bool) -> str:
        if len(args) < 2:
            raise CommandSyntaxError("FETCH takes a set and items")
        items = _fetch_items(args[1])
        since = _changed_since(args[2] if len(args) > 2 else [])
        if by_uid and "UID" not in items:
            items.insert(0, "UID")
        if since is not None and "MODSEQ" not in items:
            items.append("MODSEQ")
        for number, uid, message in self.targets(text_of(args[0]), by_uid=by_uid):
            if since is None or message.modseq > since:
                self._fetch_one(number, uid, message, items)
        return "OK Success"

    def _fetch_one(self, number: int, uid: int, message: GmailMessage, items: list[str]) -> None:
        sections = [s for s in map(section, items) if s is not None]
        if any(not s.peek for s in sections) and self.writable and "\\Seen" not in message.flags:
            self.account.set_flags(message, message.flags | {"\\Seen"})
            items = items if "FLAGS" in items else [*items, "FLAGS"]
        parts, size = [], 0
        for item in items:
            wanted = section(item)
            if wanted is None:
                parts.append(self._attribute(item, uid, message).encode())
            else:
                data = section_bytes(message.raw, wanted)
                parts.append(wanted.name.encode() + b" " + literal(data))
                size += len(data)
        if sections:
            self.spend("download", size)
            self.server.served["FETCH"] += 1
        self.line(b"* %d FETCH (" % number + b" ".join(parts) + b")")

    def _attribute(self, item: str, uid: int, message: GmailMessage) -> str:
        if item == "UID":
            return f"UID {uid}"
        if item == "FLAGS":
            return f"FLAGS ({' '.join(self.flags_here(message))})"
        if item == "INTERNALDATE":
            return f"INTERNALDATE {format_internaldate(message.date)}"
        if item == "RFC822.SIZE":
            return f"RFC822.SIZE {len(message.raw)}"
        if item == "X-GM-MSGID":
            return f"X-GM-MSGID {message.msgid}"
        if item == "X-GM-THRID":
            return f"X-GM-THRID {message.thrid}"
        if item == "MODSEQ":
            return f"MODSEQ ({message.modseq})"
        return f"X-GM-LABELS ({' '.join(label_string(label) for label in self.labels_here(message))})"

    def flags_here(self, message: GmailMessage) -> list[str]:
        """Return the message's flags as the selected folder shows them: system flags first, \\Deleted its own."""
        assert self.folder is not None
        flags = message.flags | ({DELETED} if message.msgid in self.folder.deleted else set())
        return sorted(flags, key=lambda flag: (not flag.startswith("\\"), flag))

    def labels_here(self, message: GmailMessage) -> list[str]:
        """Return X-GM-LABELS as the selected folder shows them: Gmail leaves out the folder's own label."""
        assert self.folder is not None
        return [label for label in message.visible_labels() if label != self.folder.label]

    def targets(self, sequence_set: str, *, by_uid: bool) -> list[Target]:
        """Return (sequence number, uid, message) for the set, of messages still in the folder."""
        assert self.folder is not None
        present = self.folder.by_uid()
        numbers = {uid: index + 1 for index, uid in enumerate(self.view)}
        if by_uid:
            uids = selected(sequence_set, self.view)
        else:
            uids = [self.view[n - 1] for n in selected(sequence_set, list(range(1, len(self.view) + 1)))]
        return [(numbers[uid], uid, self.account.messages[present[uid]]) for uid in uids if uid in present]

    # --- STORE ------------------------------------------------------------------------

    def store(self, args: list[Token]) -> str:
        """STORE set [+-]FLAGS[.SILENT] / [+-]X-GM-LABELS[.SILENT] values."""
        return self._store(args, by_uid=False)

    def uid_store(self, args: list[Token]) -> str:
        """UID STORE, as STORE."""
        return self._store(args, by_uid=True)

    def _store(self, args: list[Token], *, by_uid: bool) -> str:
        plain: list[Token] = [arg for arg in args if not isinstance(arg, list)]
        args = plain[:2] + args[-1:]  # set, action, values: without a (UNCHANGEDSINCE n) between
        if len(args) != 3:
            raise CommandSyntaxError("STORE takes a set, an action and values")
        action = text_of(args[1]).upper()
        silent, action = action.endswith(".SILENT"), action.removesuffix(".SILENT")
        sign, kind = (action[0], action[1:]) if action[:1] in ("+", "-") else ("", action)
        if kind not in ("FLAGS", "X-GM-LABELS"):
            raise CommandSyntaxError(f"cannot STORE {kind}")
        if not self.writable:
            return "NO [READ-ONLY] The folder is read-only. (Failure)"
        values = list_of(args[2])
        for number, uid, message in self.targets(text_of(args[0]), by_uid=by_uid):
            if kind == "FLAGS":
                self._store_flags(message, sign, set(values))
            else:
                self._store_labels(message, sign, {self._label(value) for value in values})
            if not silent:
                shown = f"FLAGS ({' '.join(self.flags_here(message))})" if kind == "FLAGS" else self._attribute(
                    "X-GM-LABELS", uid, message)
                self.line(f"* {number} FETCH ({f'UID {uid} ' if by_uid else ''}{shown})")
        if self.server.auto_expunge and self.folder is not None and self.folder.deleted:
            self.account.expunge(self.folder, list(self.folder.deleted))
        return "OK Success"

    def _store_flags(self, message: GmailMessage, sign: str, flags: set[str]) -> None:
        assert self.folder is not None
        flags.discard("\\Recent")
        current = message.flags | ({DELETED} if message.msgid in self.folder.deleted else set())
        wanted = current | flags if sign == "+" else current - flags if sign == "-" else flags
        if DELETED in wanted:
            self.folder.deleted.add(message.msgid)
        else:
            self.folder.deleted.discard(message.msgid)
        if wanted - {DELETED} != message.flags:
            self.account.set_flags(message, wanted)

    def _store_labels(self, message: GmailMessage, sign: str, labels: set[str]) -> None:
        current = set(message.visible_labels())
        wanted = current | labels if sign == "+" else current - labels if sign == "-" else labels
        self.account.set_labels(message, wanted)

    def _label(self, value: str) -> str:
        """Return the label X-GM-LABELS names: Gmail's own by their ``\\`` names, else a user label."""
        if value.startswith("\\"):
            if value.lower() not in _SYSTEM_LABELS:
                raise CommandSyntaxError(f"no system label {value}")
            return _SYSTEM_LABELS[value.lower()]
        return value if self.utf8 else mutf7_decode(value)

    # --- SEARCH -----------------------------------------------------------------------

    def search(self, args: list[Token]) -> str:
        """SEARCH criteria (sequence numbers)."""
        return self._search(args, by_uid=False)

    def uid_search(self, args: list[Token]) -> str:
        """UID SEARCH criteria (uids); RETURN (...) answers with ESEARCH."""
        return self._search(args, by_uid=True)

    def _search(self, args: list[Token], *, by_uid: bool) -> str:
        args = list(args)
        returns = None
        if args and isinstance(args[0], str) and args[0].upper() == "RETURN":
            returns = [word.upper() for word in list_of(args[1])] if len(args) > 1 else []
            del args[:2]
        if args and isinstance(args[0], str) and args[0].upper() == "CHARSET":
            del args[:2]
        tests = self._criteria(args)
        found = [(uid if by_uid else number) for number, uid, message in self.targets("1:*", by_uid=True)
                 if all(test(number, uid, message) for test in tests)]
        if returns is None:
            self.line("* SEARCH" + "".join(f" {n}" for n in found))
        else:
            self.line(_esearch(self.tag, by_uid, found, returns or ["ALL"]))
        return "OK SEARCH completed (Success)"

    def _criteria(self, items: list[Token]) -> list[Test]:
        tests = []
        while items:
            tests.append(self._criterion(items))
        return tests

    def _criterion(self, items: list[Token]) -> Test:
        """Return the test of the search key at the head of ``items``, consuming it and its arguments."""
        key = items.pop(0)
        if isinstance(key, list):
            inner = self._criteria(list(key))
            return lambda n, u, m: all(test(n, u, m) for test in inner)
        word = text_of(key).upper()
        if word == "ALL":
            return lambda n, u, m: True
        if word == "NOT":
            negated = self._criterion(items)
            return lambda n, u, m: not negated(n, u, m)
        if word in _FLAG_KEYS or word.removeprefix("UN") in _FLAG_KEYS:
            flag, wanted = _FLAG_KEYS.get(word) or _FLAG_KEYS[word[2:]], word in _FLAG_KEYS
            return lambda n, u, m: (flag in self.flags_here(m)) == wanted
        if not items and word in ("UID", "X-GM-MSGID", "X-GM-THRID", "X-GM-LABELS", "HEADER", "KEYWORD"):
            raise CommandSyntaxError(f"{word} needs an argument")
        return self._criterion_with_argument(word, items)

    def _criterion_with_argument(self, word: str, items: list[Token]) -> Test:
        if word == "UID":
            uids = set(selected(text_of(items.pop(0)), self.view))
            return lambda n, u, m: u in uids
        if word in ("X-GM-MSGID", "X-GM-THRID"):
            wanted = int(text_of(items.pop(0)))
            return lambda n, u, m: (m.msgid if word == "X-GM-MSGID" else m.thrid) == wanted
        if word == "X-GM-LABELS":
            label = self._label(text_of(items.pop(0)))
            return lambda n, u, m: label in m.visible_labels()
        if word in ("KEYWORD", "UNKEYWORD"):
            keyword = text_of(items.pop(0))
            return lambda n, u, m: (keyword in m.flags) == (word == "KEYWORD")
        if word == "HEADER":
            name, value = text_of(items.pop(0)).lower().encode(), text_of(items.pop(0)).lower().encode()
            return lambda n, u, m: _has_header(m.raw, name, value)
        if _SEQUENCE_SET.fullmatch(word):
            numbers = set(selected(word, list(range(1, len(self.view) + 1))))
            return lambda n, u, m: n in numbers
        raise CommandSyntaxError(f"the stand-in cannot search by {word}")

    # --- APPEND, COPY, MOVE, EXPUNGE --------------------------------------------------

    def append(self, args: list[Token]) -> str:
        """APPEND mailbox [(flags)] [date] literal: the message gets the folder's label, once per account."""
        if len(args) < 2:
            raise CommandSyntaxError("APPEND takes a mailbox and a message")
        name, rest = self.mailbox(args[0]), list(args[1:])
        flags = set(list_of(rest.pop(0))) if isinstance(rest[0], list) else set()
        date = parse_internaldate(text_of(rest.pop(0))) if rest and isinstance(rest[0], str) else None
        if len(rest) != 1 or not isinstance(rest[0], bytes):
            raise CommandSyntaxError("APPEND takes one message literal (no MULTIAPPEND here)")
        folder = self.account.folder(name)
        if folder is None:
            return f"NO [TRYCREATE] Folder doesn't exist: {name} (Failure)"
        self.spend("upload", len(rest[0]))
        uid = self._store_appended(folder, rest[0], flags - {"\\Recent"}, date)
        self.server.served["APPEND"] += 1
        return f"OK [APPENDUID {folder.validity} {uid}] (Success)"

    def _store_appended(self, folder: Folder, raw: bytes, flags: set[str], date: datetime | None) -> int:
        existing = self.account.find_copy(raw)
        if existing is None:
            labels = [folder.label] if folder.label else []
            msgid = self.account.add_message(raw, labels, flags - {DELETED}, date)
        else:
            msgid = existing.msgid
            was_there = msgid in folder.uids
            self.account.set_flags(existing, existing.flags | flags)
            self.account.file_into(existing, folder)
            if was_there:
                folder.renumber(msgid)  # Gmail keeps one copy, numbered anew where it was appended
        if DELETED in flags:
            folder.deleted.add(msgid)
        return folder.uids[msgid]

    def copy(self, args: list[Token]) -> str:
        """COPY set mailbox: the messages get the folder's label."""
        return self._copy(args, by_uid=False, move=False)

    def uid_copy(self, args: list[Token]) -> str:
        """UID COPY set mailbox."""
        return self._copy(args, by_uid=True, move=False)

    def move(self, args: list[Token]) -> str:
        """MOVE set mailbox: the label of this folder goes, that of the other comes."""
        return self._copy(args, by_uid=False, move=True)

    def uid_move(self, args: list[Token]) -> str:
        """UID MOVE set mailbox."""
        return self._copy(args, by_uid=True, move=True)

    def _copy(self, args: list[Token], *, by_uid: bool, move: bool) -> str:
        if len(args) != 2:
            raise CommandSyntaxError("COPY and MOVE take a set and a mailbox")
        assert self.folder is not None
        source, target = self.folder, self.account.folder(self.mailbox(args[1]))
        if target is None:
            return "NO [TRYCREATE] Folder doesn't exist. (Failure)"
        if move and not self.writable:
            return "NO [READ-ONLY] The folder is read-only. (Failure)"
        pairs = []
        for _number, uid, message in self.targets(text_of(args[0]), by_uid=by_uid):
            self.account.file_into(message, target)
            if target.label not in (SPAM, TRASH) and message.hidden:
                self.account.set_labels(message, set(message.visible_labels()) - {SPAM, TRASH})  # out of the bin
            pairs.append((uid, target.uids.get(message.msgid)))
            if move and source.label not in (None, SPAM, TRASH, target.label):
                self.account.expunge(source, [message.msgid])
        copied = [(old, new) for old, new in pairs if new is not None]
        if not copied:
            return "OK No messages copied. (Success)"
        code = f"COPYUID {target.validity} {compact_set([o for o, _ in copied])} {','.join(str(n) for _, n in copied)}"
        if move:
            self.line(f"* OK [{code}]")
            return "OK Success"
        return f"OK [{code}] (Success)"

    def expunge(self, _args: list[Token]) -> str:
        """EXPUNGE what is marked \\Deleted in this folder, as Gmail does (see GmailAccount.expunge)."""
        return self._expunge(None)

    def uid_expunge(self, args: list[Token]) -> str:
        """UID EXPUNGE set: only those of the set that are marked \\Deleted."""
        if len(args) != 1:
            raise CommandSyntaxError("UID EXPUNGE takes a set")
        return self._expunge(set(selected(text_of(args[0]), self.view)))

    def _expunge(self, uids: set[int] | None) -> str:
        assert self.folder is not None
        if not self.writable:
            return "NO [READ-ONLY] The folder is read-only. (Failure)"
        marked = [m for m in self.folder.deleted if uids is None or self.folder.uids.get(m) in uids]
        self.account.expunge(self.folder, marked)
        return "OK Success"


def _fetch_items(spec: Token) -> list[str]:
    """Return the items a FETCH asks for, macros spelt out; raise CommandSyntaxError for one not served."""
    items = []
    for item in list_of(spec):
        upper = item.upper()
        if upper == "FAST":
            items += ["FLAGS", "INTERNALDATE", "RFC822.SIZE"]
        elif upper in _ATTRIBUTES:
            items.append(upper)
        elif section(item) is not None:
            items.append(item)
        else:
            raise CommandSyntaxError(f"the stand-in does not fetch {item}")
    return items


def _changed_since(modifiers: Token) -> int | None:
    words = list_of(modifiers) if isinstance(modifiers, list) else []
    for index, word in enumerate(words[:-1]):
        if word.upper() == "CHANGEDSINCE":
            return int(words[index + 1])
    return None


def _esearch(tag: str, by_uid: bool, found: list[int], returns: list[str]) -> str:
    """Return the ESEARCH response (RFC 4731) for ``found``."""
    parts = [f"* ESEARCH (TAG {quote(tag)})"] + (["UID"] if by_uid else [])
    if "MIN" in returns and found:
        parts.append(f"MIN {found[0]}")
    if "MAX" in returns and found:
        parts.append(f"MAX {found[-1]}")
    if "COUNT" in returns:
        parts.append(f"COUNT {len(found)}")
    if "ALL" in returns and found:
        parts.append(f"ALL {compact_set(sorted(found))}")
    return " ".join(parts)


def _has_header(raw: bytes, name: bytes, value: bytes) -> bool:
    header = raw.split(b"\r\n\r\n", 1)[0]
    for line in re.split(rb"\r\n(?![ \t])", header):
        field, colon, content = line.partition(b":")
        if colon and field.strip().lower() == name and value in content.lower():
            return True
    return False

