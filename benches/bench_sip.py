"""SIP calls per second through the voice connector, end to end.

sipp (Debian's sip-tester) places calls over UDP against a real ``omniroute
serve`` with the SIP connector: each INVITE is answered 100 Trying, its
caller resolved, the call stored and queued, 180 Ringing sent; the caller
presses 2 (SIP INFO, the menu moves it) and hangs up (CANCEL: 200, 487,
ACK), which abandons it. sipp is asked for far more calls a second than the
connector takes, so the rate measured is the connector's: calls fully
handled (sipp saw every answer it expected) over the wall time. Baseline in
the same run: the same number of contacts created through the API's own
channel with 32 requests in flight, each one stored and routed, as a ratio.
Afterwards every call is stored exactly once, moved and abandoned.

Under ``--benchmark-disable`` the sizes shrink so the file runs as a quick test.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from omniroute.store import open_store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from procs import SIP_SCENARIOS, channels_store, free_port, serve_channels, sipp
from workload import only_the_centres_plugins  # noqa: F401 - an autouse fixture

SIZES = {"full": (6000, 1500), "test": (50, 50)}  # calls, the rate asked of sipp
IN_FLIGHT = 32

CONFIG = """
[[channels]]
name = "voice"
cost = 60
[[channels]]
name = "api"
cost = 60
[[queues]]
name = "support"
[[queues]]
name = "billing"
"""


@pytest.fixture
def mode(request: pytest.FixtureRequest) -> str:
    return "test" if request.config.getoption("benchmark_disable") else "full"


async def api_creates(base: str, token: str, count: int) -> float:
    pending = iter(range(count))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def worker(http: aiohttp.ClientSession) -> None:
        for n in pending:
            body = {
                "channel": "api",
                "queue": "support",
                "id": f"api-{n}",
                "identities": [{"kind": "phone", "value": f"+1415{3_000_000 + n:07d}"}],
            }
            async with http.post(
                f"{base}/api/v1/interactions", data=json.dumps(body), headers=headers
            ) as reply:
                assert reply.status == 201, await reply.text()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=IN_FLIGHT)) as http:
        started = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(IN_FLIGHT)))
        return time.perf_counter() - started


def test_sip_calls_per_second_through_the_voice_connector(benchmark: Any, mode: str, tmp_path: Path) -> None:
    calls, asked = SIZES[mode]
    port = free_port(socket.SOCK_DGRAM)
    connectors = (
        f'[[connector]]\nkind = "sip"\nchannel = "voice"\nqueue = "support"\n'
        f'[connector.options]\nlisten_port = {port}\nmenu = {{ "2" = "billing" }}\n'
    )
    proc, http_port, token = serve_channels(tmp_path, CONFIG, connectors, ["interactions:create"])
    callers = tmp_path / "callers.csv"
    callers.write_text("SEQUENTIAL\n" + "".join(f"{2_000_000 + n};\n" for n in range(calls)))
    figures: dict[str, float] = {}

    def run() -> None:
        started = time.perf_counter()
        caller = subprocess.run(
            [
                sipp(),
                "-sf",
                str(SIP_SCENARIOS / "cancel.xml"),
                "-inf",
                str(callers),
                "-i",
                "127.0.0.1",
                "-p",
                str(free_port(socket.SOCK_DGRAM)),
                "-t",
                "u1",
                "-r",
                str(asked),
                "-m",
                str(calls),
                "-l",
                "2000",
                "-nostdin",
                "-timeout",
                "300s",
                "-timeout_error",
                f"127.0.0.1:{port}",
            ],
            capture_output=True,
            cwd=tmp_path,
            check=False,
        )
        figures["sip_seconds"] = time.perf_counter() - started
        assert caller.returncode == 0, caller.stderr.decode()[-2000:]
        figures["api_seconds"] = asyncio.run(api_creates(f"http://127.0.0.1:{http_port}", token, calls))

    try:
        benchmark.pedantic(run, rounds=1, iterations=1)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0, (tmp_path / "log").read_text()[-3000:]

    with open_store(channels_store(tmp_path)) as store, store.read() as r:
        voice = [i for i in r.interactions() if i.channel == "voice"]
    assert len(voice) == calls
    assert {i.status for i in voice} == {"abandoned"}
    assert {i.queue for i in voice} == {"billing"}
    assert len({i.customer_id for i in voice}) == calls

    # Calls over the whole wall time, sipp's start and the last call's pause
    # (100 - 300 ms) included: slightly below the connector's own rate, never above.
    sip_rate = calls / figures["sip_seconds"]
    api_rate = calls / figures["api_seconds"]
    benchmark.extra_info.update({"sip_calls_per_s": sip_rate, "api_creates_per_s": api_rate})
    print(
        f"\nsip: {calls:,} calls (INVITE, INFO, CANCEL, ACK) over UDP: {sip_rate:,.0f} calls/s "
        f"(sipp asked for {asked}/s); the API's own channel {api_rate:,.0f} creates/s; "
        f"ratio {sip_rate / api_rate:.2f}; every call stored once, moved and abandoned"
    )
