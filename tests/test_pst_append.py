"""Adding to an existing PST in place, and killing it at every step of that.

A rerun that finds new mail writes it into the space the file's maps mark free (what earlier appends freed)
and after the file's end, changes the B-trees copy-on-write and writes the header last
(migrator/stores/pst/ndb/append.py). The sweeps run the real command line, SIGKILLed just before its Nth write
into the PST (tests/support/pst_kill.py), for points in the message blocks, the tables, the B-tree pages, the
allocation maps and the header, and after the header before the state file records the rows; the run swept
reuses the holes an earlier append left. After each kill the file at PATH must read cleanly in our validator,
readpst, pffexport and pypff, showing either the previous messages or all of them; and a rerun must end exact:
every source message once, byte for byte as our reader gives it back.
"""

from __future__ import annotations

import base64
import random
import shutil
import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from harness.corpus import corpus
from harness.dovecot import DovecotServer
from harness.mailserver import MailUser
from migrator.core.message import Flag, Flags, Message
from migrator.endpoints.endpoint import parse_endpoint
from migrator.stores import open_store
from migrator.stores.pst.ndb import format as fmt
from migrator.stores.pst.ndb.append import node_blocks
from migrator.stores.pst.ndb.free_space import FreeSpace
from migrator.stores.pst.ndb.reader import Ndb, parse_header
from migrator.stores.pst.reader import PstReader
from migrator.stores.pst.validate import validate
from tests.support.archives import write_archive
from tests.support.pst_exports import Export, pffexport_export, readpst_export
from tests.support.pst_pypff import pypff_export
from tests.support.pst_space import free_in_maps, written_below_the_old_end

AFTER_HEADER = -2  # pst_kill's point after the PST is complete, before the state file records its rows
Contents = Counter[tuple[tuple[str, ...], bytes]]


def _big(number: int) -> Message:
    payload = base64.encodebytes(random.Random(number).randbytes(300_000)).replace(b"\n", b"\r\n")
    raw = (f"Subject: big {number}\r\nMessage-ID: <big{number}@append>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n").encode() + payload
    return Message(raw, Flags(), datetime(2024, 6, number, tzinfo=timezone.utc), ("INBOX",))


class Scene:
    """A Maildir copied into a PST, added to once (new mail and flag changes: holes where the old tables were),
    then given new mail: the PST and state file as that first append left them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.source = root / "source"
        self.work = root / "work"
        self.work.mkdir()
        self.pst = self.work / "backup.pst"
        self.state = self.work / "state.sqlite"
        messages = [m for m in corpus() if m.raw]
        old, earlier, new = messages[::3], messages[1::3], messages[2::3]
        write_archive(parse_endpoint(f"maildir:{self.source}"), old)
        assert copy(self, str(self.state)).returncode == 0
        self.first = self.pst.read_bytes()
        write_archive(parse_endpoint(f"maildir:{self.source}"), earlier)
        flip_some_flags(self.source)
        assert copy(self, str(self.state)).returncode == 0
        self.saved = root / "saved"
        shutil.copytree(self.work, self.saved)
        new += [_big(1), _big(2)] + [
            Message(f"Subject: in a new folder {n}\r\n\r\nhello\r\n".encode(), Flags(),
                    datetime(2024, 6, 3, tzinfo=timezone.utc), folder)
            for n, folder in enumerate((("Neu",), ("Neu", "Unterordner")))
        ]
        write_archive(parse_endpoint(f"maildir:{self.source}"), new)
        self.expected = source_contents(self.source)
        self.before = exports(self.pst, root / "before")
        counted = self.trial(-1)
        self.writes = int(counted.stderr.rsplit("pst writes: ", 1)[1].split()[0])
        assert pst_contents(self.pst) == self.expected
        self.after = exports(self.pst, root / "after")

    def trial(self, kill_at: int) -> subprocess.CompletedProcess[str]:
        """Restore the first copy's PST and state, and run the copy killed before write ``kill_at``."""
        shutil.rmtree(self.work)
        shutil.copytree(self.saved, self.work)
        command = [sys.executable, "-m", "tests.support.pst_kill", str(kill_at), "copy", "--quiet",
                   "--state", str(self.state), f"maildir:{self.source}", f"pst:{self.pst}"]
        return subprocess.run(command, capture_output=True, text=True, timeout=300)

    def killed_then_rerun(self, kill_at: int, out: Path) -> str:
        """Kill a run at ``kill_at``, check the file and the rerun; return 'before' or 'after' (what PATH showed)."""
        killed = self.trial(kill_at)
        assert killed.returncode == -signal.SIGKILL, (kill_at, killed.returncode, killed.stderr)
        assert validate(self.pst) == [], kill_at
        header = parse_header(self.pst.read_bytes()[:fmt.HEADER_SIZE])
        left = ("bytes after ibFileEof" if self.pst.stat().st_size > header.file_eof else "",
                "maps marked invalid" if header.amap_valid == fmt.AMAP_INVALID else "")
        shown = exports(self.pst, out)
        assert shown in (self.before, self.after), kill_at
        rerun = copy(self, str(self.state))
        assert rerun.returncode == 0, rerun.stderr
        assert validate(self.pst) == []
        assert pst_contents(self.pst) == self.expected, kill_at
        assert size_matches_header(self.pst)
        return ", ".join(filter(None, ("before" if shown == self.before else "after", *left)))


