"""Interactions and the event log out of a store, as CSV or JSON Lines, for
reporting tools, spreadsheets and data warehouses.

From the command line (the store defaults to ``sqlite:///omniroute.db``)::

    omniroute export interactions --store sqlite:///omniroute.db --output interactions.csv
    omniroute export interactions --format jsonl --status completed abandoned --since 2024-01-01
    omniroute export events --store postgresql://host/omniroute --after 120000 > events.jsonl

From Python::

    from omniroute.export import export_events, export_interactions
    from omniroute.store import open_store

    with open_store("sqlite:///omniroute.db") as store, open("out.csv", "w", newline="") as out:
        count = export_interactions(store, out, format="csv", status=["completed"])

Both functions read one page at a time inside one read transaction (a
consistent view of the store) and write as they go, so an export of any
size runs in constant memory; both return how many records they wrote.

**Interactions** (:func:`export_interactions`), in the store's id order:

- CSV: a header row with every :class:`~omniroute.store.Interaction` field in
  declaration order, then one row per interaction. Times (the ``*_at``
  fields) are ISO 8601 in UTC with microseconds, e.g.
  ``2023-11-14T22:13:20.000000Z``; an empty cell is None (an empty string
  looks the same); ``attributes`` is compact JSON. Quoting is minimal, rows
  end with ``\\n``: open the file with ``newline=""``.
- JSONL: one JSON object per line with the same field names, times as the
  same ISO strings, null for None, ``attributes`` as an object.

**Events** (:func:`export_events`), the append-only log in ``seq`` order:

- JSONL: one CloudEvents 1.0 JSON object per line
  (:func:`omniroute.runtime.to_cloudevent`; ``id`` is the seq).
- CSV: columns ``seq, id, type, time, subject, data``: ``type`` is the
  CloudEvents type (``omniroute.task_assigned``), ``time`` ISO 8601 as above,
  ``data`` the CloudEvent's data as compact JSON.

Nothing is written for a refused argument: an unknown ``format``, ``status``
or event type raises :class:`~omniroute.errors.InvalidInputError` first.
"""

from __future__ import annotations

import csv
import typing
from collections.abc import Callable, Iterable
from typing import Any, Literal, TextIO

import msgspec

from omniroute.errors import InvalidInputError
from omniroute.runtime.events import EventData, envelope_of, iso_time, to_cloudevent
from omniroute.store import Interaction, SqlStore
from omniroute.store.records import InteractionStatus

__all__ = ["EVENT_TYPES", "FORMATS", "STATUSES", "export_events", "export_interactions"]

Format = Literal["csv", "jsonl"]
FORMATS: tuple[str, ...] = typing.get_args(Format)
STATUSES: tuple[str, ...] = typing.get_args(InteractionStatus)
# Every type the event log holds: the runtime's own and the engine's outputs.
EVENT_TYPES: tuple[str, ...] = tuple(sorted(cls.__struct_config__.tag for cls in typing.get_args(EventData)))
EVENT_COLUMNS = ("seq", "id", "type", "time", "subject", "data")

_FIELDS: tuple[str, ...] = Interaction.__struct_fields__
# Every time of an interaction ends in _at (and every field that does is a time).
_TIMES = frozenset(name for name in _FIELDS if name.endswith("_at"))
_json = msgspec.json.Encoder()


def _check_format(format: str) -> Format:
    if format not in FORMATS:
        raise InvalidInputError(f"format: {format!r} is not one of {', '.join(FORMATS)}")
    return typing.cast(Format, format)


def _check_page(page: int) -> int:
    if type(page) is not int or page < 1:
        raise InvalidInputError(f"page: {page!r} is not a whole number >= 1")
    return page


def _names(values: Iterable[str] | None) -> list[str] | None:
    if values is None:
        return None
    # A lone string is one name, not its letters.
    return [values] if isinstance(values, str) else list(values)


