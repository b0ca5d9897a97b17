"""Staffing for a day: a small known day checked against Erlang C computed
here from its textbook formula; shrinkage, occupancy and Erlang A; the CSV
round trip; the PNG and SVG charts; bad targets; and ``omniroute staffing``."""

from __future__ import annotations

import csv
import datetime as dt
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from omniroute import cli
from omniroute.errors import InvalidInputError
from omniroute.wfm import (
    PLAN_COLUMNS,
    Forecast,
    StaffingTargets,
    describe_plan,
    plan_staffing,
    read_forecast_csv,
    write_chart,
    write_plan_csv,
)
from omniroute.wfm.history import iso

START = dt.datetime(2024, 1, 8, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))).timestamp()
# 09:00 to 11:00 in half hours: a quiet start, the peak, an empty half hour, a tail.
DAY = Forecast(
    start=START,
    interval_minutes=30,
    utc_offset_seconds=3600,
    volume=[50.0, 200.0, 0.0, 100.0],
    aht_seconds=[240.0, 180.0, 200.0, 180.0],
)
TARGETS = StaffingTargets(service_level=0.8, threshold_seconds=20)


def erlang_c(agents: int, load: float) -> float:
    """The probability of waiting, straight from the textbook formula."""
    top = load**agents / math.factorial(agents) * agents / (agents - load)
    return top / (sum(load**k / math.factorial(k) for k in range(agents)) + top)


def textbook(
    volume: float, aht: float, seconds: float, sl: float, threshold: float
) -> tuple[int, float, float]:
    """The fewest agents whose service level reaches ``sl``; that level and the ASA."""
    load = volume * aht / seconds
    n = math.floor(load) + 1
    while True:
        pw = erlang_c(n, load)
        level = 1 - pw * math.exp(-(n - load) * threshold / aht)
        if level >= sl:
            return n, level, pw * aht / (n - load)
        n += 1


def test_a_known_day_matches_erlang_c() -> None:
    plan = plan_staffing(DAY, TARGETS)
    assert [r.agents for r in plan.rows] == [10, 24, 0, 14]
    assert [r.raw_agents for r in plan.rows] == [10, 24, 0, 14]
    for r, volume, aht in zip(plan.rows, DAY.volume, DAY.aht_seconds, strict=True):
        assert r.volume == volume
        assert r.aht_seconds == aht
        assert r.load_erlangs == pytest.approx(volume * aht / 1800)
        if volume == 0:
            assert (r.service_level, r.asa_seconds, r.occupancy, r.waiting_probability) == (
                1.0,
                0.0,
                0.0,
                0.0,
            )
            continue
        agents, level, asa = textbook(volume, aht, 1800, 0.8, 20)
        assert r.agents == agents
        assert r.service_level == pytest.approx(level, rel=1e-9)
        assert r.asa_seconds == pytest.approx(asa, rel=1e-9)
        assert r.waiting_probability == pytest.approx(erlang_c(agents, r.load_erlangs), rel=1e-9)
        assert r.occupancy == pytest.approx(r.load_erlangs / agents)
        assert r.abandonment == 0.0
    # The textbook case: 100 calls in half an hour of 180 s each (10 Erlangs) at 80 % in 20 s
    # take 14 agents, who answer 88.8 % in time with an ASA of 7.8 s; 13 would answer 79.6 %.
    tail = plan.rows[3]
    assert (tail.load_erlangs, tail.agents) == (10.0, 14)
    assert (round(tail.service_level, 3), round(tail.asa_seconds, 1)) == (0.888, 7.8)
    pw = erlang_c(13, 10.0)
    assert round(1 - pw * math.exp(-3 * 20 / 180), 3) == 0.796
    assert [r.interval_start for r in plan.rows] == [START + k * 1800 for k in range(4)]
    assert plan.agent_hours == (10 + 24 + 0 + 14) / 2
    assert plan.service_level == pytest.approx(sum(r.service_level * r.volume for r in plan.rows) / 350)


