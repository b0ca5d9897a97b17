"""The simulator: the real engine in virtual time, checked against queueing
theory (Erlang C and Erlang A within the simulation's own 95% confidence
interval) and against hand-worked replays; scenarios validated like the
configuration."""

from __future__ import annotations

import csv
import io
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import msgspec
import pytest

from omniroute import cli, sim
from omniroute.errors import InvalidConfigError, InvalidInputError
from omniroute.wfm.erlang import ErlangA, ErlangC

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "day.toml"


def mmc(
    agents: int,
    rho: float,
    *,
    aht: float = 180.0,
    hours: float,
    warmup_hours: float = 1.0,
    patience: float | None = None,
    replications: int = 20,
    seed: int = 11,
    threshold: float = 20.0,
) -> dict[str, Any]:
    """One FCFS queue, Poisson arrivals at load ``rho * agents``, exponential handle times."""
    per_hour = rho * agents / aht * 3600
    arrivals: dict[str, Any] = {
        "queue": "q",
        "channel": "voice",
        "per_hour": per_hour,
        "handle": {"kind": "exponential", "mean": aht},
    }
    if patience is not None:
        arrivals["patience"] = {"kind": "exponential", "mean": patience}
    return {
        "seed": seed,
        "replications": replications,
        "duration_seconds": hours * 3600,
        "warmup_seconds": warmup_hours * 3600,
        "drain_seconds": 4 * 3600,
        "channels": [{"name": "voice", "cost": 60}],
        "queues": [{"name": "q", "service_level_seconds": threshold}],
        "agents": [{"name": "a", "count": agents, "queues": {"q": 0}}],
        "arrivals": [arrivals],
    }


def report(name: str, estimate: sim.Estimate, theory: float) -> str:
    return f"{name}: simulated {estimate.mean} ± {estimate.half_width}, theory {theory}"


# ----- against theory -----


@pytest.mark.parametrize(
    ("agents", "rho", "hours"),
    [(10, 0.85, 10), (50, 0.9, 4), (120, 0.9, 3)],
)
def test_erlang_c_within_the_confidence_interval(agents: int, rho: float, hours: float) -> None:
    scenario = sim.parse_scenario(mmc(agents, rho, hours=hours))
    summary = sim.simulate(scenario)
    per_hour = rho * agents / 180 * 3600
    theory = ErlangC(contacts=per_hour, interval_seconds=3600, aht_seconds=180)
    checks = {
        "waiting probability": (summary.waiting_probability, theory.waiting_probability(agents)),
        "service level": (summary.service_level, theory.service_level(agents, 20.0)),
        "ASA": (summary.asa, theory.asa(agents)),
    }
    for name, (estimate, expected) in checks.items():
        assert estimate.n == 20
        assert estimate.covers(expected), report(name, estimate, expected)
    # No abandonment in Erlang C: none simulated.
    assert summary.abandonment.mean == 0.0
    # The production metrics agree with the tally over the same contacts.
    assert summary.overall.abandon_rate.mean == 0.0
    assert all(r.unfinished == 0 for r in summary.replications)


@pytest.mark.parametrize(("agents", "rho", "patience"), [(20, 1.0, 120.0), (110, 1.05, 300.0)])
def test_erlang_a_within_the_confidence_interval(agents: int, rho: float, patience: float) -> None:
    scenario = sim.parse_scenario(mmc(agents, rho, hours=3, patience=patience))
    summary = sim.simulate(scenario)
    per_hour = rho * agents / 180 * 3600
    theory = ErlangA(contacts=per_hour, interval_seconds=3600, aht_seconds=180, patience_seconds=patience)
    checks = {
        "waiting probability": (summary.waiting_probability, theory.waiting_probability(agents)),
        "abandonment": (summary.abandonment, theory.abandonment(agents)),
        "service level": (summary.service_level, theory.service_level(agents, 20.0)),
        "ASA": (summary.asa, theory.asa(agents)),
    }
    for name, (estimate, expected) in checks.items():
        assert estimate.covers(expected), report(name, estimate, expected)


