"""Exports: interactions and the event log out of a real SQLite store, as CSV
and JSON Lines, read back to the values the store holds; and the commands
``omniroute export`` and ``omniroute migrate``."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from omniroute import cli
from omniroute.errors import InvalidInputError
from omniroute.export import export_events, export_interactions
from omniroute.model import AgentConfig, ChannelConfig, EngineConfig, QueueConfig
from omniroute.runtime import IdentityIn, ManualClock, MessageIn, NewInteraction, Runtime, to_cloudevent
from omniroute.store import Interaction, open_store
from omniroute.store.migrations import latest_version

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
SUBJECT = 'Refund, "asap"\nsecond line; ünïcødé ✓'
ATTRIBUTES: dict[str, Any] = {
    "note": 'comma, "quote"\r\nnewline — 日本語',
    "count": 3,
    "vip": True,
    "ratio": 0.25,
    "empty": "",
}
FIELDS = list(Interaction.__struct_fields__)

CONFIG = EngineConfig(
    channels=[
        ChannelConfig(name="voice", cost=60),
        ChannelConfig(name="chat", cost=20, max_per_agent=3),
        ChannelConfig(name="email", cost=10),
    ],
    queues=[QueueConfig(name="support"), QueueConfig(name="sales", wrap_up=5.0)],
    agents=[
        AgentConfig(id="ann", queues={"support": 0, "sales": 0}),
        AgentConfig(id="bob", queues={"support": 0}),
    ],
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Filled:
    url: str
    # Interaction ids in the order they were created.
    ids: list[str]
    first: str
    abandoned: str
    cancelled: str
    # The runtime's own view of the log, read through its API.
    events: list[dict[str, Any]]


@pytest.fixture
async def filled(tmp_path: Path, anyio_backend: str) -> Filled:
    """A store with a completed interaction (awkward text everywhere), an
    abandoned and a cancelled one, and a score of open ones."""
    url = f"sqlite:///{tmp_path}/omniroute.db"
    clock = ManualClock(T0)
    ids = []
    async with Runtime.open(open_store(url), CONFIG, clock=clock) as rt:
        first = await rt.create_interaction(
            NewInteraction(
                channel="email",
                queue="sales",
                priority=2,
                identities=[IdentityIn(kind="email", value="Jo@Example.com")],
                subject=SUBJECT,
                attributes=ATTRIBUTES,
                message=MessageIn(body="hello, world"),
            )
        )
        ids.append(first.interaction)
        offer = next(o for o, (task, _) in rt.offers().items() if task == first.interaction)
        await rt.accept(offer)
        clock.advance(30.25)
        await rt.complete(
            first.interaction, disposition="answered", outcome='sold, "two"\nunits', resolved=True, note="ok"
        )
        clock.advance(10)
        await rt.tick()
        abandoned = await rt.create_interaction(NewInteraction(channel="chat", queue="support"))
        ids.append(abandoned.interaction)
        clock.advance(1)
        await rt.cancel(abandoned.interaction, status="abandoned")
        clock.advance(1)
        cancelled = await rt.create_interaction(NewInteraction(channel="voice", queue="support"))
        ids.append(cancelled.interaction)
        await rt.cancel(cancelled.interaction, status="cancelled")
        for k in range(20):
            clock.advance(1.5)
            ack = await rt.create_interaction(
                NewInteraction(
                    channel=("chat", "email")[k % 2],
                    queue="support",
                    identities=[IdentityIn(kind="chat", value=f"visitor-{k}")],
                    attributes={"k": k} if k % 3 else {},
                )
            )
            ids.append(ack.interaction)
        events = [
            json.loads(msgspec.json.encode(to_cloudevent(e))) for e in await rt.events(0, limit=100_000)
        ]
    return Filled(
        url=url,
        ids=ids,
        first=first.interaction,
        abandoned=abandoned.interaction,
        cancelled=cancelled.interaction,
        events=events,
    )


def records(filled: Filled) -> dict[str, Interaction]:
    """Every interaction, read one by one (not through the paging the export uses)."""
    with open_store(filled.url) as store, store.read() as r:
        assert r.count("interactions") == len(filled.ids)
        return {i: r.interaction(i) for i in filled.ids}


def seconds(iso: str) -> float:
    assert iso.endswith("Z")
    assert len(iso) == len("2023-11-14T22:13:20.000000Z")
    return dt.datetime.fromisoformat(iso).timestamp()


def from_cell(name: str, cell: str) -> Any:
    if cell == "":
        return None
    if name.endswith("_at"):
        return seconds(cell)
    if name == "attributes":
        return json.loads(cell)
    if name in ("priority", "offer"):
        return int(cell)
    if name == "hold_seconds":
        return float(cell)
    return cell


def from_json(name: str, value: Any) -> Any:
    return seconds(value) if name.endswith("_at") and value is not None else value


def export(url: str, what: str = "interactions", **kw: Any) -> tuple[int, str]:
    out = io.StringIO(newline="")
    with open_store(url) as store:
        fn = export_interactions if what == "interactions" else export_events
        count = fn(store, out, **kw)
    return count, out.getvalue()


# ----- interactions -----


@pytest.mark.parametrize("page", [1, 4, 23, 5000])
def test_csv_reads_back_to_the_stored_interactions(filled: Filled, page: int) -> None:
    stored = records(filled)
    assert len(stored) == len(filled.ids) == 23
    count, text = export(filled.url, format="csv", page=page)
    assert count == len(stored)
    assert text.splitlines()[0] == ",".join(FIELDS)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert reader.fieldnames == FIELDS
    rows = list(reader)
    assert len(rows) == count
    assert len({row["id"] for row in rows}) == count
    for row in rows:
        back = Interaction(**{name: from_cell(name, cell) for name, cell in row.items()})
        assert back == stored[row["id"]]
    # Not only self-consistent: what was sent in comes back out.
    first = next(row for row in rows if row["id"] == filled.first)
    assert first["subject"] == SUBJECT
    assert json.loads(first["attributes"]) == ATTRIBUTES
    assert first["created_at"] == "2023-11-14T22:13:20.000000Z"
    assert first["ended_at"] == "2023-11-14T22:13:50.250000Z"
    assert first["status"] == "completed"
    assert first["outcome"] == 'sold, "two"\nunits'
    assert first["priority"] == "2"
    assert first["offer"] == ""  # None
    # Compact JSON, UTF-8 as it is.
    assert first["attributes"] == json.dumps(ATTRIBUTES, ensure_ascii=False, separators=(",", ":"))
    empty = next(row for row in rows if row["id"] == filled.ids[3])
    assert empty["attributes"] == "{}"
    assert empty["subject"] == ""


@pytest.mark.parametrize("page", [1, 7, 5000])
def test_jsonl_reads_back_to_the_stored_interactions(filled: Filled, page: int) -> None:
    stored = records(filled)
    count, text = export(filled.url, format="jsonl", page=page)
    lines = text.split("\n")
    assert lines[-1] == ""
    objects = [json.loads(line) for line in lines[:-1]]
    assert count == len(objects) == len(stored)
    for obj in objects:
        assert list(obj) == FIELDS
        back = Interaction(**{name: from_json(name, value) for name, value in obj.items()})
        assert back == stored[obj["id"]]
    first = next(obj for obj in objects if obj["id"] == filled.first)
    assert first["subject"] == SUBJECT
    assert first["attributes"] == ATTRIBUTES
    assert first["created_at"] == "2023-11-14T22:13:20.000000Z"
    assert first["offer"] is None
    assert first["agent"] == "ann"


def test_interactions_filter_by_status_and_creation_time(filled: Filled) -> None:
    stored = records(filled)

    def ids(text: str) -> list[str]:
        return [row["id"] for row in csv.DictReader(io.StringIO(text, newline=""))]

    count, text = export(filled.url, format="csv", status=["completed"])
    assert (count, ids(text)) == (1, [filled.first])
    count, text = export(filled.url, format="csv", status=["abandoned", "cancelled"], page=1)
    assert count == 2
    assert sorted(ids(text)) == sorted([filled.abandoned, filled.cancelled])
    assert {stored[i].status for i in ids(text)} == {"abandoned", "cancelled"}
    # A lone string is one status.
    count, text = export(filled.url, format="jsonl", status="abandoned")
    assert [json.loads(line)["id"] for line in text.splitlines()] == [filled.abandoned]
    open_ones = [i for i in stored.values() if i.status in ("waiting", "offered", "assigned")]
    count, text = export(filled.url, format="csv", status=["waiting", "offered", "assigned"], page=2)
    assert count == len(open_ones) == 20
    # An empty list keeps none: the header alone.
    assert export(filled.url, format="csv", status=[]) == (0, ",".join(FIELDS) + "\n")
    assert export(filled.url, format="jsonl", status=[]) == (0, "")

    # [since, until): the start is in, the end is out.
    since = stored[filled.abandoned].created_at
    until = stored[filled.ids[5]].created_at
    count, text = export(filled.url, format="csv", since=since, until=until, page=3)
    assert sorted(ids(text)) == sorted(filled.ids[1:5])
    assert count == 4
    count, text = export(filled.url, format="csv", since=since)
    assert sorted(ids(text)) == sorted(filled.ids[1:])
    count, text = export(filled.url, format="csv", until=since)
    assert ids(text) == [filled.first]
    count, text = export(filled.url, format="csv", since=since, until=until, status=["cancelled"])
    assert ids(text) == [filled.cancelled]
    assert export(filled.url, format="csv", since=until, until=since)[0] == 0


@pytest.mark.parametrize(
    ("what", "kwargs", "message"),
    [
        ("interactions", {"format": "xml"}, "format: 'xml' is not one of csv, jsonl"),
        ("events", {"format": "JSONL"}, "format: 'JSONL' is not one of csv, jsonl"),
        (
            "interactions",
            {"format": "csv", "status": ["completed", "done"]},
            "status: 'done' is not one of waiting, offered, assigned, completed, abandoned, cancelled",
        ),
        ("events", {"format": "csv", "types": ["task_exploded"]}, "types: 'task_exploded' is not one of "),
        ("interactions", {"format": "csv", "page": 0}, "page: 0 is not a whole number >= 1"),
        ("events", {"format": "jsonl", "page": 2.5}, "page: 2.5 is not a whole number >= 1"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(
    tmp_path: Path, what: str, kwargs: dict[str, Any], message: str
) -> None:
    out = io.StringIO()
    with open_store(f"sqlite:///{tmp_path}/empty.db") as store:
        fn = export_interactions if what == "interactions" else export_events
        with pytest.raises(InvalidInputError) as caught:
            fn(store, out, **kwargs)
    assert str(caught.value).startswith(message)
    assert out.getvalue() == ""


# ----- events -----


def test_events_as_cloudevents_in_seq_order_without_gaps(filled: Filled) -> None:
    with open_store(filled.url) as store, store.read() as r:
        last = r.last_event_seq()
        total = r.count("events")
    assert total == last == len(filled.events) > 50
    outputs = set()
    for page in (1, 6, total - 1, total, total + 1, 5000):
        count, text = export(filled.url, "events", format="jsonl", page=page)
        outputs.add(text)
        assert count == total
    assert len(outputs) == 1
    events = [json.loads(line) for line in outputs.pop().splitlines()]
    assert [int(e["id"]) for e in events] == list(range(1, total + 1))
    assert events == filled.events
    for e in events:
        assert e["specversion"] == "1.0"
        assert e["source"] == "omniroute"
        assert e["type"].startswith("omniroute.")
        assert e["datacontenttype"] == "application/json"
        assert isinstance(e["subject"], str)
        assert e["subject"]
        assert isinstance(e["data"], dict)
        assert "type" not in e["data"]
        assert dt.datetime.fromisoformat(e["time"]).tzinfo is not None
    created = [e for e in events if e["type"] == "omniroute.interaction_created"]
    assert [e["data"]["interaction"]["id"] for e in created] == filled.ids
    assert created[0]["data"]["interaction"]["attributes"] == ATTRIBUTES
    assert created[0]["time"] == "2023-11-14T22:13:20.000000Z"
    (updated,) = [e for e in events if e["type"] == "omniroute.interaction_updated"]
    assert updated["subject"] == filled.first
    assert updated["data"]["disposition"] == "answered"
    assert any(e["type"] == "omniroute.task_assigned" and e["subject"] == filled.first for e in events)


def test_events_as_csv_and_filtered(filled: Filled) -> None:
    total = len(filled.events)
    count, text = export(filled.url, "events", format="csv", page=5)
    assert count == total
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert list(rows[0]) == ["seq", "id", "type", "time", "subject", "data"]
    assert [int(row["seq"]) for row in rows] == list(range(1, total + 1))
    for row, event in zip(rows, filled.events, strict=True):
        assert row["id"] == row["seq"] == event["id"]
        assert row["type"] == event["type"]
        assert row["subject"] == event["subject"]
        assert json.loads(row["data"]) == event["data"]
        assert seconds(row["time"]) == dt.datetime.fromisoformat(event["time"]).timestamp()
    assert rows[0]["time"] == "2023-11-14T22:13:20.000000Z"

    # After a seq: only what follows it.
    count, text = export(filled.url, "events", format="jsonl", after=total - 3, page=2)
    assert [json.loads(line)["id"] for line in text.splitlines()] == [
        str(s) for s in range(total - 2, total + 1)
    ]
    assert count == 3
    assert export(filled.url, "events", format="jsonl", after=total) == (0, "")
    # By type, in either spelling.
    count, text = export(
        filled.url, "events", format="jsonl", types=["task_assigned", "omniroute.interaction_created"], page=4
    )
    got = [json.loads(line) for line in text.splitlines()]
    want = [
        e for e in filled.events if e["type"] in ("omniroute.task_assigned", "omniroute.interaction_created")
    ]
    assert got == want
    assert count == len(want) > len(filled.ids)
    assert export(filled.url, "events", format="csv", types=[]) == (0, "seq,id,type,time,subject,data\n")


# ----- the commands -----


def test_cli_exports_to_a_file_and_to_stdout(
    filled: Filled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "interactions.csv"
    assert cli.main(["export", "interactions", "--store", filled.url, "--output", str(target)]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"23 interactions written to {target}\n"
    assert captured.err == ""
    assert target.read_text(encoding="utf-8") == export(filled.url, format="csv")[1]

    assert cli.main(["export", "events", "--store", filled.url, "--format", "csv", "--after", "10"]) == 0
    assert capsys.readouterr().out == export(filled.url, "events", format="csv", after=10)[1]

    assert cli.main(["export", "events", "--store", filled.url, "--type", "interaction_updated"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["type"] == "omniroute.interaction_updated"

    args = [
        "export",
        "interactions",
        "--store",
        filled.url,
        "--format",
        "jsonl",
        "--status",
        "abandoned,cancelled",
    ]
    assert cli.main(args) == 0
    ids = {json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()}
    assert ids == {filled.abandoned, filled.cancelled}

    since = "2023-11-14T22:14:00"  # 40 s after T0, UTC: the interactions after the first
    assert (
        cli.main(["export", "interactions", "--store", filled.url, "--since", since, "--status", "completed"])
        == 0
    )
    assert capsys.readouterr().out == ",".join(FIELDS) + "\n"
    assert (
        cli.main(["export", "interactions", "--store", filled.url, "--since", since, "--until", str(T0 + 43)])
        == 0
    )
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out, newline="")))
    assert sorted(row["id"] for row in rows) == sorted(filled.ids[1:3])


def test_cli_errors_are_one_line_and_exit_2(
    filled: Filled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out" / "x.csv"
    target.parent.mkdir()
    for args, message in [
        (["interactions", "--format", "xml"], "format: 'xml' is not one of csv, jsonl"),
        (["events", "--format", "parquet"], "format: 'parquet' is not one of csv, jsonl"),
        (["interactions", "--status", "done"], "status: 'done' is not one of waiting"),
        (["events", "--type", "nothing"], "types: 'nothing' is not one of"),
    ]:
        assert cli.main(["export", *args, "--store", filled.url, "--output", str(target)]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.startswith(f"omniroute: error: {message}")
        assert captured.err.count("\n") == 1
        # No file, and no partial file left behind.
        assert os.listdir(target.parent) == []

    missing = tmp_path / "missing.db"
    assert cli.main(["export", "events", "--store", f"sqlite:///{missing}"]) == 2
    assert capsys.readouterr().err == f"omniroute: error: store: no database file {str(missing)!r}\n"
    assert not missing.exists()
    assert cli.main(["export", "events", "--store", "mysql://x/y"]) == 2
    assert capsys.readouterr().err.startswith("omniroute: error: store: 'mysql://x/y' is neither")
    with pytest.raises(SystemExit) as exited:
        cli.main(["export", "interactions", "--since", "yesterday"])
    assert exited.value.code == 2
    assert "'yesterday' is neither an ISO 8601 time nor Unix seconds" in capsys.readouterr().err


def test_cli_migrate_prints_the_versions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"
    latest = latest_version()
    assert cli.main(["migrate", "--store", url, "--to", "1"]) == 0
    assert capsys.readouterr().out == f"schema version: 0 -> 1 (latest: {latest})\n"
    # An old schema is not exported from (nor silently migrated).
    assert cli.main(["export", "interactions", "--store", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("omniroute: error: store: schema version 1 is older")
    assert "omniroute migrate" in err
    assert cli.main(["migrate", "--store", url]) == 0
    assert capsys.readouterr().out == f"schema version: 1 -> {latest} (latest: {latest})\n"
    assert cli.main(["migrate", "--store", url]) == 0
    assert capsys.readouterr().out == f"schema version: {latest} -> {latest} (latest: {latest})\n"
    with open_store(url, migrate=False) as store:
        assert store.schema_version() == latest
    # A migrated, empty store exports nothing.
    assert cli.main(["export", "interactions", "--store", url, "--format", "jsonl"]) == 0
    assert capsys.readouterr().out == ""

    assert cli.main(["migrate", "--store", url, "--to", "1"]) == 2
    assert "only go forward" in capsys.readouterr().err
    assert cli.main(["migrate", "--store", url, "--to", str(latest + 1)]) == 2
    assert capsys.readouterr().err == (
        f"omniroute: error: to: schema version {latest + 1} does not exist (0..{latest})\n"
    )
    assert cli.main(["migrate", "--store", f"sqlite:///{tmp_path}/no/such/dir.db"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_default_store_is_omniroute_db_in_the_working_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["migrate"]) == 0
    assert capsys.readouterr().out.startswith("schema version: 0 -> ")
    assert (tmp_path / "omniroute.db").exists()
