"""The ``omniroute`` command."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import os
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import TextIO

import anyio

from omniroute import demo
from omniroute.errors import OmnirouteError
from omniroute.export import EVENT_TYPES, FORMATS, STATUSES, export_events, export_interactions
from omniroute.runtime import service
from omniroute.store import SqlStore, StoreError, open_store
from omniroute.store.migrations import latest_version

# The store every subcommand that needs one uses unless told otherwise.
DEFAULT_STORE = "sqlite:///omniroute.db"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="omniroute", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="push synthetic multi-channel traffic through the engine")
    d.add_argument("--hours", type=float, default=2.0, help="simulated hours (default 2)")
    d.add_argument("--agents", type=int, default=30, help="agents on shift (default 30)")
    d.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    _add_run(sub)
    _add_export(sub)
    _add_migrate(sub)
    args = parser.parse_args(argv)
    if args.command == "run":
        return _failing(_run, args)
    if args.command == "demo":
        if args.hours <= 0 or args.agents <= 0:
            parser.error("--hours and --agents must be positive")
        report = demo.run(hours=args.hours, agents=args.agents, seed=args.seed)
        sys.stdout.write(demo.describe(report, args.hours) + "\n")
    if args.command == "export":
        return _failing(_export, args)
    if args.command == "migrate":
        return _failing(_migrate, args)
    return 0


# ----- errors -----


def _error(message: str) -> int:
    """One line on stderr, exit status 2 (as argparse does for bad arguments)."""
    sys.stderr.write(f"omniroute: error: {message}\n")
    return 2


def _database_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [sqlite3.Error]
    psycopg = sys.modules.get("psycopg")  # loaded only if a PostgreSQL store was opened
    if psycopg is not None:
        errors.append(psycopg.Error)
    return tuple(errors)


def _failing(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a subcommand; the store's and the file system's errors become one line and exit 2."""
    try:
        return command(args)
    except BrokenPipeError:
        # The reader went away (| head): stop quietly, and keep Python from
        # complaining when it flushes standard output at exit.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (OmnirouteError, OSError) as e:
        return _error(str(e))
    except _database_errors() as e:
        return _error(f"store: {e}")


# ----- omniroute export -----


def _add_export(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    e = sub.add_parser(
        "export",
        help="write interactions or the event log as CSV or JSON Lines",
        description="Write interactions or the event log of a store as CSV or JSON Lines. "
        "Times are ISO 8601 in UTC (2023-11-14T22:13:20.000000Z).",
    )
    what = e.add_subparsers(dest="what", required=True, metavar="{interactions,events}")
    interactions = what.add_parser(
        "interactions",
        help="every interaction, one row each",
        description="Every interaction, one CSV row or JSON object each, with every field "
        "(an empty CSV cell is none; attributes are JSON).",
    )
    events = what.add_parser(
        "events",
        help="the event log in seq order (CloudEvents 1.0)",
        description="The append-only event log in seq order: one CloudEvents 1.0 object per line "
        "(jsonl), or the columns seq, id, type, time, subject, data (csv).",
    )
    for p, default in ((interactions, "csv"), (events, "jsonl")):
        p.add_argument("--store", default=DEFAULT_STORE, metavar="URL", help=f"default {DEFAULT_STORE}")
        p.add_argument(
            "--format", default=default, metavar="FORMAT", help=f"{' or '.join(FORMATS)} (default {default})"
        )
        p.add_argument(
            "--output", "-o", default="-", metavar="FILE", help="write here instead of standard output"
        )
    interactions.add_argument(
        "--status",
        action="extend",
        nargs="+",
        metavar="STATUS",
        help=f"only these statuses: {', '.join(STATUSES)}",
    )
    interactions.add_argument(
        "--since",
        type=_when,
        metavar="TIME",
        help="created at or after (ISO 8601, UTC if no offset; or Unix seconds)",
    )
    interactions.add_argument("--until", type=_when, metavar="TIME", help="created before (as --since)")
    events.add_argument(
        "--after", type=int, default=0, metavar="N", help="only events after seq N (default 0)"
    )
    events.add_argument(
        "--type",
        dest="types",
        action="extend",
        nargs="+",
        metavar="TYPE",
        help=f"only these event types: {', '.join(EVENT_TYPES)}",
    )


def _when(text: str) -> float:
    """Unix seconds, or an ISO 8601 date or time (UTC unless it says otherwise)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither an ISO 8601 time nor Unix seconds") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def _split(values: list[str] | None) -> list[str] | None:
    """``--status completed abandoned`` and ``--status completed,abandoned`` alike."""
    if values is None:
        return None
    return [v for value in values for v in value.split(",") if v]


def _open_for_reading(url: str) -> SqlStore:
    """The store at ``url``, which must exist with this omniroute's schema (never created or migrated)."""
    from omniroute.store.sqlite import SqliteStore  # POSIX only (fcntl): imported when needed

    store = open_store(url, migrate=False)
    try:
        if isinstance(store, SqliteStore) and not os.path.exists(store.path):
            raise StoreError(f"store: no database file {store.path!r}")
        version = store.schema_version()
        if version < latest_version():
            raise StoreError(
                f"store: schema version {version} is older than this omniroute's ({latest_version()}); "
                "run `omniroute migrate` first"
            )
        if version > latest_version():
            raise StoreError(
                f"store: schema version {version} is newer than this omniroute knows "
                f"({latest_version()}); upgrade omniroute"
            )
    except BaseException:
        store.close()
        raise
    return store


@contextlib.contextmanager
def _output(path: str) -> Iterator[TextIO]:
    """Standard output for ``-``; otherwise a file that appears whole or not at all."""
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    directory = os.path.dirname(os.path.abspath(path))
    fd, partial = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".partial", dir=directory)
    try:
        with open(fd, "w", encoding="utf-8", newline="") as out:
            yield out
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise


