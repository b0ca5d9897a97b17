"""The demo: a synthetic stretch of multi-channel traffic through the engine, and what it decided."""

from __future__ import annotations

import heapq
import itertools
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import omniroute as o
from omniroute import metrics as m

CHANNELS = [
    o.ChannelConfig(name="voice", cost=60),
    o.ChannelConfig(name="chat", cost=20, max_per_agent=3),
    o.ChannelConfig(name="email", cost=12, interruptible=True),
    o.ChannelConfig(name="sms", cost=20, inactive_after=120.0),
]

#: per queue: arrivals per hour by channel, mean handle seconds by channel.
TRAFFIC = {
    "support": (
        {"voice": 150, "chat": 90, "email": 60, "sms": 30},
        {"voice": 240, "chat": 420, "email": 300, "sms": 360},
    ),
    "billing": ({"voice": 40, "chat": 30, "email": 40}, {"voice": 300, "chat": 360, "email": 240}),
    "sales": ({"voice": 50, "chat": 40}, {"voice": 360, "chat": 300}),
}
LANGUAGES = ["en", "es"]


def demo_config(agents: int, rng: random.Random) -> o.EngineConfig:
    queues = [
        o.QueueConfig(
            name="support",
            aging_per_second=0.05,
            steps=[
                o.Step(after_seconds=30.0, action=o.LowerLevel(skill="support", min_level=1)),
                o.Step(after_seconds=90.0, action=o.AddQueue(queue="billing")),
            ],
        ),
        o.QueueConfig(
            name="billing",
            strategy=o.Score(weights={"skill_level": 10.0, "idle_seconds": 0.1, "occupancy": -20.0}),
            steps=[o.Step(after_seconds=60.0, action=o.DropCondition(skill="es"))],
        ),
        o.QueueConfig(name="sales", strategy=o.MostSkilled(), wrap_up=20.0),
    ]
    people = []
    for i in range(agents):
        skills = {"en": rng.randint(2, 5), "support": rng.randint(1, 5)}
        if rng.random() < 0.35:
            skills["es"] = rng.randint(2, 5)
        serves = {"support": 1}
        if i % 3 == 0:
            skills["billing"] = rng.randint(1, 5)
            serves["billing"] = 2
        if i % 4 == 1:
            skills["sales"] = rng.randint(1, 5)
            serves["sales"] = 2
        people.append(o.AgentConfig(id=f"agent{i:02d}", skills=skills, queues=serves, available=False))
    return o.EngineConfig(seed=rng.randrange(2**32), channels=CHANNELS, queues=queues, agents=people)


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    action: Callable[[], list[o.Input]] = field(compare=False)


def _segment(event: o.TaskAssigned, at: float, seconds: float, resolved: bool) -> list[m.MetricEvent]:
    """What the runtime reports when a task ends: its talk time and its disposition."""
    return [
        m.Talk(
            at=at,
            task=event.task,
            queue=event.queue,
            channel=event.channel,
            agent=event.agent,
            seconds=seconds,
        ),
        m.Disposition(
            at=at,
            task=event.task,
            queue=event.queue,
            channel=event.channel,
            agent=event.agent,
            resolved=resolved,
        ),
    ]


@dataclass
class DemoReport:
    metrics: m.MetricsSnapshot
    refusals: dict[str, int]
    offers: list[o.OfferMade]
    explanation: o.Explanation | None
    counters: o.Counters
    arrivals: int
    answered: int
    abandoned: int
    waits: list[float]
    wall_seconds: float