def flip_some_flags(source: Path) -> None:
    """Change the flags of two messages in each folder of the Maildir at ``source``."""
    with open_store(parse_endpoint(f"maildir:{source}"), readonly=False) as store:
        for folder in store.list_folders():
            for ref in list(store.scan(folder.path).refs)[:2]:
                flipped = ref.flags.system ^ {Flag.SEEN, Flag.FLAGGED}
                store.set_flags(folder.path, ref.uid, Flags(frozenset(flipped), ref.flags.keywords | {"later"}))


def copy(scene: Scene, state: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "migrator", "copy", "--quiet", "--state", state,
                           f"maildir:{scene.source}", f"pst:{scene.pst}"], capture_output=True, text=True, timeout=300)


def source_contents(path: Path) -> Contents:
    with open_store(parse_endpoint(f"maildir:{path}")) as store:
        return Counter((folder.path, m.raw) for folder in store.list_folders() for m in store.messages(folder.path))


def pst_contents(path: Path) -> Contents:
    with PstReader(path) as pst:
        return Counter((folder.path, m.raw) for folder in pst.folders() for m in pst.fetch(folder, pst.scan(folder)))


def exports(pst: Path, out: Path) -> list[dict[tuple[str, ...], list[str]]]:
    """Return the subjects per folder that readpst, pffexport and pypff show (each asserts it read all)."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    shown = [readpst_export(pst, out / "readpst"), pffexport_export(pst, out / "pffexport"), pypff_export(pst)]
    info = subprocess.run(["pffinfo", "-a", str(pst)], capture_output=True, text=True)
    assert info.returncode == 0, info.stdout + info.stderr  # pffinfo -a reads every allocation map
    return [_subjects(export) for export in shown]


def _subjects(export: Export) -> dict[tuple[str, ...], list[str]]:
    return {folder: sorted(m.subject for m in found) for folder, found in export.items() if found}


def size_matches_header(path: Path) -> bool:
    header = parse_header(path.read_bytes()[:fmt.HEADER_SIZE])
    return header.file_eof == path.stat().st_size and header.amap_valid == fmt.AMAP_VALID


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    return Scene(tmp_path_factory.mktemp("append"))


def test_an_append_writes_only_where_the_old_file_has_nothing(scene: Scene) -> None:
    # What the old header reaches is never overwritten, so a kill before the new header leaves the old file:
    # below its end an append writes the header, allocation maps, and blocks and pages in space the old maps
    # mark free (not in what the append itself frees: the old header reaches that until the new one is written).
    scene.trial(-1)
    old = (scene.saved / "backup.pst").read_bytes()
    assert validate(scene.pst) == []
    reused, overwritten = written_below_the_old_end(old, scene.pst.read_bytes())
    assert overwritten == set()
    # The holes the earlier append left where its tables and changed messages were are filled first.
    freed_by_the_earlier_append = free_in_maps(old) - free_in_maps(scene.first)
    assert reused & freed_by_the_earlier_append
    assert size_matches_header(scene.pst)


def test_free_space_is_handed_out_first_fit_aligned_and_never_over_the_map_pages(tmp_path: Path) -> None:
    # Three intervals. The first is used but for 10 units (64 bytes each): too little to be worth writing its map
    # again for. The second is used but for 10 units at unit 100 and 48 at unit 200. The third's AMap marks
    # everything free, even its own page, which is never handed out all the same.
    too_little, worth_it = bytearray(b"\xff" * fmt.PAGE_DATA_SIZE), bytearray(b"\xff" * fmt.PAGE_DATA_SIZE)
    for bitmap in (too_little, worth_it):
        bitmap[12:14] = b"\xf0\x03"  # units 100-109 free (most significant bit first: unit 96 is 0x80 of byte 12)
    worth_it[200 // 8:248 // 8] = bytes(6)  # units 200-247: starting on a 512-byte boundary
    path = tmp_path / "maps"
    path.write_bytes(bytes(fmt.interval_offset(3)))
    with open(path, "r+b") as file:
        for index, bitmap in enumerate((too_little, worth_it)):
            file.seek(fmt.interval_offset(index))
            file.write(bitmap)
        file.flush()
        space = FreeSpace(file, intervals=3)
        second, third = fmt.interval_offset(1), fmt.interval_offset(2)
        assert space.take(640, fmt.BLOCK_ALIGN) == second + 100 * 64  # the first hole that fits, where worth it
        assert space.take(512, fmt.PAGE_SIZE) == second + 200 * 64  # a page: 512-byte aligned
        assert space.take(64, fmt.BLOCK_ALIGN) == second + 208 * 64
        assert space.take(8192, fmt.BLOCK_ALIGN) == third + fmt.PAGE_SIZE  # no room before; after the AMap page
        assert space.take(512, fmt.PAGE_SIZE) == second + 216 * 64  # first fit: back where there is room
        assert sorted(space.taken) == [1, 2]  # the maps the commit writes again


def _small(number: int) -> Message:
    raw = (f"Subject: note {number} on the quarterly budget review\r\nFrom: Alice <alice@example.com>\r\n"
           f"To: bob@example.com\r\nMessage-ID: <note{number}@append>\r\n\r\nsee you at {number}\r\n").encode()
    return Message(raw, Flags(), datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=number), ("INBOX",))


def night(pst: Path, new: range, read: int, rng: random.Random) -> None:
    """Add the messages ``new`` to the INBOX of ``pst`` and mark ``read`` of its older ones read, as a nightly
    run into it does."""
    with open_store(parse_endpoint(f"pst:{pst}"), readonly=False) as store:
        inbox = store.ensure_folder(("INBOX",))
        old = list(store.scan(inbox).refs)
        assert all(result.ok for result in store.append_batch(inbox, [_small(number) for number in new]))
        for ref in rng.sample(old, read):
            store.set_flags(inbox, ref.uid, Flags(frozenset({Flag.SEEN})))


def contents_tables_bytes(pst: Path) -> int:
    """Return the bytes the blocks of the PST's contents tables take."""
    ndb = Ndb(pst.read_bytes())
    tables = [node for node in ndb.nodes() if fmt.nid_type(node.nid) == fmt.NID_TYPE_CONTENTS_TABLE]
    blocks = {bid for node in tables for bid in node_blocks(ndb, node.bid_data, node.bid_sub)}
    return sum(ndb.layout.block_size_on_disk(entry.cb) for bid in blocks if (entry := ndb.block_entry(bid)))


