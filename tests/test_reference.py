"""The Rust engine against the pure-Python reference model: same inputs, same results."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniroute import (
    Accept,
    AddCondition,
    AddQueue,
    AddTask,
    AgentConfig,
    AgentState,
    AgentStateChanged,
    AllOf,
    AnyOf,
    BatchResult,
    Cancel,
    ChannelConfig,
    Complete,
    Condition,
    DropCondition,
    EndWrapUp,
    Engine,
    EngineConfig,
    External,
    FewestHandled,
    Input,
    LeastOccupied,
    LongestIdle,
    LowerLevel,
    MostSkilled,
    NewTask,
    Not,
    OfferMade,
    OfferRejected,
    OfferRescinded,
    OfferTimedOut,
    QueueConfig,
    Reject,
    RoundRobin,
    SetAgentState,
    SetPriority,
    Skill,
    Step,
    StepAction,
    StepReached,
    Strategy,
    TaskAssigned,
    TaskCompleted,
    TaskTransferred,
    Transfer,
    UpsertAgent,
)
from omniroute.reference import ReferenceEngine

SKILLS = ["en", "es", "billing", "vip"]
# Times move in steps that binary floating point represents exactly, and aging
# rates are powers of two, so that both engines compute identical priorities.
TIME_STEPS = [0.0, 0.0, 0.5, 1.0, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0]
AGING = [0.0, 0.5, 1.0, 2.0]


# ----- generators -----

conditions: st.SearchStrategy[Condition] = st.recursive(
    st.builds(Skill, skill=st.sampled_from(SKILLS), min_level=st.integers(0, 4)),
    lambda inner: st.one_of(
        st.builds(AllOf, of=st.lists(inner, max_size=3)),
        st.builds(AnyOf, of=st.lists(inner, max_size=3)),
        st.builds(Not, condition=inner),
    ),
    max_leaves=4,
)

# Requirements as routing uses them: mostly plain skills and levels.
requirements: st.SearchStrategy[Condition | None] = st.one_of(
    st.none(),
    st.builds(Skill, skill=st.sampled_from(SKILLS), min_level=st.integers(1, 4)),
    st.builds(
        AllOf,
        of=st.lists(
            st.builds(Skill, skill=st.sampled_from(SKILLS), min_level=st.integers(1, 4)),
            min_size=2,
            max_size=2,
        ),
    ),
    conditions,
)

STRATEGIES: list[Strategy] = [LongestIdle(), LeastOccupied(), MostSkilled(), FewestHandled(), RoundRobin()]


@st.composite
def channel_configs(draw: st.DrawFn, i: int) -> ChannelConfig:
    return ChannelConfig(
        name=f"c{i}",
        cost=draw(st.sampled_from([10, 20, 30, 60])),
        max_per_agent=draw(st.sampled_from([None, None, 1, 2, 3])),
        interruptible=draw(st.booleans()),
    )


@st.composite
def step_lists(draw: st.DrawFn, queue: str, queues: list[str]) -> list[Step]:
    steps = []
    after = 0.0
    others = [q for q in queues if q != queue]
    for _ in range(draw(st.integers(0, 3))):
        after += draw(st.sampled_from([0.0, 1.0, 2.0, 5.0, 10.0]))
        action: StepAction = draw(
            st.one_of(
                st.builds(DropCondition, skill=st.sampled_from(SKILLS)),
                st.builds(LowerLevel, skill=st.sampled_from(SKILLS), min_level=st.integers(1, 3)),
                st.builds(AddQueue, queue=st.sampled_from(others)),
                st.builds(AddCondition, condition=conditions),
            )
        )
        steps.append(Step(after_seconds=after, action=action))
    return steps


@st.composite
def engine_configs(draw: st.DrawFn) -> EngineConfig:
    channels = [draw(channel_configs(i)) for i in range(draw(st.integers(1, 3)))]
    names = [f"q{i}" for i in range(draw(st.integers(2, 4)))]
    strategies = st.sampled_from([*STRATEGIES, LongestIdle(per_channel=True)])
    queues = [
        QueueConfig(
            name=name,
            strategy=draw(strategies),
            aging_per_second=draw(st.sampled_from(AGING)),
            offer_timeout=draw(st.sampled_from([5.0, 30.0, 60.0])),
            wrap_up=draw(st.sampled_from([None, 0.0, 3.0, 30.0])),
            steps=draw(step_lists(name, names)),
        )
        for name in names
    ]
    agents = [
        AgentConfig(
            id=f"a{i}",
            capacity=draw(st.sampled_from([20, 30, 60, 100, 120])),
            skills=draw(st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5), max_size=3)),
            queues=draw(st.dictionaries(st.sampled_from(names), st.integers(-1, 2), min_size=1, max_size=3)),
            available=draw(st.sampled_from([True, True, True, False])),
        )
        for i in range(draw(st.integers(2, 8)))
    ]
    return EngineConfig(
        channels=channels, queues=queues, agents=agents, max_missed_offers=draw(st.integers(0, 3))
    )


class Scenario:
    """What the generator knows of the run so far, from the events it saw: ids to refer to."""

    def __init__(self, config: EngineConfig) -> None:
        self.agents = [a.id for a in config.agents]
        self.queues = [q.name for q in config.queues]
        self.channels = [c.name for c in config.channels]
        self.now = 0.0
        self.fresh = itertools.count()
        self.tasks: list[str] = []
        self.offers: list[int] = []
        # Offers pending and tasks assigned, as far as the events tell.
        self.pending: dict[int, str] = {}
        self.assigned: list[str] = []
        self.wrapping: list[str] = []

    def observe(self, result: BatchResult) -> None:
        for e in result.events:
            if isinstance(e, OfferMade):
                self.offers.append(e.offer)
                self.pending[e.offer] = e.task
            elif isinstance(e, OfferRejected | OfferTimedOut | OfferRescinded):
                self.pending.pop(e.offer, None)
            elif isinstance(e, TaskAssigned):
                self.pending = {o: t for o, t in self.pending.items() if t != e.task}
                self.assigned.append(e.task)
            elif isinstance(e, TaskCompleted | TaskTransferred) and e.task in self.assigned:
                self.assigned.remove(e.task)
            elif isinstance(e, AgentStateChanged):
                if e.status.state == "wrap_up":
                    self.wrapping.append(e.agent)
                elif e.agent in self.wrapping:
                    self.wrapping.remove(e.agent)


@st.composite
def inputs(draw: st.DrawFn, sc: Scenario) -> Input:
    """One input event: mostly one that applies (an offer still pending, a task
    still assigned), sometimes one that the engine must refuse."""

    def any_task() -> str:
        return draw(st.sampled_from(sc.tasks)) if sc.tasks else "nobody"

    def usually() -> bool:
        return draw(st.sampled_from([True, True, True, True, False]))

    def an_offer() -> int:
        if usually() and sc.pending:
            offer = draw(st.sampled_from(sorted(sc.pending)))
            del sc.pending[offer]  # answered once in this batch
            return offer
        return draw(st.sampled_from(sc.offers)) if sc.offers else 1

    def an_assigned_task() -> str:
        if usually() and sc.assigned:
            task = draw(st.sampled_from(sc.assigned))
            sc.assigned.remove(task)
            return task
        return any_task()

    def an_agent() -> str:
        return draw(st.sampled_from(sc.agents))

    def some_agents() -> list[str]:
        return [] if usually() else draw(st.lists(st.sampled_from(sc.agents), max_size=2))

    def add_task() -> Input:
        # A fresh id, or now and then one used before: a duplicate while that
        # task lives, a new task once it is gone.
        task_id = f"t{next(sc.fresh)}" if usually() or not sc.tasks else any_task()
        sc.tasks.append(task_id)
        preferred = some_agents()
        until = sc.now + draw(st.sampled_from([-1.0, 0.0, 2.0, 5.0, 20.0])) if preferred else None
        enqueued_at = None if draw(st.booleans()) else sc.now - draw(st.sampled_from([0.0, 1.0, 5.0]))
        return AddTask(
            task=NewTask(
                id=task_id,
                channel=draw(st.sampled_from(sc.channels)),
                queue=draw(st.sampled_from(sc.queues)),
                priority=draw(st.integers(-1, 3)),
                requires=draw(requirements),
                preferred_agents=preferred,
                preferred_until=until,
                excluded_agents=some_agents(),
                enqueued_at=enqueued_at,
            )
        )

    def transfer() -> Input:
        task = an_assigned_task() if draw(st.booleans()) else any_task()
        to = draw(st.sampled_from(["queue", "queue", "agent", "agent", "neither"]))
        if to == "queue":
            return Transfer(task=task, to_queue=draw(st.sampled_from(sc.queues)))
        return Transfer(task=task, to_agent=an_agent()) if to == "agent" else Transfer(task=task)

    def end_wrap_up() -> Input:
        return EndWrapUp(
            agent=draw(st.sampled_from(sc.wrapping)) if usually() and sc.wrapping else an_agent()
        )

    def set_state() -> Input:
        return SetAgentState(agent=an_agent(), state=draw(st.sampled_from(STATES)))

    # Answers and completions mostly when something waits for them.
    kinds: list[tuple[int, Callable[[], Input]]] = [
        (6, add_task),
        (6 if sc.pending else 1, lambda: Accept(offer=an_offer())),
        (2 if sc.pending else 1, lambda: Reject(offer=an_offer())),
        (6 if sc.assigned else 1, lambda: Complete(task=an_assigned_task())),
        (1, lambda: Cancel(task=any_task())),
        (2 if sc.wrapping else 1, end_wrap_up),
        (2, set_state),
        (1, transfer),
        (1, lambda: SetPriority(task=any_task(), priority=draw(st.integers(-1, 5)))),
    ]
    return draw(st.sampled_from([make for weight, make in kinds for _ in range(weight)]))()


STATES = [
    AgentState(state="available"),
    AgentState(state="available"),
    AgentState(state="offline"),
    AgentState(state="away", reason="break"),
    AgentState(state="away", reason="lunch"),
]


# ----- comparison -----


def assert_same(batch: list[Input], rust: BatchResult, ref: BatchResult) -> None:
    """Same events in the same order, the same refusals (by position and kind)."""
    assert rust.now == ref.now
    for i, (r, m) in enumerate(zip(rust.events, ref.events, strict=False)):
        assert r == m, f"event {i} differs for batch {batch}:\n engine:    {r}\n reference: {m}"
    n = min(len(rust.events), len(ref.events))
    assert len(rust.events) == len(ref.events), (
        f"batch {batch}:\n engine:    {rust.events[n:]}\n reference: {ref.events[n:]}"
    )
    assert [(e.index, e.kind) for e in rust.errors] == [(e.index, e.kind) for e in ref.errors], (
        f"batch {batch}:\n engine:    {rust.errors}\n reference: {ref.errors}"
    )


# OMNIROUTE_REFERENCE_EXAMPLES=5000 searches deeper than the suite does.
@settings(
    max_examples=int(os.environ.get("OMNIROUTE_REFERENCE_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(config=engine_configs(), data=st.data())
def test_engine_matches_the_reference(config: EngineConfig, data: st.DataObject) -> None:
    engine = Engine(config)
    model = ReferenceEngine(config)
    sc = Scenario(config)
    for _ in range(data.draw(st.integers(5, 25), label="batches")):
        sc.now += data.draw(st.sampled_from(TIME_STEPS), label="advance")
        batch = [data.draw(inputs(sc), label="input") for _ in range(data.draw(st.integers(0, 5)))]
        rust = engine.process(batch, sc.now)
        ref = model.process(batch, sc.now)
        assert_same(batch, rust, ref)
        engine.check_invariants()
        model.check_invariants()
        sc.observe(ref)
    assert engine.task_count == model.task_count
    assert engine.counters() == model.counters()


# ----- the reference on its own -----

VOICE = ChannelConfig(name="voice", cost=60)
CHAT = ChannelConfig(name="chat", cost=20, max_per_agent=2)
EMAIL = ChannelConfig(name="email", cost=12, interruptible=True)


def task(id_: str, queue: str = "q", channel: str = "voice", **kw: object) -> AddTask:
    return AddTask(task=msgspec.convert({"id": id_, "queue": queue, "channel": channel, **kw}, NewTask))


def offers(result: BatchResult) -> list[tuple[str, str]]:
    return [(o.task, o.agent) for o in result.offers]


def both(config: EngineConfig) -> list[Engine | ReferenceEngine]:
    return [Engine(config), ReferenceEngine(config)]


@pytest.mark.parametrize("kind", ["engine", "reference"])
def test_longest_idle_agent_gets_a_new_task_and_ties_go_to_the_first_created(kind: str) -> None:
    config = EngineConfig(
        channels=[VOICE],
        queues=[QueueConfig(name="q")],
        agents=[AgentConfig(id=a, queues={"q": 0}) for a in ("a", "b", "c")],
    )
    e = Engine(config) if kind == "engine" else ReferenceEngine(config)
    assert offers(e.process([task("t1")], 1.0)) == [("t1", "a")]
    e.process([Accept(offer=1)], 2.0)
    e.process([Complete(task="t1")], 3.0)
    # b and c have been idle since 0, a only since 3.
    assert offers(e.process([task("t2"), task("t3"), task("t4")], 4.0)) == [
        ("t2", "b"),
        ("t3", "c"),
        ("t4", "a"),
    ]


def test_a_freed_agent_takes_its_reservation_then_its_queue_priority_then_the_aged_priority() -> None:
    config = EngineConfig(
        channels=[VOICE],
        queues=[QueueConfig(name="sales"), QueueConfig(name="support", aging_per_second=1.0)],
        agents=[
            AgentConfig(id="a", queues={"sales": 0, "support": 1}),
            AgentConfig(id="b", queues={"sales": 0}),
        ],
    )
    m = ReferenceEngine(config)
    m.process([task("busy-a", "sales"), task("busy-b", "sales")], 0.0)
    m.process([Accept(offer=1), Accept(offer=2)], 0.0)
    m.process([task("s1", "sales", priority=5), task("old", "support", priority=0)], 1.0)
    m.process(
        [
            task("new", "support", priority=3),
            task("mine", "sales", preferred_agents=["a"], preferred_until=99.0),
        ],
        9.0,
    )
    # At 11 "old" has aged to 0 + 10 and "new" to 3 + 2; "mine" is reserved for a.
    r = m.process([Complete(task="busy-a")], 10.0)
    assert [(o.task, o.reason.strategy) for o in r.offers] == [("mine", "reserved")]
    r = m.process([Accept(offer=3), Complete(task="mine")], 11.0)
    assert [(o.task, o.reason.score) for o in r.offers] == [("old", 10.0)]
    # b serves only sales: it takes s1 although support work waits longer.
    assert offers(m.process([Complete(task="busy-b")], 12.0)) == [("s1", "b")]
    m.check_invariants()


def test_interruptible_work_gives_way_and_channel_limits_hold() -> None:
    config = EngineConfig(
        channels=[VOICE, CHAT, EMAIL],
        queues=[QueueConfig(name="q")],
        agents=[AgentConfig(id="a", capacity=60, queues={"q": 0})],
    )
    for e in both(config):
        r = e.process([task(f"e{i}", channel="email") for i in range(6)], 1.0)
        assert offers(r) == [(f"e{i}", "a") for i in range(5)]  # 5 x 12 = 60
        # Firm work does not count interruptible work: a call goes on top of the e-mails...
        assert offers(e.process([task("call")], 2.0)) == [("call", "a")]
        e.process([Accept(offer=6)], 2.0)
        # ...and while it lasts nothing else fits, firm or not.
        assert offers(e.process([task("c1", channel="chat"), task("e6", channel="email")], 3.0)) == []
        # Then chats fit again, two at most.
        r = e.process([Complete(task="call"), task("c2", channel="chat"), task("c3", channel="chat")], 4.0)
        assert offers(r) == [("c1", "a"), ("c2", "a")]
        e.check_invariants()


def test_offer_timeouts_make_an_agent_not_responding_and_rescind_its_other_offers() -> None:
    config = EngineConfig(
        channels=[CHAT],
        queues=[QueueConfig(name="q", offer_timeout=10.0)],
        agents=[AgentConfig(id="a", queues={"q": 0}), AgentConfig(id="b", queues={"q": 0}, available=False)],
        max_missed_offers=1,
    )
    engine, model = both(config)
    for e in (engine, model):
        e.process([task("t1", channel="chat")], 0.0)
        e.process([task("t2", channel="chat")], 5.0)
    r, m = engine.tick(10.0), model.tick(10.0)
    assert r == m
    kinds = [type(x) for x in m.events]
    assert kinds[:2] == [OfferTimedOut, AgentStateChanged]
    assert OfferRescinded in kinds
    assert model.process(
        [SetAgentState(agent="b", state=AgentState(state="available"))], 11.0
    ) == engine.process([SetAgentState(agent="b", state=AgentState(state="available"))], 11.0)


def test_relaxation_steps_widen_the_requirement_over_time() -> None:
    config = EngineConfig(
        channels=[VOICE],
        queues=[
            QueueConfig(
                name="q",
                steps=[
                    Step(after_seconds=10.0, action=LowerLevel(skill="es", min_level=2)),
                    Step(after_seconds=20.0, action=AddQueue(queue="overflow")),
                ],
            ),
            QueueConfig(name="overflow"),
        ],
        agents=[
            AgentConfig(id="junior", skills={"es": 2}, queues={"q": 0}, available=False),
            AgentConfig(id="spill", skills={"es": 3}, queues={"overflow": 0}),
        ],
    )
    engine, model = both(config)
    add = [task("t", requires={"op": "skill", "skill": "es", "min_level": 4})]
    assert engine.process(add, 0.0) == model.process(add, 0.0)
    r = model.tick(25.0)
    assert r == engine.tick(25.0)
    assert [(type(x).__name__, getattr(x, "step", None)) for x in r.events][:3] == [
        ("StepReached", 1),
        ("StepReached", 2),
        ("OfferMade", None),
    ]
    assert isinstance(r.events[0], StepReached)
    assert r.events[0].at == 10.0
    assert r.events[0].requirement == "es>=2"
    assert r.offers[0].agent == "spill"
    assert r.offers[0].reason.requirement == "es>=2"


def test_round_robin_goes_around_the_members_in_creation_order() -> None:
    config = EngineConfig(
        channels=[CHAT],
        queues=[QueueConfig(name="q", strategy=RoundRobin())],
        agents=[AgentConfig(id=a, queues={"q": 0}, capacity=100) for a in ("a", "b", "c")],
    )
    for e in both(config):
        r = e.process([task(f"t{i}", channel="chat") for i in range(5)], 1.0)
        assert [a for _, a in offers(r)] == ["a", "b", "c", "a", "b"]


def test_what_the_reference_does_not_model_is_refused_clearly() -> None:
    base = EngineConfig(channels=[VOICE], queues=[QueueConfig(name="q")])
    with pytest.raises(NotImplementedError, match="External"):
        ReferenceEngine(EngineConfig(channels=[VOICE], queues=[QueueConfig(name="q", strategy=External())]))
    with pytest.raises(NotImplementedError, match="inactive"):
        ReferenceEngine(
            EngineConfig(channels=[ChannelConfig(name="x", cost=1, inactive_after=5.0)], queues=[])
        )
    with pytest.raises(NotImplementedError, match="UpsertAgent"):
        ReferenceEngine(base).process([UpsertAgent(agent=AgentConfig(id="a"))], 1.0)


def test_refusals_have_the_engines_kinds() -> None:
    config = EngineConfig(channels=[VOICE], queues=[QueueConfig(name="q")], agents=[AgentConfig(id="a")])
    batch: list[Input] = [
        task("t"),
        task("t"),
        task("u", queue="nowhere"),
        Accept(offer=7),
        Complete(task="t"),
        EndWrapUp(agent="a"),
        Transfer(task="t"),
        Cancel(task="ghost"),
    ]
    engine, model = both(config)
    r, m = engine.process(batch, 1.0), model.process(batch, 1.0)
    assert [(e.index, e.kind) for e in m.errors] == [(e.index, e.kind) for e in r.errors]
    assert [e.kind for e in m.errors] == [
        "duplicate_id",
        "unknown_id",
        "unknown_id",
        "invalid_transition",
        "invalid_transition",
        "invalid_input",
        "unknown_id",
    ]
    with pytest.raises(Exception, match="backwards"):
        model.process([], 0.5)


# ----- divergences the differential test found -----


def test_transfer_of_an_offered_task_to_a_queue_considers_the_agent_it_was_offered_to() -> None:
    def run(e: Engine | ReferenceEngine) -> BatchResult:
        e.process([task("t")], 1.0)  # offered to a, the only agent of q
        return e.process([Transfer(task="t", to_queue="r")], 2.0)

    for capacity in (120, 60):
        config = EngineConfig(
            channels=[VOICE],
            queues=[QueueConfig(name="q"), QueueConfig(name="r")],
            agents=[
                AgentConfig(id="a", capacity=capacity, queues={"q": 0, "r": 0}),
                AgentConfig(id="b", queues={"r": 0}),
            ],
        )
        # a and b have both been idle since 0; a was created first and is free
        # again once its offer is rescinded, so the task goes back to a. (The
        # engine once routed the task before a was back in its ready sets, so
        # a was a candidate only when it had room to spare.)
        assert offers(run(ReferenceEngine(config))) == [("t", "a")]
        assert run(Engine(config)) == run(ReferenceEngine(config)), f"capacity {capacity}"


def test_an_agent_preferred_twice_is_one_preference_and_an_excluded_one_none() -> None:
    config = EngineConfig(
        channels=[VOICE],
        queues=[QueueConfig(name="q")],
        agents=[AgentConfig(id="a", queues={"q": 0}, available=False), AgentConfig(id="b", queues={"q": 0})],
    )
    batch: list[Input] = [
        task("t", preferred_agents=["a", "a"], preferred_until=9.0),
        task("u", preferred_agents=["b"], excluded_agents=["b"]),
    ]
    engine, model = both(config)
    # (The engine once kept "a" twice in the reservation and failed its own invariants.)
    assert engine.process(batch, 1.0) == model.process(batch, 1.0)
    engine.check_invariants()
    assert engine.tick(9.0) == model.tick(9.0)


def test_per_channel_idle_time_does_not_depend_on_the_order_channels_are_declared_in() -> None:
    voice, chat = ChannelConfig(name="voice", cost=60), ChannelConfig(name="chat", cost=60)

    def run(e: Engine | ReferenceEngine) -> BatchResult:
        e.process([task("x", "support", "chat"), Accept(offer=1), task("y", "sales"), Accept(offer=2)], 0.0)
        e.process([Complete(task="x")], 1.0)  # a wraps up until 11, then is idle
        e.process([Complete(task="y")], 5.0)  # b finished a call at 5
        return e.process([task("z", "sales")], 20.0)

    for channels in ([chat, voice], [voice, chat]):
        config = EngineConfig(
            channels=channels,
            queues=[
                QueueConfig(name="sales", strategy=LongestIdle(per_channel=True)),
                QueueConfig(name="support", wrap_up=10.0),
            ],
            agents=[
                AgentConfig(id="a", queues={"sales": 0, "support": 0}),
                AgentConfig(id="b", queues={"sales": 0}),
            ],
        )
        # a has never had a call and has been idle since 11; b had its last call at 5.
        assert offers(run(ReferenceEngine(config))) == [("z", "b")]
        # Per-channel idle time once depended on which channel was declared first.
        assert run(Engine(config)) == run(ReferenceEngine(config)), [c.name for c in channels]
