"""The store on both backends: SQLite files and a real PostgreSQL server
(started for the session by tests/pg.py). Every test runs on each."""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import psycopg
import pytest

import omniroute as o
import pg
from omniroute.errors import DuplicateIdError, InvalidInputError, UnknownIdError
from omniroute.store import (
    ApiToken,
    Attachment,
    Conversation,
    Customer,
    EngineSnapshot,
    IdentityRecord,
    Interaction,
    InteractionPatch,
    LogEntry,
    Message,
    Note,
    Reader,
    Session,
    SqlStore,
    StoredEvent,
    StoreError,
    TimelineEntry,
    User,
    Writer,
    open_store,
)
from omniroute.store.migrations import MIGRATIONS, latest_version

T0 = 1_700_000_000.0
# What a duplicate key raises on each backend (the drivers' own errors).
INTEGRITY_ERRORS = (sqlite3.IntegrityError, psycopg.IntegrityError)


# ----- helpers -----


def rows(store: SqlStore, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Plain SQL (qmark parameters) read through the store's own connection."""
    with store.read() as r:
        return [tuple(row) for row in r._all(sql, params)]


def execute(w: Writer, sql: str, params: Sequence[Any] = ()) -> None:
    """Plain SQL (qmark parameters) inside a write."""
    w._cur.execute(w._q(sql), params)


def customer(cid: str, at: float = T0, **kw: Any) -> Customer:
    return Customer(id=cid, created_at=at, **kw)


def identity(kind: str, value: str, cid: str, at: float = T0) -> IdentityRecord:
    return IdentityRecord(kind=kind, value=value, customer_id=cid, created_at=at)


def conversation(cid: str, owner: str, at: float = T0, closed_at: float | None = None) -> Conversation:
    return Conversation(id=cid, customer_id=owner, opened_at=at, last_activity_at=at, closed_at=closed_at)


def interaction(iid: str, conv: str, owner: str, at: float = T0, **kw: Any) -> Interaction:
    fields: dict[str, Any] = {"channel": "chat", "direction": "inbound", "queue": "support"}
    fields.update({"status": "waiting", **kw})
    return Interaction(id=iid, conversation_id=conv, customer_id=owner, created_at=at, **fields)


def note(nid: str, owner: str, on: str | None, at: float, body: str = "") -> Note:
    return Note(id=nid, customer_id=owner, interaction_id=on, author="ann", at=at, body=body or f"note {nid}")


def message(mid: str, on: str, conv: str, at: float, **kw: Any) -> Message:
    fields: dict[str, Any] = {"direction": "inbound", "author": "customer", "body": f"body of {mid}"}
    fields.update(kw)
    return Message(id=mid, interaction_id=on, conversation_id=conv, at=at, **fields)


def engine_config(*agents: o.AgentConfig, seed: int = 0) -> o.EngineConfig:
    return o.EngineConfig(
        # Deliberately not in name order: the engine breaks ties by the order given.
        channels=[
            o.ChannelConfig(name="voice", cost=60),
            o.ChannelConfig(name="chat", cost=20, max_per_agent=3),
            o.ChannelConfig(name="email", cost=12, interruptible=True, inactive_after=3600.0),
        ],
        queues=[
            o.QueueConfig(
                name="support",
                strategy=o.Score(weights={"idle_seconds": 1.0, "skill_level": 2.5}),
                steps=[o.Step(after_seconds=30.0, action=o.DropCondition(skill="billing"))],
            ),
            o.QueueConfig(name="sales", strategy=o.RoundRobin(), wrap_up=15.0, offer_timeout=12.5),
        ],
        agents=list(agents),
        seed=seed,
        max_missed_offers=5,
    )


# The data a version-1 store held: every table that version has.
V1_TABLES = {
    "customers": "id, created_at, display_name, attributes, merged_into",
    "identities": "kind, value, customer_id, created_at",
    "conversations": "id, customer_id, opened_at, last_activity_at, closed_at",
    "interactions": "id, conversation_id, customer_id, channel, direction, queue, status, priority, agent, "
    "created_at, queued_at, offered_at, answered_at, ended_at, wrap_up_ended_at, disposition, outcome, "
    "subject, attributes",
    "messages": "id, interaction_id, conversation_id, at, direction, author, body, content_type",
    "notes": "id, customer_id, interaction_id, author, at, body",
    "attachments": "id, message_id, filename, content_type, size, sha256, location",
    "config_channels": "name, body",
    "config_queues": "name, body",
    "config_agents": "id, body",
    "agent_skills": "agent, skill, level",
    "config_settings": "key, value",
    "events": "seq, type, time, subject, data",
    "engine_log": "seq, now, inputs, metrics",
    "engine_snapshots": "log_seq, event_seq, taken_at, engine, metrics",
}


def dump(store: SqlStore) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: rows(store, f"SELECT {cols} FROM {table} ORDER BY 1, 2") for table, cols in V1_TABLES.items()
    }


# ----- migrations -----


def test_a_fresh_store_is_at_the_latest_version_and_migrates_only_forward(store: SqlStore) -> None:
    assert store.schema_version() == latest_version() == MIGRATIONS[-1].version
    applied = rows(store, "SELECT version, applied_at, description FROM omniroute_schema ORDER BY version")
    assert [v for v, _, _ in applied] == [m.version for m in MIGRATIONS]
    assert store.migrate() == latest_version()
    assert store.migrate() == latest_version()
    assert rows(store, "SELECT version, applied_at, description FROM omniroute_schema") == applied
    for target in (99, -1, latest_version() + 1):
        with pytest.raises(InvalidInputError, match=rf"^target: schema version {target} does not exist"):
            store.migrate(target)
    assert store.schema_version() == latest_version()


