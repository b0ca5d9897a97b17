"""``omniroute serve`` under load: 1,000 agents connected over WebSocket while
200 new interactions a second arrive over HTTP for 60 s.

A real server process (SQLite) and, in this process, a thousand agents: each
has its own session and socket, accepts the offers its socket brings with a
command on that socket, handles the contact for a second and completes it
the same way (the desktop's HTTP routes do the same; the socket saves a
request per action). A channel creates
the interactions at a steady 200 a second with ids of its own, so the
latency from the create request leaving to the offer arriving on the agent's
socket can be measured for every one. Afterwards the store must hold every
acknowledged interaction exactly once, completed: nothing lost.

Target: p99 create-to-offer ≤ 50 ms. Reported beside the p99 of a bare HTTP
round trip (``GET /api/v1/health``) sampled in the same run, as a ratio.

Under ``--benchmark-disable`` the sizes shrink so the file runs as a quick test.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import ClientConnection, connect

from omniroute.server.access import Access, NewToken, token_hash
from omniroute.store import Session, User, open_store
from workload import only_the_centres_plugins, percentile  # noqa: F401 - an autouse fixture

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from procs import start_omniroute

SIZES = {"full": (1000, 200.0, 60.0), "test": (40, 40.0, 3.0)}
HANDLE_SECONDS = 1.0
TARGET_P99_MS = 50.0


@pytest.fixture
def mode(request: pytest.FixtureRequest) -> str:
    return "test" if request.config.getoption("benchmark_disable") else "full"


def centre(agents: int) -> str:
    lines = ['[[channels]]\nname = "chat"\ncost = 20\n', '[[queues]]\nname = "support"\noffer_timeout = 30\n']
    lines += [f'[[agents]]\nid = "a{i:04d}"\nqueues = {{ support = 0 }}\n' for i in range(agents)]
    return "\n".join(lines)


def prepare(workdir: Path, agents: int) -> tuple[str, list[str], str]:
    """The store with the configuration's users: each agent gets a session
    written straight to the store (a thousand argon2 logins would measure
    argon2), and the channel an API token."""
    store_url = f"sqlite:///{workdir}/bench.db"
    (workdir / "centre.toml").write_text(centre(agents))
    tokens = [secrets.token_urlsafe(32) for _ in range(agents)]
    now = time.time()
    with open_store(store_url) as store:
        channel, _ = Access(store).add_token(
            NewToken(name="channel", scopes=["interactions:create", "reports:read"])
        )
        with store.write() as w:
            for i, token in enumerate(tokens):
                agent = f"a{i:04d}"
                w.add_user(User(name=agent, role="agent", agent=agent, created_at=now), "unused")
                w.add_session(token_hash(token), Session(user=agent, created_at=now, expires_at=now + 86400))
    return store_url, tokens, channel


class Load:
    def __init__(self, base: str, tokens: list[str], channel: str, rate: float, seconds: float) -> None:
        self.base = base
        self.tokens = tokens
        self.channel = channel
        self.rate = rate
        self.seconds = seconds
        self.sent: dict[str, float] = {}
        self.acknowledged: set[str] = set()
        self.latency: list[float] = []
        self.health: list[float] = []
        self.offered: set[str] = set()
        self.completed: set[str] = set()
        self.failures: list[str] = []
        self.lost = 0
        self.working: set[asyncio.Task[None]] = set()
        self.commands: dict[int, tuple[str, str]] = {}
        self.next_command = 0

    async def run(self) -> None:
        # aiohttp, not httpx: httpcore's pool goes quadratic with hundreds of requests in flight.
        connector = aiohttp.TCPConnector(limit=200)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(
            self.base + "/api/v1/", connector=connector, timeout=timeout
        ) as http:
            self.http = http
            sockets = await asyncio.gather(*(self._connect(token) for token in self.tokens))
            readers = [
                asyncio.create_task(self._agent(sock, token))
                for sock, token in zip(sockets, self.tokens, strict=True)
            ]
            await asyncio.sleep(0.5)
            creators: list[asyncio.Task[None]] = []
            started = time.perf_counter()
            total = int(self.rate * self.seconds)
            probe = asyncio.create_task(self._probe(started + self.seconds))
            for n in range(total):
                delay = started + n / self.rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                creators.append(asyncio.create_task(self._create(f"bench-{n:06d}")))
            await asyncio.gather(*creators, probe)
            # Let the last ones be answered and completed.
            deadline = time.perf_counter() + 60
            while len(self.completed) < len(self.acknowledged) and time.perf_counter() < deadline:
                await asyncio.sleep(0.2)
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            await asyncio.gather(*(sock.close() for sock in sockets))

    async def _connect(self, token: str) -> ClientConnection:
        url = self.base.replace("http://", "ws://") + "/api/v1/stream"
        return await connect(url, additional_headers={"Authorization": f"Bearer {token}"}, max_queue=None)

    async def _create(self, iid: str) -> None:
        body = {
            "id": iid,
            "channel": "chat",
            "queue": "support",
            "identities": [{"kind": "email", "value": f"c{iid[-4:]}@example.com"}],
            "message": {"body": "Hello"},
        }
        self.sent[iid] = time.perf_counter()
        headers = {"Authorization": f"Bearer {self.channel}"}
        async with self.http.post("interactions", json=body, headers=headers) as reply:
            if reply.status == 201:
                self.acknowledged.add(iid)
            else:
                self.failures.append(f"create {iid}: {reply.status} {(await reply.text())[:200]}")

    async def _probe(self, until: float) -> None:
        while time.perf_counter() < until:
            started = time.perf_counter()
            async with self.http.get("health") as reply:
                await reply.read()
                self.health.append(time.perf_counter() - started)
                assert reply.status == 200
            await asyncio.sleep(0.1)

    async def _agent(self, sock: ClientConnection, token: str) -> None:
        async for raw in sock:
            message = json.loads(raw)
            if "lost" in message:
                self.lost += message["lost"]
                continue
            if "reply" in message:
                kind, task = self.commands.pop(message["reply"])
                if not message["ok"]:
                    self.failures.append(f"{kind} {task}: {message['error']}")
                elif kind == "complete":
                    self.completed.add(task)
                continue
            event = message.get("event")
            if event is None or event["type"] != "omniroute.offer_made":
                continue
            task = event["data"]["task"]
            sent = self.sent.get(task)
            if sent is not None and task not in self.offered:
                self.latency.append(time.perf_counter() - sent)
                self.offered.add(task)
            work = asyncio.create_task(self._work(sock, event["data"]["offer"], task))
            self.working.add(work)
            work.add_done_callback(self.working.discard)

    async def _work(self, sock: ClientConnection, offer: int, task: str) -> None:
        """Accept, handle, complete: as commands on the agent's own socket."""
        await self._send(sock, "accept", task, {"offer": offer})
        await asyncio.sleep(HANDLE_SECONDS)
        await self._send(sock, "complete", task, {"task": task, "disposition": "done"})

    async def _send(self, sock: ClientConnection, op: str, task: str, fields: dict[str, Any]) -> None:
        self.next_command += 1
        self.commands[self.next_command] = (op, task)
        await sock.send(json.dumps({"id": self.next_command, "op": op, **fields}))


