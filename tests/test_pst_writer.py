"""The PST writer: its pure encoders (property-tested) and PstStore as a target and a source.

Cross-checks with readpst and pffexport live in test_pst_read_by_others.py.
"""

from __future__ import annotations

import os
import random
import stat
import struct
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrator.core.errors import StoreError
from migrator.core.folder import Role
from migrator.core.message import Flag, Flags, Message
from migrator.endpoints.endpoint import parse_endpoint
from migrator.stores import open_store
from migrator.stores.pst.ltp import format as ltp_fmt
from migrator.stores.pst.ltp import props as pt
from migrator.stores.pst.ltp.heap_writer import Heap, build_bth, fill_level
from migrator.stores.pst.ltp.values_writer import encode_multi_valued, filetime
from migrator.stores.pst.ltp.writer import row_layout
from migrator.stores.pst.messaging import props as p
from migrator.stores.pst.messaging.namemap_writer import name_to_id_map, writer_named_properties
from migrator.stores.pst.ndb import allocation
from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb.allocation import Allocator, longest_zero_run, set_bits
from migrator.stores.pst.ndb.btree_pages import write_btree
from migrator.stores.pst.ndb.header_writer import build_header
from migrator.stores.pst.ndb.writer import BlockEntries, CopiedEntries, HeaderState, NodeIds, full_blocks
from migrator.stores.pst.reader import PstReader
from migrator.stores.pst.store import PstStore, part_path
from migrator.stores.pst.validate import validate
from tests.support.data import PST_SAMPLES
from tests.support.pst_corpus import BASE_DATE, body_text, corpus, mail

SAMPLE = PST_SAMPLES / "pstsdk_sample1.pst"

# --- pure encoders ------------------------------------------------------------------------------------------


def test_crc_and_signature_match_an_outlook_header() -> None:
    header = SAMPLE.read_bytes()[:fmt.HEADER_SIZE]
    assert struct.unpack_from("<I", header, fmt.HDR_CRC_PARTIAL)[0] == fmt.crc32(header[8:479])
    assert struct.unpack_from("<I", header, fmt.HDR_CRC_FULL)[0] == fmt.crc32(header[8:524])
    assert fmt.signature(0x12345678, 0x9ABC) == ((0x12345678 ^ 0x9ABC) >> 16) ^ ((0x12345678 ^ 0x9ABC) & 0xFFFF)


@given(st.integers(0, fmt.AMAP_BITS - 1), st.integers(0, 300))
def test_set_bits_sets_exactly_the_range_msb_first(first: int, count: int) -> None:
    count = min(count, fmt.AMAP_BITS - first)
    bitmap = bytearray(fmt.PAGE_DATA_SIZE)
    set_bits(bitmap, first, count)
    bits = "".join(f"{byte:08b}" for byte in bitmap)
    assert bits == "0" * first + "1" * count + "0" * (fmt.AMAP_BITS - first - count)
    assert longest_zero_run(bytes(bitmap)) == max(first, fmt.AMAP_BITS - first - count) if count else fmt.AMAP_BITS


def test_finished_intervals_go_to_the_disk_then_leave_the_cache_and_the_open_one_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    advised = []

    def forget_cached(fd: int, start: int, end: int) -> None:
        # The AMap page of the interval just left, written last, is already the kernel's.
        assert os.pread(fd, 1, end - fmt.AMAP_INTERVAL) != b"\0"
        advised.append((start, end))

    monkeypatch.setattr(allocation, "WRITE_BEHIND_INTERVALS", 2)
    monkeypatch.setattr(allocation, "forget_cached", forget_cached)
    with open(tmp_path / "file", "w+b") as file:
        allocator = Allocator(file)
        while allocator.interval < 7:
            allocator.write(allocator.allocate(60_000, 64), b"x" * 60_000)
    at = fmt.interval_offset
    # Each stretch of two intervals is handed over when finished and dropped a stretch later.
    assert advised == [(at(0), at(2)), (at(2), at(4)), (at(0), at(2)), (at(4), at(6)), (at(2), at(4))]


