"""``omniroute run``: the live engine as a process, on a store, serving JSON lines on loopback."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

import anyio

from omniroute.config import load_config
from omniroute.runtime.api import RuntimeSettings
from omniroute.runtime.lines import serve_lines
from omniroute.runtime.runtime import Runtime
from omniroute.store import open_store

__all__ = ["run_service"]


async def run_service(
    store_url: str,
    *,
    config_path: str | None = None,
    host: str = "127.0.0.1",
    port: int = 7400,
    ready_file: str | None = None,
    settings: RuntimeSettings | None = None,
) -> None:
    """Recover the engine from the store, serve until SIGTERM or SIGINT, then
    shut down cleanly: calls in flight are stored, a snapshot is taken."""
    config = load_config(config_path) if config_path is not None else None
    store = open_store(store_url)
    async with Runtime.open(store, config, settings=settings) as runtime:
        sys.stderr.write(
            f"omniroute: recovered {runtime.engine.task_count} tasks "
            f"({runtime.recovered_batches} batches replayed) in {runtime.recovery_seconds:.3f} s\n"
        )
        async with anyio.create_task_group() as tg:
            bound = await tg.start(serve_lines, runtime, host, port)
            sys.stderr.write(f"omniroute: serving JSON lines on {host}:{bound}\n")
            if ready_file is not None:
                # Written whole, then renamed: a reader never sees half of it.
                tmp = Path(ready_file + ".tmp")
                tmp.write_text(json.dumps({"port": bound, "pid": os.getpid()}))
                tmp.replace(ready_file)
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    break
            tg.cancel_scope.cancel()
    sys.stderr.write("omniroute: stopped cleanly\n")


def main(argv: list[str] | None = None) -> int:
    """``omniroute run`` (also ``python -m omniroute.runtime.service``)."""
    parser = argparse.ArgumentParser(prog="omniroute run", description=run_service.__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_from_args(args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", default="sqlite:///omniroute.db", help="sqlite:///file.db or postgresql://..."
    )
    parser.add_argument("--config", help="configuration file (TOML or YAML) to start an empty store with")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=7400, help="port for JSON lines (0 picks one; default 7400)"
    )
    parser.add_argument("--ready-file", help="write {port, pid} here once serving")


def run_from_args(args: argparse.Namespace) -> int:
    from omniroute.errors import OmnirouteError

    try:
        anyio.run(
            lambda: run_service(
                args.store,
                config_path=args.config,
                host=args.host,
                port=args.port,
                ready_file=args.ready_file,
            )
        )
    except OmnirouteError as e:
        sys.stderr.write(f"omniroute: error: {e}\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
