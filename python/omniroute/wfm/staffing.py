"""Staffing for a day: the agents every interval of a forecast needs to meet
a service target, with Erlang C (or Erlang A when callers' patience is given).

::

    from omniroute.wfm import StaffingTargets, plan_staffing, describe_plan, write_chart

    plan = plan_staffing(tomorrow, StaffingTargets(service_level=0.8, threshold_seconds=20, shrinkage=0.3))
    print(describe_plan(plan))
    write_chart(plan, "staffing.png")     # or .svg

An interval with zero volume needs no agents. Every number of a plan row
comes from :mod:`omniroute.wfm.erlang` for that interval's volume, AHT and
length: ``raw_agents`` meet the targets on the phones; ``agents`` are
scheduled (raw agents grossed up for shrinkage).
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
from typing import TextIO

import msgspec

from omniroute.charts import chart_format, figure, save_chart
from omniroute.errors import InvalidInputError
from omniroute.wfm.erlang import NO_CONTACTS, ErlangA, ErlangC
from omniroute.wfm.forecast import Forecast
from omniroute.wfm.history import check_interval_minutes, iso, read_history_csv

__all__ = [
    "PLAN_COLUMNS",
    "PlanRow",
    "StaffingPlan",
    "StaffingTargets",
    "check_targets",
    "describe_plan",
    "plan_staffing",
    "read_forecast_csv",
    "write_chart",
    "write_plan_csv",
]

PLAN_COLUMNS: tuple[str, ...] = (
    "interval_start",
    "volume",
    "aht_seconds",
    "load_erlangs",
    "raw_agents",
    "agents",
    "service_level",
    "asa_seconds",
    "occupancy",
    "waiting_probability",
    "abandonment",
)


class StaffingTargets(msgspec.Struct, frozen=True, kw_only=True):
    """What every interval must meet. With ``patience_seconds`` (the mean
    time callers wait before hanging up) Erlang A is used, and
    ``max_abandonment`` may cap the share who abandon; otherwise Erlang C,
    and ``max_asa`` may cap the average speed of answer."""

    service_level: float
    threshold_seconds: float
    max_occupancy: float = 1.0
    shrinkage: float = 0.0
    patience_seconds: float | None = None
    max_abandonment: float | None = None
    max_asa: float | None = None

    @property
    def model(self) -> str:
        return "Erlang A" if self.patience_seconds is not None else "Erlang C"


def _finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(f"{name}: {value!r} is not a number")
    return float(value)


def check_targets(t: StaffingTargets) -> StaffingTargets:
    """The targets, or InvalidInputError naming the first bad field."""
    sl = _finite("service_level", t.service_level)
    if not 0 < sl < 1:
        raise InvalidInputError(f"service_level: {sl!r} is not a fraction between 0 and 1 (exclusive)")
    if _finite("threshold_seconds", t.threshold_seconds) < 0:
        raise InvalidInputError(f"threshold_seconds: {t.threshold_seconds!r} is negative")
    occupancy = _finite("max_occupancy", t.max_occupancy)
    if not 0 < occupancy <= 1:
        raise InvalidInputError(f"max_occupancy: {occupancy!r} is not a fraction in (0, 1]")
    shrinkage = _finite("shrinkage", t.shrinkage)
    if not 0 <= shrinkage < 1:
        raise InvalidInputError(f"shrinkage: {shrinkage!r} is not a fraction in [0, 1)")
    if t.patience_seconds is not None and _finite("patience_seconds", t.patience_seconds) <= 0:
        raise InvalidInputError(f"patience_seconds: {t.patience_seconds!r} is not > 0")
    if t.max_abandonment is not None:
        if t.patience_seconds is None:
            raise InvalidInputError("max_abandonment: needs patience_seconds (abandonment is Erlang A's)")
        if not 0 < _finite("max_abandonment", t.max_abandonment) < 1:
            raise InvalidInputError(f"max_abandonment: {t.max_abandonment!r} is not a fraction in (0, 1)")
    if t.max_asa is not None:
        if t.patience_seconds is not None:
            raise InvalidInputError("max_asa: only with Erlang C (without patience_seconds)")
        if _finite("max_asa", t.max_asa) <= 0:
            raise InvalidInputError(f"max_asa: {t.max_asa!r} is not > 0 seconds")
    return t


class PlanRow(msgspec.Struct, frozen=True, kw_only=True):
    """One interval of a plan."""

    interval_start: float
    volume: float
    aht_seconds: float
    load_erlangs: float
    raw_agents: int
    agents: int
    service_level: float
    asa_seconds: float
    occupancy: float
    waiting_probability: float
    abandonment: float


class StaffingPlan(msgspec.Struct, frozen=True, kw_only=True):
    interval_minutes: int
    utc_offset_seconds: int = 0
    targets: StaffingTargets
    rows: list[PlanRow]

    @property
    def agent_hours(self) -> float:
        """Scheduled agent-hours over the plan."""
        return sum(r.agents for r in self.rows) * self.interval_minutes / 60

    @property
    def service_level(self) -> float:
        """The expected service level over the plan, weighted by volume."""
        total = sum(r.volume for r in self.rows)
        return sum(r.service_level * r.volume for r in self.rows) / total if total > 0 else 1.0


def _row(start: float, volume: float, aht: float, step: float, t: StaffingTargets) -> PlanRow:
    load, s = 0.0, NO_CONTACTS  # an interval with zero volume: its AHT is moot
    if volume > 0:
        model: ErlangC | ErlangA
        if t.patience_seconds is None:
            model = ErlangC(contacts=volume, interval_seconds=step, aht_seconds=aht)
            s = model.required_agents(
                service_level=t.service_level,
                threshold_seconds=t.threshold_seconds,
                max_occupancy=t.max_occupancy,
                shrinkage=t.shrinkage,
                max_asa=t.max_asa,
            )
        else:
            model = ErlangA(
                contacts=volume, interval_seconds=step, aht_seconds=aht, patience_seconds=t.patience_seconds
            )
            s = model.required_agents(
                service_level=t.service_level,
                threshold_seconds=t.threshold_seconds,
                max_abandonment=t.max_abandonment,
                max_occupancy=t.max_occupancy,
                shrinkage=t.shrinkage,
            )
        load = model.load
    return PlanRow(
        interval_start=start,
        volume=volume if volume > 0 else 0.0,
        aht_seconds=aht,
        load_erlangs=load,
        raw_agents=s.raw_agents,
        agents=s.agents,
        service_level=s.service_level,
        asa_seconds=s.asa,
        occupancy=s.occupancy,
        waiting_probability=s.waiting_probability,
        abandonment=s.abandonment,
    )


def plan_staffing(forecast: Forecast, targets: StaffingTargets) -> StaffingPlan:
    """The agents every interval of ``forecast`` needs to meet ``targets``."""
    check_targets(targets)
    check_interval_minutes(forecast.interval_minutes)
    rows = []
    for k, (start, volume, aht) in enumerate(
        zip(forecast.starts(), forecast.volume, forecast.aht_seconds, strict=True)
    ):
        if not (math.isfinite(volume) and volume >= 0):
            raise InvalidInputError(f"volume[{k}]: {volume!r} is not a count ≥ 0")
        if volume > 0 and not (math.isfinite(aht) and aht > 0):
            raise InvalidInputError(f"aht_seconds[{k}]: {aht!r} is not > 0 seconds")
        rows.append(_row(start, volume, aht, forecast.step, targets))
    return StaffingPlan(
        interval_minutes=forecast.interval_minutes,
        utc_offset_seconds=forecast.utc_offset_seconds,
        targets=targets,
        rows=rows,
    )


def read_forecast_csv(path: str | os.PathLike[str], *, interval_minutes: int | None = None) -> Forecast:
    """A forecast CSV (``interval_start,volume,aht_seconds``, one row per
    interval; missing intervals are zero volume); the interval is inferred
    from the rows' spacing unless given."""
    h = read_history_csv(path, interval_minutes=interval_minutes, what="forecast")
    return Forecast(
        start=h.start,
        interval_minutes=h.interval_minutes,
        utc_offset_seconds=h.utc_offset_seconds,
        volume=h.volume,
        aht_seconds=h.aht_seconds,
    )