def test_the_production_metrics_and_the_tally_count_the_same_contacts() -> None:
    scenario = sim.parse_scenario(mmc(15, 0.95, hours=2, warmup_hours=0, patience=60.0, replications=3))
    summary = sim.simulate(scenario)
    for r in summary.replications:
        stats = r.snapshot.queues["q"].since_start
        assert stats.offered == r.arrivals == r.steady.arrivals
        assert stats.answered == r.steady.answered
        assert stats.abandoned == r.steady.abandoned
        assert stats.wait_seconds == pytest.approx(r.steady.wait_seconds)
        assert stats.completed == r.steady.answered
        assert sum(i.stats.offered for i in r.intervals.overall) == r.arrivals


# ----- the same seed, the same result -----


def test_the_same_seed_gives_the_same_result() -> None:
    data = mmc(8, 0.9, hours=1, warmup_hours=0, patience=90.0, replications=3)
    first = sim.simulate(sim.parse_scenario(data))
    again = sim.simulate(sim.parse_scenario(data))
    other = sim.simulate(sim.parse_scenario({**data, "seed": 12}))
    assert msgspec.msgpack.encode(first.replications) == msgspec.msgpack.encode(again.replications)
    assert first.replications[0].steady != other.replications[0].steady
    # Replications differ from each other, and any one can be rerun alone.
    assert first.replications[0].steady != first.replications[1].steady
    alone = sim.run_replication(sim.parse_scenario(data), 2)
    assert msgspec.msgpack.encode(alone) == msgspec.msgpack.encode(first.replications[2])


# ----- customers and agents, worked by hand -----


def replay_scenario(replay: list[dict[str, Any]], **group: Any) -> dict[str, Any]:
    return {
        "replications": 1,
        "duration_seconds": 1000,
        "drain_seconds": 5000,
        "channels": [{"name": "voice", "cost": 60}],
        "queues": [{"name": "q", "service_level_seconds": 20}],
        "agents": [{"name": "a", "count": 1, "queues": {"q": 0}, **group}],
        "replay": replay,
    }


def test_a_replay_is_followed_to_the_second() -> None:
    scenario = sim.parse_scenario(
        replay_scenario(
            [
                {"at": 0, "queue": "q", "channel": "voice", "handle_seconds": 100},
                {"at": 10, "queue": "q", "channel": "voice", "handle_seconds": 50},
                {"at": 20, "queue": "q", "channel": "voice", "handle_seconds": 50, "patience_seconds": 5},
                {"at": 30, "queue": "q", "channel": "voice", "handle_seconds": 10, "patience_seconds": 500},
            ]
        )
    )
    (r,) = sim.simulate(scenario).replications
    t = r.steady
    # Contact 0 at once; 1 waits 90 s (until 100); 2 gives up after 5 s; 3 waits 120 s (until 150).
    assert (t.arrivals, t.answered, t.abandoned, t.waited) == (4, 3, 1, 3)
    assert t.wait_seconds == pytest.approx(90 + 120)
    assert t.abandon_wait_seconds == pytest.approx(5)
    assert t.answered_within == 1
    assert r.end == pytest.approx(160)
    agent = r.snapshot.agents["a-1"].since_start
    assert agent.completed == 3
    assert agent.handling_seconds == pytest.approx(160)


def test_wrap_up_is_the_engines_own() -> None:
    data = replay_scenario(
        [
            {"at": 0, "queue": "q", "channel": "voice", "handle_seconds": 100},
            {"at": 1, "queue": "q", "channel": "voice", "handle_seconds": 100},
        ]
    )
    data["queues"][0]["wrap_up"] = 30
    (r,) = sim.simulate(sim.parse_scenario(data)).replications
    # The second contact waits for the first to end (100) and its wrap-up (130).
    assert r.steady.wait_seconds == pytest.approx(129)
    assert r.end == pytest.approx(260)


def test_shifts_and_breaks_take_agents_away() -> None:
    data = mmc(4, 0.5, hours=3, warmup_hours=0, replications=1)
    data["agents"] = [
        {
            "name": "day",
            "count": 4,
            "queues": {"q": 0},
            "shifts": [{"start": 0, "end": 7200}],
            "breaks": [{"start": 1800, "seconds": 1800, "reason": "lunch"}],
        }
    ]
    data["agent_intervals"] = True
    data["drain_seconds"] = 0
    (r,) = sim.simulate(sim.parse_scenario(data)).replications
    # Nobody answers during the break (the second half hour of the first hour) or after the shift.
    answered = {i.start: i.stats.answered for i in r.intervals.overall}
    assert answered[1800] == answered[2700] == 0
    assert answered[0] > 0
    assert answered[3600] > 0
    assert answered[7200] == answered[8100] == answered[9000] == answered[9900] == 0
    for agent in ("day-1", "day-4"):
        stats = r.snapshot.agents[agent].since_start
        # Logged in for the whole shift (a break is away, still logged in) and no longer.
        assert stats.logged_in_seconds == pytest.approx(7200)
    # Contacts arriving after the shift wait until the run stops.
    assert r.unfinished > 0


