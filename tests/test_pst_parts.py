"""A PST in parts is one archive to a rerun: none of its messages is written twice, and flag changes reach
messages in every part, in place, whatever write a kill interrupts.

A target split into parts (``pst:PATH?part_size=``) has its first part's record key as its identity, its
folders' counts are those of every part, and what a rerun looks for by content key it finds in whichever part
holds it, under the uid the writer gave. No message is ever added to an earlier part, but a rerun that finds
flags changed at the source writes them into the part that holds each message, as it does in the last part:
the message's property context written again after the part's end, its folder's tables and the B-trees
copy-on-write, the part's header last (migrator/stores/pst/store.py, append.py). Each part is committed on its
own when the store is closed, and only then does the state file record the new flags. The sweeps SIGKILL the
real command line before its Nth write into any part (tests/support/pst_kill.py); after each kill every part
must validate and read in the independent readers as it was before the run or as it is after it, and a rerun
must end exact: every source message once, with its flags, through ``pst:PATH`` read as one store.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from migrator.core.errors import MessageError
from migrator.core.message import Flag, Flags, FolderPath, Message
from migrator.endpoints.endpoint import parse_endpoint
from migrator.stores import open_store
from migrator.stores.pst.parts import existing_parts, split_uid
from migrator.stores.pst.reader import PstReader
from migrator.stores.pst.validate import validate
from tests.support.archives import write_archive
from tests.support.pst_exports import pst_flags, read_marks
from tests.support.pst_foreign import make_foreign
from tests.support.pst_pypff import pypff_export
from tests.support.pst_space import written_below_the_old_end
from tests.test_pst_append import AFTER_HEADER, exports, kill_points, size_matches_header

PART_SIZE = "100KB"
FOLDERS: tuple[FolderPath, ...] = (("INBOX",), ("Archive", "2024"), ("Lists",))
Contents = Counter[tuple[FolderPath, bytes, Flags]]


def mail(number: int, flags: frozenset[Flag] = frozenset(), folder: FolderPath | None = None) -> Message:
    """Return message ``number``, about 3 KB, with a subject of its own."""
    body = "".join(f"line {line} of message {number}, written to fill a part\r\n" for line in range(60))
    raw = (f"From: sender{number}@example.org\r\nTo: archive@example.org\r\nSubject: split {number:02d}\r\n"
           f"Message-ID: <split{number}@parts>\r\nDate: Mon, 3 Jun 2024 10:{number % 60:02d}:00 +0000\r\n\r\n"
           + body).encode()
    received = datetime(2024, 6, 3, tzinfo=timezone.utc) + timedelta(minutes=number)
    return Message(raw, Flags(flags), received, folder or FOLDERS[number % len(FOLDERS)])


def new_flags(flags: Flags) -> Flags:
    """Return other flags than ``flags``: seen flipped, flagged and answered, and a keyword."""
    system = (flags.system ^ {Flag.SEEN}) | {Flag.FLAGGED, Flag.ANSWERED}
    return Flags(frozenset(system), flags.keywords | {"later"})


class Split:
    """A Maildir copied into a PST in parts; then the flags of messages in the first, second and last part
    changed at the source and two new messages added: the parts and state file as the first copy left them.

    The last part is past the part size already, so the new messages start a part of their own.
    """

    def __init__(self, root: Path) -> None:
        self.source, self.work, self.saved = root / "source", root / "work", root / "saved"
        self.work.mkdir()
        self.pst, self.state = self.work / "archive.pst", self.work / "state.sqlite"
        write_archive(parse_endpoint(f"maildir:{self.source}"),
                      [mail(n, frozenset({Flag.SEEN}) if n % 2 else frozenset()) for n in range(30)])
        first = self.copy()
        assert first.returncode == 0, first.stderr
        self.parts = existing_parts(self.pst)
        assert len(self.parts) >= 3, self.parts
        self.changed = self._change_flags()
        write_archive(parse_endpoint(f"maildir:{self.source}"), [mail(n) for n in (30, 31)])
        self.expected = source_contents(self.source)
        shutil.copytree(self.work, self.saved)
        self.before = {part: part_flags(part) for part in self.parts}
        counted = self.trial(-1)
        assert counted.returncode == 0, counted.stderr
        self.writes = int(counted.stderr.rsplit("pst writes: ", 1)[1].split()[0])
        self.final_parts = existing_parts(self.pst)
        self.after = {part: part_flags(part) for part in self.final_parts}

    def _change_flags(self) -> dict[int, list[str]]:
        """Change at the source the flags of two messages of part 1, of part 2 and of the last part; return
        their subjects by part."""
        where = {}  # subject -> part number
        with open_store(parse_endpoint(f"pst:{self.pst}")) as pst:
            for folder in pst.list_folders():
                for message in pst.messages(folder.path):
                    where[subject(message)] = split_uid(message.uid)[0]
        numbers = (1, 2, len(self.parts))
        chosen = {number: [s for s, n in sorted(where.items()) if n == number][:2] for number in numbers}
        wanted = {s for subjects in chosen.values() for s in subjects}
        with open_store(parse_endpoint(f"maildir:{self.source}"), readonly=False) as store:
            for folder in filter(lambda f: f.selectable, store.list_folders()):
                for message in store.messages(folder.path):
                    if subject(message) in wanted:
                        store.set_flags(folder.path, message.uid, new_flags(message.flags))
        return chosen

    def copy(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "migrator", *self.arguments()], capture_output=True, text=True,
                              timeout=300)

    def arguments(self) -> list[str]:
        return ["copy", "--quiet", "--state", str(self.state), f"maildir:{self.source}",
                f"pst:{self.pst}?part_size={PART_SIZE}"]

    def trial(self, kill_at: int) -> subprocess.CompletedProcess[str]:
        """Restore the first copy's parts and state, and run the rerun killed before write ``kill_at``."""
        shutil.rmtree(self.work)
        shutil.copytree(self.saved, self.work)
        command = [sys.executable, "-m", "tests.support.pst_kill", str(kill_at), *self.arguments()]
        return subprocess.run(command, capture_output=True, text=True, timeout=300)

    def killed_then_rerun(self, kill_at: int, out: Path, readers: bool) -> str:
        """Kill the rerun at ``kill_at``, check every part and the next rerun; return what each part showed:
        'old' (as before the run), 'new' (as after it) or 'same' (a part the run does not change)."""
        killed = self.trial(kill_at)
        assert killed.returncode == -signal.SIGKILL, (kill_at, killed.returncode, killed.stderr)
        out.mkdir()
        shown = []
        for index, part in enumerate(existing_parts(self.pst)):
            assert validate(part) == [], (kill_at, part)
            flags = part_flags(part)
            assert flags in (self.before.get(part), self.after[part]), (kill_at, part)
            shown.append("same" if self.before.get(part) == self.after[part] else
                         "old" if flags == self.before.get(part) else "new")
            if readers:
                exports(part, out / f"part{index}")  # readpst, pffexport, pypff and pffinfo -a read it cleanly
        rerun = self.copy()
        assert rerun.returncode == 0, rerun.stderr
        assert existing_parts(self.pst) == self.final_parts
        assert all(validate(part) == [] and size_matches_header(part) for part in self.final_parts), kill_at
        assert pst_contents(self.pst) == self.expected, kill_at
        return " ".join(shown)


