"""The embedded default: one SQLite file in WAL mode, nothing to install."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

from omniroute.errors import InvalidInputError
from omniroute.store.sql import Connection, SqlStore, StoreError

__all__ = ["SqliteStore"]

log = logging.getLogger("omniroute.store")

_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")

# A write transaction copies the WAL back into the database itself only once
# the WAL holds this many pages (SQLite's default is 1,000): normally the
# checkpointer's thread has done it long before (see _Checkpointer).
_WRITER_CHECKPOINT_PAGES = 20_000
# How often at most the checkpointer runs while writes keep coming.
_CHECKPOINT_INTERVAL_S = 0.2


class _Checkpointer:
    """Copies committed pages from the WAL back into the database file in a
    thread of its own, so that no write transaction waits for it.

    With SQLite's automatic checkpoint, the commit that takes the WAL past
    1,000 pages copies them all (and syncs the file) before it returns: about
    a tenth of the time of sustained intake (``docs/performance.md``). Here a
    commit only wakes this thread, which runs a PASSIVE checkpoint (it never
    waits for a lock, nor makes a writer or reader wait) at most every
    ``_CHECKPOINT_INTERVAL_S`` while commits keep coming, and sleeps when
    they stop. Once a checkpoint has copied the whole WAL, the next write
    starts it again from its beginning, so the file stays small."""

    def __init__(self, path: str, synchronous: str) -> None:
        self._path = path
        self._synchronous = synchronous
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="omniroute-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None)
        try:
            # A checkpoint syncs the files as the writer's commits would.
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            while not self._stop.is_set():
                self._wake.wait()
                self._wake.clear()
                if self._stop.is_set():
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as e:
                    # Nothing is lost: the pages stay in the WAL, and a write
                    # transaction copies them itself past _WRITER_CHECKPOINT_PAGES.
                    log.warning("store %s: checkpoint failed: %s", self._path, e)
                # Commits during the pause are taken in by the next checkpoint.
                self._stop.wait(_CHECKPOINT_INTERVAL_S)
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join()


class SqliteStore(SqlStore):
    """``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``.

    WAL with ``synchronous=NORMAL`` (the default) keeps every committed
    transaction through a crash of the process; ``?synchronous=FULL`` also
    through a power cut, at the cost of an fsync per commit.
    """

    blob_type = "BLOB"
    # Row by row, the driver would release and take back the interpreter lock
    # for each record (2,000 times for a context of 1,000 interactions and
    # 1,000 messages, each time queueing behind the runtime's threads) and
    # build a bytes object for each. group_concat keeps a BLOB's bytes (the
    # database is UTF-8: nothing is transcoded) and takes the rows in the
    # order of the subquery it reads, as a subquery with an ORDER BY is never
    # flattened into an aggregate. (On PostgreSQL, string_agg over bytea with
    # its own ORDER BY was slower than the rows: 4.5 against 3.1 ms for 1,000
    # records.)
    concat_records = "CAST(group_concat(record, '') AS BLOB)"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        parts = urlsplit(url)
        if parts.scheme != "sqlite":
            raise InvalidInputError(f"store: {url!r} is not a sqlite:/// URL")
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path:
            raise InvalidInputError(f"store: {url!r} names no file (sqlite:///path/to/omniroute.db)")
        self.path = path
        query = parse_qs(parts.query)
        self.synchronous = query.get("synchronous", ["NORMAL"])[0].upper()
        if self.synchronous not in _SYNCHRONOUS:
            raise InvalidInputError(f"store: synchronous={self.synchronous!r} is not one of {_SYNCHRONOUS}")
        self._lock_fd: int | None = None
        self._checkpointer: _Checkpointer | None = None
        self._checkpointer_lock = threading.Lock()
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise InvalidInputError(f"store: directory {directory!r} does not exist")

    def _connect(self) -> Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        # Big batches commit in one go; a larger page cache keeps indexes hot.
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute(f"PRAGMA wal_autocheckpoint={_WRITER_CHECKPOINT_PAGES}")
        return conn

    def _committed(self) -> None:
        checkpointer = self._checkpointer
        if checkpointer is None:
            with self._checkpointer_lock:
                if self._closed:
                    return
                if self._checkpointer is None:
                    self._checkpointer = _Checkpointer(self.path, self.synchronous)
                checkpointer = self._checkpointer
        checkpointer.committed()

    def _begin_write(self, cur: Any) -> None:
        # Take the write lock up front so a read inside the transaction can
        # never be upgraded into a busy error half-way.
        cur.execute("BEGIN IMMEDIATE")

    def _has_table(self, cur: Any, name: str) -> bool:
        cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return cur.fetchone() is not None

    def acquire_writer(self) -> None:
        if self._lock_fd is not None:
            return
        fd = os.open(self.path + "-writer.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreError(f"store {self.url}: another runtime is writing to it") from None
        self._lock_fd = fd

    def close(self) -> None:
        with self._checkpointer_lock:
            checkpointer, self._checkpointer = self._checkpointer, None
            super().close()
        if checkpointer is not None:
            checkpointer.stop()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
