"""pytest fixtures for plugin authors: ``pytest_plugins = ["omniroute.testing"]`` in a conftest.

- ``omniroute_plugins``: a plugin manager with omniroute's built-in plugins
  and none installed; register the plugin under test with ``.register()``.
- ``channel_runtime``: a factory that runs a real runtime on a fresh SQLite
  store with one channel and one queue, starts a connector in it as
  ``omniroute serve`` would, and gives back both::

      async def test_my_channel(channel_runtime):
          async with channel_runtime(MyConnector, {"token": "..."}) as (runtime, connector):
              received = await connector.gateway.receive(Inbound(...))
              assert (await runtime.interaction(received.interaction)).channel == "test"

Nothing is mocked: the store, the runtime, the engine and the host that
sends outbound messages are the real ones.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from omniroute.channels import ChannelConnector, ChannelHost, ChannelSetup
from omniroute.model import AgentConfig, ChannelConfig, EngineConfig, QueueConfig
from omniroute.plugins import Plugins
from omniroute.runtime import Runtime, RuntimeSettings
from omniroute.store import open_store

__all__ = ["ChannelRuntime", "centre_config", "channel_runtime", "omniroute_plugins"]

ChannelRuntime = Callable[..., AbstractAsyncContextManager[tuple[Runtime, ChannelConnector]]]


def centre_config(channel: str = "test", queue: str = "support", agents: int = 1) -> EngineConfig:
    """One channel, one queue, ``agents`` available agents (``agent-1``, ...) serving it."""
    return EngineConfig(
        channels=[ChannelConfig(name=channel, cost=10)],
        queues=[QueueConfig(name=queue)],
        agents=[AgentConfig(id=f"agent-{n}", queues={queue: 0}) for n in range(1, agents + 1)],
    )


@pytest.fixture
def omniroute_plugins() -> Plugins:
    """omniroute's built-in plugins only: the test registers its own."""
    return Plugins(installed=False, environ={})


@pytest.fixture
def channel_runtime(tmp_path: Path) -> ChannelRuntime:
    """Run a connector in a real runtime; see the module's docstring."""

    @asynccontextmanager
    async def run(
        connector: type[ChannelConnector],
        options: Any,
        *,
        kind: str = "test",
        channel: str = "test",
        queue: str = "support",
        config: EngineConfig | None = None,
        settings: RuntimeSettings | None = None,
    ) -> AsyncIterator[tuple[Runtime, ChannelConnector]]:
        setup = ChannelSetup(kind=kind, channel=channel, queue=queue)
        built = connector(setup, options)
        store = open_store(f"sqlite:///{tmp_path}/channel-{channel}.db")
        async with (
            Runtime.open(store, config or centre_config(channel, queue), settings=settings) as runtime,
            anyio.create_task_group() as tg,
        ):
            host = ChannelHost(runtime, [built])
            await tg.start(host.run)
            try:
                yield runtime, built
            finally:
                tg.cancel_scope.cancel()

    return run