def subject(message: Message) -> str:
    return message.raw.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode()


def source_contents(path: Path) -> Contents:
    with open_store(parse_endpoint(f"maildir:{path}")) as store:
        return Counter((f.path, m.raw, m.flags) for f in store.list_folders() if f.selectable
                       for m in store.messages(f.path))


def pst_contents(path: Path) -> Contents:
    """Return what ``pst:PATH`` holds, every part read as one store."""
    with open_store(parse_endpoint(f"pst:{path}")) as store:
        return Counter((f.path, m.raw, m.flags) for f in store.list_folders() for m in store.messages(f.path))


def part_flags(part: Path) -> dict[str, Flags]:
    """Return the flags of each message of one part file, by subject."""
    with PstReader(part) as reader:
        return {subject(m): m.flags for f in reader.folders() for m in reader.fetch(f, reader.scan(f))}


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Split:
    return Split(tmp_path_factory.mktemp("parts"))


def test_flag_changes_reach_the_messages_of_every_part(split: Split, tmp_path: Path) -> None:
    old = {part: part.read_bytes() for part in (split.saved / part.name for part in split.parts)}
    assert split.trial(-1).returncode == 0
    assert pst_contents(split.pst) == split.expected  # pst:PATH as one store: all parts, every flag
    for number, subjects in split.changed.items():
        part = split.parts[number - 1]
        for name in subjects:
            assert split.after[part][name] != split.before[part][name], (part.name, name)
        unchanged = set(split.before[part]) - set(subjects)
        assert all(split.after[part][name] == split.before[part][name] for name in unchanged), part.name
        assert validate(part) == [] and size_matches_header(part)
        before, now = old[split.saved / part.name], part.read_bytes()
        # Changed in place: below the old end only the header, the maps, and space the old maps marked free.
        assert written_below_the_old_end(before, now[:len(before)])[1] == set(), part.name
    assert [p.name for p in split.parts if p.read_bytes() != old[split.saved / p.name]] == [
        split.parts[number - 1].name for number in sorted(split.changed)]
    assert split.final_parts == [*split.parts, split.pst.with_name(f"archive-{len(split.parts) + 1}.pst")]
    want = {(f if f[:1] != ("INBOX",) else ("Inbox", *f[1:]), subject(Message(raw)), flags)
            for (f, raw, flags), _ in split.expected.items()}
    shown_pypff, shown_read = set(), {"readpst": {}, "pffexport": {}}
    for index, part in enumerate(split.final_parts):
        shown_pypff |= {(f, m.subject, m.flags) for f, found in pypff_export(part).items() for m in found}
        for reader, marks in read_marks(part, tmp_path / str(index)).items():
            shown_read[reader].update(marks)
    assert shown_pypff == {(f, s, pst_flags(flags.system)) for f, s, flags in want}
    for reader, marks in shown_read.items():
        assert marks == {(f, s): Flag.SEEN in flags.system for f, s, flags in want}, reader


