"""What some IMAP servers do that none of the suite's real ones does: each costs the server's capability, not a message.

A scripted server on a real socket (harness/fake.py) that holds its folders in memory
and can forget the flags given in APPEND, take a message's date from its Date: header, answer
BAD to any keyword or to a date before 1970, refuse a CREATE of what exists in its own words,
and send mailbox names unquoted. Dovecot, Cyrus and Courier do the rest (test_every_server.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from harness.endpoints import stand_in_endpoint
from harness.fake import usual_answers
from migrator.core.errors import FolderError
from migrator.core.folder import Role
from migrator.core.message import Flag, Flags, Message
from migrator.stores.imap import ImapStore

UTC = timezone.utc
HEADER_DATE = "01-Jun-2022 12:00:00 +0000"
_APPEND = re.compile(r'APPEND "(?P<box>[^"]*)" (?:\((?P<flags>[^)]*)\) )?(?:"(?P<date>[^"]*)" )?(?P<raw>.*)', re.S)


@dataclass
class MemoryServer:
    """The answers of a server holding its folders in memory, with the habits a test turns on."""

    forgets_flags: bool = False  # stores no flag given in APPEND; a STORE afterwards works
    dates_from_header: bool = False  # INTERNALDATE from the Date: header, whatever APPEND gave
    refuses_keywords: bool = False  # BAD to an APPEND with any keyword, $Forwarded too
    refuses_old_dates: bool = False  # BAD to an APPEND dated before 1970
    folders: dict[str, dict[int, tuple[str, set[str], str]]] = field(default_factory=lambda: {"Box": {}})
    next_uid: int = 1

    def answers(self):
        """Return the answer function for a ScriptedServer."""
        return usual_answers(b"IMAP4rev1 NAMESPACE UIDPLUS", APPEND=self.append, UID=self.uid,
                             SELECT=self.select, EXAMINE=self.select, STATUS=self.status)

    def append(self, text: str) -> list[bytes]:
        match = _APPEND.match(text)
        assert match, text
        flags = set((match["flags"] or "").split())
        date = match["date"] or "02-Feb-2024 10:00:00 +0000"
        if self.refuses_keywords and any(not name.startswith("\\") for name in flags):
            return [b"{tag} BAD APPEND Unrecognized flag"]
        if self.refuses_old_dates and int(date.split()[0].split("-")[2]) < 1970:
            return [b"{tag} BAD Invalid date-time in Append command"]
        uid, self.next_uid = self.next_uid, self.next_uid + 1
        self.folders[match["box"]][uid] = (match["raw"], set() if self.forgets_flags else flags,
                                           HEADER_DATE if self.dates_from_header else date)
        return [b"{tag} OK [APPENDUID 9 %d] APPEND completed" % uid]

    def select(self, text: str) -> list[bytes]:
        return [b"* %d EXISTS" % len(self.folders["Box"]), b"* OK [UIDVALIDITY 9] ok",
                b"* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft \\*)] ok", b"{tag} OK done"]

    def status(self, text: str) -> list[bytes]:
        return [b'* STATUS "Box" (UIDNEXT %d)' % self.next_uid, b"{tag} OK done"]

    def uid(self, text: str) -> list[bytes]:
        words = text.split(" ", 3)
        wanted = _uids(words[2])
        box = self.folders["Box"]
        if words[1].upper() == "STORE":
            for uid in wanted & set(box):
                box[uid][1].update(re.findall(r"[^() ]+", words[3].split(" ", 1)[1]))
            return [b"{tag} OK done"]
        return [b'* %d FETCH (UID %d FLAGS (%s) INTERNALDATE "%s")' % (uid, uid, " ".join(sorted(flags)).encode(),
                                                                       date.encode())
                for uid, (_, flags, date) in box.items() if uid in wanted] + [b"{tag} OK done"]


def _uids(text: str) -> set[int]:
    uids: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition(":")
        uids.update(range(int(low), int(high or low) + 1))
    return uids


def store_on(server) -> ImapStore:
    endpoint = stand_in_endpoint(server.port)
    return ImapStore(endpoint, readonly=False)


def message(number: int, flags: Flags = Flags(), received: datetime = datetime(2020, 5, 6, 7, 8, 9, tzinfo=UTC)):
    return Message(b"Subject: number %d\r\nDate: Wed, 1 Jun 2022 12:00:00 +0000\r\n\r\nbody\r\n" % number,
                   flags, received)


def appends(server) -> list[str]:
    return [command.split(" {")[0].split(" Subject")[0] for command in server.commands if command.startswith("APPEND")]


# --- flags and dates a server does not keep -------------------------------------------------------


def test_flags_a_server_forgets_in_append_are_set_afterwards(fake):
    memory = MemoryServer(forgets_flags=True)
    server = fake(b"* OK fake ready", memory.answers())
    flags = Flags.of(Flag.SEEN, Flag.FORWARDED, keywords=("work",))
    with store_on(server) as imap:
        results = imap.append_batch(("Box",), [message(1, flags), message(2), message(3, Flags.of(Flag.FLAGGED))])
    assert [(r.ok, r.warning) for r in results] == [(True, None)] * 3
    assert [kept for _, kept, _ in memory.folders["Box"].values()] == [{"\\Seen", "$Forwarded", "work"}, set(),
                                                                        {"\\Flagged"}]


def test_a_received_date_the_server_replaces_is_told_once_a_run(fake):
    memory = MemoryServer(dates_from_header=True)
    server = fake(b"* OK fake ready", memory.answers())
    with store_on(server) as imap:
        results = imap.append_batch(("Box",), [message(1), message(2)])
        results += imap.sibling().append_batch(("Box",), [message(3)])
    warnings = [r.warning for r in results if r.warning]
    assert all(r.ok for r in results) and len(warnings) == 1
    assert warnings[0].startswith("the server keeps received dates (INTERNALDATE) of its own, not those given: "
                                  "it holds 2022-06-01 12:00:00 +0000 for 2020-05-06 07:08:09 +0000")


def test_a_server_that_keeps_what_it_is_given_is_left_alone(fake):
    memory = MemoryServer()
    server = fake(b"* OK fake ready", memory.answers())
    with store_on(server) as imap:
        results = imap.append_batch(("Box",), [message(1, Flags.of(Flag.SEEN, keywords=("work",)))])
    assert results[0].ok and results[0].warning is None
    assert not [command for command in server.commands if "STORE" in command]


# --- what a server refuses in APPEND ----------------------------------------------------------------


def test_a_server_that_refuses_every_keyword_gets_none_after_the_first_refusal(fake):
    memory = MemoryServer(refuses_keywords=True)
    server = fake(b"* OK fake ready", memory.answers())
    with store_on(server) as imap:
        first = imap.append_batch(("Box",), [message(1, Flags.of(Flag.SEEN, Flag.FORWARDED)),
                                             message(2, Flags.of(keywords=("work", "Important"))), message(3)])
        later = imap.append_batch(("Box",), [message(4, Flags.of(Flag.ANSWERED, keywords=("work",)))])
    assert all(r.ok for r in first + later)
    assert [r.warning for r in first] == [
        "written without the keywords $Forwarded: the server refused it with them, saying 'APPEND Unrecognized flag'",
        "written without the keywords Important work: the server refused it with them, saying "
        "'APPEND Unrecognized flag'",
        None,
    ]
    assert later[0].warning == ("written without the keywords work: the server refused keywords in this folder, "
                                "saying 'APPEND Unrecognized flag'")
    assert appends(server) == [
        'APPEND "Box" (\\Seen $Forwarded) "06-May-2020 07:08:09 +0000"',
        'APPEND "Box" (Important work) "06-May-2020 07:08:09 +0000"',
        'APPEND "Box" "06-May-2020 07:08:09 +0000"',
        'APPEND "Box" (\\Seen) "06-May-2020 07:08:09 +0000"',
        'APPEND "Box" "06-May-2020 07:08:09 +0000"',
        'APPEND "Box" (\\Answered) "06-May-2020 07:08:09 +0000"',  # no round trip for the keyword any more
    ]
    held = {raw.split("\r\n")[0]: kept for raw, kept, _ in memory.folders["Box"].values()}
    assert held == {"Subject: number 1": {"\\Seen"}, "Subject: number 2": set(), "Subject: number 3": set(),
                    "Subject: number 4": {"\\Answered"}}


def test_a_date_the_server_refuses_is_left_to_the_server(fake):
    memory = MemoryServer(refuses_old_dates=True)
    server = fake(b"* OK fake ready", memory.answers())
    old = datetime(1965, 3, 14, 9, 26, 53, tzinfo=timezone(timedelta(hours=-5)))
    with store_on(server) as imap:
        [result] = imap.append_batch(("Box",), [message(1, Flags.of(Flag.SEEN, keywords=("work",)), old)])
        [later] = imap.append_batch(("Box",), [message(2, Flags.of(keywords=("work",)))])
    assert result.ok and result.warning == (
        "written with the server's date, not 1965-03-14 09:26:53 -0500: the server refused it with that date, "
        "saying 'Invalid date-time in Append command'")
    assert later.ok and later.warning is None  # the keyword was not what the server refused
    assert appends(server) == ['APPEND "Box" (\\Seen work) "14-Mar-1965 09:26:53 -0500"',
                               'APPEND "Box" (\\Seen) "14-Mar-1965 09:26:53 -0500"',
                               'APPEND "Box" (\\Seen work)',
                               'APPEND "Box" (work) "06-May-2020 07:08:09 +0000"']
    assert [kept for _, kept, _ in memory.folders["Box"].values()] == [{"\\Seen", "work"}, {"work"}]


def test_a_message_refused_however_it_is_sent_fails_with_the_servers_words(fake):
    def append(text: str) -> list[bytes]:
        return [b"{tag} NO Message contains NUL characters"] if "\0" in text else [b"{tag} OK [APPENDUID 9 1] done"]

    memory = MemoryServer()
    server = fake(b"* OK fake ready", usual_answers(b"IMAP4rev1 NAMESPACE UIDPLUS", APPEND=append,
                                                    SELECT=memory.select, STATUS=memory.status, UID=memory.uid))
    nul = Message(b"Subject: nul\r\n\r\na\0b\r\n", Flags.of(keywords=("work",)), datetime(2020, 1, 1, tzinfo=UTC))
    with store_on(server) as imap:
        [result] = imap.append_batch(("Box",), [nul])
    assert not result.ok and result.error == "the server said 'Message contains NUL characters'"
    assert appends(server) == ['APPEND "Box" (work) "01-Jan-2020 00:00:00 +0000"',  # as it was,
                               'APPEND "Box" "01-Jan-2020 00:00:00 +0000"',  # without its keyword,
                               'APPEND "Box" (work)',  # without its date,
                               'APPEND "Box"']  # without both


# --- CREATE of what is there already ------------------------------------------------------------


def creating(listed: dict[str, bytes]):
    """Return answers that refuse every CREATE in Cyrus's words and LIST each name of ``listed`` with its attributes."""

    def answer_list(text: str) -> list[bytes]:
        name = text.rsplit(" ", 1)[1].strip('"')
        entries = [b'* LIST (%s) "/" "%s"' % (listed[name], name.encode())] if name in listed else []
        return [*entries, b"{tag} OK done"]

    return usual_answers(b"IMAP4rev1 NAMESPACE", CREATE=lambda _: [b"{tag} NO Mailbox already exists"],
                         LIST=answer_list)


