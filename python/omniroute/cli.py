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
from typing import TYPE_CHECKING, TextIO

from omniroute import demo
from omniroute.errors import OmnirouteError
from omniroute.export import EVENT_TYPES, FORMATS, STATUSES, export_events, export_interactions
from omniroute.runtime import service
from omniroute.store import SqlStore, StoreError, open_store
from omniroute.store.migrations import latest_version

if TYPE_CHECKING:
    from omniroute.wfm import Forecast, History

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
    _add_serve(sub)
    _add_plugins(sub)
    _add_users(sub)
    _add_tokens(sub)
    _add_export(sub)
    _add_migrate(sub)
    _add_simulate(sub)
    _add_forecast(sub)
    _add_staffing(sub)
    args = parser.parse_args(argv)
    if args.command == "run":
        return _failing(_run, args)
    if args.command == "serve":
        return _failing(_serve, args)
    if args.command == "plugins":
        return _failing(_plugins, args)
    if args.command == "users":
        return _failing(_users, args)
    if args.command == "tokens":
        return _failing(_tokens, args)
    if args.command == "demo":
        if args.hours <= 0 or args.agents <= 0:
            parser.error("--hours and --agents must be positive")
        report = demo.run(hours=args.hours, agents=args.agents, seed=args.seed)
        sys.stdout.write(demo.describe(report, args.hours) + "\n")
    if args.command == "export":
        return _failing(_export, args)
    if args.command == "migrate":
        return _failing(_migrate, args)
    if args.command == "simulate":
        return _failing(_simulate, args)
    if args.command == "forecast":
        return _failing(_forecast, args)
    if args.command == "staffing":
        return _failing(_staffing, args)
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
        _add_store(p)
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


def _add_store(parser: argparse.ArgumentParser) -> None:
    """The ``--store URL`` option of every command that works on one store."""
    parser.add_argument("--store", default=DEFAULT_STORE, metavar="URL", help=f"default {DEFAULT_STORE}")


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
    _add_store(r)
    r.add_argument("--config", help="configuration file (TOML or YAML) to start an empty store with")
    r.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    r.add_argument("--port", type=int, default=7400, help="port for JSON lines (0 picks one; default 7400)")
    r.add_argument("--ready-file", help="write {port, pid} here once serving")