def test_shrinkage_occupancy_and_asa_raise_the_agents() -> None:
    shrunk = plan_staffing(DAY, StaffingTargets(service_level=0.8, threshold_seconds=20, shrinkage=0.3))
    assert [r.raw_agents for r in shrunk.rows] == [10, 24, 0, 14]
    assert [r.agents for r in shrunk.rows] == [math.ceil(n / 0.7 - 1e-9) for n in (10, 24, 0, 14)]
    assert [r.agents for r in shrunk.rows] == [15, 35, 0, 20]
    capped = plan_staffing(DAY, StaffingTargets(service_level=0.8, threshold_seconds=20, max_occupancy=0.7))
    for r in capped.rows:
        assert r.occupancy <= 0.7
        if r.volume:
            by_service = textbook(r.volume, r.aht_seconds, 1800, 0.8, 20)[0]
            assert r.raw_agents == max(by_service, math.ceil(r.load_erlangs / 0.7))
    assert [r.raw_agents for r in capped.rows] == [10, 29, 0, 15]
    fast = plan_staffing(DAY, StaffingTargets(service_level=0.8, threshold_seconds=20, max_asa=5))
    assert all(r.asa_seconds <= 5 for r in fast.rows)
    assert [r.raw_agents for r in fast.rows] >= [r.raw_agents for r in plan_staffing(DAY, TARGETS).rows]


def test_erlang_a_when_callers_abandon() -> None:
    patient = StaffingTargets(service_level=0.8, threshold_seconds=20, patience_seconds=120)
    plan = plan_staffing(DAY, patient)
    erlang_c_plan = plan_staffing(DAY, TARGETS)
    assert "Erlang A" in describe_plan(plan)
    for a, c in zip(plan.rows, erlang_c_plan.rows, strict=True):
        assert a.agents <= c.agents  # those who hang up do not need an agent
        if a.volume:
            assert 0 < a.abandonment < 0.1
            assert a.service_level >= 0.8
    capped = plan_staffing(
        DAY,
        StaffingTargets(service_level=0.5, threshold_seconds=20, patience_seconds=60, max_abandonment=0.01),
    )
    assert all(r.abandonment <= 0.01 for r in capped.rows)


def test_zero_volume_needs_no_agents() -> None:
    quiet = Forecast(start=0.0, interval_minutes=15, volume=[0.0, 0.0], aht_seconds=[0.0, 300.0])
    plan = plan_staffing(quiet, TARGETS)
    assert [(r.agents, r.raw_agents, r.load_erlangs) for r in plan.rows] == [(0, 0, 0.0), (0, 0, 0.0)]
    assert plan.service_level == 1.0


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ({"service_level": 1.5}, r"^service_level: 1\.5 is not a fraction"),
        ({"service_level": 0.0}, r"^service_level: 0\.0 is not a fraction"),
        ({"threshold_seconds": -1}, r"^threshold_seconds: -1 is negative"),
        ({"shrinkage": -0.1}, r"^shrinkage: -0\.1 is not a fraction in \[0, 1\)"),
        ({"shrinkage": 1.0}, r"^shrinkage: 1\.0 is not a fraction"),
        ({"max_occupancy": 0.0}, r"^max_occupancy: 0\.0 is not a fraction in \(0, 1\]"),
        ({"max_occupancy": float("nan")}, r"^max_occupancy: nan is not a number"),
        ({"patience_seconds": 0}, r"^patience_seconds: 0 is not > 0"),
        ({"max_abandonment": 0.05}, r"^max_abandonment: needs patience_seconds"),
        ({"patience_seconds": 60, "max_abandonment": 1.5}, r"^max_abandonment: 1\.5 is not a fraction"),
        ({"patience_seconds": 60, "max_asa": 10}, r"^max_asa: only with Erlang C"),
        ({"max_asa": 0}, r"^max_asa: 0 is not > 0"),
    ],
)
def test_bad_targets_name_the_field(targets: dict[str, float], message: str) -> None:
    fields: dict[str, float] = {"service_level": 0.8, "threshold_seconds": 20, **targets}
    with pytest.raises(InvalidInputError, match=message):
        plan_staffing(DAY, StaffingTargets(**fields))


def test_bad_forecast_values_name_the_interval() -> None:
    bad = Forecast(start=0.0, interval_minutes=15, volume=[1.0, -1.0], aht_seconds=[100.0, 100.0])
    with pytest.raises(InvalidInputError, match=r"^volume\[1\]: -1\.0 is not a count"):
        plan_staffing(bad, TARGETS)
    bad = Forecast(start=0.0, interval_minutes=15, volume=[1.0, 1.0], aht_seconds=[100.0, 0.0])
    with pytest.raises(InvalidInputError, match=r"^aht_seconds\[1\]: 0\.0 is not > 0"):
        plan_staffing(bad, TARGETS)
    bad = Forecast(start=0.0, interval_minutes=20, volume=[1.0], aht_seconds=[100.0])
    with pytest.raises(InvalidInputError, match=r"^interval_minutes: 20 "):
        plan_staffing(bad, TARGETS)


