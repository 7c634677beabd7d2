"""PST files written by migrator, read back by independent readers: readpst (libpst), pffexport (libpff 20180714)
and pypff (libpff-python, a current libpff).

Each test counts and compares what the tools exported (folder tree, messages per folder, subjects, bodies,
attachment hashes; senders, recipients, dates, flags and attached messages where a reader shows them) with the
source messages; exit codes alone prove nothing.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pytest

from migrator.core.message import Flags, Message
from migrator.endpoints.endpoint import parse_endpoint
from migrator.stores import open_store
from migrator.stores.pst.reader import PstReader
from migrator.stores.pst.validate import validate
from tests.support.pst_corpus import (
    AWKWARD_FOLDER,
    BASE_DATE,
    awkward,
    big_mail,
    body_text,
    corpus,
    expected_attachments,
    long_names_mail,
    mail,
)
from tests.support.pst_exports import (
    Export,
    described,
    differences,
    normalised,
    pffexport_export,
    readpst_export,
)
from tests.support.pst_pypff import pypff_export
from tests.support.tools import require_tools

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def write_pst(path: Path, messages: Iterable[Message]) -> Path:
    """Write ``messages`` (each into its own folder) to a new PST at ``path`` through PstStore; validate it."""
    with open_store(parse_endpoint(f"pst:{path}"), readonly=False) as store:
        for message in messages:
            folder = store.ensure_folder(message.folder)
            (result,) = store.append_batch(folder, [message])
            assert result.ok, result.error
    assert validate(path) == []
    return path


def pst_folder(path: tuple[str, ...]) -> tuple[str, ...]:
    """Return the folder path a PST reader shows for a source path (INBOX is Outlook's 'Inbox')."""
    return ("Inbox",) + path[1:] if path[:1] == ("INBOX",) else path


def expected_export(messages: Sequence[Message]) -> dict[tuple[str, ...], list[tuple[str, str, dict]]]:
    """Return per folder the sorted (subject, body, attachments) the readers should export."""
    import email
    from email.policy import default

    expected: dict[tuple[str, ...], list[tuple[str, str, dict]]] = {}
    for message in messages:
        subject = str(email.message_from_bytes(message.raw, policy=default)["Subject"])
        body = body_text(int(subject.split()[1])) if subject.startswith("Message ") else None
        expected.setdefault(pst_folder(message.folder), []).append((subject, body, expected_attachments(message)))
    return {folder: sorted(rows, key=lambda row: row[0]) for folder, rows in expected.items()}


def summary(export: Export) -> dict[tuple[str, ...], list[tuple[str, str, dict]]]:
    """Return the non-empty folders of an export as sorted (subject, normalised body, attachments)."""
    return {
        folder: sorted(((m.subject, normalised(m.body), m.attachments) for m in found), key=lambda row: row[0])
        for folder, found in export.items() if found
    }


def assert_same(export: Export, messages: Sequence[Message], check_bodies: bool = True) -> None:
    """Assert that an export holds exactly the messages, folder by folder."""
    got = summary(export)
    want = expected_export(messages)
    assert set(got) == set(want)
    for folder, rows in want.items():
        assert [row[0] for row in got[folder]] == [row[0] for row in rows], folder
        for (_, body, attachments), (_, got_body, got_attachments) in zip(rows, got[folder]):
            assert got_attachments == attachments
            if check_bodies and body is not None:
                assert got_body == body


@pytest.fixture(scope="module")
def corpus_pst(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Message]]:
    messages = corpus()
    return write_pst(tmp_path_factory.mktemp("corpus") / "archive.pst", messages), messages


def test_readpst_exports_the_corpus(corpus_pst: tuple[Path, list[Message]], tmp_path: Path) -> None:
    path, messages = corpus_pst
    assert_same(readpst_export(path, tmp_path / "readpst"), messages)


