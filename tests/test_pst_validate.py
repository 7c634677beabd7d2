"""The strict PST validator: Outlook's files pass, migrator's files pass strictly, and each defect is caught."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from migrator.endpoints.endpoint import parse_endpoint
from migrator.stores import open_store
from migrator.stores.pst.messaging import format as msg_fmt
from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb.reader import Ndb, parse_btpage
from migrator.stores.pst.validate import main, validate, validate_bytes
from tests.support.data import PST_SAMPLES as SAMPLES
from tests.support.pst_corpus import corpus

OUTLOOK_LEFTOVERS = {
    # Each file Outlook edited in place keeps some of: superseded B-tree pages still marked in the AMap, a block
    # with cRef 1 that nothing uses, and a contents-table row whose copy of PidTagMessageSize lags the message.
    "javalibpst_dist-list.pst": ["block 0x1288 is in the BBT with cRef 1", "200 units of 64 bytes (first at 0x4a00)"],
    "javalibpst_passworded.pst": ["248 units of 64 bytes (first at 0x5000)"],
    "pstsdk_sample1.pst": [],
    "pstsdk_sample2.pst": [],
    "pstsdk_submessage.pst": ["row of 0x200024 has 0x0e080003 = 20613, the object has 20929"],
    "pstsdk_test_ansi.pst": ["96 units of 64 bytes (first at 0x4800)"],
    "pstsdk_test_unicode.pst": ["120 units of 64 bytes (first at 0x4a00)"],
    "rubymsg_200_recipients.pst": ["block 0x104 is in the BBT with cRef 1"],
    "rubymsg_attachAndInline.pst": ["block 0xfc is in the BBT with cRef 1", "has 0x0e080003 = 21030"],
    "rubymsg_msgInMsg.pst": ["block 0x108 is in the BBT with cRef 1"],
}


@pytest.mark.parametrize("name", sorted(OUTLOOK_LEFTOVERS))
def test_outlook_samples_pass_and_only_show_known_leftovers(name: str) -> None:
    assert validate(SAMPLES / name, strict=False) == []
    strict = validate(SAMPLES / name)
    expected = OUTLOOK_LEFTOVERS[name]
    assert len(strict) == len(expected)
    assert all(any(fragment in problem for problem in strict) for fragment in expected)


@pytest.fixture(scope="module")
def migrator_pst(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Return the bytes of a PST migrator wrote from the shared test corpus."""
    path = tmp_path_factory.mktemp("validate") / "corpus.pst"
    with open_store(parse_endpoint(f"pst:{path}"), readonly=False) as store:
        for message in corpus():
            results = store.append_batch(store.ensure_folder(message.folder), [message])
            assert all(result.ok for result in results)
    return path.read_bytes()


def test_migrator_output_passes_strictly(migrator_pst: bytes) -> None:
    assert list(validate_bytes(migrator_pst)) == []
    assert validate_bytes(migrator_pst).leftovers == []


# --- each defect is reported ----------------------------------------------------------------------------------


def page_at(data: bytearray, ib: int) -> bytearray:
    return data[ib:ib + fmt.PAGE_SIZE]


def store_page(data: bytearray, ib: int, page: bytearray, fix_crc: bool = True) -> None:
    if fix_crc:
        struct.pack_into("<I", page, 500, fmt.crc32(page[:fmt.PAGE_DATA_SIZE]))
    data[ib:ib + fmt.PAGE_SIZE] = page


def leaf_page(data: bytearray, root_ib: int) -> int:
    """Return the offset of the first leaf page below the B-tree page at ``root_ib``."""
    ndb = Ndb(bytes(data))
    ib = root_ib
    while (page := parse_btpage(bytes(page_at(data, ib)), ndb.layout)).level:
        ib = page.entries[0][2]
    return ib


def fix_header(data: bytearray) -> None:
    struct.pack_into("<I", data, fmt.HDR_CRC_PARTIAL, fmt.crc32(data[8:479]))
    struct.pack_into("<I", data, fmt.HDR_CRC_FULL, fmt.crc32(data[8:524]))


def nbt_root(data: bytearray) -> int:
    return Ndb(bytes(data)).header.nbt_root[1]


def bbt_root(data: bytearray) -> int:
    return Ndb(bytes(data)).header.bbt_root[1]


def break_header_crc(data: bytearray) -> None:
    data[fmt.HDR_CRC_FULL] ^= 0xFF


def break_page_crc(data: bytearray) -> None:
    data[nbt_root(data) + 10] ^= 0x01


def break_page_back_pointer(data: bytearray) -> None:
    ib = leaf_page(data, nbt_root(data))
    page = page_at(data, ib)
    struct.pack_into("<Q", page, 504, struct.unpack_from("<Q", page, 504)[0] + 1)
    store_page(data, ib, page)


def unsort_nbt_leaf(data: bytearray) -> None:
    ib = leaf_page(data, nbt_root(data))
    page = page_at(data, ib)
    size = fmt.NBTENTRY.size
    page[0:size], page[size:2 * size] = page[size:2 * size], page[0:size]
    store_page(data, ib, page)


def change_ref_count(data: bytearray) -> None:
    ib = leaf_page(data, bbt_root(data))
    page = page_at(data, ib)
    struct.pack_into("<H", page, 18, struct.unpack_from("<H", page, 18)[0] + 1)  # cRef of the first entry
    store_page(data, ib, page)


def flip_block_byte(data: bytearray) -> None:
    first = next(Ndb(bytes(data)).blocks())
    data[first.ib] ^= 0x01


