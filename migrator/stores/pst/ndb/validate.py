"""Strict checks of a PST's node database: header, B-tree pages, blocks, data trees, subnodes, reference counts.

Each check appends one sentence per problem to a list; nothing here raises for a damaged file.
"""

from __future__ import annotations

import mmap
from collections import Counter
from dataclasses import dataclass, field

from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb.reader import (
    BbtEntry,
    BTPage,
    Ndb,
    PstFormatError,
    block_key,
    block_problems,
    block_trailer,
    header_crc_problems,
    is_internal,
    page_problems,
    page_trailer,
    parse_btpage,
    parse_slblock,
    parse_xblock,
)

FileData = bytes | mmap.mmap  # the file checked, read or mapped: a slice of either is bytes


class Findings(list[str]):
    """The problems found, plus (apart) the leftovers Outlook itself leaves in files it modified in place.

    Outlook frees space lazily: superseded B-tree pages stay marked in the AMap, blocks whose last user went
    away stay in the BBT with cRef 1, and contents-table copies of a message's properties lag behind edits.
    A file migrator writes in one pass must have none of these, so strict validation counts them as problems.
    """

    def __init__(self) -> None:
        super().__init__()
        self.leftovers: list[str] = []

    def leftover(self, text: str) -> None:
        """Record a problem of the kind Outlook's in-place edits leave behind."""
        self.leftovers.append(text)


@dataclass
class NdbFacts:
    """What the NDB checks learn and later checks reuse: page offsets and block usage."""

    pages: list[int] = field(default_factory=list)  # file offsets of every B-tree page
    blocks: dict[int, BbtEntry] = field(default_factory=dict)  # by block key
    references: Counter[int] = field(default_factory=Counter)  # block key -> structures referencing it
    walked: set[int] = field(default_factory=set)  # internal blocks whose children were already counted


def check_header(ndb: Ndb, data: FileData, problems: list[str]) -> None:
    """Check the header's CRCs, sentinel and root fields against the file."""
    header = ndb.header
    problems.extend(header_crc_problems(header, data[:fmt.HEADER_SIZE]))
    if header.sentinel != fmt.SENTINEL:
        problems.append(f"header bSentinel is {header.sentinel:#x}, not 0x80")
    # Bytes after ibFileEof are what an append killed before its header leaves: not part of the file, and cut
    # off by the next writer. A file shorter than ibFileEof has lost its end.
    if header.file_eof > len(data):
        problems.append(f"header ibFileEof is {header.file_eof}, but the file has {len(data)} bytes")
    # INVALID_AMAP is what an append killed while freeing space leaves: the maps are rebuilt by the next writer
    # (§2.6.1.3.7), and the allocation checks are skipped.
    if header.amap_valid not in (fmt.AMAP_VALID, fmt.AMAP_INVALID):
        problems.append(f"header fAMapValid is {header.amap_valid}, neither 2 nor 0")


def check_nid_high_water(ndb: Ndb, problems: list[str]) -> None:
    """Check rgnid[type] is at least every node's index, so the next NID Outlook allocates is unused."""
    highest: dict[int, int] = {}
    for node in ndb.nodes():
        kind = fmt.nid_type(node.nid)
        highest[kind] = max(highest.get(kind, 0), fmt.nid_index(node.nid))
    for kind, index in sorted(highest.items()):
        if index > ndb.header.rgnid[kind]:
            problems.append(f"header rgnid[{kind:#x}] is {ndb.header.rgnid[kind]:#x}, below node index {index:#x}")


# --- B-trees ------------------------------------------------------------------------------------------------


def check_btrees(ndb: Ndb, data: FileData, facts: NdbFacts, problems: list[str]) -> None:
    """Check both B-trees page by page and collect the pages and BBT entries into ``facts``."""
    header = ndb.header
    for name, ptype, (bid, ib) in (("NBT", fmt.PTYPE_NBT, header.nbt_root), ("BBT", fmt.PTYPE_BBT, header.bbt_root)):
        leaves: list[tuple[int, ...]] = []
        _check_page(ndb, data, _PageRef(name, ptype, bid, ib, None, None), facts, leaves, problems)
        _check_sorted(name, [entry[0] & _key_mask(ptype) for entry in leaves], problems)
        if ptype == fmt.PTYPE_BBT:
            facts.blocks = {block_key(e[0]): BbtEntry(*e[:4]) for e in leaves}
        if bid >= header.bid_next_p:
            problems.append(f"{name} root page BID {bid:#x} is not below bidNextP {header.bid_next_p:#x}")


