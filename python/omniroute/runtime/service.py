"""``omniroute run``: the live engine as a process, on a store, serving JSON lines on loopback."""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar, TypeVarTuple, Unpack

import anyio

from omniroute.config import load_config
from omniroute.runtime.api import RuntimeSettings
from omniroute.runtime.lines import serve_lines
from omniroute.runtime.runtime import Runtime
from omniroute.store import open_store

__all__ = ["run_on_service_loop", "run_service", "tune_gc"]

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")


def run_on_service_loop(func: Callable[[Unpack[_Ts]], Awaitable[_T]], *args: *_Ts) -> _T:
    """Run ``func`` as ``omniroute run`` (like ``omniroute serve``) runs its
    event loop: asyncio on uvloop, whose loop, handles and sockets are
    written in C. Every call a client makes is a task waking up on that
    loop, so the loop's own Python was a sizeable part of intake's time
    (``docs/performance.md``)."""
    return anyio.run(func, *args, backend="asyncio", backend_options={"use_uvloop": True})


def tune_gc() -> None:
    """Set the cycle collector up for a long-running service, once it has started.

    CPython's defaults collect the youngest objects every 700 allocations and
    everything, the ~50,000 objects of the loaded modules included, every
    hundred of those; under steady intake that was 12 % of the process's time
    (``docs/performance.md``). The runtime frees its objects by reference
    counting (no batch leaves a reference cycle behind), so the collector has
    little to find: what exists at start is moved out of its sight
    (``gc.freeze``), and it runs 14 times less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


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
        tune_gc()
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
