"""Damaged PST files: what the reader returns is what was written, and every message it cannot read whole is named.

The files are written by migrator's PST store and damaged here: random bit flips anywhere, or one flip aimed at a
message's block, a B-tree page, a folder's table or the header. Each is copied to eml: as a run would copy it.
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from migrator.core.errors import ExitCode, MigratorError, StoreError
from migrator.core.message import FolderPath, Message
from migrator.endpoints.endpoint import parse_endpoint
from migrator.pipeline.run import run_copy
from migrator.pipeline.summary import Failure, Summary
from migrator.stores import open_store
from migrator.stores.pst.ltp import format as ltp_fmt
from migrator.stores.pst.messaging import props as p
from migrator.stores.pst.messaging.reader import read_message, table_nid
from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb.reader import Ndb, is_internal
from migrator.stores.pst.reader import PstReader
from tests.support.pst_corpus import BASE_DATE, FOLDERS, mail
from tests.support.pst_space import as_its_maps_see

MESSAGES = 300
TRIALS = 50
FLIPS = 64


@dataclass(frozen=True)
class Intact:
    """The undamaged file: its bytes, and per message its NID, folder path and what reading it gives."""

    data: bytes
    messages: dict[int, tuple[FolderPath, bytes]]
    folder_nids: dict[FolderPath, int]


@pytest.fixture(scope="module")
def intact(tmp_path_factory: pytest.TempPathFactory) -> Intact:
    """Return a PST of MESSAGES varied messages written by the store (some span several blocks)."""
    path = tmp_path_factory.mktemp("damage") / "intact.pst"
    with open_store(parse_endpoint(f"pst:{path}"), readonly=False) as store:
        for number in range(MESSAGES):
            folder = FOLDERS[number % len(FOLDERS)]
            raw = mail(number, html=number % 2 == 1, attachments=number % 3, attachment_size=1500 + 4000 * (number % 5),
                       embedded=number % 7 == 6)
            message = Message(raw, received=BASE_DATE, folder=folder)
            assert all(result.ok for result in store.append_batch(store.ensure_folder(folder), [message]))
    with PstReader(path) as pst:
        folders = pst.folders()
        messages = {int(m.uid): (f.path, m.raw) for f in folders for m in pst.fetch(f, pst.scan(f))}
    assert len(messages) == MESSAGES
    return Intact(path.read_bytes(), messages, {f.path: f.nid for f in folders})


@dataclass
class Outcome:
    """What copying one damaged file to eml: gave, message by message against the intact file."""

    exit_code: int
    identical: int = 0
    failed_and_named: int = 0
    altered: int = 0  # returned with other bytes than the intact file's: must never happen
    missing_unnamed: int = 0  # neither copied nor named in a failure: must never happen
    reasons: list[str] = field(default_factory=list)


def copy_to_eml(data: bytes, directory: Path) -> tuple[int, Summary | None, str]:
    """Copy the PST ``data`` to a new eml: directory; return the exit status, the summary and a fatal error."""
    directory.mkdir()
    source = directory / "damaged.pst"
    source.write_bytes(data)
    try:
        summary = run_copy(parse_endpoint(f"pst:{source}"), [parse_endpoint(f"eml:{directory / 'out'}")])
    except MigratorError as error:
        return int(error.exit_code), None, str(error)
    return int(summary.exit_code), summary, ""


def copied(directory: Path) -> Counter[tuple[FolderPath, bytes]]:
    """Return every message the eml: directory holds, by folder and bytes."""
    found: Counter[tuple[FolderPath, bytes]] = Counter()
    if not directory.exists():
        return found
    with open_store(parse_endpoint(f"eml:{directory}")) as store:
        for folder in store.list_folders():
            found.update((folder.path, message.raw) for message in store.messages(folder.path))
    return found


def judge(intact: Intact, data: bytes, directory: Path) -> Outcome:
    """Copy the damaged ``data`` and sort each message of the intact file into the outcome's counts."""
    exit_code, summary, fatal = copy_to_eml(data, directory)
    out = copied(directory / "out")
    failures = summary.failures if summary is not None else []
    outcome = Outcome(exit_code, reasons=[fatal] if fatal else [f.describe() for f in failures])
    outcome.altered = sum((out - Counter(intact.messages.values())).values())
    for nid, key in intact.messages.items():
        if out[key] > 0:
            out[key] -= 1
            outcome.identical += 1
        elif fatal or _named(nid, key[0], intact, failures):
            outcome.failed_and_named += 1
        else:
            outcome.missing_unnamed += 1
    return outcome


