"""Long random sequences of valid and invalid calls; the invariant checker runs after each."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import omniroute as o
from conftest import agent, channels

QUEUES = ["support", "sales", "vip"]
AGENTS = ["ann", "bob", "cat", "dan"]
SKILLS = ["en", "es", "billing"]

conditions = st.one_of(
    st.none(),
    st.builds(o.Skill, skill=st.sampled_from(SKILLS), min_level=st.integers(0, 5)),
    st.builds(
        o.AnyOf,
        of=st.lists(
            st.builds(o.Skill, skill=st.sampled_from(SKILLS), min_level=st.integers(1, 5)), max_size=3
        ),
    ),
    st.builds(
        o.Not, condition=st.builds(o.Skill, skill=st.sampled_from(SKILLS), min_level=st.integers(1, 5))
    ),
)


def centre() -> o.EngineConfig:
    return o.EngineConfig(
        seed=3,
        max_missed_offers=2,
        channels=channels(),
        queues=[
            o.QueueConfig(
                name="support",
                aging_per_second=0.1,
                offer_timeout=15.0,
                steps=[
                    o.Step(after_seconds=20.0, action=o.LowerLevel(skill="en", min_level=1)),
                    o.Step(after_seconds=40.0, action=o.AddQueue(queue="sales")),
                ],
            ),
            o.QueueConfig(name="sales", strategy=o.RoundRobin(), wrap_up=5.0),
            o.QueueConfig(
                name="vip",
                strategy=o.Score(weights={"skill_level": 2.0, "idle_seconds": 0.01}),
                steps=[o.Step(after_seconds=30.0, action=o.DropCondition(skill="billing"))],
            ),
        ],
        agents=[
            agent("ann", {"support": 2, "vip": 1}, en=5, billing=3),
            agent("bob", {"support": 0, "sales": 1}, en=2, es=4),
            agent("cat", {"sales": 0}, es=5),
            agent("dan", {"vip": 0, "support": 1}, en=4, billing=5),
        ],
    )


class EngineMachine(RuleBasedStateMachine):
    """Drives an engine with random calls and tracks every acknowledged task."""

    def __init__(self) -> None:
        super().__init__()
        self.engine = o.Engine(centre(), now=0.0)
        self.now = 0.0
        self.counter = 0
        self.live: set[str] = set()
        self.offers: list[int] = []
        self.finished: set[str] = set()

    def run(self, events: list[o.Input], *, advance: float = 0.0) -> o.BatchResult:
        self.now += advance
        result = self.engine.process(events, now=self.now)
        for e in result.events:
            if isinstance(e, o.TaskQueued):
                self.live.add(e.task)
            elif isinstance(e, o.TaskCancelled | o.TaskCompleted):
                assert e.task in self.live, f"{e.task} finished twice or never arrived"
                self.live.discard(e.task)
                self.finished.add(e.task)
            elif isinstance(e, o.OfferMade):
                self.offers.append(e.offer)
        return result

    @rule(
        queue=st.sampled_from([*QUEUES, "nowhere"]),
        channel=st.sampled_from(["voice", "chat", "email", "sms"]),
        priority=st.integers(-3, 3),
        requires=conditions,
        sticky=st.sampled_from([None, *AGENTS]),
    )
    def add_task(
        self, queue: str, channel: str, priority: int, requires: o.Condition | None, sticky: str | None
    ) -> None:
        self.counter += 1
        tid = f"t{self.counter}"
        new = o.NewTask(
            id=tid,
            queue=queue,
            channel=channel,
            priority=priority,
            requires=requires,
            preferred_agents=[sticky] if sticky else [],
            preferred_until=self.now + 20.0 if sticky else None,
        )
        result = self.run([o.AddTask(task=new)])
        if queue == "nowhere":
            assert [e.kind for e in result.errors] == ["unknown_id"]
            assert tid not in self.live
        else:
            assert result.errors == []
            assert tid in self.live

    @precondition(lambda self: self.offers)
    @rule(data=st.data(), accept=st.booleans())
    def answer_offer(self, data: st.DataObject, accept: bool) -> None:
        offer = data.draw(st.sampled_from(self.offers))
        self.run([o.Accept(offer=offer) if accept else o.Reject(offer=offer)])

    @precondition(lambda self: self.live or self.finished)
    @rule(
        data=st.data(),
        what=st.sampled_from(["cancel", "complete", "activity", "to_queue", "to_agent", "prio"]),
    )
    def act_on_task(self, data: st.DataObject, what: str) -> None:
        tid = data.draw(st.sampled_from(sorted(self.live | self.finished)))
        event: o.Input
        if what == "cancel":
            event = o.Cancel(task=tid)
        elif what == "complete":
            event = o.Complete(task=tid)
        elif what == "activity":
            event = o.CustomerActivity(task=tid)
        elif what == "to_queue":
            event = o.Transfer(task=tid, to_queue=data.draw(st.sampled_from(QUEUES)))
        elif what == "to_agent":
            event = o.Transfer(task=tid, to_agent=data.draw(st.sampled_from(AGENTS)))
        else:
            event = o.SetPriority(task=tid, priority=data.draw(st.integers(-5, 5)))
        was_finished = tid in self.finished
        result = self.run([event])
        if was_finished:
            assert [e.kind for e in result.errors] == ["unknown_id"]

    @rule(name=st.sampled_from([*AGENTS, "zed"]), state=st.sampled_from(["offline", "available", "away"]))
    def set_state(self, name: str, state: str) -> None:
        reason = "lunch" if state == "away" else None
        result = self.run([o.SetAgentState(agent=name, state=o.AgentState(state=state, reason=reason))])  # type: ignore[arg-type]
        assert (name == "zed") == bool(result.errors)

    @rule(name=st.sampled_from(AGENTS), en=st.integers(0, 5), capacity=st.sampled_from([20, 60, 120]))
    def reconfigure_agent(self, name: str, en: int, capacity: int) -> None:
        skills = {"en": en, "es": 2} if en else {"es": 2}
        cfg = o.AgentConfig(id=name, capacity=capacity, skills=skills, queues={"support": 1, "sales": 0})
        self.run([o.UpsertAgent(agent=cfg)])

    @rule(seconds=st.sampled_from([0.5, 3.0, 11.0, 16.0, 35.0, 301.0]))
    def time_passes(self, seconds: float) -> None:
        self.run([], advance=seconds)

    @rule()
    def snapshot_round_trip(self) -> None:
        snap = self.engine.snapshot()
        copy = o.Engine.restore(snap)
        assert copy.snapshot() == snap
        self.engine = copy

    @invariant()
    def consistent(self) -> None:
        self.engine.check_invariants()
        assert self.engine.task_count == len(self.live)


TestEngineMachine = EngineMachine.TestCase
TestEngineMachine.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