def test_nightly_appends_reuse_the_space_the_night_before_freed(tmp_path: Path) -> None:
    # Each night 20 messages come into an INBOX of 2 000 and 20 old ones are read: the INBOX's contents table
    # (about 750 KB) and the 20 messages' properties are written again, the old copies freed. The first night has
    # no hole that big and grows the file by the table; every later night writes its table where the table
    # before last was, and the file grows by the new mail alone, an interval (248 KB) at times.
    pst, rng = tmp_path / "archive.pst", random.Random(7)
    with open_store(parse_endpoint(f"pst:{pst}"), readonly=False) as store:
        store.append_batch(store.ensure_folder(("INBOX",)), [_small(number) for number in range(2000)])
    sizes = [pst.stat().st_size]
    for number in range(5):
        before = pst.read_bytes()
        night(pst, range(2000 + 20 * number, 2020 + 20 * number), 20, rng)
        reused, overwritten = written_below_the_old_end(before, pst.read_bytes())
        assert overwritten == set() and (number == 0 or len(reused) * fmt.BLOCK_ALIGN > 500_000)
        sizes.append(pst.stat().st_size)
    assert validate(pst) == []
    table = contents_tables_bytes(pst)
    first, *later = [after - before for before, after in zip(sizes, sizes[1:])]
    assert first >= table > 2 * fmt.AMAP_INTERVAL
    assert max(later) <= fmt.AMAP_INTERVAL, later


def test_a_rerun_that_finds_nothing_leaves_the_file_alone(scene: Scene) -> None:
    scene.trial(-1)
    before = scene.pst.read_bytes()
    assert copy(scene, str(scene.state)).returncode == 0
    assert scene.pst.read_bytes() == before


def kill_points(writes: int, every: int) -> list[int]:
    """Return write numbers to kill at: every ``every``th, and each of the last 12 (tables, pages, maps, header)."""
    return sorted({*range(0, writes, every), *range(max(writes - 12, 0), writes), AFTER_HEADER})