def run(hours: float = 2.0, agents: int = 30, seed: int = 1) -> DemoReport:
    """Simulate ``hours`` of traffic: customers arrive, some give up, agents
    take offers after a few seconds of ringing, sometimes decline or miss one,
    work the task for a random handle time, and log in and out over the day."""
    rng = random.Random(seed)
    config = demo_config(agents, rng)
    engine = o.Engine(config, now=0.0)
    metrics = o.Metrics(o.MetricsConfig.for_engine(config))
    engine.roster(metrics=metrics)
    seq = itertools.count()
    due: list[_Due] = []
    offers: list[o.OfferMade] = []
    waits: list[float] = []
    counts = {"arrivals": 0, "answered": 0, "abandoned": 0}
    explanation: o.Explanation | None = None
    handled: set[str] = set()  # tasks answered: their customers no longer give up
    refusals: Counter[str] = Counter()  # e.g. an agent answering an offer already withdrawn
    talks: dict[str, tuple[o.TaskAssigned, float, bool]] = {}  # handle time, resolved
    end = hours * 3600.0

    def at(when: float, action: Callable[[], list[o.Input]] | list[o.Input]) -> None:
        fire = action if callable(action) else (lambda: action)
        heapq.heappush(due, _Due(when, next(seq), fire))

    def arrival(queue: str, channel: str) -> Callable[[], list[o.Input]]:
        def fire() -> list[o.Input]:
            counts["arrivals"] += 1
            tid = f"{channel}-{counts['arrivals']}"
            lang = "es" if rng.random() < 0.2 else "en"
            needs = f"{lang}>=2 & {queue}>=3" if queue != "sales" else f"{lang}>=2"
            patience = rng.expovariate(1 / 180.0) if channel in ("voice", "chat") else 86400.0
            at(now + patience, lambda: [] if tid in handled else [o.Cancel(task=tid)])
            task = o.NewTask(
                id=tid,
                channel=channel,
                queue=queue,
                requires=o.parse_condition(needs),
                priority=2 if rng.random() < 0.05 else 0,
            )
            return [o.AddTask(task=task)]

        return fire

    for queue, (rates, _) in TRAFFIC.items():
        for channel, per_hour in rates.items():
            t = rng.expovariate(per_hour / 3600.0)
            while t < end:
                at(t, arrival(queue, channel))
                t += rng.expovariate(per_hour / 3600.0)
    # The day's shift: most agents log in at the start, a few later; some take a break.
    for i in range(agents):
        name = f"agent{i:02d}"
        start = 0.0 if i < agents * 0.8 else rng.uniform(600, 2400)
        at(start, [o.SetAgentState(agent=name, state=o.AgentState(state="available"))])
        if end > 3600 and rng.random() < 0.3:
            pause = rng.uniform(1800, end - 1800)
            away = o.AgentState(state="away", reason="break")
            at(pause, [o.SetAgentState(agent=name, state=away)])
            at(pause + 900, [o.SetAgentState(agent=name, state=o.AgentState(state="available"))])

    started = time.perf_counter()
    now = 0.0
    while due and due[0].at <= end:
        now = due[0].at
        batch: list[o.Input] = []
        while due and due[0].at == now:
            batch.extend(heapq.heappop(due).action())
        result = engine.process(batch, now=now, metrics=metrics)
        for error in result.errors:
            refusals[f"{type(batch[error.index]).__name__} ({error.kind})"] += 1
        for event in result.events:
            if isinstance(event, o.OfferMade):
                offers.append(event)
                answer = rng.random()
                ring = rng.uniform(2.0, 8.0)
                if answer < 0.92:
                    at(now + ring, [o.Accept(offer=event.offer)])
                elif answer < 0.97:
                    at(now + ring, [o.Reject(offer=event.offer)])
                # else: the agent lets it ring until the offer times out
            elif isinstance(event, o.TaskAssigned):
                counts["answered"] += 1
                handled.add(event.task)
                waits.append(event.wait)
                handle = rng.expovariate(1 / TRAFFIC[event.queue][1][event.channel])
                at(now + handle, [o.Complete(task=event.task)])
                talks[event.task] = (event, handle, rng.random() < 0.8)
            elif isinstance(event, o.TaskCompleted):
                assigned, handle, resolved = talks.pop(event.task)
                metrics.record(_segment(assigned, now, handle, resolved))
            elif isinstance(event, o.TaskCancelled):
                counts["abandoned"] += 1
        if explanation is None and now > end / 2:
            waiting = [e for e in result.events if isinstance(e, o.TaskQueued)]
            if waiting and not result.offers:
                explanation = engine.explain(waiting[0].task)
    engine.check_invariants()
    snapshot = metrics.snapshot(now)
    return DemoReport(
        metrics=snapshot,
        refusals=dict(refusals),
        offers=offers,
        explanation=explanation,
        counters=engine.counters(),
        arrivals=counts["arrivals"],
        answered=counts["answered"],
        abandoned=counts["abandoned"],
        waits=waits,
        wall_seconds=time.perf_counter() - started,
    )


