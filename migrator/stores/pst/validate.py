"""A strict structural validator for PST files: what Outlook's scanpst checks and the open-source readers skip.

``validate(path)`` returns a list of problems (empty for a sound file). Run it from a shell as
``python -m migrator.stores.pst.validate FILE...``; the exit status is 1 when any file has a problem.
"""

from __future__ import annotations

import mmap
import os
import sys
from collections.abc import Callable
from pathlib import Path

from migrator.stores.pst.messaging.validate import check_folders, check_heaps, check_message_sizes, check_required
from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb.reader import Ndb, PstFormatError
from migrator.stores.pst.ndb.validate import (
    FileData,
    Findings,
    NdbFacts,
    check_blocks,
    check_btrees,
    check_header,
    check_nid_high_water,
    check_reference_counts,
    check_references,
)
from migrator.stores.pst.ndb.validate_allocation import (
    check_allocation,
    check_dlist,
    check_geometry,
    check_map_pages,
    check_pmap_free,
    map_pages,
)


def validate(path: str | os.PathLike[str], *, strict: bool = True) -> list[str]:
    """Return the structural problems of the PST file at ``path`` (empty when it is sound).

    ``strict=False`` tolerates the leftovers of Outlook's in-place edits (see ``Findings``): use it for files
    Outlook wrote; migrator's own files must pass strictly.
    """
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            findings = validate_bytes(data)
    except (OSError, ValueError) as error:
        return [f"cannot read {path}: {error}"]
    return [*findings, *findings.leftovers] if strict else list(findings)


def validate_bytes(data: FileData) -> Findings:
    """Return the structural problems of a PST file held in ``data``, Outlook's leftovers apart."""
    problems = Findings()
    try:
        ndb = Ndb(data, verify=False)  # each check reports the damage it finds and reads on past it
    except PstFormatError as error:
        problems.append(f"the header is unusable: {error}")
        return problems
    facts = NdbFacts()
    steps: list[Callable[[], None]] = [
        lambda: check_header(ndb, data, problems),
        lambda: check_nid_high_water(ndb, problems),
        lambda: check_btrees(ndb, data, facts, problems),
        lambda: check_blocks(ndb, data, facts, problems),
        lambda: check_references(ndb, facts, problems),
        lambda: check_reference_counts(facts, problems),
        lambda: _check_maps(ndb, data, facts, problems),
        lambda: check_heaps(ndb, problems),
        lambda: check_required(ndb, problems),
        lambda: check_folders(ndb, problems),
        lambda: check_message_sizes(ndb, facts, problems),
    ]
    for step in steps:
        try:
            step()
        except PstFormatError as error:  # a structure too broken to walk further: say where and go on
            problems.append(str(error))
    return problems


def _check_maps(ndb: Ndb, data: FileData, facts: NdbFacts, problems: Findings) -> None:
    intervals = check_geometry(ndb, min(len(data), ndb.header.file_eof), problems)
    pages = map_pages(ndb, intervals)
    check_map_pages(ndb, data, pages, problems)
    check_pmap_free(ndb, data, pages, problems)
    check_dlist(ndb, data, problems)
    if ndb.header.amap_valid == fmt.AMAP_VALID:  # else the maps are not to be trusted, and rebuilt before use
        check_allocation(ndb, data, facts, pages, intervals, problems)


def main(argv: list[str]) -> int:
    """Validate each file named in ``argv``, print its problems, and return 1 if any file has one."""
    lenient = "--outlook" in argv
    names = [arg for arg in argv if arg != "--outlook"]
    if not names:
        print("usage: python -m migrator.stores.pst.validate [--outlook] FILE.pst...\n"
              "  --outlook  tolerate the leftovers of Outlook's in-place edits", file=sys.stderr)
        return 2
    status = 0
    for name in names:
        problems = validate(Path(name), strict=not lenient)
        for problem in problems:
            print(f"{name}: {problem}")
        print(f"{name}: {'OK' if not problems else f'{len(problems)} problems'}")
        status |= bool(problems)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
