"""A contact-center routing workload for the benchmarks: agents, queues, skills and a backlog, and a
driver that keeps an engine in steady state (agents finishing a task and taking the next)."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from omniroute import (
    Accept,
    AddTask,
    AgentConfig,
    AgentState,
    AllOf,
    BatchResult,
    ChannelConfig,
    Complete,
    Condition,
    Engine,
    EngineConfig,
    FewestHandled,
    Input,
    LeastOccupied,
    LongestIdle,
    LowerLevel,
    MostSkilled,
    NewTask,
    OfferMade,
    QueueConfig,
    RoundRobin,
    SetAgentState,
    Skill,
    Step,
    Strategy,
    TaskAssigned,
    TaskCompleted,
)
from omniroute.reference import ReferenceEngine

__all__ = ["Driver", "Workload", "percentile"]

QUEUES = 50
LANGUAGES = [f"lang{i:02d}" for i in range(20)]
TOPICS = [f"topic{i:03d}" for i in range(180)]  # with the languages, 200 skills
# Channel, cost, share of the traffic. A call fills an agent; three chats or
# SMS conversations do; e-mail is interruptible work that a call or chat may
# push aside.
CHANNELS = [
    (ChannelConfig(name="voice", cost=60), 0.45),
    (ChannelConfig(name="chat", cost=20, max_per_agent=3), 0.25),
    (ChannelConfig(name="email", cost=12, max_per_agent=5, interruptible=True), 0.20),
    (ChannelConfig(name="sms", cost=20, max_per_agent=3), 0.10),
]
STRATEGIES: list[Strategy] = [
    LongestIdle(),
    LongestIdle(),
    LongestIdle(per_channel=True),
    LeastOccupied(),
    MostSkilled(),
    FewestHandled(),
    RoundRobin(),
]
# How far back the backlog's arrivals reach, so that aging and relaxation matter.
BACKLOG_SPAN = 600.0
SAMPLES = 10


def _queue_languages(q: int) -> list[str]:
    """The three languages a queue is served in."""
    return [LANGUAGES[q % 20], LANGUAGES[(q + 7) % 20], LANGUAGES[(q + 13) % 20]]


@dataclass
class Workload:
    """A configuration of ``agents`` agents (all offline to begin with) and a
    backlog of ``tasks`` tasks, drawn reproducibly from ``seed``."""

    agents: int
    tasks: int
    seed: int = 7
    config: EngineConfig = field(init=False)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        queues = [
            QueueConfig(
                name=f"queue{q:02d}",
                strategy=STRATEGIES[q % len(STRATEGIES)],
                aging_per_second=[0.0, 0.0, 0.01, 0.1][q % 4],
                # One queue in five lowers its topic requirement after two minutes.
                steps=[Step(after_seconds=120.0, action=LowerLevel(skill=TOPICS[q], min_level=1))]
                if q % 5 == 0
                else [],
            )
            for q in range(QUEUES)
        ]
        agents = []
        for i in range(self.agents):
            served = rng.sample(range(QUEUES), 3)
            skills = {TOPICS[q]: rng.randint(1, 5) for q in served}
            skills |= {t: rng.randint(1, 5) for t in rng.sample(TOPICS, 2)}
            for q in served[:2]:
                skills[rng.choice(_queue_languages(q))] = rng.randint(1, 5)
            agents.append(
                AgentConfig(
                    id=f"agent{i:06d}",
                    skills=skills,
                    queues={
                        f"queue{q:02d}": p for q, p in zip(served, (2, 1, rng.randint(0, 1)), strict=True)
                    },
                    available=False,
                )
            )
        self.config = EngineConfig(channels=[c for c, _ in CHANNELS], queues=queues, agents=agents)

    def backlog(self, now: float) -> Iterator[NewTask]:
        """The tasks waiting at ``now``: one or two skill conditions each (the
        queue's topic, and often one of its languages), a few VIPs."""
        rng = random.Random(self.seed + 1)
        names = [c.name for c, _ in CHANNELS]
        weights = [w for _, w in CHANNELS]
        for i in range(self.tasks):
            q = rng.randrange(QUEUES)
            requires: Condition = Skill(skill=TOPICS[q], min_level=rng.randint(1, 3))
            if rng.random() < 0.5:
                language = Skill(skill=rng.choice(_queue_languages(q)), min_level=rng.randint(1, 3))
                requires = AllOf(of=[requires, language])
            yield NewTask(
                id=f"task{i:07d}",
                channel=rng.choices(names, weights)[0],
                queue=f"queue{q:02d}",
                priority=5 if rng.random() < 0.05 else 0,
                requires=requires,
                enqueued_at=now - rng.random() * BACKLOG_SPAN,
            )


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


class Driver:
    """Keeps an engine in steady state: each batch accepts the offers of the
    previous one and completes some assigned tasks, whose agents then take the
    next task. Checks what must hold of every batch and keeps the timings."""

    def __init__(self, engine: Engine | ReferenceEngine, workload: Workload, completes: int) -> None:
        self.engine = engine
        self.workload = workload
        self.completes = completes
        self.rng = random.Random(workload.seed + 2)
        self.now = BACKLOG_SPAN
        self.assigned: list[str] = []
        self.pending: list[int] = []
        self.decisions = 0
        self.inputs = 0
        self.cpu_seconds = 0.0
        self.latencies: list[float] = []
        # The first few measured batches, their results and CPU seconds.
        self.samples: list[tuple[list[Input], BatchResult, float]] = []

    def load(self) -> None:
        """Queue the backlog, bring every agent in (each takes work while it has
        room) and accept those first offers."""
        chunk: list[Input] = []
        for task in self.workload.backlog(self.now):
            chunk.append(AddTask(task=task))
            if len(chunk) == 5_000:
                self._apply(chunk)
                chunk = []
        self._apply(chunk)
        available = AgentState(state="available")
        agents = [a.id for a in self.workload.config.agents]
        for i in range(0, len(agents), 1_000):
            self._apply([SetAgentState(agent=a, state=available) for a in agents[i : i + 1_000]])
        while self.pending:
            accepts, self.pending = self.pending[:1_000], self.pending[1_000:]
            self._apply([Accept(offer=o) for o in accepts])
        assert self.assigned, "no agent could take any of the backlog"

    def _apply(self, batch: list[Input]) -> BatchResult:
        result = self.engine.process(batch, self.now)
        assert not result.errors, result.errors[:3]
        self._absorb(result)
        return result

    def _absorb(self, result: BatchResult) -> None:
        for e in result.events:
            if isinstance(e, OfferMade):
                self.pending.append(e.offer)
            elif isinstance(e, TaskAssigned):
                self.assigned.append(e.task)

    def next_batch(self) -> list[Input]:
        """Accept every pending offer; complete tasks picked at random."""
        batch: list[Input] = [Accept(offer=o) for o in self.pending]
        self.pending = []
        for _ in range(min(self.completes, len(self.assigned))):
            i = self.rng.randrange(len(self.assigned))
            self.assigned[i], self.assigned[-1] = self.assigned[-1], self.assigned[i]
            batch.append(Complete(task=self.assigned.pop()))
        return batch

    def step(self, batch: list[Input]) -> BatchResult:
        """Process one steady-state batch, timed, and check it."""
        self.now += 0.01
        start, cpu = time.perf_counter(), time.process_time()
        result = self.engine.process(batch, self.now)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        self.check(batch, result)
        self._absorb(result)
        self.decisions += len(result.offers)
        self.inputs += len(batch)
        self.cpu_seconds += cpu
        self.latencies.append(elapsed)
        if len(self.samples) < SAMPLES:
            self.samples.append((batch, result, cpu))
        return result

    @staticmethod
    def check(batch: list[Input], result: BatchResult) -> None:
        """Every input applied: each accept assigned its task, each complete
        freed its agent; agents that chose work are agents freed in this batch
        (the others had no room, or nothing they could take). The rest of
        "a freed agent takes waiting work it can take" is the engine's
        work-conservation invariant, checked by ``check_invariants``."""
        assert not result.errors, result.errors[:3]
        completes = sum(isinstance(e, Complete) for e in batch)
        completed = [e for e in result.events if isinstance(e, TaskCompleted)]
        assigned = sum(isinstance(e, TaskAssigned) for e in result.events)
        assert len(completed) == completes
        assert assigned == len(batch) - completes
        freed = {e.agent for e in completed}
        # Offers on arrival come from relaxation steps falling due.
        assert {o.agent for o in result.offers if o.reason.trigger == "agent_freed"} <= freed

    def reset(self) -> None:
        """Forget the timings so far (after a warm-up)."""
        self.decisions, self.inputs, self.cpu_seconds = 0, 0, 0.0
        self.latencies, self.samples = [], []

    @property
    def seconds(self) -> float:
        """Wall-clock seconds spent in ``process`` over the measured batches."""
        return sum(self.latencies)

    @property
    def rate(self) -> float:
        """Routing decisions (offers made) per second of ``process``, by the wall clock."""
        return self.decisions / self.seconds if self.seconds else 0.0

    @property
    def cpu_rate(self) -> float:
        """The same per second of the process's own CPU time: steadier than the
        wall clock on a machine shared with other work."""
        return self.decisions / self.cpu_seconds if self.cpu_seconds else 0.0


@pytest.fixture(autouse=True)
def only_the_centres_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example third-party plugin is installed for the tests (it implements
    the CRM hooks); a centre under measurement runs only its own plugins.
    A benchmark that starts a server imports this fixture."""
    monkeypatch.setenv("OMNIROUTE_DISABLE_PLUGINS", "example")
