"""The sqlite state file: what was copied where, so reruns copy only what is new.

Like mbsync's sync state it is small and explicit: one row per source folder and target
(a *pair*), one row per message copied through that pair, recorded once its write is
durable. A pair is keyed by where its messages go (the target folder the folder rules name),
so a changed ``--map`` starts a new pair rather than finding the old one "already there";
it also keeps the identity of the target folder it wrote to, which every run compares with
the target before it trusts the rows (the stores are the truth, this file only a cache).
Before a run writes into a pair it marks the pair *dirty*, and clears the mark
when every write of the folder is recorded; a run killed in between leaves the mark, and
the next run first looks in the target by content key for messages it may have written
without recording them, so nothing is lost and nothing is written twice. One mark per
folder, rather than a pending row per message, keeps the commits (each an fsync) few.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from migrator.core.errors import StoreError
from migrator.core.message import FolderPath
from migrator.state.copied import CopiedMessages

SCHEMA_VERSION = 2
# SQLite's default page cache (2 MB a connection) fills once the file holds tens of thousands of
# messages, and a run has a connection per worker: 512 KiB each recorded 50 000 rows as fast
# and kept peak memory 1.5 MB lower per connection.
CACHE_KIB = 512
_PAIRS_COLUMNS = """(
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL, folder TEXT NOT NULL, target TEXT NOT NULL, destination TEXT NOT NULL,
    target_folder TEXT NOT NULL DEFAULT '', validity TEXT NOT NULL DEFAULT '',
    dirty INTEGER NOT NULL DEFAULT 0, version TEXT NOT NULL DEFAULT '',
    target_identity TEXT NOT NULL DEFAULT '', target_size INTEGER,
    UNIQUE (source, folder, target, destination))"""
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pairs {_PAIRS_COLUMNS};
CREATE TABLE IF NOT EXISTS copied (
    pair INTEGER NOT NULL REFERENCES pairs(id),
    uid TEXT NOT NULL, target_uid TEXT, content_key TEXT NOT NULL, flags TEXT NOT NULL,
    copied_at REAL NOT NULL,
    PRIMARY KEY (pair, uid)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, started REAL NOT NULL, ended REAL,
    copied INTEGER, already_there INTEGER, left_out INTEGER, failed INTEGER, bytes INTEGER, exit_code INTEGER,
    error TEXT);
"""


# Schema 1 keyed a pair by source folder and target alone. Its rows are kept: the folder they were
# written to becomes the destination, which is right unless a special-use role redirected it (then
# the first run finds those messages in the target by content key instead of copying them again).
_FROM_SCHEMA_1 = f"""
CREATE TABLE pairs_2 {_PAIRS_COLUMNS};
INSERT INTO pairs_2 (id, source, folder, target, destination, target_folder, validity, dirty, version)
    SELECT id, source, folder, target, target_folder, target_folder, validity, dirty, version FROM pairs;
DROP TABLE pairs;
ALTER TABLE pairs_2 RENAME TO pairs;
ALTER TABLE runs RENAME COLUMN skipped TO already_there;
ALTER TABLE runs ADD COLUMN left_out INTEGER;
UPDATE meta SET value='2' WHERE key='schema';
"""
_PAIR_COLUMNS = "id, target_folder, validity, dirty, version, target_identity, target_size"


class PairKey(NamedTuple):
    """Which pair: the source and its folder, the target, and the folder there the rules send it to."""

    source: str
    folder: FolderPath
    target: str
    destination: FolderPath

    def values(self) -> tuple[str, str, str, str]:
        """Return the key as the state file stores it."""
        return self.source, folder_key(self.folder), self.target, folder_key(self.destination)


class Pair(NamedTuple):
    """A source folder and one target folder, as the state file knows them.

    ``target_identity`` is what the target said of the folder when it was last written or checked
    (see ``Store.probe_folder``); ``target_size`` its size then, for stores that measure in bytes.
    """

    id: int
    target_folder: str
    validity: str
    dirty: bool
    version: str = ""
    target_identity: str = ""
    target_size: int | None = None

    @property
    def target_path(self) -> FolderPath:
        """Return the folder the pair's messages were written to."""
        return tuple(json.loads(self.target_folder)) if self.target_folder else ()

    @classmethod
    def from_row(cls, row: tuple) -> Pair:
        """Return the pair of a row selected as ``_PAIR_COLUMNS``."""
        return cls(row[0], row[1], row[2], bool(row[3]), row[4], row[5], row[6])