def test_pffexport_exports_the_corpus_and_the_whole_tree(
    corpus_pst: tuple[Path, list[Message]], tmp_path: Path
) -> None:
    path, messages = corpus_pst
    export = pffexport_export(path, tmp_path / "pff")
    assert_same(export, messages)
    expected_tree = {(), ("Deleted Items",), ("Inbox",), ("Inbox", "Receipts"), ("Archive",), ("Archive", "2024"),
                     ("Archive", "2024", "Größe"), ("日本語",), ("Sent Items",)}
    assert set(export) == expected_tree


def test_pypff_reads_the_corpus_and_the_whole_tree(corpus_pst: tuple[Path, list[Message]]) -> None:
    path, messages = corpus_pst
    export = pypff_export(path)
    assert_same(export, messages)
    assert set(export) == {(), ("Deleted Items",), ("Inbox",), ("Inbox", "Receipts"), ("Archive",), ("Archive", "2024"),
                           ("Archive", "2024", "Größe"), ("日本語",), ("Sent Items",)}
    for source in messages:
        (shown,) = [m for m in export[pst_folder(source.folder)] if m.subject == described(source).subject]
        assert differences(shown, described(source)) == []


def test_pffinfo_accepts_the_allocation_maps(corpus_pst: tuple[Path, list[Message]]) -> None:
    require_tools("pffinfo")
    result = subprocess.run(["pffinfo", "-a", str(corpus_pst[0])], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Encryption type:\tnone" in result.stdout


@pytest.mark.slow
def test_a_folder_of_2000_messages_reads_back_in_every_reader(tmp_path: Path) -> None:
    messages = [Message(mail(n), Flags(), BASE_DATE, ("INBOX", "Bulk")) for n in range(2000)]
    path = write_pst(tmp_path / "bulk.pst", messages)
    assert_same(readpst_export(path, tmp_path / "readpst"), messages)
    assert_same(pffexport_export(path, tmp_path / "pff"), messages)
    assert_same(pypff_export(path), messages)


@pytest.mark.slow
def test_a_36_mb_attachment_in_a_file_beyond_32_mb(tmp_path: Path) -> None:
    big = Message(mail(1, attachments=1, attachment_size=36_000_000), Flags(), BASE_DATE, ("Big",))
    small = Message(mail(2, attachments=2), Flags(), BASE_DATE, ("Big",))
    path = write_pst(tmp_path / "big.pst", [big, small])
    assert path.stat().st_size > 32 * 1024 * 1024
    assert_same(readpst_export(path, tmp_path / "readpst"), [big, small])
    assert_same(pffexport_export(path, tmp_path / "pff"), [big, small])
    assert_same(pypff_export(path), [big, small])
    require_tools("pffinfo")
    assert subprocess.run(["pffinfo", "-a", str(path)], capture_output=True).returncode == 0


@pytest.mark.slow
def test_a_file_beyond_2_gb_reads_back(tmp_path: Path) -> None:
    # Few large messages keep this fast; the file crosses 2 GiB, where the first FPMap page sits. Each message
    # takes about its attachment's size (the raw MIME is rebuilt from it), 62 MB.
    count, size = 36, 60_000_000
    expected: dict[str, str] = {}

    def messages() -> Iterator[Message]:
        for number in range(count):
            raw, subject, digest = big_mail(number, size)
            expected[subject] = digest
            yield Message(raw, Flags(), BASE_DATE, ("Huge",))

    path = write_pst(tmp_path / "huge.pst", messages())
    assert path.stat().st_size > 2 * 1024**3
    for export in (pffexport_export(path, tmp_path / "pff"), pypff_export(path)):
        assert {m.subject: list(m.attachments.values()) for m in export[("Huge",)]} == {
            subject: [digest] for subject, digest in expected.items()
        }
    require_tools("pffinfo")
    assert subprocess.run(["pffinfo", "-a", str(path)], capture_output=True).returncode == 0


def test_the_shared_corpus_counts_the_same_in_every_reader(tmp_path: Path) -> None:
    from collections import Counter

    from harness.corpus import corpus as shared_corpus

    messages = shared_corpus()
    path = write_pst(tmp_path / "shared.pst", messages)
    want = Counter(pst_folder(m.folder) for m in messages)
    readpst = readpst_export(path, tmp_path / "readpst")
    assert {folder: len(found) for folder, found in readpst.items() if found} == want
    assert {folder: len(found) for folder, found in pypff_export(path).items() if found} == want
    # pffexport 20180714 writes '&' as '_' in directory names and garbles characters beyond the BMP, so
    # its folders are compared by count only; its tree walk goes through our hierarchy tables.
    pff = pffexport_export(path, tmp_path / "pff")
    assert sorted(len(found) for found in pff.values() if found) == sorted(want.values())


# --- messages that are awkward to map: every reader must show each as it is ------------------------------------


@pytest.fixture(scope="module")
def awkward_pst(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Message]]:
    messages = awkward()
    return write_pst(tmp_path_factory.mktemp("awkward") / "awkward.pst", messages), messages


