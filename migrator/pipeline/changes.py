"""A folder's listing made of what the state recorded and what the source says changed since.

After a run that copied a folder whole, a source that can tell which messages arrived or changed flags
since (IMAP CONDSTORE, ``Store.scan_changes``) lists only those; the rest of the folder is what the state
recorded, with the flags recorded. A nightly run into a folder of 20 000 messages then reads the night's
mail from the server instead of 20 000 listing lines.
"""

from __future__ import annotations

from collections.abc import Iterator

from migrator.core.listing import Listing, plain_number
from migrator.core.message import Flags, MessageRef
from migrator.state.copied import CopiedMessages


def listing_since(copied: CopiedMessages, changes: Listing) -> Listing | None:
    """Return the folder's listing in uid order: ``changes``, and every other message ``copied`` records.

    The recorded messages come with the flags recorded and no size or date (they are not copied again).
    None when a uid is not a plain number, so that no order can be trusted.
    """
    numbers = [plain_number(uid) for uid in changes.uids()]
    if None in numbers:
        return None
    pending: Iterator[tuple[int | None, MessageRef]] = zip(numbers, changes)
    changed = next(pending, None)
    listing = Listing()
    decoded: dict[str, Flags] = {}
    for uid, flags in copied.items():
        number = plain_number(uid)
        if number is None:
            return None
        while changed is not None and changed[0] < number:  # type: ignore[operator]  # no None: checked above
            listing.append(changed[1])
            changed = next(pending, None)
        if changed is not None and changed[0] == number:
            listing.append(changed[1])  # with its flags now
            changed = next(pending, None)
            continue
        if flags not in decoded:
            decoded[flags] = Flags.decode(flags)
        listing.add(uid, decoded[flags], None, None)
    while changed is not None:
        listing.append(changed[1])
        changed = next(pending, None)
    return listing


def same_messages(first: CopiedMessages, other: CopiedMessages) -> bool:
    """Return True when both record the same uids."""
    return len(first) == len(other) and all(uid in other for uid, _ in first.items())