def _check_statuses(status: Iterable[str] | None) -> list[str] | None:
    statuses = _names(status)
    for s in statuses or ():
        if s not in STATUSES:
            raise InvalidInputError(f"status: {s!r} is not one of {', '.join(STATUSES)}")
    return None if statuses is None else list(dict.fromkeys(statuses))


def _check_types(types: Iterable[str] | None) -> frozenset[str] | None:
    names = _names(types)
    if names is None:
        return None
    wanted = set()
    for name in names:
        # The CloudEvents spelling (omniroute.task_queued) is accepted too.
        bare = name.removeprefix("omniroute.")
        if bare not in EVENT_TYPES:
            raise InvalidInputError(f"types: {name!r} is not one of {', '.join(EVENT_TYPES)}")
        wanted.add(bare)
    return frozenset(wanted)


def _csv_writer(out: TextIO, fmt: Format, header: Iterable[str]) -> Callable[[Iterable[Any]], Any] | None:
    """For CSV, a row writer whose header is already written; None for JSONL."""
    if fmt != "csv":
        return None
    write = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\n").writerow
    write(header)
    return write


def _write_json(out: TextIO, value: Any) -> None:
    out.write(_json.encode(value).decode())
    out.write("\n")


def _interaction_row(i: Interaction) -> list[Any]:
    row: list[Any] = []
    for name in _FIELDS:
        value = getattr(i, name)
        if value is None:
            row.append("")
        elif name in _TIMES:
            row.append(iso_time(value))
        elif name == "attributes":
            row.append(_json.encode(value).decode())
        else:
            row.append(value)
    return row


def _interaction_object(i: Interaction) -> dict[str, Any]:
    out = msgspec.structs.asdict(i)
    for name in _TIMES:
        value = out[name]
        if value is not None:
            out[name] = iso_time(value)
    return out


def export_interactions(
    store: SqlStore,
    out: TextIO,
    *,
    format: Format,
    status: Iterable[str] | None = None,
    since: float | None = None,
    until: float | None = None,
    page: int = 5000,
) -> int:
    """Write the store's interactions to ``out`` as CSV or JSON Lines; returns how many.

    ``status`` keeps only those statuses (an empty list keeps none);
    ``since`` and ``until`` (Unix seconds) keep those created in
    ``[since, until)``. ``page`` is how many rows are read at a time.
    """
    fmt = _check_format(format)
    statuses = _check_statuses(status)
    page = _check_page(page)
    count = 0
    write_csv = _csv_writer(out, fmt, _FIELDS)
    with store.read() as r:
        for i in r.interactions(status=statuses, batch=page):
            if (since is not None and i.created_at < since) or (until is not None and i.created_at >= until):
                continue
            if write_csv is not None:
                write_csv(_interaction_row(i))
            else:
                _write_json(out, _interaction_object(i))
            count += 1
    return count


def export_events(
    store: SqlStore,
    out: TextIO,
    *,
    format: Format,
    after: int = 0,
    types: Iterable[str] | None = None,
    page: int = 5000,
    source: str = "omniroute",
) -> int:
    """Write the event log after seq ``after`` to ``out``, in seq order; returns how many.

    ``types`` keeps only those event types (``task_assigned`` or
    ``omniroute.task_assigned``); ``source`` is the CloudEvents source.
    """
    fmt = _check_format(format)
    wanted = _check_types(types)
    page = _check_page(page)
    count = 0
    write_csv = _csv_writer(out, fmt, EVENT_COLUMNS)
    with store.read() as r:
        while True:
            stored = r.events(after, limit=page)
            for e in stored:
                if wanted is not None and e.type not in wanted:
                    continue
                event = to_cloudevent(envelope_of(e), source=source)
                if write_csv is not None:
                    # The CloudEvent already holds the ISO time and the subject.
                    data = _json.encode(event["data"]).decode()
                    write_csv((e.seq, event["id"], event["type"], event["time"], event["subject"], data))
                else:
                    _write_json(out, event)
                count += 1
            if len(stored) < page:
                return count
            after = stored[-1].seq