class RunRecord(NamedTuple):
    """One finished or running run, for `migrator status`."""

    name: str
    started: float
    ended: float | None
    copied: int | None
    already_there: int | None
    left_out: int | None
    failed: int | None
    bytes: int | None
    exit_code: int | None
    error: str | None = None  # why a failed run failed: its error, or its first failure


def folder_key(path: FolderPath) -> str:
    """Return the folder path as stored in the state file."""
    return json.dumps(list(path), ensure_ascii=False)


class StateStore:
    """The state file. Every method that records commits durably before returning."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            self._holding = False
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self.db.executescript(_SCHEMA)
            self._check_version()
            self._add_run_errors()
        except (OSError, sqlite3.Error) as e:
            raise StoreError(
                f"cannot use the state file {self.path}: {e}; check the path and its permissions"
            ) from None

    def _check_version(self) -> None:
        row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) == 1:
            with self._transaction():
                for statement in _FROM_SCHEMA_1.split(";"):
                    self.db.execute(statement)
        elif int(row[0]) != SCHEMA_VERSION:
            raise StoreError(f"the state file {self.path} has schema {row[0]}, this migrator reads {SCHEMA_VERSION}")

    def _add_run_errors(self) -> None:
        # State files written before runs kept their error lack the column; older readers name
        # their columns, so adding one keeps the file readable by them (no new schema version).
        with self._transaction():
            columns = {row[1] for row in self.db.execute("PRAGMA table_info(runs)")}
            if "error" not in columns:
                self.db.execute("ALTER TABLE runs ADD COLUMN error TEXT")

    @contextlib.contextmanager
    def _transaction(self, begin: str = "BEGIN IMMEDIATE") -> Iterator[None]:
        # The connection is in autocommit mode (so PRAGMAs apply at once); without an explicit
        # BEGIN every row of an executemany would be a transaction, and an fsync, of its own.
        self.db.execute(begin)
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    # --- pairs -----------------------------------------------------------------------

    def pair(self, key: PairKey) -> Pair | None:
        """Return the pair for this source folder, target and destination, or None if never copied."""
        row = self.db.execute(
            f"SELECT {_PAIR_COLUMNS} FROM pairs WHERE source=? AND folder=? AND target=? AND destination=?",
            key.values(),
        ).fetchone()
        return Pair.from_row(row) if row else None

    def open_pair(self, key: PairKey, target_folder: FolderPath, validity: str) -> Pair:
        """Return the pair, created or updated to the folder it is written to and the source's validity."""
        with self._transaction():
            self.db.execute(
                "INSERT INTO pairs (source, folder, target, destination, target_folder, validity) "
                "VALUES (?,?,?,?,?,?) ON CONFLICT (source, folder, target, destination) "
                "DO UPDATE SET target_folder=excluded.target_folder",
                (*key.values(), folder_key(target_folder), validity),
            )
        pair = self.pair(key)
        assert pair is not None
        return pair

    def set_target_identity(self, pair: Pair, identity: str, size: int | None) -> Pair:
        """Record what the target says of the pair's folder now that the rows describe it."""
        if (identity, size) == (pair.target_identity, pair.target_size):
            return pair
        with self._transaction():
            self.db.execute("UPDATE pairs SET target_identity=?, target_size=? WHERE id=?", (identity, size, pair.id))
        return pair._replace(target_identity=identity, target_size=size)

    def forget(self, pair: Pair) -> Pair:
        """Drop every row of a pair whose target folder no longer holds what they describe."""
        with self._transaction():
            self.db.execute("DELETE FROM copied WHERE pair=?", (pair.id,))
            self.db.execute("UPDATE pairs SET version='', target_identity='', target_size=NULL WHERE id=?",
                            (pair.id,))
        return pair._replace(version="", target_identity="", target_size=None)

    def drop(self, pair: Pair, uids: Iterable[str]) -> None:
        """Drop the rows of source messages that are gone (the target keeps its copies)."""
        with self._transaction():
            self.db.executemany("DELETE FROM copied WHERE pair=? AND uid=?", ((pair.id, uid) for uid in uids))

    # --- copied messages -------------------------------------------------------------

    def copied(self, pair: Pair) -> CopiedMessages:
        """Return the source uids recorded for the pair with their flags, held compactly."""
        # Plain-number uids by length, then as text, come in numeric order: nothing to sort.
        return CopiedMessages(
            self.db.execute("SELECT uid, flags FROM copied WHERE pair=? ORDER BY length(uid), uid", (pair.id,))
        )

    def target_uid(self, pair: Pair, uid: str) -> str | None:
        """Return the target uid recorded for the source message ``uid``, or None (not copied, or not known)."""
        row = self.db.execute("SELECT target_uid FROM copied WHERE pair=? AND uid=?", (pair.id, uid)).fetchone()
        return None if row is None else row[0]

    def copied_before(self, pair: Pair, moment: float) -> set[str]:
        """Return the source uids recorded for the pair at ``moment`` or earlier."""
        rows = self.db.execute("SELECT uid FROM copied WHERE pair=? AND copied_at<=?", (pair.id, moment))
        return {uid for (uid,) in rows}

    def recorded(self, pair: Pair) -> Iterator[tuple[str, str | None, str]]:
        """Yield (uid, target_uid, content_key) of every message recorded for the pair, a row at a time.

        For the rare paths that need content keys (a folder renumbered, a run killed while
        writing): held whole, the rows of a folder of 100 000 messages took 40 MB.
        """
        yield from self.db.execute("SELECT uid, target_uid, content_key FROM copied WHERE pair=?", (pair.id,))

    def mark_dirty(self, pair: Pair, dirty: bool) -> Pair:
        """Record that writes into the pair are (or are no longer) under way."""
        with self._transaction():
            self.db.execute("UPDATE pairs SET dirty=? WHERE id=?", (int(dirty), pair.id))
        return pair._replace(dirty=dirty)

    def set_version(self, pair: Pair, version: str) -> None:
        """Record the source folder version every message of which the target now holds."""
        with self._transaction():
            self.db.execute("UPDATE pairs SET version=? WHERE id=?", (version, pair.id))

    def count(self, pair: Pair) -> int:
        """Return how many messages are recorded for the pair."""
        return self.db.execute("SELECT count(*) FROM copied WHERE pair=?", (pair.id,)).fetchone()[0]

    def record(self, pair: Pair, copied: Iterable[tuple[str, str | None, str, str]]) -> None:
        """Record (uid, target_uid, content_key, flags) of messages durably in the target, in one commit."""
        now = time.time()
        with self._transaction():
            self.db.executemany(
                "INSERT OR REPLACE INTO copied VALUES (?, ?, ?, ?, ?, ?)",
                ((pair.id, uid, tuid, key, flags, now) for uid, tuid, key, flags in copied),
            )

    def _hold_table(self) -> None:
        if not self._holding:
            # A TEMP table lives in a temporary file of SQLite's and vanishes with the connection,
            # so rows of a target never closed are never recorded.
            self.db.execute("PRAGMA temp_store=FILE")
            self.db.execute("CREATE TEMP TABLE held (pair INTEGER NOT NULL, uid TEXT NOT NULL, target_uid TEXT, "
                            "content_key TEXT NOT NULL, flags TEXT NOT NULL, PRIMARY KEY (pair, uid)) WITHOUT ROWID")
            self.db.execute("CREATE TEMP TABLE held_flags (pair INTEGER NOT NULL, uid TEXT NOT NULL, "
                            "flags TEXT NOT NULL, PRIMARY KEY (pair, uid)) WITHOUT ROWID")
            self._holding = True

    def hold(self, pair: Pair, copied: Iterable[tuple[str, str | None, str, str]]) -> None:
        """Keep (uid, target_uid, content_key, flags) of messages written to a target that is not durable
        yet (a PST until it is closed), out of memory and out of the file, until ``record_held``."""
        self._hold_table()
        # A deferred BEGIN: only the temporary file is written, so the state file is not even locked.
        with self._transaction("BEGIN"):
            self.db.executemany("INSERT OR REPLACE INTO temp.held VALUES (?, ?, ?, ?, ?)",
                                ((pair.id, uid, tuid, key, flags) for uid, tuid, key, flags in copied))

    def hold_flags(self, pair: Pair, changes: Iterable[tuple[str, str]]) -> None:
        """Keep new flags (uid, flags) carried to a target that is not durable yet, until ``record_held``."""
        self._hold_table()
        with self._transaction("BEGIN"):
            self.db.executemany("INSERT OR REPLACE INTO temp.held_flags VALUES (?, ?, ?)",
                                ((pair.id, uid, flags) for uid, flags in changes))

    def record_held(self, pair: Pair) -> None:
        """Record the rows and flags held for the pair, in one commit, now that its target is durable."""
        if not self._holding:
            return
        with self._transaction():
            self.db.execute("INSERT OR REPLACE INTO copied SELECT pair, uid, target_uid, content_key, flags, ? "
                            "FROM temp.held WHERE pair=?", (time.time(), pair.id))
            self.db.execute("DELETE FROM temp.held WHERE pair=?", (pair.id,))
            self.db.execute("UPDATE copied SET flags=(SELECT flags FROM temp.held_flags AS h WHERE h.pair=copied.pair "
                            "AND h.uid=copied.uid) WHERE pair=? AND uid IN (SELECT uid FROM temp.held_flags WHERE "
                            "pair=?)", (pair.id, pair.id))
            self.db.execute("DELETE FROM temp.held_flags WHERE pair=?", (pair.id,))

    def renumber(self, pair: Pair, validity: str, new_uids: dict[str, str]) -> Pair:
        """Record a new source validity, moving rows from old uids to ``new_uids[old]``.

        Rows whose old uid has no new one are dropped: the message left the source.
        Done in one transaction, so old and new numbers can overlap safely.
        """
        rows = self.db.execute(
            "SELECT uid, target_uid, content_key, flags, copied_at FROM copied WHERE pair=?", (pair.id,)
        ).fetchall()
        with self._transaction():
            self.db.execute("DELETE FROM copied WHERE pair=?", (pair.id,))
            self.db.executemany(
                "INSERT INTO copied VALUES (?, ?, ?, ?, ?, ?)",
                ((pair.id, new_uids[uid], *rest) for uid, *rest in rows if uid in new_uids),
            )
            self.db.execute("UPDATE pairs SET validity=? WHERE id=?", (validity, pair.id))
        return pair._replace(validity=validity)

    def update_flags(self, pair: Pair, changes: Iterable[tuple[str, str]]) -> None:
        """Record new flags (uid, flags) after they were carried to the target."""
        with self._transaction():
            self.db.executemany(
                "UPDATE copied SET flags=? WHERE pair=? AND uid=?", ((flags, pair.id, uid) for uid, flags in changes)
            )

    # --- runs ------------------------------------------------------------------------

    def start_run(self, name: str) -> int:
        """Record the start of a run and return its id."""
        with self._transaction():
            cursor = self.db.execute("INSERT INTO runs (name, started) VALUES (?, ?)", (name, time.time()))
        assert cursor.lastrowid is not None  # an INSERT sets it
        return cursor.lastrowid

    def end_run(self, run_id: int, *, copied: int, already_there: int, left_out: int, failed: int, size: int,
                exit_code: int,
                error: str | None = None) -> None:
        """Record the end of a run with its counts, exit code and, for a failed run, why it failed."""
        with self._transaction():
            self.db.execute(
                "UPDATE runs SET ended=?, copied=?, already_there=?, left_out=?, failed=?, bytes=?, exit_code=?, "
                "error=? WHERE id=?",
                (time.time(), copied, already_there, left_out, failed, size, exit_code, error, run_id),
            )

    def last_runs(self, limit: int = 10) -> list[RunRecord]:
        """Return the most recent runs, newest first."""
        rows = self.db.execute(
            "SELECT name, started, ended, copied, already_there, left_out, failed, bytes, exit_code, error FROM runs "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [RunRecord(*row) for row in rows]