def test_rejections_and_missed_offers_go_to_other_agents() -> None:
    data = mmc(6, 0.5, hours=2, warmup_hours=0, replications=1)
    data["agents"] = [
        {"name": "picky", "count": 3, "queues": {"q": 0}, "reject_probability": 1.0},
        {
            "name": "asleep",
            "count": 2,
            "queues": {"q": 0},
            "no_answer_probability": 1.0,
            "recover_seconds": 600,
        },
        {"name": "willing", "count": 4, "queues": {"q": 0}},
    ]
    data["queues"][0]["offer_timeout"] = 10
    (r,) = sim.simulate(sim.parse_scenario(data)).replications
    agents = r.snapshot.agents
    assert all(agents[f"picky-{n}"].since_start.answered == 0 for n in (1, 2, 3))
    assert all(agents[f"asleep-{n}"].since_start.answered == 0 for n in (1, 2))
    assert sum(agents[f"willing-{n}"].since_start.answered for n in (1, 2, 3, 4)) == r.steady.answered
    assert r.steady.answered == r.arrivals > 100
    # Every offer to a picky or sleepy agent was one more offer than answers.
    assert r.engine.offers > r.arrivals


def test_time_varying_arrivals_follow_the_profile() -> None:
    data = mmc(30, 0.5, hours=3, warmup_hours=0, replications=4)
    data["arrivals"][0]["per_hour"] = [0, 600, 0]
    data["arrivals"][0]["rate_interval_seconds"] = 3600
    data["metrics"] = {"interval_seconds": 3600, "windows": []}
    summary = sim.simulate(sim.parse_scenario(data))
    offered = {i.start: i.figures.offered for i in summary.intervals}
    assert offered[0].mean == 0
    assert offered[7200].mean == 0
    assert offered[3600].covers(600) or abs((offered[3600].mean or 0) - 600) < 3 * math.sqrt(600)


# ----- replays from an export -----


def test_a_replay_from_an_exported_csv(tmp_path: Path) -> None:
    log = tmp_path / "interactions.csv"
    log.write_text(
        "id,queue,channel,created_at,answered_at,ended_at\n"
        "a,q,voice,2026-11-23T09:00:00+00:00,2026-11-23T09:00:00+00:00,2026-11-23T09:01:40+00:00\n"
        "b,q,voice,2026-11-23T09:00:10+00:00,,2026-11-23T09:00:15+00:00\n"
        "c,q,voice,2026-11-23T09:00:20+00:00,,\n",
        encoding="utf-8",
    )
    replay = sim.load_replay(log)
    assert [(r.at, r.handle_seconds, r.patience_seconds) for r in replay] == [(0, 100, None), (10, 0, 5)]
    scenario_file = tmp_path / "replay.yaml"
    scenario_file.write_text(
        "replications: 1\nduration_seconds: 60\nreplay: interactions.csv\n"
        "channels: [{name: voice, cost: 60}]\nqueues: [{name: q}]\n"
        "agents: [{name: a, count: 1, queues: {q: 0}}]\n",
        encoding="utf-8",
    )
    (r,) = sim.simulate(sim.load_scenario(scenario_file)).replications
    assert (r.steady.answered, r.steady.abandoned) == (1, 1)