@dataclass(frozen=True)
class _PageRef:
    tree: str
    ptype: int
    bid: int
    ib: int
    key: int | None  # the parent's key for this page
    level: int | None  # the level the parent expects


def _key_mask(ptype: int) -> int:
    return fmt.NID_MASK if ptype == fmt.PTYPE_NBT else ~1


def _check_page(ndb: Ndb, data: FileData, ref: _PageRef, facts: NdbFacts, leaves: list[tuple[int, ...]],
                problems: list[str]) -> None:
    where = f"{ref.tree} page {ref.bid:#x} at {ref.ib:#x}"
    if ref.ib % fmt.PAGE_SIZE or ref.ib < fmt.FIRST_AMAP_OFFSET or ref.ib + fmt.PAGE_SIZE > len(data):
        problems.append(f"{where} is misplaced (not 512-aligned inside the data area)")
        return
    raw = data[ref.ib:ref.ib + fmt.PAGE_SIZE]
    facts.pages.append(ref.ib)
    if not _check_trailer(raw, ndb, ref, problems):
        return
    try:
        page = parse_btpage(raw, ndb.layout)
    except PstFormatError as error:
        problems.append(f"{where}: {error}")
        return
    _check_page_counts(ndb, page, ref, where, problems)
    if page.level > fmt.MAX_BTREE_LEVELS or (ref.level is not None and page.level != ref.level):
        return  # levels must fall by one per step: anything else could loop
    if page.level == 0:
        leaves.extend(page.entries)
        return
    for entry in page.entries:
        child = _PageRef(ref.tree, ref.ptype, entry[1], entry[2], entry[0] & _key_mask(ref.ptype), page.level - 1)
        _check_page(ndb, data, child, facts, leaves, problems)


def _check_trailer(raw: bytes, ndb: Ndb, ref: _PageRef, problems: list[str]) -> bool:
    """Report the page's trailer problems; return False when it is not a page of its tree at all."""
    problems.extend(page_problems(raw, ndb.layout, ref.ptype, ref.bid, ref.ib))
    trailer = page_trailer(raw, ndb.layout)
    return trailer.ptype == trailer.ptype_repeat == ref.ptype


def _check_page_counts(ndb: Ndb, page: BTPage, ref: _PageRef, where: str, problems: list[str]) -> None:
    if page.max_entries != ndb.layout.btpage_entries_size // page.entry_size or page.entry_count > page.max_entries:
        problems.append(f"{where} has {page.entry_count} of at most {page.max_entries} entries of {page.entry_size}"
                        " bytes: impossible")
    if ref.level is not None and page.level != ref.level:
        problems.append(f"{where} has level {page.level}, its parent expects {ref.level}")
    if page.entry_count == 0 and ref.key is not None:
        problems.append(f"{where} is an empty non-root page")
    keys = [entry[0] & _key_mask(ref.ptype) for entry in page.entries]
    if ref.key is not None and keys and keys[0] != ref.key:
        problems.append(f"{where} starts with key {keys[0]:#x}, its parent entry says {ref.key:#x} (btkeyMin)")
    if page.level > fmt.MAX_BTREE_LEVELS:
        problems.append(f"{where} has level {page.level}, above the maximum of 8")


def _check_sorted(name: str, keys: list[int], problems: list[str]) -> None:
    for before, after in zip(keys, keys[1:]):
        if after <= before:
            problems.append(f"{name} keys are not strictly ascending: {before:#x} then {after:#x}")
            return


# --- blocks -------------------------------------------------------------------------------------------------


def check_blocks(ndb: Ndb, data: FileData, facts: NdbFacts, problems: list[str]) -> None:
    """Check every block's placement and trailer (size, signature, CRC, BID)."""
    layout = ndb.layout
    for entry in facts.blocks.values():
        where = f"block {entry.bid:#x} at {entry.ib:#x}"
        size = layout.block_size_on_disk(entry.cb)
        if entry.ib % fmt.BLOCK_ALIGN or entry.ib < fmt.FIRST_AMAP_OFFSET or entry.ib + size > len(data):
            problems.append(f"{where} is misplaced (not 64-aligned inside the data area)")
            continue
        if entry.cb > layout.max_block_payload:
            problems.append(f"{where} holds {entry.cb} bytes, more than {layout.max_block_payload}")
        if _interval(entry.ib) != _interval(entry.ib + size - 1):
            problems.append(f"{where} straddles an allocation-map interval")
        if entry.bid >= ndb.header.bid_next_b:
            problems.append(f"{where} has a BID not below bidNextB {ndb.header.bid_next_b:#x}")
        trailer = block_trailer(data, entry.ib + size - layout.block_trailer.size, layout)
        problems.extend(block_problems(entry, trailer, data[entry.ib:entry.ib + entry.cb]))


