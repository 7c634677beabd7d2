"""Folder-name codecs: modified UTF-7, Maildir++ names as Dovecot writes them, tree directory names."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrator.stores.foldernames import (
    decode_maildir_name,
    decode_mutf7,
    decode_tree_name,
    encode_eml_dirname,
    encode_maildir_name,
    encode_mbox_dirname,
    encode_mutf7,
    maildir_dirname,
    maildir_path,
    make_first_free,
    name_variants,
)

names = st.text()  # hypothesis text has no lone surrogates; the empty name is one a server's "a//b" has
# Names with a lone surrogate are what os.fsdecode gives for undecodable bytes on disk.
tree_names = st.text(alphabet=st.characters(blacklist_categories=("Cs",)) | st.sampled_from("\udc80\udcff"))


# --- modified UTF-7 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, encoded",
    [
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),  # RFC 3501, 5.1.3
        ("Entwürfe", "Entw&APw-rfe"),
        ("R&D", "R&-D"),
        ("📁 Stuff", "&2D3cwQ- Stuff"),
        ("a\x01b", "a&AAE-b"),
        ("", ""),
    ],
)
def test_mutf7_known_forms(name: str, encoded: str) -> None:
    assert encode_mutf7(name) == encoded
    assert decode_mutf7(encoded) == name


@given(st.text())
def test_mutf7_round_trip(name: str) -> None:
    encoded = encode_mutf7(name)
    assert encoded.isascii() and all(" " <= c <= "~" for c in encoded)
    assert decode_mutf7(encoded) == name


@given(st.text())
def test_mutf7_encoding_is_canonical(name: str) -> None:
    encoded = encode_mutf7(name)
    assert encode_mutf7(decode_mutf7(encoded)) == encoded


@pytest.mark.parametrize(
    "bad",
    ["&", "&U,BTFw", "&AGE-", "&Jjo!-", "&AA-", "&2D3c-", "caf\u00e9", "tab\there", "&ZeVnLIqe"],
    ids=["lone &", "unterminated", "encoded ASCII", "bad base64", "half a unit", "lone surrogate",
         "8-bit", "control", "no dash"],
)
def test_mutf7_rejects_invalid(bad: str) -> None:
    with pytest.raises(ValueError):
        decode_mutf7(bad)


# --- Maildir++ names (forms checked against Dovecot 2.3 with listescape) --------------------


@pytest.mark.parametrize(
    "path, dirname",
    [
        (("a.b",), ".a\\2eb"),
        (("x\\y",), ".x\\5cy"),
        (("~tilde",), ".\\7etilde"),
        (("mid~tilde",), ".mid~tilde"),
        ((".lead",), ".\\2elead"),
        (("Entwürfe",), ".Entw&APw-rfe"),
        (("dot.ü", "c"), ".dot\\2e&APw-.c"),
        (("amp&er",), ".amp&-er"),
        (("INBOX", "child"), ".INBOX.child"),
        (("s/l",), ".s\\2fl"),
    ],
)
def test_maildir_dirnames_are_dovecots(path: tuple[str, ...], dirname: str) -> None:
    assert maildir_dirname(path) == dirname
    assert maildir_path(dirname) == path


def test_maildir_reads_dovecot_control_escapes_and_utf8() -> None:
    assert decode_maildir_name("ct\\01l") == "ct\x01l"  # as Dovecot reads it
    assert decode_maildir_name("n\\c3\\bc") == "nü"
    assert decode_maildir_name("Entwürfe") == "Entwürfe"  # a tool writing UTF-8 names


@given(names, st.integers(min_value=0, max_value=50))
def test_maildir_name_round_trip(name: str, escape_first: int) -> None:
    encoded = encode_maildir_name(name, escape_first)
    assert "." not in encoded and "/" not in encoded and not encoded.startswith("~")
    assert decode_maildir_name(encoded) == name


@given(st.lists(names, min_size=1, max_size=4))
def test_maildir_path_round_trip(path: list[str]) -> None:
    assert maildir_path(maildir_dirname(tuple(path))) == tuple(path)


@pytest.mark.parametrize("dirname", [".", "..", "cur", ".a..b", "."])
def test_maildir_path_rejects_non_folders(dirname: str) -> None:
    with pytest.raises(ValueError):
        maildir_path(dirname)


# --- tree directory names (mbox and EML) ----------------------------------------------------


@pytest.mark.parametrize(
    "name, encoded",
    [
        ("Work Stuff", "Work Stuff"),
        ("Entwürfe", "Entwürfe"),
        ("..", "\\2e."),
        (".", "\\2e"),
        ("../../etc", "\\2e.\\2f..\\2fetc"),
        ("/abs", "\\2fabs"),
        ("nul\x00nl\n", "nul\\00nl\\0a"),
        ("back\\slash", "back\\5cslash"),
        ("~home", "\\7ehome"),
        ("v1.2 notes", "v1.2 notes"),
    ],
)
def test_tree_names(name: str, encoded: str) -> None:
    for encode in (encode_mbox_dirname, encode_eml_dirname):
        assert encode(name) == encoded
    assert decode_tree_name(encoded) == name


def test_names_the_archives_use_themselves_are_escaped() -> None:
    assert encode_mbox_dirname("mbox") == "\\6dbox"
    assert encode_mbox_dirname("MBOX.lock") == "\\4dBOX.lock"
    assert encode_mbox_dirname("notes.eml") == "notes.eml"
    assert encode_eml_dirname("notes.EML") == "notes\\2eEML"
    assert encode_eml_dirname("mbox") == "mbox"


@pytest.mark.parametrize("encode", [encode_mbox_dirname, encode_eml_dirname])
@given(name=tree_names, escape_first=st.integers(min_value=0, max_value=50))
def test_tree_name_is_safe_and_round_trips(encode, name: str, escape_first: int) -> None:
    encoded = encode(name, escape_first)
    assert encoded not in ("", ".", "..") and "/" not in encoded and "\x00" not in encoded
    assert not encoded.startswith(".") and not encoded.startswith("~")
    if encode is encode_eml_dirname:
        assert not encoded.casefold().endswith(".eml")
    else:
        assert encoded.casefold() != "mbox" and not encoded.casefold().startswith("mbox.")
    assert decode_tree_name(encoded) == name


def test_an_empty_name_is_a_lone_escape_and_no_other_name_is() -> None:
    for encode, decode in ((encode_mbox_dirname, decode_tree_name), (encode_eml_dirname, decode_tree_name),
                           (encode_maildir_name, decode_maildir_name)):
        assert encode("") == encode("", 3) == "\\"
        assert decode("\\") == ""
        assert encode("\\") == "\\5c"
    assert list(name_variants(encode_mbox_dirname, "")) == ["\\"]


@pytest.mark.parametrize(
    "path, dirname",
    [(("", "abs"), ".\\.abs"), (("a", "", "b"), ".a.\\.b"), (("a", ""), ".a.\\"), (("",), ".\\")],
    ids=["/abs", "a//b", "a/", "empty"],
)
def test_maildir_paths_with_empty_names(path: tuple[str, ...], dirname: str) -> None:
    assert maildir_dirname(path) == dirname
    assert maildir_path(dirname) == path


# --- telling names apart on case-insensitive filesystems ----------------------------------


@given(names)
def test_variants_all_decode_to_the_name(name: str) -> None:
    for encode in (encode_mbox_dirname, encode_eml_dirname):
        for spelling in name_variants(encode, name):
            assert decode_tree_name(spelling) == name
    for spelling in name_variants(encode_maildir_name, name):
        assert decode_maildir_name(spelling) == name


def _case_insensitive_fs(entries: list[str]):
    """Return the "make this directory" of a case-insensitive, normalising filesystem holding ``entries``."""

    def make(name: str) -> None:
        if _fold(name) in {_fold(e) for e in entries}:
            raise FileExistsError(name)
        entries.append(name)

    return make


def _make(spellings, entries: list[str], find=lambda: None) -> str:
    return make_first_free(spellings, _case_insensitive_fs(entries), find)


def _fold(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def test_plain_spelling_when_free() -> None:
    assert _make(name_variants(encode_mbox_dirname, "work"), ["other"]) == "work"


def test_newcomer_differing_in_case_is_spelled_apart() -> None:
    taken = ["Work", "\\77ork"]
    chosen = _make(name_variants(encode_mbox_dirname, "WORK"), list(taken))
    assert _fold(chosen) not in {_fold(t) for t in taken}
    assert decode_tree_name(chosen) == "WORK"


def test_a_spelling_made_meanwhile_for_the_same_name_is_used() -> None:
    on_disk = ["Work"]  # made by another writer after this one looked
    assert _make(name_variants(encode_mbox_dirname, "Work"), on_disk, find=lambda: "Work") == "Work"
    assert on_disk == ["Work"]


@given(st.lists(st.sampled_from(["work", "Work", "WORK", "wOrK", "straße", "STRASSE", "é", "e\u0301"]), unique=True))
def test_names_equal_up_to_case_get_distinct_spellings(spellings: list[str]) -> None:
    for encode, decode in ((encode_mbox_dirname, decode_tree_name), (encode_maildir_name, decode_maildir_name)):
        on_disk: list[str] = []
        for name in spellings:
            _make(name_variants(encode, name), on_disk)
        assert len({_fold(t) for t in on_disk}) == len(on_disk)
        assert [decode(t) for t in on_disk] == spellings
