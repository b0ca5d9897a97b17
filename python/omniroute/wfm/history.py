"""Contact history per interval: read from a CSV file or from the runtime's
store, aggregated to 15-, 30- or 60-minute intervals.

A :class:`History` is a contiguous grid of intervals starting at ``start``
(Unix seconds) with the volume (contacts) and the workload (seconds of
handling: volume x AHT) of each; intervals nothing arrived in are zero.

**CSV** (:func:`read_history_csv`): a header row naming at least
``interval_start``, ``volume`` and ``aht_seconds``; ``queue`` and ``channel``
are optional, other columns are ignored. ``interval_start`` is ISO 8601 with
a UTC offset (``2024-01-08T10:00:00+01:00``, ``...Z``) or Unix seconds; the
first row's offset is the history's (times of day and days are counted in
it). Rows of one (queue, channel) must be in strictly increasing time order;
rows finer than the interval are summed into the interval that holds their
start. Every mistake raises :class:`~omniroute.errors.InvalidInputError`
naming the column and the row (the header is row 1)::

    volume (row 7): -3.0 is negative; a volume is a count of contacts ≥ 0

**Store** (:func:`history_from_store`): every inbound interaction except
cancelled ones counts in the interval of its ``created_at`` (UTC); an
answered one that ended handles for ``(wrap_up_ended_at or ended_at) -
answered_at`` seconds. The AHT of an interval is that of its handled
interactions, or the whole history's where none was handled, and its
workload is volume x AHT (abandoned contacts would have needed an agent too).
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import math
import os
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import msgspec

from omniroute.errors import InvalidInputError
from omniroute.store import Interaction, SqlStore

__all__ = [
    "INTERVAL_MINUTES",
    "History",
    "Intervals",
    "check_interval_minutes",
    "history_from_interactions",
    "history_from_store",
    "iso",
    "parse_time",
    "read_history_csv",
]

INTERVAL_MINUTES: tuple[int, ...] = (15, 30, 60)
REQUIRED_COLUMNS: tuple[str, ...] = ("interval_start", "volume", "aht_seconds")


class Intervals(msgspec.Struct, frozen=True, kw_only=True):
    """Contacts per interval on a contiguous grid: what a history and a forecast share."""

    # Unix seconds at which the first interval starts.
    start: float
    interval_minutes: int
    # The offset from UTC that times of day are counted in (0: UTC).
    utc_offset_seconds: int = 0
    # Contacts per interval (≥ 0).
    volume: list[float]

    @property
    def step(self) -> float:
        """Seconds per interval."""
        return self.interval_minutes * 60.0

    @property
    def intervals_per_day(self) -> int:
        return 24 * 60 // self.interval_minutes

    @property
    def end(self) -> float:
        """Unix seconds at which the interval after the last one starts."""
        return self.start + len(self.volume) * self.step

    @property
    def days(self) -> float:
        return len(self.volume) / self.intervals_per_day

    def starts(self) -> list[float]:
        """The start of every interval, in Unix seconds."""
        return [self.start + k * self.step for k in range(len(self.volume))]


class History(Intervals, frozen=True, kw_only=True):
    """Volume and workload per interval, on a contiguous grid."""

    # Seconds of handling per interval: volume x the interval's AHT.
    workload_seconds: list[float]

    @property
    def mean_aht(self) -> float:
        """Σ workload / Σ volume (0 when nothing arrived)."""
        total = sum(self.volume)
        return sum(self.workload_seconds) / total if total > 0 else 0.0

    @property
    def aht_seconds(self) -> list[float]:
        """Workload / volume per interval; the mean AHT where the volume is zero."""
        mean = self.mean_aht
        return [w / v if v > 0 else mean for v, w in zip(self.volume, self.workload_seconds, strict=True)]


def check_interval_minutes(minutes: int) -> int:
    if type(minutes) is not int or minutes not in INTERVAL_MINUTES:
        raise InvalidInputError(
            f"interval_minutes: {minutes!r} is not one of {', '.join(map(str, INTERVAL_MINUTES))}"
        )
    return minutes


def iso(seconds: float, utc_offset_seconds: int = 0) -> str:
    """``2024-01-08T10:00:00+01:00``: ISO 8601 in the given offset, to the second."""
    zone = dt.timezone(dt.timedelta(seconds=utc_offset_seconds))
    return dt.datetime.fromtimestamp(seconds, zone).isoformat(timespec="seconds")


def parse_time(text: str) -> tuple[float, int]:
    """Unix seconds and the UTC offset (seconds) of an ISO 8601 time with an
    offset, or of Unix seconds (offset 0). Raises ``ValueError`` with the reason."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise ValueError(f"{text!r} is not a time")
        return seconds, 0
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither ISO 8601 nor Unix seconds") from None
    offset = when.utcoffset()
    if offset is None:
        raise ValueError(f"{text!r} has no UTC offset (add Z or +01:00, say)")
    return when.timestamp(), int(offset.total_seconds())


