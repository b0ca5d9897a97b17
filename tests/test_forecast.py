"""Forecasting: synthetic history with a known daily and weekly shape plus
Poisson noise (fixed seed), read from CSV and from a real SQLite store;
Holt-Winters against the seasonal-naive forecast on held-out days; every
kind of bad input; and ``omniroute forecast``."""

from __future__ import annotations

import csv
import datetime as dt
import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from omniroute import cli
from omniroute.errors import InvalidInputError
from omniroute.store import Conversation, Customer, Interaction, open_store
from omniroute.wfm import (
    Forecast,
    History,
    evaluate,
    forecast,
    history_from_store,
    read_history_csv,
    seasonal_naive,
    write_forecast_csv,
)
from omniroute.wfm.forecast import day_start, season_intervals
from omniroute.wfm.history import iso

CET = 3600  # the synthetic centre keeps UTC+01:00
MONDAY = dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(seconds=CET))).timestamp()
WEEKDAY = np.array([1.0, 1.05, 1.0, 0.95, 0.9, 0.45, 0.3])  # Monday .. Sunday
PEAK_HOUR = 10.5
Vector = npt.NDArray[np.float64]


def true_rate(intervals: int, minutes: int = 15, scale: float = 24.0) -> Vector:
    """Expected contacts per interval from Monday 00:00: a morning peak at
    10:30, a smaller one at 15:00, quiet nights, quiet weekends."""
    per_day = 24 * 60 // minutes
    t = np.arange(intervals)
    hour = (t % per_day) * 24 / per_day + minutes / 120  # the middle of the interval
    daily = np.exp(-((hour - PEAK_HOUR) ** 2) / 6) + 0.7 * np.exp(-((hour - 15) ** 2) / 5) + 0.03
    rate: Vector = scale * daily * WEEKDAY[(t // per_day) % 7]
    return rate


def true_aht(intervals: int, minutes: int = 15) -> Vector:
    per_day = 24 * 60 // minutes
    hour = (np.arange(intervals) % per_day) * 24 / per_day
    aht: Vector = 300 + 60 * np.sin(2 * np.pi * hour / 24)
    return aht


def synthetic(days: int, seed: int = 2024) -> tuple[Vector, Vector]:
    """Volume (Poisson) and observed AHT (noisy around the true one) per 15 minutes."""
    rng = np.random.default_rng(seed)
    n = days * 96
    volume = rng.poisson(true_rate(n)).astype(np.float64)
    noise = np.exp(rng.normal(0, 0.3, n) / np.sqrt(np.maximum(volume, 1)))
    aht: Vector = np.where(volume > 0, np.round(true_aht(n) * noise, 1), 0.0)
    return volume, aht


def write_csv(path: Path, volume: Vector, aht: Vector, *, start: float = MONDAY, offset: int = CET) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["interval_start", "volume", "aht_seconds"])
        for k, (v, a) in enumerate(zip(volume, aht, strict=True)):
            w.writerow([iso(start + k * 900, offset), int(v), a])
    return path


@pytest.fixture(scope="module")
def four_weeks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Vector, Vector]:
    volume, aht = synthetic(28)
    return write_csv(tmp_path_factory.mktemp("history") / "history.csv", volume, aht), volume, aht


@pytest.fixture(scope="module")
def history(four_weeks: tuple[Path, Vector, Vector]) -> History:
    return read_history_csv(four_weeks[0])


@pytest.fixture(scope="module")
def tomorrow(history: History) -> Forecast:
    return forecast(history, days=1)


# ----- reading history -----