@given(st.lists(st.binary(max_size=50), max_size=20))
def test_multi_valued_offsets_point_at_each_item(items: list[bytes]) -> None:
    encoded = encode_multi_valued(items)
    count = struct.unpack_from("<I", encoded)[0]
    offsets = list(struct.unpack_from(f"<{count}I", encoded, 4)) + [len(encoded)]
    assert [encoded[offsets[i]:offsets[i + 1]] for i in range(count)] == items


def test_filetime_counts_100ns_ticks_since_1601() -> None:
    assert filetime(datetime(1601, 1, 1, tzinfo=timezone.utc)) == 0
    assert filetime(datetime(1970, 1, 1, tzinfo=timezone.utc)) == 116444736000000000
    assert filetime(datetime(1970, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))) == 116444736000000000


@given(st.lists(st.sampled_from([0x0003, 0x000B, 0x0002, 0x0014, 0x0040, 0x001F, 0x0102, 0x101F]), max_size=40))
def test_row_layout_places_cells_without_overlap(types: list[int]) -> None:
    tags = tuple(pt.tag(0x8000 + i, prop_type) for i, prop_type in enumerate(types))
    layout = row_layout(tags)
    cells = sorted((c.offset, c.offset + c.width) for c in layout.columns)
    assert all(end <= start for (_, end), (start, _) in zip(cells, cells[1:]))
    assert cells[-1][1] == layout.ends[ltp_fmt.TCI_1B]
    assert layout.row_size == layout.ends[ltp_fmt.TCI_1B] + (len(layout.columns) + 7) // 8
    assert sorted(c.bit for c in layout.columns) == list(range(len(layout.columns)))
    assert layout.columns[0].tag >> 16 == pt.PID_LTP_ROW_ID and layout.columns[0].offset == 0


def parse_heap(blocks: list[bytes]) -> dict[int, bytes]:
    """Return every allocation of a heap by HID, read through the page maps (independently of the writer)."""
    found = {}
    for index, block in enumerate(blocks):
        map_offset = struct.unpack_from("<H", block)[0]
        count = struct.unpack_from("<H", block, map_offset)[0]
        offsets = struct.unpack_from(f"<{count + 1}H", block, map_offset + 4)
        for i in range(count):
            found[ltp_fmt.make_hid(index, i + 1)] = block[offsets[i]:offsets[i + 1]]
    return found


@given(st.lists(st.binary(max_size=ltp_fmt.MAX_HEAP_ALLOC), max_size=60))
def test_heap_allocations_read_back_through_the_page_maps(values: list[bytes]) -> None:
    heap = Heap(ltp_fmt.HN_CLIENT_PC)
    hids = [heap.allocate(value) for value in values]
    blocks = heap.block_payloads(0x20)
    assert all(len(block) <= fmt.MAX_BLOCK_PAYLOAD for block in blocks)
    assert blocks[0][2] == ltp_fmt.HN_SIGNATURE and blocks[0][3] == ltp_fmt.HN_CLIENT_PC
    allocations = parse_heap(blocks)
    assert [allocations[hid] for hid in hids] == values


def test_fill_level_grows_as_free_space_shrinks() -> None:
    levels = [fill_level(free) for free in range(8200, -1, -1)]
    assert levels == sorted(levels) and levels[0] == 0 and levels[-1] == 15


@pytest.mark.parametrize("count", [0, 1, 447, 448, 2000, 250_000])
def test_bth_levels_reach_every_record(count: int) -> None:
    heap = Heap(ltp_fmt.HN_CLIENT_TC)
    records = [(key, struct.pack("<I", key * 7)) for key in range(count)]
    ref = build_bth(heap, 4, 4, records)
    allocations = parse_heap(heap.block_payloads(ref.header))
    _, key_size, data_size, levels, root = ltp_fmt.BTHHEADER.unpack(allocations[ref.header])
    found = list(walk_bth(allocations, root, levels, key_size, data_size)) if root else []
    assert found == [struct.pack("<II", key, key * 7) for key in range(count)]


def walk_bth(allocations: dict[int, bytes], hid: int, level: int, key_size: int, data_size: int):
    """Yield the leaf records under ``hid`` in order."""
    data = allocations[hid]
    size = key_size + (4 if level else data_size)
    for offset in range(0, len(data), size):
        record = data[offset:offset + size]
        if level:
            child = struct.unpack_from("<I", record, key_size)[0]
            yield from walk_bth(allocations, child, level - 1, key_size, data_size)
        else:
            yield record


