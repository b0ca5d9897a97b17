"""The metrics aggregation's Python face: service level, ASA, abandons, AHT, occupancy and the rest."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from omniroute import _rust
from omniroute.model import EngineConfig, Seconds

__all__ = [
    "Abandoned",
    "AgentActivity",
    "AgentLoadRecorded",
    "AgentStateRecorded",
    "Answered",
    "Arrived",
    "Completed",
    "Csat",
    "DimensionSnapshot",
    "Disposition",
    "Hold",
    "IntervalStats",
    "MetricEvent",
    "Metrics",
    "MetricsConfig",
    "MetricsSnapshot",
    "StaffingNow",
    "Stats",
    "Talk",
    "Transferred",
    "WaitingNow",
    "WindowSpan",
    "WindowStats",
    "WrapUp",
]


class MetricsConfig(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How figures are bucketed in time and judged (``docs/metrics.md``)."""

    interval_seconds: Annotated[int, Meta(ge=1)] = 900
    windows: list[Annotated[int, Meta(ge=1)]] = msgspec.field(default_factory=lambda: [900, 3600])
    window_slot_seconds: Annotated[int, Meta(ge=1)] = 60
    service_level_threshold: Seconds = 20.0
    queue_thresholds: dict[str, Seconds] = {}
    short_abandon_seconds: Seconds = 5.0
    intervals_retained: Annotated[int, Meta(ge=1)] = 96 * 7

    @classmethod
    def for_engine(cls, config: EngineConfig, **settings: object) -> MetricsConfig:
        """A configuration whose per-queue thresholds are the queues' own
        ``service_level_seconds``."""
        thresholds = {q.name: q.service_level_seconds for q in config.queues}
        return msgspec.convert({"queue_thresholds": thresholds, **settings}, cls)


# ----- events the runtime adds (the engine's own arrive through Engine.process) -----


class _Event(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="type"):
    at: float


class _ContactEvent(_Event, frozen=True):
    task: str
    queue: str
    channel: str


class Arrived(_ContactEvent, tag="arrived", frozen=True):
    """A contact entered a queue."""


class Answered(_ContactEvent, tag="answered", frozen=True):
    agent: str
    wait: Seconds


class Abandoned(_ContactEvent, tag="abandoned", frozen=True):
    wait: Seconds


class Transferred(_ContactEvent, tag="transferred", frozen=True):
    agent: str | None = None


class Completed(_ContactEvent, tag="completed", frozen=True):
    agent: str


class Talk(_ContactEvent, tag="talk", frozen=True):
    """Seconds the agent talked (or wrote) with the customer."""

    agent: str
    seconds: Seconds


class Hold(_ContactEvent, tag="hold", frozen=True):
    agent: str
    seconds: Seconds


class WrapUp(_ContactEvent, tag="wrap_up", frozen=True):
    """Seconds of after-contact work."""

    agent: str
    seconds: Seconds


class Disposition(_ContactEvent, tag="disposition", frozen=True):
    agent: str
    resolved: bool


class Csat(_ContactEvent, tag="csat", frozen=True):
    """A customer-satisfaction score."""

    score: float
    agent: str | None = None


AgentActivity = Literal["offline", "available", "away", "not_responding", "wrap_up"]


class AgentStateRecorded(_Event, tag="agent_state", frozen=True):
    agent: str
    state: AgentActivity


class AgentLoadRecorded(_Event, tag="agent_load", frozen=True):
    agent: str
    used: int
    capacity: int
    tasks: int


MetricEvent = (
    Arrived
    | Answered
    | Abandoned
    | Transferred
    | Completed
    | Talk
    | Hold
    | WrapUp
    | Disposition
    | Csat
    | AgentStateRecorded
    | AgentLoadRecorded
)


# ----- figures (MessagePack arrays from the core, fields in the Rust order) -----


class Stats(Struct, frozen=True, array_like=True, gc=False):
    """Counts, sums and every derived figure; a ratio with nothing to divide by is None."""

    offered: int
    answered: int
    answered_within_threshold: int
    abandoned: int
    short_abandoned: int
    abandoned_within_threshold: int
    transferred: int
    completed: int
    dispositions: int
    resolved: int
    csat_responses: int
    wait_seconds: float
    abandon_wait_seconds: float
    talk_seconds: float
    hold_seconds: float
    wrap_up_seconds: float
    csat_sum: float
    handling_seconds: float
    available_idle_seconds: float
    logged_in_seconds: float
    service_level_answered: float | None
    service_level_abandons_ignored: float | None
    service_level_abandons_negative: float | None
    service_level_abandons_positive: float | None
    abandon_rate: float | None
    asa: float | None
    average_abandon_wait: float | None
    wait_p50: float | None
    wait_p90: float | None
    wait_p99: float | None
    aht: float | None
    average_talk: float | None
    average_hold: float | None
    average_wrap_up: float | None
    occupancy: float | None
    utilisation: float | None
    transfer_rate: float | None
    resolution_rate: float | None
    average_csat: float | None