def _run(args: argparse.Namespace) -> int:
    service.run_on_service_loop(
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


# ----- omniroute serve, users, tokens -----


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = sub.add_parser(
        "serve",
        help="run the live engine with the HTTP API on a store",
        description="Recover the engine from the store and serve the API (/api/v1, OpenAPI at /schema) "
        "until SIGTERM/SIGINT. Add people with `omniroute users add` first.",
    )
    _add_store(r)
    r.add_argument("--config", help="configuration file (TOML or YAML) to start an empty store with")
    r.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    r.add_argument("--port", type=int, default=8400, help="HTTP port (0 picks one; default 8400)")
    r.add_argument("--ready-file", help="write {port, pid} here once serving")
    r.add_argument(
        "--session-hours", type=float, default=8.0, help="a login lasts this long (default 8 hours)"
    )
    r.add_argument("--settings", help="the runtime's settings (TOML or YAML; docs/configuration.md)")
    r.add_argument(
        "--demo",
        action="store_true",
        help="a demo centre that runs by itself: simulated customers and agents, logins for people",
    )
    r.add_argument(
        "--connectors",
        help="channel connectors to run (TOML, [[connector]] tables; docs/plugins.md)",
    )


def _serve(args: argparse.Namespace) -> int:
    if args.session_hours <= 0:
        return _error(f"--session-hours: must be positive, not {args.session_hours}")
    from omniroute.config import load_settings
    from omniroute.server.serve import serve

    serve(
        args.store,
        config_path=args.config,
        settings=None if args.settings is None else load_settings(args.settings),
        demo=args.demo,
        host=args.host,
        port=args.port,
        ready_file=args.ready_file,
        session_seconds=args.session_hours * 3600,
        connectors_path=args.connectors,
    )
    return 0


def _add_plugins(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "plugins",
        help="the plugins omniroute loads: built-in and installed, with versions and hooks",
        description="Lists every active plugin (OMNIROUTE_LOAD_PLUGINS and OMNIROUTE_DISABLE_PLUGINS "
        "choose which), then the channel kinds and dialer modes they register.",
    )
    p.add_argument("--json", action="store_true", help="one JSON document instead of a table")


def _plugins(args: argparse.Namespace) -> int:
    import json

    from omniroute.plugins import Plugins

    plugins = Plugins()
    infos = plugins.describe()
    kinds = plugins.channel_kinds()
    modes = plugins.dialer_modes()
    if args.json:
        document = {
            "plugins": [
                {
                    "name": i.name,
                    "distribution": i.distribution,
                    "version": i.version,
                    "built_in": i.built_in,
                    "hooks": list(i.hooks),
                }
                for i in infos
            ],
            "channel_kinds": {name: kind.description for name, kind in sorted(kinds.items())},
            "dialer_modes": {name: mode.description for name, mode in sorted(modes.items())},
        }
        print(json.dumps(document, indent=2))
        return 0
    for i in infos:
        origin = "built-in" if i.built_in else f"{i.distribution or '?'} {i.version or ''}".strip()
        print(f"{i.name:<24} {origin:<32} {', '.join(i.hooks)}")
    print()
    for name, kind in sorted(kinds.items()):
        print(f"channel kind {name}: {kind.description}")
    for name, mode in sorted(modes.items()):
        print(f"dialer mode {name}: {mode.description}")
    return 0


def _add_users(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    u = sub.add_parser("users", help="people who log in to the server: add, list, disable, set a password")
    what = u.add_subparsers(dest="action", required=True)
    add = what.add_parser("add", help="add a user; the password comes from standard input or a prompt")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["agent", "supervisor", "administrator"])
    add.add_argument("--agent", help="the agent an agent-role user works as")
    listing = what.add_parser("list", help="every user with role and agent")
    disable = what.add_parser("disable", help="the user can no longer log in; sessions end")
    disable.add_argument("name")
    password = what.add_parser("password", help="set a user's password (ends its sessions)")
    password.add_argument("name")
    for p in (add, listing, disable, password):
        _add_store(p)


def _password() -> str:
    """From standard input when it is not a terminal (first line), else asked twice."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise OmnirouteError("password: the two entries differ")
    return first


def _users(args: argparse.Namespace) -> int:
    import msgspec

    from omniroute.errors import from_validation
    from omniroute.server.access import Access, NewUser

    with open_store(args.store) as store:
        access = Access(store)
        if args.action == "add":
            try:
                new = msgspec.convert(
                    {"name": args.name, "role": args.role, "agent": args.agent, "password": _password()},
                    NewUser,
                )
            except msgspec.ValidationError as e:
                raise from_validation(e) from e
            user = access.add_user(new)
            sys.stdout.write(
                f"added {user.role} {user.name}" + (f" (agent {user.agent})" if user.agent else "") + "\n"
            )
        elif args.action == "list":
            for user in access.users():
                state = "disabled" if user.disabled_at is not None else "active"
                sys.stdout.write(f"{user.name}\t{user.role}\t{user.agent or '-'}\t{state}\n")
        elif args.action == "disable":
            access.disable_user(args.name)
            sys.stdout.write(f"disabled {args.name}\n")
        else:
            access.set_password(args.name, _password())
            sys.stdout.write(f"password set for {args.name}; its sessions ended\n")
    return 0


def _add_tokens(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    t = sub.add_parser("tokens", help="API tokens for other systems: add, list, revoke")
    what = t.add_subparsers(dest="action", required=True)
    add = what.add_parser("add", help="issue a token; its secret is printed once")
    add.add_argument("name")
    add.add_argument("--scope", action="append", required=True, help="a scope it may use (repeat)")
    add.add_argument("--expires-hours", type=float, help="it stops working after this long")
    listing = what.add_parser("list", help="every token with its scopes")
    revoke = what.add_parser("revoke", help="the token stops working")
    revoke.add_argument("id")
    for p in (add, listing, revoke):
        _add_store(p)


def _tokens(args: argparse.Namespace) -> int:
    from omniroute.server.access import Access, NewToken, scopes_of

    with open_store(args.store) as store:
        access = Access(store)
        if args.action == "add":
            if args.expires_hours is not None and args.expires_hours <= 0:
                return _error(f"--expires-hours: must be positive, not {args.expires_hours}")
            new = NewToken(
                name=args.name,
                scopes=scopes_of(args.scope),  # type: ignore[arg-type]
                expires_in_seconds=None if args.expires_hours is None else args.expires_hours * 3600,
            )
            secret, token = access.add_token(new)
            sys.stderr.write(f"token {token.id} ({' '.join(token.scopes)}); the secret is shown once:\n")
            sys.stdout.write(secret + "\n")
        elif args.action == "list":
            for token in access.tokens():
                state = "revoked" if token.revoked_at is not None else "active"
                sys.stdout.write(f"{token.id}\t{token.name}\t{' '.join(token.scopes)}\t{state}\n")
        else:
            access.revoke_token(args.id)
            sys.stdout.write(f"revoked {args.id}\n")
    return 0


# ----- omniroute migrate -----


def _add_migrate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    m = sub.add_parser(
        "migrate",
        help="bring a store's schema up to date",
        description="Apply the schema migrations a store lacks (creating an empty SQLite file if "
        "needed) and print its schema version before and after. Migrations only go forward.",
    )
    _add_store(m)
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


# ----- omniroute simulate -----


def _add_simulate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "simulate",
        help="run a scenario through the real routing engine in virtual time",
        description="Run a scenario (TOML or YAML, see docs/simulation.md) through the real routing "
        "engine and metrics in virtual time, and report the figures with 95%% confidence intervals.",
    )
    p.add_argument("scenario", help="the scenario file (.toml, .yaml or .yml)")
    p.add_argument("--replications", type=int, metavar="N", help="override the scenario's replications")
    p.add_argument("--seed", type=int, help="override the scenario's seed")
    p.add_argument("--csv", metavar="FILE", help="write every figure, overall and per interval, as CSV")
    p.add_argument("--chart", metavar="FILE", help="chart of service level and queue length (.png or .svg)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on standard error")


def _simulate(args: argparse.Namespace) -> int:
    import msgspec
    from tqdm import tqdm

    from omniroute import sim

    scenario = sim.load_scenario(args.scenario)
    changes: dict[str, int] = {}
    if args.replications is not None:
        changes["replications"] = args.replications
    if args.seed is not None:
        changes["seed"] = args.seed
    if changes:
        scenario = sim.parse_scenario({**msgspec.to_builtins(scenario), **changes})
    total = scenario.replications * (scenario.duration_seconds + scenario.drain_seconds)
    with tqdm(
        total=round(total),
        unit="s",
        unit_scale=True,
        desc="simulated",
        disable=args.no_progress or None,
        file=sys.stderr,
    ) as bar:

        def advanced(seconds: float) -> None:
            bar.update(round(seconds))

        summary = sim.simulate(scenario, progress=advanced)
    sys.stdout.write(sim.describe(summary) + "\n")
    if args.csv:
        with open(args.csv, "w", encoding="utf-8", newline="") as f:
            sim.write_csv(summary, f)
    if args.chart:
        sim.write_chart(summary, args.chart, title=f"{args.scenario}: {scenario.replications} replications")
    return 0


# ----- omniroute forecast and omniroute staffing -----


def _add_history_source(p: argparse.ArgumentParser, *, forecast_file: bool) -> None:
    source = p.add_mutually_exclusive_group(required=True)
    if forecast_file:
        source.add_argument(
            "--forecast", metavar="FILE", help="a forecast CSV: interval_start,volume,aht_seconds"
        )
    source.add_argument(
        "--history",
        metavar="FILE",
        help="history CSV: interval_start,volume,aht_seconds[,queue,channel] (forecast from it)",
    )
    source.add_argument("--store", metavar="URL", help="forecast from the interactions in this store")
    p.add_argument(
        "--interval-minutes",
        type=int,
        default=None,
        metavar="N",
        help="15, 30 or 60 (default 15" + ("; a forecast file's own spacing)" if forecast_file else ")"),
    )
    p.add_argument("--days", type=int, default=1, metavar="N", help="days to forecast (default 1)")
    p.add_argument(
        "--start",
        metavar="DATE",
        help="first day (or time) to forecast, ISO 8601, in the history's offset unless it gives one "
        "(default: right after the history)",
    )
    p.add_argument("--queue", help="only this queue's history")
    p.add_argument("--channel", help="only this channel's history")


def _load_history(args: argparse.Namespace) -> History:
    from omniroute.wfm.history import history_from_store, read_history_csv

    minutes = 15 if args.interval_minutes is None else args.interval_minutes
    if args.history is not None:
        return read_history_csv(
            args.history, interval_minutes=minutes, queue=args.queue, channel=args.channel
        )
    store = _open_for_reading(args.store)
    with store:
        return history_from_store(store, interval_minutes=minutes, queue=args.queue, channel=args.channel)


def _forecast_of(args: argparse.Namespace, history: History) -> Forecast:
    # statsmodels and matplotlib load only for the commands that need them.
    from omniroute.wfm.forecast import day_start, forecast

    start = None if args.start is None else day_start(args.start, history.utc_offset_seconds)
    return forecast(history, days=args.days, start=start)


def _add_forecast(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    f = sub.add_parser(
        "forecast",
        help="forecast volume and AHT per interval from history (Holt-Winters)",
        description="Forecast contacts and average handling time per interval from a history CSV or "
        "a store, and print the error of the method on held-out days next to the seasonal-naive "
        "forecast.",
    )
    _add_history_source(f, forecast_file=False)
    f.add_argument(
        "--holdout-days",
        type=int,
        metavar="N",
        help="days held out to measure the error (default 7 with 3 weeks of history, else 1; 0: none)",
    )
    f.add_argument(
        "--output", "-o", required=True, metavar="FILE", help="forecast CSV to write (- for stdout)"
    )


def _forecast(args: argparse.Namespace) -> int:
    from omniroute.wfm.forecast import describe_report, evaluate, write_forecast_csv

    history = _load_history(args)
    result = _forecast_of(args, history)
    report = evaluate(history, holdout_days=args.holdout_days)
    with _output(args.output) as out:
        count = write_forecast_csv(result, out)
    status = sys.stderr if args.output == "-" else sys.stdout
    status.write(describe_report(report))
    if args.output != "-":
        sys.stdout.write(f"{count} intervals written to {args.output}\n")
    return 0


def _add_staffing(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser(
        "staffing",
        help="agents per interval for a day's forecast (Erlang C, or Erlang A with --patience)",
        description="The agents every interval of a forecast needs to meet a service level, printed "
        "as a table; optionally written as CSV and charted (PNG or SVG).",
    )
    _add_history_source(s, forecast_file=True)
    s.add_argument(
        "--service-level", type=float, required=True, metavar="P", help="share answered in time (0.8)"
    )
    s.add_argument("--threshold", type=float, required=True, metavar="S", help="seconds 'in time' is (20)")
    s.add_argument("--max-occupancy", type=float, default=1.0, metavar="P", help="default 1.0")
    s.add_argument(
        "--shrinkage",
        type=float,
        default=0.0,
        metavar="P",
        help="share of paid time off the phones (default 0)",
    )
    s.add_argument(
        "--patience", type=float, metavar="S", help="mean seconds callers wait before abandoning (Erlang A)"
    )
    s.add_argument(
        "--max-abandonment", type=float, metavar="P", help="at most this share abandon (with --patience)"
    )
    s.add_argument(
        "--max-asa", type=float, metavar="S", help="average speed of answer at most S seconds (Erlang C)"
    )
    s.add_argument("--csv", metavar="FILE", help="also write the plan as CSV")
    s.add_argument("--chart", metavar="FILE", help="also chart the plan (.png or .svg)")


def _staffing(args: argparse.Namespace) -> int:
    from omniroute.charts import chart_format
    from omniroute.wfm.staffing import (
        StaffingTargets,
        check_targets,
        describe_plan,
        plan_staffing,
        read_forecast_csv,
        write_chart,
        write_plan_csv,
    )

    targets = StaffingTargets(
        service_level=args.service_level,
        threshold_seconds=args.threshold,
        max_occupancy=args.max_occupancy,
        shrinkage=args.shrinkage,
        patience_seconds=args.patience,
        max_abandonment=args.max_abandonment,
        max_asa=args.max_asa,
    )
    check_targets(targets)
    if args.chart is not None:
        chart_format(args.chart)  # a bad suffix before any work
    if args.forecast is not None:
        if args.start is not None or args.queue is not None or args.channel is not None:
            return _error("forecast: --start, --queue and --channel choose what to forecast from history")
        plan_input = read_forecast_csv(args.forecast, interval_minutes=args.interval_minutes)
    else:
        plan_input = _forecast_of(args, _load_history(args))
    plan = plan_staffing(plan_input, targets)
    if args.csv is not None:
        with _output(args.csv) as out:
            write_plan_csv(plan, out)
    if args.chart is not None:
        write_chart(plan, args.chart)
    sys.stdout.write(describe_plan(plan))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