def test_a_folder_another_connection_created_meanwhile_is_used(fake):
    server = fake(b"* OK fake ready", creating({"a": b"\\Noselect \\HasChildren", "a/b": b"\\HasNoChildren"}))
    with store_on(server) as imap:
        assert imap.ensure_folder(("a", "b")) == ("a", "b")
    assert [c for c in server.commands if c.startswith(("CREATE", "LIST"))] == [
        'LIST "" "*"', 'CREATE "a"', 'LIST "" "a"', 'CREATE "a/b"', 'LIST "" "a/b"']


@pytest.mark.parametrize("listed", [{}, {"a": b"\\Noselect"}])
def test_a_create_refused_of_a_folder_that_is_not_there_fails_the_folder(fake, listed):
    server = fake(b"* OK fake ready", creating(listed))
    with store_on(server) as imap:
        with pytest.raises(FolderError, match="cannot create the folder a on alice@127.0.0.1: "
                                              "the server said 'Mailbox already exists'"):
            imap.ensure_folder(("a",))


# --- names and attributes as some servers send them -----------------------------------------------


def test_unquoted_names_with_spaces_and_lower_case_special_use(fake):
    listing = [b'* LIST (\\HasNoChildren) "/" Family Photos',
               b"* STATUS Family Photos (MESSAGES 3 UIDNEXT 4 UIDVALIDITY 7 HIGHESTMODSEQ 9)",
               b'* LIST (\\HasNoChildren \\sent) "/" Sent', b"* STATUS Sent (MESSAGES 0 UIDNEXT 1 UIDVALIDITY 8 "
                                                             b"HIGHESTMODSEQ 1)", b"{tag} OK done"]
    server = fake(b"* OK fake ready", usual_answers(b"IMAP4rev1 NAMESPACE LIST-STATUS CONDSTORE",
                                                    LIST=lambda _: listing))
    with store_on(server) as imap:
        found = {folder.path: folder for folder in imap.list_folders()}
    assert found[("Family Photos",)].version == "7.4.3.9"
    assert found[("Sent",)].role is Role.SENT
