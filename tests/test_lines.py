"""The runtime over JSON lines on loopback: replies, field-named errors, events, and limits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import uvloop
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from omniroute.model import AgentConfig, ChannelConfig, EngineConfig, QueueConfig
from omniroute.runtime import ManualClock, Runtime
from omniroute.runtime.lines import MAX_LINE_BYTES, serve_lines
from omniroute.runtime.service import run_on_service_loop
from omniroute.store import open_store

CONFIG = EngineConfig(
    channels=[ChannelConfig(name="chat", cost=20)],
    queues=[QueueConfig(name="support")],
    agents=[AgentConfig(id="ann", queues={"support": 0})],
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Client:
    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self.lines = BufferedByteReceiveStream(stream)

    async def send(self, message: dict[str, Any] | bytes) -> None:
        data = message if isinstance(message, bytes) else json.dumps(message).encode()
        await self.stream.send(data + b"\n")

    async def receive(self) -> dict[str, Any]:
        with anyio.fail_after(10):
            line = await self.lines.receive_until(b"\n", 4 * MAX_LINE_BYTES)
        value: dict[str, Any] = json.loads(line)
        return value

    async def call(self, message: dict[str, Any]) -> dict[str, Any]:
        await self.send(message)
        return await self.receive()


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    async with (
        Runtime.open(open_store(f"sqlite:///{tmp_path}/o.db"), CONFIG, clock=ManualClock(1e9)) as runtime,
        anyio.create_task_group() as tg,
    ):
        port = await tg.start(serve_lines, runtime, "127.0.0.1", 0)
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            yield Client(stream)
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_a_contact_is_created_offered_and_accepted_over_lines(client: Client) -> None:
    reply = await client.call({"id": "s", "op": "subscribe", "types": ["offer_made"]})
    assert reply == {"id": "s", "ok": True, "result": {"after": 0}}
    created = await client.call(
        {
            "id": 1,
            "op": "create",
            "interaction": {
                "channel": "chat",
                "queue": "support",
                "identities": [{"kind": "email", "value": "Jo@Example.com"}],
            },
        }
    )
    # The reply and the event may come in either order.
    second = await client.receive()
    event, created = (created, second) if "event" in created else (second, created)
    assert created["ok"], created
    assert created["result"]["created"] is True
    offer = event["event"]
    assert offer["type"] == "omniroute.offer_made"
    assert offer["subject"] == created["result"]["interaction"]
    accepted = await client.call({"id": 2, "op": "accept", "offer": offer["data"]["offer"], "agent": "ann"})
    assert accepted == {"id": 2, "ok": True, "result": None}
    status = await client.call({"id": 3, "op": "status"})
    assert status["result"]["tasks"] == 1
    assert status["result"]["offers"] == 0


@pytest.mark.anyio
async def test_bad_requests_get_errors_that_name_the_field_and_the_connection_goes_on(client: Client) -> None:
    unknown_channel = await client.call(
        {"id": 1, "op": "create", "interaction": {"channel": "fax", "queue": "support"}}
    )
    assert unknown_channel["error"]["kind"] == "invalid_input"
    assert unknown_channel["error"]["message"].startswith("channel: unknown channel 'fax'")
    wrong_type = await client.call(
        {"id": 2, "op": "create", "interaction": {"channel": "chat", "queue": "support", "priority": "high"}}
    )
    assert wrong_type["error"]["message"] == "interaction.priority: expected a whole number, got str"
    unknown_op = await client.call({"id": 3, "op": "dance"})
    assert unknown_op["id"] == 3
    assert unknown_op["error"]["kind"] == "invalid_input"
    assert "dance" in unknown_op["error"]["message"]
    await client.send(b"not json")
    garbled = await client.receive()
    assert garbled["id"] is None
    assert garbled["error"]["message"].startswith("request: not a JSON object")
    no_offer = await client.call({"id": 4, "op": "accept", "offer": 99})
    assert no_offer["error"]["kind"] == "unknown_id"
    bad_after = await client.call({"id": 5, "op": "subscribe", "after": 10})
    assert bad_after["error"]["kind"] == "invalid_input"
    assert bad_after["error"]["message"].startswith("after: 10")
    assert (await client.call({"id": 6, "op": "ping"}))["result"] == "pong"


@pytest.mark.anyio
async def test_a_line_over_the_limit_is_refused_and_the_connection_closed(client: Client) -> None:
    await client.send(b"x" * (MAX_LINE_BYTES + 10))
    refused = await client.receive()
    assert refused["error"]["message"] == f"request: longer than {MAX_LINE_BYTES} bytes; connection closed"
    with pytest.raises((anyio.EndOfStream, anyio.IncompleteRead)), anyio.fail_after(10):
        await client.lines.receive_until(b"\n", 1024)


def test_the_service_runs_its_loop_on_uvloop() -> None:
    """``omniroute run`` serves on the same loop as ``omniroute serve``: uvloop's."""

    async def loop_class(offset: int) -> tuple[type, int]:
        await anyio.sleep(0)
        return type(asyncio.get_running_loop()), offset + 1

    cls, answer = run_on_service_loop(loop_class, 41)
    assert issubclass(cls, uvloop.Loop)
    assert answer == 42
