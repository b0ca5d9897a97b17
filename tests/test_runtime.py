"""The live runtime end to end, on a real store (SQLite and PostgreSQL) and on
both anyio back ends: what a contact centre sees, what is stored, what is
published, and what survives a restart.

Time is a :class:`ManualClock`: offer timeouts, wrap-up and stickiness fall
due when a test advances the clock and calls ``runtime.tick()``.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import psycopg
import pytest

from omniroute.errors import InvalidInputError, InvalidTransitionError, OmnirouteError, UnknownIdError
from omniroute.model import (
    AgentConfig,
    AgentLoad,
    AgentState,
    AgentStateChanged,
    ChannelConfig,
    DeclinedBefore,
    EngineConfig,
    Not,
    OfferMade,
    QueueConfig,
    Skill,
)
from omniroute.runtime import (
    Acknowledgement,
    AttachmentIn,
    Envelope,
    IdentityIn,
    ManualClock,
    MessageIn,
    NewInteraction,
    Runtime,
    RuntimeClosedError,
    RuntimeSettings,
    Subscription,
    to_cloudevent,
)
from omniroute.runtime.bus import EventBus
from omniroute.runtime.events import CustomersMerged, InteractionCreated
from omniroute.store import Interaction, StoreError, open_store

T0 = 1_700_000_000.0
GB = RuntimeSettings(default_region="GB")
TABLES = (
    "customers",
    "identities",
    "conversations",
    "interactions",
    "messages",
    "notes",
    "attachments",
    "customer_merges",
    "events",
    "engine_log",
)

# Which combinations a test runs on: the core lifecycle and recovery on all
# four (2 stores x 2 back ends), the rest on a subset to keep the file quick.
SQLITE_ONLY = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
ASYNCIO_ONLY = pytest.mark.parametrize("anyio_backend", ["asyncio"])


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


def make_config(*, agents: list[AgentConfig] | None = None) -> EngineConfig:
    """A call fills an agent; chats and e-mails share. ``support`` has 5 s of
    wrap-up; ``sales`` ages waiting work one priority point a second."""
    return EngineConfig(
        channels=[
            ChannelConfig(name="voice", cost=60),
            ChannelConfig(name="chat", cost=20, max_per_agent=3),
            ChannelConfig(name="email", cost=10),
        ],
        queues=[
            QueueConfig(name="support", wrap_up=5.0, offer_timeout=30.0),
            QueueConfig(name="sales", aging_per_second=1.0, offer_timeout=30.0),
            QueueConfig(name="billing", offer_timeout=30.0),
        ],
        agents=agents
        if agents is not None
        else [
            AgentConfig(id="ann", queues={"support": 0, "sales": 0}, skills={"en": 5}),
            AgentConfig(id="bob", queues={"support": 0, "sales": 0}, skills={"en": 3}),
        ],
    )


CONFIG = make_config()


@asynccontextmanager
async def running(
    url: str,
    clock: ManualClock,
    config: EngineConfig | None = CONFIG,
    settings: RuntimeSettings = GB,
) -> AsyncIterator[Runtime]:
    """A runtime on its own connection to the store at ``url``; it closes the store when done."""
    async with Runtime.open(open_store(url), config, settings=settings, clock=clock) as runtime:
        yield runtime


@asynccontextmanager
async def one_batch(runtime: Runtime) -> AsyncIterator[None]:
    """Hold the runtime's writer so that calls pile up and are stored together.

    Start a tick first: the batcher takes it and blocks on the writer, and
    every call made after it waits in the queue, to be taken as one batch
    when the block ends. ``settle()`` after each call keeps their order.
    (This reaches into the runtime: nothing public decides how calls are
    batched.)"""
    async with runtime._writer:
        yield


async def settle() -> None:
    await anyio.wait_all_tasks_blocked()


async def in_one_batch(runtime: Runtime, *calls: Callable[[], Awaitable[object]]) -> list[object]:
    """Make ``calls`` in order so that they are stored in one batch; what each
    returned, or the error it raised."""
    results: list[object] = [None] * len(calls)

    async def make(i: int, call: Callable[[], Awaitable[object]]) -> None:
        try:
            results[i] = await call()
        except OmnirouteError as e:
            results[i] = e

    async with anyio.create_task_group() as tg, one_batch(runtime):
        tg.start_soon(runtime.tick)
        await settle()
        for i, call in enumerate(calls):
            tg.start_soon(make, i, call)
            await settle()
    return results


def counts(runtime: Runtime) -> dict[str, int]:
    with runtime.store.read() as r:
        return {table: r.count(table) for table in TABLES}


def email(value: str) -> IdentityIn:
    return IdentityIn(kind="email", value=value)


def phone(value: str) -> IdentityIn:
    return IdentityIn(kind="phone", value=value)


def chat_id(value: str) -> IdentityIn:
    return IdentityIn(kind="chat", value=value)


def new(channel: str = "chat", queue: str = "support", **kw: Any) -> NewInteraction:
    return NewInteraction(channel=channel, queue=queue, **kw)


def offer_for(runtime: Runtime, interaction: str) -> tuple[int, str]:
    """The open offer of an interaction and its agent."""
    found = [(offer, agent) for offer, (task, agent) in runtime.offers().items() if task == interaction]
    assert len(found) == 1, f"{interaction} has offers {found} ({runtime.offers()})"
    return found[0]


async def offers_made(runtime: Runtime, after: int) -> list[OfferMade]:
    made = []
    for envelope in await runtime.events(after):
        if isinstance(envelope.data, OfferMade):
            made.append(envelope.data)
    return made


async def wrap_up(runtime: Runtime, clock: ManualClock, seconds: float = 5.0) -> None:
    clock.advance(seconds)
    await runtime.tick()


def agent_states(runtime: Runtime) -> dict[str, str]:
    return {o.agent: o.status.state for o in runtime.engine.roster() if isinstance(o, AgentStateChanged)}


def run_sql(url: str, statement: str) -> None:
    """Change the database behind the store's back (simulating what a crash leaves)."""
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            conn.execute(statement)
            conn.commit()
        finally:
            conn.close()
    else:
        with psycopg.connect(url, autocommit=True) as pg_conn:
            pg_conn.execute(statement)


# ----- 1. one contact from arrival to the end of wrap-up -----


