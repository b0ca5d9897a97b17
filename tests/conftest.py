"""Shared builders for the tests: a small contact centre in a few lines."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import omniroute as o
import pg
from omniroute.store import SqlStore, open_store

# The fixtures omniroute ships for plugin authors, used by omniroute's own tests too.
pytest_plugins = ["omniroute.testing"]


def channels() -> list[o.ChannelConfig]:
    """A call fills an agent; up to three chats; e-mail is interruptible."""
    return [
        o.ChannelConfig(name="voice", cost=60),
        o.ChannelConfig(name="chat", cost=20, max_per_agent=3),
        o.ChannelConfig(name="email", cost=12, interruptible=True),
        o.ChannelConfig(name="sms", cost=20, inactive_after=300.0),
    ]


def agent(name: str, queues: dict[str, int], **skills: int) -> o.AgentConfig:
    return o.AgentConfig(id=name, queues=queues, skills=skills)


def task(tid: str, queue: str = "support", channel: str = "chat", **kw: object) -> o.AddTask:
    return o.AddTask(task=o.NewTask(id=tid, queue=queue, channel=channel, **kw))  # type: ignore[arg-type]


@pytest.fixture
def config() -> o.EngineConfig:
    return o.EngineConfig(
        channels=channels(),
        queues=[o.QueueConfig(name="support"), o.QueueConfig(name="sales", wrap_up=10.0)],
        agents=[
            agent("ann", {"support": 1, "sales": 0}, en=5, billing=3),
            agent("bob", {"support": 0}, en=3, es=4),
        ],
    )


@pytest.fixture
def engine(config: o.EngineConfig) -> o.Engine:
    return o.Engine(config, now=0.0)


# ----- the store, on SQLite and on a real PostgreSQL server -----


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[pg.PostgresServer]:
    """A throwaway PostgreSQL server for the session (or ``OMNIROUTE_TEST_POSTGRES``)."""
    with pg.shared() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database of its own for each test, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/omniroute.db"
        return
    server: pg.PostgresServer = request.getfixturevalue("postgres_server")
    name = f"test_{uuid.uuid4().hex}"
    yield server.create_database(name)
    # Dropped, not left for the server's shutdown to write out.
    server.drop_database(name)


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    """The store at ``store_url``, migrated to the latest schema."""
    with open_store(store_url) as opened:
        yield opened
