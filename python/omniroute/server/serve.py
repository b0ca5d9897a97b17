"""``omniroute serve``: the API and the pages in one process, under uvicorn."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path
from types import FrameType

import uvicorn
import uvloop

from omniroute.channels import ChannelConnector, build_connectors, load_setups
from omniroute.config import load_config
from omniroute.plugins import Plugins
from omniroute.runtime.api import RuntimeSettings
from omniroute.runtime.runtime import Runtime
from omniroute.runtime.service import tune_gc
from omniroute.server.app import create_app
from omniroute.store import open_store

__all__ = ["serve"]


class _Server(uvicorn.Server):
    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """SIGTERM or SIGINT asks for a clean stop, which ends with exit status
        0 (uvicorn would raise the signal again once stopped); a second SIGINT
        stops at once."""
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True


def serve(
    store_url: str,
    *,
    config_path: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8400,
    ready_file: str | None = None,
    settings: RuntimeSettings | None = None,
    session_seconds: float = 8 * 3600.0,
    demo: bool = False,
    connectors_path: str | None = None,
) -> None:
    """Recover the engine from the store and serve HTTP until SIGTERM or
    SIGINT; then stop cleanly (calls in flight stored, a snapshot taken)."""
    config = load_config(config_path) if config_path is not None else None
    background = None
    if demo:
        from omniroute.server.demo import DEMO_PASSWORD, DEMO_USERS, Demo, demo_config, demo_users

        config = config or demo_config()
        with open_store(store_url) as store:
            demo_users(store)

        async def background(runtime: Runtime) -> None:
            await Demo(runtime).run()

        logins = ", ".join(f"{name} ({role})" for name, role, _ in DEMO_USERS)
        sys.stderr.write(f"omniroute: demo: log in as {logins}; password {DEMO_PASSWORD!r}\n")

    plugins = Plugins()
    connectors: list[ChannelConnector] = []
    if connectors_path is not None:
        # Checked before anything starts: a wrong kind, channel or option is named now.
        kinds = plugins.channel_kinds()
        known = config
        if known is None:
            with open_store(store_url) as store, store.read() as r:
                known = r.config()
        connectors = build_connectors(load_setups(connectors_path), kinds, known)

    def recovered(runtime: Runtime) -> None:
        sys.stderr.write(
            f"omniroute: recovered {runtime.engine.task_count} tasks "
            f"({runtime.recovered_batches} batches replayed) in {runtime.recovery_seconds:.3f} s\n"
        )
        tune_gc()

    app = create_app(
        store_url,
        config=config,
        settings=settings,
        session_seconds=session_seconds,
        on_ready=recovered,
        background=background,
        connectors=connectors,
        plugins=plugins,
    )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    server = _Server(
        uvicorn.Config(
            app,
            lifespan="on",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=10,
            # httptools' C parser rather than h11's pure Python one.
            http="httptools",
            # The stream's messages are small JSON: compressing each costs more than it saves.
            ws_per_message_deflate=False,
            # Loopback or behind a proxy that sets them itself: no per-request header work.
            proxy_headers=False,
            server_header=False,
        )
    )

    async def main() -> None:
        async def announce() -> None:
            while not server.started:
                if server.should_exit:
                    return
                await asyncio.sleep(0.01)
            sys.stderr.write(
                f"omniroute: serving http://{host}:{bound} (API at /api/v1, OpenAPI at /schema)\n"
            )
            if ready_file is not None:
                # Written whole, then renamed: a reader never sees half of it.
                tmp = Path(ready_file + ".tmp")
                tmp.write_text(json.dumps({"port": bound, "pid": os.getpid()}))
                tmp.replace(ready_file)

        watcher = asyncio.create_task(announce())
        try:
            await server.serve(sockets=[sock])
        finally:
            watcher.cancel()

    # uvloop: the event loop in C (libuv), for the sockets' and requests' I/O.
    uvloop.run(main())
    if server.started:
        sys.stderr.write("omniroute: stopped cleanly\n")
    else:
        raise SystemExit(1)