def export_by(reader: str, path: Path, work: Path) -> Export:
    """Return what ``reader`` (readpst, pffexport or pypff) shows of the PST at ``path``."""
    if reader == "readpst":
        return readpst_export(path, work / "readpst")
    if reader == "pffexport":
        return pffexport_export(path, work / "pff")
    return pypff_export(path)


def misread(export: Export, messages: Sequence[Message], reader: str) -> dict[str, list[str]]:
    """Return, per message subject, each way ``reader`` showed a message otherwise than its source says."""
    shown = export[pst_folder(messages[0].folder)]
    assert len(shown) == len(messages)
    found = {}
    for got, source in zip(shown, messages):  # every reader lists a folder's messages in the order written
        want = described(source)
        if reader == "readpst":  # libpst writes out no attachment it finds no bytes for, in any PST
            want.attachments = {name: digest for name, digest in want.attachments.items() if digest != EMPTY_SHA256}
        if differences(got, want):
            found[want.subject] = differences(got, want)
    return found


@pytest.mark.parametrize("reader", ["readpst", "pffexport", "pypff"])
def test_every_reader_shows_the_awkward_messages_as_they_are(
    reader: str, awkward_pst: tuple[Path, list[Message]], tmp_path: Path
) -> None:
    """A NUL in a body, a folded subject, a digest, a zero-byte attachment, reports, invitations, cards, nested
    messages and long non-ASCII names: subject, body, attachments, attached messages, sender, recipients, dates
    and flags, as far as each reader shows them."""
    path, messages = awkward_pst
    assert misread(export_by(reader, path, tmp_path), messages, reader) == {}


def test_migrator_restores_the_awkward_messages_byte_for_byte(awkward_pst: tuple[Path, list[Message]]) -> None:
    path, messages = awkward_pst
    with PstReader(path) as pst:
        (folder,) = [f for f in pst.folders() if f.path == AWKWARD_FOLDER]
        restored = list(pst.fetch(folder, pst.scan(folder)))
    assert [(m.raw, m.flags, m.received) for m in restored] == [(m.raw, m.flags, m.received) for m in messages]
    assert any(b"\0" in m.raw for m in restored)


@pytest.mark.parametrize("reader", ["readpst", "pypff"])
def test_an_attachment_name_longer_than_a_file_name_can_be(reader: str, tmp_path: Path) -> None:
    # pffexport writes each attachment to a file of its name, which Linux refuses beyond 255 bytes
    name = "Übersicht für das Projekt 日本語 " + "sehr lang " * 40 + ".pdf"
    message = Message(long_names_mail(name), Flags(), BASE_DATE, ("Long",))
    path = write_pst(tmp_path / "long.pst", [message])
    assert misread(export_by(reader, path, tmp_path), [message], reader) == {}
    with PstReader(path) as pst:
        assert [m.raw for f in pst.folders() for m in pst.fetch(f, pst.scan(f))] == [message.raw]
