"""Make a PST migrator wrote look like one another program wrote: its readers must then rebuild every message
from the MAPI properties, as they do for Outlook's files, and a rerun into it must rebuild the file.

Migrator finds its raw-MIME and metadata properties by their property set GUID in the name-to-id map. Giving that
GUID other bytes (and the block that holds it a new CRC) leaves a valid file whose named properties belong to a
set migrator does not know, as another program's would.
"""

from __future__ import annotations

import mmap
import shutil
import struct
import uuid
from pathlib import Path

from migrator.stores.pst.messaging import props as p
from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb.reader import Ndb

OTHER_PROGRAM = uuid.UUID("0badc0de-0000-4000-8000-00000000f00d")


def as_if_written_by_another_program(source: Path, target: Path) -> Path:
    """Write to ``target`` a copy of the migrator PST ``source`` without migrator's own properties; return it."""
    shutil.copyfile(source, target)
    make_foreign(target)
    return target


def make_foreign(path: Path) -> None:
    """Change the migrator PST ``path`` in place so that migrator's own properties are another program's.

    The file is changed through a map, so that a benchmark's PST of gigabytes is not read into memory.
    """
    with open(path, "r+b") as file, mmap.mmap(file.fileno(), 0) as data:
        ndb = Ndb(data)
        assert ndb.header.crypt_method == fmt.CRYPT_NONE, "migrator writes PSTs without encoding"
        patched = 0
        for block in ndb.blocks():
            start = data.find(p.PS_MIGRATOR.bytes_le, block.ib, block.ib + block.cb)
            if start < 0:
                continue
            data[start:start + 16] = OTHER_PROGRAM.bytes_le
            trailer = block.ib + ndb.layout.block_size_on_disk(block.cb) - ndb.layout.block_trailer.size
            struct.pack_into("<I", data, trailer + 4, fmt.crc32(data[block.ib:block.ib + block.cb]))  # cb, wSig, dwCRC
            patched += 1
        del ndb  # it reads through the map, which cannot close while anything still points into it
        data.flush()
    assert patched == 1, f"the GUID of migrator's properties is in {patched} blocks, expected in the name map's"
