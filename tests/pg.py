"""A throwaway PostgreSQL server for the test session.

The tests talk to a real server: :func:`start` runs one from the binaries under
``/usr/lib/postgresql/*/bin`` (``scripts/postgres.sh install`` puts them there;
``make py-test`` runs it) in a temporary directory, listening on 127.0.0.1 only,
and :meth:`PostgresServer.stop` removes it. With ``OMNIROUTE_TEST_POSTGRES`` set
to the URL of a superuser on an existing server, that server is used instead.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from procs import free_port

__all__ = ["PostgresServer", "start"]

ENV = "OMNIROUTE_TEST_POSTGRES"
USER = "omniroute"
PASSWORD = "omniroute"
READY_SECONDS = 30.0
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _binaries() -> Path:
    """The newest installed PostgreSQL's bin directory."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    dirs = [d for d in found if (d / "pg_ctl").exists() and (d / "postgres").exists()]
    if not dirs:
        raise RuntimeError(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): the store tests run "
            "against a real server. Run `scripts/postgres.sh install` (or `make py-test`, which does), "
            f"or set {ENV} to the URL of a superuser on a running server"
        )

    def version(d: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", d.parent.name))

    return max(dirs, key=version)


def _with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


class PostgresServer:
    """A PostgreSQL server for tests: ``url`` is its base URL (no database);
    :meth:`create_database` gives each test an empty database of its own."""

    def __init__(self, url: str, *, directory: Path | None = None, bin_dir: Path | None = None) -> None:
        self.url = url
        self.startup_seconds = 0.0
        self._directory = directory
        self._bin_dir = bin_dir
        self._created: list[str] = []
        self._admin: psycopg.Connection[TupleRow] | None = None

    @property
    def external(self) -> bool:
        """Whether the server was there before (``OMNIROUTE_TEST_POSTGRES``) and outlives the tests."""
        return self._directory is None

    def _connection(self) -> psycopg.Connection[TupleRow]:
        if self._admin is None or self._admin.closed:
            self._admin = psycopg.connect(_with_database(self.url, "postgres"), autocommit=True)
        return self._admin

    def create_database(self, name: str) -> str:
        """An empty database ``name``; returns its URL."""
        if not _NAME.fullmatch(name):
            raise ValueError(f"database name {name!r}: use lower-case letters, digits and _")
        self._connection().execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._created.append(name)
        return _with_database(self.url, name)

    def drop_database(self, name: str) -> None:
        """Drop a database :meth:`create_database` made. Nothing may still be
        connected to it: a store a test left open fails the drop (after the
        server's own 5 s wait for connections that are closing)."""
        self._connection().execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        self._created.remove(name)

    def stop(self) -> None:
        """Stop the server this started and delete its files; on an external
        server, drop the databases the tests created."""
        try:
            if self.external and self._created:
                conn = self._connection()
                for name in self._created:
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                    )
            self._created.clear()
        finally:
            if self._admin is not None:
                self._admin.close()
                self._admin = None
            if self._directory is not None and self._bin_dir is not None:
                data = self._directory / "data"
                if (data / "postmaster.pid").exists():
                    _run(
                        [
                            str(self._bin_dir / "pg_ctl"),
                            "stop",
                            "-D",
                            str(data),
                            "-m",
                            "fast",
                            "-w",
                            "-t",
                            "30",
                        ],
                        check=False,
                    )
                shutil.rmtree(self._directory, ignore_errors=True)
                self._directory = None

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _as_root() -> bool:
    return os.geteuid() == 0


def _run(args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL program: as the ``postgres`` user when we are root
    (the server refuses to run as root), as ourselves otherwise."""
    if _as_root():
        args = ["runuser", "-u", "postgres", "--", *args]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done


def start() -> PostgresServer:
    """The server to test against: ``OMNIROUTE_TEST_POSTGRES`` if set, else a
    fresh one (stop it with :meth:`PostgresServer.stop`)."""
    began = time.monotonic()
    external = os.environ.get(ENV)
    if external:
        server = PostgresServer(external)
        server._connection()  # fail here, clearly, if it is not reachable
        server.startup_seconds = time.monotonic() - began
        return server

    bin_dir = _binaries()
    # In $TMPDIR (default /tmp): keep its path short, for the Unix socket in it.
    directory = Path(tempfile.mkdtemp(prefix="omniroute-pg-"))
    server = PostgresServer("", directory=directory, bin_dir=bin_dir)
    try:
        password_file = directory / "password"
        password_file.write_text(PASSWORD + "\n")
        if _as_root():
            # The server refuses to run as root: it runs as ``postgres``, which owns its files.
            owner = pwd.getpwnam("postgres")
            for path in (directory, password_file):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            if _run(["test", "-w", str(directory)], check=False).returncode != 0:
                raise RuntimeError(
                    f"the postgres user cannot reach {directory}: set TMPDIR to one it can (e.g. /tmp)"
                )
        data = directory / "data"
        _run(
            [
                str(bin_dir / "initdb"),
                "--pgdata",
                str(data),
                "--username",
                USER,
                "--pwfile",
                str(password_file),
                "--auth-local",
                "trust",
                "--auth-host",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--locale",
                "C.UTF-8",
            ]
        )
        # Durability stays on (no fsync=off): the store's commits are tested for real.
        options = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(directory),
            "shared_buffers": "128MB",
            "max_connections": "200",
        }
        for attempt in range(3):
            port = free_port()
            settings = {**options, "port": str(port)}
            (data / "postgresql.auto.conf").write_text(
                "".join(f"{key} = '{value}'\n" for key, value in settings.items())
            )
            log = directory / "server.log"
            done = _run(
                [str(bin_dir / "pg_ctl"), "start", "-D", str(data), "-l", str(log), "-w", "-t", "30"],
                check=False,
            )
            if done.returncode == 0:
                break
            text = log.read_text() if log.exists() else ""
            if attempt == 2 or "could not bind" not in text:
                raise RuntimeError(
                    f"PostgreSQL did not start ({done.returncode}):\n{done.stdout}{done.stderr}{text}"
                )
        server.url = f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/"
        _wait_ready(server)
    except BaseException:
        server.stop()
        raise
    server.startup_seconds = time.monotonic() - began
    return server


def _wait_ready(server: PostgresServer) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while True:
        try:
            server._connection().execute("SELECT 1")
        except psycopg.OperationalError as e:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"PostgreSQL at {server.url} not ready after {READY_SECONDS:.0f} s: {e}"
                ) from e
            time.sleep(0.1)
        else:
            return


_shared: PostgresServer | None = None
_users = 0


@contextlib.contextmanager
def shared() -> Iterator[PostgresServer]:
    """One server for the whole run, however many fixtures (the tests' and
    the benchmarks') ask for it; stopped when the last of them is done."""
    global _shared, _users
    if _shared is None:
        _shared = start()
    _users += 1
    try:
        yield _shared
    finally:
        _users -= 1
        if _users == 0:
            _shared.stop()
            _shared = None
