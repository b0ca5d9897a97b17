"""Erlang C staffing: the required agents of 1,000 half-hour intervals of a large centre, ours against
pyworkforce measured in the same run.

Each interval draws (fixed seed) 2,000-6,000 contacts per 30 minutes and an AHT of 240-360 s (267 to
1,200 Erlangs), and asks for 80 % answered within 20 s, occupancy at most 90 % and 30 % shrinkage.
Ours searches upward from the load carrying the Erlang B recursion along (O(n) per interval);
pyworkforce recomputes Erlang B from scratch for every candidate. The time per interval of both, and
their ratio, go to ``benchmark.extra_info`` and one printed line. Timings are never asserted; the
results are, interval by interval: the same agents on the phones, the same service level, waiting
probability and occupancy to 1e-9, and the same scheduled agents except where raw / (1 - shrinkage)
is a whole number and pyworkforce's floating-point ceiling lands one above it (``docs/erlang.md``).

Under ``--benchmark-disable`` the sizes shrink so that the file runs as a quick test.
"""

from __future__ import annotations

import math
import random
import time
from fractions import Fraction
from typing import Any

import pytest
from pyworkforce.queuing import ErlangC as PwErlangC

from omniroute.wfm.erlang import ErlangC, Staffing

# Intervals, and rounds of ours: full size, then as a test.
INTERVALS = {"full": 1_000, "test": 40}
ROUNDS = {"full": 5, "test": 1}
SEED = 20_260_101
TARGET, THRESHOLD, MAX_OCCUPANCY, SHRINKAGE = 0.8, 20.0, 0.9, 0.3


@pytest.fixture
def mode(request: pytest.FixtureRequest) -> str:
    return "test" if request.config.getoption("benchmark_disable") else "full"


def intervals(count: int) -> list[tuple[float, float]]:
    """(contacts per 30 minutes, AHT in seconds) of ``count`` intervals."""
    rng = random.Random(SEED)
    return [(rng.uniform(2000, 6000), rng.uniform(240, 360)) for _ in range(count)]


def ours(work: list[tuple[float, float]]) -> list[Staffing]:
    return [
        ErlangC(contacts=contacts, interval_seconds=1800, aht_seconds=aht).required_agents(
            service_level=TARGET,
            threshold_seconds=THRESHOLD,
            max_occupancy=MAX_OCCUPANCY,
            shrinkage=SHRINKAGE,
        )
        for contacts, aht in work
    ]


def theirs(work: list[tuple[float, float]]) -> list[dict[str, Any]]:
    return [
        PwErlangC(
            transactions=contacts, aht=aht / 60, asa=THRESHOLD / 60, interval=30, shrinkage=SHRINKAGE
        ).required_positions(TARGET, MAX_OCCUPANCY)
        for contacts, aht in work
    ]


def test_erlang_c_required_agents_against_pyworkforce(benchmark: Any, mode: str) -> None:
    work = intervals(INTERVALS[mode])
    spent: list[float] = []

    def timed() -> list[Staffing]:
        start = time.perf_counter()
        result = ours(work)
        spent.append(time.perf_counter() - start)
        return result

    mine: list[Staffing] = benchmark.pedantic(timed, rounds=ROUNDS[mode], iterations=1)
    start = time.perf_counter()
    reference = theirs(work)
    their_seconds = time.perf_counter() - start

    ties = 0
    for staffing, pw in zip(mine, reference, strict=True):
        assert staffing.raw_agents == pw["raw_positions"]
        assert staffing.service_level == pytest.approx(pw["service_level"], abs=1e-9)
        assert staffing.waiting_probability == pytest.approx(pw["waiting_probability"], abs=1e-9)
        assert staffing.occupancy == pytest.approx(pw["occupancy"], abs=1e-9)
        assert staffing.service_level >= TARGET
        assert staffing.occupancy <= MAX_OCCUPANCY
        exact = Fraction(staffing.raw_agents) / (1 - Fraction(str(SHRINKAGE)))
        assert staffing.agents == math.ceil(exact)
        if pw["positions"] != staffing.agents:  # pyworkforce's ceil(21 / 0.7) = ceil(30.000000000000004)
            assert exact.denominator == 1
            assert pw["positions"] == staffing.agents + 1
            ties += 1

    count = len(work)
    our_ms, their_ms = min(spent) / count * 1e3, their_seconds / count * 1e3
    ratio = their_ms / our_ms
    benchmark.extra_info.update(
        intervals=count,
        ours_ms_per_interval=round(our_ms, 4),
        pyworkforce_ms_per_interval=round(their_ms, 4),
        ratio_pyworkforce_to_ours=round(ratio, 1),
        scheduled_agents_differing_by_float_ceiling=ties,
        mean_raw_agents=round(sum(s.raw_agents for s in mine) / count, 1),
    )
    print(
        f"\nErlang C required agents, {count:,} intervals of 2,000-6,000 contacts/30 min, AHT 240-360 s, "
        f"80/20, occupancy ≤ 90 %, shrinkage 30 %: ours {our_ms:.3f} ms/interval, pyworkforce "
        f"{their_ms:.3f} ms/interval, {ratio:,.1f}x; raw agents identical in every interval, scheduled "
        f"agents identical but for {ties} where pyworkforce's floating-point ceiling adds one"
    )
