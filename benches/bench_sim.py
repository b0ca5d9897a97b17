"""The simulator: simulated interactions per second of wall time, one core, on
a one-queue, 100-agent M/M/c day, against ciw (a well-known discrete-event
queueing simulator on PyPI) on the same model in the same run.

Both simulate the same M/M/100 queue (Poisson arrivals at 90% load, exponential
handle times of 180 s, first come first served, no abandonment). Ours drives
the real routing engine and the real metrics (offers, acceptances, agent
states, every production figure); ciw runs its own queue. Both must agree on
the waiting statistics (probability of waiting, mean wait) with each other and
with Erlang C. Timings are never asserted; the agreement is.

Under ``--benchmark-disable`` the sizes shrink so the file runs as a quick test.
"""

from __future__ import annotations

import time
from typing import Any

import ciw
import pytest

from omniroute import sim
from omniroute.wfm.erlang import ErlangC

AGENTS = 100
RHO = 0.9
AHT = 180.0
# (our replications of a 24-hour day, ciw's simulated hours): full size, then as a test.
SIZES = {"full": (20, 24.0), "test": (2, 4.0)}
TARGET_PER_SECOND = 500_000
TARGET_RATIO_TO_CIW = 20


@pytest.fixture
def mode(request: pytest.FixtureRequest) -> str:
    return "test" if request.config.getoption("benchmark_disable") else "full"


def scenario(replications: int, hours: float) -> sim.Scenario:
    return sim.parse_scenario(
        {
            "seed": 5,
            "replications": replications,
            "duration_seconds": hours * 3600,
            "warmup_seconds": 3600,
            "drain_seconds": 3600,
            "channels": [{"name": "voice", "cost": 60}],
            "queues": [{"name": "q"}],
            "agents": [{"name": "a", "count": AGENTS, "queues": {"q": 0}}],
            "arrivals": [
                {
                    "queue": "q",
                    "channel": "voice",
                    "per_hour": RHO * AGENTS / AHT * 3600,
                    "handle": {"kind": "exponential", "mean": AHT},
                }
            ],
        }
    )


class Ciw:
    """The same M/M/c queue in ciw, after the same warm-up."""

    def __init__(self, hours: float) -> None:
        self.hours = hours
        self.rate = 0.0
        self.customers = 0
        self.waiting_probability = 0.0
        self.mean_wait = 0.0

    def run(self) -> None:
        network = ciw.create_network(
            arrival_distributions=[ciw.dists.Exponential(rate=RHO * AGENTS / AHT)],
            service_distributions=[ciw.dists.Exponential(rate=1 / AHT)],
            number_of_servers=[AGENTS],
        )
        ciw.seed(5)
        q = ciw.Simulation(network)
        start = time.process_time()
        q.simulate_until_max_time(self.hours * 3600)
        spent = time.process_time() - start
        records = q.get_all_records()
        self.customers = len(records)
        self.rate = self.customers / spent
        steady = [r for r in records if r.arrival_date >= 3600]
        self.waiting_probability = sum(r.waiting_time > 0 for r in steady) / len(steady)
        self.mean_wait = sum(r.waiting_time for r in steady) / len(steady)


def test_simulated_interactions_per_second_against_ciw(benchmark: Any, mode: str) -> None:
    replications, ciw_hours = SIZES[mode]
    day = scenario(replications, 24.0 if mode == "full" else 4.0)
    result: dict[str, Any] = {}

    def ours() -> None:
        start = time.process_time()
        summary = sim.simulate(day)
        result["spent"] = time.process_time() - start
        result["summary"] = summary

    benchmark.pedantic(ours, rounds=1, iterations=1)
    summary: sim.Summary = result["summary"]
    rate = summary.arrivals / result["spent"]
    other = Ciw(ciw_hours)
    other.run()
    ratio = rate / other.rate

    theory = ErlangC(contacts=RHO * AGENTS / AHT * 3600, interval_seconds=3600, aht_seconds=AHT)
    pw, asa = theory.waiting_probability(AGENTS), theory.asa(AGENTS)
    ours_pw, ours_asa = summary.waiting_probability.mean, summary.asa.mean
    assert ours_pw is not None
    assert ours_asa is not None
    print(
        f"\nsimulator: {summary.arrivals:,} interactions in {result['spent']:.2f} s of CPU = {rate:,.0f}/s "
        f"(target ≥ {TARGET_PER_SECOND:,}); ciw: {other.customers:,} in the same model = "
        f"{other.rate:,.0f}/s; "
        f"ratio {ratio:.1f}x (target ≥ {TARGET_RATIO_TO_CIW}x)\n"
        f"  probability of waiting: ours {ours_pw:.4f} ± {summary.waiting_probability.half_width}, "
        f"ciw {other.waiting_probability:.4f}, Erlang C {pw:.4f}\n"
        f"  mean wait (s):          ours {ours_asa:.2f} ± {summary.asa.half_width}, "
        f"ciw {other.mean_wait:.2f}, Erlang C {asa:.2f}"
    )
    benchmark.extra_info.update(
        interactions=summary.arrivals,
        interactions_per_second=round(rate),
        ciw_customers_per_second=round(other.rate),
        ratio_to_ciw=round(ratio, 1),
        target_per_second=TARGET_PER_SECOND,
        target_ratio_to_ciw=TARGET_RATIO_TO_CIW,
        waiting_probability=(ours_pw, other.waiting_probability, pw),
        mean_wait=(ours_asa, other.mean_wait, asa),
    )
    # Both simulators agree with each other and with theory on the waiting figures
    # (loosely in the short test run, where one replication of four hours is noisy).
    tolerance = 0.1 if mode == "full" else 0.5
    assert abs(ours_pw - pw) < tolerance * pw
    assert abs(other.waiting_probability - pw) < tolerance * pw
    assert abs(ours_asa - asa) < 2 * tolerance * asa
    assert abs(other.mean_wait - asa) < 2 * tolerance * asa
    assert all(r.unfinished == 0 for r in summary.replications)