@pytest.mark.anyio
async def test_lifecycle_from_arrival_to_the_end_of_wrap_up(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        ack = await rt.create_interaction(
            new(
                "email",
                "support",
                identities=[email("Jo Bloggs <Jo@Example.com>")],
                subject="Refund",
                message=MessageIn(body="Where is my refund?"),
            )
        )
        assert ack.created
        assert ack.at == T0
        offer, agent = offer_for(rt, ack.interaction)
        stored = await rt.interaction(ack.interaction)
        assert (stored.status, stored.agent, stored.offer) == ("offered", agent, offer)
        assert stored.queued_at == stored.offered_at == stored.created_at == T0
        assert stored.customer_id == ack.customer
        assert stored.conversation_id == ack.conversation
        assert (await rt.find_customer("email", "jo@example.com")) == await rt.customer(ack.customer)

        clock.advance(5)
        await rt.accept(offer, agent=agent)
        assert rt.offers() == {}
        stored = await rt.interaction(ack.interaction)
        assert (stored.status, stored.agent, stored.offer, stored.answered_at) == (
            "assigned",
            agent,
            None,
            T0 + 5,
        )

        clock.advance(60)
        await rt.complete(
            ack.interaction,
            agent=agent,
            disposition="refund-issued",
            outcome="refunded",
            resolved=True,
            note="Refunded in full",
        )
        stored = await rt.interaction(ack.interaction)
        assert stored.status == "completed"
        assert stored.ended_at == T0 + 65
        assert stored.wrap_up_ended_at is None, "support has 5 s of wrap-up"
        assert agent_states(rt)[agent] == "wrap_up"
        assert rt.engine.task_count == 0

        clock.advance(4.5)
        await rt.tick()
        assert (await rt.interaction(ack.interaction)).wrap_up_ended_at is None
        await wrap_up(rt, clock, 0.5)
        assert agent_states(rt)[agent] == "available"

        final = await rt.interaction(ack.interaction)
        assert final == Interaction(
            id=ack.interaction,
            conversation_id=ack.conversation,
            customer_id=ack.customer,
            channel="email",
            direction="inbound",
            queue="support",
            status="completed",
            agent=agent,
            created_at=T0,
            queued_at=T0,
            offered_at=T0,
            answered_at=T0 + 5,
            ended_at=T0 + 65,
            wrap_up_ended_at=T0 + 70,
            disposition="refund-issued",
            outcome="refunded",
            subject="Refund",
        )

        m = await rt.metrics()
        overall = m.overall.since_start
        assert (overall.offered, overall.answered, overall.completed) == (1, 1, 1)
        assert (overall.dispositions, overall.resolved, overall.abandoned) == (1, 1, 0)
        assert overall.wait_seconds == pytest.approx(5.0)
        assert overall.asa == pytest.approx(5.0)
        assert overall.talk_seconds == pytest.approx(60.0)
        assert overall.wrap_up_seconds == pytest.approx(5.0)
        assert overall.aht == pytest.approx(65.0)
        assert m.queues["support"].since_start.answered == 1
        assert m.channels["email"].since_start.talk_seconds == pytest.approx(60.0)
        assert m.agents[agent].since_start.wrap_up_seconds == pytest.approx(5.0)
        assert m.overall.waiting is not None
        assert m.overall.waiting.contacts == 0

        ctx = await rt.context(ack.customer)
        assert [e.interaction.id for e in ctx.timeline] == [ack.interaction]
        assert [n.body for n in ctx.timeline[0].notes] == ["Refunded in full"]
        assert ctx.timeline[0].notes[0].author == agent
        assert [(msg.interaction_id, msg.body) for msg in ctx.transcript] == [
            (ack.interaction, "Where is my refund?")
        ]
        assert [(i.kind, i.value) for i in ctx.identities] == [("email", "jo@example.com")]
        assert ctx.last_agent == agent

        types = [e.type for e in await rt.events()]
        for expected in (
            "customer_created",
            "identity_added",
            "conversation_opened",
            "interaction_created",
            "message_added",
            "task_queued",
            "offer_made",
            "task_assigned",
            "interaction_updated",
            "note_added",
            "task_completed",
        ):
            assert expected in types
        # In the order they happened.
        assert types.index("interaction_created") < types.index("task_queued") < types.index("offer_made")
        assert types.index("offer_made") < types.index("task_assigned") < types.index("task_completed")
        rt.check_invariants()


# ----- 2. offers that go unanswered, rejections, cancels, transfers, agent states -----


@SQLITE_ONLY
@pytest.mark.anyio
async def test_an_unanswered_offer_returns_to_waiting_and_goes_to_another_agent(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        await rt.set_agent_state("bob", AgentState(state="away", reason="lunch"))
        assert agent_states(rt)["bob"] == "away"
        ack = await rt.create_interaction(new())
        offer, agent = offer_for(rt, ack.interaction)
        assert agent == "ann"

        clock.advance(29.9)
        await rt.tick()
        assert offer_for(rt, ack.interaction) == (offer, "ann")
        clock.advance(0.1)
        await rt.tick()
        assert rt.offers() == {}
        stored = await rt.interaction(ack.interaction)
        assert (stored.status, stored.offer, stored.agent) == ("waiting", None, None)
        assert stored.offered_at == T0, "the first offer's time is kept"
        verdicts = {v.agent: v for v in rt.explain(ack.interaction).agents}
        assert isinstance(verdicts["ann"], DeclinedBefore)
        with pytest.raises(UnknownIdError, match=r"offer"):
            await rt.accept(offer)

        seq = rt.last_event_seq
        await rt.set_agent_state("bob", AgentState(state="available"))
        offer2, agent2 = offer_for(rt, ack.interaction)
        assert agent2 == "bob"
        assert offer2 != offer
        stored = await rt.interaction(ack.interaction)
        assert (stored.status, stored.offer, stored.agent, stored.offered_at) == (
            "offered",
            offer2,
            "bob",
            T0,
        )
        assert [(o.task, o.agent) for o in await offers_made(rt, seq)] == [(ack.interaction, "bob")]

        # Bob says no too: nobody is left to take it, it waits.
        await rt.reject(offer2, agent="bob")
        stored = await rt.interaction(ack.interaction)
        assert (stored.status, stored.offer, stored.agent) == ("waiting", None, None)
        assert rt.engine.waiting == 1

        # The customer hangs up.
        clock.advance(10)
        await rt.cancel(ack.interaction)
        stored = await rt.interaction(ack.interaction)
        assert (stored.status, stored.ended_at, stored.answered_at) == ("abandoned", T0 + 40, None)
        assert rt.engine.task_count == 0
        m = (await rt.metrics()).overall.since_start
        assert m.abandoned == 1
        assert m.answered == 0

        # Withdrawn work is 'cancelled', even with an offer pending.
        ack2 = await rt.create_interaction(new())
        offer3, _ = offer_for(rt, ack2.interaction)
        await rt.cancel(ack2.interaction, status="cancelled")
        stored = await rt.interaction(ack2.interaction)
        assert (stored.status, stored.offer, stored.ended_at) == ("cancelled", None, T0 + 40)
        assert rt.offers() == {}
        with pytest.raises(UnknownIdError):
            await rt.accept(offer3)
        with pytest.raises(UnknownIdError):
            await rt.cancel("no-such-interaction")
        rt.check_invariants()


@SQLITE_ONLY
@pytest.mark.anyio
async def test_accepting_as_the_wrong_agent_or_an_unknown_offer_changes_nothing(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        ack = await rt.create_interaction(new())
        offer, agent = offer_for(rt, ack.interaction)
        other = "bob" if agent == "ann" else "ann"
        before_rows, before_offers = counts(rt), rt.offers()
        before = await rt.interaction(ack.interaction)

        with pytest.raises(InvalidInputError, match=r"^offer: .*another agent"):
            await rt.accept(offer, agent=other)
        with pytest.raises(InvalidInputError, match=r"^offer: "):
            await rt.reject(offer, agent=other)
        with pytest.raises(UnknownIdError, match=r"^offer: no open offer 999"):
            await rt.accept(999)
        with pytest.raises(InvalidInputError, match=r"^task: "):
            await rt.complete(ack.interaction, agent=other)

        assert rt.offers() == before_offers
        assert await rt.interaction(ack.interaction) == before
        assert counts(rt) == before_rows
        # ... and the offer still works for the right agent.
        await rt.accept(offer, agent=agent)
        assert (await rt.interaction(ack.interaction)).status == "assigned"


@SQLITE_ONLY
@pytest.mark.anyio
async def test_transfers_to_a_queue_and_to_a_named_agent(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        ack = await rt.create_interaction(new("chat", "support"))
        offer, first = offer_for(rt, ack.interaction)
        second = "bob" if first == "ann" else "ann"
        clock.advance(2)
        await rt.accept(offer)
        clock.advance(30)

        # To a queue: not back to the agent who sent it.
        seq = rt.last_event_seq
        await rt.transfer(ack.interaction, to_queue="sales", agent=first)
        offer2, agent2 = offer_for(rt, ack.interaction)
        assert agent2 == second
        stored = await rt.interaction(ack.interaction)
        assert (stored.status, stored.queue, stored.agent, stored.offer) == (
            "offered",
            "sales",
            second,
            offer2,
        )
        assert (stored.queued_at, stored.answered_at) == (T0, T0 + 2), "first times are kept"
        types = [e.type for e in await rt.events(seq)]
        assert "task_transferred" in types

        await rt.accept(offer2, agent=second)
        assert (await rt.interaction(ack.interaction)).agent == second

        # To a named agent: reserved for them.
        seq = rt.last_event_seq
        await rt.transfer(ack.interaction, to_agent=first, agent=second)
        offer3, agent3 = offer_for(rt, ack.interaction)
        assert agent3 == first
        (made,) = await offers_made(rt, seq)
        assert made.offer == offer3
        assert made.reason.reserved
        await rt.accept(offer3)
        await rt.complete(ack.interaction, agent=first)
        stored = await rt.interaction(ack.interaction)
        assert (stored.status, stored.agent, stored.queue) == ("completed", first, "sales")
        assert (await rt.metrics()).overall.since_start.transferred == 2

        with pytest.raises(InvalidInputError, match=r"^task: "):
            await rt.transfer(ack.interaction, to_queue="support", agent=second)
        rt.check_invariants()


@SQLITE_ONLY
@pytest.mark.anyio
async def test_work_transferred_to_a_queue_nobody_serves_waits_with_no_agent(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        ack = await rt.create_interaction(new("chat", "support"))
        offer, agent = offer_for(rt, ack.interaction)
        await rt.accept(offer)
        await rt.transfer(ack.interaction, to_queue="billing", agent=agent)
        assert rt.offers() == {}
        stored = await rt.interaction(ack.interaction)
        assert (stored.status, stored.queue, stored.offer) == ("waiting", "billing", None)
        assert stored.agent is None
        with pytest.raises(InvalidInputError, match=r"^task: "):
            await rt.complete(ack.interaction, agent=agent)


@SQLITE_ONLY
@pytest.mark.anyio
async def test_wrap_up_ended_early_by_the_agent(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        first = await rt.create_interaction(new("voice", "support"))
        offer, agent = offer_for(rt, first.interaction)
        await rt.accept(offer)
        waiting = await rt.create_interaction(new("voice", "support"))
        _, agent2 = offer_for(rt, waiting.interaction)
        assert agent2 != agent
        await rt.set_agent_state(agent2, AgentState(state="away", reason="break"))
        clock.advance(20)
        await rt.complete(first.interaction)
        assert agent_states(rt)[agent] == "wrap_up"
        assert (await rt.interaction(waiting.interaction)).status == "waiting", "no offers in wrap-up"
        clock.advance(2)
        await rt.end_wrap_up(agent)
        assert (await rt.interaction(first.interaction)).wrap_up_ended_at == T0 + 22
        assert offer_for(rt, waiting.interaction)[1] == agent
        stats = (await rt.metrics()).agents[agent].since_start
        assert stats.wrap_up_seconds == pytest.approx(2.0)
        assert stats.talk_seconds == pytest.approx(20.0)
        # The timer that would have ended it changes nothing now.
        clock.advance(10)
        await rt.tick()
        assert (await rt.interaction(first.interaction)).wrap_up_ended_at == T0 + 22
        with pytest.raises(OmnirouteError):
            await rt.end_wrap_up(agent2)


@pytest.mark.anyio
async def test_hold_time_is_counted_apart_from_talk_and_survives_a_restart(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        call = await rt.create_interaction(new("voice", "support"))
        offer, agent = offer_for(rt, call.interaction)
        other = "bob" if agent == "ann" else "ann"
        with pytest.raises(InvalidTransitionError, match="offered; only work an agent has accepted"):
            await rt.hold(call.interaction)
        await rt.accept(offer)
        clock.advance(10)
        with pytest.raises(InvalidInputError, match=f"not with agent {other!r}"):
            await rt.hold(call.interaction, agent=other)
        with pytest.raises(InvalidTransitionError, match="is not on hold"):
            await rt.resume(call.interaction)
        await rt.hold(call.interaction, agent=agent)
        assert rt.on_hold(call.interaction) == T0 + 10
        with pytest.raises(InvalidTransitionError, match="on hold already, since"):
            await rt.hold(call.interaction)
        clock.advance(15)
        await rt.resume(call.interaction, agent=agent)
        assert rt.on_hold(call.interaction) is None
        stored = await rt.interaction(call.interaction)
        assert (stored.held_at, stored.hold_seconds) == (None, 15.0)
        clock.advance(5)
        await rt.hold(call.interaction)
        clock.advance(7)
    # A restart keeps the hold running from when it began.
    async with running(store_url, clock, config=None) as rt:
        assert rt.on_hold(call.interaction) == T0 + 30
        stored = await rt.interaction(call.interaction)
        assert (stored.held_at, stored.hold_seconds) == (T0 + 30, 15.0)
        clock.advance(3)
        # Completing on hold ends the hold: 15 s + 10 s of hold, 10 + 5 s of talk.
        await rt.complete(call.interaction)
        assert rt.on_hold(call.interaction) is None
        done = await rt.interaction(call.interaction)
        assert (done.held_at, done.hold_seconds) == (None, 25.0)
        stats = (await rt.metrics()).agents[agent].since_start
        assert stats.hold_seconds == pytest.approx(25.0)
        assert stats.talk_seconds == pytest.approx(15.0)
        assert stats.average_hold == pytest.approx(25.0)
        kinds = [(e.type, getattr(e.data, "seconds", None)) for e in await rt.events(0, limit=10_000)]
        holds = [k for k in kinds if k[0] in ("task_held", "task_resumed")]
        assert holds == [
            ("task_held", None),
            ("task_resumed", 15.0),
            ("task_held", None),
            ("task_resumed", 10.0),
        ]
        with pytest.raises(InvalidTransitionError, match="is completed"):
            await rt.hold(call.interaction)
        rt.check_invariants()


@SQLITE_ONLY
@pytest.mark.anyio
async def test_calls_of_one_batch_see_each_other_s_holds_and_attributes(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        call = await rt.create_interaction(new("voice", "support"))
        offer, _ = offer_for(rt, call.interaction)
        await rt.accept(offer)
        results = await in_one_batch(
            rt,
            lambda: rt.hold(call.interaction),
            lambda: rt.resume(call.interaction),
            lambda: rt.hold(call.interaction),
            lambda: rt.update_customer(call.customer, {"tier": "gold"}),
            lambda: rt.update_customer(call.customer, {"account": "A-1"}),
        )
        assert results[:3] == [None, None, None]
        assert rt.on_hold(call.interaction) == T0
        assert (await rt.customer(call.customer)).attributes == {"tier": "gold", "account": "A-1"}
        kinds = [e.type for e in await rt.events(0, limit=10_000)]
        assert [k for k in kinds if k in ("task_held", "task_resumed")] == [
            "task_held",
            "task_resumed",
            "task_held",
        ]
        with pytest.raises(InvalidInputError, match=r"attributes\.score: nan is not a finite number"):
            await rt.update_customer(call.customer, {"score": float("nan")})


@SQLITE_ONLY
@pytest.mark.anyio
async def test_a_transfer_on_hold_ends_the_hold_and_consults_reach_the_log(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        chat = await rt.create_interaction(new("chat", "support"))
        offer, agent = offer_for(rt, chat.interaction)
        other = "bob" if agent == "ann" else "ann"
        await rt.accept(offer)
        consult = await rt.consult(agent, other, "Can you take a billing question?", task=chat.interaction)
        assert (consult.sender, consult.to, consult.task) == (agent, other, chat.interaction)
        await rt.hold(chat.interaction)
        clock.advance(4)
        await rt.transfer(chat.interaction, to_agent=other)
        assert rt.on_hold(chat.interaction) is None
        assert (await rt.interaction(chat.interaction)).hold_seconds == 4.0
        logged = [e for e in await rt.events(0, limit=10_000) if e.type == "consult_sent"]
        assert [(e.subject, e.data) for e in logged] == [(other, consult)]
        refused: list[tuple[Callable[[], Awaitable[object]], str]] = [
            (lambda: rt.consult(agent, agent, "hello"), "to: an agent consults a colleague"),
            (lambda: rt.consult(agent, "zed", "hello"), "to: no agent 'zed'"),
            (lambda: rt.consult("zed", agent, "hello"), "sender: no agent 'zed'"),
            (lambda: rt.consult(agent, other, "  "), "body: a consult message cannot be empty"),
            (lambda: rt.consult(agent, other, "hi", task="nope"), "interaction: no interaction 'nope'"),
            (lambda: rt.hold("nope"), "interaction: no interaction 'nope'"),
        ]
        for call, field in refused:
            with pytest.raises(OmnirouteError, match=field):
                await call()
        assert len([e for e in await rt.events(0, limit=10_000) if e.type == "consult_sent"]) == 1


@pytest.mark.anyio
async def test_a_message_given_an_id_is_stored_once_however_often_it_is_delivered(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        ack = await rt.create_interaction(
            new("chat", "support", id="sms-1", message=MessageIn(body="Hi", id="provider-1"))
        )
        again = await rt.create_interaction(
            new("chat", "support", id="sms-1", message=MessageIn(body="Hi", id="provider-1"))
        )
        assert not again.created
        assert (
            await rt.add_message(ack.interaction, MessageIn(body="Still there?", id="provider-2"))
            == "provider-2"
        )
        # Retried deliveries, one after another and several in one batch: one message each.
        assert (
            await rt.add_message(ack.interaction, MessageIn(body="Still there?", id="provider-2"))
            == "provider-2"
        )
        results = await in_one_batch(
            rt,
            lambda: rt.add_message(ack.interaction, MessageIn(body="Hello?", id="provider-3")),
            lambda: rt.add_message(ack.interaction, MessageIn(body="Hello?", id="provider-3")),
        )
        assert results == ["provider-3", "provider-3"]
        messages = await rt.messages(ack.interaction)
        assert [(m.id, m.body) for m in messages] == [
            ("provider-1", "Hi"),
            ("provider-2", "Still there?"),
            ("provider-3", "Hello?"),
        ]
        # An id already used elsewhere is refused, naming it, and stores nothing.
        other = await rt.create_interaction(new("email", "support"))
        with pytest.raises(InvalidInputError, match=r"message\.id: 'provider-2' is a message of interaction"):
            await rt.add_message(other.interaction, MessageIn(body="x", id="provider-2"))
        with pytest.raises(InvalidInputError, match=r"message\.id: 'provider-1' is a message of interaction"):
            await rt.create_interaction(new("chat", "support", message=MessageIn(body="x", id="provider-1")))
        assert len(await rt.messages(other.interaction)) == 0
        rt.check_invariants()


@SQLITE_ONLY
@pytest.mark.anyio
async def test_an_agent_away_gets_nothing_and_gets_work_on_return(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        await rt.set_agent_state("ann", AgentState(state="away", reason="training"))
        await rt.set_agent_state("bob", AgentState(state="offline"))
        ack = await rt.create_interaction(new("voice", "sales"))
        assert rt.offers() == {}
        assert (await rt.interaction(ack.interaction)).status == "waiting"
        staffing = (await rt.metrics()).overall.staffing
        assert staffing is not None
        assert (staffing.away, staffing.offline) == (1, 1)

        clock.advance(12)
        await rt.set_agent_state("ann", AgentState(state="available"))
        assert offer_for(rt, ack.interaction)[1] == "ann"
        stored = await rt.interaction(ack.interaction)
        assert (stored.status, stored.queued_at, stored.offered_at) == ("offered", T0, T0 + 12)

        # Going away withdraws the pending offer; the work waits again.
        await rt.set_agent_state("ann", AgentState(state="away", reason="meeting"))
        assert rt.offers() == {}
        stored = await rt.interaction(ack.interaction)
        assert (stored.status, stored.agent, stored.offer) == ("waiting", None, None)
        with pytest.raises(UnknownIdError, match=r"unknown agent \"nobody\""):
            await rt.set_agent_state("nobody", AgentState(state="available"))
        rt.check_invariants()


# ----- 3. idempotent creation -----


@pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)
@ASYNCIO_ONLY
@pytest.mark.anyio
async def test_creating_the_same_id_twice_stores_it_once(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        request = new(
            "email", identities=[email("jo@example.com")], id="mail-1", message=MessageIn(body="hi")
        )
        first = await rt.create_interaction(request)
        rows = counts(rt)
        clock.advance(10)
        again = await rt.create_interaction(request)
        assert first.created
        assert not again.created
        assert (again.interaction, again.customer, again.conversation, again.at) == (
            first.interaction,
            first.customer,
            first.conversation,
            T0,
        )
        assert counts(rt) == rows, "nothing new: no second message, customer or event"
        assert rt.engine.task_count == 1


@SQLITE_ONLY
@pytest.mark.anyio
async def test_the_same_id_twice_in_one_burst_is_one_interaction(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        acks: list[Acknowledgement] = []

        async def create(request: NewInteraction) -> None:
            acks.append(await rt.create_interaction(request))

        request = new("chat", identities=[chat_id("visitor-7")], id="chat-7", message=MessageIn(body="hello"))
        async with anyio.create_task_group() as tg:
            # Three in one batch, then three more as fast as they come.
            async with one_batch(rt):
                tg.start_soon(rt.tick)
                await settle()
                for _ in range(3):
                    tg.start_soon(create, request)
                    await settle()
            for _ in range(3):
                tg.start_soon(create, request)
        assert len(acks) == 6
        assert sorted(a.created for a in acks) == [False] * 5 + [True]
        assert len({(a.interaction, a.customer, a.conversation) for a in acks}) == 1
        rows = counts(rt)
        assert (rows["interactions"], rows["customers"], rows["identities"], rows["messages"]) == (1, 1, 1, 1)
        created = [e for e in await rt.events() if e.type == "interaction_created"]
        assert len(created) == 1
        assert rt.engine.task_count == 1
        rt.check_invariants()


# ----- 4. one customer across channels -----


@pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)
@ASYNCIO_ONLY
@pytest.mark.anyio
async def test_one_customer_across_email_phone_and_chat_with_sticky_routing(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        mail = await rt.create_interaction(
            new("email", identities=[email("jo@example.com")], message=MessageIn(body="My order is late"))
        )
        offer, agent = offer_for(rt, mail.interaction)
        other = "bob" if agent == "ann" else "ann"
        await rt.accept(offer)
        clock.advance(1)
        await rt.add_message(
            mail.interaction, MessageIn(body="Sorry, on its way", direction="outbound", author=agent)
        )
        clock.advance(30)
        await rt.complete(mail.interaction, disposition="info", note="Order 123 delayed")
        await wrap_up(rt, clock)
        clock.advance(5)  # the last agent has now been idle for less time than the other

        # The phone call carries both identities (the IVR asked): the same customer,
        # offered first to the agent who answered the e-mail.
        seq = rt.last_event_seq
        call = await rt.create_interaction(
            new("voice", identities=[phone("+44 20 7946 0958"), email("JO@example.com")])
        )
        assert call.customer == mail.customer
        assert call.conversation == mail.conversation
        (made,) = await offers_made(rt, seq)
        assert (made.task, made.agent) == (call.interaction, agent)
        assert made.reason.reserved
        offer, _ = offer_for(rt, call.interaction)
        explained = {v.agent: type(v).__name__ for v in rt.explain(call.interaction).agents}
        assert explained[other] == "ReservedForOthers"
        clock.advance(1)
        await rt.accept(offer, agent=agent)
        await rt.add_note("Wants a call back on Friday", author=agent, interaction=call.interaction)
        clock.advance(60)
        await rt.complete(call.interaction, agent=agent, resolved=False)
        await wrap_up(rt, clock)
        clock.advance(1)

        # The same number written the national way finds the same customer.
        assert (await rt.find_customer("phone", "020 7946 0958")) == await rt.customer(mail.customer)
        seq = rt.last_event_seq
        chat = await rt.create_interaction(
            new("chat", identities=[phone("020 7946 0958")], message=MessageIn(body="Any news?"))
        )
        assert chat.customer == mail.customer
        (made,) = await offers_made(rt, seq)
        assert made.agent == agent
        assert made.reason.reserved

        await rt.add_note("VIP", author="supervisor", customer=mail.customer)
        ctx = await rt.context(mail.customer)
        assert [e.interaction.id for e in ctx.timeline] == [
            chat.interaction,
            call.interaction,
            mail.interaction,
        ]
        assert [e.interaction.channel for e in ctx.timeline] == ["chat", "voice", "email"]
        assert [n.body for n in ctx.timeline[1].notes] == ["Wants a call back on Friday"]
        assert [n.body for n in ctx.timeline[2].notes] == ["Order 123 delayed"]
        assert [n.body for n in ctx.customer_notes] == ["VIP"]
        assert ctx.open_conversation is not None
        assert ctx.open_conversation.id == mail.conversation
        # One transcript for the conversation, whichever channel each message came on.
        assert [(m.interaction_id, m.direction, m.body) for m in ctx.transcript] == [
            (mail.interaction, "inbound", "My order is late"),
            (mail.interaction, "outbound", "Sorry, on its way"),
            (chat.interaction, "inbound", "Any news?"),
        ]
        assert {e.interaction.conversation_id for e in ctx.timeline} == {mail.conversation}
        assert ctx.last_agent == agent
        assert sorted((i.kind, i.value) for i in ctx.identities) == [
            ("email", "jo@example.com"),
            ("phone", "+442079460958"),
        ]
        rows = counts(rt)
        assert (rows["customers"], rows["conversations"], rows["identities"]) == (1, 1, 2)

        # Without stickiness the longest idle agent is chosen.
        seq = rt.last_event_seq
        other_chat = await rt.create_interaction(
            new("chat", identities=[phone("020 7946 0958")], sticky=False)
        )
        (made,) = await offers_made(rt, seq)
        assert made.task == other_chat.interaction
        assert made.agent == other
        assert not made.reason.reserved


@SQLITE_ONLY
@pytest.mark.anyio
async def test_identities_of_two_known_customers_in_one_contact_merge_them(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        a = await rt.create_interaction(new("email", identities=[email("a@example.com")]))
        clock.advance(1)
        b = await rt.create_interaction(new("voice", identities=[phone("+44 20 7946 0958")]))
        assert a.customer != b.customer
        clock.advance(1)
        seq = rt.last_event_seq
        both = await rt.create_interaction(
            new("chat", identities=[email("a@example.com"), phone("02079460958")])
        )
        assert both.customer == a.customer
        merges = [e.data for e in await rt.events(seq) if isinstance(e.data, CustomersMerged)]
        assert [(m.merge.survivor, m.merge.merged) for m in merges] == [(a.customer, b.customer)]
        assert merges[0].merge.interactions == [b.interaction]
        assert merges[0].merge.identities == [("phone", "+442079460958")]
        assert (await rt.customer(b.customer)).merged_into == a.customer
        ctx = await rt.context(b.customer)
        assert ctx.customer.id == a.customer
        assert {e.interaction.id for e in ctx.timeline} == {a.interaction, b.interaction, both.interaction}
        assert (await rt.interaction(b.interaction)).customer_id == a.customer
        assert (await rt.find_customer("phone", "+442079460958")) == await rt.customer(a.customer)


@SQLITE_ONLY
@pytest.mark.anyio
async def test_a_chat_visitor_who_types_a_known_email_merges_and_the_undo_gives_back_exactly_that(
    store_url: str,
) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        known = await rt.create_interaction(new("email", identities=[email("jo@example.com")]))
        offer, _ = offer_for(rt, known.interaction)
        await rt.accept(offer)
        await rt.add_note("Prefers e-mail", author="ann", customer=known.customer)
        known_before = await rt.context(known.customer)
        clock.advance(60)

        visitor = await rt.create_interaction(
            new("chat", identities=[chat_id("visitor-1")], message=MessageIn(body="hi there"))
        )
        assert visitor.customer != known.customer
        visitor_before = await rt.context(visitor.customer)
        seq = rt.last_event_seq
        clock.advance(5)
        await rt.add_message(visitor.interaction, MessageIn(body="It's me, JO@example.com, about my order"))

        merges = [e.data for e in await rt.events(seq) if isinstance(e.data, CustomersMerged)]
        assert len(merges) == 1
        merge = merges[0].merge
        assert (merge.survivor, merge.merged) == (known.customer, visitor.customer), (
            "the known customer stays"
        )
        assert merge.identities == [("chat", "visitor-1")]
        assert merge.interactions == [visitor.interaction]
        assert merge.conversations == [visitor.conversation]
        assert merge.notes == []
        assert (await rt.find_customer("chat", "visitor-1")) == await rt.customer(known.customer)
        merged_ctx = await rt.context(visitor.customer)
        assert merged_ctx.customer.id == known.customer
        assert {e.interaction.id for e in merged_ctx.timeline} == {known.interaction, visitor.interaction}
        assert sorted((i.kind, i.value) for i in merged_ctx.identities) == [
            ("chat", "visitor-1"),
            ("email", "jo@example.com"),
        ]

        undone = await rt.undo_merge(merge.id)
        assert undone.undone_at == T0 + 65
        assert (await rt.customer(visitor.customer)).merged_into is None
        known_after = await rt.context(known.customer)
        visitor_after = await rt.context(visitor.customer)
        assert known_after.identities == known_before.identities
        assert [e.interaction for e in known_after.timeline] == [e.interaction for e in known_before.timeline]
        assert known_after.customer_notes == known_before.customer_notes
        assert visitor_after.identities == visitor_before.identities
        assert [e.interaction.id for e in visitor_after.timeline] == [visitor.interaction]
        assert (await rt.interaction(visitor.interaction)).customer_id == visitor.customer
        assert [m.body for m in visitor_after.transcript] == [
            "hi there",
            "It's me, JO@example.com, about my order",
        ]
        with pytest.raises(InvalidInputError, match=r"^merge: "):
            await rt.undo_merge(merge.id)
        with pytest.raises(UnknownIdError, match=r"^merge: "):
            await rt.undo_merge("no-such-merge")

        # A merge by hand, and back.
        by_hand = await rt.merge_customers(known.customer, visitor.customer)
        assert by_hand.identities == [("chat", "visitor-1")]
        assert (await rt.context(visitor.customer)).customer.id == known.customer
        await rt.undo_merge(by_hand.id)
        assert (await rt.context(visitor.customer)).identities == visitor_before.identities
        with pytest.raises(InvalidInputError, match=r"^merged: "):
            await rt.merge_customers(known.customer, known.customer)


@pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)
@ASYNCIO_ONLY
@pytest.mark.anyio
async def test_a_transcript_keeps_the_order_messages_were_written_in(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        ack = await rt.create_interaction(new(identities=[chat_id("v")], message=MessageIn(body="0")))
        for n in range(1, 12):
            await rt.add_message(ack.interaction, MessageIn(body=str(n)))
        ctx = await rt.context(ack.customer)
        assert [m.body for m in ctx.transcript] == [str(n) for n in range(12)]


@SQLITE_ONLY
@pytest.mark.anyio
async def test_a_closed_or_idle_conversation_is_not_joined(store_url: str) -> None:
    clock = ManualClock(T0)
    settings = RuntimeSettings(default_region="GB", conversation_idle_seconds=3600.0)
    async with running(store_url, clock, settings=settings) as rt:
        first = await rt.create_interaction(new("email", identities=[email("jo@example.com")]))
        await rt.close_conversation(first.conversation)
        second = await rt.create_interaction(new("email", identities=[email("jo@example.com")]))
        assert second.customer == first.customer
        assert second.conversation != first.conversation
        clock.advance(3601)
        third = await rt.create_interaction(new("chat", identities=[email("jo@example.com")]))
        assert third.conversation not in (first.conversation, second.conversation)
        with pytest.raises(InvalidInputError, match=r"^conversation: .*closed"):
            await rt.create_interaction(
                new(identities=[email("jo@example.com")], conversation=second.conversation)
            )
        ctx = await rt.context(first.customer)
        assert ctx.open_conversation is not None
        assert ctx.open_conversation.id == third.conversation
        assert [e.interaction.conversation_id for e in ctx.timeline] == [
            third.conversation,
            second.conversation,
            first.conversation,
        ]
        assert ctx.transcript == []  # the open conversation has no message yet


# ----- 5. bad input never damages stored data -----


@pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)
@ASYNCIO_ONLY
@pytest.mark.anyio
async def test_bad_input_is_refused_naming_the_field_and_stores_nothing(store_url: str) -> None:
    clock = ManualClock(T0)
    settings = RuntimeSettings(default_region="GB", max_message_bytes=64)
    async with running(store_url, clock, settings=settings) as rt:
        ok = await rt.create_interaction(new(identities=[email("jo@example.com")]))
        rows = counts(rt)
        seq = rt.last_event_seq
        task_count = rt.engine.task_count
        cases: list[tuple[NewInteraction, type[OmnirouteError], str]] = [
            (new("fax"), InvalidInputError, r"^channel: unknown channel 'fax'"),
            (new(queue="nope"), InvalidInputError, r"^queue: unknown queue 'nope'"),
            (new(identities=[phone("12")]), InvalidInputError, r"^identities\[0\]: "),
            (
                new(identities=[email("jo@example.com"), phone("020 7946 095")]),
                InvalidInputError,
                r"^identities\[1\]: .*not a valid phone number",
            ),
            (
                new(identities=[IdentityIn(kind="sms", value="+447700900123")]),
                InvalidInputError,
                r"^identities\[0\]",
            ),
            (new(identities=[email("not an address")]), InvalidInputError, r"^identities\[0\]: "),
            (new(message=MessageIn(body="x" * 65)), InvalidInputError, r"^message\.body: 65 bytes"),
            (new(message=MessageIn(body="é" * 33)), InvalidInputError, r"^message\.body: 66 bytes"),
            (new(attributes={"score": float("nan")}), InvalidInputError, r"^attributes\.score: "),
            (new(customer="no-such-customer"), UnknownIdError, r"^customer: "),
            # PostgreSQL's text takes no NUL character: refused alike on both stores.
            (new(message=MessageIn(body="a\x00b")), InvalidInputError, r"^message\.body: .*NUL"),
            (new(id="id\x00"), InvalidInputError, r"^id: .*NUL"),
            (new(identities=[email("jo@example.com")], subject="\x00"), InvalidInputError, r"^subject: "),
            (new(attributes={"note": "a\x00"}), InvalidInputError, r"^attributes\.note: .*NUL"),
            (new(attributes={"k\x00": 1}), InvalidInputError, r"^attributes \(the key 'k\\x00'\): "),
            (
                new(
                    message=MessageIn(
                        body="ok",
                        attachments=[
                            AttachmentIn(
                                filename="a\x00.pdf",
                                content_type="application/pdf",
                                size=1,
                                sha256="0" * 64,
                                location="file:///tmp/a.pdf",
                            )
                        ],
                    )
                ),
                InvalidInputError,
                r"^message\.attachments\[0\]\.filename: .*NUL",
            ),
        ]
        for request, error, pattern in cases:
            with pytest.raises(error, match=pattern):
                await rt.create_interaction(request)
        with pytest.raises(InvalidInputError, match=r"^message\.body: "):
            await rt.add_message(ok.interaction, MessageIn(body="y" * 100))
        with pytest.raises(InvalidInputError, match=r"^message\.author: "):
            await rt.add_message(ok.interaction, MessageIn(body="hello", direction="outbound"))
        with pytest.raises(UnknownIdError, match=r"^interaction: "):
            await rt.add_message("no-such-interaction", MessageIn(body="hello"))
        with pytest.raises(InvalidInputError, match=r"^body: "):
            await rt.add_note("   ", author="ann", customer=ok.customer)
        with pytest.raises(InvalidInputError, match=r"^customer: "):
            await rt.add_note("a note about nobody", author="ann")
        with pytest.raises(InvalidInputError, match=r"^body: .*NUL"):
            await rt.add_note("a\x00", author="ann", customer=ok.customer)
        with pytest.raises(InvalidInputError, match=r"^customer: .*NUL"):
            await rt.add_note("a note", author="ann", customer="c\x00")
        with pytest.raises(InvalidInputError, match=r"^message\.author: .*NUL"):
            await rt.add_message(ok.interaction, MessageIn(body="hi", direction="outbound", author="a\x00"))
        with pytest.raises(InvalidInputError, match=r"identity"):
            await rt.find_customer("fax", "123")
        # Out of the engine's range: refused whole (see the xfail below for its message).
        with pytest.raises(InvalidInputError):
            await rt.create_interaction(new(identities=[email("big@example.com")], priority=2**40))
        with pytest.raises(InvalidInputError):
            await rt.set_priority(ok.interaction, -(2**40))

        assert counts(rt) == rows
        assert rt.last_event_seq == seq
        assert [e.seq for e in await rt.events(seq)] == []
        assert rt.engine.task_count == task_count
        rt.check_invariants()
        # Still working.
        after = await rt.create_interaction(new(identities=[phone("+44 20 7946 0958")]))
        assert after.created
        assert rt.engine.task_count == task_count + 1


@pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)
@ASYNCIO_ONLY
@pytest.mark.anyio
async def test_a_create_refused_for_its_conversation_leaves_no_customer_behind(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        other = await rt.create_interaction(new(identities=[email("someone@example.com")]))
        rows = counts(rt)
        seq = rt.last_event_seq
        with pytest.raises(UnknownIdError, match=r"^conversation: "):
            await rt.create_interaction(new(identities=[email("new@example.com")], conversation="nope"))
        with pytest.raises(InvalidInputError, match=r"^conversation: .*another customer"):
            await rt.create_interaction(
                new(identities=[email("new2@example.com")], conversation=other.conversation)
            )
        assert await rt.find_customer("email", "new@example.com") is None
        assert counts(rt) == rows
        assert await rt.events(seq) == []


def too_deep(levels: int = 20) -> Not:
    """A requirement the engine refuses (nested deeper than it evaluates) and Python lets through."""
    condition: Not = Not(condition=Skill(skill="en", min_level=1))
    for _ in range(levels):
        condition = Not(condition=condition)
    return condition


@pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)
@ASYNCIO_ONLY
@pytest.mark.anyio
async def test_a_create_the_engine_refuses_leaves_nothing_behind(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        rows = counts(rt)
        seq = rt.last_event_seq
        with pytest.raises(InvalidInputError, match=r"requires.*deeper"):
            await rt.create_interaction(
                new(identities=[email("deep@example.com")], message=MessageIn(body="hi"), requires=too_deep())
            )
        assert await rt.find_customer("email", "deep@example.com") is None
        # The engine log keeps the refused input: replaying it refuses it again.
        assert counts(rt) == rows | {"engine_log": rows["engine_log"] + 1}
        assert await rt.events(seq) == []


@SQLITE_ONLY
@ASYNCIO_ONLY
@pytest.mark.anyio
async def test_a_new_customer_stands_with_any_call_of_the_batch_that_used_it(store_url: str) -> None:
    """Two contacts from one new customer in one batch: the first is refused
    by the engine, the second is not; the customer, its identity and its
    conversation are stored once, for the second, and a message about the
    refused one is refused with it."""
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        refused_request = new(id="refused", identities=[chat_id("v1")], requires=too_deep())
        refused, message, kept = await in_one_batch(
            rt,
            lambda: rt.create_interaction(refused_request),
            lambda: rt.add_message("refused", MessageIn(body="still there?")),
            lambda: rt.create_interaction(new(identities=[chat_id("v1")])),
        )
        assert isinstance(refused, InvalidInputError), refused
        assert isinstance(message, UnknownIdError), message
        assert isinstance(kept, Acknowledgement), kept
        found = await rt.find_customer("chat", "v1")
        assert found is not None
        assert found.id == kept.customer
        assert counts(rt) | {"events": 0, "engine_log": 0} == {
            **dict.fromkeys(TABLES, 0),
            "customers": 1,
            "identities": 1,
            "conversations": 1,
            "interactions": 1,
        }
        with pytest.raises(UnknownIdError):
            await rt.interaction("refused")


@SQLITE_ONLY
@ASYNCIO_ONLY
@pytest.mark.anyio
async def test_calls_the_engine_could_not_read_are_refused_before_they_are_queued(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        ack = await rt.create_interaction(new())
        seq = rt.last_event_seq
        refusals: list[tuple[Any, str]] = [
            (lambda: rt.set_priority(ack.interaction, 2**40), r"^priority: "),
            (lambda: rt.set_priority(ack.interaction, "high"), r"^priority: "),  # type: ignore[arg-type]
            (lambda: rt.accept(-1), r"^offer: "),
            (lambda: rt.accept("1"), r"^offer: "),  # type: ignore[arg-type]
            (lambda: rt.transfer(ack.interaction), r"^to_queue: .*exactly one"),
            (lambda: rt.transfer(ack.interaction, to_queue="sales", to_agent="ann"), r"^to_queue: "),
            (
                lambda: rt.set_agent_state("ann", AgentState(state="available", reason="x")),
                r"^state.reason: ",
            ),
            (lambda: rt.end_wrap_up(7), r"^agent: "),  # type: ignore[arg-type]
            (lambda: rt.complete(ack.interaction, resolved="yes"), r"^resolved: "),  # type: ignore[arg-type]
            (lambda: rt.cancel(ack.interaction, status="gone"), r"^status: "),  # type: ignore[arg-type]
            (lambda: rt.merge_customers(ack.customer, None), r"^merged: "),  # type: ignore[arg-type]
        ]
        for call, message in refusals:
            with pytest.raises(InvalidInputError, match=message):
                await call()
        assert await rt.events(seq) == []
        assert (await rt.interaction(ack.interaction)).status == "offered"


@pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)
@ASYNCIO_ONLY
@pytest.mark.anyio
async def test_a_refused_completion_stores_no_disposition_note_or_metric(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        ack = await rt.create_interaction(new())
        offer_for(rt, ack.interaction)  # offered, not yet accepted
        rows = counts(rt)
        seq = rt.last_event_seq
        with pytest.raises(InvalidTransitionError):
            await rt.complete(ack.interaction, disposition="sold", outcome="x", resolved=True, note="done")
        stored = await rt.interaction(ack.interaction)
        assert (stored.status, stored.disposition, stored.outcome) == ("offered", None, None)
        assert [e.type for e in await rt.events(seq)] == []
        assert counts(rt)["notes"] == rows["notes"]
        assert (await rt.metrics()).overall.since_start.dispositions == 0


@SQLITE_ONLY
@pytest.mark.anyio
async def test_a_malformed_call_fails_alone_naming_its_field(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        good, bad = await in_one_batch(
            rt, lambda: rt.create_interaction(new()), lambda: rt.create_interaction(new(priority=2**40))
        )
        assert isinstance(good, Acknowledgement), good
        assert isinstance(bad, InvalidInputError)
        assert str(bad).startswith("priority: ")


@SQLITE_ONLY
@pytest.mark.anyio
async def test_away_without_a_reason_fails_alone_or_is_accepted(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        created, away = await in_one_batch(
            rt,
            lambda: rt.create_interaction(new()),
            lambda: rt.set_agent_state("bob", AgentState(state="away")),
        )
        assert isinstance(created, Acknowledgement), created
        assert away is None or (isinstance(away, InvalidInputError) and "reason" in str(away)), away


# ----- calls stored together in one batch -----


@SQLITE_ONLY
@pytest.mark.anyio
async def test_a_message_revealing_an_identity_in_the_batch_that_creates_its_interaction(
    store_url: str,
) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        known = await rt.create_interaction(new("email", identities=[email("jo@example.com")]))
        created, message = await in_one_batch(
            rt,
            lambda: rt.create_interaction(new(id="chat-1", identities=[chat_id("v1")])),
            lambda: rt.add_message("chat-1", MessageIn(body="I'm jo@example.com")),
        )
        assert isinstance(created, Acknowledgement)
        assert isinstance(message, str), message
        assert (await rt.find_customer("chat", "v1")) == await rt.customer(known.customer)


@SQLITE_ONLY
@pytest.mark.anyio
async def test_a_new_customer_and_a_known_one_meeting_in_one_batch(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        known = await rt.create_interaction(new("voice", identities=[phone("+44 20 7946 0958")]))
        both = new("email", identities=[phone("02079460958"), email("n@example.com")])
        first, second = await in_one_batch(
            rt,
            lambda: rt.create_interaction(new("email", identities=[email("n@example.com")])),
            lambda: rt.create_interaction(both),
        )
        assert isinstance(first, Acknowledgement), first
        assert isinstance(second, Acknowledgement), second
        assert second.customer == known.customer
        assert (await rt.find_customer("email", "n@example.com")) == await rt.customer(known.customer)


# ----- 6. nothing lost across a restart -----


async def build_mixed_state(rt: Runtime, clock: ManualClock) -> dict[str, str]:
    """A call fills an agent: one call assigned, one offered, two waiting behind
    them (in ``sales``, which ages them), and a chat nobody serves; returns the
    interaction ids by name."""
    ids: dict[str, str] = {}
    ids["assigned"] = (
        await rt.create_interaction(new("voice", "support", identities=[email("a@x.com")]))
    ).interaction
    offer, _ = offer_for(rt, ids["assigned"])
    clock.advance(3)
    await rt.accept(offer)
    clock.advance(3)
    ids["offered"] = (await rt.create_interaction(new("voice", "sales", priority=5))).interaction
    offer_for(rt, ids["offered"])
    for name in ("waiting1", "waiting2"):
        clock.advance(3)
        ids[name] = (
            await rt.create_interaction(new("voice", "sales", message=MessageIn(body=name)))
        ).interaction
    clock.advance(3)
    ids["chat"] = (await rt.create_interaction(new("chat", "billing"))).interaction  # nobody serves billing
    clock.advance(2)
    await rt.add_note("call back", author="ann", interaction=ids["waiting1"])
    await rt.tick()
    return ids


async def state_of(rt: Runtime, ids: dict[str, str]) -> dict[str, Any]:
    stored = {name: await rt.interaction(iid) for name, iid in ids.items()}
    live = {name for name, i in stored.items() if i.status in ("waiting", "offered", "assigned")}
    return {
        "task_count": rt.engine.task_count,
        "waiting": rt.engine.waiting,
        "offers": rt.offers(),
        "interactions": stored,
        "explain": {name: rt.explain(iid) for name, iid in ids.items() if name in live},
        "roster": rt.engine.roster(),
        "counters": rt.engine.counters(),
        "config": rt.config,
        "since_start": (await rt.metrics()).overall.since_start,
        "last_event_seq": rt.last_event_seq,
    }


@pytest.mark.anyio
async def test_a_clean_restart_loses_nothing(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        ids = await build_mixed_state(rt, clock)
        before = await state_of(rt, ids)
        rows = counts(rt)
    assert before["task_count"] == 5
    assert before["waiting"] == 3
    assert len(before["offers"]) == 1
    statuses = {name: i.status for name, i in before["interactions"].items()}
    assert statuses == {
        "assigned": "assigned",
        "offered": "offered",
        "waiting1": "waiting",
        "waiting2": "waiting",
        "chat": "waiting",
    }

    async with running(store_url, clock, config=None) as rt:
        assert rt.recovered_batches == 0, "a clean shutdown leaves a snapshot at the end of the log"
        rt.check_invariants()
        after = await state_of(rt, ids)
        assert after == before
        assert counts(rt) == rows
        # Original enqueue times: the oldest unanswered call keeps its age.
        assert after["interactions"]["offered"].queued_at == T0 + 6
        assert after["interactions"]["waiting1"].queued_at == T0 + 9
        waiting = (await rt.metrics()).overall.waiting
        assert waiting is not None
        assert waiting.contacts == 4
        assert waiting.longest_wait == pytest.approx(clock.now() - (T0 + 6))
        # The restarted runtime carries on: the open offer is answerable ...
        ((offer, agent),) = ((o, a) for o, (t, a) in rt.offers().items() if t == ids["offered"])
        await rt.accept(offer, agent=agent)
        # ... waiting work keeps ageing from when it arrived ...
        aged = rt.explain(ids["waiting1"]).effective_priority
        clock.advance(100)
        await rt.tick()
        assert rt.explain(ids["waiting1"]).effective_priority == pytest.approx(aged + 100)
        # ... and the oldest waiting call goes to the next agent free.
        freed = after["interactions"]["assigned"].agent
        await rt.complete(ids["assigned"])
        await wrap_up(rt, clock)
        assert offer_for(rt, ids["waiting1"])[1] == freed
        assert (await rt.interaction(ids["waiting2"])).status == "waiting"
        events = await rt.events(before["last_event_seq"])
        assert [e.seq for e in events] == list(
            range(before["last_event_seq"] + 1, before["last_event_seq"] + 1 + len(events))
        )
        rt.check_invariants()


@pytest.mark.anyio
async def test_a_restart_without_a_final_snapshot_replays_the_log(store_url: str) -> None:
    clock = ManualClock(T0)
    rarely = RuntimeSettings(
        default_region="GB", snapshot_every_batches=1_000_000, snapshot_every_seconds=1e9
    )
    async with running(store_url, clock, settings=rarely) as rt:
        ids = await build_mixed_state(rt, clock)
        # Some history too: a timed-out offer, a completion with wrap-up, a cancel.
        clock.advance(30)
        await rt.tick()
        await rt.complete(ids["assigned"], disposition="done", resolved=True)
        await wrap_up(rt, clock)
        await rt.cancel(ids["chat"])
        await rt.set_agent_state("bob", AgentState(state="away", reason="break"))
        before = await state_of(rt, ids)
        batches = counts(rt)["engine_log"]
    assert batches > 10
    # The crash: only the snapshot of the empty store survives.
    run_sql(store_url, "DELETE FROM engine_snapshots WHERE log_seq > 0")

    async with running(store_url, clock, config=None, settings=rarely) as rt:
        assert rt.recovered_batches == batches
        rt.check_invariants()
        after = await state_of(rt, ids)
        assert after == before
    # Recovery took a snapshot: the next start replays nothing.
    async with running(store_url, clock, config=None, settings=rarely) as rt:
        assert rt.recovered_batches == 0
        assert await state_of(rt, ids) == before


# ----- 7. the event bus -----


@SQLITE_ONLY
@pytest.mark.anyio
async def test_a_slow_subscriber_never_holds_routing_back_and_catches_up_from_the_log(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        await rt.create_interaction(new())
        start = rt.last_event_seq
        slow = rt.subscribe(buffer=2, name="slow")
        skipping = rt.subscribe(buffer=2, catch_up=False)
        created = rt.subscribe(buffer=2, types=["interaction_created"])
        everything = rt.subscribe()

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for i in range(50):
                    tg.start_soon(
                        rt.create_interaction, new("email", identities=[email(f"c{i}@example.com")])
                    )
        end = rt.last_event_seq
        assert end - start > 50 * 4
        stats = {s.name: s for s in rt.bus.stats()}
        assert stats["slow"].lost > 0
        assert stats["slow"].buffered == 2
        assert stats["slow"].delivered == 0

        async def take(subscription: Subscription, n: int) -> list[Envelope]:
            got = []
            with anyio.fail_after(5):
                for _ in range(n):
                    got.append(await subscription.receive())
            return got

        got = await take(slow, end - start)
        assert [e.seq for e in got] == list(range(start + 1, end + 1)), "every event once, in order"
        assert got == await take(everything, end - start)
        assert got == await rt.events(start, limit=10_000)
        assert slow.stats().delivered == end - start

        only_created = await take(created, 50)
        assert all(e.type == "interaction_created" for e in only_created)
        assert [e.seq for e in only_created] == [e.seq for e in got if e.type == "interaction_created"]

        # Skipping the gap: the two buffered, then only what is live after the gap.
        first_two = await take(skipping, 2)
        assert [e.seq for e in first_two] == [start + 1, start + 2]
        assert skipping.stats().lost == end - start - 2
        live: list[Envelope] = []

        async def next_live() -> None:
            live.extend(await take(skipping, 1))

        async with anyio.create_task_group() as tg:
            tg.start_soon(next_live)
            await settle()
            last = await rt.create_interaction(new())
        assert live[0].seq == end + 1
        # The slow one reads live again, the filtered one sees only its type.
        assert [e.seq for e in await take(slow, 1)] == [end + 1]
        (again,) = await take(created, 1)
        assert isinstance(again.data, InteractionCreated)
        assert again.data.interaction.id == last.interaction

        # Subscribing from an earlier point replays the log.
        replay = rt.subscribe(after=start, types=["customer_created"])
        assert len(await take(replay, 50)) == 50
        with pytest.raises(ValueError, match=r"^buffer: "):
            rt.subscribe(buffer=0)
        with pytest.raises(ValueError, match=r"^after: "):
            rt.subscribe(after=rt.last_event_seq + 1)


@SQLITE_ONLY
@pytest.mark.anyio
async def test_every_change_is_an_event_with_increasing_seq_and_a_cloudevent(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        assert rt.last_event_seq == 0
        seen: list[Envelope] = []

        async def follow() -> None:
            with rt.subscribe() as subscription:
                async for envelope in subscription:
                    seen.append(envelope)

        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            await settle()
            ack = await rt.create_interaction(new("email", identities=[email("jo@example.com")]))
            offer, agent = offer_for(rt, ack.interaction)
            clock.advance(5)
            await rt.accept(offer)
            await rt.set_priority(ack.interaction, 3)
            await rt.complete(ack.interaction, outcome="ok")
            await wrap_up(rt, clock)
            await rt.close_conversation(ack.conversation)
            with anyio.fail_after(5):
                while not seen or seen[-1].seq < rt.last_event_seq:
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()

        logged = await rt.events()
        assert seen == logged
        assert [e.seq for e in logged] == list(range(1, len(logged) + 1))
        assert [e.time for e in logged] == sorted(e.time for e in logged)
        types = [e.type for e in logged]
        assert types[:4] == [
            "customer_created",
            "identity_added",
            "conversation_opened",
            "interaction_created",
        ]
        assert types[-1] == "conversation_closed"
        for expected in ("offer_made", "task_assigned", "task_completed", "interaction_updated"):
            assert expected in types
        assert {e.subject for e in logged if e.type in ("offer_made", "task_assigned")} == {ack.interaction}
        assert any(e.type == "agent_state_changed" and e.subject == agent for e in logged)

        for envelope in logged:
            event = to_cloudevent(envelope, source="urn:test")
            assert event["specversion"] == "1.0"
            assert event["id"] == str(envelope.seq)
            assert event["source"] == "urn:test"
            assert event["type"] == f"omniroute.{envelope.type}"
            assert event["subject"] == envelope.subject
            assert event["datacontenttype"] == "application/json"
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", event["time"]), event["time"]
            parsed = dt.datetime.fromisoformat(event["time"])
            assert parsed.tzinfo is not None
            assert parsed.timestamp() == pytest.approx(envelope.time)
            assert "type" not in event["data"]
            assert event["data"]["at"] == envelope.time
        offered = to_cloudevent(next(e for e in logged if e.type == "offer_made"))
        assert offered["data"]["task"] == ack.interaction
        assert offered["data"]["agent"] == agent
        assert offered["data"]["reason"]["trigger"] == "task_arrived"
        assert offered["time"].startswith("2023-11-14T22:13:20")


# ----- 8. live reconfiguration -----


@SQLITE_ONLY
@pytest.mark.anyio
async def test_a_new_agent_with_the_skill_gets_the_waiting_work(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        ack = await rt.create_interaction(new("chat", "support", requires=Skill(skill="de", min_level=2)))
        assert rt.offers() == {}
        verdicts = {v.agent: type(v).__name__ for v in rt.explain(ack.interaction).agents}
        assert verdicts == {"ann": "MissingSkill", "bob": "MissingSkill"}

        cat = AgentConfig(id="cat", queues={"support": 0}, skills={"de": 3})
        seq = rt.last_event_seq
        applied = await rt.apply_config(make_config(agents=[*CONFIG.agents, cat]))
        assert [a.id for a in applied.agents] == ["ann", "bob", "cat"]
        assert offer_for(rt, ack.interaction)[1] == "cat"
        types = [e.type for e in await rt.events(seq)]
        assert types[0] == "config_applied"
        assert "offer_made" in types

        # Skills change live too: bob learns German and is eligible.
        await rt.apply_config(
            make_config(
                agents=[CONFIG.agents[0], AgentConfig(id="bob", queues={"support": 0}, skills={"de": 2}), cat]
            )
        )
        verdicts = {v.agent: type(v).__name__ for v in rt.explain(ack.interaction).agents}
        assert verdicts["bob"] != "MissingSkill"
        rt.check_invariants()


@SQLITE_ONLY
@pytest.mark.anyio
async def test_a_configuration_that_drops_a_queue_or_is_invalid_is_refused(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        rows = counts(rt)
        seq = rt.last_event_seq
        without_billing = EngineConfig(
            channels=CONFIG.channels, queues=CONFIG.queues[:2], agents=CONFIG.agents
        )
        with pytest.raises(InvalidInputError, match=r"^config: .*'billing'"):
            await rt.apply_config(without_billing)
        without_voice = EngineConfig(channels=CONFIG.channels[1:], queues=CONFIG.queues, agents=CONFIG.agents)
        with pytest.raises(InvalidInputError, match=r"^config: .*'voice'"):
            await rt.apply_config(without_voice)
        with pytest.raises(OmnirouteError):
            await rt.apply_config(make_config(agents=[AgentConfig(id="ann", queues={"nowhere": 0})]))
        assert counts(rt) == rows
        assert rt.last_event_seq == seq
        assert rt.config == CONFIG
        assert agent_states(rt).keys() == {"ann", "bob"}


@SQLITE_ONLY
@pytest.mark.anyio
async def test_a_configuration_the_engine_refuses_changes_nothing(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        ack = await rt.create_interaction(new())
        _, holder = offer_for(rt, ack.interaction)
        keep = [a for a in CONFIG.agents if a.id != holder]
        seq = rt.last_event_seq
        with pytest.raises(InvalidTransitionError, match="holds 1 task"):
            await rt.apply_config(make_config(agents=[*keep, AgentConfig(id="cat", queues={"support": 0})]))
        assert agent_states(rt).keys() == {"ann", "bob"}
        assert await rt.events(seq) == []


@SQLITE_ONLY
@pytest.mark.anyio
async def test_an_applied_configuration_is_the_runtime_s_and_survives_a_restart(store_url: str) -> None:
    clock = ManualClock(T0)
    extra = AgentConfig(id="cat", queues={"support": 0, "vip": 0})
    bigger = EngineConfig(
        channels=CONFIG.channels,
        queues=[*CONFIG.queues, QueueConfig(name="vip")],
        agents=[*CONFIG.agents, extra],
    )
    async with running(store_url, clock) as rt:
        await rt.apply_config(bigger)
        assert rt.config == bigger
        ack = await rt.create_interaction(new("chat", "vip"))
        assert offer_for(rt, ack.interaction)[1] == "cat"
        # Removing the agent again is seen as a removal.
        await rt.cancel(ack.interaction)
        await rt.apply_config(
            EngineConfig(channels=bigger.channels, queues=bigger.queues, agents=CONFIG.agents)
        )
        assert "cat" not in agent_states(rt)
    async with running(store_url, clock, config=None) as rt:
        assert [q.name for q in rt.config.queues] == ["support", "sales", "billing", "vip"]
        assert [a.id for a in rt.config.agents] == ["ann", "bob"]


# ----- 9. shutdown -----


@SQLITE_ONLY
@pytest.mark.anyio
async def test_after_shutdown_every_change_is_refused_and_nothing_is_left_running(store_url: str) -> None:
    clock = ManualClock(T0)
    ended = anyio.Event()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as outer:
            async with running(store_url, clock) as rt:
                ack = await rt.create_interaction(new())
                offer, _ = offer_for(rt, ack.interaction)
                subscription = rt.subscribe()

                async def follow() -> None:
                    async for _ in subscription:
                        pass
                    ended.set()

                outer.start_soon(follow)
            # The subscription ended with the runtime.
            with anyio.fail_after(2):
                await ended.wait()

    calls: list[Any] = [
        lambda: rt.create_interaction(new()),
        lambda: rt.add_message(ack.interaction, MessageIn(body="hello?")),
        lambda: rt.add_note("late", author="ann", customer=ack.customer),
        lambda: rt.accept(offer),
        lambda: rt.reject(offer),
        lambda: rt.complete(ack.interaction),
        lambda: rt.cancel(ack.interaction),
        lambda: rt.transfer(ack.interaction, to_queue="sales"),
        lambda: rt.end_wrap_up("ann"),
        lambda: rt.set_agent_state("ann", AgentState(state="away", reason="x")),
        lambda: rt.set_priority(ack.interaction, 1),
        lambda: rt.merge_customers(ack.customer, ack.customer),
        lambda: rt.undo_merge("m"),
        lambda: rt.close_conversation(ack.conversation),
        lambda: rt.apply_config(CONFIG),
        rt.tick,
    ]
    for call in calls:
        with pytest.raises(RuntimeClosedError):
            await call()
    # Nothing of those calls was stored.
    with open_store(store_url) as store, store.read() as r:
        assert r.interaction(ack.interaction).status == "offered"
        assert r.count("interactions") == 1
        assert r.count("notes") == 0
        assert r.count("messages") == 0


@SQLITE_ONLY
@pytest.mark.anyio
async def test_after_shutdown_reads_and_subscriptions_say_the_runtime_is_closed(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        ack = await rt.create_interaction(new())
    failures = []
    reads: list[Any] = [
        lambda: rt.interaction(ack.interaction),
        lambda: rt.customer(ack.customer),
        lambda: rt.context(ack.customer),
        lambda: rt.find_customer("chat", "x"),
        lambda: rt.events(),
        rt.metrics,
    ]
    for read in reads:
        try:
            await read()
        except RuntimeClosedError:
            continue
        except Exception as e:
            failures.append(f"{e!r}")
        else:
            failures.append("answered")
    try:
        subscription = rt.subscribe()
    except RuntimeClosedError:
        pass
    else:
        with anyio.move_on_after(0.5) as waited:
            async for _ in subscription:
                pass
        if waited.cancelled_caught:
            failures.append("subscribe() after shutdown never ends")
    assert failures == []


@SQLITE_ONLY
@pytest.mark.anyio
async def test_shutting_down_under_load_finishes_every_call_taken(store_url: str) -> None:
    clock = ManualClock(T0)
    done: dict[int, int] = {}

    async def caller(rt: Runtime, n: int) -> None:
        made = 0
        try:
            while True:
                await rt.create_interaction(new("email", identities=[email(f"c{n}-{made}@example.com")]))
                made += 1
        except RuntimeClosedError:
            done[n] = made

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg, running(store_url, clock) as rt:
            for n in range(8):
                tg.start_soon(caller, rt, n)
            while rt.last_event_seq < 200:
                await anyio.sleep(0.01)
    assert len(done) == 8
    assert sum(done.values()) > 0
    with open_store(store_url) as store, store.read() as r:
        assert r.count("interactions") == sum(done.values()), "every acknowledged call is stored, no more"
        assert r.count("customers") == sum(done.values())
    async with running(store_url, clock, config=None) as rt:
        assert rt.engine.task_count == sum(done.values())
        rt.check_invariants()


@SQLITE_ONLY
@pytest.mark.anyio
async def test_a_runtime_that_cannot_start_says_why(store_url: str) -> None:
    with pytest.raises(StoreError, match=r"no configuration"):
        async with running(store_url, ManualClock(T0), config=None):
            pass  # pragma: no cover
    async with running(store_url, ManualClock(T0)):
        with pytest.raises(StoreError, match=r"another runtime"):
            async with running(store_url, ManualClock(T0)):
                pass  # pragma: no cover


@SQLITE_ONLY
@pytest.mark.anyio
async def test_a_skipping_subscriber_loses_only_what_did_not_fit(store_url: str) -> None:
    clock = ManualClock(T0)
    async with running(store_url, clock) as rt:
        skipping = rt.subscribe(buffer=2, catch_up=False)
        for _ in range(3):
            await rt.create_interaction(new("email"))
        assert [(await skipping.receive()).seq for _ in range(2)] == [1, 2]
        # The buffer is empty again: what is published now fits and is delivered.
        seq = rt.last_event_seq
        await rt.create_interaction(new("email"))
        with anyio.fail_after(0.5):
            assert (await skipping.receive()).seq == seq + 1


@pytest.mark.anyio
async def test_the_bus_hands_each_subscriber_what_it_wants_once_in_order_whatever_the_batches() -> None:
    """Batches of mixed types published to small buffers, read a little at a
    time: a catching-up subscriber gets every event it wants once and in
    order (the overflow from the log); a skipping one gets an ordered part
    of them and counts the rest as lost."""
    rng = random.Random(7)
    log: list[Envelope] = []

    async def read_log(after: int, limit: int) -> list[Envelope]:
        return [e for e in log if e.seq > after][:limit]

    bus = EventBus(read_log)
    plans: list[tuple[int, frozenset[str] | None, bool]] = [
        (3, frozenset({"agent_load"}), True),
        (2, None, False),
        (5, frozenset({"agent_load", "task_completed"}), True),
        (4, frozenset({"task_completed"}), False),
        (1000, None, True),
    ]
    subs = [bus.subscribe(buffer=b, types=t, catch_up=c) for b, t, c in plans]
    got: list[list[int]] = [[] for _ in subs]
    kinds = ["agent_load", "task_queued", "task_completed"]

    async def drain(i: int, most: int) -> None:
        sub, types = subs[i], plans[i][1]
        for _ in range(most):
            # Only what is there to read: in the buffer, or (once behind) in the log.
            behind = sub._behind and any(
                e.seq > sub.last_seq and (types is None or e.type in types) for e in log
            )
            if not sub._buffer and not behind:
                return
            got[i].append((await sub.receive()).seq)

    with anyio.fail_after(10):
        for _ in range(60):
            batch = []
            for _ in range(rng.randrange(0, 8)):
                seq = len(log) + 1
                kind = rng.choice(kinds)
                data = AgentLoad(at=float(seq), agent="a", used=0, capacity=1, tasks=0)
                envelope = Envelope(seq=seq, type=kind, time=float(seq), subject="a", data=data)
                log.append(envelope)
                batch.append(envelope)
            bus.publish(batch)
            for i in range(len(subs)):
                await drain(i, rng.randrange(0, 4))
        for i in range(len(subs)):
            await drain(i, len(log) + 1)

    for (_, types, catch_up), sub, seqs in zip(plans, subs, got, strict=True):
        wanted = [e.seq for e in log if types is None or e.type in types]
        if catch_up:
            assert seqs == wanted
        else:
            assert seqs == sorted(set(seqs))
            assert set(seqs) <= set(wanted)
            assert sub.stats().delivered + sub.stats().lost == len(wanted)
        assert sub.stats().buffered == 0
    assert subs[0].stats().lost > 0, "the small buffers overflowed"
    assert subs[1].stats().lost > 0, "the small buffers overflowed"


@SQLITE_ONLY
@pytest.mark.anyio
async def test_the_timer_loop_wakes_for_a_timer_sooner_than_the_one_it_sleeps_for(store_url: str) -> None:
    """No tick is called here: the runtime's own timer loop ends the offers.
    It sleeps until the soonest timer; a later batch that sets a sooner one
    wakes it, and batches that only set later ones leave it sleeping."""
    clock = ManualClock(T0)
    config = EngineConfig(
        channels=[ChannelConfig(name="chat", cost=20)],
        queues=[QueueConfig(name="slow", offer_timeout=60.0), QueueConfig(name="fast", offer_timeout=5.0)],
        agents=[AgentConfig(id="ann", queues={"slow": 0, "fast": 0})],
    )
    async with running(store_url, clock, config) as rt:
        with rt.subscribe(types=["offer_timed_out"]) as timed_out:
            slow = await rt.create_interaction(new("chat", "slow"))
            await settle()
            clock.advance(1)
            later = await rt.create_interaction(new("chat", "slow"))
            await settle()
            fast = await rt.create_interaction(new("chat", "fast"))
            await settle()
            clock.advance(5)
            with anyio.fail_after(5):
                first = await timed_out.receive()
            assert first.subject == fast.interaction, "the sooner timer, set last, fell due first"
            clock.advance(55)
            with anyio.fail_after(5):
                assert (await timed_out.receive()).subject == slow.interaction
            clock.advance(1)
            with anyio.fail_after(5):
                assert (await timed_out.receive()).subject == later.interaction