def test_csv_history_is_the_grid_of_the_file(
    four_weeks: tuple[Path, Vector, Vector], history: History
) -> None:
    _, volume, aht = four_weeks
    assert history.start == MONDAY
    assert history.utc_offset_seconds == CET
    assert history.interval_minutes == 15
    assert len(history.volume) == 28 * 96
    assert history.volume == volume.tolist()
    assert history.workload_seconds == pytest.approx((volume * aht).tolist())
    assert history.mean_aht == pytest.approx(float((volume * aht).sum() / volume.sum()))
    # Hourly: four rows summed into each interval, AHT weighted by volume.
    hourly = read_history_csv(four_weeks[0], interval_minutes=60)
    assert len(hourly.volume) == 28 * 24
    assert hourly.volume == volume.reshape(-1, 4).sum(axis=1).tolist()
    assert hourly.workload_seconds == pytest.approx((volume * aht).reshape(-1, 4).sum(axis=1).tolist())


def test_missing_intervals_are_zero_and_epoch_seconds_are_utc(tmp_path: Path) -> None:
    path = tmp_path / "gaps.csv"
    path.write_text(
        "interval_start,volume,aht_seconds\n"
        f"{MONDAY:.0f},4,200\n"
        f"{MONDAY + 900:.0f},0,\n"  # no contacts: no AHT needed
        f"{MONDAY + 3 * 900:.0f},2,350\n"
    )
    h = read_history_csv(path)
    assert h.utc_offset_seconds == 0
    assert h.volume == [4.0, 0.0, 0.0, 2.0]
    assert h.workload_seconds == [800.0, 0.0, 0.0, 700.0]
    assert h.aht_seconds == [200.0, 250.0, 250.0, 350.0]  # the mean where nothing came


def test_queue_and_channel_columns_choose_or_sum(tmp_path: Path) -> None:
    path = tmp_path / "queues.csv"
    path.write_text(
        "interval_start,queue,channel,volume,aht_seconds,comment\n"
        "2024-01-01T00:00:00Z,support,voice,3,100,x\n"
        "2024-01-01T00:00:00Z,sales,voice,1,400,y\n"
        "2024-01-01T00:15:00Z,support,chat,2,50,\n"
        "2024-01-01T00:15:00Z,support,voice,5,100,\n"
    )
    everything = read_history_csv(path)
    assert everything.volume == [4.0, 7.0]
    assert everything.workload_seconds == [700.0, 600.0]
    support = read_history_csv(path, queue="support")
    assert support.volume == [3.0, 7.0]
    voice = read_history_csv(path, queue="support", channel="voice")
    assert voice.volume == [3.0, 5.0]
    assert voice.workload_seconds == [300.0, 500.0]
    with pytest.raises(InvalidInputError, match=r"^queue: no rows of queue 'billing'"):
        read_history_csv(path, queue="billing")


def _interaction(
    k: int,
    created: float,
    *,
    status: str,
    answered: float | None = None,
    ended: float | None = None,
    wrap: float | None = None,
    direction: str = "inbound",
    queue: str = "support",
) -> Interaction:
    return Interaction(
        id=f"i{k:06d}",
        conversation_id="c1",
        customer_id="ann",
        channel="voice",
        direction=direction,  # type: ignore[arg-type]
        queue=queue,
        status=status,  # type: ignore[arg-type]
        created_at=created,
        answered_at=answered,
        ended_at=ended,
        wrap_up_ended_at=wrap,
    )