class PageCollector:
    """A B-tree page sink that keeps the pages in memory."""

    def __init__(self) -> None:
        self.pages: dict[int, bytes] = {}

    def write_page(self, body: bytes, ptype: int) -> tuple[int, int]:
        bid = len(self.pages) + 1
        self.pages[bid] = body
        return bid, bid * fmt.PAGE_SIZE


@pytest.mark.parametrize("count", [0, 1, 15, 16, 301, 7000])
def test_nbt_pages_hold_sorted_keys_and_parent_keys_equal_first_child_keys(count: int) -> None:
    sink = PageCollector()
    entries = [(nid, fmt.NBTENTRY.pack(nid, 4, 0, 0)) for nid in range(0x21, 0x21 + count * 32, 32)]
    root_bid, _ = write_btree(sink, entries, fmt.PTYPE_NBT, fmt.NBTENTRY.size)
    assert collect_keys(sink.pages, root_bid) == [nid for nid, _ in entries]


def collect_keys(pages: dict[int, bytes], bid: int) -> list[int]:
    """Return the leaf keys under page ``bid``, checking every parent key against its child's first key."""
    page = pages[bid]
    count, _, entry_size, level = fmt.BTPAGE_META.unpack_from(page, fmt.BTPAGE_ENTRIES_SIZE)
    keys = []
    for i in range(count):
        key, child, _ = fmt.BTENTRY.unpack_from(page, i * entry_size) if level else (
            struct.unpack_from("<Q", page, i * entry_size)[0], None, None)
        if level:
            below = collect_keys(pages, child)
            assert below[0] == key
            keys += below
        else:
            keys.append(key)
    assert keys == sorted(keys)
    return keys


def test_header_crcs_and_root_fields() -> None:
    last_index = {fmt.NID_TYPE_NORMAL_MESSAGE: 0x10005}
    state = HeaderState(0x44400, 0x4400, 1024, (7, 0x8000), (8, 0x8200), 0x100, 9, last_index)
    header = build_header(state, 1)
    assert header[:4] == fmt.MAGIC and header[fmt.HDR_CRYPT] == fmt.CRYPT_NONE
    assert struct.unpack_from("<I", header, fmt.HDR_CRC_FULL)[0] == fmt.crc32(header[8:524])
    assert struct.unpack_from("<I", header, fmt.HDR_CRC_PARTIAL)[0] == fmt.crc32(header[8:479])
    root = fmt.ROOT_STRUCT.unpack_from(header, fmt.HDR_ROOT)
    assert root[1:4] == (0x44400, 0x4400, 1024) and root[5:9] == (7, 0x8000, 8, 0x8200)
    assert struct.unpack_from("<I", header, fmt.HDR_RGNID + 4 * fmt.NID_TYPE_NORMAL_MESSAGE)[0] == 0x10005


def test_name_to_id_map_streams_describe_every_named_property() -> None:
    named = list(writer_named_properties().values())
    values = name_to_id_map(named)
    entries = values[pt.tag(p.PID_NAMEID_STREAM_ENTRY, pt.PT_BINARY)]
    strings = values[pt.tag(p.PID_NAMEID_STREAM_STRING, pt.PT_BINARY)]
    guids = values[pt.tag(p.PID_NAMEID_STREAM_GUID, pt.PT_BINARY)]
    assert guids == p.PS_MIGRATOR.bytes_le
    decoded = []
    for offset in range(0, len(entries), 8):
        name_offset, kind, index = struct.unpack_from("<IHH", entries, offset)
        length = struct.unpack_from("<I", strings, name_offset)[0]
        decoded.append((kind >> 1, strings[name_offset + 4:name_offset + 4 + length].decode("utf-16-le"), index))
    assert decoded == [(2, p.KEYWORDS_NAME, 0)] + [(3, name, i + 1) for i, name in enumerate(p.MIGRATOR_NAMED_PROPS)]
    bucket_records = sum(len(v) for t, v in values.items() if pt.tag_id(t) >= p.PID_NAMEID_BUCKET_BASE)
    assert bucket_records == len(entries)