def test_the_table_shows_every_interval() -> None:
    text = describe_plan(plan_staffing(DAY, TARGETS))
    lines = text.splitlines()
    assert lines[0].split() == [
        "time",
        "volume",
        "AHT",
        "s",
        "Erlangs",
        "raw",
        "agents",
        "SL",
        "ASA",
        "s",
        "occ",
        "P(wait)",
        "aband",
    ]
    assert lines[1].split()[:6] == ["09:00", "50.0", "240.0", "6.67", "10", "10"]
    assert lines[2].split()[:6] == ["09:30", "200.0", "180.0", "20.00", "24", "24"]
    assert lines[3].split()[:6] == ["10:00", "0.0", "200.0", "0.00", "0", "0"]
    assert "peak 24 agents, 24 agent-hours" in lines[-1]
    assert lines[-1].startswith("Erlang C: 80% in 20 s")


def test_plan_csv_round_trip(tmp_path: Path) -> None:
    plan = plan_staffing(DAY, StaffingTargets(service_level=0.8, threshold_seconds=20, shrinkage=0.25))
    path = tmp_path / "plan.csv"
    with path.open("w", newline="") as out:
        assert write_plan_csv(plan, out) == 4
    rows = list(csv.DictReader(path.read_text().splitlines()))
    assert tuple(rows[0]) == PLAN_COLUMNS
    assert [r["interval_start"] for r in rows] == [
        "2024-01-08T09:00:00+01:00",
        "2024-01-08T09:30:00+01:00",
        "2024-01-08T10:00:00+01:00",
        "2024-01-08T10:30:00+01:00",
    ]
    for written, r in zip(rows, plan.rows, strict=True):
        assert int(written["agents"]) == r.agents
        assert int(written["raw_agents"]) == r.raw_agents
        for column, value in (
            ("volume", r.volume),
            ("load_erlangs", r.load_erlangs),
            ("service_level", r.service_level),
            ("asa_seconds", r.asa_seconds),
            ("occupancy", r.occupancy),
            ("waiting_probability", r.waiting_probability),
            ("abandonment", r.abandonment),
        ):
            assert float(written[column]) == value  # exact: repr round-trips
    # Its first three columns are a forecast again: the same plan comes back.
    again = read_forecast_csv(path)
    assert (again.start, again.interval_minutes, again.utc_offset_seconds) == (START, 30, 3600)
    assert again.volume == DAY.volume
    replanned = plan_staffing(again, plan.targets).rows
    assert [r for r in replanned if r.volume] == [r for r in plan.rows if r.volume]
    assert (replanned[2].volume, replanned[2].agents) == (0.0, 0)  # an empty interval's AHT is moot


def test_charts_are_png_and_svg(tmp_path: Path) -> None:
    plan = plan_staffing(DAY, TARGETS)
    png = tmp_path / "plan.png"
    write_chart(plan, png)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1200, 500)
    svg = tmp_path / "plan.SVG"
    write_chart(plan, svg)
    root = ET.fromstring(svg.read_bytes())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert svg.stat().st_size > 20_000
    # Four bars: one patch per interval (the empty one too, of height 0).
    bars = [e for e in root.iter() if e.get("id", "").startswith("patch_")]
    assert len(bars) >= 4
    with pytest.raises(
        InvalidInputError, match=r"^chart: '.*plan\.jpg' ends in \.jpg; a chart is \.png or \.svg"
    ):
        write_chart(plan, tmp_path / "plan.jpg")
    with pytest.raises(InvalidInputError, match=r"^chart: .* ends in no suffix"):
        write_chart(plan, tmp_path / "plan")
    assert not (tmp_path / "plan.jpg").exists()


def test_a_week_long_chart_labels_days(tmp_path: Path) -> None:
    week = Forecast(
        start=START,
        interval_minutes=60,
        volume=[float(20 + 10 * math.sin(k / 4)) for k in range(24 * 7)],
        aht_seconds=[200.0] * (24 * 7),
    )
    plan = plan_staffing(week, TARGETS)
    assert describe_plan(plan).splitlines()[1].startswith("01-08 08:00")  # UTC: the offset is 0
    write_chart(plan, tmp_path / "week.png")
    assert (tmp_path / "week.png").stat().st_size > 20_000


# ----- omniroute staffing -----


