"""Starting a real ``omniroute`` server process for a test and waiting until it serves."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["SIP_SCENARIOS", "channels_store", "free_port", "serve_channels", "sipp", "start_omniroute"]

# sipp scenarios (callers) for the SIP connector.
SIP_SCENARIOS = Path(__file__).parent / "sip"


def start_omniroute(args: list[str], ready: Path, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``python -m omniroute ARGS --port 0 --ready-file READY``, its output
    appended to LOG; returns the process and its port once it serves."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "omniroute", *args, "--port", "0", "--ready-file", str(ready)],
            stdout=out,
            stderr=out,
        )
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}: {log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"server not ready within 60 s: {log.read_text()[-3000:]}")
        time.sleep(0.02)
    return proc, int(json.loads(ready.read_text())["port"])


def channels_store(workdir: Path) -> str:
    """The store ``serve_channels`` serves from (to read it afterwards)."""
    return f"sqlite:///{workdir}/channels.db"


def serve_channels(
    workdir: Path, config: str, connectors: str, scopes: list[str]
) -> tuple[subprocess.Popen[bytes], int, str]:
    """``omniroute serve`` on a fresh SQLite store in ``workdir`` with this
    configuration and these connectors, and an API token with ``scopes``:
    the process, its HTTP port and the token."""
    from omniroute.server.access import Access, NewToken
    from omniroute.store import open_store

    store_url = channels_store(workdir)
    (workdir / "centre.toml").write_text(config)
    (workdir / "connectors.toml").write_text(connectors)
    with open_store(store_url) as store:
        token = Access(store).add_token(NewToken(name="test", scopes=scopes))[0]  # type: ignore[arg-type]
    proc, port = start_omniroute(
        [
            "serve",
            "--store",
            store_url,
            "--config",
            str(workdir / "centre.toml"),
            "--connectors",
            str(workdir / "connectors.toml"),
        ],
        workdir / "ready.json",
        workdir / "log",
    )
    return proc, port, token


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 free for TCP and UDP alike (a SIP connector binds both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as first:
            first.bind(("127.0.0.1", 0))
            port: int = first.getsockname()[1]
            other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
            with socket.socket(socket.AF_INET, other) as second:
                try:
                    second.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise AssertionError("no free port on 127.0.0.1")


def sipp() -> str:
    """Debian's sipp (sip-tester), which the test command installs."""
    path = shutil.which("sipp")
    if path is None:
        raise AssertionError("no sipp: `bash scripts/sipp.sh install` (make test does)")
    return path