def _clock(plan: StaffingPlan, start: float, *, date: bool) -> str:
    zone = dt.timezone(dt.timedelta(seconds=plan.utc_offset_seconds))
    return dt.datetime.fromtimestamp(start, zone).strftime("%m-%d %H:%M" if date else "%H:%M")


def _many_days(plan: StaffingPlan) -> bool:
    return len(plan.rows) > 24 * 60 // plan.interval_minutes


def describe_plan(plan: StaffingPlan) -> str:
    """The plan as a text table with a summary line."""
    date = _many_days(plan)
    width = 11 if date else 5
    header = (
        f"{'time':<{width}} {'volume':>8} {'AHT s':>7} {'Erlangs':>8} {'raw':>5} {'agents':>6} "
        f"{'SL':>6} {'ASA s':>7} {'occ':>6} {'P(wait)':>7} {'aband':>6}"
    )
    lines = [header]
    for r in plan.rows:
        lines.append(
            f"{_clock(plan, r.interval_start, date=date):<{width}} {r.volume:>8.1f} {r.aht_seconds:>7.1f} "
            f"{r.load_erlangs:>8.2f} {r.raw_agents:>5d} {r.agents:>6d} {r.service_level:>6.1%} "
            f"{r.asa_seconds:>7.1f} {r.occupancy:>6.1%} {r.waiting_probability:>7.1%} {r.abandonment:>6.1%}"
        )
    t = plan.targets
    peak = max((r.agents for r in plan.rows), default=0)
    lines.append(
        f"{plan.targets.model}: {t.service_level:.0%} in {t.threshold_seconds:g} s, "
        f"max occupancy {t.max_occupancy:.0%}, shrinkage {t.shrinkage:.0%}; "
        f"{sum(r.volume for r in plan.rows):.0f} contacts, peak {peak} agents, "
        f"{plan.agent_hours:g} agent-hours, expected service level {plan.service_level:.1%}"
    )
    return "\n".join(lines) + "\n"