def test_a_rerun_after_the_flags_changed_leaves_every_part_alone(split: Split) -> None:
    split.trial(-1)
    before = {part: part.read_bytes() for part in split.final_parts}
    assert split.copy().returncode == 0
    assert {part: part.read_bytes() for part in existing_parts(split.pst)} == before


def test_killed_flag_changes_leave_every_part_valid_and_reruns_end_exact(split: Split, tmp_path: Path) -> None:
    points = [0, split.writes // 3, split.writes // 2, split.writes - 3, split.writes - 1, AFTER_HEADER]
    shown = [split.killed_then_rerun(point, tmp_path / str(index), readers=True) for index, point in enumerate(points)]
    # Killed before its first write every part is as it was; once the state file is about to record the new
    # flags, every part holds them, and the new mail's part is there.
    assert shown[0] == " ".join("old" if n in split.changed else "same" for n in range(1, len(split.parts) + 1))
    final = [*("new" if n in split.changed else "same" for n in range(1, len(split.parts) + 1)), "new"]
    assert shown[-1] == " ".join(final)
    assert len(set(shown)) >= 4, shown  # and in between, parts showing their new flags while others do not yet


@pytest.mark.slow
def test_flag_changes_killed_at_every_write_leave_every_part_valid(split: Split, tmp_path: Path) -> None:
    points = kill_points(split.writes, 1)
    shown = Counter(split.killed_then_rerun(point, tmp_path / str(index), readers=index % 10 == 0)
                    for index, point in enumerate(points))
    print(f"\n{len(points)} kill points of {split.writes} writes: the parts showed {dict(shown)}; all reruns exact")
    assert len(shown) >= 4


def thirty_into_parts(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """Return a Maildir of 30 messages, the PST in parts they are to be copied into, and the copy's arguments."""
    source, pst, state = tmp_path / "source", tmp_path / "archive.pst", tmp_path / "state.sqlite"
    write_archive(parse_endpoint(f"maildir:{source}"), [mail(n) for n in range(30)])
    target = f"pst:{pst}?part_size={PART_SIZE}"
    return source, pst, ["copy", "--quiet", "--state", str(state), f"maildir:{source}", target]


def rerun_saying(arguments: list[str]) -> subprocess.CompletedProcess:
    """Run the copy of ``arguments`` again, with its summary; assert that it succeeded."""
    rerun = subprocess.run([sys.executable, "-m", "migrator", *arguments[:1], *arguments[2:]], capture_output=True,
                           text=True)
    assert rerun.returncode == 0, rerun.stderr
    return rerun


def test_reruns_into_parts_write_nothing_twice(tmp_path: Path) -> None:
    source, pst, arguments = thirty_into_parts(tmp_path)
    assert subprocess.run([sys.executable, "-m", "migrator", *arguments]).returncode == 0
    parts = existing_parts(pst)
    assert len(parts) >= 3
    before = {part: part.read_bytes() for part in parts}
    rerun = rerun_saying(arguments)
    assert "0 copied" in rerun.stdout and "copied again" not in rerun.stdout, rerun.stdout
    assert {part: part.read_bytes() for part in existing_parts(pst)} == before
    assert pst_contents(pst) == source_contents(source)


def test_a_copy_killed_before_recording_is_found_in_every_part_and_its_flags_reach_them(tmp_path: Path) -> None:
    # Nothing recorded, and the parts already written: the rerun finds each message by content key in whichever
    # part holds it (a target is read as every part), adopts it under that part's uid, and writes nothing twice.
    source, pst, arguments = thirty_into_parts(tmp_path)
    killed = subprocess.run([sys.executable, "-m", "tests.support.pst_kill", str(AFTER_HEADER), *arguments],
                            capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    parts = existing_parts(pst)
    assert len(parts) >= 3
    before = {part: part.read_bytes() for part in parts}
    rerun = rerun_saying(arguments)
    assert "0 copied, 30 already there" in rerun.stdout, rerun.stdout
    assert {part: part.read_bytes() for part in existing_parts(pst)} == before
    with open_store(parse_endpoint(f"maildir:{source}"), readonly=False) as store:
        for folder in filter(lambda f: f.selectable, store.list_folders()):
            for message in store.messages(folder.path):
                store.set_flags(folder.path, message.uid, new_flags(message.flags))
    assert subprocess.run([sys.executable, "-m", "migrator", *arguments]).returncode == 0
    assert existing_parts(pst) == parts
    assert pst_contents(pst) == source_contents(source)


# --- the store itself ------------------------------------------------------------------------------------


def written_in_parts(path: Path) -> dict[str, Message]:
    """Write 20 messages into a PST in parts through the store; return them by uid."""
    messages = [mail(n) for n in range(20)]
    with open_store(parse_endpoint(f"pst:{path}?part_size={PART_SIZE}"), readonly=False) as store:
        results = [result for m in messages for result in store.append_batch(store.ensure_folder(m.folder), [m])]
    assert all(result.ok for result in results) and len(existing_parts(path)) >= 2
    return {str(result.uid): message for result, message in zip(results, messages, strict=True)}


def test_an_earlier_part_another_program_wrote_is_rebuilt_once_then_changed(tmp_path: Path) -> None:
    path = tmp_path / "archive.pst"
    messages = written_in_parts(path)
    make_foreign(path)
    (uid, message), *_ = messages.items()
    assert split_uid(uid)[0] == 1
    inode = path.stat().st_ino
    with open_store(parse_endpoint(f"pst:{path}"), readonly=False) as store:
        store.set_flags(message.folder, uid, new_flags(message.flags))
    assert path.stat().st_ino != inode  # rebuilt into a new file, renamed over the old
    assert all(validate(part) == [] for part in existing_parts(path))
    with open_store(parse_endpoint(f"pst:{path}")) as store:
        flags = {m.uid: m.flags for f in store.list_folders() for m in store.messages(f.path)}
    assert flags == {u: new_flags(m.flags) if u == uid else m.flags for u, m in messages.items()}


def test_new_flags_for_a_message_no_part_holds_fail_it_and_change_nothing(tmp_path: Path) -> None:
    path = tmp_path / "archive.pst"
    messages = written_in_parts(path)
    uid, message = next((u, m) for u, m in messages.items() if split_uid(u)[0] == 2)
    with open_store(parse_endpoint(f"pst:{path}"), readonly=False) as store:
        for unknown in (f"9:{uid.split(':')[1]}", "x:1", "2:"):
            with pytest.raises(MessageError, match="no part of it holds such a message"):
                store.set_flags(message.folder, unknown, message.flags)
    before = {part: part.read_bytes() for part in existing_parts(path)}
    with open_store(parse_endpoint(f"pst:{path}"), readonly=False) as store:
        with pytest.raises(MessageError, match="no message"):
            store.set_flags(message.folder, uid.split(":")[0] + ":99", message.flags)
    assert {part: part.read_bytes() for part in existing_parts(path)} == before