def test_history_from_a_real_store(tmp_path: Path) -> None:
    """Two weeks of hourly arrivals written through the store's API and read
    back: the volume and AHT of every hour match what was written."""
    rng = np.random.default_rng(7)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()
    hours = 14 * 24
    counts = rng.poisson(true_rate(hours, minutes=60, scale=6.0))
    records: list[Interaction] = []
    expected_volume = [0.0] * hours
    handled: list[list[float]] = [[] for _ in range(hours)]
    for hour, count in enumerate(counts):
        for _ in range(int(count)):
            k = len(records)
            created = start + hour * 3600 + float(rng.uniform(0, 3600))
            roll = rng.uniform()
            if roll < 0.08:  # cancelled: never needed an agent, not counted
                records.append(_interaction(k, created, status="cancelled"))
                continue
            if roll < 0.12:  # outbound: not arrivals
                records.append(_interaction(k, created, status="completed", direction="outbound"))
                continue
            expected_volume[hour] += 1
            if roll < 0.22:  # abandoned: counted, no handling time
                records.append(_interaction(k, created, status="abandoned", ended=created + 40))
                continue
            answered = created + float(rng.uniform(0, 60))
            ended = answered + float(rng.exponential(280))
            wrap = ended + 30 if roll < 0.6 else None
            records.append(
                _interaction(k, created, status="completed", answered=answered, ended=ended, wrap=wrap)
            )
            handled[hour].append((wrap if wrap is not None else ended) - answered)
    records.append(
        _interaction(
            len(records), start + 5, status="completed", queue="sales", answered=start + 6, ended=start + 1000
        )
    )
    url = f"sqlite:///{tmp_path}/omniroute.db"
    with open_store(url) as store:
        with store.write() as w:
            w.add_customers([Customer(id="ann", created_at=start - 1)])
            w.add_conversations(
                [Conversation(id="c1", customer_id="ann", opened_at=start - 1, last_activity_at=start)]
            )
            w.add_interactions(records)
        h = history_from_store(store, interval_minutes=60, queue="support")
        everything = history_from_store(store, interval_minutes=60)
    mean = sum(sum(x) for x in handled) / sum(len(x) for x in handled)
    first = next(k for k, v in enumerate(expected_volume) if v)
    last = max(k for k, v in enumerate(expected_volume) if v)
    assert h.start == start + first * 3600
    assert h.utc_offset_seconds == 0
    assert h.volume == expected_volume[first : last + 1]
    expected_work = [
        v * (sum(x) / len(x) if x else mean) for v, x in zip(expected_volume, handled, strict=True)
    ][first : last + 1]
    assert h.workload_seconds == pytest.approx(expected_work)
    assert h.mean_aht == pytest.approx(sum(expected_work) / sum(expected_volume))
    assert sum(everything.volume) == sum(expected_volume) + 1  # the sales call too
    # Two weeks less the held-out day: a daily season on the last day.
    report = evaluate(h)
    assert report is not None
    assert (report.holdout_days, report.season, report.season_intervals) == (1, "daily", 24)
    assert report.actual_volume == sum(h.volume[-24:])
    assert report.volume.wape < report.volume_naive.wape
    # The first and last quiet hours are not history: just short of two weeks, a daily season.
    assert (first, last, len(h.volume)) == (1, 331, 331)
    assert forecast(h).season_intervals == 24
    with open_store(url) as store, pytest.raises(InvalidInputError, match=r"^store: no inbound .* 'nowhere'"):
        history_from_store(store, queue="nowhere")


# ----- the method -----


def test_season_is_a_week_with_two_weeks_of_history_else_a_day() -> None:
    assert season_intervals(14 * 96, 96) == 672
    assert season_intervals(14 * 96 - 1, 96) == 96
    assert season_intervals(2 * 24, 24) == 24
    with pytest.raises(InvalidInputError, match=r"^history: 1\.99 days .* at least 2 days"):
        season_intervals(2 * 96 - 1, 96)


def test_seasonal_naive_repeats_the_last_season() -> None:
    values = np.arange(10, dtype=np.float64)
    assert seasonal_naive(values, 4, 6).tolist() == [6, 7, 8, 9, 6, 7]


