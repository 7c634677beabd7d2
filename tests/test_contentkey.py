"""Content keys recognise a message whatever its line endings, from headers and size alone."""

import re

from hypothesis import given
from hypothesis import strategies as st

from migrator.core.contentkey import (
    changed_keys,
    content_key,
    content_key_from_headers,
    crlf_size,
    header_block,
    unfold,
)

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


# Keys are stored in state files: a change to how they are computed must not change them.
# Computed with the first version, which unfolded with the pattern \r?\n[ \t]+.
KNOWN_KEYS = [
    (b"Message-ID: <1@x>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: a\r\n\tfolded\r\n  twice\r\n",
     "8b75bc20382dbb820fdc:100"),
    (b"subject: first\nSUBJECT: second\nFrom:  a  \t b \n To: folded into from\n", "8b0cdb0a6e9c7a55b5b4:100"),
    (b"To: x\rFrom: after a lone CR\r\n\r\n", "e38391bc6ff74fb353db:100"),
    (b" Date : spaced name\n\tcontinued\r\r\n x\n", "7d0c97db490305be3695:100"),
]


def test_keys_stay_those_earlier_versions_stored():
    assert [content_key_from_headers(headers, 100) for headers, _ in KNOWN_KEYS] == [key for _, key in KNOWN_KEYS]


def _unfolded(headers: bytes) -> bytes:
    """Replace each line break (CRLF or LF) followed by spaces or tabs with one space, the plain way."""
    out = bytearray()
    i = 0
    while i < len(headers):
        lf = i + 1 if headers[i:i + 2] == b"\r\n" else i
        if headers[lf:lf + 1] == b"\n" and headers[lf + 1:lf + 2] in (b" ", b"\t"):
            i = lf + 1
            while headers[i:i + 1] in (b" ", b"\t"):
                i += 1
            out += b" "
        else:
            out.append(headers[i])
            i += 1
    return bytes(out)


@given(st.lists(st.sampled_from([b"\r", b"\n", b" ", b"\t", b"a", b":", b"To", b"from"]), max_size=30).map(b"".join))
def test_unfolding_joins_exactly_the_folded_lines(headers):
    assert unfold(headers) == _unfolded(headers)


# --- copies a server changed -------------------------------------------------------------------

_VALUE = st.lists(st.sampled_from([b"a", b" ", b"\xc3\xa4", b"\xe4", b"<", b"@", b">"]), max_size=6).map(b"".join)
_BODY = st.lists(st.sampled_from([b"a", b"\xe4", b"\r", b"\n", b"\r\n", b" "]), max_size=12).map(b"".join)


@st.composite
def messages(draw) -> bytes:
    """Return a message with key headers that may hold 8-bit bytes and a body that may hold bare CRs and no end."""
    names = draw(st.lists(st.sampled_from([b"Message-ID", b"Date", b"From", b"Subject", b"To", b"X-Other"]),
                          min_size=1, max_size=5))
    eol = draw(st.sampled_from([b"\n", b"\r\n"]))
    return b"".join(name + b": " + draw(_VALUE) + eol for name in names) + eol + draw(_BODY)


def _as_imap_sees_it(held: bytes) -> str:
    """Return the key a target computes from a header fetch and RFC822.SIZE of what the server holds."""
    return content_key_from_headers(header_block(held), len(held))


def _crlf(raw: bytes) -> bytes:
    return re.sub(rb"(?<!\r)\n", b"\r\n", raw)


@given(messages())
def test_a_copy_whose_header_bytes_a_server_made_x_is_recognised(raw):
    sent = _crlf(raw)
    header = header_block(sent)
    held = re.sub(rb"[\x80-\xff]", b"X", header) + sent[len(header):]  # Cyrus
    assert _as_imap_sees_it(held) in {content_key(raw), *changed_keys(raw)}


@given(messages())
def test_a_copy_a_server_dropped_bare_crs_from_and_ended_is_recognised(raw):
    held = re.sub(rb"\r(?!\n)", b"", _crlf(raw))  # Courier
    held += b"" if held.endswith(b"\r\n") else b"\r\n"
    assert _as_imap_sees_it(held) in {content_key(raw), *changed_keys(raw)}


def test_an_ordinary_message_has_no_other_key():
    assert changed_keys(MESSAGE) == []
    assert changed_keys(MESSAGE.replace(b"\n", b"\r\n")) == []