def _export(args: argparse.Namespace) -> int:
    store = _open_for_reading(args.store)
    with store, _output(args.output) as out:
        if args.what == "interactions":
            count = export_interactions(
                store,
                out,
                format=args.format,
                status=_split(args.status),
                since=args.since,
                until=args.until,
            )
        else:
            count = export_events(store, out, format=args.format, after=args.after, types=_split(args.types))
    if args.output != "-":
        sys.stdout.write(f"{count} {args.what} written to {args.output}\n")
    return 0


# ----- omniroute run -----


def _add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = sub.add_parser(
        "run",
        help="run the live engine on a store, serving JSON lines on loopback",
        description="Recover the engine from the store and serve calls as JSON lines until SIGTERM/SIGINT.",
    )
    r.add_argument("--store", default=DEFAULT_STORE, metavar="URL", help=f"default {DEFAULT_STORE}")
    r.add_argument("--config", help="configuration file (TOML or YAML) to start an empty store with")
    r.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    r.add_argument("--port", type=int, default=7400, help="port for JSON lines (0 picks one; default 7400)")
    r.add_argument("--ready-file", help="write {port, pid} here once serving")


def _run(args: argparse.Namespace) -> int:
    anyio.run(
        functools.partial(
            service.run_service,
            args.store,
            config_path=args.config,
            host=args.host,
            port=args.port,
            ready_file=args.ready_file,
        )
    )
    return 0


# ----- omniroute migrate -----


def _add_migrate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    m = sub.add_parser(
        "migrate",
        help="bring a store's schema up to date",
        description="Apply the schema migrations a store lacks (creating an empty SQLite file if "
        "needed) and print its schema version before and after. Migrations only go forward.",
    )
    m.add_argument("--store", default=DEFAULT_STORE, metavar="URL", help=f"default {DEFAULT_STORE}")
    m.add_argument("--to", type=int, metavar="N", help="stop at schema version N (default: the latest)")


def _migrate(args: argparse.Namespace) -> int:
    if args.to is not None and not 0 <= args.to <= latest_version():
        return _error(f"to: schema version {args.to} does not exist (0..{latest_version()})")
    with open_store(args.store, migrate=False) as store:
        before = store.schema_version()
        if args.to is not None and args.to < before:
            return _error(
                f"to: the store is at schema version {before}; migrations only go forward, not to {args.to}"
            )
        after = store.migrate(args.to)
    sys.stdout.write(f"schema version: {before} -> {after} (latest: {latest_version()})\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