def _history(path: Path, days: int = 3) -> Path:
    """Hourly history with a daytime peak, Poisson noise."""
    rng = np.random.default_rng(11)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["interval_start", "volume", "aht_seconds"])
        for k in range(days * 24):
            hour = k % 24
            volume = int(rng.poisson(40 * math.exp(-((hour - 11) ** 2) / 8) + 1))
            w.writerow([iso(start + k * 3600), volume, 240 if volume else ""])
    return path


def test_cli_staffing_from_a_forecast_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    forecast_csv = tmp_path / "forecast.csv"
    forecast_csv.write_text(
        "interval_start,volume,aht_seconds\n"
        + "".join(
            f"{iso(s, 3600)},{v},{a}\n"
            for s, v, a in zip(DAY.starts(), DAY.volume, DAY.aht_seconds, strict=True)
        )
    )
    out, chart = tmp_path / "plan.csv", tmp_path / "plan.png"
    argv = [
        "staffing",
        "--forecast",
        str(forecast_csv),
        "--service-level",
        "0.8",
        "--threshold",
        "20",
        "--shrinkage",
        "0.3",
        "--csv",
        str(out),
        "--chart",
        str(chart),
    ]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[1].split()[:6] == ["09:00", "50.0", "240.0", "6.67", "10", "15"]
    assert "peak 35 agents" in printed[-1]
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert [int(r["agents"]) for r in rows] == [15, 35, 0, 20]
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_staffing_from_history_with_erlang_a(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history = _history(tmp_path / "history.csv")
    chart = tmp_path / "plan.svg"
    argv = [
        "staffing",
        "--history",
        str(history),
        "--interval-minutes",
        "60",
        "--service-level",
        "0.8",
        "--threshold",
        "20",
        "--patience",
        "90",
        "--max-abandonment",
        "0.05",
        "--max-occupancy",
        "0.85",
        "--chart",
        str(chart),
    ]
    assert cli.main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 1 + 24 + 1
    assert printed[1].startswith("00:00")
    assert printed[-1].startswith("Erlang A: 80% in 20 s, max occupancy 85%")
    agents = [int(line.split()[5]) for line in printed[1:-1]]
    assert 9 <= agents.index(max(agents)) <= 13  # the peak is around 11:00
    assert ET.fromstring(chart.read_bytes()).tag.endswith("svg")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--service-level", "1.5"], "service_level: 1.5 is not a fraction"),
        (["--shrinkage", "-0.2"], "shrinkage: -0.2 is not a fraction"),
        (["--chart", "{tmp}/plan.gif"], "chart: '{tmp}/plan.gif' ends in .gif"),
        (["--max-abandonment", "0.05"], "max_abandonment: needs patience_seconds"),
        (["--interval-minutes", "45"], "interval_minutes: 45 is not one of 15, 30, 60"),
        (["--max-asa", "-3"], "max_asa: -3.0 is not > 0 seconds"),
    ],
)
def test_cli_staffing_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    history = _history(tmp_path / "history.csv")
    argv = [
        "staffing",
        "--history",
        str(history),
        "--service-level",
        "0.8",
        "--threshold",
        "20",
        *(a.format(tmp=tmp_path) for a in extra),
        "--csv",
        str(tmp_path / "plan.csv"),
    ]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("omniroute: error: ")
    assert message.format(tmp=tmp_path) in err
    assert err.count("\n") == 1
    assert not (tmp_path / "plan.csv").exists()


def test_cli_staffing_forecast_file_takes_no_history_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "forecast.csv"
    path.write_text("interval_start,volume,aht_seconds\n2024-01-08T09:00:00Z,10,200\n")
    argv = ["staffing", "--forecast", str(path), "--service-level", "0.8", "--threshold", "20"]
    assert cli.main([*argv, "--queue", "support"]) == 2
    assert capsys.readouterr().err == (
        "omniroute: error: forecast: --start, --queue and --channel choose what to forecast from history\n"
    )
    assert cli.main(argv) == 0
    # One row: 15-minute intervals by default, 10 x 200 s / 900 s = 2.22 Erlangs.
    assert capsys.readouterr().out.splitlines()[1].split()[:6] == ["09:00", "10.0", "200.0", "2.22", "4", "4"]
    assert textbook(10, 200, 900, 0.8, 20)[0] == 4


def test_cli_staffing_needs_one_source(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["staffing", "--service-level", "0.8", "--threshold", "20"])
    assert exit_.value.code == 2
    assert "one of the arguments --forecast --history --store is required" in capsys.readouterr().err