def test_holdout_beats_the_seasonal_naive(history: History) -> None:
    """Three weeks fitted, one week held out (the default with 4 weeks)."""
    report = evaluate(history)
    assert report is not None
    assert report.holdout_days == 7
    assert report.fit_days == 21
    assert (report.season, report.season_intervals, report.intervals) == ("weekly", 672, 672)
    assert report.actual_volume == sum(history.volume[-672:])
    # The figures of docs/forecasting.md.
    assert report.volume.wape == pytest.approx(0.3175, abs=0.002)
    assert report.volume_naive.wape == pytest.approx(0.3538, abs=0.0005)
    assert report.volume.wape < report.volume_naive.wape
    assert report.volume.mae < report.volume_naive.mae
    assert report.volume.rmse < report.volume_naive.rmse
    assert report.aht.wape < report.aht_naive.wape < 0.10
    # Poisson noise alone (the true rate as the forecast) gives about this much:
    actual = np.asarray(history.volume[-672:])
    floor = float(np.abs(true_rate(28 * 96)[-672:] - actual).sum() / actual.sum())
    assert floor == pytest.approx(0.2457, abs=0.0005)
    assert floor < report.volume.wape < floor + 0.08
    # The MAE and RMSE are what they say: recomputed here from a fresh fit.
    train = History(
        start=history.start,
        interval_minutes=15,
        utc_offset_seconds=CET,
        volume=history.volume[:-672],
        workload_seconds=history.workload_seconds[:-672],
    )
    predicted = np.asarray(forecast(train, days=7).volume)
    assert report.volume.mae == pytest.approx(float(np.abs(predicted - actual).mean()))
    assert report.volume.rmse == pytest.approx(math.sqrt(float(((predicted - actual) ** 2).mean())))
    naive = np.asarray(history.volume[-2 * 672 : -672])
    assert report.volume_naive.mae == pytest.approx(float(np.abs(naive - actual).mean()))


def test_a_day_ahead_has_the_true_shape(history: History, tomorrow: Forecast) -> None:
    f = tomorrow
    assert f.start == MONDAY + 28 * 86400  # the Monday after
    assert (len(f.volume), len(f.aht_seconds), f.season_intervals) == (96, 96, 672)
    truth = true_rate(96)
    assert abs(int(np.argmax(f.volume)) - int(np.argmax(truth))) <= 2  # within half an hour of 10:30
    assert sum(f.volume) == pytest.approx(float(truth.sum()), rel=0.05)
    assert min(f.volume) >= 0
    # The busy hours' AHT is close to the true one (each interval's is noisy).
    busy = slice(36, 48)
    assert np.mean(f.aht_seconds[busy]) == pytest.approx(float(np.mean(true_aht(96)[busy])), rel=0.03)
    assert np.asarray(f.aht_seconds[busy]) == pytest.approx(true_aht(96)[busy], rel=0.12)
    # A later start: the forecast runs on to it, the Saturday is quieter than the Monday.
    saturday = forecast(history, days=1, start=MONDAY + 33 * 86400)
    assert saturday.start == MONDAY + 33 * 86400
    assert sum(saturday.volume) < 0.6 * sum(f.volume)


def test_forecast_arguments_are_checked(history: History) -> None:
    with pytest.raises(InvalidInputError, match=r"^days: 0 "):
        forecast(history, days=0)
    with pytest.raises(
        InvalidInputError, match=r"^start: 2024-01-28T00:00:00\+01:00 is not an interval start"
    ):
        forecast(history, start=MONDAY + 27 * 86400)
    with pytest.raises(InvalidInputError, match=r"^start: .* is not an interval start"):
        forecast(history, start=MONDAY + 28 * 86400 + 60)
    with pytest.raises(InvalidInputError, match=r"^holdout_days: holding out 27 days of 28\.00 leaves 1\.00"):
        evaluate(history, holdout_days=27)
    with pytest.raises(InvalidInputError, match=r"^holdout_days: -1 "):
        evaluate(history, holdout_days=-1)
    assert evaluate(history, holdout_days=0) is None
    assert day_start("2024-01-29", CET) == MONDAY + 28 * 86400
    assert day_start("2024-01-29T00:00:00Z", CET) == MONDAY + 28 * 86400 + CET
    with pytest.raises(InvalidInputError, match=r"^start: 'monday' is not an ISO 8601"):
        day_start("monday", CET)


