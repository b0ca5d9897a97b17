"""Run a scenario's replications through the real engine and summarise them
with 95% confidence intervals (Student's t over the replications)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable

import msgspec
from msgspec import Struct
from scipy import stats as scipy_stats

from omniroute import _rust
from omniroute.metrics import DimensionSnapshot, IntervalStats, MetricsSnapshot, Stats
from omniroute.sim.scenario import Scenario

__all__ = [
    "Estimate",
    "Figures",
    "IntervalFigures",
    "QueueLength",
    "Replication",
    "Summary",
    "Tally",
    "estimate",
    "run_replication",
    "simulate",
    "summarise",
]


# ----- one replication (MessagePack arrays from the core, fields in the Rust order) -----


class Tally(Struct, frozen=True, array_like=True, gc=False):
    """Contacts arrived after the warm-up and what became of them (see ``docs/simulation.md``)."""

    arrivals: int
    answered: int
    answered_within: int
    abandoned: int
    waited: int
    wait_seconds: float
    abandon_wait_seconds: float

    @property
    def finished(self) -> int:
        return self.answered + self.abandoned

    @property
    def waiting_probability(self) -> float | None:
        return self.waited / self.finished if self.finished else None

    @property
    def service_level(self) -> float | None:
        return self.answered_within / self.finished if self.finished else None

    @property
    def asa(self) -> float | None:
        return self.wait_seconds / self.answered if self.answered else None

    @property
    def abandonment(self) -> float | None:
        return self.abandoned / self.finished if self.finished else None


class IntervalReport(Struct, frozen=True, array_like=True, gc=False):
    overall: list[IntervalStats]
    queues: dict[str, list[IntervalStats]]
    channels: dict[str, list[IntervalStats]]
    agents: dict[str, list[IntervalStats]]


class QueueLength(Struct, frozen=True, array_like=True, gc=False):
    start: float
    mean: float
    max: int


class EngineCounters(Struct, frozen=True, array_like=True, gc=False):
    offers: int
    arrivals: int
    inputs: int
    refused: int


class Replication(Struct, frozen=True, array_like=True, gc=False):
    replication: int
    seed: int
    end: float
    arrivals: int
    unfinished: int
    stale_responses: int
    steady: Tally
    snapshot: MetricsSnapshot
    intervals: IntervalReport
    queue_length: list[QueueLength]
    engine: EngineCounters


_replication = msgspec.msgpack.Decoder(Replication)


# ----- summaries -----


class Estimate(Struct, frozen=True, kw_only=True):
    """A figure's mean over the replications that have it, with the half-width
    of its 95% confidence interval (None with fewer than two values)."""

    mean: float | None
    half_width: float | None
    n: int

    @property
    def low(self) -> float | None:
        return None if self.mean is None or self.half_width is None else self.mean - self.half_width

    @property
    def high(self) -> float | None:
        return None if self.mean is None or self.half_width is None else self.mean + self.half_width

    def covers(self, value: float) -> bool:
        """Whether ``value`` lies inside the confidence interval."""
        low, high = self.low, self.high
        return low is not None and high is not None and low <= value <= high


@functools.cache
def _t_quantile(p: float, df: int) -> float:
    """Student's t quantile (scipy's costs ~0.1 ms a call; a summary asks thousands of times)."""
    return float(scipy_stats.t.ppf(p, df))


def estimate(values: Iterable[float | None], confidence: float = 0.95) -> Estimate:
    """Mean and t-based confidence half-width of the values that are not None."""
    xs = [v for v in values if v is not None]
    if not xs:
        return Estimate(mean=None, half_width=None, n=0)
    n = len(xs)
    mean = math.fsum(xs) / n
    if n < 2:
        return Estimate(mean=mean, half_width=None, n=1)
    # Two passes in floats: statistics.stdev is exact but works in fractions, far slower.
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    return Estimate(mean=mean, half_width=_t_quantile(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n), n=n)


class Figures(Struct, frozen=True, kw_only=True):
    """The production metrics of one dimension over the whole run, across replications."""

    offered: Estimate
    answered: Estimate
    abandoned: Estimate
    service_level: Estimate
    asa: Estimate
    abandon_rate: Estimate
    wait_p90: Estimate
    aht: Estimate
    occupancy: Estimate


def _figures(stats: list[Stats]) -> Figures:
    def e(get: Callable[[Stats], float | None]) -> Estimate:
        return estimate(get(s) for s in stats)

    return Figures(
        offered=e(lambda s: s.offered),
        answered=e(lambda s: s.answered),
        abandoned=e(lambda s: s.abandoned),
        service_level=e(lambda s: s.service_level_abandons_negative),
        asa=e(lambda s: s.asa),
        abandon_rate=e(lambda s: s.abandon_rate),
        wait_p90=e(lambda s: s.wait_p90),
        aht=e(lambda s: s.aht),
        occupancy=e(lambda s: s.occupancy),
    )


class IntervalFigures(Struct, frozen=True, kw_only=True):
    start: float
    figures: Figures
    queue_length: Estimate
    queue_length_max: Estimate


class Summary(Struct, frozen=True, kw_only=True):
    """Every replication of a scenario, and the figures across them."""

    replications: list[Replication]
    # Steady state (contacts arrived after the warm-up), from the tally.
    waiting_probability: Estimate
    service_level: Estimate
    asa: Estimate
    abandonment: Estimate
    # The production metrics since the start, overall and per dimension.
    overall: Figures
    queues: dict[str, Figures]
    channels: dict[str, Figures]
    agents: dict[str, Figures]
    intervals: list[IntervalFigures]
    queue_intervals: dict[str, list[IntervalFigures]]

    @property
    def arrivals(self) -> int:
        return sum(r.arrivals for r in self.replications)


def _by_start(series: list[list[IntervalStats]]) -> dict[float, list[Stats]]:
    out: dict[float, list[Stats]] = {}
    for one in series:
        for i in one:
            out.setdefault(i.start, []).append(i.stats)
    return out


def _interval_figures(
    series: list[list[IntervalStats]], lengths: list[list[QueueLength]] | None
) -> list[IntervalFigures]:
    by_start = _by_start(series)
    queue: dict[float, list[QueueLength]] = {}
    for one in lengths or []:
        for q in one:
            queue.setdefault(q.start, []).append(q)
    return [
        IntervalFigures(
            start=start,
            figures=_figures(stats),
            queue_length=estimate(q.mean for q in queue.get(start, [])),
            queue_length_max=estimate(q.max for q in queue.get(start, [])),
        )
        for start, stats in sorted(by_start.items())
    ]


def summarise(replications: list[Replication]) -> Summary:
    steady = [r.steady for r in replications]
    snapshots = [r.snapshot for r in replications]

    def per(get: Callable[[MetricsSnapshot], dict[str, DimensionSnapshot]]) -> dict[str, Figures]:
        names = sorted({name for s in snapshots for name in get(s)})
        return {
            name: _figures([d.since_start for s in snapshots if (d := get(s).get(name)) is not None])
            for name in names
        }

    queue_names = sorted({q for r in replications for q in r.intervals.queues})
    return Summary(
        replications=replications,
        waiting_probability=estimate(t.waiting_probability for t in steady),
        service_level=estimate(t.service_level for t in steady),
        asa=estimate(t.asa for t in steady),
        abandonment=estimate(t.abandonment for t in steady),
        overall=_figures([s.overall.since_start for s in snapshots]),
        queues=per(lambda s: s.queues),
        channels=per(lambda s: s.channels),
        agents=per(lambda s: s.agents),
        intervals=_interval_figures(
            [r.intervals.overall for r in replications], [r.queue_length for r in replications]
        ),
        queue_intervals={
            q: _interval_figures([r.intervals.queues.get(q, []) for r in replications], None)
            for q in queue_names
        },
    )


Progress = Callable[[float], None]


def run_replication(scenario: Scenario, replication: int, *, progress: Progress | None = None) -> Replication:
    """One replication, to its end. ``progress`` is told the virtual seconds
    advanced after each step (a hundredth of the run)."""
    return _run(scenario.encode(), replication, progress)


def _run(encoded: bytes, replication: int, progress: Progress | None) -> Replication:
    sim = _rust.Simulation(encoded, replication)
    end = sim.end
    step = end / 100
    done = False
    at = 0.0
    while not done:
        target = min(at + step, end)
        done = sim.advance(target)
        if progress is not None:
            progress((end if done else target) - at)
        at = target
    return _replication.decode(sim.result())


def simulate(scenario: Scenario, *, progress: Progress | None = None) -> Summary:
    """Every replication of ``scenario``, summarised (the scenario is checked
    before the first one runs). ``progress`` is told the virtual seconds
    advanced as the runs go (``replications * (duration + drain)`` in all)."""
    encoded = scenario.encode()
    return summarise([_run(encoded, r, progress) for r in range(scenario.replications)])
