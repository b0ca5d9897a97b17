"""Simulation scenarios: the contact center, its customers and its agents, read
from TOML or YAML and validated field by field like the configuration."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from omniroute import _rust
from omniroute.config import read_document
from omniroute.errors import InvalidConfigError, InvalidInputError, from_validation
from omniroute.metrics import MetricsConfig
from omniroute.model import ChannelConfig, Condition, Name, Priority, QueueConfig, Seconds

__all__ = [
    "AgentGroup",
    "Arrivals",
    "Break",
    "Constant",
    "Distribution",
    "Exponential",
    "Gamma",
    "Lognormal",
    "Replayed",
    "Scenario",
    "Shift",
    "Uniform",
    "load_replay",
    "load_scenario",
    "parse_scenario",
]

Positive = Annotated[float, Meta(gt=0)]
Probability = Annotated[float, Meta(ge=0, le=1)]


class _Config(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Scenario input: a typo in a field name is an error."""


class Constant(_Config, tag="constant", tag_field="kind", frozen=True):
    value: Seconds


class Exponential(_Config, tag="exponential", tag_field="kind", frozen=True):
    mean: Positive


class Lognormal(_Config, tag="lognormal", tag_field="kind", frozen=True):
    mean: Positive
    sd: Positive


class Gamma(_Config, tag="gamma", tag_field="kind", frozen=True):
    mean: Positive
    shape: Positive


class Uniform(_Config, tag="uniform", tag_field="kind", frozen=True):
    low: Seconds
    high: Seconds


Distribution = Constant | Exponential | Lognormal | Gamma | Uniform


class Shift(_Config, frozen=True):
    start: Seconds
    end: Positive


class Break(_Config, frozen=True):
    start: Seconds
    seconds: Positive
    reason: Name = "break"


class AgentGroup(_Config, frozen=True, kw_only=True):
    """Agents alike, named ``{name}-1`` to ``{name}-{count}``."""

    name: Name
    count: Annotated[int, Meta(ge=1, le=1_000_000)]
    capacity: Annotated[int, Meta(ge=1, le=2**32 - 1)] = 60
    skills: dict[str, Annotated[int, Meta(ge=0, le=255)]] = {}
    queues: dict[str, Priority]
    shifts: list[Shift] = []
    breaks: list[Break] = []
    reject_probability: Probability = 0.0
    no_answer_probability: Probability = 0.0
    answer: Distribution | None = None
    recover_seconds: Positive = 60.0


class Arrivals(_Config, frozen=True, kw_only=True):
    """A Poisson stream: ``per_hour`` is one rate or one per ``rate_interval_seconds``."""

    queue: Name
    channel: Name
    priority: Priority = 0
    requires: Condition | None = None
    per_hour: Annotated[float, Meta(ge=0)] | list[Annotated[float, Meta(ge=0)]]
    rate_interval_seconds: Positive = 900.0
    handle: Distribution
    patience: Distribution | None = None


class Replayed(_Config, frozen=True, kw_only=True):
    """One recorded contact, replayed with its own handle time and patience."""

    at: Seconds
    queue: Name
    channel: Name
    priority: Priority = 0
    handle_seconds: Seconds
    patience_seconds: Seconds | None = None


class Scenario(_Config, frozen=True, kw_only=True):
    """A whole simulation: see ``docs/simulation.md``."""

    seed: Annotated[int, Meta(ge=0, le=2**63 - 1)] = 1
    replications: Annotated[int, Meta(ge=1, le=10_000)] = 10
    duration_seconds: Positive
    warmup_seconds: Seconds = 0.0
    drain_seconds: Seconds = 3600.0
    max_missed_offers: Annotated[int, Meta(ge=0, le=2**32 - 1)] = 3
    channels: list[ChannelConfig]
    queues: list[QueueConfig]
    agents: list[AgentGroup]
    arrivals: list[Arrivals] = []
    replay: list[Replayed] = []
    metrics: MetricsConfig | None = None
    agent_intervals: bool = False

    def encode(self) -> bytes:
        return _encoder.encode(self)


_encoder = msgspec.msgpack.Encoder()