class _Row(NamedTuple):
    line: int
    key: tuple[str, str]
    start: float
    offset: int
    volume: float
    aht: float


def _number(text: str, column: str, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidInputError(f"{column} (row {line}): {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InvalidInputError(f"{column} (row {line}): {text!r} is not a finite number")
    return value


def _read_rows(path: str | os.PathLike[str], what: str) -> tuple[list[str], list[_Row]]:
    """The header's column names and the rows of a history or forecast CSV."""
    name = os.fspath(path)
    with open(name, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise InvalidInputError(
                f"{what}: {name} is empty (expected a header row {','.join(REQUIRED_COLUMNS)})"
            )
        columns = [cell.strip() for cell in header]
        for column in REQUIRED_COLUMNS:
            if column not in columns:
                raise InvalidInputError(
                    f"{column}: missing column in {name} (row 1 has {', '.join(c for c in columns if c)})"
                )
        index = {c: columns.index(c) for c in (*REQUIRED_COLUMNS, "queue", "channel") if c in columns}
        rows: list[_Row] = []
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue  # a blank line
            if len(cells) < len(columns):
                missing = columns[len(cells)]
                raise InvalidInputError(f"{missing} (row {line}): missing value ({len(cells)} cells)")
            try:
                start, offset = parse_time(cells[index["interval_start"]])
            except ValueError as e:
                raise InvalidInputError(f"interval_start (row {line}): {e}") from None
            volume = _number(cells[index["volume"]].strip(), "volume", line)
            if volume < 0:
                raise InvalidInputError(
                    f"volume (row {line}): {volume!r} is negative; a volume is a count of contacts ≥ 0"
                )
            aht_text = cells[index["aht_seconds"]].strip()
            if aht_text == "" and volume == 0:
                aht = 0.0  # no contacts, no handling time
            else:
                aht = _number(aht_text, "aht_seconds", line)
                if aht < 0 or (aht == 0 and volume > 0):
                    raise InvalidInputError(
                        f"aht_seconds (row {line}): {aht!r} with volume {volume!r}; "
                        "contacts take a handling time > 0 seconds"
                    )
            key = (
                cells[index["queue"]].strip() if "queue" in index else "",
                cells[index["channel"]].strip() if "channel" in index else "",
            )
            rows.append(_Row(line, key, start, offset, volume, aht))
    if not rows:
        raise InvalidInputError(f"{what}: {name} has a header but no rows")
    return columns, rows


def _check_order(rows: Sequence[_Row]) -> None:
    last: dict[tuple[str, str], _Row] = {}
    for row in rows:
        before = last.get(row.key)
        if before is not None and row.start <= before.start:
            series = "" if row.key == ("", "") else f" of queue {row.key[0]!r}, channel {row.key[1]!r}"
            kind = "repeats" if row.start == before.start else "is before"
            raise InvalidInputError(
                f"interval_start (row {row.line}): {kind} row {before.line}{series}; "
                "rows must be in increasing time order, each interval once"
            )
        last[row.key] = row


def _grid(events: Iterable[tuple[float, float, float]], minutes: int, offset: int, what: str) -> History:
    """(time, volume, workload) summed into intervals of ``minutes``, on a grid
    aligned to the clock in ``offset``."""
    step = minutes * 60
    buckets: dict[int, list[float]] = {}
    for at, contacts, work in events:
        k = math.floor((at + offset) / step)
        bucket = buckets.setdefault(k, [0.0, 0.0])
        bucket[0] += contacts
        bucket[1] += work
    if not buckets:
        raise InvalidInputError(f"{what}: no contacts to forecast from")
    first, last = min(buckets), max(buckets)
    volume = [0.0] * (last - first + 1)
    workload = [0.0] * (last - first + 1)
    for k, (v, w) in buckets.items():
        volume[k - first] = v
        workload[k - first] = w
    return History(
        start=float(first * step - offset),
        interval_minutes=minutes,
        utc_offset_seconds=offset,
        volume=volume,
        workload_seconds=workload,
    )


def read_history_csv(
    path: str | os.PathLike[str],
    *,
    interval_minutes: int | None = 15,
    queue: str | None = None,
    channel: str | None = None,
    what: str = "history",
) -> History:
    """The history in a CSV file (see the module's docstring), aggregated to
    ``interval_minutes``, or with None to the rows' own spacing (a file of one
    row per interval, such as a forecast; 15 minutes for a single row); only
    rows of ``queue`` and/or ``channel`` if given (the file must then have that
    column), otherwise all rows summed."""
    if interval_minutes is not None:
        check_interval_minutes(interval_minutes)
    columns, rows = _read_rows(path, what)
    for column, value in (("queue", queue), ("channel", channel)):
        if value is not None and column not in columns:
            raise InvalidInputError(
                f"{column}: {os.fspath(path)} has no {column} column to choose {value!r} from"
            )
    _check_order(rows)
    chosen = [
        r for r in rows if (queue is None or r.key[0] == queue) and (channel is None or r.key[1] == channel)
    ]
    if not chosen:
        raise InvalidInputError(
            f"{'queue' if queue is not None else 'channel'}: no rows of {_chosen(queue, channel)}"
        )
    spacing = _spacing(chosen)
    if interval_minutes is None:
        minutes = 15 if spacing == 0 else spacing / 60
        if minutes not in INTERVAL_MINUTES:
            raise InvalidInputError(
                f"interval_start: rows are {minutes:g} minutes apart; intervals of "
                f"{', '.join(map(str, INTERVAL_MINUTES))} minutes are supported"
            )
        interval_minutes = int(minutes)
    elif spacing > interval_minutes * 60:
        raise InvalidInputError(
            f"interval_start: rows are {spacing / 60:g} minutes apart, coarser than the "
            f"{interval_minutes}-minute intervals asked for (interval_minutes)"
        )
    offset = chosen[0].offset
    return _grid(((r.start, r.volume, r.volume * r.aht) for r in chosen), interval_minutes, offset, what)


def _chosen(queue: str | None, channel: str | None) -> str:
    named = (("queue", queue), ("channel", channel))
    return ", ".join(f"{name} {value!r}" for name, value in named if value is not None)


def _spacing(rows: Sequence[_Row]) -> int:
    """Seconds between the rows of one (queue, channel): the greatest common
    divisor of their gaps, 0 when no series has two rows."""
    by_key: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        by_key.setdefault(r.key, []).append(r.start)
    return math.gcd(*(round(b - a) for starts in by_key.values() for a, b in itertools.pairwise(starts)))


def history_from_interactions(
    interactions: Iterable[Interaction],
    *,
    interval_minutes: int = 15,
    queue: str | None = None,
    channel: str | None = None,
    since: float | None = None,
    until: float | None = None,
) -> History:
    """The history of these interactions (see the module's docstring), in UTC."""
    minutes = check_interval_minutes(interval_minutes)
    arrivals: list[float] = []
    handled = 0
    handled_work = 0.0
    per_interval: dict[int, list[float]] = {}  # interval -> [handled, handling seconds]
    step = minutes * 60
    for i in interactions:
        if i.direction != "inbound" or i.status == "cancelled":
            continue
        if (queue is not None and i.queue != queue) or (channel is not None and i.channel != channel):
            continue
        if (since is not None and i.created_at < since) or (until is not None and i.created_at >= until):
            continue
        arrivals.append(i.created_at)
        end = i.wrap_up_ended_at if i.wrap_up_ended_at is not None else i.ended_at
        if i.answered_at is not None and end is not None and end >= i.answered_at:
            cell = per_interval.setdefault(math.floor(i.created_at / step), [0.0, 0.0])
            cell[0] += 1
            cell[1] += end - i.answered_at
            handled += 1
            handled_work += end - i.answered_at
    if not arrivals:
        chosen = _chosen(queue, channel)
        raise InvalidInputError(f"store: no inbound interactions{' of ' + chosen if chosen else ''}")
    if handled == 0:
        raise InvalidInputError("store: no interaction was answered and ended; no handling time to learn")
    mean = handled_work / handled

    def aht(at: float) -> float:
        cell = per_interval.get(math.floor(at / step))
        return cell[1] / cell[0] if cell else mean

    return _grid(((at, 1.0, aht(at)) for at in arrivals), minutes, 0, "store")


def history_from_store(
    store: SqlStore,
    *,
    interval_minutes: int = 15,
    queue: str | None = None,
    channel: str | None = None,
    since: float | None = None,
    until: float | None = None,
) -> History:
    """The history of the store's interactions, read in one read transaction."""
    with store.read() as r:
        return history_from_interactions(
            r.interactions(),
            interval_minutes=interval_minutes,
            queue=queue,
            channel=channel,
            since=since,
            until=until,
        )
