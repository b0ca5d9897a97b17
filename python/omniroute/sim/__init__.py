"""The simulator: the real routing engine and metrics driven in virtual time.

``simulate(load_scenario("day.toml"))`` runs every replication and returns
the figures with 95% confidence intervals; ``docs/simulation.md`` describes
the scenario file and every figure.
"""

from omniroute.sim.report import describe, write_chart, write_csv
from omniroute.sim.run import (
    Estimate,
    Figures,
    IntervalFigures,
    Replication,
    Summary,
    Tally,
    estimate,
    run_replication,
    simulate,
    summarise,
)
from omniroute.sim.scenario import (
    AgentGroup,
    Arrivals,
    Break,
    Constant,
    Distribution,
    Exponential,
    Gamma,
    Lognormal,
    Replayed,
    Scenario,
    Shift,
    Uniform,
    load_replay,
    load_scenario,
    parse_scenario,
)

__all__ = [
    "AgentGroup",
    "Arrivals",
    "Break",
    "Constant",
    "Distribution",
    "Estimate",
    "Exponential",
    "Figures",
    "Gamma",
    "IntervalFigures",
    "Lognormal",
    "Replayed",
    "Replication",
    "Scenario",
    "Shift",
    "Summary",
    "Tally",
    "Uniform",
    "describe",
    "estimate",
    "load_replay",
    "load_scenario",
    "parse_scenario",
    "run_replication",
    "simulate",
    "summarise",
    "write_chart",
    "write_csv",
]