def test_a_version_1_database_with_data_upgrades_intact(store_url: str) -> None:
    ann = customer("ann", display_name="Ann", attributes={"tier": "gold", "langs": ["en", "fr"]})
    bob = customer("bob", T0 + 1, display_name="Robert")
    v1_interactions = [
        # id, conversation, customer, channel, status, agent, created, answered, ended
        ("i-ann", "c-ann", "ann", "voice", "completed", "dan", T0 + 10, T0 + 12, T0 + 40),
        ("i-bob", "c-bob", "bob", "email", "assigned", "eve", T0 + 20, T0 + 25, None),
    ]
    config = engine_config(o.AgentConfig(id="dan", skills={"en": 3}, queues={"support": 1}), seed=7)
    with open_store(store_url, migrate=False) as store:
        assert store.schema_version() == 0
        assert store.migrate(1) == 1
        assert store.schema_version() == 1
        # Really the version-1 schema: no offer column yet.
        with pytest.raises((sqlite3.OperationalError, psycopg.errors.UndefinedColumn)):
            rows(store, "SELECT offer FROM interactions")
        with store.write() as w:
            w.add_customers([ann, bob])
            w.add_identities(
                [identity("phone", "+441632960001", "ann"), identity("email", "b@example.com", "bob")]
            )
            w.add_conversations([conversation("c-ann", "ann", T0 + 10, T0 + 50)])
            w.add_conversations([conversation("c-bob", "bob", T0 + 20)])
            for iid, conv, owner, channel, status, agent, created, answered, ended in v1_interactions:
                execute(
                    w,
                    "INSERT INTO interactions (id, conversation_id, customer_id, channel, direction, queue, "
                    "status, priority, agent, created_at, queued_at, answered_at, ended_at, attributes) "
                    "VALUES (?, ?, ?, ?, 'inbound', 'support', ?, 2, ?, ?, ?, ?, ?, '{\"lang\": \"en\"}')",
                    (iid, conv, owner, channel, status, agent, created, created, answered, ended),
                )
            m1 = message("m1", "i-bob", "c-bob", T0 + 21, body="Where is my order?")
            execute(
                w,
                "INSERT INTO messages (id, interaction_id, conversation_id, at, direction, author, body, "
                "content_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    m1.id,
                    m1.interaction_id,
                    m1.conversation_id,
                    m1.at,
                    m1.direction,
                    m1.author,
                    m1.body,
                    m1.content_type,
                ),
            )
            w.add_attachments(
                [
                    Attachment(
                        id="a1",
                        message_id="m1",
                        filename="receipt.pdf",
                        content_type="application/pdf",
                        size=2048,
                        sha256="ab" * 32,
                        location="s3://bucket/a1",
                    )
                ]
            )
            for n in (note("n-ann", "ann", "i-ann", T0 + 41), note("n-bob", "bob", None, T0 + 30)):
                execute(
                    w,
                    "INSERT INTO notes (id, customer_id, interaction_id, author, at, body) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (n.id, n.customer_id, n.interaction_id, n.author, n.at, n.body),
                )
            w.save_config(config)
            # Version 1 kept one row per event.
            w._cur.execute(
                store.sql("INSERT INTO events (seq, type, time, subject, data) VALUES (?, ?, ?, ?, ?)"),
                (1, "queued", T0, "i-ann", b"\x81\xa1a\x01"),
            )
            w.append_log(LogEntry(seq=1, now=T0, inputs=b"\x90", metrics=None))
            w.save_snapshot(
                EngineSnapshot(log_seq=1, event_seq=1, taken_at=T0, engine=b"\0E", metrics=b"\0M")
            )
        before = dump(store)
        assert all(before[table] for table in V1_TABLES), [t for t in V1_TABLES if not before[t]]

    with open_store(store_url) as store:
        assert store.schema_version() == latest_version()
        assert dump(store) == before
        # Version 6's migration wrote every record the old rows lacked.
        records_match_rows(store)
        with store.read() as r:
            assert r.customer("ann") == ann
            assert r.interaction("i-bob") == interaction(
                "i-bob",
                "c-bob",
                "bob",
                T0 + 20,
                channel="email",
                status="assigned",
                priority=2,
                agent="eve",
                queued_at=T0 + 20,
                answered_at=T0 + 25,
                attributes={"lang": "en"},
            )
            assert [i.offer for i in r.interactions()] == [None, None]
            assert r.config() == config
            assert r.latest_snapshot() == EngineSnapshot(
                log_seq=1, event_seq=1, taken_at=T0, engine=b"\0E", metrics=b"\0M"
            )
        # Events written since come after the old ones, in pages.
        old_event = StoredEvent(seq=1, type="queued", time=T0, subject="i-ann", data=b"\x81\xa1a\x01")
        later = [
            StoredEvent(seq=n, type="assigned", time=T0 + n, subject="i-ann", data=b"\x90") for n in (2, 3)
        ]
        with store.write() as w:
            w.append_events(later)
        with store.read() as r:
            assert r.events() == [old_event, *later]
            assert r.events(1, limit=1) == later[:1]
            assert (r.last_event_seq(), r.count("events")) == (3, 3)
        with pytest.raises(StoreError, match=r"overlaps"), store.write() as w:
            w.append_events([old_event])
        # What version 2 brought works on the old data.
        with store.write() as w:
            merge = w.merge_customers("ann", "bob", T0 + 100)
            w.patch_interactions([InteractionPatch(id="i-bob", status="offered", offer=3, clear_agent=False)])
        assert (merge.identities, merge.conversations, merge.interactions, merge.notes) == (
            [("email", "b@example.com")],
            ["c-bob"],
            ["i-bob"],
            ["n-bob"],
        )
        with store.read() as r:
            context = r.context("bob")
            assert context.customer.id == "ann"
            assert [e.interaction.id for e in context.timeline] == ["i-bob", "i-ann"]
            # Version 6's migration wrote the records of rows from before version 5.
            assert context.timeline[1].interaction == r.interaction("i-ann")
            assert [n.id for n in context.timeline[1].notes] == ["n-ann"]
            assert [n.id for n in context.customer_notes] == ["n-bob"]
            assert [m.body for m in context.transcript] == ["Where is my order?"]
            assert [m.interaction_id for m in context.transcript] == ["i-bob"]
            assert r.interaction("i-bob").offer == 3
        with store.write() as w:
            w.undo_merge(merge.id, T0 + 200)
            w.patch_interactions([InteractionPatch(id="i-bob", status="assigned", clear_offer=True)])
        after = dump(store)
        assert after["customers"] == before["customers"]
        assert after["identities"] == before["identities"]
        assert after["conversations"] == before["conversations"]
        assert after["notes"] == before["notes"]
        assert after["interactions"] == before["interactions"]


@pytest.mark.parametrize("steps", [(None,), (6, None)], ids=["at-once", "through-6"])
def test_version_6_rewrites_version_5_records_with_their_notes(
    store_url: str, steps: tuple[int | None, ...]
) -> None:
    with open_store(store_url, migrate=False) as store:
        assert store.migrate(5) == 5
        # Today's writer writes the columns later versions added: they are
        # there while seeding, and gone again before the upgrade.
        later = (
            "held_at DOUBLE PRECISION",
            "hold_seconds DOUBLE PRECISION NOT NULL DEFAULT 0",
            "sealed_seq BIGINT",
        )
        with store.write() as w:
            for column in later:
                execute(w, f"ALTER TABLE interactions ADD COLUMN {column}")
            execute(w, "CREATE TABLE seal_counter (id INTEGER PRIMARY KEY, value BIGINT NOT NULL)")
            execute(w, "INSERT INTO seal_counter (id, value) VALUES (1, 0)")
            seed_ann(w)
            w.patch_interactions([InteractionPatch(id="i1", status="completed", ended_at=T0 + 60)])
            # What version 5 wrote: the interaction alone, and notes without records.
            i1 = w.interaction("i1")
            execute(w, "UPDATE interactions SET record = ? WHERE id = ?", (msgspec.msgpack.encode(i1), "i1"))
            execute(w, "UPDATE notes SET record = NULL WHERE id = ?", ("n1",))
            for column in later:
                execute(w, f"ALTER TABLE interactions DROP COLUMN {column.split()[0]}")
            execute(w, "DROP TABLE seal_counter")
        for target in steps:
            store.migrate(target)
        assert store.schema_version() == latest_version()
        if steps == (None,):
            records_match_rows(store)
        else:
            # Stopping at 6 cleared the old records rather than leave them to be misread.
            assert rows(store, "SELECT record FROM interactions WHERE id = 'i1'") == [(None,)]
        with store.read() as r:
            entry = next(e for e in r.context("ann").timeline if e.interaction.id == "i1")
            assert entry.interaction == i1
            assert [n.id for n in entry.notes] == ["n1"]


def test_a_schema_newer_than_this_omniroute_is_refused(store_url: str) -> None:
    with open_store(store_url) as store, store.write() as w:
        execute(
            w,
            "INSERT INTO omniroute_schema (version, applied_at, description) VALUES (?, ?, ?)",
            (latest_version() + 1, T0, "from the future"),
        )
    with pytest.raises(StoreError, match=f"schema version {latest_version() + 1} is newer") as newer:
        open_store(store_url)
    assert f":{pg.PASSWORD}@" not in str(newer.value)  # the URL is named, its password is not
    with open_store(store_url, migrate=False) as store:
        assert store.schema_version() == latest_version() + 1
        with pytest.raises(StoreError, match="upgrade omniroute"):
            store.migrate()
        store.close()
        with pytest.raises(StoreError, match="closed") as closed, store.read():
            pass
        assert f":{pg.PASSWORD}@" not in str(closed.value)


