"""Nothing lost: a server under steady load is killed with SIGKILL again and again, and restarted.

Every interaction it acknowledged must exist exactly once afterwards, be
waiting, offered, assigned or finished, and the engine rebuilt from storage
must agree with the stored records and pass its invariant checker.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import signal
import subprocess
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from omniroute.errors import UnknownIdError
from omniroute.runtime import Runtime
from omniroute.store import open_store
from procs import start_omniroute

KILLS = int(os.environ.get("OMNIROUTE_CRASH_KILLS", "20"))

CONFIG = """
[[channels]]
name = "chat"
cost = 20

[[channels]]
name = "email"
cost = 10

[[queues]]
name = "support"
offer_timeout = 1.0
wrap_up = 0.5

[[queues]]
name = "sales"
offer_timeout = 1.0
"""
CONFIG += "".join(
    f'\n[[agents]]\nid = "a{i}"\nqueues = {{ support = 0, sales = {i % 2} }}\n' for i in range(1, 7)
)


class Server:
    def __init__(self, store_url: str, workdir: Path) -> None:
        self.store_url = store_url
        self.workdir = workdir
        self.config = workdir / "config.toml"
        self.config.write_text(CONFIG)
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0

    def start(self) -> None:
        ready = self.workdir / f"ready-{self.starts}.json"
        self.starts += 1
        self.proc, self.port = start_omniroute(
            ["run", "--store", self.store_url, "--config", str(self.config)],
            ready,
            self.workdir / "server.log",
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def log_tail(self) -> str:
        return (self.workdir / "server.log").read_text()[-3000:]


class Load:
    """Creates interactions at a steady pace; acts as the agents: accepts
    offers and completes some of the work."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.sent: dict[str, dict[str, Any]] = {}
        self.acked: set[str] = set()
        self.next = 0

    def new_request(self) -> dict[str, Any]:
        n = self.next
        self.next += 1
        iid = f"i{n}"
        channel = self.rng.choice(["chat", "email"])
        request = {
            "id": iid,
            "op": "create",
            "interaction": {
                "id": iid,
                "channel": channel,
                "queue": self.rng.choice(["support", "sales"]),
                "identities": [{"kind": "email", "value": f"customer{self.rng.randrange(200)}@example.com"}],
                "message": {"body": f"message {n}"},
            },
        }
        self.sent[iid] = request
        return request

    async def run(self, port: int, seconds: float, *, resend: list[str], new: bool = True) -> None:
        """Talk to the server until it dies or ``seconds`` pass."""
        try:
            stream = await anyio.connect_tcp("127.0.0.1", port)
        except OSError:
            return
        async with stream, anyio.create_task_group() as tg:
            lock = anyio.Lock()

            async def send(message: dict[str, Any]) -> None:
                async with lock:
                    await stream.send(msgspec.json.encode(message) + b"\n")

            async def read() -> None:
                buffer = b""
                while True:
                    chunk = await stream.receive()
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        message = json.loads(line)
                        await self.on_message(message, send, tg)

            async def produce() -> None:
                await send({"id": "sub", "op": "subscribe", "types": ["offer_made", "task_assigned"]})
                for iid in resend:
                    await send(self.sent[iid])
                with anyio.move_on_after(seconds):
                    while new or not self.acked.issuperset(resend):
                        if new:
                            for _ in range(8):
                                await send(self.new_request())
                        await anyio.sleep(0.01)

            async def guarded(fn: Any) -> None:
                # The server going away (killed) ends this run of the load.
                with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                    await fn()
                tg.cancel_scope.cancel()

            tg.start_soon(guarded, read)
            await guarded(produce)

    async def on_message(self, message: dict[str, Any], send: Any, tg: Any) -> None:
        if "event" in message:
            event = message["event"]
            data = event["data"]
            if event["type"] == "omniroute.offer_made" and self.rng.random() < 0.9:
                tg.start_soon(
                    send, {"id": "accept", "op": "accept", "offer": data["offer"], "agent": data["agent"]}
                )
            elif event["type"] == "omniroute.task_assigned" and self.rng.random() < 0.6:
                tg.start_soon(
                    send,
                    {
                        "id": "complete",
                        "op": "complete",
                        "task": data["task"],
                        "disposition": "done",
                        "resolved": True,
                    },
                )
            return
        request_id = message.get("id")
        if isinstance(request_id, str) and request_id in self.sent:
            assert message["ok"], message
            self.acked.add(request_id)


def _drain(server: Server, load: Load) -> None:
    """Resend what was never acknowledged until all of it is."""
    for _ in range(5):
        missing = sorted(set(load.sent) - load.acked)
        if not missing:
            return
        anyio.run(functools.partial(load.run, server.port, 30.0, resend=missing, new=False))
    raise AssertionError(f"{len(set(load.sent) - load.acked)} creates never acknowledged")


@pytest.mark.timeout(600)
def test_sigkill_under_load_loses_nothing(store_url: str, tmp_path: Path) -> None:
    rng = random.Random(20261123)
    server = Server(store_url, tmp_path)
    load = Load(rng)
    acked_before_kill: list[int] = []
    for _ in range(KILLS):
        server.start()
        missing = sorted(set(load.sent) - load.acked)
        kill_after = rng.uniform(0.05, 0.6)
        before = len(load.acked)

        async def cycle(
            missing: list[str] = missing, kill_after: float = kill_after, before: int = before
        ) -> None:
            async with anyio.create_task_group() as tg:
                tg.start_soon(functools.partial(load.run, server.port, 30.0, resend=missing))
                # Kill once the server is taking work (it acknowledged something
                # in this run), at a random moment after that.
                with anyio.fail_after(60):
                    while len(load.acked) == before:
                        await anyio.sleep(0.005)
                await anyio.sleep(kill_after)
                server.kill()

        anyio.run(cycle)
        acked_before_kill.append(len(load.acked) - before)
    # The last run: everything sent is acknowledged (retries are idempotent),
    # then a clean stop.
    server.start()
    _drain(server, load)
    assert server.stop() == 0, server.log_tail()
    # Every kill hit a server that was taking work: each run acknowledged some.
    assert min(acked_before_kill) > 0, acked_before_kill
    assert len(load.acked) == len(load.sent)

    store = open_store(store_url)
    try:
        with store.read() as r:
            stored = r.interactions_by_id(load.acked)
            assert set(stored) == load.acked
            assert {i.status for i in stored.values()} <= {
                "waiting",
                "offered",
                "assigned",
                "completed",
                "abandoned",
            }
            # Exactly once: one creation event per interaction, never two.
            created: dict[str, int] = {}
            after = 0
            while page := r.events(after, limit=10_000):
                for event in page:
                    if event.type == "interaction_created":
                        created[event.subject] = created.get(event.subject, 0) + 1
                after = page[-1].seq
            assert set(created) == set(stored)
            assert all(count == 1 for count in created.values())
            live = {i.id for i in stored.values() if i.status in ("waiting", "offered", "assigned")}
            finished = len(stored) - len(live)
    finally:
        store.close()
    assert finished > 0, "no work was ever completed: the agents' side of the load did nothing"

    async def check_engine() -> None:
        async with Runtime.open(open_store(store_url)) as runtime:
            runtime.check_invariants()
            assert runtime.engine.task_count == len(live)
            for iid in live:
                runtime.explain(iid)  # raises if the engine does not hold it
            for iid in sorted(load.acked - live)[:50]:
                with pytest.raises(UnknownIdError):
                    runtime.explain(iid)

    anyio.run(check_engine)
