"""What the API answers that is not a stored record: agents, queues' live
figures, sessions, bodies of the task calls. Named fields throughout (the
engine's and the metrics' own structs travel as arrays)."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from omniroute.metrics import DimensionSnapshot, IntervalStats, Stats
from omniroute.model import Priority
from omniroute.store import Role

__all__ = [
    "AgentView",
    "CompleteBody",
    "Figures",
    "IntervalRow",
    "MergeBody",
    "NoteBody",
    "PriorityBody",
    "QueueView",
    "SessionView",
    "StaffingRow",
    "TokenView",
    "TransferBody",
    "figures",
]


class _Body(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class CompleteBody(_Body, frozen=True):
    disposition: Annotated[str, Meta(max_length=256)] | None = None
    outcome: Annotated[str, Meta(max_length=256)] | None = None
    resolved: bool | None = None
    note: Annotated[str, Meta(max_length=65536)] | None = None


class TransferBody(_Body, frozen=True):
    to_queue: Annotated[str, Meta(min_length=1, max_length=256)] | None = None
    to_agent: Annotated[str, Meta(min_length=1, max_length=256)] | None = None


class ConsultBody(_Body, frozen=True):
    """A message to a colleague; ``sender`` is the caller's own agent unless
    the caller works as none (a supervisor or a token must name it)."""

    to: Annotated[str, Meta(min_length=1, max_length=256)]
    body: Annotated[str, Meta(min_length=1, max_length=65536)]
    task: Annotated[str, Meta(min_length=1, max_length=256)] | None = None
    sender: Annotated[str, Meta(min_length=1, max_length=256)] | None = None


class CancelBody(_Body, frozen=True):
    status: Literal["abandoned", "cancelled"] = "cancelled"


class PriorityBody(_Body, frozen=True):
    priority: Priority


class NoteBody(_Body, frozen=True):
    body: Annotated[str, Meta(min_length=1, max_length=65536)]


class MergeBody(_Body, frozen=True):
    survivor: Annotated[str, Meta(min_length=1, max_length=256)]
    merged: Annotated[str, Meta(min_length=1, max_length=256)]


class PasswordBody(_Body, frozen=True):
    password: Annotated[str, Meta(min_length=8, max_length=1024)]


class SessionView(Struct, frozen=True, kw_only=True):
    """Who is logged in. ``token`` (returned once, at login) also works as a
    bearer token, for clients that do not keep cookies."""

    user: str
    role: Role
    agent: str | None
    scopes: list[str]
    expires_at: float | None = None
    token: str | None = None


class TokenView(Struct, frozen=True, kw_only=True):
    id: str
    name: str
    scopes: list[str]
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    # Only in the answer that creates it.
    token: str | None = None


class AgentView(Struct, frozen=True, kw_only=True):
    id: str
    state: Literal["offline", "available", "away", "not_responding", "wrap_up"]
    reason: str | None
    # When the agent entered this state, as far as this server has seen (its start at the earliest).
    since: float
    capacity: int
    used: int
    tasks: int
    skills: dict[str, int]
    queues: dict[str, int]
    team: str | None = None


class Figures(Struct, frozen=True, kw_only=True):
    """One queue's, channel's or the centre's figures (``docs/metrics.md``)."""

    offered: int
    answered: int
    abandoned: int
    completed: int
    service_level: float | None
    asa: float | None
    abandon_rate: float | None
    aht: float | None
    average_hold: float | None
    occupancy: float | None
    waiting: int
    longest_wait: float | None
    available: int | None
    since_start_offered: int
    since_start_service_level: float | None


class QueueView(Struct, frozen=True, kw_only=True):
    name: str
    service_level_seconds: float
    offer_timeout: float
    # Over the first sliding window (by default the last 15 minutes).
    figures: Figures | None


def figures(dimension: DimensionSnapshot, window: int | None = None) -> Figures:
    """A dimension's figures over a sliding window (or the current interval
    without one), with what is waiting now."""
    stats: Stats = dimension.current_interval if window is None else dimension.window(window)
    total = dimension.since_start
    return Figures(
        offered=stats.offered,
        answered=stats.answered,
        abandoned=stats.abandoned,
        completed=stats.completed,
        service_level=stats.service_level_answered,
        asa=stats.asa,
        abandon_rate=stats.abandon_rate,
        aht=stats.aht,
        average_hold=stats.average_hold,
        occupancy=stats.occupancy,
        waiting=dimension.waiting.contacts if dimension.waiting else 0,
        longest_wait=dimension.waiting.longest_wait if dimension.waiting else None,
        available=dimension.staffing.available if dimension.staffing else None,
        since_start_offered=total.offered,
        since_start_service_level=total.service_level_answered,
    )


class IntervalRow(Struct, frozen=True, kw_only=True):
    """One fixed interval of a report (``docs/metrics.md`` gives each formula)."""

    start: float
    seconds: int
    offered: int
    answered: int
    answered_within_threshold: int
    abandoned: int
    short_abandoned: int
    transferred: int
    completed: int
    service_level: float | None
    asa: float | None
    abandon_rate: float | None
    aht: float | None
    average_talk: float | None
    average_hold: float | None
    average_wrap_up: float | None
    occupancy: float | None
    utilisation: float | None
    resolution_rate: float | None
    average_csat: float | None


def interval_row(interval: IntervalStats, seconds: int) -> IntervalRow:
    s = interval.stats
    return IntervalRow(
        start=interval.start,
        seconds=seconds,
        offered=s.offered,
        answered=s.answered,
        answered_within_threshold=s.answered_within_threshold,
        abandoned=s.abandoned,
        short_abandoned=s.short_abandoned,
        transferred=s.transferred,
        completed=s.completed,
        service_level=s.service_level_answered,
        asa=s.asa,
        abandon_rate=s.abandon_rate,
        aht=s.aht,
        average_talk=s.average_talk,
        average_hold=s.average_hold,
        average_wrap_up=s.average_wrap_up,
        occupancy=s.occupancy,
        utilisation=s.utilisation,
        resolution_rate=s.resolution_rate,
        average_csat=s.average_csat,
    )


class StaffingRow(Struct, frozen=True, kw_only=True):
    """One interval: what Erlang C says it needed, and what it had."""

    start: float
    seconds: int
    offered: int
    aht: float | None
    required_agents: int
    actual_agents: float
    service_level: float | None