class WaitingNow(Struct, frozen=True, array_like=True, gc=False):
    contacts: int
    longest_wait: float | None


class StaffingNow(Struct, frozen=True, array_like=True, gc=False):
    offline: int
    available: int
    away: int
    not_responding: int
    wrap_up: int
    capacity_used: int
    capacity_free: int
    tasks_held: int


class WindowSpan(Struct, frozen=True, array_like=True, gc=False):
    seconds: int
    start: float


class WindowStats(Struct, frozen=True, array_like=True, gc=False):
    seconds: int
    stats: Stats


class DimensionSnapshot(Struct, frozen=True, array_like=True, gc=False):
    since_start: Stats
    current_interval: Stats
    windows: list[WindowStats]
    waiting: WaitingNow | None
    staffing: StaffingNow | None

    def window(self, seconds: int) -> Stats:
        """The figures over the sliding window of this length."""
        for w in self.windows:
            if w.seconds == seconds:
                return w.stats
        raise KeyError(f"no {seconds} s window; configured: {[w.seconds for w in self.windows]}")


class MetricsSnapshot(Struct, frozen=True, array_like=True, gc=False):
    now: float
    interval_start: float
    windows: list[WindowSpan]
    overall: DimensionSnapshot
    queues: dict[str, DimensionSnapshot]
    channels: dict[str, DimensionSnapshot]
    agents: dict[str, DimensionSnapshot]


class IntervalStats(Struct, frozen=True, array_like=True, gc=False):
    start: float
    stats: Stats


_encoder = msgspec.msgpack.Encoder()
_snapshot_decoder = msgspec.msgpack.Decoder(MetricsSnapshot)
_intervals_decoder = msgspec.msgpack.Decoder(list[IntervalStats])


class Metrics:
    """Aggregates the engine's events (pass it to :meth:`omniroute.Engine.process`)
    and those the runtime adds, per queue, channel, agent and overall; over
    fixed intervals, sliding windows and since start."""

    __slots__ = ("_core",)

    def __init__(self, config: MetricsConfig | None = None) -> None:
        self._core = _rust.Metrics(_encoder.encode(config or MetricsConfig()))

    @classmethod
    def from_bytes(cls, data: bytes) -> Metrics:
        """Metrics restored from :meth:`to_bytes`."""
        metrics = cls.__new__(cls)
        metrics._core = _rust.Metrics.from_bytes(data)
        return metrics

    def record(self, events: Sequence[MetricEvent]) -> None:
        """Record events in time order; stops at the first refused one (the
        error says which, and the ones before it count)."""
        self._core.record(_encoder.encode(events))

    def snapshot(
        self, now: float, *, queues: bool = True, channels: bool = True, agents: bool = True
    ) -> MetricsSnapshot:
        """Every figure at ``now``. Later events may not be older than ``now``."""
        return _snapshot_decoder.decode(self._core.snapshot(now, queues, channels, agents))

    def intervals(
        self, kind: Literal["overall", "queue", "channel", "agent"], name: str, start: float, end: float
    ) -> list[IntervalStats]:
        """Past fixed intervals of one queue, channel or agent (or overall, any
        name) that start in ``[start, end)``, for historical reports."""
        return _intervals_decoder.decode(self._core.intervals(kind, name, start, end))

    def group_intervals(self, agents: Sequence[str], start: float, end: float) -> list[IntervalStats]:
        """Past fixed intervals of a group of agents (a team) that start in
        ``[start, end)``: their counts, waits and time summed and every figure
        derived from the sums. An agent with no figures yet adds nothing."""
        return _intervals_decoder.decode(self._core.group_intervals(list(agents), start, end))

    def to_bytes(self) -> bytes:
        return self._core.to_bytes()

    @property
    def core(self) -> _rust.Metrics:
        """The compiled aggregator (what :meth:`omniroute.Engine.process` feeds)."""
        return self._core
