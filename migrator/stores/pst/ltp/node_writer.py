"""Writing property and table contexts as top-level nodes or as subnodes of a node being built."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from migrator.stores.pst.ltp.writer import CopiedRow, CopiedTable, Properties, Subnodes, build_pc, build_tc
from migrator.stores.pst.ndb.writer import NdbWriter


def write_pc_node(ndb: NdbWriter, nid: int, parent: int, values: Properties) -> None:
    """Write a property context as the top-level node ``nid``."""
    subnodes = Subnodes(ndb)
    bid = ndb.write_block_list(build_pc(values, subnodes))
    ndb.add_node(nid, bid, subnodes.write(), parent)


def write_tc_node(
    ndb: NdbWriter, nid: int, parent: int, columns: Sequence[int],
    rows: Iterable[tuple[int, Properties | CopiedRow]], copied: CopiedTable | None = None,
) -> None:
    """Write a table context as the top-level node ``nid``: the ``copied`` rows, then ``rows``."""
    subnodes = Subnodes(ndb)
    bid = ndb.write_block_list(build_tc(columns, rows, subnodes, copied))
    ndb.add_node(nid, bid, subnodes.write(), parent)


def add_pc_subnode(
    owner: Subnodes, nid: int, values: Properties, size_tag: int | None = None, inner: Subnodes | None = None
) -> int:
    """Write a property context as subnode ``nid`` of ``owner``; return its size (external data bytes).

    ``inner`` holds subnodes of the new node written beforehand (an embedded message of an attachment).
    """
    inner = inner or Subnodes(owner.ndb)
    blocks = build_pc(values, inner, size_tag)
    size = sum(len(block) for block in blocks) + inner.data_bytes
    owner.add(nid, owner.ndb.write_block_list(blocks), inner.write(), size)
    return size


def add_tc_subnode(
    owner: Subnodes, nid: int, columns: Sequence[int], rows: Sequence[tuple[int, Properties]]
) -> None:
    """Write a table context as subnode ``nid`` of ``owner``."""
    inner = Subnodes(owner.ndb)
    blocks = build_tc(columns, rows, inner)
    size = sum(len(block) for block in blocks) + inner.data_bytes
    owner.add(nid, owner.ndb.write_block_list(blocks), inner.write(), size)
