"""Content keys recognise a message whatever its line endings, from headers and size alone."""

import re

from hypothesis import given, strategies as st

from migrator.contentkey import content_key, content_key_from_headers, crlf_size, header_block

MESSAGE = b"Message-ID: <1@x>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nSubject: a\n  folded\n\nbody\nmore\n"


def test_same_key_with_crlf_line_endings():
    assert content_key(MESSAGE) == content_key(MESSAGE.replace(b"\n", b"\r\n"))


def test_key_from_a_header_fetch_equals_key_from_the_whole_message():
    crlf = MESSAGE.replace(b"\n", b"\r\n")
    assert content_key_from_headers(header_block(crlf), len(crlf)) == content_key(MESSAGE)


def test_different_bodies_of_different_size_differ_and_no_message_id_still_keys():
    assert content_key(MESSAGE) != content_key(MESSAGE + b"x\n")
    assert content_key(b"Subject: none\n\nhi\n") != content_key(b"Subject: other\n\nhi\n")


@given(st.binary(max_size=200))
def test_crlf_size_is_the_size_once_line_endings_are_crlf(raw):
    bare = raw.replace(b"\r", b"")
    assert crlf_size(bare) == len(bare) + bare.count(b"\n")
    crlf = bare.replace(b"\n", b"\r\n")
    assert crlf_size(crlf) == len(crlf)


@given(st.lists(st.sampled_from([b"\r", b"\n", b"a", b" ", b":"]), max_size=16).map(b"".join))
def test_header_block_ends_at_the_first_empty_line_of_any_line_endings(raw):
    first_empty_line = re.search(rb"\r?\n\r?\n", raw)
    expected = raw if first_empty_line is None else raw[: first_empty_line.start() + 1]
    assert header_block(raw) == expected