def write_plan_csv(plan: StaffingPlan, out: TextIO) -> int:
    """The plan as CSV (:data:`PLAN_COLUMNS`; times ISO 8601 in the plan's
    offset, numbers exact); returns how many rows. Its first three columns
    make it a forecast CSV again."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PLAN_COLUMNS)
    for r in plan.rows:
        writer.writerow(
            (
                iso(r.interval_start, plan.utc_offset_seconds),
                repr(r.volume),
                repr(r.aht_seconds),
                repr(r.load_erlangs),
                r.raw_agents,
                r.agents,
                repr(r.service_level),
                repr(r.asa_seconds),
                repr(r.occupancy),
                repr(r.waiting_probability),
                repr(r.abandonment),
            )
        )
    return len(plan.rows)


def write_chart(plan: StaffingPlan, path: str | os.PathLike[str]) -> None:
    """Bars of scheduled agents per interval and a line of volume on a second
    axis, written as PNG or SVG (by the suffix of ``path``)."""
    from matplotlib.ticker import FixedLocator  # matplotlib loads only to draw

    fmt = chart_format(path)
    if not plan.rows:
        raise InvalidInputError("chart: the plan has no intervals")
    fig = figure(figsize=(12, 5))
    ax = fig.add_subplot()
    x = list(range(len(plan.rows)))
    ax.bar(x, [r.agents for r in plan.rows], width=0.85, color="#4C72B0", label="scheduled agents")
    ax.set_ylabel("scheduled agents")
    zone = dt.timezone(dt.timedelta(seconds=plan.utc_offset_seconds))
    ax.set_xlabel(f"time of day ({'UTC' if not plan.utc_offset_seconds else str(zone)})")
    twin = ax.twinx()
    twin.plot(x, [r.volume for r in plan.rows], color="#DD8452", linewidth=2, label="forecast volume")
    twin.set_ylabel(f"contacts per {plan.interval_minutes} min")
    twin.set_ylim(bottom=0)
    per_hour = 60 // plan.interval_minutes
    hours = len(plan.rows) / per_hour
    every = per_hour * (1 if hours <= 24 else 6 if hours <= 24 * 7 else 24)
    ticks = x[::every]
    date = _many_days(plan)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xticklabels(
        [_clock(plan, plan.rows[k].interval_start, date=date) for k in ticks], rotation=45, ha="right"
    )
    ax.set_xlim(-0.6, len(plan.rows) - 0.4)
    t = plan.targets
    first = dt.datetime.fromtimestamp(plan.rows[0].interval_start, zone).date().isoformat()
    ax.set_title(
        f"Staffing from {first}: {t.model}, {t.service_level:.0%} answered in {t.threshold_seconds:g} s, "
        f"shrinkage {t.shrinkage:.0%} (peak {max(r.agents for r in plan.rows)} agents, "
        f"{plan.agent_hours:g} agent-hours)"
    )
    handles = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    save_chart(fig, path, fmt)