def _interval(offset: int) -> int:
    return (offset - fmt.FIRST_AMAP_OFFSET) // fmt.AMAP_INTERVAL


# --- references: nodes -> blocks -> data trees and subnodes ----------------------------------------------------


def check_references(ndb: Ndb, facts: NdbFacts, problems: list[str]) -> None:
    """Check that every BID a node, data tree or subnode list names exists, and count references."""
    for node in ndb.nodes():
        where = f"node {node.nid:#x}"
        _reference_data(ndb, node.bid_data, where, facts, problems)
        _reference_subnodes(ndb, node.bid_sub, where, facts, problems, depth=0)


def _reference(bid: int, where: str, facts: NdbFacts, problems: list[str]) -> bool:
    if bid == 0:
        return False
    if block_key(bid) not in facts.blocks:
        problems.append(f"{where} names block {bid:#x}, which the BBT does not list")
        return False
    facts.references[block_key(bid)] += 1
    return True


def _first_visit(bid: int, facts: NdbFacts) -> bool:
    # A shared XBLOCK or SLBLOCK counts once per user, but its children only once: cRef counts parent blocks.
    if block_key(bid) in facts.walked:
        return False
    facts.walked.add(block_key(bid))
    return True


def _reference_data(ndb: Ndb, bid: int, where: str, facts: NdbFacts, problems: list[str]) -> None:
    if not _reference(bid, where, facts, problems) or not is_internal(bid) or not _first_visit(bid, facts):
        return
    try:
        total, children = parse_xblock(ndb.block(bid), ndb.layout)
        sizes = [_data_tree_size(ndb, child, f"{where} XBLOCK {bid:#x}", facts, problems) for child in children]
    except PstFormatError as error:
        problems.append(f"{where}: {error}")
        return
    if total != sum(sizes):
        problems.append(f"{where} XBLOCK {bid:#x} says lcbTotal {total}, its blocks hold {sum(sizes)} bytes")


def _data_tree_size(ndb: Ndb, bid: int, where: str, facts: NdbFacts, problems: list[str]) -> int:
    if not _reference(bid, where, facts, problems):
        return 0
    if not is_internal(bid):
        return facts.blocks[block_key(bid)].cb
    total, children = parse_xblock(ndb.block(bid), ndb.layout)
    if not _first_visit(bid, facts):
        return total
    sizes = sum(_data_tree_size(ndb, child, f"{where} XBLOCK {bid:#x}", facts, problems) for child in children)
    if total != sizes:
        problems.append(f"{where} XBLOCK {bid:#x} says lcbTotal {total}, its blocks hold {sizes} bytes")
    return sizes


def _reference_subnodes(ndb: Ndb, bid: int, where: str, facts: NdbFacts, problems: list[str], depth: int) -> None:
    if depth > 16 or not _reference(bid, where, facts, problems) or not _first_visit(bid, facts):
        return
    if not is_internal(bid):
        problems.append(f"{where} has subnode block {bid:#x} without the internal bit")
    try:
        level, entries = parse_slblock(ndb.block(bid), ndb.layout)
    except PstFormatError as error:
        problems.append(f"{where}: {error}")
        return
    _check_sorted(f"{where} subnode block {bid:#x}", [entry.nid for entry in entries], problems)
    for entry in entries:
        inner = f"{where} subnode {entry.nid:#x}"
        if level == 0:
            _reference_data(ndb, entry.bid_data, inner, facts, problems)
            _reference_subnodes(ndb, entry.bid_sub, inner, facts, problems, depth + 1)
        else:
            _reference_subnodes(ndb, entry.bid_data, inner, facts, problems, depth + 1)


def check_reference_counts(facts: NdbFacts, problems: Findings) -> None:
    """Check each block's cRef = 1 (the BBT) + the structures that use it, and that every block is used."""
    for key, entry in facts.blocks.items():
        used = facts.references.get(key, 0)
        if used == 0 and entry.ref_count == 1:
            problems.leftover(f"block {entry.bid:#x} is in the BBT with cRef 1 but no node uses it")
        elif used == 0:
            problems.append(f"block {entry.bid:#x} is in the BBT but no node uses it")
        elif entry.ref_count != used + 1:
            problems.append(f"block {entry.bid:#x} has cRef {entry.ref_count}, but {used} structures use it (+1)")
