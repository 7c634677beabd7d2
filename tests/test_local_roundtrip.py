"""What local archives (Maildir, mbox, Thunderbird, EML) must do beyond the Store contract (test_store_contract.py).

Each must give back exactly what it was given for the whole shared corpus and for folder names
chosen to be hostile, and pass it on along a chain of copies; must never create anything outside
its root nor follow a symbolic link in it; and must keep its files private.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from harness.corpus import corpus
from migrator.core.errors import ExitCode, FolderError
from migrator.core.message import Flags, FolderPath, Message
from migrator.endpoints.endpoint import parse_endpoint
from migrator.pipeline.run import run_copy
from migrator.stores import open_store
from migrator.stores.base import Store

KINDS = ("maildir", "mbox", "thunderbird", "eml")
HOSTILE_FOLDERS: tuple[FolderPath, ...] = (
    ("..",),
    ("../../etc",),
    ("/abs",),
    ("", "abs"),  # what a server's "/abs", "a//b" and "a/" are, with separator "/"
    ("a", "", "b"),
    ("a", ""),
    (".",),
    ("nul\x00byte",),
    ("new\nline",),
    ("a.b", "c.d"),
    ("back\\slash",),
    ("~user",),
    ("R&D",),
    ("Case",),
    ("case",),
    ("CASE", "x"),
    ("mbox",),
    ("msg.eml",),
    ("INBOX", "child"),
    ("A", "B", "C"),
    ("\U0001F4E7 mail",),
)


def _store(kind: str, path: Path, readonly: bool = False) -> Store:
    return open_store(parse_endpoint(f"{kind}:{path}"), readonly=readonly)


def _with_hostile_folders(messages: list[Message]) -> list[Message]:
    extra = [replace(messages[i % len(messages)], folder=folder) for i, folder in enumerate(HOSTILE_FOLDERS)]
    return messages + extra


def _write(store: Store, messages: list[Message]) -> None:
    by_folder: dict[FolderPath, list[Message]] = {}
    for message in messages:
        by_folder.setdefault(message.folder, []).append(message)
    for folder, batch in by_folder.items():
        target = store.ensure_folder(folder)
        for start in range(0, len(batch), 7):  # several batches per folder
            results = store.append_batch(target, batch[start : start + 7])
            assert all(r.ok for r in results), [r.error for r in results if not r.ok]


def _contents(store: Store) -> dict[FolderPath, list[tuple[bytes, Flags, float]]]:
    """Return every selectable folder's messages as (raw, flags, received timestamp), in store order."""
    return {
        folder.path: [(m.raw, m.flags, m.received.timestamp()) for m in store.messages(folder.path)]
        for folder in store.list_folders()
        if folder.selectable
    }


def _expected(messages: list[Message]) -> dict[FolderPath, list[tuple[bytes, Flags, float]]]:
    expected: dict[FolderPath, list[tuple[bytes, Flags, float]]] = {}
    for m in messages:
        expected.setdefault(m.folder, []).append((m.raw, m.flags, m.received.timestamp()))
    return expected


@pytest.fixture(scope="module")
def messages() -> list[Message]:
    return _with_hostile_folders(corpus())


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def test_round_trip(kind: str, tmp_path: Path, messages: list[Message]) -> None:
    with _store(kind, tmp_path / "archive") as store:
        _write(store, messages)
    with _store(kind, tmp_path / "archive", readonly=True) as store:
        got = _contents(store)
    expected = _expected(messages)
    assert {k: v for k, v in got.items() if v or k in expected} == expected


def test_nothing_is_created_outside_the_root_and_everything_is_private(kind: str, tmp_path: Path) -> None:
    root = tmp_path / "archive"
    batch = [Message(b"Subject: s\n\nx\n", folder=folder) for folder in HOSTILE_FOLDERS]
    with _store(kind, root) as store:
        _write(store, batch)
        listed = {f.path for f in store.list_folders() if f.selectable}
    assert os.listdir(tmp_path) == ["archive"]
    assert set(HOSTILE_FOLDERS) <= listed
    for path in _tree(root):
        mode = path.lstat().st_mode
        assert not stat.S_ISLNK(mode)
        assert stat.S_IMODE(mode) == (0o700 if stat.S_ISDIR(mode) else 0o600), path


