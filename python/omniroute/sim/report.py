"""A simulation's summary as text, as CSV, and as a chart of service level and
queue length through the day."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

from omniroute import charts
from omniroute.errors import InvalidInputError
from omniroute.sim.run import Estimate, Figures, IntervalFigures, Summary

__all__ = ["describe", "write_chart", "write_csv"]


def _shown(e: Estimate, scale: float, digits: str, unit: str) -> str:
    """``mean unit ± half-width``, both times ``scale``; a dash when there is no mean."""
    if e.mean is None:
        return "—"
    hw = f" ± {scale * e.half_width:{digits}}" if e.half_width is not None else ""
    return f"{scale * e.mean:{digits}}{unit}{hw}"


def _pct(e: Estimate) -> str:
    return _shown(e, 100, ".2f", "%")


def _sec(e: Estimate) -> str:
    return _shown(e, 1, ".2f", " s")


def _num(e: Estimate) -> str:
    return _shown(e, 1, ",.1f", "")


def _figure_rows(title: str, figures: dict[str, Figures]) -> list[str]:
    if not figures:
        return []
    width = max(len(n) for n in figures)
    lines = [
        "",
        title,
        f"  {'':<{width}}  {'offered':>16}  {'service level':>18}  {'ASA':>16}  "
        f"{'abandoned':>16}  {'occupancy':>16}",
    ]
    for name, f in figures.items():
        lines.append(
            f"  {name:<{width}}  {_num(f.offered):>16}  {_pct(f.service_level):>18}  {_sec(f.asa):>16}  "
            f"{_pct(f.abandon_rate):>16}  {_pct(f.occupancy):>16}"
        )
    return lines


def describe(summary: Summary) -> str:
    """A readable account: steady-state figures, then the metrics per queue and channel."""
    runs = summary.replications
    lines = [
        f"{len(runs)} replications, {summary.arrivals:,} contacts in all "
        f"(95% confidence intervals over the replications)",
        "",
        "Steady state (contacts arriving after the warm-up):",
        f"  probability of waiting  {_pct(summary.waiting_probability)}",
        f"  service level           {_pct(summary.service_level)}",
        f"  ASA                     {_sec(summary.asa)}",
        f"  abandonment             {_pct(summary.abandonment)}",
    ]
    lines += _figure_rows("Whole run, overall:", {"overall": summary.overall})
    lines += _figure_rows("Per queue:", summary.queues)
    lines += _figure_rows("Per channel:", summary.channels)
    unfinished = sum(r.unfinished for r in runs)
    if unfinished:
        lines += ["", f"{unfinished:,} contacts were still in the system when the runs stopped."]
    return "\n".join(lines)


_COLUMNS = (
    "dimension",
    "name",
    "interval_start",
    "figure",
    "mean",
    "ci_low",
    "ci_high",
    "replications",
)


def _rows(
    dimension: str, name: str, start: str, estimates: Iterable[tuple[str, Estimate]]
) -> Iterable[list[object]]:
    for figure, e in estimates:
        yield [dimension, name, start, figure, e.mean, e.low, e.high, e.n]


def _named(figures: Figures) -> Iterable[tuple[str, Estimate]]:
    return ((field, getattr(figures, field)) for field in Figures.__struct_fields__)


def write_csv(summary: Summary, out: TextIO) -> int:
    """One row per dimension, interval and figure (the whole run has an empty
    ``interval_start``); returns the number of rows."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(_COLUMNS)
    rows = 0

    def put(some: Iterable[list[object]]) -> None:
        nonlocal rows
        for row in some:
            w.writerow(["" if v is None else v for v in row])
            rows += 1

    put(_rows("overall", "", "", _named(summary.overall)))
    for kind, figures in (
        ("queue", summary.queues),
        ("channel", summary.channels),
        ("agent", summary.agents),
    ):
        for name, f in figures.items():
            put(_rows(kind, name, "", _named(f)))
    for i in summary.intervals:
        lengths = [("queue_length", i.queue_length), ("queue_length_max", i.queue_length_max)]
        put(_rows("overall", "", f"{i.start:g}", [*_named(i.figures), *lengths]))
    for q, intervals in summary.queue_intervals.items():
        for i in intervals:
            put(_rows("queue", q, f"{i.start:g}", _named(i.figures)))
    return rows


def _series(
    intervals: list[IntervalFigures], pick: Callable[[IntervalFigures], Estimate]
) -> tuple[list[float], list[float], list[float], list[float]]:
    xs, ys, lo, hi = [], [], [], []
    for i in intervals:
        e = pick(i)
        if e.mean is None:
            continue
        xs.append(i.start / 3600)
        ys.append(e.mean)
        lo.append(e.low if e.low is not None else e.mean)
        hi.append(e.high if e.high is not None else e.mean)
    return xs, ys, lo, hi


def write_chart(summary: Summary, path: str | Path, *, title: str = "Simulated day") -> Path:
    """Service level and queue length per interval, with their 95% bands: PNG
    or SVG by the file's suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise InvalidInputError(f"chart: {path.name}: expected a .png or .svg file")
    fig = charts.figure(figsize=(10, 6))
    top, bottom = fig.subplots(2, 1, sharex=True)
    xs, ys, lo, hi = _series(summary.intervals, lambda i: i.figures.service_level)
    top.plot(xs, [100 * y for y in ys], drawstyle="steps-post", label="service level")
    top.fill_between(
        xs, [100 * y for y in lo], [100 * y for y in hi], step="post", alpha=0.25, label="95% CI"
    )
    top.set_ylabel("service level (%)")
    top.set_ylim(0, 105)
    top.legend(loc="lower left")
    top.set_title(title)
    xs, ys, lo, hi = _series(summary.intervals, lambda i: i.queue_length)
    bottom.plot(xs, ys, drawstyle="steps-post", color="tab:red", label="mean queue length")
    bottom.fill_between(xs, lo, hi, step="post", alpha=0.25, color="tab:red", label="95% CI")
    bottom.set_ylabel("contacts waiting")
    bottom.set_xlabel("hours from the start")
    bottom.legend(loc="upper left")
    charts.save_chart(fig, path, suffix.lstrip("."))
    return path