def test_two_days_forecast_with_a_daily_season(tmp_path: Path) -> None:
    volume, aht = synthetic(2)
    h = read_history_csv(write_csv(tmp_path / "two.csv", volume, aht))
    f = forecast(h)
    assert f.season_intervals == 96
    assert abs(int(np.argmax(f.volume)) - int(np.argmax(true_rate(96)))) <= 4
    assert evaluate(h) is None  # a day held out would leave one to fit on


def test_forecast_csv_round_trip(tomorrow: Forecast, tmp_path: Path) -> None:
    f = tomorrow
    with pytest.raises(AttributeError):
        f.start = 0.0  # type: ignore[misc]
    path = tmp_path / "forecast.csv"
    with path.open("w", newline="") as out:
        assert write_forecast_csv(f, out) == 96
    rows = list(csv.DictReader(path.read_text().splitlines()))
    assert list(rows[0]) == ["interval_start", "volume", "aht_seconds"]
    assert rows[0]["interval_start"] == "2024-01-29T00:00:00+01:00"
    assert [float(r["volume"]) for r in rows] == pytest.approx(f.volume, abs=1e-6)
    again = read_history_csv(path)
    assert again.start == f.start
    assert again.volume == pytest.approx(f.volume, abs=1e-6)


# ----- bad input -----


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    return path


