"""The Python face of the engine: batches, typed results, errors, snapshots."""

from __future__ import annotations

import pytest

import omniroute as o
from conftest import task


def test_a_chat_is_offered_accepted_and_completed(engine: o.Engine) -> None:
    result = engine.process([task("c1", requires=o.parse_condition("en>=4"))], now=1.0)
    assert result.errors == []
    (offer,) = result.offers
    assert (offer.task, offer.agent, offer.channel) == ("c1", "ann", "chat")
    assert offer.expires_at == 31.0
    assert offer.reason.trigger == "task_arrived"
    assert offer.reason.requirement == "en>=4"

    assigned = engine.process([o.Accept(offer=offer.offer)], now=4.0)
    (done,) = [e for e in assigned.events if isinstance(e, o.TaskAssigned)]
    assert done.wait == 3.0

    completed = engine.process([o.Complete(task="c1")], now=60.0)
    assert any(isinstance(e, o.TaskCompleted) and e.agent == "ann" for e in completed.events)
    assert engine.task_count == 0
    engine.check_invariants()


def test_refused_events_are_reported_and_the_rest_apply(engine: o.Engine) -> None:
    result = engine.process(
        [
            task("c1"),
            task("c1"),  # duplicate id
            task("c2", queue="nowhere"),
            o.Accept(offer=999),
            o.Cancel(task="c1"),
        ],
        now=1.0,
    )
    assert [(e.index, e.kind) for e in result.errors] == [
        (1, "duplicate_id"),
        (2, "unknown_id"),
        (3, "unknown_id"),
    ]
    assert "nowhere" in result.errors[1].message
    assert "support" in result.errors[1].message  # the known queues are named
    assert any(isinstance(e, o.TaskCancelled) for e in result.events)
    engine.check_invariants()


def test_apply_raises_the_error_of_its_kind(engine: o.Engine) -> None:
    (offer,) = [e for e in engine.apply(task("c1"), now=1.0) if isinstance(e, o.OfferMade)]
    engine.apply(o.Reject(offer=offer.offer), now=2.0)
    with pytest.raises(o.InvalidTransitionError, match="no longer pending"):
        engine.apply(o.Accept(offer=offer.offer), now=3.0)
    with pytest.raises(o.UnknownIdError, match="ghost"):
        engine.apply(o.Complete(task="ghost"), now=3.0)
    with pytest.raises(o.InvalidTransitionError, match="not assigned"):
        engine.apply(o.Complete(task="c1"), now=3.0)
    assert isinstance(o.InvalidTransitionError("x"), o.OmnirouteError)


def test_time_cannot_go_backwards(engine: o.Engine) -> None:
    engine.tick(10.0)
    with pytest.raises(o.InvalidInputError, match="time went backwards"):
        engine.process([task("c1")], now=5.0)
    with pytest.raises(o.InvalidInputError, match="finite"):
        engine.tick(float("nan"))
    assert engine.now == 10.0
    assert engine.task_count == 0


def test_a_malformed_event_names_its_position(engine: o.Engine) -> None:
    bad = o.SetAgentState(agent="ann", state=o.AgentState(state="wrap_up"))  # type: ignore[arg-type]
    with pytest.raises(o.InvalidInputError, match=r"events\[1\] \(SetAgentState\)"):
        engine.process([task("c1"), bad], now=1.0)
    assert engine.task_count == 0  # nothing of the batch was applied


def test_offer_timeout_excludes_the_agent_and_counts_a_miss(engine: o.Engine) -> None:
    first = engine.process([task("c1", requires=o.parse_condition("en>=4"))], now=0.0)
    assert first.offers[0].agent == "ann"
    later = engine.tick(31.0)
    timed_out = [e for e in later.events if isinstance(e, o.OfferTimedOut)]
    assert [(e.task, e.agent, e.at) for e in timed_out] == [("c1", "ann", 30.0)]
    verdicts = {v.agent: v for v in engine.explain("c1").agents}
    assert isinstance(verdicts["ann"], o.DeclinedBefore)
    assert isinstance(verdicts["bob"], o.MissingSkill)
    assert verdicts["bob"] == o.MissingSkill(agent="bob", skill="en", required=4, has=3)


def test_explain_says_why_each_agent_was_not_offered(engine: o.Engine) -> None:
    engine.process(
        [
            o.SetAgentState(agent="bob", state=o.AgentState(state="away", reason="lunch")),
            task("s1", queue="sales", channel="voice"),
            task("s2", queue="sales", channel="voice"),
        ],
        now=0.0,
    )
    why = engine.explain("s2")
    assert why.phase == "waiting"
    verdicts = {v.agent: v for v in why.agents}
    assert verdicts["bob"] == o.NotServingQueue(agent="bob")
    assert verdicts["ann"] == o.NoCapacity(agent="ann", needed=60, free=0)


def test_snapshot_restores_an_engine_that_behaves_the_same(engine: o.Engine) -> None:
    engine.process([task(f"c{i}", channel="chat") for i in range(8)], now=1.0)
    copy = o.Engine.restore(engine.snapshot())
    copy.check_invariants()
    batch: list[o.Input] = [o.Complete(task="c0"), task("late"), o.Cancel(task="c7")]
    first = engine.process(batch, now=5.0)
    second = copy.process(batch, now=5.0)
    assert first == second
    assert engine.snapshot() == copy.snapshot()
    with pytest.raises(o.SnapshotError):
        o.Engine.restore(b"not a snapshot")


def test_counters_count_decisions(engine: o.Engine) -> None:
    engine.process([task("c1"), task("c2"), o.Cancel(task="nobody")], now=1.0)
    c = engine.counters()
    assert (c.offers, c.arrivals, c.inputs, c.refused) == (2, 2, 3, 1)


def test_wrap_up_after_a_sales_call(engine: o.Engine) -> None:
    (offer,) = engine.process([task("s1", queue="sales", channel="voice")], now=0.0).offers
    engine.process([o.Accept(offer=offer.offer)], now=1.0)
    done = engine.process([o.Complete(task="s1"), task("s2", queue="sales", channel="voice")], now=100.0)
    states = [e.status.state for e in done.events if isinstance(e, o.AgentStateChanged)]
    assert states == ["wrap_up"]
    assert done.offers == []
    after = engine.tick(110.0)
    assert [e.status.state for e in after.events if isinstance(e, o.AgentStateChanged)] == ["available"]
    assert [x.task for x in after.offers] == ["s2"]
