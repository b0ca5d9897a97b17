"""Erlang B, Erlang C and Erlang A (M/M/n+M, Palm) staffing mathematics.

The figures of one planning interval from its contacts, handle time and, for
Erlang A, the callers' mean patience: the probability of waiting, the service
level, the average speed of answer, occupancy and abandonment at a number of
agents, and the fewest agents that meet a target (``required_agents``).

Everything is computed without factorials or powers that could overflow: Erlang
B by its recursion, Erlang C from Erlang B, and Erlang A from Erlang B and the
series of Mandelbaum & Zeltyn's A(x, y) summed in log space around its largest
term, so a centre of thousands of agents, under- or overloaded, is as exact as
a small one. The formulas, the definitions of each figure and the comparison
with pyworkforce are in ``docs/erlang.md``.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import msgspec
from scipy.special import digamma

from omniroute.errors import InvalidInputError

__all__ = ["ErlangA", "ErlangC", "Staffing", "erlang_b"]

# A term of a series smaller than this fraction of the running sum no longer
# changes a double.
_NEGLIGIBLE = 1e-17
# Largest x or y (in units of patience) Erlang A evaluates: a few seconds a call at the limit.
_MAX_SERIES = 1e12
# Bounds on what a call walks through: the Erlang B recursion runs once per agent.
_MAX_AGENTS = 10_000_000
_MAX_LOAD = 1e7
# Relative slack for "n·(1 - shrinkage) ≥ raw" and "load / n ≤ cap" at exact
# ties: 7 raw agents at 30 % shrinkage are 10 scheduled agents, even though
# 7 / (1 - 0.3) is 10.000000000000002 in floating point.
_TIE = 1e-12


class Staffing(msgspec.Struct, frozen=True, kw_only=True):
    """The fewest agents meeting a target, and the figures expected with them."""

    agents: int
    """Scheduled agents: the fewest whose share present after shrinkage covers ``raw_agents``,
    ``ceil(raw_agents / (1 - shrinkage))`` in exact arithmetic."""
    raw_agents: int
    """Agents needed on the phones."""
    service_level: float
    """Expected service level at ``raw_agents`` (the fraction answered within the threshold)."""
    asa: float
    """Expected average speed of answer, in seconds, of the contacts that are answered."""
    waiting_probability: float
    """Probability that a contact has to wait (every agent busy when it arrives)."""
    occupancy: float
    """Fraction of the agents' time spent handling contacts."""
    abandonment: float
    """Probability that a contact abandons (0.0 for Erlang C)."""


# ----- validation -----


def _text(value: object) -> str:
    """A number as given (``-3``, ``1.0``, ``nan``)."""
    return str(value)


def _erlangs(load: float) -> str:
    """A computed load, to ten significant digits (``12.5``, ``266.6666667``)."""
    return f"{load:.10g}"