def free_used_amap_unit(data: bytearray) -> None:
    first = next(Ndb(bytes(data)).blocks())
    unit = (first.ib - fmt.FIRST_AMAP_OFFSET) // fmt.BLOCK_ALIGN
    page = page_at(data, fmt.FIRST_AMAP_OFFSET)
    page[unit // 8] &= ~(0x80 >> (unit % 8)) & 0xFF
    store_page(data, fmt.FIRST_AMAP_OFFSET, page)


def break_amap_crc(data: bytearray) -> None:
    data[fmt.FIRST_AMAP_OFFSET + 495] ^= 0x01


def misstate_free_space(data: bytearray) -> None:
    offset = fmt.HDR_ROOT + 20  # ROOT.cbAMapFree
    struct.pack_into("<Q", data, offset, struct.unpack_from("<Q", data, offset)[0] + 64)
    fix_header(data)


def orphan_a_message(data: bytearray) -> None:
    """Point the first message's nidParent at another folder, so tables and the node tree disagree."""
    for ib in _leaf_pages(data, nbt_root(data)):
        page = page_at(data, ib)
        for index in range(page[fmt.BTPAGE_ENTRIES_SIZE]):
            nid = struct.unpack_from("<Q", page, index * fmt.NBTENTRY.size)[0] & fmt.NID_MASK
            if fmt.nid_type(nid) == fmt.NID_TYPE_NORMAL_MESSAGE:
                struct.pack_into("<I", page, index * fmt.NBTENTRY.size + 24, msg_fmt.NID_ROOT_FOLDER)
                store_page(data, ib, page)
                return
    raise AssertionError("no message node found")


def _leaf_pages(data: bytearray, ib: int) -> list[int]:
    page = parse_btpage(bytes(page_at(data, ib)), Ndb(bytes(data)).layout)
    if page.level == 0:
        return [ib]
    return [leaf for entry in page.entries for leaf in _leaf_pages(data, entry[2])]


def lower_nid_high_water(data: bytearray) -> None:
    struct.pack_into("<I", data, fmt.HDR_RGNID + 4 * fmt.NID_TYPE_NORMAL_FOLDER, 0x400)
    fix_header(data)


def drop_template_node(data: bytearray) -> None:
    """Remove the hierarchy-table template from its NBT leaf page."""
    for ib in _leaf_pages(data, nbt_root(data)):
        page = page_at(data, ib)
        count, size = page[fmt.BTPAGE_ENTRIES_SIZE], fmt.NBTENTRY.size
        for index in range(count):
            if struct.unpack_from("<Q", page, index * size)[0] & fmt.NID_MASK == msg_fmt.NID_HIERARCHY_TABLE_TEMPLATE:
                page[index * size:count * size] = page[(index + 1) * size:count * size] + bytes(size)
                page[fmt.BTPAGE_ENTRIES_SIZE] = count - 1
                store_page(data, ib, page)
                return
    raise AssertionError("no template node found")


def loop_the_nbt(data: bytearray) -> None:
    """Point the NBT root's first entry back at the root itself."""
    root = nbt_root(data)
    page = page_at(data, root)
    assert page[fmt.BTPAGE_ENTRIES_SIZE + 3] > 0, "the NBT must have an intermediate level"
    struct.pack_into("<QQ", page, 8, struct.unpack_from("<Q", page, 504)[0], root)
    store_page(data, root, page)


def truncate(data: bytearray) -> None:
    del data[-fmt.PAGE_SIZE:]


DEFECTS: dict[str, tuple[Callable[[bytearray], None], str]] = {
    "header CRC": (break_header_crc, "dwCRCFull"),
    "page CRC": (break_page_crc, "NBT page"),
    "page back pointer": (break_page_back_pointer, "back pointer mismatch"),
    "unsorted NBT": (unsort_nbt_leaf, "not strictly ascending"),
    "reference count": (change_ref_count, "has cRef"),
    "block CRC": (flip_block_byte, "has CRC"),
    "AMap bit": (free_used_amap_unit, "in use but free in the AMap"),
    "AMap CRC": (break_amap_crc, "map page at 0x4400 has CRC"),
    "cbAMapFree": (misstate_free_space, "cbAMapFree"),
    "table vs nodes": (orphan_a_message, "contents table lists"),
    "truncated": (truncate, "ibFileEof"),
    "NID high-water mark": (lower_nid_high_water, "rgnid[0x2] is 0x400, below node index"),
    "mandatory node": (drop_template_node, "mandatory node 0x60d is missing"),
    "B-tree loop": (loop_the_nbt, "its parent expects 0"),
}


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_each_defect_is_reported(defect: str, migrator_pst: bytes) -> None:
    damage, expected = DEFECTS[defect]
    data = bytearray(migrator_pst)
    damage(data)
    problems = validate_bytes(bytes(data))
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize("defect", ["page back pointer", "unsorted NBT", "reference count", "block CRC", "AMap bit",
                                    "NID high-water mark", "mandatory node", "B-tree loop"])
def test_defects_are_reported_in_outlook_files_too(defect: str) -> None:
    damage, expected = DEFECTS[defect]
    data = bytearray((SAMPLES / "pstsdk_sample1.pst").read_bytes())
    damage(data)
    assert any(expected in problem for problem in validate_bytes(bytes(data)))


def test_not_a_pst_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "x.pst"
    path.write_bytes(b"not a pst" * 100)
    assert len(validate(path)) == 1 and "not a PST file" in validate(path)[0]


def test_command_line_reports_and_sets_the_exit_status(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main([str(SAMPLES / "pstsdk_sample1.pst")]) == 0
    assert "OK" in capsys.readouterr().out
    assert main([str(SAMPLES / "rubymsg_msgInMsg.pst")]) == 1
    assert main(["--outlook", str(SAMPLES / "rubymsg_msgInMsg.pst")]) == 0
    assert main([]) == 2
