"""Pure parts of the IMAP store: response parsing, argument encoding, flags, names, listings, batches."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrator.core.contentkey import crlf_size
from migrator.core.folder import Folder, Role
from migrator.core.message import Flag, Flags, Message, MessageRef
from migrator.stores.imap.commands import Literal, astring, flag_list, message_literal, uid_set
from migrator.stores.imap.commands import internaldate as format_date
from migrator.stores.imap.flags import flags_from_imap, flags_to_imap, keyword_atom
from migrator.stores.imap.folders import folders_from, role_folder
from migrator.stores.imap.names import NameCodec
from migrator.stores.imap.parser import (
    ListEntry,
    ParseError,
    appended_uids,
    as_text,
    capabilities,
    fetch_items,
    flag_names,
    internaldate,
    list_entry,
    literal_size,
    parse_response,
    personal_namespace,
    status_items,
    uid_set_members,
    unfinished_fetch_uid,
)
from migrator.stores.imap.reading import WantedMessages, plan_batches
from migrator.stores.imap.writing import append_command


def parse(*lines: bytes, literals: tuple[bytes, ...] = ()):
    return parse_response(list(lines), list(literals))


# --- responses ----------------------------------------------------------------------------


def test_fetch_response_with_literals_and_sections():
    response = parse(
        b'* 12 FETCH (UID 5 FLAGS (\\Seen $Forwarded) INTERNALDATE " 7-Jul-1996 02:44:25 -0700" '
        b"BODY[HEADER.FIELDS (MESSAGE-ID DATE)] {5}",
        b" BODY[] {9}",
        b")",
        literals=(b"hi\r\n\r\n"[:5], b"a)\r\n{3}\r\n("),
    )
    assert (response.tag, response.kind, response.number) == ("*", "FETCH", 12)
    items = fetch_items(response)
    assert items["UID"] == "5"
    assert flag_names(items["FLAGS"]) == ("\\Seen", "$Forwarded")
    assert items["BODY[HEADER.FIELDS (MESSAGE-ID DATE)]"] == b"hi\r\n\r"
    assert items["BODY[]"] == b"a)\r\n{3}\r\n("  # a literal's bytes are never parsed
    assert internaldate(items["INTERNALDATE"]) == datetime(1996, 7, 7, 2, 44, 25, tzinfo=timezone(timedelta(hours=-7)))


def test_partial_body_section_and_nil():
    items = fetch_items(parse(b"* 1 FETCH (BODY[]<0> NIL UID 7)"))
    assert items == {"BODY[]<0>": None, "UID": "7"}


def test_quoted_string_escapes():
    response = parse(b'* LIST () "/" "a \\"quoted\\" \\\\ name"')
    assert list_entry(response).name == 'a "quoted" \\ name'


def test_status_response_with_codes():
    ok = parse(b"M3 OK [APPENDUID 38505 3955] APPEND completed")
    assert (ok.tag, ok.kind, ok.ok, ok.code) == ("M3", "OK", True, "APPENDUID")
    assert appended_uids(ok) == [3955]
    no = parse(b"M4 NO [AUTHENTICATIONFAILED] Authentication failed.")
    assert not no.ok
    assert no.said() == "[AUTHENTICATIONFAILED] Authentication failed."
    flags = parse(b"* OK [PERMANENTFLAGS (\\Seen \\*)] Limited")
    assert flag_names(flags.code_args[0]) == ("\\Seen", "\\*")
    assert appended_uids(parse(b"M5 OK Append completed.")) is None
    assert appended_uids(parse(b"M6 OK [APPENDUID 1 7:9,12] done")) == [7, 8, 9, 12]


def test_continuation_and_untagged_counts():
    assert parse(b"+ OK").tag == "+"
    assert parse(b"+").text == ""
    exists = parse(b"* 23 EXISTS")
    assert (exists.kind, exists.number) == ("EXISTS", 23)


def test_capabilities_from_data_and_code():
    assert capabilities(parse(b"* CAPABILITY IMAP4rev1 LITERAL+ auth=plain").data) == {
        "IMAP4REV1", "LITERAL+", "AUTH=PLAIN"
    }
    greeting = parse(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] Dovecot ready.")
    assert capabilities(greeting.code_args) == {"IMAP4REV1", "STARTTLS"}


def test_list_entries():
    entry = list_entry(parse(b'* LIST (\\HasNoChildren \\Sent) "." "Sent Items"'))
    assert entry == ListEntry(frozenset({"\\HasNoChildren", "\\Sent"}), ".", "Sent Items")
    assert entry.has("\\sent") and not entry.has("\\Noselect")
    flat = list_entry(parse(b"* LIST (\\Noselect) NIL {4}", b"", literals=(b"a b)",)))
    assert flat == ListEntry(frozenset({"\\Noselect"}), None, "a b)")
    assert list_entry(parse(b'* LIST () "/" INBOX')).name == "INBOX"
    assert list_entry(parse(b'* LIST () "/" [Gmail]/All')).name == "[Gmail]/All"


def test_status_and_namespace():
    assert status_items(parse(b'* STATUS "a b" (MESSAGES 3 UIDNEXT 9)')) == {"MESSAGES": 3, "UIDNEXT": 9}
    assert personal_namespace(parse(b'* NAMESPACE (("INBOX." ".")) NIL NIL')) == ("INBOX.", ".")
    assert personal_namespace(parse(b'* NAMESPACE (("" NIL)) NIL NIL')) == ("", None)
    assert personal_namespace(parse(b"* NAMESPACE NIL NIL NIL")) is None


# A name as a sloppy server sends it bare: anything on one line that does not open a quoted string.
bare_names = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1).map(str.strip).filter(
    lambda name: name and not name.startswith('"') and name.upper() != "NIL")


@given(bare_names, st.integers(0, 2**31))
def test_a_status_name_sent_bare_is_everything_before_the_last_list(name, count):
    response = parse(b"* STATUS " + name.encode() + b" (MESSAGES %d UIDNEXT 9)" % count)
    assert as_text(response.data[0]) == name
    assert status_items(response) == {"MESSAGES": count, "UIDNEXT": 9}


@given(bare_names.filter(lambda name: "(" not in name))  # "a (b)" reads as a name and LIST-EXTENDED data
def test_a_list_name_sent_bare_is_everything_after_the_separator(name):
    entry = list_entry(parse(b'* LIST (\\HasNoChildren \\sent) "." ' + name.encode()))
    assert entry == ListEntry(frozenset({"\\HasNoChildren", "\\sent"}), ".", name)


def test_proper_names_and_extended_list_data_are_read_as_before():
    assert as_text(parse(b'* STATUS "a (b)" (MESSAGES 1)').data[0]) == "a (b)"
    extended = parse(b'* LIST () "/" "x" ("CHILDINFO" ("SUBSCRIBED"))')
    assert list_entry(extended).name == "x" and extended.data[3] == [b"CHILDINFO", [b"SUBSCRIBED"]]
    assert list_entry(parse(b"* LIST () NIL {5}", b"", literals=(b"a (b)",))).name == "a (b)"


@pytest.mark.parametrize(
    "line",
    [b"* 1 FETCH (UID 1", b"* 1 FETCH UID 1)", b'* LIST () "/" "open', b"* 1 FETCH (BODY[HEADER (A)", b"", b"*"],
)
def test_malformed_responses_raise_parse_error(line):
    with pytest.raises(ParseError):
        parse(line)


def test_typed_views_reject_wrong_shapes():
    with pytest.raises(ParseError):
        fetch_items(parse(b"* 1 FETCH (UID)"))
    with pytest.raises(ParseError):
        status_items(parse(b'* STATUS "x" (MESSAGES many)'))
    with pytest.raises(ParseError):
        list_entry(parse(b"* LIST ()"))


def test_literal_markers():
    assert literal_size(b"* 1 FETCH (BODY[] {120}") == 120
    assert literal_size(b"A1 APPEND x {5+}") == 5
    assert literal_size(b'* LIST () "/" "x{5}"') is None


@pytest.mark.parametrize("segments, uid", [
    ([b"* 5 FETCH (UID 12 FLAGS (\\Seen) BODY[] {99999}"], 12),
    ([b"* 5 FETCH (BODY[HEADER] {3}", b" UID 44 BODY[] {99999}"], 44),
    ([b"* 5 fetch (uid 7 BODY[] {99999}"], 7),
    ([b"* 5 FETCH (FLAGS (UID 3) BODY[] {99999}"], None),  # a flag called UID is not the item
    ([b"* 5 FETCH (BODY[HEADER.FIELDS (UID)] {10}", b" BODY[] {99999}"], None),
    ([b"* 5 FETCH (BODY[] {99999}"], None),  # a UID after the body is never read
    ([b'* LIST () "/" {99999}'], None),
])
def test_the_uid_of_a_fetch_cut_short_at_a_literal(segments, uid):
    assert unfinished_fetch_uid(segments) == uid


@given(st.integers(1, 2**32 - 1), st.lists(st.sampled_from([
    b"FLAGS (\\Seen UID $Work)", b'INTERNALDATE "01-Jan-2020 00:00:00 +0000"', b"RFC822.SIZE 120",
    b"BODY[HEADER.FIELDS (UID FROM)] NIL", b'X-GM-LABELS ("UID 5")',
])), st.integers(0, 5))
def test_the_uid_is_found_wherever_it_is_before_the_literal(uid, items, position):
    items.insert(min(position, len(items)), b"UID %d" % uid)
    assert unfinished_fetch_uid([b"* 9 FETCH (" + b" ".join(items) + b" BODY[] {3000000000}"]) == uid


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)))
def test_quoted_strings_round_trip(text):
    encoded = astring(text)
    assert isinstance(encoded, bytes)
    assert list_entry(parse(b'* LIST () "/" ' + encoded)).name == text


@given(st.binary())
def test_literals_round_trip(data):
    response = parse(b"* 1 FETCH (UID 1 BODY[] {%d}" % len(data), b")", literals=(data,))
    assert fetch_items(response)["BODY[]"] == data


def test_astring_uses_a_literal_for_8bit_and_control_characters():
    assert astring("Entwürfe") == Literal("Entwürfe".encode())
    assert astring("a\r\nb") == Literal(b"a\r\nb")


# --- dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("01-Jan-2024 00:00:00 +1400", datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=14)))),
        ("31-dec-1969 23:59:59 -1200", datetime(1969, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-12)))),
        (" 5-Mar-2020 10:15:00 +0545", datetime(2020, 3, 5, 10, 15, tzinfo=timezone(timedelta(hours=5, minutes=45)))),
    ],
)
def test_internaldate_parses(text, expected):
    parsed = internaldate(text.encode())
    assert parsed == expected and parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "text", [b"32-Jan-2024 00:00:00 +0000", b"01-Foo-2024 00:00:00 +0000", b"2024-01-01T00:00:00Z"]
)
def test_bad_internaldates_raise(text):
    with pytest.raises(ParseError):
        internaldate(text)


aware_datetimes = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.timezones()
).map(lambda d: d.replace(microsecond=0))


@given(aware_datetimes)
def test_dates_keep_their_instant(moment):
    written = format_date(moment)
    assert written.startswith(b'"') and written.endswith(b'"')
    # timestamps, not ==: PEP 495 makes times in a DST gap or fold unequal to any other zone's
    assert internaldate(written[1:-1]).timestamp() == moment.timestamp()


def test_date_keeps_its_offset_when_it_can():
    moment = datetime(2021, 6, 1, 8, 30, tzinfo=timezone(timedelta(hours=-3, minutes=-30)))
    assert format_date(moment) == b'"01-Jun-2021 08:30:00 -0330"'
    odd = datetime(1890, 1, 1, tzinfo=timezone(timedelta(minutes=53, seconds=28)))
    assert format_date(odd) == b'"31-Dec-1889 23:06:32 +0000"'


# --- UID sets and commands -------------------------------------------------------------------


def test_uid_sets():
    assert uid_set([7, 1, 2, 3, 4, 9, 10]) == b"1:4,7,9:10"
    assert uid_set([5]) == b"5"
    with pytest.raises(ValueError):
        uid_set([])


@given(st.sets(st.integers(min_value=1, max_value=500), min_size=1))
def test_uid_sets_expand_to_their_uids(uids):
    assert uid_set_members(uid_set(uids).decode()) == sorted(uids)


@pytest.mark.parametrize("text", ["", "1:", "a", "1,,2", "*"])
def test_bad_uid_sets_raise(text):
    with pytest.raises(ParseError):
        uid_set_members(text)


def test_append_command_parts():
    when = datetime(2024, 2, 29, 12, 0, 1, tzinfo=timezone.utc)
    message = Message(b"Subject: x\r\n\r\nbody\r\n", received=when)
    parts = append_command("Sent Items", [(message.raw, ["\\Seen", "$Forwarded"], when), (message.raw, [], when)])
    assert parts == [
        b"APPEND ",
        b'"Sent Items"',
        b' (\\Seen $Forwarded) "29-Feb-2024 12:00:01 +0000" ',
        Literal(message.raw),
        b' "29-Feb-2024 12:00:01 +0000" ',
        Literal(message.raw),
    ]
    assert flag_list([]) == b"()"


def test_append_command_without_a_date_and_with_bare_lf():
    parts = append_command("INBOX", [(b"a\nb\r\n", [], None)])
    assert parts == [b"APPEND ", b'"INBOX"', b" ", Literal(b"a\r\nb\r\n")]


@given(st.binary())
def test_messages_are_sent_with_crlf_line_ends_and_nothing_else_changed(raw):
    sent = message_literal(raw).data
    assert b"\n" not in sent.replace(b"\r\n", b"")
    assert sent.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")
    assert len(sent) == crlf_size(raw)


# --- flags ----------------------------------------------------------------------------------


def test_flags_from_imap():
    flags = flags_from_imap(["\\Seen", "\\ANSWERED", "\\Recent", "$forwarded", "work", "\\Unknown"])
    assert flags == Flags.of(Flag.SEEN, Flag.ANSWERED, Flag.FORWARDED, keywords=("work",))


def test_flags_to_imap():
    flags = Flags.of(Flag.DRAFT, Flag.SEEN, Flag.FORWARDED, keywords=("$Label1", "my label", "a(b)"))
    assert flags_to_imap(flags) == ["\\Draft", "\\Seen", "$Forwarded", "$Label1", "a_b_", "my_label"]
    assert keyword_atom("  ") is None
    assert keyword_atom("Ärger") == "_rger"


keywords = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1).filter(
    lambda k: keyword_atom(k) == k and k.lower() != "$forwarded"
)


@given(st.frozensets(st.sampled_from(list(Flag))), st.frozensets(keywords, max_size=4))
def test_flags_round_trip(system, words):
    flags = Flags(system, words)
    assert flags_from_imap(flags_to_imap(flags)) == flags


# --- names ------------------------------------------------------------------------------------


def test_names_with_slash_separator():
    codec = NameCodec("/")
    assert codec.path_of("inbox", "/") == ("INBOX",)
    assert codec.path_of("Inbox/Sub", "/") == ("INBOX", "Sub")
    assert codec.path_of("Entw&APw-rfe/&ZeVnLIqe-", "/") == ("Entwürfe", "日本語")
    assert codec.server_name(("Entwürfe", "日本語")) == "Entw&APw-rfe/&ZeVnLIqe-"
    assert codec.server_name(("a/b", "c")) == "a_b/c"
    assert codec.storable(("a/b", "v1.2")) == ("a_b", "v1.2")


def test_names_with_dot_separator_and_prefix():
    codec = NameCodec(".", "INBOX.")
    assert codec.path_of("INBOX", ".") == ("INBOX",)
    assert codec.path_of("INBOX.Sent", ".") == ("Sent",)
    assert codec.server_name(("Sent",)) == "INBOX.Sent"
    assert codec.server_name(("v1.2 notes", "x")) == "INBOX.v1_2 notes.x"
    assert codec.server_name(("INBOX",)) == "INBOX"
    assert codec.server_name(("inbox", "a")) == "INBOX.a"
    assert NameCodec("_").server_name(("a_b",)) == "a-b"
    assert NameCodec(None).server_name(("a", "b")) == "a/b"


def test_names_the_server_should_not_send_are_kept():
    codec = NameCodec("/")
    assert codec.path_of("R&D", "/") == ("R&D",)  # not valid modified UTF-7
    assert codec.path_of("Caf\u00e9", "/") == ("Caf\u00e9",)  # 8-bit, from a server ignoring RFC 3501
    assert codec.path_of("flat/name", None) == ("flat/name",)


components = st.text(min_size=1, max_size=12).filter(lambda s: "/" not in s and s.upper() != "INBOX")


@pytest.mark.parametrize("codec", [NameCodec("/"), NameCodec(".", "INBOX."), NameCodec(".")])
@given(path=st.lists(components, min_size=1, max_size=4).map(tuple))
def test_paths_round_trip_through_server_names(codec, path):
    stored = codec.storable(path)
    assert codec.path_of(codec.server_name(path), codec.separator) == stored
    assert all(codec.separator not in part for part in stored)


# --- listings and roles -----------------------------------------------------------------------


def entry(name: str, *attributes: str, separator: str | None = "/") -> ListEntry:
    return ListEntry(frozenset(attributes), separator, name)


def test_folders_from_listing():
    entries = [
        entry("Projects/2024/Q1", "\\HasNoChildren"),
        entry("Sent Items", "\\Sent"),
        entry("Trash", "\\TRASH"),
        entry("Archive", "\\Noselect"),
        entry("Gone", "\\NonExistent"),
        entry("inbox"),
    ]
    found, names = folders_from(entries, NameCodec("/"))
    assert [f.path for f in found] == [
        ("INBOX",),
        ("Archive",),
        ("Gone",),
        ("Projects",),
        ("Projects", "2024"),
        ("Projects", "2024", "Q1"),
        ("Sent Items",),
        ("Trash",),
    ]
    by_path = {f.path: f for f in found}
    assert by_path[("INBOX",)].role is Role.INBOX
    assert by_path[("Sent Items",)].role is Role.SENT
    assert by_path[("Trash",)].role is Role.TRASH
    assert not by_path[("Archive",)].selectable and not by_path[("Gone",)].selectable
    assert not by_path[("Projects",)].selectable  # a parent the server did not list
    assert names[("INBOX",)] == "inbox" and ("Projects",) not in names


def test_roles_by_usual_name_only_where_no_folder_is_marked():
    unmarked = [entry("INBOX"), entry("INBOX.Sent", separator="."), entry("INBOX.Trash", separator="."),
                entry("INBOX.Projects", separator=".")]
    found, _ = folders_from(unmarked, NameCodec(".", "INBOX."))
    assert {f.path: f.role for f in found} == {("INBOX",): Role.INBOX, ("Sent",): Role.SENT, ("Trash",): Role.TRASH,
                                               ("Projects",): None}
    marked, _ = folders_from([entry("Sent"), entry("Sent Items", "\\sent")], NameCodec("/"))
    assert {f.path: f.role for f in marked} == {("Sent",): None, ("Sent Items",): Role.SENT}


def test_role_folder_prefers_the_marked_folder():
    listing = [Folder(("INBOX",), Role.INBOX), Folder(("Sent",)), Folder(("Gesendet",), Role.SENT)]
    assert role_folder(listing, ("Sent Items",), Role.SENT) == ("Gesendet",)
    assert role_folder(listing, ("Trash",), Role.TRASH) is None


def test_role_folder_falls_back_to_usual_names():
    listing = [Folder(("INBOX",), Role.INBOX), Folder(("deleted items",)), Folder(("Sent",)), Folder(("Sent Items",))]
    assert role_folder(listing, ("Trash",), Role.TRASH) == ("deleted items",)
    assert role_folder(listing, ("Sent Items",), Role.SENT) == ("Sent Items",)
    assert role_folder(listing, ("Outbox",), Role.SENT) == ("Sent",)
    unselectable = [Folder(("Junk",), selectable=False)]
    assert role_folder(unselectable, ("Junk",), Role.JUNK) is None


# --- batches --------------------------------------------------------------------------------


def test_batches_by_count_and_bytes():
    refs = [MessageRef(str(uid), size=size) for uid, size in [(1, 5), (2, 5), (3, 20), (4, None), (5, 1)]]
    assert list(plan_batches(refs, max_bytes=10, max_messages=3)) == [[1, 2], [3], [4, 5]]
    assert list(plan_batches(refs, max_bytes=100, max_messages=2)) == [[1, 2], [3, 4], [5]]
    assert list(plan_batches([])) == []


def test_wanted_messages_are_found_by_uid_until_they_arrive():
    wanted = WantedMessages([MessageRef(str(uid)) for uid in (30, 7, 12)])
    assert [r.uid for r in wanted.refs] == ["7", "12", "30"]
    assert wanted.position(12) == 1
    assert wanted.position(8) is None and wanted.position(31) is None
    wanted.arrive(1)
    assert wanted.position(12) is None
    assert wanted.arrived == 1
    assert [r.uid for r in wanted.pending()] == ["7", "30"]


@given(st.lists(st.integers(min_value=0, max_value=50), max_size=60), st.integers(1, 100), st.integers(1, 7))
def test_batches_keep_order_and_limits(sizes, max_bytes, max_messages):
    refs = [MessageRef(str(uid), size=size) for uid, size in enumerate(sizes, 1)]
    batches = list(plan_batches(refs, max_bytes, max_messages))
    assert [uid for batch in batches for uid in batch] == list(range(1, len(sizes) + 1))
    for batch in batches:
        assert 1 <= len(batch) <= max_messages
        assert len(batch) == 1 or sum(sizes[uid - 1] for uid in batch) <= max_bytes
