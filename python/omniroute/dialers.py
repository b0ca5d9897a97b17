"""Outbound dialer modes: how many numbers to dial now. The built-in ones are a plugin too."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import msgspec
from msgspec import Meta, Struct

from omniroute.errors import InvalidInputError, from_validation
from omniroute.hookspecs import hookimpl

__all__ = ["DialerMode", "DialerState", "decide"]

Count = Annotated[int, Meta(ge=0, le=1_000_000)]


class DialerState(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A campaign's state when the dialer decides."""

    agents_available: Count
    # Dialled and not yet answered or given up.
    calls_in_progress: Count
    # Numbers left to dial.
    pending_numbers: Count
    # Calls dialled per available agent (progressive and predictive modes).
    ratio: Annotated[float, Meta(gt=0, le=10)] = 1.0
    # The recent share of dials answered by a person, when known.
    answer_rate: Annotated[float, Meta(ge=0, le=1)] | None = None


@dataclass(frozen=True, slots=True)
class DialerMode:
    """A named rule: ``decide(state)`` is how many numbers to dial now (≥ 0)."""

    name: str
    description: str
    decide: Callable[[DialerState], int]


def decide(mode: DialerMode, state: DialerState) -> int:
    """The mode's decision, checked: the state's constraints hold, and the
    answer is a whole number between 0 and the numbers left."""
    try:
        state = msgspec.convert(msgspec.to_builtins(state), DialerState)
    except msgspec.ValidationError as e:
        raise from_validation(e, where="state") from e
    n = mode.decide(state)
    if type(n) is not int or n < 0:
        raise InvalidInputError(f"dialer mode {mode.name!r}: decided {n!r}, not a whole number ≥ 0")
    return min(n, state.pending_numbers)


def _preview(state: DialerState) -> int:
    # The agent reads the record first and dials from the desktop: never on its own.
    return 0


def _progressive(state: DialerState) -> int:
    # ``ratio`` calls per free agent, less those already ringing; never more than that.
    return max(0, math.floor(state.agents_available * state.ratio) - state.calls_in_progress)


BUILT_IN = (
    DialerMode("preview", "the agent previews each record and dials it from the desktop", _preview),
    DialerMode(
        "progressive",
        "dials ratio x available agents, less the calls already ringing: nobody answers to silence",
        _progressive,
    ),
)


@hookimpl
def register_dialer_modes(register: Callable[[DialerMode], None]) -> None:
    for mode in BUILT_IN:
        register(mode)