def _number(field: str, value: object, what: str) -> float:
    """``value`` as a finite float, or an error naming ``field`` and what it must be."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidInputError(f"{field}: must be {what}, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidInputError(f"{field}: must be {what}, got {_text(value)}")
    return number


def _positive_seconds(field: str, value: object) -> float:
    seconds = _number(field, value, "a positive number of seconds")
    if seconds <= 0:
        raise InvalidInputError(f"{field}: must be a positive number of seconds, got {_text(value)}")
    return seconds


def _threshold(value: object) -> float:
    seconds = _number("threshold_seconds", value, "a number of seconds ≥ 0")
    if seconds < 0:
        raise InvalidInputError(f"threshold_seconds: must be a number of seconds ≥ 0, got {_text(value)}")
    return seconds


def _contacts(value: object) -> float:
    contacts = _number("contacts", value, "a number of contacts ≥ 0")
    if contacts < 0:
        raise InvalidInputError(f"contacts: must be a number of contacts ≥ 0, got {_text(value)}")
    return contacts


def _fraction(field: str, value: object, *, low_open: bool, high_open: bool) -> float:
    what = {
        (True, True): "between 0 and 1 (exclusive)",
        (True, False): "above 0 and at most 1",
        (False, True): "at least 0 and below 1",
        (False, False): "between 0 and 1",
    }[low_open, high_open]
    number = _number(field, value, what)
    if number < 0 or number > 1 or (low_open and number == 0) or (high_open and number == 1):
        raise InvalidInputError(f"{field}: must be {what}, got {_text(value)}")
    return number


def _agents(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InvalidInputError(f"agents: must be a whole number of agents, got {value!r}")
    agents = int(value)
    if agents < 1:
        raise InvalidInputError(f"agents: must be at least 1, got {agents}")
    if agents > _MAX_AGENTS:
        raise InvalidInputError(
            f"agents: {agents:,} is beyond any contact center; accepted up to {_MAX_AGENTS:,}"
        )
    return agents


def _load(contacts: float, aht: float, interval: float) -> float:
    """The offered load in Erlangs, bounded: every figure walks the Erlang B recursion up to it."""
    load = contacts * aht / interval
    if load > _MAX_LOAD:
        raise InvalidInputError(
            f"contacts: {_text(contacts)} contacts of {_text(aht)} s in {_text(interval)} s is a load of "
            f"{load:.3g} Erlangs, beyond any contact center; accepted up to {_MAX_LOAD:.0e} Erlangs"
        )
    return load


def _scheduled(raw: int, shrinkage: float) -> int:
    """The fewest agents n with n·(1 - shrinkage) ≥ raw, forgiving rounding at exact ties."""
    present = 1.0 - shrinkage
    agents = math.ceil(raw / present)
    if agents > 0 and (agents - 1) * present >= raw * (1.0 - _TIE):
        agents -= 1
    return agents


def _occupancy_floor(load: float, cap: float) -> int:
    """The fewest agents n with load / n ≤ cap, forgiving rounding at exact ties."""
    agents = math.ceil(load / cap)
    if agents > 1 and (agents - 1) * cap >= load * (1.0 - _TIE):
        agents -= 1
    return agents


# What an interval without contacts needs: no agents, and every figure at its best.
NO_CONTACTS = Staffing(
    agents=0,
    raw_agents=0,
    service_level=1.0,
    asa=0.0,
    waiting_probability=0.0,
    occupancy=0.0,
    abandonment=0.0,
)


# ----- Erlang B -----


def _erlang_b(agents: int, load: float) -> float:
    b = 1.0
    for n in range(1, agents + 1):
        b = load * b / (n + load * b)
    return b


def erlang_b(agents: int, load: float) -> float:
    """Blocking probability of ``agents`` servers offered ``load`` Erlangs with no queue (M/M/n/n),
    by the recursion B(0) = 1, B(n) = A·B(n-1) / (n + A·B(n-1)): every step is between 0 and 1."""
    if isinstance(agents, bool) or not isinstance(agents, Integral):
        raise InvalidInputError(f"agents: must be a whole number of agents, got {agents!r}")
    if agents < 0:
        raise InvalidInputError(f"agents: must be at least 0, got {agents}")
    a = _number("load", load, "a number of Erlangs ≥ 0")
    if a < 0:
        raise InvalidInputError(f"load: must be a number of Erlangs ≥ 0, got {_text(load)}")
    return _erlang_b(int(agents), a)


# ----- Erlang C -----


class ErlangC:
    """M/M/n: Poisson arrivals, exponential handle times, ``n`` agents, callers who never hang up.

    ``load`` (Erlangs) is contacts x AHT / interval. Every figure at ``agents`` needs agents > load;
    ``required_agents`` searches above the load and is defined at any load."""

    __slots__ = ("aht_seconds", "contacts", "interval_seconds", "load")

    def __init__(self, *, contacts: float, interval_seconds: float, aht_seconds: float) -> None:
        self.contacts = _contacts(contacts)
        self.interval_seconds = _positive_seconds("interval_seconds", interval_seconds)
        self.aht_seconds = _positive_seconds("aht_seconds", aht_seconds)
        self.load = _load(self.contacts, self.aht_seconds, self.interval_seconds)

    def __repr__(self) -> str:
        return (
            f"ErlangC(contacts={self.contacts!r}, interval_seconds={self.interval_seconds!r}, "
            f"aht_seconds={self.aht_seconds!r})"
        )

    def _checked(self, agents: int) -> int:
        n = _agents(agents)
        if n <= self.load:
            raise InvalidInputError(
                f"agents: {n} agents cannot carry a load of {_erlangs(self.load)} Erlangs "
                "(Erlang C needs agents > load)"
            )
        return n

    def _c(self, n: int, b: float) -> float:
        return n * b / (n - self.load * (1.0 - b))

    def _sl(self, n: int, c: float, threshold: float) -> float:
        return 1.0 - c * math.exp(-(n - self.load) * threshold / self.aht_seconds)

    def _asa(self, n: int, c: float) -> float:
        return c * self.aht_seconds / (n - self.load)

    def waiting_probability(self, agents: int) -> float:
        """Erlang C: the probability that a contact waits, C = n·B / (n - A·(1 - B))."""
        n = self._checked(agents)
        return self._c(n, _erlang_b(n, self.load))

    def service_level(self, agents: int, threshold_seconds: float) -> float:
        """The fraction of contacts answered within ``threshold_seconds``: 1 - C·e^{-(n - A)·t / AHT}."""
        n = self._checked(agents)
        threshold = _threshold(threshold_seconds)
        return self._sl(n, self._c(n, _erlang_b(n, self.load)), threshold)

    def asa(self, agents: int) -> float:
        """Average speed of answer in seconds, over every contact (all are answered): C·AHT / (n - A)."""
        n = self._checked(agents)
        return self._asa(n, self._c(n, _erlang_b(n, self.load)))

    def occupancy(self, agents: int) -> float:
        """The fraction of the agents' time spent handling contacts: A / n."""
        n = self._checked(agents)
        return self.load / n

    def required_agents(
        self,
        *,
        service_level: float,
        threshold_seconds: float,
        max_occupancy: float = 1.0,
        shrinkage: float = 0.0,
        max_asa: float | None = None,
    ) -> Staffing:
        """The fewest agents with service level ≥ ``service_level`` within ``threshold_seconds``,
        occupancy ≤ ``max_occupancy`` and ASA ≤ ``max_asa`` seconds, then scheduled for ``shrinkage``.

        The search starts at the smallest n above the load and steps up one agent at a time,
        carrying the Erlang B recursion along, so an interval costs O(n). No contacts need no agents.
        """
        target = _fraction("service_level", service_level, low_open=True, high_open=True)
        threshold = _threshold(threshold_seconds)
        cap = _fraction("max_occupancy", max_occupancy, low_open=True, high_open=False)
        shrink = _fraction("shrinkage", shrinkage, low_open=False, high_open=True)
        asa_cap = math.inf
        if max_asa is not None:
            asa_cap = _number("max_asa", max_asa, "a number of seconds")
            if asa_cap < 0:
                raise InvalidInputError(
                    f"max_asa: an average speed of answer of {_text(max_asa)} seconds is unreachable "
                    "(it is never below 0)"
                )
            if asa_cap == 0 and self.load > 0:
                raise InvalidInputError(
                    f"max_asa: an average speed of answer of 0 seconds is unreachable with a load of "
                    f"{_erlangs(self.load)} Erlangs (some contacts always wait)"
                )
        a = self.load
        if a == 0:
            return NO_CONTACTS
        n = math.floor(a) + 1
        floor = _occupancy_floor(a, cap)
        b = _erlang_b(n, a)
        while True:
            if n >= floor:
                c = self._c(n, b)
                sl = self._sl(n, c, threshold)
                asa = self._asa(n, c)
                if sl >= target and asa <= asa_cap:
                    return Staffing(
                        agents=_scheduled(n, shrink),
                        raw_agents=n,
                        service_level=sl,
                        asa=asa,
                        waiting_probability=c,
                        occupancy=a / n,
                        abandonment=0.0,
                    )
            n += 1
            b = a * b / (n + a * b)