# --- PstStore -----------------------------------------------------------------------------------------------


def write(path: Path, messages: list[Message], **options: int) -> list[str]:
    """Write ``messages`` through PstStore, validate every part written; return their uids."""
    store = PstStore(parse_endpoint(f"pst:{path}"), readonly=False, **options)
    uids = []
    with store:
        for message in messages:
            (result,) = store.append_batch(store.ensure_folder(message.folder), [message])
            assert result.ok, result.error
            uids.append(result.uid)
    for part in sorted(path.parent.glob(f"{path.stem}*.pst")):
        assert validate(part) == [], part
    return uids


def read_all(path: Path) -> dict[tuple[str, ...], list[Message]]:
    """Return every message of the PST by folder, through PstStore as a source."""
    with open_store(parse_endpoint(f"pst:{path}")) as store:
        return {folder.path: list(store.messages(folder.path)) for folder in store.list_folders()}


def test_round_trip_is_byte_exact_with_flags_dates_and_folders(tmp_path: Path) -> None:
    messages = corpus()
    path = tmp_path / "archive.pst"
    write(path, messages)
    back = read_all(path)
    for folder in {m.folder for m in messages}:
        want = [(m.raw, m.flags, m.received) for m in messages if m.folder == folder]
        assert [(m.raw, m.flags, m.received) for m in back[folder]] == want
    assert back[("Deleted Items",)] == []
    assert all(m.received.utcoffset() == timedelta(hours=2) for m in back[("INBOX",)])


