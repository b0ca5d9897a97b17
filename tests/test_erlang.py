"""Tests of the Erlang B, C and A staffing mathematics (``omniroute.wfm.erlang``).

Every figure is checked against a method that shares no code with the module:
Erlang B and C in exact rational arithmetic from the textbook sums of
A^k / k!, Erlang A against the birth-death chain of M/M/n+M truncated far out
(and, for the waiting times, the tagged contact's own absorbing chain), and
the required agents against pyworkforce.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyworkforce.queuing import ErlangC as PwErlangC
from scipy.linalg import expm
from scipy.special import gammainc, gammaln

from omniroute.errors import InvalidInputError
from omniroute.wfm.erlang import ErlangA, ErlangC, Staffing, erlang_b

# ----- independent references -----


def exact_sums(n: int, load: Fraction) -> Fraction:
    """Σ_{k=0..n} A^k · n!/k!, by S_m = m·S_{m-1} + A^m (exact)."""
    s, power = Fraction(1), Fraction(1)
    for m in range(1, n + 1):
        power *= load
        s = m * s + power
    return s


def exact_b(n: int, load: Fraction) -> float:
    """Erlang B = (A^n/n!) / Σ_{k≤n} A^k/k!, exactly, rounded once."""
    return float(load**n / exact_sums(n, load))


def exact_c(n: int, load: Fraction) -> float:
    """Erlang C = (A^n/n! · n/(n-A)) / (Σ_{k<n} A^k/k! + A^n/n! · n/(n-A)), exactly, rounded once."""
    top = load**n * n / (n - load)
    return float(top / (n * exact_sums(n - 1, load) + top))


class Chain:
    """M/M/n+M by its birth-death chain (birth λ, death min(k,n)·μ + max(k-n,0)·θ), truncated where
    the stationary probabilities fall below e^-60 of their largest, and the tagged arrival's own
    chain: with j contacts ahead of it in queue it moves up at rate n·μ + j·θ and abandons at θ."""

    def __init__(self, *, contacts: float, interval: float, aht: float, patience: float, agents: int) -> None:
        lam, mu, theta, n = contacts / interval, 1 / aht, 1 / patience, agents
        self.lam, self.theta, self.n = lam, theta, n
        logs = [0.0]
        k = 0
        while True:
            k += 1
            logs.append(logs[-1] + math.log(lam) - math.log(min(k, n) * mu + max(k - n, 0) * theta))
            if k > n + 10 and logs[-1] < max(logs) - 60 and logs[-1] < logs[-2]:
                break
        top = max(logs)
        pi = np.exp(np.array(logs) - top)
        self.pi = pi / pi.sum()
        ahead = self.pi[n:]  # PASTA: an arrival finds n + j in the system with probability π_{n+j}
        self.waiting = float(ahead.sum())
        self.queue = float(sum(j * p for j, p in enumerate(ahead)))
        m = len(ahead)
        g = np.zeros((m, m))
        for j in range(m):
            g[j, j] = -(n * mu + j * theta + theta)
            if j > 0:
                g[j, j - 1] = n * mu + j * theta
        into_service = np.zeros(m)
        into_service[0] = n * mu
        self.g, self.p, self.into_service = g, ahead, into_service
        inv_g_served = np.linalg.solve(g, into_service)
        self.answered = (1 - self.waiting) + float(-self.p @ inv_g_served)
        self.wait_of_answered = float(self.p @ np.linalg.solve(g, inv_g_served))  # p·G⁻²·g

    @property
    def abandonment(self) -> float:
        return self.theta * self.queue / self.lam

    @property
    def mean_wait(self) -> float:
        return self.queue / self.lam

    @property
    def asa(self) -> float:
        return self.wait_of_answered / self.answered

    def service_level(self, t: float) -> float:
        """P(no wait) + p·G⁻¹·(e^{Gt} - I)·g."""
        served_by_t = self.p @ np.linalg.solve(
            self.g, (expm(self.g * t) - np.eye(len(self.p))) @ self.into_service
        )
        return (1 - self.waiting) + float(served_by_t)


def near(a: float, b: float, rel: float = 1e-9, abs_: float = 1e-13) -> bool:
    return math.isfinite(a) and abs(a - b) <= max(rel * abs(b), abs_)


# ----- Erlang B -----


@pytest.mark.parametrize(("n", "load"), [(1, Fraction(1, 2)), (10, Fraction(10)), (30, Fraction(123, 4))])
def test_erlang_b_matches_the_exact_sum(n: int, load: Fraction) -> None:
    assert near(erlang_b(n, float(load)), exact_b(n, load), rel=1e-13)


def test_erlang_b_known_values() -> None:
    assert erlang_b(0, 5.0) == 1.0
    assert erlang_b(1, 1.0) == 0.5
    assert erlang_b(2, 1.0) == pytest.approx(0.2, rel=1e-15)  # (1/2) / (1 + 1 + 1/2)
    assert erlang_b(5, 0.0) == 0.0
    # The telephone engineer's table: 10 circuits at 5 Erlangs block 1.8385 % of calls.
    assert erlang_b(10, 5.0) == pytest.approx(0.018384570, rel=1e-7)


def test_erlang_b_for_two_thousand_agents_without_overflow() -> None:
    assert near(erlang_b(2000, 1950.0), exact_b(2000, Fraction(1950)), rel=1e-12)
    assert near(erlang_b(2000, 2500.0), exact_b(2000, Fraction(2500)), rel=1e-12)
    # Far above the load the blocking probability is below the smallest double: 0, never NaN.
    assert erlang_b(5000, 100.0) == 0.0


# ----- Erlang C -----


def classic() -> ErlangC:
    """100 calls in 30 minutes, 3 minutes each: 10 Erlangs."""
    return ErlangC(contacts=100, interval_seconds=1800, aht_seconds=180)


def test_classic_example_needs_fourteen_agents_for_80_20() -> None:
    c = classic()
    assert c.load == 10.0
    # At 13 agents 79.56 % are answered within 20 s, just short of 80 %; 14 agents give 88.84 %.
    for n, sl in [
        (11, 0.38961381172915),
        (12, 0.64015804037401),
        (13, 0.79559478841778),
        (14, 0.88835001917947),
    ]:
        expected = 1 - exact_c(n, Fraction(10)) * math.exp(-(n - 10) * 20 / 180)
        assert near(c.service_level(n, 20), expected, rel=1e-13)
        assert c.service_level(n, 20) == pytest.approx(sl, abs=1e-13)
    assert c.waiting_probability(14) == pytest.approx(exact_c(14, Fraction(10)), rel=1e-13)
    assert c.waiting_probability(14) == pytest.approx(0.17413193359505, abs=1e-13)
    assert c.asa(14) == pytest.approx(0.17413193359505 * 180 / 4, rel=1e-12)  # 7.84 s
    assert c.occupancy(14) == pytest.approx(10 / 14)
    assert c.service_level(14, 0) == pytest.approx(1 - 0.17413193359505, abs=1e-13)
    staffing = c.required_agents(service_level=0.8, threshold_seconds=20)
    assert staffing == Staffing(
        agents=14,
        raw_agents=14,
        service_level=c.service_level(14, 20),
        asa=c.asa(14),
        waiting_probability=c.waiting_probability(14),
        occupancy=10 / 14,
        abandonment=0.0,
    )


def test_required_agents_honours_occupancy_asa_and_shrinkage() -> None:
    c = classic()
    # 10 / 14 = 71 % is above a 70 % cap; 15 agents are 67 %.
    assert c.required_agents(service_level=0.8, threshold_seconds=20, max_occupancy=0.7).raw_agents == 15
    # An occupancy of exactly the cap is allowed: 10 / 0.8 = 12.5 → 13, but the service level needs 14.
    assert c.required_agents(service_level=0.5, threshold_seconds=20, max_occupancy=10 / 12).raw_agents == 12
    # ASA 7.84 s at 14 agents, 3.67 s at 15.
    s = c.required_agents(service_level=0.8, threshold_seconds=20, max_asa=5)
    assert s.raw_agents == 15
    assert s.asa == c.asa(15)
    assert c.asa(15) == pytest.approx(3.6735252122876, abs=1e-12)
    # 14 on the phones at 30 % shrinkage are 20 scheduled (20 x 0.7 = 14).
    s = c.required_agents(service_level=0.8, threshold_seconds=20, shrinkage=0.3)
    assert (s.raw_agents, s.agents) == (14, 20)
    s = c.required_agents(service_level=0.8, threshold_seconds=20, shrinkage=0.25)
    assert (s.raw_agents, s.agents) == (14, 19)  # 18 x 0.75 = 13.5 < 14 ≤ 19 x 0.75


def test_required_agents_is_the_minimum() -> None:
    rng = random.Random(7)
    for _ in range(40):
        c = ErlangC(contacts=rng.uniform(1, 400), interval_seconds=900, aht_seconds=rng.uniform(30, 600))
        target, t = rng.uniform(0.5, 0.95), rng.uniform(0, 60)
        n = c.required_agents(service_level=target, threshold_seconds=t).raw_agents
        assert c.service_level(n, t) >= target
        assert n - 1 <= c.load or c.service_level(n - 1, t) < target


def test_two_thousand_agents_against_exact_arithmetic() -> None:
    # 14,625 contacts per 30 minutes at 240 s: 1,950 Erlangs.
    c = ErlangC(contacts=14_625, interval_seconds=1800, aht_seconds=240)
    assert c.load == 1950.0
    assert near(c.waiting_probability(2000), exact_c(2000, Fraction(1950)), rel=1e-12)
    assert near(c.asa(2000), exact_c(2000, Fraction(1950)) * 240 / 50, rel=1e-12)
    s = c.required_agents(service_level=0.8, threshold_seconds=20)
    n = s.raw_agents

    def sl(n: int) -> float:
        return 1 - exact_c(n, Fraction(1950)) * math.exp(-(n - 1950) * 20 / 240)

    assert sl(n) >= 0.8 > sl(n - 1)
    assert near(s.service_level, sl(n), rel=1e-12)
    assert n == 1965


def test_huge_centres_stay_finite() -> None:
    c = ErlangC(contacts=150_000, interval_seconds=1800, aht_seconds=240)  # 20,000 Erlangs
    s = c.required_agents(service_level=0.9, threshold_seconds=10)
    assert 20_000 < s.raw_agents < 20_200
    assert 0.9 <= s.service_level < 1
    assert c.service_level(s.raw_agents - 1, 10) < 0.9
    light = ErlangC(contacts=10, interval_seconds=1800, aht_seconds=180)  # 1 Erlang
    assert light.waiting_probability(5000) == 0.0
    assert light.service_level(5000, 20) == 1.0
    assert light.asa(5000) == 0.0


def test_no_contacts_need_no_agents() -> None:
    c = ErlangC(contacts=0, interval_seconds=1800, aht_seconds=180)
    assert c.required_agents(service_level=0.8, threshold_seconds=20) == Staffing(
        agents=0,
        raw_agents=0,
        service_level=1.0,
        asa=0.0,
        waiting_probability=0.0,
        occupancy=0.0,
        abandonment=0.0,
    )
    assert c.waiting_probability(1) == 0.0
    assert c.service_level(1, 0) == 1.0


# ----- pyworkforce -----


def pyworkforce(
    contacts: float, aht: float, threshold: float, target: float, occupancy: float, shrinkage: float
) -> dict[str, Any]:
    result: dict[str, Any] = PwErlangC(
        transactions=contacts, aht=aht / 60, asa=threshold / 60, interval=30, shrinkage=shrinkage
    ).required_positions(target, occupancy)
    return result


def test_identical_to_pyworkforce_for_large_centres() -> None:
    rng = random.Random(2024)
    ties = 0
    for _ in range(60):
        contacts, aht = rng.uniform(2000, 6000), rng.uniform(240, 360)
        threshold, target = rng.choice([10, 20, 30, 60]), rng.choice([0.7, 0.8, 0.9, 0.95])
        occupancy, shrinkage = rng.choice([1.0, 0.95, 0.9, 0.85]), rng.choice([0.0, 0.2, 0.25, 0.35, 0.4])
        ours = ErlangC(contacts=contacts, interval_seconds=1800, aht_seconds=aht).required_agents(
            service_level=target, threshold_seconds=threshold, max_occupancy=occupancy, shrinkage=shrinkage
        )
        theirs = pyworkforce(contacts, aht, threshold, target, occupancy, shrinkage)
        assert ours.raw_agents == theirs["raw_positions"]
        assert ours.service_level == pytest.approx(theirs["service_level"], abs=1e-9)
        assert ours.waiting_probability == pytest.approx(theirs["waiting_probability"], abs=1e-9)
        assert ours.occupancy == pytest.approx(theirs["occupancy"], abs=1e-12)
        # Scheduled agents: identical, but where raw / (1 - shrinkage) is a whole number pyworkforce's
        # floating-point ceiling can land one above it (see the next test).
        exact = math.ceil(Fraction(ours.raw_agents) / (1 - Fraction(str(shrinkage))))
        assert ours.agents == exact
        if theirs["positions"] != exact:
            assert theirs["positions"] == exact + 1
            assert Fraction(ours.raw_agents) / (1 - Fraction(str(shrinkage))) == exact
            ties += 1
    assert ties <= 3


def test_pyworkforce_floating_point_ceiling_schedules_one_agent_too_many() -> None:
    # 170 contacts per 30 minutes at 180 s (17 Erlangs) need 21 agents on the phones for 80/20; at
    # 30 % shrinkage 30 scheduled agents leave 30 x 0.7 = 21 present. pyworkforce computes
    # ceil(21 / (1 - 0.3)) = ceil(30.000000000000004) = 31.
    assert 21 / (1 - 0.3) == 30.000000000000004
    theirs = pyworkforce(170, 180, 20, 0.8, 1.0, 0.3)
    c = ErlangC(contacts=170, interval_seconds=1800, aht_seconds=180)
    ours = c.required_agents(service_level=0.8, threshold_seconds=20, shrinkage=0.3)
    assert (theirs["raw_positions"], theirs["positions"]) == (21, 31)
    assert (ours.raw_agents, ours.agents) == (21, 30)
    assert ours.service_level == pytest.approx(theirs["service_level"], abs=1e-12)
    assert ours.service_level == pytest.approx(0.82858104259263, abs=1e-12)


def test_pyworkforce_start_skips_the_smallest_answer_for_small_loads() -> None:
    # An e-mail queue: 5 per 30 minutes, 10 minutes each (1.67 Erlangs), 80 % answered within an hour.
    # Two agents already answer 89.7 %; pyworkforce starts its search at round(1.67 + 1) = 3.
    c = ErlangC(contacts=5, interval_seconds=1800, aht_seconds=600)
    load = Fraction(5, 3)
    sl2 = 1 - exact_c(2, load) * math.exp(-(2 - 5 / 3) * 3600 / 600)
    assert sl2 == pytest.approx(0.8974732702753, abs=1e-12)
    ours = c.required_agents(service_level=0.8, threshold_seconds=3600)
    assert ours.raw_agents == 2
    assert ours.service_level == pytest.approx(sl2, abs=1e-13)
    theirs = pyworkforce(5, 600, 3600, 0.8, 1.0, 0.0)
    assert theirs["raw_positions"] == 3


# ----- Erlang A -----

A_CASES = [
    # contacts per 30 min, AHT, patience, agents, threshold
    (100, 180, 120, 12, 20),  # the classic example, callers patient for 2 minutes
    (100, 180, 600, 10, 20),  # at the load: Erlang C would be undefined
    (300, 180, 60, 20, 15),  # overload: 30 Erlangs on 20 agents
    (40, 300, 5, 3, 2),  # impatient callers
    (20, 300, 3600, 4, 60),  # very patient callers
    (50, 240, 90, 1, 30),  # one agent, heavily overloaded
    (1000, 200, 240, 115, 20),  # a mid-size centre
]


@pytest.mark.parametrize(("contacts", "aht", "patience", "agents", "threshold"), A_CASES)
def test_erlang_a_against_the_birth_death_chain(
    contacts: float, aht: float, patience: float, agents: int, threshold: float
) -> None:
    a = ErlangA(contacts=contacts, interval_seconds=1800, aht_seconds=aht, patience_seconds=patience)
    chain = Chain(contacts=contacts, interval=1800, aht=aht, patience=patience, agents=agents)
    assert near(a.waiting_probability(agents), chain.waiting)
    assert near(a.abandonment(agents), chain.abandonment)
    assert near(a.abandonment(agents), 1 - chain.answered)
    assert near(a.mean_wait(agents), chain.mean_wait)
    assert near(a.asa(agents), chain.asa, rel=1e-8)
    assert near(a.occupancy(agents), a.load * chain.answered / agents)
    for t in (0, threshold, 4 * threshold):
        assert near(a.service_level(agents, t), chain.service_level(t), rel=1e-8)


def test_erlang_a_classic_figures() -> None:
    a = ErlangA(contacts=100, interval_seconds=1800, aht_seconds=180, patience_seconds=120)
    # Patience of 2 minutes: 12 agents answer 82.6 % within 20 s, 6.2 % abandon.
    assert a.service_level(12, 20) == pytest.approx(0.825582644, abs=1e-9)
    assert a.abandonment(12) == pytest.approx(0.061597377, abs=1e-9)
    assert a.waiting_probability(12) == pytest.approx(0.279807019, abs=1e-9)
    s = a.required_agents(service_level=0.8, threshold_seconds=20)
    assert (s.raw_agents, s.agents) == (12, 12)
    assert a.service_level(11, 20) < 0.8 <= s.service_level
    assert s.abandonment == a.abandonment(12)
    assert s.asa == a.asa(12)
    assert s.occupancy == pytest.approx(10 * (1 - a.abandonment(12)) / 12)
    # At most 3 % abandoning needs 14 agents (3.8 % at 13, 2.3 % at 14).
    s = a.required_agents(service_level=0.8, threshold_seconds=20, max_abandonment=0.03, shrinkage=0.3)
    assert (s.raw_agents, s.agents) == (14, 20)
    assert a.abandonment(13) > 0.03 >= a.abandonment(14)


def test_erlang_a_tends_to_erlang_c_as_patience_grows() -> None:
    c = classic()
    # The difference shrinks as 1 / patience.
    for patience, tolerance in [(1e6, 1e-2), (1e9, 1e-5), (1e12, 1e-8)]:
        a = ErlangA(contacts=100, interval_seconds=1800, aht_seconds=180, patience_seconds=patience)
        for n in (11, 14, 20):
            assert a.waiting_probability(n) == pytest.approx(c.waiting_probability(n), rel=tolerance)
            assert a.service_level(n, 20) == pytest.approx(c.service_level(n, 20), rel=tolerance)
            assert a.asa(n) == pytest.approx(c.asa(n), rel=tolerance)
            assert a.mean_wait(n) == pytest.approx(c.asa(n), rel=tolerance)
            assert a.abandonment(n) < tolerance
        if patience <= 1e9:  # (the search starts in overload, where the series is long at huge patience)
            assert a.required_agents(service_level=0.8, threshold_seconds=20).raw_agents == 14


def test_erlang_a_two_thousand_agents() -> None:
    # 1,950 Erlangs on 2,000 agents, 3 minutes of patience: stationary figures from the chain, the
    # service level from the same closed form evaluated with scipy's regularised incomplete gamma.
    contacts, aht, patience, n, t = 11_700, 300, 180, 2000, 20
    a = ErlangA(contacts=contacts, interval_seconds=1800, aht_seconds=aht, patience_seconds=patience)
    chain = Chain(contacts=contacts, interval=1800, aht=aht, patience=patience, agents=n)
    assert near(a.waiting_probability(n), chain.waiting, rel=1e-8)
    assert near(a.abandonment(n), chain.abandonment, rel=1e-8)
    assert near(a.mean_wait(n), chain.mean_wait, rel=1e-8)
    lam, theta = contacts / 1800, 1 / patience
    x, y, rho = n * patience / aht, lam * patience, lam * aht / n
    z = y * math.exp(-theta * t)

    def big_a(w: float) -> float:
        return math.exp(math.log(x) + w + math.log(gammainc(x, w)) + gammaln(x) - x * math.log(w))

    r = float(gammainc(x, z) / gammainc(x, y))
    pw = chain.waiting
    within = (1 / rho) * (1 - r) - 1 / (rho * big_a(y)) + r / (rho * big_a(z))
    assert near(a.service_level(n, t), (1 - pw) + pw * within, rel=1e-8)
    s = a.required_agents(service_level=0.8, threshold_seconds=t)
    assert a.service_level(s.raw_agents - 1, t) < 0.8 <= s.service_level
    assert (
        s.raw_agents
        < 1950
        < ErlangC(contacts=contacts, interval_seconds=1800, aht_seconds=aht)
        .required_agents(service_level=0.8, threshold_seconds=t)
        .raw_agents
        + 1
    )


def test_erlang_a_extreme_loads() -> None:
    # Heavy overload (y ≫ x): 1,000 Erlangs on 10 agents; almost everyone abandons, agents never idle.
    a = ErlangA(contacts=6000, interval_seconds=1800, aht_seconds=300, patience_seconds=600)
    chain = Chain(contacts=6000, interval=1800, aht=300, patience=600, agents=10)
    assert near(a.waiting_probability(10), chain.waiting)
    assert near(a.abandonment(10), chain.abandonment, rel=1e-8)
    assert a.abandonment(10) == pytest.approx(0.99, abs=1e-4)  # the fluid limit: 1 - 10/1000
    assert a.occupancy(10) == pytest.approx(1.0, abs=1e-6)
    assert 0 <= a.service_level(10, 20) < 1e-3
    # Light load (y ≪ x): 2,000 agents for 10 Erlangs.
    light = ErlangA(contacts=60, interval_seconds=1800, aht_seconds=300, patience_seconds=60)
    assert light.waiting_probability(2000) == 0.0
    assert light.service_level(2000, 20) == 1.0
    assert light.asa(2000) == 0.0
    assert light.occupancy(2000) == pytest.approx(10 / 2000)
    none = ErlangA(contacts=0, interval_seconds=1800, aht_seconds=300, patience_seconds=60)
    assert none.required_agents(service_level=0.8, threshold_seconds=20).raw_agents == 0
    assert (none.waiting_probability(3), none.abandonment(3), none.service_level(3, 20)) == (0.0, 0.0, 1.0)


@settings(max_examples=60, deadline=None)
@given(
    contacts=st.floats(0.5, 50_000),
    aht=st.floats(5, 3600),
    patience=st.floats(0.5, 1e6),
    agents=st.integers(1, 3000),
    threshold=st.floats(0, 600),
)
def test_erlang_a_is_always_a_probability(
    contacts: float, aht: float, patience: float, agents: int, threshold: float
) -> None:
    a = ErlangA(contacts=contacts, interval_seconds=1800, aht_seconds=aht, patience_seconds=patience)
    pw, ab, sl = a.waiting_probability(agents), a.abandonment(agents), a.service_level(agents, threshold)
    assert 0 <= ab <= pw <= 1
    assert 0 <= sl <= 1 - ab + 1e-12
    assert a.service_level(agents, 0) == pytest.approx(1 - pw, abs=1e-12)
    assert 0 <= a.occupancy(agents) <= 1 + 1e-12
    assert math.isfinite(a.asa(agents))
    assert a.asa(agents) >= 0
    assert a.mean_wait(agents) == pytest.approx(ab * patience, rel=1e-12)


# ----- validation -----


def test_erlang_c_refuses_agents_at_or_below_the_load() -> None:
    c = ErlangC(contacts=125, interval_seconds=1800, aht_seconds=180)
    with pytest.raises(InvalidInputError) as e:
        c.waiting_probability(10)
    assert (
        str(e.value) == "agents: 10 agents cannot carry a load of 12.5 Erlangs (Erlang C needs agents > load)"
    )
    with pytest.raises(InvalidInputError, match=r"^agents: 12 agents cannot carry a load of 12.5 Erlangs"):
        c.service_level(12, 20)
    with pytest.raises(InvalidInputError, match=r"^agents: 10 agents cannot carry a load of 10 Erlangs"):
        classic().asa(10)
    assert c.required_agents(service_level=0.8, threshold_seconds=20).raw_agents == 16


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: ErlangC(contacts=100, interval_seconds=1800, aht_seconds=-3),
            "aht_seconds: must be a positive number of seconds, got -3",
        ),
        (
            lambda: ErlangC(contacts=-1, interval_seconds=1800, aht_seconds=180),
            "contacts: must be a number of contacts ≥ 0, got -1",
        ),
        (
            lambda: ErlangC(contacts=float("nan"), interval_seconds=1800, aht_seconds=180),
            "contacts: must be a number of contacts ≥ 0, got nan",
        ),
        (
            lambda: ErlangC(contacts="100", interval_seconds=1800, aht_seconds=180),  # type: ignore[arg-type]
            "contacts: must be a number of contacts ≥ 0, got '100'",
        ),
        (
            lambda: ErlangC(contacts=100, interval_seconds=float("inf"), aht_seconds=180),
            "interval_seconds: must be a positive number of seconds, got inf",
        ),
        (
            lambda: ErlangC(contacts=100, interval_seconds=0, aht_seconds=180),
            "interval_seconds: must be a positive number of seconds, got 0",
        ),
        (
            lambda: ErlangA(contacts=100, interval_seconds=1800, aht_seconds=180, patience_seconds=0),
            "patience_seconds: must be a positive number of seconds, got 0",
        ),
        (
            lambda: ErlangA(contacts=100, interval_seconds=1800, aht_seconds=180, patience_seconds=-2.5),
            "patience_seconds: must be a positive number of seconds, got -2.5",
        ),
        (
            lambda: classic().required_agents(service_level=1.2, threshold_seconds=20),
            "service_level: must be between 0 and 1 (exclusive), got 1.2",
        ),
        (
            lambda: classic().required_agents(service_level=1, threshold_seconds=20),
            "service_level: must be between 0 and 1 (exclusive), got 1",
        ),
        (
            lambda: classic().required_agents(service_level=0.8, threshold_seconds=-1),
            "threshold_seconds: must be a number of seconds ≥ 0, got -1",
        ),
        (
            lambda: classic().required_agents(service_level=0.8, threshold_seconds=20, shrinkage=1.0),
            "shrinkage: must be at least 0 and below 1, got 1.0",
        ),
        (
            lambda: classic().required_agents(service_level=0.8, threshold_seconds=20, shrinkage=-0.1),
            "shrinkage: must be at least 0 and below 1, got -0.1",
        ),
        (
            lambda: classic().required_agents(service_level=0.8, threshold_seconds=20, max_occupancy=0),
            "max_occupancy: must be above 0 and at most 1, got 0",
        ),
        (
            lambda: classic().required_agents(service_level=0.8, threshold_seconds=20, max_occupancy=1.5),
            "max_occupancy: must be above 0 and at most 1, got 1.5",
        ),
        (
            lambda: classic().required_agents(service_level=0.8, threshold_seconds=20, max_asa=-5),
            "max_asa: an average speed of answer of -5 seconds is unreachable (it is never below 0)",
        ),
        (
            lambda: classic().required_agents(service_level=0.8, threshold_seconds=20, max_asa=0),
            "max_asa: an average speed of answer of 0 seconds is unreachable with a load of 10 Erlangs "
            "(some contacts always wait)",
        ),
        (
            lambda: classic().required_agents(service_level=0.8, threshold_seconds=20, max_asa=float("nan")),
            "max_asa: must be a number of seconds, got nan",
        ),
        (
            lambda: classic().service_level(14, float("nan")),
            "threshold_seconds: must be a number of seconds ≥ 0, got nan",
        ),
        (lambda: classic().asa(14.0), "agents: must be a whole number of agents, got 14.0"),  # type: ignore[arg-type]
        (lambda: classic().asa(True), "agents: must be a whole number of agents, got True"),
        (
            lambda: ErlangA(
                contacts=100, interval_seconds=1800, aht_seconds=180, patience_seconds=60
            ).abandonment(0),
            "agents: must be at least 1, got 0",
        ),
        (
            lambda: ErlangA(
                contacts=100, interval_seconds=1800, aht_seconds=180, patience_seconds=60
            ).required_agents(service_level=0.8, threshold_seconds=20, max_abandonment=0),
            "max_abandonment: must be above 0 and at most 1, got 0",
        ),
        (lambda: erlang_b(-1, 5.0), "agents: must be at least 0, got -1"),
        (lambda: erlang_b(3, float("nan")), "load: must be a number of Erlangs ≥ 0, got nan"),
        (lambda: erlang_b(3, -2), "load: must be a number of Erlangs ≥ 0, got -2"),
    ],
)
def test_invalid_inputs_are_named(build: Any, message: str) -> None:
    with pytest.raises(InvalidInputError) as e:
        build()
    assert str(e.value) == message


def test_numpy_numbers_are_accepted() -> None:
    c = ErlangC(contacts=np.float64(100), interval_seconds=np.int64(1800), aht_seconds=np.float32(180))  # type: ignore[arg-type]
    assert c.load == 10.0
    assert c.required_agents(service_level=np.float64(0.8), threshold_seconds=20).raw_agents == 14
    assert c.waiting_probability(np.int64(14)) == pytest.approx(0.17413193359505, abs=1e-13)  # type: ignore[arg-type]


def test_erlang_a_refuses_sizes_it_cannot_sum_quickly() -> None:
    # Patience so long next to the handle time that the series would take hours: Erlang C it is.
    model = ErlangA(contacts=10, interval_seconds=1800, aht_seconds=1, patience_seconds=1e15)
    with pytest.raises(InvalidInputError, match=r"patience_seconds: .* too long for Erlang A .* use ErlangC"):
        model.abandonment(5)


@pytest.mark.parametrize("model", [ErlangC, ErlangA])
def test_loads_and_agents_beyond_any_centre_are_refused_at_once(model: Any) -> None:
    extra = {"patience_seconds": 60} if model is ErlangA else {}
    with pytest.raises(InvalidInputError, match=r"contacts: .* beyond any contact center"):
        model(contacts=1e20, interval_seconds=1800, aht_seconds=300, **extra)
    small = model(contacts=10, interval_seconds=1800, aht_seconds=300, **extra)
    with pytest.raises(InvalidInputError, match=r"agents: .* beyond any contact center"):
        small.waiting_probability(10**12)