def test_thousand_agents_on_websocket_while_interactions_arrive_over_http(
    benchmark: Any, mode: str, tmp_path: Path
) -> None:
    agents, rate, seconds = SIZES[mode]
    store_url, tokens, channel = prepare(tmp_path, agents)
    proc, port = start_omniroute(
        ["serve", "--store", store_url, "--config", str(tmp_path / "centre.toml")],
        tmp_path / "ready.json",
        tmp_path / "log",
    )
    load = Load(f"http://127.0.0.1:{port}", tokens, channel, rate, seconds)
    try:
        benchmark.pedantic(lambda: asyncio.run(load.run()), rounds=1, iterations=1)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0, (tmp_path / "log").read_text()[-3000:]

    assert load.failures == [], load.failures[:5]
    total = int(rate * seconds)
    # Nothing lost: every request acknowledged, offered, completed, and stored once, completed.
    assert len(load.acknowledged) == total
    assert load.offered == load.acknowledged
    assert load.completed == load.acknowledged
    assert load.lost == 0
    with open_store(store_url) as store, store.read() as r:
        stored = {i.id: i.status for i in r.interactions()}
    assert {iid: stored.get(iid) for iid in load.acknowledged} == dict.fromkeys(
        load.acknowledged, "completed"
    )
    assert len(stored) == total

    p99 = percentile(load.latency, 99) * 1000
    p50 = statistics.median(load.latency) * 1000
    # The first probe also opened its connection.
    health_p99 = percentile(load.health[1:], 99) * 1000
    benchmark.extra_info.update(
        {
            "agents": agents,
            "rate": rate,
            "seconds": seconds,
            "p50_ms": p50,
            "p99_ms": p99,
            "health_p99_ms": health_p99,
            "ratio": p99 / health_p99,
        }
    )
    print(
        f"\nserve: {agents} agents on WebSocket, {rate:.0f} interactions/s over HTTP for {seconds:.0f} s: "
        f"create-to-offer p50 {p50:.1f} ms, p99 {p99:.1f} ms (target {TARGET_P99_MS:.0f} ms); "
        f"HTTP round trip p99 {health_p99:.1f} ms; ratio {p99 / health_p99:.1f}x; "
        f"{len(load.completed):,} completed, none lost"
    )
