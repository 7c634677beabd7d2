"""A folder listing packed into arrays gives back exactly the MessageRefs put in, for a fifth of the memory."""

from __future__ import annotations

import tracemalloc
from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from migrator.core.listing import Listing
from migrator.core.message import Flag, Flags, MessageRef

zones = st.one_of(
    st.none(),
    st.just(timezone.utc),
    st.integers(-23 * 3600, 23 * 3600).map(lambda seconds: timezone(timedelta(seconds=seconds))),
    st.integers(-86_399_999_999, 86_399_999_999).map(lambda micros: timezone(timedelta(microseconds=micros))),
)
refs = st.builds(
    MessageRef,
    uid=st.one_of(st.integers(0, 2**64 - 1).map(str), st.text(min_size=1, max_size=12)),
    flags=st.builds(Flags, st.frozensets(st.sampled_from(list(Flag))), st.frozensets(st.sampled_from(["$Work", "x"]))),
    size=st.one_of(st.none(), st.integers(0, 2**40)),
    received=st.one_of(st.none(), st.builds(lambda moment, zone: moment.replace(tzinfo=zone), st.datetimes(), zones)),
)


@given(st.lists(refs, max_size=20))
def test_a_listing_gives_back_exactly_what_was_put_in(given_refs: list[MessageRef]) -> None:
    listing = Listing(given_refs)
    assert len(listing) == len(given_refs)
    assert list(listing) == given_refs
    assert [listing[i] for i in range(len(given_refs))] == given_refs
    assert list(listing.uids()) == [ref.uid for ref in given_refs]
    assert [(listing.uid_at(i), listing.size_at(i)) for i in range(len(listing))] == [
        (r.uid, r.size) for r in given_refs
    ]
    assert listing.total_size() == sum(ref.size or 0 for ref in given_refs)
    for ref, back in zip(given_refs, listing):
        # Equal datetimes may still differ in offset; the offset must come back too.
        assert (back.received is None) == (ref.received is None)
        if ref.received is not None:
            assert back.received.isoformat() == ref.received.isoformat()


@given(st.lists(refs, max_size=20), st.integers(0, 3))
def test_where_keeps_the_refs_chosen_in_order(given_refs: list[MessageRef], modulus: int) -> None:
    listing = Listing(given_refs)
    assert list(listing.where(lambda ref: ref.size is not None)) == [r for r in given_refs if r.size is not None]
    assert list(listing.where_uid(lambda uid: len(uid) % 4 != modulus)) == [
        r for r in given_refs if len(r.uid) % 4 != modulus
    ]


def test_keeping_every_ref_shares_the_listing() -> None:
    listing = Listing(MessageRef(uid) for uid in ("3", "7"))
    assert listing.where_uid(lambda uid: True) is listing
    assert list(listing.where_uid(lambda uid: uid == "7")) == [MessageRef("7")]


def test_uids_ascend_only_for_increasing_numbers() -> None:
    assert Listing(MessageRef(uid) for uid in ("3", "7", "12")).uids_ascend()
    assert not Listing(MessageRef(uid) for uid in ("3", "12", "7")).uids_ascend()
    assert not Listing(MessageRef(uid) for uid in ("3", "3")).uids_ascend()
    assert not Listing(MessageRef(uid) for uid in ("3", "07")).uids_ascend()  # "07" is kept as written
    assert list(Listing(MessageRef(uid) for uid in ("3", "07")).uids()) == ["3", "07"]


def test_a_listing_of_a_large_folder_is_small() -> None:
    moment = datetime(2024, 3, 1, 10, 11, 12, tzinfo=timezone(timedelta(hours=1)))
    given_refs = [MessageRef(str(uid), Flags(frozenset({Flag.SEEN})), 1000 + uid, moment + timedelta(minutes=uid))
                  for uid in range(1, 20_001)]
    tracemalloc.start()
    try:
        listing = Listing(given_refs)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(listing) == 20_000
    assert held / 20_000 < 60  # bytes a message: 38 now; a MessageRef with its uid, size and date is about 200