HEADER = "interval_start,volume,aht_seconds\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"^history: .*bad\.csv is empty"),
        (HEADER, r"^history: .*bad\.csv has a header but no rows"),
        ("interval_start,volume\n2024-01-01T00:00Z,3\n", r"^aht_seconds: missing column in .*bad\.csv"),
        ("start,volume,aht_seconds\n", r"^interval_start: missing column"),
        (
            HEADER + "2024-01-01T00:00Z,3,200\n2024-01-01T00:15Z,-3,200\n",
            r"^volume \(row 3\): -3\.0 is negative",
        ),
        (HEADER + "2024-01-01T00:00Z,three,200\n", r"^volume \(row 2\): 'three' is not a number"),
        (HEADER + "2024-01-01T00:00Z,nan,200\n", r"^volume \(row 2\): 'nan' is not a finite number"),
        (HEADER + "2024-01-01T00:00Z,3,\n", r"^aht_seconds \(row 2\): '' is not a number"),
        (HEADER + "2024-01-01T00:00Z,3,0\n", r"^aht_seconds \(row 2\): 0\.0 with volume 3\.0"),
        (HEADER + "2024-01-01T00:00Z,3\n", r"^aht_seconds \(row 2\): missing value"),
        (HEADER + "yesterday,3,200\n", r"^interval_start \(row 2\): 'yesterday' is neither ISO 8601"),
        (HEADER + "2024-01-01T00:00,3,200\n", r"^interval_start \(row 2\): .* has no UTC offset"),
        (
            HEADER + "2024-01-01T00:15Z,3,200\n2024-01-01T00:00Z,3,200\n",
            r"^interval_start \(row 3\): is before row 2; rows must be in increasing time order",
        ),
        (
            HEADER + "2024-01-01T00:00Z,3,200\n2024-01-01T00:15Z,3,200\n2024-01-01T00:15Z,1,200\n",
            r"^interval_start \(row 4\): repeats row 3",
        ),
        (
            HEADER + "2024-01-01T00:00Z,3,200\n2024-01-01T02:00Z,3,200\n2024-01-01T04:00Z,1,200\n",
            r"^interval_start: rows are 120 minutes apart, coarser than the 15-minute",
        ),
    ],
)
def test_bad_history_names_the_column_and_row(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        read_history_csv(_write(tmp_path, text))


def test_too_little_history_and_bad_options(tmp_path: Path) -> None:
    volume, aht = synthetic(1)
    one_day = read_history_csv(write_csv(tmp_path / "one.csv", volume, aht))
    with pytest.raises(
        InvalidInputError, match=r"^history: 1\.00 days of intervals; forecasting needs at least 2"
    ):
        forecast(one_day)
    with pytest.raises(InvalidInputError, match=r"^interval_minutes: 20 is not one of 15, 30, 60"):
        read_history_csv(tmp_path / "one.csv", interval_minutes=20)
    with pytest.raises(InvalidInputError, match=r"^queue: .* has no queue column"):
        read_history_csv(tmp_path / "one.csv", queue="support")
    zero = History(start=0.0, interval_minutes=60, volume=[0.0] * 48, workload_seconds=[0.0] * 48)
    with pytest.raises(InvalidInputError, match=r"^history: every interval has zero volume"):
        forecast(zero)


# ----- omniroute forecast -----


def test_cli_forecast_writes_the_csv_and_prints_the_report(
    four_weeks: tuple[Path, Vector, Vector],
    tomorrow: Forecast,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "forecast.csv"
    assert cli.main(["forecast", "--history", str(four_weeks[0]), "--days", "1", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "held-out error: last 7 day(s), 672 intervals of 15 min" in printed
    assert "weekly season" in printed
    assert "volume  Holt-Winters" in printed
    assert "   31.8%" in printed
    assert "volume  seasonal naive" in printed
    assert "   35.4%" in printed
    assert "96 intervals written to" in printed
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert len(rows) == 96
    expected = tomorrow
    assert [float(r["volume"]) for r in rows] == pytest.approx(expected.volume, abs=1e-6)
    assert [float(r["aht_seconds"]) for r in rows] == pytest.approx(expected.aht_seconds, abs=1e-3)
    # A later day, hourly, no evaluation.
    assert (
        cli.main(
            [
                "forecast",
                "--history",
                str(four_weeks[0]),
                "--interval-minutes",
                "60",
                "--start",
                "2024-02-03",
                "--holdout-days",
                "0",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert "not evaluated" in capsys.readouterr().out
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert (len(rows), rows[0]["interval_start"]) == (24, "2024-02-03T00:00:00+01:00")


def test_cli_forecast_from_a_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(3)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()
    arrivals = [start + float(t) for t in np.sort(rng.uniform(0, 3 * 86400, 600))]
    url = f"sqlite:///{tmp_path}/omniroute.db"
    with open_store(url) as store, store.write() as w:
        w.add_customers([Customer(id="ann", created_at=start)])
        w.add_conversations(
            [Conversation(id="c1", customer_id="ann", opened_at=start, last_activity_at=start)]
        )
        w.add_interactions(
            [
                _interaction(k, t, status="completed", answered=t + 5, ended=t + 185)
                for k, t in enumerate(arrivals)
            ]
        )
    out = tmp_path / "f.csv"
    code = cli.main(["forecast", "--store", url, "--interval-minutes", "60", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    assert "fitted on 2 days, daily season (24 intervals)" in capsys.readouterr().out
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert rows[0]["interval_start"] == "2024-01-04T00:00:00+00:00"
    assert {float(r["aht_seconds"]) for r in rows} == {180.0}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--history", "{tmp}/nothing.csv"], "No such file or directory"),
        (["--history", "{tmp}/empty.csv"], "history: {tmp}/empty.csv is empty"),
        (["--history", "{tmp}/empty.csv", "--interval-minutes", "20"], "interval_minutes: 20 is not one of"),
        (["--store", "sqlite:///{tmp}/none.db"], "store: no database file"),
        (["--history", "{tmp}/short.csv"], "history: 1.00 days of intervals"),
        (["--history", "{tmp}/short.csv", "--start", "soon"], "start: 'soon' is not an ISO 8601"),
    ],
)
def test_cli_forecast_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    (tmp_path / "empty.csv").write_text("")
    volume, aht = synthetic(1)
    write_csv(tmp_path / "short.csv", volume, aht)
    argv = ["forecast", *(a.format(tmp=tmp_path) for a in args), "-o", str(tmp_path / "out.csv")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("omniroute: error: ")
    assert message.format(tmp=tmp_path) in err
    assert err.count("\n") == 1
    assert not (tmp_path / "out.csv").exists()