# ----- round trips -----


def test_customers_and_identities_round_trip(store_url: str, store: SqlStore) -> None:
    ann = customer(
        "ann",
        display_name="Ann Ó'Brien",
        attributes={"tier": "gold", "tags": ["vip", "ünïcödé"], "score": 4.5, "deep": {"n": 1, "no": None}},
    )
    bob = customer("bob", T0 + 1)
    ids = [
        identity("phone", "+441632960001", "ann", T0 + 2),
        identity("email", "ann@example.com", "ann", T0 + 1),
        identity("email", "bob@example.com", "bob", T0 + 1),
    ]
    with store.read() as r:
        assert r.count("customers") == 0
    with store.write() as w:
        w.add_customers([ann, bob])
        w.add_identities(ids)
    # Committed: another store object on the same database sees it all.
    with open_store(store_url) as other, other.read() as r:
        assert r.customer("ann") == ann
        assert r.customer("bob") == bob
        assert r.identities("ann") == [ids[1], ids[0]]  # oldest first
        assert r.identities("nobody") == []
        assert r.count("customers") == 2
        assert r.count("identities") == 3
        with pytest.raises(UnknownIdError, match=r"^customer: no customer 'carl'"):
            r.customer("carl")
        with pytest.raises(InvalidInputError, match=r"^table: 'omniroute_schema'"):
            r.count("omniroute_schema")
    # Reads from any thread, each on its own connection.
    seen: list[Customer] = []

    def read() -> None:
        with store.read() as r:
            seen.append(r.customer("ann"))

    threads = [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [ann] * 3


def test_conversations_open_close_and_only_move_forward(store: SqlStore) -> None:
    with store.write() as w:
        w.add_customers([customer("ann"), customer("bob")])
        w.add_conversations(
            [
                conversation("c1", "ann", T0),
                conversation("c2", "ann", T0 + 10),
                conversation("c3", "bob", T0 + 5),
                conversation("c4", "bob", T0 + 1, closed_at=T0 + 2),
            ]
        )
        w.touch_conversations({"c1": T0 + 50, "c3": T0 + 6})
    with store.write() as w:
        w.touch_conversations({"c1": T0 + 20, "c3": T0 + 7})  # c1 back in time: ignored
    with store.read() as r:
        assert r.conversation("c1").last_activity_at == T0 + 50
        assert r.conversation("c3").last_activity_at == T0 + 7
        # Each customer's latest open conversation.
        assert r.open_conversations(["ann", "bob", "carl"]) == {
            "ann": conversation("c2", "ann", T0 + 10),
            "bob": Conversation(id="c3", customer_id="bob", opened_at=T0 + 5, last_activity_at=T0 + 7),
        }
        with pytest.raises(UnknownIdError, match=r"^conversation: "):
            r.conversation("c9")
    with store.write() as w:
        w.close_conversation("c2", T0 + 60)
        w.close_conversation("c2", T0 + 70)  # already closed: the first close stands
    with store.read() as r:
        assert r.conversation("c2").closed_at == T0 + 60
        assert r.conversation("c4").closed_at == T0 + 2
        assert r.open_conversations(["ann"]) == {
            "ann": Conversation(id="c1", customer_id="ann", opened_at=T0, last_activity_at=T0 + 50)
        }


def test_interaction_patches_keep_first_times_and_leave_none_alone(store: SqlStore) -> None:
    original = interaction(
        "i1",
        "c1",
        "ann",
        T0,
        priority=3,
        queued_at=T0,
        subject="Refund 50% ? please",
        attributes={"order": "A-1", "amount": 12.5},
    )
    with store.write() as w:
        w.add_customers([customer("ann")])
        w.add_conversations([conversation("c1", "ann")])
        w.add_interactions([original, interaction("i0", "c1", "ann", T0 - 1, channel="email")])
    with store.read() as r:
        assert r.interaction("i1") == original
        assert r.offered() == []
        with pytest.raises(UnknownIdError, match=r"^interaction: "):
            r.interaction("i9")

    def patched(*patches: InteractionPatch) -> Interaction:
        with store.write() as w:
            w.patch_interactions(patches)
        with store.read() as r:
            assert r.interaction("i0").status == "waiting"  # patches touch only their own row
            return r.interaction("i1")

    offered = patched(InteractionPatch(id="i1", status="offered", agent="bob", offer=7, offered_at=T0 + 1))
    assert offered == msgspec.structs.replace(
        original, status="offered", agent="bob", offer=7, offered_at=T0 + 1
    )
    with store.read() as r:
        assert r.offered() == [("i1", 7, "bob")]
    # The offer times out: back to waiting, no agent, no offer; first times stay.
    requeued = patched(
        InteractionPatch(
            id="i1", status="waiting", clear_agent=True, clear_offer=True, queued_at=T0 + 5, offered_at=T0 + 5
        )
    )
    assert requeued == msgspec.structs.replace(offered, status="waiting", agent=None, offer=None)
    # Offered again, answered, then transferred and answered again: two patches in one batch.
    answered = patched(
        InteractionPatch(id="i1", status="offered", agent="cat", offer=8, offered_at=T0 + 6),
        InteractionPatch(id="i1", status="assigned", answered_at=T0 + 7, clear_offer=True),
    )
    assert (answered.status, answered.agent, answered.offer) == ("assigned", "cat", None)
    assert (answered.offered_at, answered.answered_at) == (T0 + 1, T0 + 7)
    transferred = patched(
        InteractionPatch(id="i1", queue="sales", agent="dan", status="assigned", answered_at=T0 + 9)
    )
    assert transferred == msgspec.structs.replace(answered, queue="sales", agent="dan")
    assert patched(InteractionPatch(id="i1")) == transferred  # all None: nothing changes
    done = patched(
        InteractionPatch(
            id="i1", status="completed", ended_at=T0 + 30, disposition="refunded", outcome="resolved"
        )
    )
    assert done == msgspec.structs.replace(
        transferred, status="completed", ended_at=T0 + 30, disposition="refunded", outcome="resolved"
    )
    with store.write() as w:
        assert w.end_wrap_up("dan", T0 + 45) == [("i1", "sales", "chat", T0 + 30)]
        assert w.end_wrap_up("dan", T0 + 50) == []
    with store.read() as r:
        assert r.interaction("i1").wrap_up_ended_at == T0 + 45


def test_patches_given_as_columns_match_the_same_patches_as_structs(store: SqlStore) -> None:
    """The runtime's form of a patch (id, column -> value, None empties):
    rows patched both ways, two per batch, several shapes grouped in one
    statement each, end the same; a column that cannot be patched is
    refused by name and the batch leaves nothing."""
    shapes: list[tuple[InteractionPatch, dict[str, object]]] = [
        (
            InteractionPatch(id="", status="offered", agent="bob", offer=7, offered_at=T0 + 1),
            {"status": "offered", "agent": "bob", "offer": 7, "offered_at": T0 + 1},
        ),
        (
            InteractionPatch(id="", status="assigned", offer=None, clear_offer=True, answered_at=T0 + 2),
            {"status": "assigned", "offer": None, "answered_at": T0 + 2},
        ),
        (
            InteractionPatch(id="", status="waiting", clear_agent=True, queued_at=T0 + 3, held_at=T0 + 3),
            {"status": "waiting", "agent": None, "queued_at": T0 + 3, "held_at": T0 + 3},
        ),
        (
            InteractionPatch(id="", status="completed", ended_at=T0 + 4, disposition="sold", clear_held=True),
            {"status": "completed", "ended_at": T0 + 4, "disposition": "sold", "held_at": None},
        ),
    ]
    ids = [f"{way}{n}" for way in "sf" for n in range(8)]
    with store.write() as w:
        w.add_customers([customer("ann")])
        w.add_conversations([conversation("c1", "ann")])
        w.add_interactions([interaction(i, "c1", "ann", T0, queued_at=T0) for i in ids])
    for first, second in [(0, 1), (1, 2), (2, 3), (0, 3)]:
        with store.write() as w:
            for n in range(8):
                a, b = shapes[(first + n) % 4], shapes[(second + n) % 4]
                w.patch_interactions([msgspec.structs.replace(a[0], id=f"s{n}")])
                w.patch_interactions([msgspec.structs.replace(b[0], id=f"s{n}")])
            w.patch_interaction_fields([(f"f{n}", shapes[(first + n) % 4][1]) for n in range(8)])
            w.patch_interaction_fields([(f"f{n}", shapes[(second + n) % 4][1]) for n in range(8)])
    with store.read() as r:
        for n in range(8):
            by_struct, by_columns = r.interaction(f"s{n}"), r.interaction(f"f{n}")
            assert by_columns == msgspec.structs.replace(by_struct, id=f"f{n}")
        timeline = {entry.interaction.id: entry for entry in r.context("ann").timeline}
        assert sorted(timeline) == sorted(ids)
        for n in range(8):
            # A finished row's record (its timeline entry) is the row as patched.
            assert timeline[f"f{n}"].interaction == msgspec.structs.replace(
                timeline[f"s{n}"].interaction, id=f"f{n}"
            )
    with pytest.raises(InvalidInputError, match=r"^patch: record cannot be patched"), store.write() as w:
        w.patch_interaction_fields([("f0", {"status": "waiting"}), ("f1", {"record": b"x"})])
    with store.read() as r:
        assert r.interaction("f0") == msgspec.structs.replace(r.interaction("s0"), id="f0")


def test_messages_and_attachments_round_trip(store: SqlStore) -> None:
    msgs = [
        message("m1", "i1", "c1", T0 + 2, body="Hello? 100% sure."),
        message("m2", "i1", "c1", T0 + 1, direction="outbound", author="ann", content_type="text/html"),
        message("m0", "i1", "c1", T0 + 2.5, direction="internal", author="bob", body="whisper\n\ttabs ✓"),
        message("m3", "i2", "c1", T0 + 3),
    ]
    files = [
        Attachment(
            id=f"a{n}",
            message_id="m1",
            filename=f"photo {n}.jpg",
            content_type="image/jpeg",
            size=2**33 + n,  # larger than 32 bits
            sha256=f"{n:064x}",
            location=f"file:///var/omniroute/a{n}",
        )
        for n in (2, 1)
    ]
    with store.write() as w:
        w.add_customers([customer("ann")])
        w.add_conversations([conversation("c1", "ann")])
        w.add_interactions([interaction("i1", "c1", "ann"), interaction("i2", "c1", "ann", T0 + 3)])
        w.add_messages(msgs)
        w.add_attachments(files)
    with store.read() as r:
        assert r.messages("i1") == [msgs[1], msgs[0], msgs[2]]  # by time
        assert r.messages("i2") == [msgs[3]]
        assert r.attachments("m1") == [files[1], files[0]]
        assert r.attachments("m2") == []
        assert r.count("messages") == 4


def test_events_engine_log_and_snapshots_round_trip_in_order(store: SqlStore) -> None:
    events = [
        StoredEvent(seq=n, type="queued", time=T0 + n, subject=f"i{n}", data=bytes([n, 0, 255, n * 7 % 256]))
        for n in range(1, 26)
    ]
    log = [
        LogEntry(seq=n, now=T0 + n / 3, inputs=bytes(range(n, n + 40)), metrics=None if n % 2 else b"\0" * n)
        for n in range(1, 8)
    ]
    with store.read() as r:
        assert (r.events(), r.last_event_seq(), list(r.log_after(0)), r.last_log_seq()) == ([], 0, [], 0)
    with store.write() as w:
        w.append_events(events[10:])  # written out of order, read in order
        for entry in log[3:]:
            w.append_log(entry)
    with store.write() as w:
        w.append_events(events[:10])
        for entry in log[:3]:
            w.append_log(entry)
    with store.read() as r:
        assert r.events() == events
        assert r.events(20) == events[20:]
        assert r.events(3, limit=4) == events[3:7]
        assert r.events(25) == []
        assert r.last_event_seq() == 25
        assert list(r.log_after(0, batch=2)) == log
        assert list(r.log_after(5)) == log[5:]
        assert r.last_log_seq() == 7
    for again in ([events[0]], [events[12]], events[20:23]):
        with pytest.raises(StoreError, match=r"^events: .*overlaps"), store.write() as w:
            w.append_events(again)  # a sequence number is written once
    new = StoredEvent(seq=26, type="queued", time=T0, subject="t", data=b"\x90")
    with pytest.raises(StoreError, match=r"^events: seq 26 to 26 repeats a seq"), store.write() as w:
        w.append_events([new, new])
    with pytest.raises(StoreError, match=r"^events: seq 26 to 26 repeats a seq"), store.write() as w:
        w.append_event_rows([(26, "queued", T0, "t", b"\x90"), (26, "queued", T0, "t", b"\x90")])
    with pytest.raises(StoreError, match=r"^events: seq 28 to 27 repeats a seq"), store.write() as w:
        w.append_event_rows([(28, "queued", T0, "t", b"\x90"), (27, "queued", T0, "t", b"\x90")])
    with store.read() as r:
        assert r.events() == events

    def snapshot(n: int) -> EngineSnapshot:
        return EngineSnapshot(
            log_seq=n, event_seq=2 * n, taken_at=T0 + n, engine=b"E" + bytes([n]) * 1000, metrics=b"\x00M"
        )

    with store.read() as r:
        assert r.latest_snapshot() is None
    for n in (10, 30, 20):
        with store.write() as w:
            w.save_snapshot(snapshot(n), keep=2)
    with store.read() as r:
        assert r.latest_snapshot() == snapshot(30)
    assert rows(store, "SELECT log_seq FROM engine_snapshots ORDER BY log_seq") == [(20,), (30,)]
    with store.write() as w:
        w.save_snapshot(snapshot(40), keep=1)
    assert rows(store, "SELECT log_seq, event_seq FROM engine_snapshots") == [(40, 80)]


def test_configuration_round_trips_and_replacing_it_drops_what_is_gone(store: SqlStore) -> None:
    bob = o.AgentConfig(id="bob", capacity=120, skills={"en": 3, "es": 4}, queues={"support": 0})
    ann = o.AgentConfig(id="ann", skills={"en": 5, "billing": 3}, queues={"support": 1, "sales": 0})
    ann = msgspec.structs.replace(ann, available=False)
    cat = o.AgentConfig(id="cat", skills={"fr": 2}, queues={"sales": 2})
    first = engine_config(bob, ann, cat, seed=42)
    with store.read() as r:
        assert r.config() is None
    with store.write() as w:
        w.save_config(first)
    with store.read() as r:
        assert r.config() == first
    skills = "SELECT agent, skill, level FROM agent_skills ORDER BY agent, skill"
    assert rows(store, skills) == [
        ("ann", "billing", 3),
        ("ann", "en", 5),
        ("bob", "en", 3),
        ("bob", "es", 4),
        ("cat", "fr", 2),
    ]
    ann2 = msgspec.structs.replace(ann, skills={"en": 4}, available=True)
    second = msgspec.structs.replace(engine_config(ann2, bob, seed=1), queues=[o.QueueConfig(name="support")])
    with store.write() as w:
        w.save_config(second)
    with store.read() as r:
        assert r.config() == second
    assert rows(store, skills) == [("ann", "en", 4), ("bob", "en", 3), ("bob", "es", 4)]
    assert rows(store, "SELECT id FROM config_agents ORDER BY id") == [("ann",), ("bob",)]
    assert rows(store, "SELECT name FROM config_queues") == [("support",)]


# ----- lookups -----


def test_bulk_lookups_cross_their_chunks(store: SqlStore) -> None:
    n = 520  # past find_customers' 400 and the 500 of the others
    agents = ["ann", "bob", "cat"]
    statuses = ["waiting", "assigned", "completed", "abandoned"]
    with store.write() as w:
        w.add_customers([customer(f"k{i:03d}", T0 + i) for i in range(n)])
        w.add_identities([identity("phone", f"+1555{i:07d}", f"k{i:03d}") for i in range(n)])
        w.add_conversations(
            [conversation(f"c{i:03d}", f"k{i:03d}", T0 + i, None if i % 2 == 0 else T0 + i) for i in range(n)]
        )
        w.add_interactions(
            [
                interaction(
                    f"i{i:03d}",
                    f"c{i:03d}",
                    f"k{i:03d}",
                    T0 + i,
                    status=statuses[i % 4],
                    agent=agents[i % 3],
                    answered_at=None if i % 5 == 0 else T0 + i,
                )
                for i in range(n)
            ]
        )
        # Customer k001 spoke to ann first, then to cat on another channel.
        w.add_interactions(
            [
                interaction("j1", "c001", "k001", T0 - 5, channel="voice", agent="cat", answered_at=T0 + 900),
                interaction("j2", "c001", "k001", T0 + 950, channel="sms", agent="dan"),  # not answered
            ]
        )
    wanted = [("phone", f"+1555{i:07d}") for i in range(n)]
    with store.read() as r:
        unknown = [("phone", "+19999999999"), ("email", "x@y.z")]
        found = r.find_customers([*wanted, ("phone", "+15550000001"), *unknown])
        assert found == {key: f"k{i:03d}" for i, key in enumerate(wanted)}
        assert r.find_customers([]) == {}

        everyone = [f"k{i:03d}" for i in range(n)]
        open_ = r.open_conversations([*everyone, "nobody"])
        assert sorted(open_) == everyone[::2]
        assert all(c.id == f"c{cid[1:]}" and c.closed_at is None for cid, c in open_.items())

        last = r.last_agents(["k000", "k001", "k002", "k005", "nobody"])
        assert last == {"k001": "cat", "k002": "cat"}  # k000 and k005 were never answered

        ids = [*(f"i{i:03d}" for i in range(n - 1, -1, -1)), "i000", "missing"]
        by_id = r.interactions_by_id(ids)
        assert len(by_id) == n
        assert by_id["i007"].status == statuses[7 % 4]
        assert by_id["i007"].agent == agents[7 % 3]

        every = list(r.interactions(batch=7))
        assert [i.id for i in every] == sorted([f"i{i:03d}" for i in range(n)] + ["j1", "j2"])
        live = list(r.interactions(status=["waiting", "assigned"], batch=9))
        expected = sorted([f"i{i:03d}" for i in range(n) if i % 4 < 2] + ["j1", "j2"])
        assert [i.id for i in live] == expected
        assert list(r.interactions(status=["cancelled"], batch=3)) == []


# ----- what an agent sees -----


def seed_ann(w: Writer) -> None:
    """Ann, on four channels over two conversations; Bob, on one."""
    w.add_customers([customer("ann", display_name="Ann"), customer("bob", T0 + 1)])
    w.add_identities(
        [
            identity("phone", "+441632960001", "ann"),
            identity("email", "ann@example.com", "ann", T0 + 1),
            identity("email", "bob@example.com", "bob"),
        ]
    )
    w.add_conversations(
        [conversation("c-old", "ann", T0, closed_at=T0 + 300), conversation("c-new", "ann", T0 + 1000)]
    )
    w.add_conversations([conversation("c-bob", "bob", T0 + 5)])
    w.add_interactions(
        [
            interaction("i1", "c-old", "ann", T0, channel="voice", agent="bob", answered_at=T0 + 2),
            # An e-mail written before the chat, answered after it.
            interaction("i2", "c-old", "ann", T0 + 10, channel="email", agent="cat", answered_at=T0 + 1500),
            interaction("i3", "c-new", "ann", T0 + 1000, agent="dan", answered_at=T0 + 1001),
            interaction("i4", "c-new", "ann", T0 + 1200, channel="sms"),
            interaction("ib", "c-bob", "bob", T0 + 5, agent="eve", answered_at=T0 + 6),
        ]
    )
    w.add_messages(
        [
            message("m0", "i1", "c-old", T0 + 3),
            message("m2", "i3", "c-new", T0 + 1003, direction="outbound", author="dan"),
            message("m1", "i3", "c-new", T0 + 1002),
            message("mb", "ib", "c-bob", T0 + 7),
        ]
    )
    w.add_notes(
        [
            note("n1", "ann", "i1", T0 + 5),
            note("n4", "ann", "i3", T0 + 1100),
            note("n2", "ann", "i3", T0 + 1010),
            note("n3", "ann", None, T0 + 20, "prefers e-mail"),
            note("nb", "bob", "ib", T0 + 8),
            note("nb0", "bob", None, T0 + 9),
        ]
    )


def test_context_is_the_whole_story_newest_first(store: SqlStore) -> None:
    with store.write() as w:
        seed_ann(w)
    with store.read() as r:
        context = r.context("ann")
        assert context.customer == customer("ann", display_name="Ann")
        assert [(i.kind, i.value) for i in context.identities] == [
            ("phone", "+441632960001"),
            ("email", "ann@example.com"),
        ]
        timeline = {e.interaction.id: e for e in context.timeline}
        assert list(timeline) == ["i4", "i3", "i2", "i1"]
        assert [e.interaction.channel for e in context.timeline] == ["sms", "chat", "email", "voice"]
        assert {i: [n.id for n in e.notes] for i, e in timeline.items()} == {
            "i4": [],
            "i3": ["n2", "n4"],
            "i2": [],
            "i1": ["n1"],
        }
        # The open conversation's transcript only (i3 and i4; i4 has none yet);
        # older ones are fetched on demand.
        assert context.transcript == r.messages("i3") + r.messages("i4")
        assert [m.id for m in context.transcript] == ["m1", "m2"]
        assert context.open_conversation == conversation("c-new", "ann", T0 + 1000)
        assert context.last_agent == "cat"  # answered last, though created before the chat
        assert [n.id for n in context.customer_notes] == ["n3"]

        short = r.context("ann", limit=2)
        assert [e.interaction.id for e in short.timeline] == ["i4", "i3"]
        assert short.last_agent == "cat"  # still who spoke to them last
        assert r.last_agents(["ann", "bob"]) == {"ann": "cat", "bob": "eve"}

        bob = r.context("bob")
        assert [e.interaction.id for e in bob.timeline] == ["ib"]
        assert bob.open_conversation is not None
        assert bob.open_conversation.id == "c-bob"
        assert bob.last_agent == "eve"
        assert [n.id for n in bob.customer_notes] == ["nb0"]
        with pytest.raises(UnknownIdError, match=r"^customer: "):
            r.context("carl")


def test_a_whole_read_takes_every_record_at_once_in_timeline_order(store: SqlStore) -> None:
    """A timeline or transcript read whole comes from one value holding every
    record (``SqlStore.concat_records``): byte for byte, however the rows
    were stored, in (time, id) order, ties by id, with the open ones woven in."""
    rng = random.Random(7)
    # Records holding NUL bytes (zeros, lengths, floats), bytes that are not
    # UTF-8 on their own, and characters outside ASCII. (PostgreSQL's text
    # takes no NUL character, so the text holds none.)
    bodies = ["", "é", "日本語", "😀" * 40, "x" * 300, "\uffff\x7f"]
    finished = [
        interaction(
            f"i{n:03d}",
            "c1",
            "ann",
            T0 + (n * 37 % 90) // 3,  # not in id order, and ties, broken by id
            status="completed",
            agent="a1",
            disposition=rng.choice(bodies),
            attributes={"k": rng.choice(bodies), "n": n},
            priority=n % 3,
            ended_at=T0 + n + 0.125,
        )
        for n in range(90)
    ]
    still_open = [interaction(f"o{n}", "c1", "ann", T0 + 10 + 20 * n) for n in range(3)]
    messages = [
        message(f"m{n:03d}", "i001", "c1", T0 + (n * 7 % 120) // 2, body=rng.choice(bodies) + str(n))
        for n in range(120)
    ]
    rows_in = finished + still_open
    rng.shuffle(rows_in)
    rng.shuffle(messages)
    with store.write() as w:
        w.add_customers([customer("ann")])
        w.add_conversations([conversation("c1", "ann")])
        for start in range(0, len(rows_in), 7):
            w.add_interactions(rows_in[start : start + 7])
        for start in range(0, len(messages), 11):
            w.add_messages(messages[start : start + 11])
    expected = sorted(
        [TimelineEntry(interaction=i) for i in finished + still_open],
        key=lambda e: (e.interaction.created_at, e.interaction.id),
        reverse=True,
    )
    for _ in range(2):  # whole, then from what is kept
        with store.read() as r:
            context = r.context("ann")
        assert context.timeline == expected
        assert context.transcript == sorted(messages, key=lambda m: (m.at, m.id))
    assert store.kept.hits == 2


def records_match_rows(store: SqlStore) -> None:
    """Each finished interaction, note and message carries its row as a
    record (schema version 5), equal to the row read column by column; a
    finished interaction's record holds its notes too (version 6), oldest
    first; an interaction still open carries none."""
    with store.read() as r:
        notes: dict[str, list[Note]] = {}
        for *columns, record in r._all(
            "SELECT id, customer_id, interaction_id, author, at, body, record FROM notes ORDER BY at, id"
        ):
            nid, owner, on, author, at, body = columns
            expected = Note(id=nid, customer_id=owner, interaction_id=on, author=author, at=at, body=body)
            assert msgspec.msgpack.decode(record, type=Note) == expected, nid
            notes.setdefault(on, []).append(expected)
        for iid, status, record, number in r._all("SELECT id, status, record, sealed_seq FROM interactions"):
            if status in ("completed", "abandoned", "cancelled"):
                entry = msgspec.msgpack.decode(record, type=TimelineEntry)
                assert entry.interaction == r.interaction(iid), iid
                assert list(entry.notes) == notes.get(iid, []), iid
                # Each write of a record took a number from the counter (version 10).
                assert 0 < number <= r._one("SELECT value FROM seal_counter")[0], iid
            else:
                assert record is None, iid
                assert number is None, iid
        for mid, on, record in r._all("SELECT id, interaction_id, record FROM messages"):
            expected_message = next(m for m in r.messages(on) if m.id == mid)
            assert msgspec.msgpack.decode(record, type=Message) == expected_message, mid


def test_finished_interactions_are_read_from_their_records(store: SqlStore) -> None:
    with store.write() as w:
        seed_ann(w)
        # Finished as created (routed and cancelled in one batch) and finished by a patch.
        w.add_interactions([interaction("i0", "c-old", "ann", T0 - 5, status="cancelled", ended_at=T0 - 4)])
        w.patch_interactions(
            [
                InteractionPatch(id="i1", status="completed", ended_at=T0 + 60, disposition="sold"),
                InteractionPatch(id="i2", status="abandoned", ended_at=T0 + 70),
            ]
        )
    records_match_rows(store)
    with store.write() as w:
        # A finished row changes again: its wrap-up ends, a patch without a status.
        assert w.end_wrap_up("bob", T0 + 90) == [("i1", "support", "voice", T0 + 60)]
        w.patch_interactions([InteractionPatch(id="i2", outcome="called back")])
    records_match_rows(store)
    with store.write() as w:
        # A note on a finished interaction joins its record; one on an open one waits.
        w.add_notes([note("n5", "ann", "i1", T0 + 95, "called back"), note("n6", "ann", "i4", T0 + 96)])
    records_match_rows(store)
    with store.read() as r:
        assert [n.id for n in r.context("ann").timeline[3].notes] == ["n1", "n5"]
        assert [n.id for n in r.context("ann").timeline[0].notes] == ["n6"]
    with store.read() as r:
        timeline = r.context("ann").timeline
        assert [e.interaction.id for e in timeline] == ["i4", "i3", "i2", "i1", "i0"]
        assert [e.interaction for e in timeline] == [r.interaction(e.interaction.id) for e in timeline]
        assert (timeline[3].interaction.wrap_up_ended_at, timeline[2].interaction.outcome) == (
            T0 + 90,
            "called back",
        )


# ----- merges -----


def owners(store: SqlStore) -> dict[str, dict[str, str]]:
    return {
        "identities": dict(rows(store, "SELECT value, customer_id FROM identities")),
        "conversations": dict(rows(store, "SELECT id, customer_id FROM conversations")),
        "interactions": dict(rows(store, "SELECT id, customer_id FROM interactions")),
        "notes": dict(rows(store, "SELECT id, customer_id FROM notes")),
    }


def test_a_merge_moves_everything_and_its_undo_moves_exactly_that_back(store: SqlStore) -> None:
    with store.write() as w:
        seed_ann(w)
        w.add_identities([identity("phone", "+441632960002", "bob", T0 + 3)])
    before = owners(store)
    with store.write() as w:
        merge = w.merge_customers("ann", "bob", T0 + 2000)
    assert (merge.survivor, merge.merged, merge.at, merge.undone_at) == ("ann", "bob", T0 + 2000, None)
    assert merge.identities == [("email", "bob@example.com"), ("phone", "+441632960002")]
    assert (merge.conversations, merge.interactions, merge.notes) == (["c-bob"], ["ib"], ["nb", "nb0"])
    assert all(owner == "ann" for table in owners(store).values() for owner in table.values())
    records_match_rows(store)
    with store.read() as r:
        assert r.merge(merge.id) == merge
        assert r.customer("bob").merged_into == "ann"
        assert r.live_customer("bob").id == "ann"
        assert r.identities("bob") == []
        assert r.find_customers([("email", "bob@example.com")]) == {("email", "bob@example.com"): "ann"}
        context = r.context("bob")  # a merged customer's id leads to the survivor
        assert context.customer.id == "ann"
        assert [e.interaction.id for e in context.timeline] == ["i4", "i3", "i2", "ib", "i1"]
        assert [n.id for n in context.customer_notes] == ["nb0", "n3"]  # by time
        assert len(context.identities) == 4
        with pytest.raises(UnknownIdError, match=r"^merge: "):
            r.merge("no-such-merge")

    # After the merge, the survivor gets more: it stays the survivor's on undo,
    # even inside a conversation that goes back.
    with store.write() as w:
        w.add_identities([identity("chat", "ann-handle", "ann", T0 + 2001)])
        w.add_interactions([interaction("i5", "c-bob", "ann", T0 + 2002)])
        w.add_notes([note("n5", "ann", "ib", T0 + 2003), note("n6", "ann", None, T0 + 2004)])
    with store.write() as w:
        undone = w.undo_merge(merge.id, T0 + 3000)
    assert undone == msgspec.structs.replace(merge, undone_at=T0 + 3000)
    after = owners(store)
    for table, owned in before.items():
        assert {k: after[table][k] for k in owned} == owned
    assert (after["identities"]["ann-handle"], after["interactions"]["i5"]) == ("ann", "ann")
    assert (after["notes"]["n5"], after["notes"]["n6"]) == ("ann", "ann")
    records_match_rows(store)
    with store.read() as r:
        assert r.customer("bob").merged_into is None
        assert r.context("bob").customer.id == "bob"
        assert [e.interaction.id for e in r.context("bob").timeline] == ["ib"]
        assert r.merge(merge.id).undone_at == T0 + 3000
    with pytest.raises(InvalidInputError, match=r"^merge: .* already undone"), store.write() as w:
        w.undo_merge(merge.id, T0 + 3001)


def test_merges_that_make_no_sense_are_refused(store: SqlStore) -> None:
    with store.write() as w:
        seed_ann(w)
        w.add_customers([customer("cat"), customer("dan")])
        first = w.merge_customers("ann", "bob", T0 + 2000)
    refused = [
        (("ann", "ann"), InvalidInputError, "^merged: .* into itself"),
        (("cat", "bob"), InvalidInputError, "^merged: customer 'bob' is already merged into 'ann'"),
        (("bob", "cat"), InvalidInputError, "^survivor: customer 'bob' is merged into 'ann'"),
        (("ann", "zed"), UnknownIdError, "^customer: "),
        (("zed", "ann"), UnknownIdError, "^customer: "),
    ]
    for (survivor, merged), error, message in refused:
        with pytest.raises(error, match=message), store.write() as w:
            w.merge_customers(survivor, merged, T0 + 2100)
    # The survivor merged again since: undo that one first.
    with store.write() as w:
        second = w.merge_customers("cat", "ann", T0 + 2200)
    since = r"^merge: customer 'ann' has since been merged into 'cat'"
    with pytest.raises(InvalidInputError, match=since), store.write() as w:
        w.undo_merge(first.id, T0 + 2300)
    with store.read() as r:
        assert r.context("bob").customer.id == "cat"  # followed to the end
        assert r.merge(first.id).undone_at is None
    with store.write() as w:
        w.undo_merge(second.id, T0 + 2400)
        w.undo_merge(first.id, T0 + 2500)
    with store.read() as r:
        assert [r.customer(c).merged_into for c in ("ann", "bob", "cat")] == [None, None, None]
        assert [e.interaction.id for e in r.context("cat").timeline] == []
        assert [e.interaction.id for e in r.context("bob").timeline] == ["ib"]
    with pytest.raises(UnknownIdError, match=r"^merge: "), store.write() as w:
        w.undo_merge("no-such-merge", T0)


# ----- transactions and the single writer -----


def test_a_write_that_raises_leaves_nothing_behind(store_url: str, store: SqlStore) -> None:
    first = interaction("i1", "c1", "ann", T0, queued_at=T0)
    with store.write() as w:
        w.add_customers([customer("ann")])
        w.add_conversations([conversation("c1", "ann")])
        w.add_interactions([first])

    def a_lot_then_boom() -> None:
        with store.write() as w:
            w.add_customers([customer("bob")])
            w.add_identities([identity("email", "bob@example.com", "bob")])
            w.patch_interactions([InteractionPatch(id="i1", status="completed", ended_at=T0 + 1)])
            w.close_conversation("c1", T0 + 1)
            w.save_config(engine_config())
            w.append_events([StoredEvent(seq=1, type="x", time=T0, subject="i1", data=b"")])
            raise RuntimeError("boom")

    def a_customer_then_a_duplicate() -> None:
        with store.write() as w:
            w.add_customers([customer("cat")])
            w.add_interactions([interaction("i1", "c1", "ann", T0 + 5, channel="voice")])

    with pytest.raises(RuntimeError, match="boom"):
        a_lot_then_boom()
    # A duplicate id fails the insert and with it the whole transaction.
    with pytest.raises(INTEGRITY_ERRORS):
        a_customer_then_a_duplicate()
    for reader in (store, open_store(store_url)):
        with reader.read() as r:
            assert r.count("customers") == 1
            assert r.interaction("i1") == first
            assert r.conversation("c1").closed_at is None
            assert r.find_customers([("email", "bob@example.com")]) == {}
            assert r.config() is None
            assert r.events() == []
        if reader is not store:
            reader.close()
    with store.write() as w:  # and the store goes on
        w.add_customers([customer("cat")])
    assert rows(store, "SELECT id FROM customers ORDER BY id") == [("ann",), ("cat",)]


def plan(store_url: str, store: SqlStore, sql: str, params: Sequence[Any]) -> str:
    """How the database would run a query (PostgreSQL told to use any index it can)."""
    with store.read() as r:
        if store_url.startswith("sqlite"):
            return " ".join(str(row[-1]) for row in r._all(f"EXPLAIN QUERY PLAN {sql}", params))
        # A read on PostgreSQL is no transaction of its own: SET LOCAL needs one.
        r._cur.execute("BEGIN")
        r._cur.execute("SET LOCAL enable_seqscan = off")
        try:
            return " ".join(str(row[0]) for row in r._all(f"EXPLAIN {sql}", params))
        finally:
            r._cur.execute("ROLLBACK")


def test_the_queries_by_status_read_only_the_live_rows(
    store_url: str, store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The indexes by status hold only rows that can still change (schema
    version 6); each query of live or wrapping work repeats the index's
    condition, or the database would not use it."""
    with store.write() as w:
        seed_ann(w)
    asked: list[tuple[str, Sequence[Any]]] = []
    real = Reader._all

    def recording(self: Reader, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        asked.append((sql, params))
        return real(self, sql, params)

    monkeypatch.setattr(Reader, "_all", recording)
    with store.read() as r:
        r.offered()
        r.answered_unfinished()
        list(r.interactions(status=["waiting", "offered"]))
    with store.write() as w:
        w.end_wrap_up("dan", T0 + 99)
    monkeypatch.undo()
    expected = ["interactions_live", "interactions_live", "interactions_live", "interactions_wrapping"]
    # Each query once (the pages of ``interactions()`` repeat theirs).
    selects = list({sql: params for sql, params in asked if "FROM interactions WHERE" in sql}.items())
    assert len(selects) == len(expected)
    for (sql, params), index in zip(selects, expected, strict=True):
        assert index in plan(store_url, store, sql, params), sql


def test_a_failure_caught_inside_a_write_is_never_lost_silently(store_url: str, store: SqlStore) -> None:
    with store.write() as w:
        w.add_customers([customer("ann")])

    def write_catching_a_duplicate() -> None:
        with store.write() as w:
            w.add_customers([customer("bob")])
            with contextlib.suppress(*INTEGRITY_ERRORS):
                w.add_customers([customer("ann")])

    if store_url.startswith("sqlite"):
        # SQLite undoes just the failed statement; the rest commits.
        write_catching_a_duplicate()
        assert rows(store, "SELECT id FROM customers ORDER BY id") == [("ann",), ("bob",)]
    else:
        # PostgreSQL cannot commit the rest: it says so instead of rolling back quietly.
        with pytest.raises(StoreError, match="a statement in this transaction failed; none of it was stored"):
            write_catching_a_duplicate()
        assert rows(store, "SELECT id FROM customers ORDER BY id") == [("ann",)]


def open_connections(url: str) -> int:
    """Connections this process holds to the database at ``url``."""
    if url.startswith("sqlite"):
        path = os.path.abspath(urlsplit(url).path[1:])
        links = []
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                links.append(os.readlink(f"/proc/self/fd/{fd}"))
        return links.count(path)
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) - 1 FROM pg_stat_activity WHERE datname = current_database()")
        return int(row.fetchone()[0])  # type: ignore[index]


def settles_at(url: str, expected: int) -> bool:
    """Whether the connection count reaches ``expected`` (a server notices closed ones shortly after)."""
    deadline = time.monotonic() + 5.0
    while open_connections(url) != expected:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def steady_connections(url: str) -> int:
    """The connection count once it stops changing (closing takes a server a moment)."""
    deadline = time.monotonic() + 5.0
    last = open_connections(url)
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = open_connections(url)
        if now == last:
            break
        last = now
    return last


def test_connections_of_finished_threads_are_closed(store_url: str, store: SqlStore) -> None:
    with store.read() as r:
        assert r.count("customers") == 0
    # SQLite's checkpointer (started by the migration's commit) has one of its own.
    own = 2 if store_url.startswith("sqlite") else 1
    assert settles_at(store_url, own)

    def read() -> None:
        with store.read() as r:
            r.count("customers")

    def threads(n: int) -> int:
        for _ in range(n):  # one after another, as a worker pool retiring idle threads would
            thread = threading.Thread(target=read)
            thread.start()
            thread.join()
        return steady_connections(store_url)

    # Ours and the last thread's (closed when the next thread connects); SQLite
    # may keep one more file open until it can drop its locks.
    settled = threads(2)
    assert settled <= own + 2
    assert threads(6) == settled
    store.close()
    assert settles_at(store_url, 0)


def test_one_writer_per_database(store_url: str) -> None:
    with open_store(store_url) as first, open_store(store_url) as second:
        first.acquire_writer()
        first.acquire_writer()  # again: still ours
        with pytest.raises(StoreError, match="another runtime is writing to it"):
            second.acquire_writer()
        with second.read() as r:  # reading is fine
            assert r.count("customers") == 0
        first.close()
        with pytest.raises(StoreError, match="closed"), first.read():
            pass
        second.acquire_writer()
        with open_store(store_url) as third, pytest.raises(StoreError, match="another runtime"):
            third.acquire_writer()


def checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "omniroute-sqlite-checkpoint"]


def test_sqlite_copies_the_wal_back_in_a_thread_of_its_own(tmp_path: Path) -> None:
    """Commits leave the WAL to the checkpointer's thread (the writer's
    connections would copy pages back themselves only past 20,000): after a
    burst of writes the thread has copied them into the database file, which
    the test only watches; closing the store ends the thread."""
    path = tmp_path / "omniroute.db"
    store = open_store(f"sqlite:///{path}")
    try:
        assert len(checkpoint_threads()) == 1  # started by the migration's commit
        before = path.stat().st_size
        for batch in range(40):
            with store.write() as w:
                w.add_customers(
                    [customer(f"c{batch}-{i}", attributes={"pad": "x" * 200}) for i in range(100)]
                )
        with store.read() as r:
            assert r.count("customers") == 4000
            assert r._cur.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 20_000
        deadline = time.monotonic() + 10
        while path.stat().st_size < before + 1_000_000:
            assert time.monotonic() < deadline, "the checkpointer never copied the WAL back"
            time.sleep(0.05)
        assert len(checkpoint_threads()) == 1
    finally:
        store.close()
    assert not checkpoint_threads()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 4000


# ----- URLs -----


def test_bad_store_urls_are_refused_naming_the_store(tmp_path: Path) -> None:
    bad = {
        "mysql://localhost/omniroute": "neither sqlite",
        "omniroute.db": "neither sqlite",
        "sqlite://": "names no file",
        "sqlite:///": "names no file",
        f"sqlite:///{tmp_path}/missing/omniroute.db": "does not exist",
        f"sqlite:///{tmp_path}/omniroute.db?synchronous=sometimes": "synchronous",
    }
    for url, message in bad.items():
        with pytest.raises(InvalidInputError, match=f"^store: .*{message}"):
            open_store(url)
    assert not (tmp_path / "missing").exists()


def test_an_unreachable_postgresql_is_a_store_error_without_the_password(
    postgres_server: pg.PostgresServer,
) -> None:
    wrong = postgres_server.url.replace(f":{pg.PASSWORD}@", ":not-the-password@") + "postgres"
    with pytest.raises(StoreError, match=r"^store postgresql://omniroute:\*\*\*@.*cannot connect") as info:
        open_store(wrong)
    assert "not-the-password" not in str(info.value)


def test_users_sessions_and_tokens_keep_only_hashes_and_end_when_told(store: SqlStore) -> None:
    ann = User(name="ann", role="agent", agent="a1", created_at=1.0)
    with store.write() as w:
        w.add_user(ann, "argon2-hash-of-ann")
        w.add_user(User(name="sue", role="supervisor", created_at=2.0), "argon2-hash-of-sue")
        with pytest.raises(DuplicateIdError, match=r"^name: a user 'ann' exists already"):
            w.add_user(User(name="ann", role="supervisor", created_at=3.0), "x")
        with pytest.raises(DuplicateIdError, match=r"^agent: agent 'a1' is already the user 'ann'"):
            w.add_user(User(name="other", role="agent", agent="a1", created_at=3.0), "x")
        w.add_session("hash-1", Session(user="ann", created_at=5.0, expires_at=65.0))
        w.add_session("hash-2", Session(user="ann", created_at=6.0, expires_at=66.0))
        w.add_api_token(
            "hash-t", ApiToken(id="t1", name="crm", scopes=("customers:read", "work"), created_at=7.0)
        )
    with store.read() as r:
        assert r.user("ann") == ann
        assert [u.name for u in r.users()] == ["ann", "sue"]
        assert r.credentials("ann") == (ann, "argon2-hash-of-ann")
        assert r.credentials("nobody") is None
        assert r.session("hash-1") == (Session(user="ann", created_at=5.0, expires_at=65.0), ann)
        assert r.session("unknown") is None
        assert r.api_token("hash-t") == ApiToken(
            id="t1", name="crm", scopes=("customers:read", "work"), created_at=7.0
        )
        with pytest.raises(UnknownIdError, match=r"^user: no user 'nobody'"):
            r.user("nobody")
    with store.write() as w:
        w.end_session("hash-1", 10.0)
        w.set_password("ann", "new-hash", 11.0)
        w.disable_user("sue", 12.0)
        w.revoke_api_token("t1", 13.0)
        with pytest.raises(UnknownIdError, match=r"^token: no API token 'nope'"):
            w.revoke_api_token("nope", 13.0)
    with store.read() as r:
        first, second = r.session("hash-1"), r.session("hash-2")
        assert first is not None
        assert second is not None
        # The first ended at logout; the password change ended the other.
        assert (first[0].ended_at, second[0].ended_at) == (10.0, 11.0)
        assert r.credentials("ann") == (ann, "new-hash")
        assert r.user("sue").disabled_at == 12.0
        assert [t.revoked_at for t in r.api_tokens()] == [13.0]