# ----- Erlang A -----


class _Series(msgspec.Struct, frozen=True):
    """Sums over t_k = w^k / ((x+1)(x+2)…(x+k)), k ≥ 0, as ln Σ t_k and weighted means."""

    log_total: float
    """ln A(x, w) = ln Σ t_k."""
    served: float
    """Σ t_k · x/(x+k+1) / Σ t_k: P(served | wait) when w = y, the same at (x, z) for the service level."""
    abandoned: float
    """Σ t_k · (k+1)/(x+k+1) / Σ t_k = 1 - ``served`` without the cancellation: P(abandon | wait)."""
    wait: float
    """Σ t_k · H_k/(x+k+1) / Σ t_k with H_k = Σ_{j=1..k+1} 1/(x+j): E[V; served | wait] = (x/θ)·wait."""


def _series(x: float, w: float, *, with_wait: bool) -> _Series:
    """The series of A(x, w) summed outward from its largest term, every term relative to it, so
    neither w ≫ x (overload: terms rise until k ≈ w - x) nor w ≪ x can overflow or underflow."""
    if w == 0.0:
        return _Series(0.0, x / (x + 1.0), 1.0 / (x + 1.0), 1.0 / (x + 1.0) ** 2)
    peak = max(0, math.floor(w - x))  # t_k / t_{k-1} = w / (x + k) ≥ 1 exactly while k ≤ w - x
    if peak <= 64:
        log_peak = math.fsum(math.log(w / (x + j)) for j in range(1, peak + 1))
    else:
        log_peak = peak * math.log(w) - (math.lgamma(x + peak + 1.0) - math.lgamma(x + 1.0))
    if not with_wait:
        h_peak = 0.0
    elif peak <= 4096:
        h_peak = math.fsum(1.0 / (x + j) for j in range(1, peak + 2))
    else:
        h_peak = float(digamma(x + peak + 2.0) - digamma(x + 1.0))

    total, wait = 1.0, h_peak / (x + peak + 1.0)
    served, abandoned = x / (x + peak + 1.0), (peak + 1.0) / (x + peak + 1.0)
    # Upward from the peak: the ratio w / (x + k) is below 1 and falling.
    term, h, k = 1.0, h_peak, peak
    while True:
        k += 1
        term *= w / (x + k)
        total += term
        served += term * x / (x + k + 1.0)
        abandoned += term * (k + 1.0) / (x + k + 1.0)
        if with_wait:
            h += 1.0 / (x + k + 1.0)
            wait += term * h / (x + k + 1.0)
        if term < _NEGLIGIBLE * total:
            break
    # Downward from the peak to k = 0: the ratio (x + k) / w is at most 1 and falling.
    term, h, k = 1.0, h_peak, peak
    while k > 0:
        term *= (x + k) / w
        if with_wait:
            h -= 1.0 / (x + k + 1.0)
        k -= 1
        total += term
        served += term * x / (x + k + 1.0)
        abandoned += term * (k + 1.0) / (x + k + 1.0)
        if with_wait:
            wait += term * h / (x + k + 1.0)
        if term < _NEGLIGIBLE * total:
            break
    return _Series(log_peak + math.log(total), served / total, abandoned / total, wait / total)