def check(scenario: Scenario) -> Scenario:
    """Check what types alone cannot (names that refer to each other, time
    order, the engine's own rules); raises :class:`InvalidConfigError` naming
    the field."""
    _rust.check_scenario(scenario.encode())
    return scenario


def parse_scenario(data: Any) -> Scenario:
    """Validate plain data (as read from TOML, YAML or JSON) into a scenario."""
    try:
        scenario = msgspec.convert(data, Scenario)
    except msgspec.ValidationError as e:
        raise from_validation(e, InvalidConfigError) from e
    return check(scenario)


def load_scenario(path: str | Path) -> Scenario:
    """Read a ``.toml``, ``.yaml`` or ``.yml`` scenario file. A ``replay`` given
    as a string is a path (relative to the file) of a recorded log, read with
    :func:`load_replay`."""
    path = Path(path)
    try:
        data = read_document(path)
    except OSError as e:
        raise InvalidConfigError(f"{path}: {e.strerror or e}") from e
    try:
        if isinstance(data, dict) and isinstance(data.get("replay"), str):
            log = path.parent / data["replay"]
            data = {**data, "replay": [msgspec.to_builtins(r) for r in load_replay(log)]}
        return parse_scenario(data)
    except (InvalidConfigError, InvalidInputError) as e:
        raise InvalidConfigError(f"{path}: {e}") from e


def _seconds(value: object) -> float | None:
    """Unix seconds from a number or an ISO 8601 time with its offset (as exported)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return t.timestamp() if t.tzinfo is not None else None


def load_replay(path: str | Path) -> list[Replayed]:
    """Recorded contacts from an interaction export (``omniroute export
    interactions``, CSV or JSON Lines): arrival times relative to the first,
    handle time from answer to end, and, for an abandoned contact, the wait it
    gave up after as its patience. A contact answered keeps no patience (it
    never showed one)."""
    path = Path(path)
    rows: list[dict[str, Any]]
    try:
        with path.open(encoding="utf-8", newline="") as f:
            if path.suffix.lower() == ".csv":
                rows = list(csv.DictReader(f))
            else:
                rows = [json.loads(line) for line in f if line.strip()]
    except (OSError, json.JSONDecodeError, csv.Error) as e:
        raise InvalidInputError(f"replay: {path}: {e}") from e
    contacts: list[Replayed] = []
    for n, row in enumerate(rows, start=1):
        where = f"replay: {path.name} row {n}"
        created = _time(row, "created_at", where)
        answered = _time(row, "answered_at", where, required=False)
        ended = _time(row, "ended_at", where, required=False)
        assert created is not None
        queue, channel = row.get("queue") or "", row.get("channel") or ""
        if not queue or not channel:
            raise InvalidInputError(f"{where}: queue and channel: both are needed")
        if answered is not None and ended is not None:
            handle, patience = ended - answered, None
        elif answered is None and ended is not None:
            handle, patience = 0.0, ended - created
        else:
            continue  # still open when exported: nothing to replay
        if handle < 0 or (patience is not None and patience < 0):
            raise InvalidInputError(f"{where}: ended_at: before the contact's start")
        contacts.append(
            Replayed(
                at=created, queue=queue, channel=channel, handle_seconds=handle, patience_seconds=patience
            )
        )
    if not contacts:
        raise InvalidInputError(f"replay: {path}: no finished contacts to replay")
    contacts.sort(key=lambda r: r.at)
    first = contacts[0].at
    return [msgspec.structs.replace(r, at=r.at - first) for r in contacts]


def _time(row: dict[str, Any], field: str, where: str, *, required: bool = True) -> float | None:
    """A time column of a recorded contact, in Unix seconds; None when empty and not required."""
    value = row.get(field)
    if value in (None, ""):
        if required:
            raise InvalidInputError(f"{where}: {field}: missing")
        return None
    x = _seconds(value)
    if x is None:
        raise InvalidInputError(f"{where}: {field}: expected an ISO 8601 time or Unix seconds, got {value!r}")
    if not math.isfinite(x):
        raise InvalidInputError(f"{where}: {field}: expected a finite number, got {value!r}")
    return x
