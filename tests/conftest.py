"""Shared builders for the tests: a small contact centre in a few lines."""

from __future__ import annotations

import pytest

import omniroute as o


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