def describe(report: DemoReport, hours: float, shown: int = 8) -> str:
    lines = [f"omniroute demo: {hours:g} simulated hours of voice, chat, e-mail and SMS", ""]
    lines.append(f"A sample of the {len(report.offers)} offers the engine made, with its reasons:")
    step = max(1, len(report.offers) // shown)
    for offer in report.offers[::step][:shown]:
        r = offer.reason
        parts = ", ".join(f"{p.feature}={p.value:g}" for p in r.parts)
        lines.append(
            f"  {offer.at:7.0f}s  {offer.task:<12} -> {offer.agent}  [{offer.queue}/{offer.channel}] "
            f"{r.trigger} by {r.strategy} (score {r.score:.3g}; {parts}); step {r.step}: {r.requirement}"
        )
    if report.explanation is not None:
        e = report.explanation
        lines += ["", f"Why task {e.task} ({e.queue}, requirement {e.requirement}) was still waiting:"]
        verdicts: dict[str, list[str]] = {}
        for v in e.agents:
            verdicts.setdefault(type(v).__name__, []).append(v.agent)
        for kind, names in sorted(verdicts.items()):
            more = ", …" if len(names) > 4 else ""
            lines.append(f"  {kind:<18} {len(names):3d} agents  ({', '.join(names[:4])}{more})")
    c = report.counters
    lines += ["", "Metrics since start (SL: answered within the threshold, abandons counting against):"]
    columns = ("offered", "answered", "abandoned", "SL", "ASA", "p90 wait", "AHT", "resolved")
    widths = (7, 8, 9, 6, 7, 8, 7, 8)
    lines.append(f"  {'':<10} " + " ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)))

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.1%}"

    def sec(x: float | None) -> str:
        return "-" if x is None else f"{x:.1f}s"

    metrics = report.metrics
    rows = [("overall", metrics.overall), *sorted(metrics.queues.items()), *sorted(metrics.channels.items())]
    for name, dim in rows:
        s = dim.since_start
        cells = (
            str(s.offered),
            str(s.answered),
            str(s.abandoned),
            pct(s.service_level_abandons_negative),
            sec(s.asa),
            sec(s.wait_p90),
            sec(s.aht),
            pct(s.resolution_rate),
        )
        lines.append(f"  {name:<10} " + " ".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True)))
    overall = report.metrics.overall.since_start
    staffing = report.metrics.overall.staffing
    lines.append(
        f"  occupancy {pct(overall.occupancy)}, utilisation {pct(overall.utilisation)}"
        + (f"; agents now: {staffing.available} available, {staffing.away} away" if staffing else "")
    )
    lines += [
        "",
        f"Engine: {c.inputs} input events, {c.refused} refused, {c.offers} offers; "
        f"{report.wall_seconds:.2f} s of wall time",
    ]
    if report.refusals:
        why = ", ".join(f"{n} {kind}" for kind, n in sorted(report.refusals.items()))
        lines.append(
            f"  refused: {why} (late answers to offers withdrawn when a customer left or an agent went away)"
        )
    return "\n".join(lines)