def test_chained_copies_end_identical(tmp_path: Path, messages: list[Message]) -> None:
    with _store("maildir", tmp_path / "first") as first:
        _write(first, messages)
        source = _contents(first)
    chain = [("maildir", tmp_path / "first"), ("mbox", tmp_path / "m"), ("thunderbird", tmp_path / "t"),
             ("eml", tmp_path / "e"), ("maildir", tmp_path / "last")]
    for (from_kind, from_path), (to_kind, to_path) in zip(chain, chain[1:]):
        with _store(from_kind, from_path, readonly=True) as reader, _store(to_kind, to_path) as writer:
            for folder in reader.list_folders():
                if folder.selectable:
                    _write(writer, [replace(m, folder=folder.path) for m in reader.messages(folder.path)])
    with _store("maildir", tmp_path / "last", readonly=True) as last:
        assert _contents(last) == source


def _tree(root: Path) -> Iterator[Path]:
    yield root
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            yield Path(directory) / name


def test_a_symbolic_link_in_the_archive_is_never_written_through(kind: str, tmp_path: Path) -> None:
    root, outside = tmp_path / "archive", tmp_path / "outside"
    outside.mkdir()
    with _store(kind, root) as store:
        store.ensure_folder(("Evil",))
        made = next(p for p in root.iterdir() if "vil" in p.name)
        if made.is_dir():
            shutil.rmtree(made)
        else:
            made.unlink()  # Thunderbird's layout: a folder is a file
        made.symlink_to(outside, target_is_directory=True)
        try:
            store.append_batch(("Evil",), [Message(b"Subject: s\n\nx\n", folder=("Evil",))])
        except FolderError:
            pass
    assert list(outside.iterdir()) == []


SECRET = b"root:$6$never-in-a-backup$:19000:0:99999:7:::\n"
# Links below an archive's root that reading must refuse: (kind, the link, where it leads, the uid of the
# message that fails, or None when the folder fails). "shadow" is a file outside holding SECRET, "secret"
# the folder directory of another archive whose one message holds it.
LINKS = [
    ("maildir", "cur/4.shadow:2,S", "shadow", "4.shadow"),
    ("maildir", ".Secret", "secret", None),
    ("maildir", ".Work/cur", "secret/cur", None),
    ("mbox", "Secret", "secret", None),
    ("mbox", "Work/mbox", "secret/mbox", None),
    ("mbox", "Lists", "shadow", None),
    ("thunderbird", "Secret", "secret", None),
    ("thunderbird", "Lists", "shadow", None),
    ("eml", "INBOX/000099.eml", "shadow", "000099.eml"),
    ("eml", "Secret", "secret", None),
]


@pytest.mark.parametrize(("kind", "link", "leads_to", "uid"), LINKS)
def test_a_symbolic_link_below_the_root_is_reported_and_never_read(
    kind: str, link: str, leads_to: str, uid: str | None, tmp_path: Path
) -> None:
    root, elsewhere, backup = tmp_path / "archive", tmp_path / "elsewhere", tmp_path / "backup"
    with _store(kind, root) as store:
        _write(store, [Message(b"Subject: %s\n\nkept\n" % name.encode(), folder=(name,)) for name in ("INBOX", "Work")])
    with _store(kind, elsewhere) as store:
        _write(store, [Message(b"Subject: secret\n\n" + SECRET, folder=("Secret",))])
    (tmp_path / "shadow").write_bytes(b"From root Mon Jan  1 00:00:00 2024\nSubject: shadow\n\n" + SECRET)
    secret = elsewhere / (".Secret" if kind == "maildir" else "Secret")
    destination = tmp_path / "shadow" if leads_to == "shadow" else secret / leads_to.removeprefix("secret").lstrip("/")
    linked = root / link
    if linked.is_dir():
        shutil.rmtree(linked)
    linked.unlink(missing_ok=True)
    linked.symlink_to(destination)

    summary = run_copy(parse_endpoint(f"{kind}:{root}"), [parse_endpoint(f"mbox:{backup}")])

    assert (uid, f"{linked} is a symbolic link; not followed") in [(f.uid, f.reason) for f in summary.failures]
    assert summary.exit_code == ExitCode.PARTIAL
    assert summary.copied == (1 if "Work" in link else 2)
    assert not any(SECRET in path.read_bytes() for path in _tree(backup) if path.is_file())
