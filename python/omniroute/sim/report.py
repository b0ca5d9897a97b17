"""A simulation's summary as text, as CSV, and as a chart of service level and
queue length through the day."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from omniroute.errors import InvalidInputError
from omniroute.sim.run import Estimate, Figures, IntervalFigures, Summary

__all__ = ["describe", "write_chart", "write_csv"]


def _pct(e: Estimate) -> str:
    if e.mean is None:
        return "—"
    hw = f" ± {100 * e.half_width:.2f}" if e.half_width is not None else ""
    return f"{100 * e.mean:.2f}%{hw}"


def _sec(e: Estimate) -> str:
    if e.mean is None:
        return "—"
    hw = f" ± {e.half_width:.2f}" if e.half_width is not None else ""
    return f"{e.mean:.2f} s{hw}"


def _num(e: Estimate) -> str:
    if e.mean is None:
        return "—"
    hw = f" ± {e.half_width:.1f}" if e.half_width is not None else ""
    return f"{e.mean:,.1f}{hw}"


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


def _estimate_rows(dimension: str, name: str, start: str, figures: Figures) -> Iterable[list[object]]:
    for field in Figures.__struct_fields__:
        e: Estimate = getattr(figures, field)
        yield [dimension, name, start, field, e.mean, e.low, e.high, e.n]


def write_csv(summary: Summary, out: TextIO) -> int:
    """One row per dimension, interval and figure (the whole run has an empty
    ``interval_start``); returns the number of rows."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(_COLUMNS)
    rows = 0

    def put(row: list[object]) -> None:
        nonlocal rows
        w.writerow(["" if v is None else v for v in row])
        rows += 1

    for row in _estimate_rows("overall", "", "", summary.overall):
        put(row)
    for kind, figures in (
        ("queue", summary.queues),
        ("channel", summary.channels),
        ("agent", summary.agents),
    ):
        for name, f in figures.items():
            for row in _estimate_rows(kind, name, "", f):
                put(row)
    for i in summary.intervals:
        for row in _estimate_rows("overall", "", f"{i.start:g}", i.figures):
            put(row)
        for label, e in (("queue_length", i.queue_length), ("queue_length_max", i.queue_length_max)):
            put(["overall", "", f"{i.start:g}", label, e.mean, e.low, e.high, e.n])
    for q, intervals in summary.queue_intervals.items():
        for i in intervals:
            for row in _estimate_rows("queue", q, f"{i.start:g}", i.figures):
                put(row)
    return rows


def _series(
    intervals: list[IntervalFigures], get: str
) -> tuple[list[float], list[float], list[float], list[float]]:
    xs, ys, lo, hi = [], [], [], []
    for i in intervals:
        e: Estimate = getattr(i.figures, get) if get in Figures.__struct_fields__ else getattr(i, get)
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 6), constrained_layout=True)
    try:
        xs, ys, lo, hi = _series(summary.intervals, "service_level")
        top.plot(xs, [100 * y for y in ys], drawstyle="steps-post", label="service level")
        top.fill_between(
            xs, [100 * y for y in lo], [100 * y for y in hi], step="post", alpha=0.25, label="95% CI"
        )
        top.set_ylabel("service level (%)")
        top.set_ylim(0, 105)
        top.legend(loc="lower left")
        top.set_title(title)
        xs, ys, lo, hi = _series(summary.intervals, "queue_length")
        bottom.plot(xs, ys, drawstyle="steps-post", color="tab:red", label="mean queue length")
        bottom.fill_between(xs, lo, hi, step="post", alpha=0.25, color="tab:red", label="95% CI")
        bottom.set_ylabel("contacts waiting")
        bottom.set_xlabel("hours from the start")
        bottom.legend(loc="upper left")
        fig.savefig(path, format=suffix.lstrip("."))
    finally:
        plt.close(fig)
    return path