def _named(nid: int, folder: FolderPath, intact: Intact, failures: list[Failure]) -> bool:
    """Return True when a failure names the message, or says its folder or a folder above it cannot be read."""
    if any(failure.uid == str(nid) for failure in failures):
        return True
    folders = [failure.folder for failure in failures if failure.uid is None and failure.reason.startswith("cannot")]
    above = [folder[:depth] for depth in range(1, len(folder) + 1)]
    return any(name == "/".join(path) or f"unreadable folder {intact.folder_nids[path]}" in name
               for name in folders for path in above)


def flip_bits(data: bytes, rng: random.Random, count: int) -> bytes:
    """Return ``data`` with ``count`` bits flipped at random."""
    damaged = bytearray(data)
    for _ in range(count):
        bit = rng.randrange(len(damaged) * 8)
        damaged[bit // 8] ^= 1 << (bit % 8)
    return bytes(damaged)


@pytest.mark.slow
def test_random_bit_flips_never_give_altered_messages(intact: Intact, tmp_path: Path) -> None:
    rng = random.Random(21)
    totals: Counter[str] = Counter()
    for trial in range(TRIALS):
        outcome = judge(intact, flip_bits(intact.data, rng, FLIPS), tmp_path / f"trial{trial}")
        assert outcome.altered == 0, outcome.reasons
        assert outcome.missing_unnamed == 0, outcome.reasons
        assert outcome.exit_code != ExitCode.OK or outcome.identical == MESSAGES, outcome.reasons
        totals.update(identical=outcome.identical, named=outcome.failed_and_named, refused=outcome.exit_code > 1)
    print(f"\n{TRIALS} trials of {FLIPS} flips in {MESSAGES} messages: {totals['identical']} identical, "
          f"{totals['named']} failed and named, 0 altered; {totals['refused']} files refused whole")
    assert totals["named"] > 0, "the flips must have damaged something for this test to mean anything"


# --- one aimed flip -------------------------------------------------------------------------------------------


def raw_mime_leaf(path: Path, nid: int) -> tuple[int, int, int]:
    """Return (bid, file offset, size) of the first data block of message ``nid``'s biggest stored value: its
    raw MIME when kept whole, else its first attachment's bytes (which its raw MIME is rebuilt from)."""
    with PstReader(path) as pst:
        message = read_message(pst.ndb, nid)
        props, prop_id = message.props, pst.named.migrator[p.MIGRATOR_RAW]
        if prop_id not in props:
            props, prop_id = message.attachments[0].props, p.PID_ATTACH_DATA
        hnid = props.hnid(prop_id)
        assert hnid is not None and not ltp_fmt.is_hid(hnid), "the value must be big enough for a subnode"
        value = props.node.subnode(hnid)
        bid = value.bid_data
        if is_internal(bid):
            bid = pst.ndb.xblock_children(bid)[0]
        entry = pst.ndb.block_entry(bid)
        assert entry is not None
        return entry.bid, entry.ib, entry.cb


def test_a_flip_in_one_message_fails_that_message_alone_and_names_it(intact: Intact, tmp_path: Path) -> None:
    nid = max(nid for nid, (_, raw) in intact.messages.items() if len(raw) > 20_000)  # a data tree of blocks
    source = tmp_path / "intact.pst"
    source.write_bytes(intact.data)
    bid, ib, size = raw_mime_leaf(source, nid)
    damaged = bytearray(intact.data)
    damaged[ib + size // 2] ^= 0x10
    outcome = judge(intact, bytes(damaged), tmp_path / "run")
    assert (outcome.exit_code, outcome.identical, outcome.failed_and_named) == (ExitCode.PARTIAL, MESSAGES - 1, 1)
    [reason] = outcome.reasons
    folder = "/".join(intact.messages[nid][0])
    assert f"folder {folder!r}, message {nid}" in reason and f"block {bid:#x} at offset {ib:#x} fails its CRC" in reason


def test_a_damaged_contents_table_fails_its_folder_alone(intact: Intact, tmp_path: Path) -> None:
    folder = ("INBOX", "Receipts")
    ndb = Ndb(intact.data)
    table = ndb.node(table_nid(intact.folder_nids[folder], fmt.NID_TYPE_CONTENTS_TABLE))
    assert table is not None
    entry = ndb.block_entry(table.bid_data)
    assert entry is not None
    damaged = bytearray(intact.data)
    damaged[entry.ib + 3] ^= 0x01
    outcome = judge(intact, bytes(damaged), tmp_path / "run")
    in_folder = sum(1 for path, _ in intact.messages.values() if path == folder)
    assert (outcome.exit_code, outcome.identical, outcome.altered) == (ExitCode.PARTIAL, MESSAGES - in_folder, 0)
    [reason] = outcome.reasons
    assert reason.startswith("folder 'INBOX/Receipts': cannot read folder") and "fails its CRC" in reason


def test_a_folder_whose_name_is_damaged_fails_with_its_subfolders(intact: Intact, tmp_path: Path) -> None:
    nid = intact.folder_nids[("Archive", "2024")]
    ndb = Ndb(intact.data)
    node = ndb.node(nid)
    assert node is not None
    entry = ndb.block_entry(node.bid_data)
    assert entry is not None
    damaged = bytearray(intact.data)
    damaged[entry.ib + entry.cb - 1] ^= 0x80
    outcome = judge(intact, bytes(damaged), tmp_path / "run")
    below = sum(1 for path, _ in intact.messages.values() if path[:2] == ("Archive", "2024"))
    assert below > 0 and (outcome.identical, outcome.failed_and_named, outcome.altered) == (MESSAGES - below, below, 0)
    [reason] = outcome.reasons
    assert reason.startswith(f"folder 'Archive/unreadable folder {nid}': cannot read folder")
    assert "fails its CRC" in reason


def test_a_damaged_node_page_fails_the_messages_it_lists(intact: Intact, tmp_path: Path) -> None:
    nid = max(intact.messages)
    ndb = Ndb(intact.data)
    bid, ib = ndb.header.nbt_root
    while (page := ndb.page(ib, bid, fmt.PTYPE_NBT)).level:  # down to the leaf that lists ``nid``
        bid, ib = [entry for entry in page.entries if entry[0] <= nid][-1][1:3]
    damaged = bytearray(intact.data)
    damaged[ib + 2] ^= 0x04
    outcome = judge(intact, bytes(damaged), tmp_path / "run")
    assert outcome.exit_code == ExitCode.PARTIAL and outcome.altered == outcome.missing_unnamed == 0
    assert 0 < outcome.failed_and_named < MESSAGES
    assert any(f"message {nid}: not readable whole: NBT page {bid:#x} at offset {ib:#x} fails its CRC" in reason
               for reason in outcome.reasons)


def test_a_damaged_header_refuses_the_file_in_one_sentence(intact: Intact, tmp_path: Path) -> None:
    damaged = bytearray(intact.data)
    damaged[fmt.HDR_ROOT + 20] ^= 0x01  # ROOT.cbAMapFree
    source = tmp_path / "damaged.pst"
    source.write_bytes(bytes(damaged))
    result = subprocess.run([sys.executable, "-m", "migrator", "copy", "--no-state", "-q", f"pst:{source}",
                             f"eml:{tmp_path / 'out'}"], capture_output=True, text=True, check=False)
    assert result.returncode == ExitCode.USAGE
    assert "the header fails its CRC" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.eml"))


def test_adding_to_a_file_whose_changed_table_is_damaged_refuses_and_keeps_it(intact: Intact, tmp_path: Path) -> None:
    # An append reads (and checks) only what it changes: here the contents table the new message joins.
    ndb = Ndb(intact.data)
    table = ndb.node(table_nid(intact.folder_nids[("INBOX",)], fmt.NID_TYPE_CONTENTS_TABLE))
    assert table is not None
    entry = ndb.block_entry(table.bid_data)
    assert entry is not None
    source = tmp_path / "intact.pst"
    damaged = bytearray(intact.data)
    damaged[entry.ib + 3] ^= 0x01
    source.write_bytes(bytes(damaged))
    with pytest.raises(StoreError, match=r"cannot add to .* fails its CRC"), \
            open_store(parse_endpoint(f"pst:{source}"), readonly=False) as store:
        store.append_batch(("INBOX",), [Message(mail(9999), folder=("INBOX",))])
    # The file is as it was: its header, maps, trees and blocks. Only space its maps mark free may hold the new
    # message, which the refused run had written there.
    after = source.read_bytes()
    assert as_its_maps_see(bytes(damaged), after)


def test_adding_to_a_file_leaves_a_damaged_message_elsewhere_as_it_was(intact: Intact, tmp_path: Path) -> None:
    # Appending in place never reads the other messages: one damaged before stays so, the new one is added.
    nid = min(nid for nid, (path, _) in intact.messages.items() if path != ("INBOX",))
    ndb = Ndb(intact.data)
    node = ndb.node(nid)
    assert node is not None
    entry = ndb.block_entry(node.bid_data)
    assert entry is not None
    source = tmp_path / "intact.pst"
    damaged = bytearray(intact.data)
    damaged[entry.ib + 3] ^= 0x01
    source.write_bytes(bytes(damaged))
    with open_store(parse_endpoint(f"pst:{source}"), readonly=False) as store:
        store.append_batch(("INBOX",), [Message(mail(9999), folder=("INBOX",))])
    assert source.read_bytes()[entry.ib:entry.ib + entry.cb] == bytes(damaged[entry.ib:entry.ib + entry.cb])
    with PstReader(source) as pst:
        assert mail(9999) in [m.raw for m in pst.fetch(pst.folder(("INBOX",)), pst.scan(pst.folder(("INBOX",))))]