class _PointA(msgspec.Struct, frozen=True):
    """Erlang A at one number of agents."""

    waiting: float  # P(wait)
    abandonment: float  # P(abandon)
    answered: float  # 1 - P(abandon)
    x: float
    y: float
    series: _Series


class ErlangA:
    """M/M/n+M (Palm): Erlang C with callers who hang up after an exponential patience of mean
    ``patience_seconds`` if not answered by then. Defined at any load, overload included.

    With λ arrivals per second, μ = 1/AHT, θ = 1/patience, n agents: x = nμ/θ, y = λ/θ,
    rho = λ/(nμ), E = ErlangB(n, λ/μ) and A(x, y) = Σ_k y^k / ((x+1)…(x+k)) (Mandelbaum & Zeltyn 2007).
    """

    __slots__ = ("aht_seconds", "contacts", "interval_seconds", "load", "patience_seconds")

    def __init__(
        self, *, contacts: float, interval_seconds: float, aht_seconds: float, patience_seconds: float
    ) -> None:
        self.contacts = _contacts(contacts)
        self.interval_seconds = _positive_seconds("interval_seconds", interval_seconds)
        self.aht_seconds = _positive_seconds("aht_seconds", aht_seconds)
        self.patience_seconds = _positive_seconds("patience_seconds", patience_seconds)
        self.load = _load(self.contacts, self.aht_seconds, self.interval_seconds)

    def __repr__(self) -> str:
        return (
            f"ErlangA(contacts={self.contacts!r}, interval_seconds={self.interval_seconds!r}, "
            f"aht_seconds={self.aht_seconds!r}, patience_seconds={self.patience_seconds!r})"
        )

    def _point(self, n: int, b: float, *, with_wait: bool = False) -> _PointA:
        """P(wait) = A·E / (1 + (A - 1)·E) and P(served | wait) at n agents, E = ``b``."""
        x = n * self.patience_seconds / self.aht_seconds
        y = self.contacts * self.patience_seconds / self.interval_seconds
        if max(x, y) > _MAX_SERIES:
            # The series costs about 9·sqrt(max(x, y)) terms: beyond this a call would run for
            # minutes. Patience that long next to the handle time is Erlang C in all but name.
            raise InvalidInputError(
                f"patience_seconds: {_text(self.patience_seconds)} s is too long for Erlang A at this size "
                f"(agents * patience / AHT = {x:.3g}, contacts per second * patience = {y:.3g}; "
                f"accepted up to {_MAX_SERIES:.0e}); use ErlangC, which it then equals"
            )
        series = _series(x, y, with_wait=with_wait)
        if b == 0.0:
            waiting = 0.0
        elif b >= 1.0:  # a load beyond 1e16 Erlangs per agent
            waiting = 1.0
        else:
            # 1 / P(wait) = 1 + (1 - E) / (E·A), with A kept as its logarithm.
            u = math.log1p(-b) - math.log(b) - series.log_total
            waiting = 1.0 / (1.0 + math.exp(u)) if u < 700.0 else math.exp(-u)
        # Both as sums of positive terms, each exact when it is the small one.
        abandonment = waiting * series.abandoned
        answered = (1.0 - waiting) + waiting * series.served
        return _PointA(waiting, abandonment, answered, x, y, series)

    def _at(self, agents: int, *, with_wait: bool = False) -> _PointA | None:
        n = _agents(agents)
        if self.load == 0:
            return None
        return self._point(n, _erlang_b(n, self.load), with_wait=with_wait)

    def _asa(self, p: _PointA) -> float:
        """E[V; served] / P(answered), from a point computed ``with_wait``."""
        return p.waiting * p.x * self.patience_seconds * p.series.wait / p.answered

    def _occupancy(self, p: _PointA, n: int) -> float:
        return min(1.0, self.load * p.answered / n)

    def _sl(self, p: _PointA, threshold: float) -> float:
        """(1 - P(wait)) + P(wait)·P(served within t | wait), where P(served within t | wait) =
        S(x, y) - R·e^{-θt}·S(x, z), z = y·e^{-θt}, R = gamma(x, z)/gamma(x, y); S the ``served`` mean."""
        if threshold == 0.0 or p.waiting == 0.0:
            return 1.0 - p.waiting
        theta_t = threshold / self.patience_seconds
        z = p.y * math.exp(-theta_t)
        at_z = _series(p.x, z, with_wait=False)
        log_r = -p.x * theta_t - p.y * math.expm1(-theta_t) + at_z.log_total - p.series.log_total
        late = math.exp(log_r - theta_t) * at_z.served
        within = max(0.0, p.series.served - late)
        return (1.0 - p.waiting) + p.waiting * within

    def waiting_probability(self, agents: int) -> float:
        """The probability that a contact must wait: every agent busy when it arrives."""
        p = self._at(agents)
        return 0.0 if p is None else p.waiting

    def abandonment(self, agents: int) -> float:
        """The probability that a contact abandons: P(wait)·P(abandon | wait), with
        P(abandon | wait) = 1/(rho·A) + 1 - 1/rho = Σ t_k·(k+1)/(x+k+1) / Σ t_k."""
        p = self._at(agents)
        return 0.0 if p is None else p.abandonment

    def service_level(self, agents: int, threshold_seconds: float) -> float:
        """The fraction of all arrivals answered within ``threshold_seconds``; abandons count against."""
        threshold = _threshold(threshold_seconds)
        p = self._at(agents)
        return 1.0 if p is None else self._sl(p, threshold)

    def asa(self, agents: int) -> float:
        """Average speed of answer in seconds of the contacts answered: E[V; V < patience] / P(answered)."""
        p = self._at(agents, with_wait=True)
        return 0.0 if p is None else self._asa(p)

    def mean_wait(self, agents: int) -> float:
        """Mean time in queue in seconds of all arrivals, answered or abandoned: P(abandon)/θ."""
        p = self._at(agents)
        return 0.0 if p is None else p.abandonment * self.patience_seconds

    def occupancy(self, agents: int) -> float:
        """The fraction of the agents' time spent handling contacts: load·(1 - P(abandon)) / n."""
        p = self._at(agents)
        return 0.0 if p is None else self._occupancy(p, int(agents))

    def required_agents(
        self,
        *,
        service_level: float,
        threshold_seconds: float,
        max_abandonment: float | None = None,
        max_occupancy: float = 1.0,
        shrinkage: float = 0.0,
    ) -> Staffing:
        """The fewest agents with service level ≥ ``service_level`` within ``threshold_seconds``,
        abandonment ≤ ``max_abandonment`` and occupancy ≤ ``max_occupancy``, then scheduled for
        ``shrinkage``.

        Answered contacts never exceed the agents' capacity, so service level ≤ n / load and
        1 - abandonment ≤ n / load: the search starts at the larger of these bounds and steps up one
        agent at a time, carrying the Erlang B recursion along. No contacts need no agents.
        """
        target = _fraction("service_level", service_level, low_open=True, high_open=True)
        threshold = _threshold(threshold_seconds)
        cap = _fraction("max_occupancy", max_occupancy, low_open=True, high_open=False)
        shrink = _fraction("shrinkage", shrinkage, low_open=False, high_open=True)
        ab_cap = 1.0
        if max_abandonment is not None:
            ab_cap = _fraction("max_abandonment", max_abandonment, low_open=True, high_open=False)
        a = self.load
        if a == 0:
            return NO_CONTACTS
        bound = max(target, 1.0 - ab_cap) * a
        n = max(1, math.floor(bound * (1.0 - 1e-9)))
        b = _erlang_b(n, a)
        while True:
            p = self._point(n, b)
            occupancy = self._occupancy(p, n)
            if p.abandonment <= ab_cap and occupancy <= cap:
                sl = self._sl(p, threshold)
                if sl >= target:
                    p = self._point(n, b, with_wait=True)
                    return Staffing(
                        agents=_scheduled(n, shrink),
                        raw_agents=n,
                        service_level=sl,
                        asa=self._asa(p),
                        waiting_probability=p.waiting,
                        occupancy=occupancy,
                        abandonment=p.abandonment,
                    )
            n += 1
            b = a * b / (n + a * b)
