"""The embedded default: one SQLite file in WAL mode, nothing to install."""

from __future__ import annotations

import fcntl
import os
import sqlite3
from typing import Any
from urllib.parse import parse_qs, urlsplit

from omniroute.errors import InvalidInputError
from omniroute.store.sql import Connection, SqlStore, StoreError

__all__ = ["SqliteStore"]

_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


class SqliteStore(SqlStore):
    """``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``.

    WAL with ``synchronous=NORMAL`` (the default) keeps every committed
    transaction through a crash of the process; ``?synchronous=FULL`` also
    through a power cut, at the cost of an fsync per commit.
    """

    blob_type = "BLOB"

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
        return conn

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
        super().close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
