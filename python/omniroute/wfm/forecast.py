"""Forecasting contact volume and handling time per interval from history.

The method is Holt-Winters (triple exponential smoothing) with an additive
damped trend and additive seasonality (statsmodels' ``ExponentialSmoothing``),
fitted twice: once to the volume and once to the workload (volume x AHT,
seconds of work). The forecast AHT is workload / volume. The season is one
week of intervals when the history holds at least two weeks (the weekly
cycle contains the daily one: Monday 10:00 is its own state), otherwise one
day (at least two days are needed). States are initialised heuristically
(a seasonal decomposition of the first cycles), so only the smoothing
parameters are fitted. See ``docs/forecasting.md``.

::

    from omniroute.wfm import read_history_csv, forecast, evaluate

    history = read_history_csv("history.csv", interval_minutes=15)
    tomorrow = forecast(history, days=1)
    report = evaluate(history)            # held-out MAE, RMSE, WAPE vs seasonal naive
    print(describe_report(report))
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from typing import TextIO

import msgspec
import numpy as np
import numpy.typing as npt
from statsmodels.tsa.holtwinters import ExponentialSmoothing

from omniroute.errors import InvalidInputError
from omniroute.wfm.history import History, Intervals, iso

__all__ = [
    "FORECAST_COLUMNS",
    "Errors",
    "Forecast",
    "HoldoutReport",
    "day_start",
    "describe_report",
    "evaluate",
    "forecast",
    "season_intervals",
    "seasonal_naive",
    "write_forecast_csv",
]

FORECAST_COLUMNS: tuple[str, ...] = ("interval_start", "volume", "aht_seconds")
# A forecast volume below this has its AHT from the history's mean, not from
# workload / volume (which is noise over almost nothing).
_TINY_VOLUME = 0.05
# The furthest a forecast reaches past the end of the history.
MAX_HORIZON_DAYS = 366

Vector = npt.NDArray[np.float64]


class Forecast(Intervals, frozen=True, kw_only=True):
    """Volume and AHT per interval, from ``start`` on."""

    aht_seconds: list[float]
    # The seasonal period the model used (intervals); None if not forecast here.
    season_intervals: int | None = None


class Errors(msgspec.Struct, frozen=True, kw_only=True):
    """Forecast errors over a span: mean absolute, root mean square, and
    weighted absolute percentage (Σ|error| / Σ actual)."""

    mae: float
    rmse: float
    wape: float


class HoldoutReport(msgspec.Struct, frozen=True, kw_only=True):
    """How the method did on the last ``holdout_days`` of the history when
    fitted on the rest, next to the seasonal-naive forecast (the same interval
    one season earlier) on the same span. AHT errors are weighted by the
    actual volume of each interval."""

    holdout_days: int
    interval_minutes: int
    intervals: int
    fit_days: float
    season_intervals: int
    season: str  # "weekly" or "daily"
    actual_volume: float
    volume: Errors
    volume_naive: Errors
    aht: Errors
    aht_naive: Errors


def season_intervals(intervals: int, intervals_per_day: int, *, what: str = "history") -> int:
    """One week of intervals when there are two weeks, else one day when
    there are two days; fewer is an error."""
    week = 7 * intervals_per_day
    if intervals >= 2 * week:
        return week
    if intervals >= 2 * intervals_per_day:
        return intervals_per_day
    raise InvalidInputError(
        f"{what}: {intervals / intervals_per_day:.2f} days of intervals; forecasting needs "
        "at least 2 days (2 weeks for the weekly season)"
    )


def _holt_winters(y: Vector, season: int, horizon: int) -> Vector:
    if float(np.ptp(y)) == 0.0:
        return np.full(horizon, float(y[0]))  # nothing to smooth
    model = ExponentialSmoothing(
        y,
        trend="add",
        damped_trend=True,
        seasonal="add",
        seasonal_periods=season,
        initialization_method="heuristic",
    )
    fitted = model.fit()
    out: Vector = np.clip(np.asarray(fitted.forecast(horizon), dtype=np.float64), 0.0, None)
    return out


def _aht(volume: Vector, workload: Vector, mean_aht: float, low: float, high: float) -> Vector:
    safe = np.where(volume >= _TINY_VOLUME, volume, 1.0)
    aht = np.where((volume >= _TINY_VOLUME) & (workload > 0), workload / safe, mean_aht)
    out: Vector = np.clip(aht, low, high)
    return out


def _aht_range(history: History) -> tuple[float, float]:
    per = [w / v for v, w in zip(history.volume, history.workload_seconds, strict=True) if v > 0]
    return (min(per), max(per)) if per else (0.0, 0.0)


def _predict(history: History, horizon: int) -> tuple[Vector, Vector, int]:
    """Volume and AHT for the ``horizon`` intervals after the history, and the season."""
    if sum(history.volume) <= 0:
        raise InvalidInputError("history: every interval has zero volume; nothing to forecast")
    season = season_intervals(len(history.volume), history.intervals_per_day)
    volume = _holt_winters(np.asarray(history.volume, dtype=np.float64), season, horizon)
    workload = _holt_winters(np.asarray(history.workload_seconds, dtype=np.float64), season, horizon)
    low, high = _aht_range(history)
    return volume, _aht(volume, workload, history.mean_aht, low, high), season


def forecast(history: History, *, days: int = 1, start: float | None = None) -> Forecast:
    """``days`` days of intervals from ``start`` (Unix seconds, on the
    history's interval grid, at or after its end; default: its end)."""
    if type(days) is not int or days < 1:
        raise InvalidInputError(f"days: {days!r} is not a whole number of days ≥ 1")
    step = history.step
    begin = history.end if start is None else float(start)
    if not math.isfinite(begin):
        raise InvalidInputError(f"start: {start!r} is not a time")
    skip = (begin - history.end) / step
    if skip < 0 or abs(skip - round(skip)) > 1e-6:
        raise InvalidInputError(
            f"start: {iso(begin, history.utc_offset_seconds)} is not an interval start at or after the "
            f"end of the history ({iso(history.end, history.utc_offset_seconds)}, "
            f"{history.interval_minutes}-minute intervals)"
        )
    skip = round(skip)
    count = days * history.intervals_per_day
    if skip + count > MAX_HORIZON_DAYS * history.intervals_per_day:
        raise InvalidInputError(f"start: more than {MAX_HORIZON_DAYS} days after the end of the history")
    volume, aht, season = _predict(history, skip + count)
    return Forecast(
        start=history.end + skip * step,
        interval_minutes=history.interval_minutes,
        utc_offset_seconds=history.utc_offset_seconds,
        volume=[float(v) for v in volume[skip:]],
        aht_seconds=[float(a) for a in aht[skip:]],
        season_intervals=season,
    )


def seasonal_naive(values: Vector, season: int, horizon: int) -> Vector:
    """Each of the next ``horizon`` values is the value one season earlier
    (the last season repeated)."""
    last = values[-season:]
    out: Vector = np.resize(last, horizon).astype(np.float64)
    return out


def _errors(error: Vector, actual: Vector, weights: Vector | None = None) -> Errors:
    w = np.ones_like(actual) if weights is None else weights
    total = float(w.sum())
    if total <= 0:
        return Errors(mae=0.0, rmse=0.0, wape=0.0)
    absolute = float((w * np.abs(error)).sum())
    denominator = float((w * actual).sum())
    return Errors(
        mae=absolute / total,
        rmse=math.sqrt(float((w * error**2).sum()) / total),
        wape=absolute / denominator if denominator > 0 else math.inf,
    )


def evaluate(history: History, *, holdout_days: int | None = None) -> HoldoutReport | None:
    """Fit on all but the last ``holdout_days`` days (default 7 when the
    history holds 3 weeks, else 1) and score the forecast of those days
    against what happened, next to the seasonal-naive forecast.

    With the default, None when the history is too short to hold a day out
    and keep two days to fit on; ``holdout_days=0`` skips the evaluation."""
    per_day = history.intervals_per_day
    explicit = holdout_days is not None
    if holdout_days is None:
        holdout_days = 7 if len(history.volume) >= 21 * per_day else 1
    if type(holdout_days) is not int or holdout_days < 0:
        raise InvalidInputError(f"holdout_days: {holdout_days!r} is not a whole number of days ≥ 0")
    if holdout_days == 0:
        return None
    held = holdout_days * per_day
    fit_length = len(history.volume) - held
    if fit_length < 2 * per_day:
        if not explicit:
            return None
        raise InvalidInputError(
            f"holdout_days: holding out {holdout_days} days of {history.days:.2f} leaves "
            f"{max(fit_length, 0) / per_day:.2f} to fit on; at least 2 are needed"
        )
    train = msgspec.structs.replace(
        history, volume=history.volume[:fit_length], workload_seconds=history.workload_seconds[:fit_length]
    )
    volume, aht, season = _predict(train, held)
    actual_volume = np.asarray(history.volume[fit_length:], dtype=np.float64)
    actual_work = np.asarray(history.workload_seconds[fit_length:], dtype=np.float64)
    safe = np.where(actual_volume > 0, actual_volume, 1.0)
    actual_aht = np.where(actual_volume > 0, actual_work / safe, 0.0)
    # The seasonal-naive AHT: workload / volume one season earlier, the mean where nothing came.
    past_volume = seasonal_naive(np.asarray(train.volume, dtype=np.float64), season, held)
    past_work = seasonal_naive(np.asarray(train.workload_seconds, dtype=np.float64), season, held)
    past_safe = np.where(past_volume > 0, past_volume, 1.0)
    naive_aht = np.where(past_volume > 0, past_work / past_safe, train.mean_aht)
    return HoldoutReport(
        holdout_days=holdout_days,
        interval_minutes=history.interval_minutes,
        intervals=held,
        fit_days=fit_length / per_day,
        season_intervals=season,
        season="weekly" if season == 7 * per_day else "daily",
        actual_volume=float(actual_volume.sum()),
        volume=_errors(volume - actual_volume, actual_volume),
        volume_naive=_errors(past_volume - actual_volume, actual_volume),
        aht=_errors(aht - actual_aht, actual_aht, actual_volume),
        aht_naive=_errors(naive_aht - actual_aht, actual_aht, actual_volume),
    )


def describe_report(report: HoldoutReport | None) -> str:
    """The held-out error report as a few lines of text."""
    if report is None:
        return "held-out error: not evaluated (the history is too short to hold a day out and fit on 2)\n"
    lines = [
        f"held-out error: last {report.holdout_days} day(s), {report.intervals} intervals of "
        f"{report.interval_minutes} min, {report.actual_volume:.0f} contacts; fitted on "
        f"{report.fit_days:g} days, {report.season} season ({report.season_intervals} intervals)",
        f"{'':<22}{'MAE':>10}{'RMSE':>10}{'WAPE':>9}",
    ]
    for label, e in (
        ("volume  Holt-Winters", report.volume),
        ("volume  seasonal naive", report.volume_naive),
        ("AHT (s) Holt-Winters", report.aht),
        ("AHT (s) seasonal naive", report.aht_naive),
    ):
        lines.append(f"{label:<22}{e.mae:>10.2f}{e.rmse:>10.2f}{e.wape:>8.1%}")
    return "\n".join(lines) + "\n"


def write_forecast_csv(f: Forecast, out: TextIO) -> int:
    """Write ``interval_start,volume,aht_seconds`` rows (times ISO 8601 in the
    forecast's offset); returns how many rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FORECAST_COLUMNS)
    for start, volume, aht in zip(f.starts(), f.volume, f.aht_seconds, strict=True):
        writer.writerow((iso(start, f.utc_offset_seconds), repr(round(volume, 6)), repr(round(aht, 3))))
    return len(f.volume)


def day_start(text: str, utc_offset_seconds: int) -> float:
    """Unix seconds of an ISO 8601 date (midnight) or time; without an offset,
    in ``utc_offset_seconds``."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"start: {text!r} is not an ISO 8601 date or time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone(dt.timedelta(seconds=utc_offset_seconds)))
    return when.timestamp()
