"""Changing the flags of a message a PST holds, copy-on-write: a new property context, the same subnodes.

The message's property context is written again with its flag properties (PidTagMessageFlags, the
follow-up and last-verb properties, the categories and migrator's own flags and keywords) as a new
message would have them; every other property is kept as stored, big values in the subnodes the node
keeps. The old context's blocks are freed when the file's header moves on (ndb/append.py).
"""

from __future__ import annotations

from datetime import datetime, timezone

from migrator.core.message import Flags, Message
from migrator.stores.pst.convert.mapi_from_mime import flag_properties
from migrator.stores.pst.convert.meta_from_mapi import parse_iso_date
from migrator.stores.pst.ltp import format as ltp_fmt
from migrator.stores.pst.ltp import props as pt
from migrator.stores.pst.ltp.reader import Node, PropertyContext
from migrator.stores.pst.ltp.values_writer import PropValue
from migrator.stores.pst.ltp.writer import StoredSlot, Subnodes, build_pc
from migrator.stores.pst.messaging import props as p
from migrator.stores.pst.messaging.namemap_writer import NamedProperty
from migrator.stores.pst.ndb.append import NdbAppender

MESSAGE_FLAGS = pt.tag(p.PID_MESSAGE_FLAGS, pt.PT_LONG)
MESSAGE_SIZE = pt.tag(p.PID_MESSAGE_SIZE, pt.PT_LONG)
_FLAG_TAGS = (
    pt.tag(p.PID_FLAG_STATUS, pt.PT_LONG), pt.tag(p.PID_FOLLOWUP_ICON, pt.PT_LONG),
    pt.tag(p.PID_TODO_ITEM_FLAGS, pt.PT_LONG), pt.tag(p.PID_LAST_VERB_EXECUTED, pt.PT_LONG),
    pt.tag(p.PID_ICON_INDEX, pt.PT_LONG), pt.tag(p.PID_LAST_VERB_EXECUTION_TIME, pt.PT_SYSTIME),
)


def flag_changes(old: PropertyContext, named: dict[str, NamedProperty], flags: Flags) -> dict[int, PropValue | None]:
    """Return the properties to set (None: to remove) so that message ``old`` has ``flags``."""
    base = old.get(p.PID_MESSAGE_FLAGS, 0)
    base = (base if isinstance(base, int) else 0) & ~(p.MSGFLAG_READ | p.MSGFLAG_UNSENT)
    stored = old.get(named[p.MIGRATOR_RECEIVED].npid)
    received = (parse_iso_date(stored) if isinstance(stored, str) else None) or datetime(1970, 1, 1,
                                                                                       tzinfo=timezone.utc)
    changes: dict[int, PropValue | None] = dict.fromkeys(_FLAG_TAGS)
    changes.update(flag_properties(Message(b"", flags, received), base))
    changes[named[p.MIGRATOR_FLAGS].tag] = " ".join(sorted(flag.value for flag in flags.system))
    keywords = sorted(flags.keywords)
    changes[named[p.MIGRATOR_KEYWORDS].tag] = keywords or None
    old_keywords = old.get(named[p.MIGRATOR_KEYWORDS].npid) or []
    categories = old.get(named[p.KEYWORDS_NAME].npid) or []
    assert isinstance(categories, list) and isinstance(old_keywords, list)
    labels = set(categories) - set(old_keywords)  # Gmail's labels stay categories
    changes[named[p.KEYWORDS_NAME].tag] = sorted(labels | set(keywords)) or None
    return changes


def rewrite_message(ndb: NdbAppender, nid: int, named: dict[str, NamedProperty], flags: Flags) -> dict[int, PropValue]:
    """Give message ``nid`` of the file ``flags``; return the new values of its flag properties and its size."""
    old = PropertyContext(Node.top(ndb.base, nid))
    changes = flag_changes(old, named, flags)
    values: dict[int, PropValue | StoredSlot] = {}
    changed = {pt.tag_id(tag) for tag in changes}
    for prop_id, (prop_type, slot) in old.records.items():
        if prop_id not in changed:
            kept = StoredSlot(heap_bytes=old.raw(prop_id)) if _in_heap(prop_type, slot) else StoredSlot(slot)
            values[pt.tag(prop_id, prop_type)] = kept
    values.update({tag: value for tag, value in changes.items() if value is not None})
    values[MESSAGE_SIZE] = 0
    old_heap = sum(len(block) for block in old.node.blocks())
    stated = old.get(p.PID_MESSAGE_SIZE, old_heap)
    subnodes = Subnodes(ndb, data_bytes=(stated if isinstance(stated, int) else old_heap) - old_heap)
    blocks = build_pc(values, subnodes, MESSAGE_SIZE)
    if subnodes.entries:
        raise ValueError(f"the new flags of message {nid:#x} do not fit its property context")
    ndb.replace_node_data(nid, ndb.write_block_list(blocks))
    size = sum(len(block) for block in blocks) + subnodes.data_bytes
    return {**{tag: value for tag, value in changes.items() if value is not None}, MESSAGE_SIZE: size}


def _in_heap(prop_type: int, slot: int) -> bool:
    """Return True when a property's slot is the HID of a heap allocation (not an inline value or a subnode)."""
    size = pt.FIXED_TYPE_SIZES.get(prop_type)
    if size is not None and size <= 4:
        return False
    return slot != 0 and ltp_fmt.is_hid(slot)
