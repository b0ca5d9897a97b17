"""Workforce management: forecasting contacts from history, and the agents
every interval needs (Erlang C and Erlang A)."""

from __future__ import annotations

from omniroute.wfm.erlang import ErlangA, ErlangC, Staffing, erlang_b
from omniroute.wfm.forecast import (
    FORECAST_COLUMNS,
    Errors,
    Forecast,
    HoldoutReport,
    describe_report,
    evaluate,
    forecast,
    seasonal_naive,
    write_forecast_csv,
)
from omniroute.wfm.history import (
    History,
    history_from_interactions,
    history_from_store,
    read_history_csv,
)
from omniroute.wfm.staffing import (
    PLAN_COLUMNS,
    PlanRow,
    StaffingPlan,
    StaffingTargets,
    describe_plan,
    plan_staffing,
    read_forecast_csv,
    write_chart,
    write_plan_csv,
)

__all__ = [
    "FORECAST_COLUMNS",
    "PLAN_COLUMNS",
    "ErlangA",
    "ErlangC",
    "Errors",
    "Forecast",
    "History",
    "HoldoutReport",
    "PlanRow",
    "Staffing",
    "StaffingPlan",
    "StaffingTargets",
    "describe_plan",
    "describe_report",
    "erlang_b",
    "evaluate",
    "forecast",
    "history_from_interactions",
    "history_from_store",
    "plan_staffing",
    "read_forecast_csv",
    "read_history_csv",
    "seasonal_naive",
    "write_chart",
    "write_forecast_csv",
    "write_plan_csv",
]