def test_a_bad_replay_names_the_row_and_field(tmp_path: Path) -> None:
    log = tmp_path / "bad.csv"
    log.write_text("queue,channel,created_at,ended_at\nq,voice,yesterday,\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"row 1: created_at: expected an ISO 8601 time"):
        sim.load_replay(log)


# ----- validation -----


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["arrivals"][0].update(queue="nowhere"),
            r"arrivals\[0\]\.queue: unknown queue \"nowhere\"",
        ),
        (
            lambda d: d["arrivals"][0].update(handle={"kind": "exponential", "mean": -3}),
            r"arrivals\[0\]\.handle\.mean",
        ),
        (lambda d: d["arrivals"][0].update(per_hour=[10, -1]), r"arrivals\[0\]\.per_hour\[1\]"),
        (
            lambda d: d["agents"][0].update(shifts=[{"start": 100, "end": 50}]),
            r"agents\[0\]\.shifts\[0\]\.end",
        ),
        (lambda d: d["agents"][0].update(queues={"elsewhere": 1}), r"agents\[0\]\.queues: unknown queue"),
        (
            lambda d: d["agents"][0].update(
                shifts=[{"start": 0, "end": 3600}], breaks=[{"start": 3000, "seconds": 900}]
            ),
            r"agents\[0\]\.breaks\[0\]\.start: a break must fall within one of the shifts",
        ),
        (lambda d: d["agents"][0].update(reject_probability=1.5), r"agents\[0\]\.reject_probability"),
        (
            lambda d: d["agents"][0].update(reject_probability=0.6, no_answer_probability=0.6),
            r"agents\[0\]\.no_answer_probability: reject_probability \+ no_answer_probability",
        ),
        (lambda d: d["agents"][0].update(skills={"billing": 0}), r"agents\[0\]"),
        (lambda d: d.update(warmup_seconds=10 * 3600), r"warmup_seconds"),
        (lambda d: d.update(replications=0), r"replications"),
        (lambda d: d.update(arrivals=[]), r"arrivals: expected arrival streams or a replay"),
        (lambda d: d.update(colour="blue"), r"unknown field"),
        (lambda d: d["queues"][0].update(strategy={"kind": "sideways"}), r"queues\[0\]\.strategy"),
    ],
)
def test_bad_scenarios_name_the_field(change: Any, message: str) -> None:
    data = mmc(5, 0.5, hours=1, warmup_hours=0)
    change(data)
    with pytest.raises(InvalidConfigError, match=message):
        sim.parse_scenario(data)


def test_a_scenario_file_error_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "day.toml"
    bad.write_text("duration_seconds = 'long'\n", encoding="utf-8")
    with pytest.raises(InvalidConfigError, match=r"day\.toml: duration_seconds: expected a number"):
        sim.load_scenario(bad)
    with pytest.raises(InvalidConfigError, match=r"expected a \.toml, \.yaml or \.yml file"):
        sim.load_scenario(tmp_path / "day.json")


# ----- the example, the report, the command -----


def test_the_example_day_runs_and_reports(tmp_path: Path) -> None:
    scenario = sim.load_scenario(EXAMPLE)
    scenario = msgspec.structs.replace(scenario, replications=2)
    summary = sim.simulate(scenario)
    text = sim.describe(summary)
    assert "2 replications" in text
    assert "billing" in text
    assert "chat" in text
    assert set(summary.queues) == {"billing", "support"}
    assert len(summary.intervals) >= 48
    out = io.StringIO()
    rows = sim.write_csv(summary, out)
    parsed = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(parsed) == rows > 48 * 9
    overall_sl = next(
        r
        for r in parsed
        if r["dimension"] == "overall" and not r["interval_start"] and r["figure"] == "service_level"
    )
    assert float(overall_sl["mean"]) == pytest.approx(summary.overall.service_level.mean)
    png = sim.write_chart(summary, tmp_path / "day.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000
    svg = sim.write_chart(summary, tmp_path / "day.svg")
    assert ET.parse(svg).getroot().tag.endswith("svg")
    with pytest.raises(InvalidInputError, match=r"chart: day\.gif: expected a \.png or \.svg file"):
        sim.write_chart(summary, tmp_path / "day.gif")


def test_the_simulate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chart, table = tmp_path / "day.svg", tmp_path / "day.csv"
    status = cli.main(
        [
            "simulate",
            str(EXAMPLE),
            "--replications",
            "2",
            "--seed",
            "3",
            "--csv",
            str(table),
            "--chart",
            str(chart),
        ]
    )
    out = capsys.readouterr()
    assert status == 0, out.err
    assert "2 replications" in out.out
    assert chart.stat().st_size > 0
    assert table.read_text(encoding="utf-8").startswith("dimension,")
    status = cli.main(["simulate", str(EXAMPLE), "--replications", "0"])
    assert status == 2
    assert "replications" in capsys.readouterr().err