def test_killed_appends_leave_a_valid_file_and_reruns_end_exact(scene: Scene, tmp_path: Path) -> None:
    points = [0, scene.writes // 2, scene.writes - 3, scene.writes - 1, AFTER_HEADER]
    shown = [scene.killed_then_rerun(point, tmp_path / str(index)) for index, point in enumerate(points)]
    invalid = "before, bytes after ibFileEof, maps marked invalid"
    assert shown == ["before", "before, bytes after ibFileEof", invalid, invalid, "after"]


@pytest.mark.slow
def test_appends_killed_at_every_step_leave_a_valid_file_and_reruns_end_exact(scene: Scene, tmp_path: Path) -> None:
    points = kill_points(scene.writes, max(scene.writes // 40, 1))
    shown = Counter(scene.killed_then_rerun(point, tmp_path / str(index)) for index, point in enumerate(points))
    print(f"\n{len(points)} kill points of {scene.writes} writes: PATH showed {dict(shown)}; all reruns exact")
    # "before" alone: killed while the run was writing into the holes the earlier append left, nothing past the end.
    assert shown["before"] >= 1
    assert shown["after"] == 1 and shown["before, bytes after ibFileEof, maps marked invalid"] >= 2


def test_reruns_skip_the_unchanged_folders_of_a_pst_target(dovecot: DovecotServer, user: MailUser,
                                                           tmp_path: Path) -> None:
    # A source that gives folder versions (IMAP) lets a PST target skip what did not change, as other targets do:
    # the versions wait with the held rows until the file is durable (pipeline/run.py _record_deferred).
    from harness.corpus import seed_items, server_safe
    from migrator.pipeline.run import run_copy
    from migrator.state.statefile import StateStore
    from tests.test_copy import imap_endpoint

    dovecot.seed(user, seed_items(server_safe(corpus())))
    source, target = imap_endpoint(dovecot, user), parse_endpoint(f"pst:{tmp_path / 'backup.pst'}")
    state = StateStore(tmp_path / "state.sqlite")
    assert run_copy(source, [target], state=state).failures == []
    before = (tmp_path / "backup.pst").read_bytes()
    dovecot.enable_rawlog(user)
    summary = run_copy(source, [target], state=state)
    assert summary.copied == 0
    scanned = [c for c in dovecot.imap_commands(user) if "FETCH" in c.upper() or "EXAMINE" in c.upper()]
    assert scanned == [], "unchanged folders are not even scanned"
    assert (tmp_path / "backup.pst").read_bytes() == before
    dovecot.seed(user, [(("INBOX",), b"Subject: new\r\nMessage-ID: <new@pst>\r\n\r\nnew\r\n", (),
                         datetime(2024, 7, 1, tzinfo=timezone.utc))])
    dovecot.enable_rawlog(user)
    assert run_copy(source, [target], state=state).copied == 1
    examined = [c for c in dovecot.imap_commands(user) if "EXAMINE" in c.upper() or "SELECT" in c.upper()]
    assert examined and all('"INBOX"' in c or " INBOX" in c for c in examined), examined


def test_flag_changes_reach_the_pst_in_place_once_it_is_durable(tmp_path: Path) -> None:
    source, pst, state = tmp_path / "source", tmp_path / "backup.pst", tmp_path / "state.sqlite"
    write_archive(parse_endpoint(f"maildir:{source}"), [m for m in corpus() if m.raw][:12])
    command = ["copy", "--quiet", "--state", str(state), f"maildir:{source}", f"pst:{pst}"]
    assert subprocess.run([sys.executable, "-m", "migrator", *command], capture_output=True).returncode == 0
    flip_some_flags(source)
    killed = subprocess.run([sys.executable, "-m", "tests.support.pst_kill", "0", *command], capture_output=True)
    # Killed before its first write into the PST: the state file must not say the new flags are there.
    assert killed.returncode == -signal.SIGKILL
    with PstReader(pst) as reader:
        unchanged = Counter((f.path, m.raw, m.flags) for f in reader.folders() for m in reader.fetch(f, reader.scan(f)))
    rerun = subprocess.run([sys.executable, "-m", "migrator", *command[:1], *command[2:]], capture_output=True,
                           text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert validate(pst) == []
    with open_store(parse_endpoint(f"maildir:{source}")) as store:
        want = Counter((f.path, m.raw, m.flags) for f in store.list_folders() for m in store.messages(f.path))
    with PstReader(pst) as reader:
        got = Counter((f.path, m.raw, m.flags) for f in reader.folders() for m in reader.fetch(f, reader.scan(f)))
    assert got == want and got != unchanged
    assert "flags" in rerun.stdout + rerun.stderr, rerun.stdout + rerun.stderr
    exports(pst, tmp_path / "exports")
    before = pst.read_bytes()
    assert subprocess.run([sys.executable, "-m", "migrator", *command], capture_output=True).returncode == 0
    assert pst.read_bytes() == before