def test_the_file_appears_only_when_closed_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "a.pst"
    store = open_store(parse_endpoint(f"pst:{path}"), readonly=False)
    store.open()
    store.append_batch(store.ensure_folder(("INBOX",)), [Message(mail(1))])
    assert not path.exists()
    (temp,) = tmp_path.iterdir()
    assert stat.S_IMODE(temp.stat().st_mode) == 0o600
    store.close()
    assert [child.name for child in tmp_path.iterdir()] == ["a.pst"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_uids_are_the_message_nids_the_reader_reports(tmp_path: Path) -> None:
    messages = [Message(mail(n), Flags.of(Flag.SEEN), BASE_DATE, ("INBOX",)) for n in range(3)]
    uids = write(tmp_path / "a.pst", messages)
    with open_store(parse_endpoint(f"pst:{tmp_path / 'a.pst'}")) as store:
        refs = list(store.scan(("INBOX",)).refs)
        assert [ref.uid for ref in refs] == uids
        assert all(ref.flags == Flags.of(Flag.SEEN) for ref in refs)
        assert {f.path: f.role for f in store.list_folders()}[("INBOX",)] == Role.INBOX


def test_output_is_split_into_parts_at_the_size_limit(tmp_path: Path) -> None:
    messages = [Message(mail(n, attachments=1, attachment_size=200_000), folder=("INBOX",)) for n in range(6)]
    path = tmp_path / "split.pst"
    write(path, messages, part_size=300_000)
    parts = sorted(tmp_path.iterdir())
    assert [part.name for part in parts] == ["split-2.pst", "split-3.pst", "split.pst"]
    counts = [PstReader(part).folder(("INBOX",)).count for part in (path, part_path(path, 2), part_path(path, 3))]
    assert sum(counts) == 6 and all(counts)
    assert len(read_all(path)[("INBOX",)]) == 6  # read as one store: every part (see test_pst_size)


def test_writing_into_an_existing_pst_keeps_its_messages_and_their_uids(tmp_path: Path) -> None:
    path = tmp_path / "inc.pst"
    first = [Message(mail(n), Flags.of(Flag.SEEN), BASE_DATE, ("INBOX",)) for n in range(3)]
    old_uids = write(path, first)
    old_entries = node_entries(path, old_uids)
    second = [Message(mail(10), Flags(), BASE_DATE, ("INBOX", "New"))]
    write(path, second)
    assert node_entries(path, old_uids) == old_entries  # blocks copied as they were, same BIDs
    back = read_all(path)
    assert [m.raw for m in back[("INBOX",)]] == [m.raw for m in first]
    assert [m.uid for m in back[("INBOX",)]] == old_uids
    assert [m.raw for m in back[("INBOX", "New")]] == [second[0].raw]


def test_rebuilding_a_file_another_program_wrote_copies_its_blocks_in_any_order(tmp_path: Path) -> None:
    # The blocks are copied folder by folder, so their BIDs, given message by message across the folders,
    # come out of order; the block B-tree of the new file must still list them all, in order (validate).
    from tests.support.pst_foreign import make_foreign

    path = tmp_path / "other.pst"
    folders = [("INBOX",), ("Archive",), ("INBOX", "Sub"), ("Sent",)]
    uids = write(path, [Message(mail(n), folder=folders[n % len(folders)]) for n in range(40)])
    make_foreign(path)
    old_entries = node_entries(path, uids)
    inode = path.stat().st_ino
    write(path, [Message(mail(50), folder=("INBOX",))])  # validates the rebuilt file
    assert path.stat().st_ino != inode
    assert node_entries(path, uids) == old_entries
    assert sum(len(found) for found in read_all(path).values()) == 41


def node_entries(path: Path, uids: list[str]) -> list[tuple[int, int]]:
    """Return (bidData, bidSub) of the message nodes ``uids`` of the PST at ``path``."""
    from migrator.stores.pst.reader import PstReader

    with PstReader(path) as pst:
        return [(entry.bid_data, entry.bid_sub) for entry in map(pst.ndb.node, map(int, uids))]


def test_missing_directory_and_missing_file_are_one_sentence_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist; create it first"):
        with open_store(parse_endpoint(f"pst:{tmp_path / 'nope' / 'a.pst'}"), readonly=False):
            pass
    with pytest.raises(StoreError, match="does not exist"):
        with open_store(parse_endpoint(f"pst:{tmp_path / 'missing.pst'}")):
            pass


def test_message_size_counts_every_data_byte_and_matches_the_contents_table(tmp_path: Path) -> None:
    from migrator.stores.pst.ltp.reader import Node, PropertyContext, TableContext
    from migrator.stores.pst.reader import PstReader

    path = tmp_path / "size.pst"
    write(path, [Message(mail(1, attachments=2, attachment_size=20_000, embedded=True), folder=("INBOX",))])
    with PstReader(path) as pst:
        folder = pst.folder(("INBOX",))
        (ref,) = pst.scan(folder)
        message = Node.top(pst.ndb, int(ref.uid))
        contents = TableContext(Node.top(pst.ndb, fmt.make_nid(fmt.NID_TYPE_CONTENTS_TABLE, folder.nid >> 5)),
                                pst.ndb.layout)
        (row,) = contents.rows()
        # PidTagMessageSize: the payload bytes of every external data block of the node and its subnodes.
        assert PropertyContext(message).get(p.PID_MESSAGE_SIZE) == node_size(message) > 2 * 20_000
        assert contents.value(row, p.PID_MESSAGE_SIZE) == node_size(message)
        assert contents.row_id(row) == int(ref.uid)


def node_size(node) -> int:  # noqa: ANN001 - the reader's Node
    """Return the external data bytes of ``node`` and all its subnodes."""
    return node.data_size() + sum(node_size(node.subnode(nid)) for nid in node.subnode_ids())


def leaves(part) -> list[tuple[str, bytes]]:  # noqa: ANN001 - an email.message.Message
    """Return (content type, decoded payload) of every leaf part, depth first, attached messages included."""
    import email

    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload(0) if part.is_multipart() else email.message_from_bytes(part.get_payload(decode=True))
        return [("message/rfc822", b"")] + leaves(inner)
    if part.is_multipart():
        return [leaf for child in part.get_payload() for leaf in leaves(child)]
    return [(part.get_content_type(), part.get_payload(decode=True))]


@pytest.mark.parametrize("message", corpus()[:12], ids=lambda m: m.raw[m.raw.find(b"Subject"):][:20].decode())
def test_mime_tree_matches_the_standard_parser(message: Message) -> None:
    import email

    from migrator.stores.pst.convert.mime_tree import parse_message

    assert leaves(parse_message(message.raw)) == leaves(email.message_from_bytes(message.raw))


@given(st.lists(st.binary(max_size=40).filter(lambda b: b"--" not in b and not b.endswith(b"\r")), max_size=5),
       st.sampled_from([b"\r\n", b"\n"]))
def test_split_multipart_returns_each_part(parts: list[bytes], newline: bytes) -> None:
    from migrator.stores.pst.convert.mime_tree import split_multipart

    delimited = b"".join(b"--XyZ" + newline + part + newline for part in parts)
    body = b"preamble" + newline + delimited + b"--XyZ--" + newline
    assert split_multipart(body, b"XyZ") == parts


def test_a_target_reports_no_messages_for_new_folders_and_the_old_ones_for_existing(tmp_path: Path) -> None:
    path = tmp_path / "t.pst"
    write(path, [Message(mail(1), folder=("INBOX",))])
    with PstStore(parse_endpoint(f"pst:{path}"), readonly=False) as store:
        store.ensure_folder(("Brand", "New"))
        assert store.content_keys(("Brand", "New")) == {}
        assert sum(len(uids) for uids in store.content_keys(("INBOX",)).values()) == 1
        assert ("Brand", "New") in [folder.path for folder in store.list_folders()]


def test_reading_a_missing_folder_is_a_folder_error(tmp_path: Path) -> None:
    from migrator.core.errors import FolderError

    path = tmp_path / "r.pst"
    write(path, [Message(mail(1), folder=("INBOX",))])
    with open_store(parse_endpoint(f"pst:{path}")) as store, pytest.raises(FolderError, match="no folder Nope"):
        store.scan(("Nope",))


def test_a_run_that_adds_nothing_leaves_an_existing_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "same.pst"
    write(path, [Message(mail(1), folder=("INBOX",))])
    before = path.read_bytes()
    with PstStore(parse_endpoint(f"pst:{path}"), readonly=False) as store:
        assert store.ensure_folder(("INBOX",)) == ("INBOX",)
        assert store.append_batch(("INBOX",), []) == []
    assert path.read_bytes() == before
    assert [child.name for child in tmp_path.iterdir()] == ["same.pst"]


# --- MIME to MAPI -------------------------------------------------------------------------------------------


def mapped(message: Message):  # noqa: ANN201 - MapiMessage
    """Return the MAPI form of ``message``."""
    from migrator.stores.pst.convert.mapi_from_mime import mapi_from_message

    return mapi_from_message(message, writer_named_properties())


def test_flags_map_to_read_flagged_and_last_verb() -> None:
    props = mapped(Message(mail(1), Flags.of(Flag.SEEN, Flag.FLAGGED, Flag.ANSWERED, Flag.DRAFT))).props
    assert props[pt.tag(p.PID_MESSAGE_FLAGS, pt.PT_LONG)] & (p.MSGFLAG_READ | p.MSGFLAG_UNSENT) == 9
    assert props[pt.tag(p.PID_FLAG_STATUS, pt.PT_LONG)] == p.FLAG_STATUS_FOLLOWUP_FLAGGED
    assert props[pt.tag(p.PID_LAST_VERB_EXECUTED, pt.PT_LONG)] == p.VERB_REPLY_TO_SENDER
    unread = mapped(Message(mail(1), Flags.of(Flag.FORWARDED))).props
    assert unread[pt.tag(p.PID_MESSAGE_FLAGS, pt.PT_LONG)] & p.MSGFLAG_READ == 0
    assert unread[pt.tag(p.PID_LAST_VERB_EXECUTED, pt.PT_LONG)] == p.VERB_FORWARD


def test_metadata_is_kept_in_migrators_named_properties() -> None:
    named = writer_named_properties()
    message = Message(mail(2), Flags.of(Flag.SEEN, keywords=("work", "$Junk")), BASE_DATE, ("A", "Bé"))
    result = mapped(message)
    props = result.props
    from migrator.stores.pst.convert.mapi_from_mime import written_sources
    from migrator.stores.pst.convert.raw_copy import rebuild

    assert props[named[p.MIGRATOR_SIZE].tag] == len(message.raw)  # the raw bytes as a skeleton: see test_pst_size
    assert rebuild(props[named[p.MIGRATOR_SKELETON].tag], written_sources(result)) == message.raw  # type: ignore[arg-type]
    assert props[named[p.MIGRATOR_FLAGS].tag] == "seen"
    assert props[named[p.MIGRATOR_KEYWORDS].tag] == ["$Junk", "work"]
    assert props[named[p.KEYWORDS_NAME].tag] == ["$Junk", "work"]
    assert props[named[p.MIGRATOR_RECEIVED].tag] == "2024-03-01T08:30:00+02:00"
    assert props[named[p.MIGRATOR_FOLDER].tag] == '["A", "Bé"]'


def test_sender_recipients_and_subject_are_decoded() -> None:
    result = mapped(Message(mail(3)))
    assert result.props[pt.tag(p.PID_SUBJECT, pt.PT_UNICODE)] == "Message 3 — grüße"
    assert result.props[pt.tag(p.PID_SENDER_NAME, pt.PT_UNICODE)] == "Sender 3"
    assert result.props[pt.tag(p.PID_SENDER_EMAIL_ADDRESS, pt.PT_UNICODE)] == "sender3@example.com"
    rows = [(r[pt.tag(p.PID_RECIPIENT_TYPE, pt.PT_LONG)], r[pt.tag(p.PID_DISPLAY_NAME, pt.PT_UNICODE)])
            for r in result.recipients]
    assert rows == [(1, "Bob"), (1, "Zoë Ünïcode"), (2, "carol@example.net")]
    assert result.props[pt.tag(p.PID_DISPLAY_TO, pt.PT_UNICODE)] == "Bob; Zoë Ünïcode"
    entry_id = result.recipients[0][pt.tag(p.PID_ENTRY_ID, pt.PT_BINARY)]
    assert entry_id[4:20] == bytes.fromhex("812B1FA4BEA310199D6E00DD010F5402")
    assert entry_id[24:].decode("utf-16-le").split("\0")[:3] == ["Bob", "SMTP", "bob@example.com"]


def test_attachments_inline_images_and_embedded_messages() -> None:
    result = mapped(Message(mail(4, attachments=1, inline_image=True, embedded=True)))
    by_method = {a.props[pt.tag(p.PID_ATTACH_METHOD, pt.PT_LONG)]: a for a in result.attachments if a.embedded}
    (embedded,) = by_method.values()
    assert embedded.embedded.props[pt.tag(p.PID_SUBJECT, pt.PT_UNICODE)] == "Inner of 4"
    assert p.ATTACH_EMBEDDED_MSG in by_method
    files = {a.props[pt.tag(p.PID_ATTACH_LONG_FILENAME, pt.PT_UNICODE)]: a.props for a in result.attachments
             if not a.embedded}
    assert files["img-4.png"][pt.tag(p.PID_ATTACHMENT_HIDDEN, pt.PT_BOOLEAN)] is True
    assert files["img-4.png"][pt.tag(p.PID_ATTACH_CONTENT_ID, pt.PT_UNICODE)] == "img4@example.com"
    assert files["file-4-0.bin"][pt.tag(p.PID_ATTACHMENT_HIDDEN, pt.PT_BOOLEAN)] is False
    assert result.props[pt.tag(p.PID_BODY, pt.PT_UNICODE)].replace("\r\n", "\n") == body_text(4)


@pytest.mark.parametrize(("subject", "prefix", "normalized"), [
    ("RE: lunch", "RE: ", "lunch"), ("AW: Größe", "AW: ", "Größe"), ("Re:no space", "", "Re:no space"),
    ("Meeting: today", "", "Meeting: today"), ("12: x", "", "12: x"), ("lunch", "", "lunch"),
])
def test_subject_prefix_is_split_off_as_outlook_does(subject: str, prefix: str, normalized: str) -> None:
    from migrator.stores.pst.convert.mapi_from_mime import split_subject

    assert split_subject(subject) == (prefix, normalized)


def test_maildir_to_pst_to_maildir_through_the_pipeline_is_exact(tmp_path: Path) -> None:
    from harness.corpus import corpus as shared_corpus
    from migrator.pipeline.run import run_copy
    from migrator.state.statefile import StateStore
    from tests.support.archives import write_archive

    messages = shared_corpus()
    first = parse_endpoint(f"maildir:{tmp_path / 'first'}")
    write_archive(first, messages)
    pst = parse_endpoint(f"pst:{tmp_path / 'backup.pst'}")
    state = StateStore(tmp_path / "state.sqlite")
    assert run_copy(first, [pst], state=state).failures == []
    assert validate(tmp_path / "backup.pst") == []
    before = (tmp_path / "backup.pst").read_bytes()
    assert run_copy(first, [pst], state=state).copied == 0
    assert (tmp_path / "backup.pst").read_bytes() == before
    second = parse_endpoint(f"maildir:{tmp_path / 'second'}")
    assert run_copy(pst, [second]).failures == []
    with open_store(second) as store:
        got = sorted((m.folder, m.raw, m.flags, m.received) for folder in store.list_folders()
                     for m in store.messages(folder.path))
    assert got == sorted((m.folder, m.raw, m.flags, m.received) for m in messages)


def test_adding_to_an_outlook_file_keeps_its_messages_and_validates(tmp_path: Path) -> None:
    import shutil

    path = tmp_path / "outlook.pst"
    shutil.copyfile(SAMPLE, path)
    before = read_all(path)
    write(path, [Message(mail(5), folder=("INBOX",))])
    after = read_all(path)
    assert {folder: [m.raw for m in found] for folder, found in before.items() if found} == {
        folder: [m.raw for m in found] for folder, found in after.items() if found and folder != ("INBOX",)
    }
    assert [m.raw for m in after[("INBOX",)]] == [mail(5)]


def test_node_ids_are_known_whatever_order_they_come_in():
    ids = NodeIds()
    for nid in (0x24, 0x44, 0x64, 0x22, 0x84, 0x42):  # messages ascending, folders and a late one out of order
        assert nid not in ids
        ids.add(nid)
    assert all(nid in ids for nid in (0x22, 0x24, 0x42, 0x44, 0x64, 0x84))
    assert 0x43 not in ids and 0x85 not in ids and 0x1 not in ids


@given(st.lists(st.integers(1, 3000), unique=True), st.integers(0, 5), st.randoms())
def test_block_entries_come_back_by_bid_whatever_order_copied_blocks_came_in(
        copied: list[int], new: int, order: random.Random) -> None:
    entries = BlockEntries()
    CopiedEntries.MAX_PAGES = 2  # pages written out and read in again
    try:
        order.shuffle(copied)
        for index in copied:
            entries.add_copied(index * fmt.BID_STEP, index * 64, index % 8176)
        first_new = (max(copied, default=0) + 1) * fmt.BID_STEP
        for index in range(new):
            entries.add(first_new + index * fmt.BID_STEP, index, 1)
        bids = [bid for bid, _ in entries.sorted_leaves()]
        assert bids == sorted(bid * fmt.BID_STEP for bid in copied) + [first_new + i * fmt.BID_STEP for i in range(new)]
        assert all(fmt.BBTENTRY.unpack(entry)[1] == bid // fmt.BID_STEP * 64 for bid, entry in entries.sorted_leaves()
                   if bid < first_new)
    finally:
        CopiedEntries.MAX_PAGES = 256
        entries.close()


def test_the_entries_of_copied_blocks_are_not_sorted_in_memory() -> None:
    # A rebuild copies a million blocks at 50 000 messages, in its folders' order: their BBT entries once
    # took 75 MB while sorted in memory.
    entries = BlockEntries()
    indexes = list(range(1, 100_001))
    random.Random(1).shuffle(indexes)
    for index in indexes:
        entries.add_copied(index * fmt.BID_STEP, index * 64, 100)
    tracemalloc.start()
    try:
        count = sum(1 for _ in entries.sorted_leaves())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        entries.close()
    assert count == 100_000 and peak < 2_000_000


@given(st.lists(st.integers(0, 3 * fmt.MAX_BLOCK_PAYLOAD), max_size=6))
def test_pieces_of_any_size_are_cut_into_full_blocks(sizes: list[int]) -> None:
    pieces = [bytes([n % 251]) * size for n, size in enumerate(sizes)]
    blocks = [bytes(block) for block in full_blocks(pieces)]
    assert b"".join(blocks) == b"".join(pieces)
    assert all(len(block) == fmt.MAX_BLOCK_PAYLOAD for block in blocks[:-1])
    assert 0 < len(blocks[-1]) <= fmt.MAX_BLOCK_PAYLOAD or blocks == [b""]
