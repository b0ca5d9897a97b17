"""The store over SQL: one implementation, two dialects (SQLite and PostgreSQL)."""

from __future__ import annotations

import bisect
import contextlib
import functools
import operator
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Generic, Protocol, TypeVar, cast

import msgspec

from omniroute.errors import DuplicateIdError, InvalidInputError, OmnirouteError, UnknownIdError
from omniroute.ids import new_id
from omniroute.model import AgentConfig, ChannelConfig, EngineConfig, QueueConfig
from omniroute.store.kept import Kept, KeptTimeline
from omniroute.store.migrations import MIGRATIONS, latest_version
from omniroute.store.records import (
    FINISHED,
    ApiToken,
    Attachment,
    Conversation,
    ConversationDetail,
    Customer,
    CustomerContext,
    Delivery,
    EngineSnapshot,
    IdentityRecord,
    Interaction,
    InteractionPatch,
    LogEntry,
    Merge,
    Message,
    Note,
    Session,
    StoredEvent,
    TimelineEntry,
    User,
)

__all__ = ["Reader", "SqlStore", "StoreError", "Writer"]

_T = TypeVar("_T")
_R = TypeVar("_R", Note, Message)

_json = msgspec.json.Encoder()
_attributes = msgspec.json.Decoder(dict[str, Any])
_moved = msgspec.json.Decoder(dict[str, list[Any]])
_msgpack = msgspec.msgpack.Encoder()
# A page of the event log: (seq, type, time, subject, data) per event.
_page = msgspec.msgpack.Decoder(list[tuple[int, str, float, str, bytes]])
# Records of finished interactions with their notes (schema version 6),
# decoded as one array.
_sealed_entries = msgspec.msgpack.Decoder(list[TimelineEntry])


class StoreError(OmnirouteError):
    """The store cannot do what was asked (schema too new, already in use, ...)."""


class Connection(Protocol):
    def cursor(self) -> Any: ...
    def close(self) -> None: ...


_INTERACTION_COLUMNS = (
    "id, conversation_id, customer_id, channel, direction, queue, status, priority, agent, offer, "
    "created_at, queued_at, offered_at, answered_at, ended_at, wrap_up_ended_at, disposition, outcome, "
    "subject, attributes, held_at, hold_seconds"
)


def _interaction(row: Sequence[Any]) -> Interaction:
    return Interaction(
        id=row[0],
        conversation_id=row[1],
        customer_id=row[2],
        channel=row[3],
        direction=row[4],
        queue=row[5],
        status=row[6],
        priority=row[7],
        agent=row[8],
        offer=row[9],
        created_at=row[10],
        queued_at=row[11],
        offered_at=row[12],
        answered_at=row[13],
        ended_at=row[14],
        wrap_up_ended_at=row[15],
        disposition=row[16],
        outcome=row[17],
        subject=row[18],
        attributes=_attributes.decode(row[19]) if row[19] != "{}" else {},
        held_at=row[20],
        hold_seconds=row[21],
    )


_CONVERSATION_COLUMNS = "id, customer_id, opened_at, last_activity_at, closed_at"


# A customer's row, who last answered them, and their open conversation's row.
_CONTEXT_HEAD = (
    "SELECT c.id, c.created_at, c.display_name, c.attributes, c.merged_into, "
    "(SELECT agent FROM interactions WHERE customer_id = c.id AND answered_at IS NOT NULL "
    "AND agent IS NOT NULL ORDER BY answered_at DESC LIMIT 1), "
    + ", ".join(f"o.{column}" for column in _CONVERSATION_COLUMNS.split(", "))
    + " FROM customers c LEFT JOIN (SELECT * FROM conversations WHERE customer_id = ? "
    "AND closed_at IS NULL ORDER BY opened_at DESC LIMIT 1) AS o ON 1 = 1 WHERE c.id = ?"
)


def _conversation(row: Sequence[Any]) -> Conversation:
    return Conversation(
        id=row[0], customer_id=row[1], opened_at=row[2], last_activity_at=row[3], closed_at=row[4]
    )


_USER_COLUMNS = "name, role, agent, created_at, disabled_at"
_TOKEN_COLUMNS = "id, name, scopes, created_at, expires_at, revoked_at"


def _user(row: Sequence[Any]) -> User:
    return User(name=row[0], role=row[1], agent=row[2], created_at=row[3], disabled_at=row[4])


def _token(row: Sequence[Any]) -> ApiToken:
    return ApiToken(
        id=row[0],
        name=row[1],
        scopes=tuple(row[2].split()),
        created_at=row[3],
        expires_at=row[4],
        revoked_at=row[5],
    )


def _customer(row: Sequence[Any]) -> Customer:
    attributes = _attributes.decode(row[3]) if row[3] != "{}" else {}
    return Customer(
        id=row[0], created_at=row[1], display_name=row[2], attributes=attributes, merged_into=row[4]
    )


_MESSAGE_COLUMNS = "id, interaction_id, conversation_id, at, direction, author, body, content_type"


def _message(row: Sequence[Any]) -> Message:
    return Message(
        id=row[0],
        interaction_id=row[1],
        conversation_id=row[2],
        at=row[3],
        direction=row[4],
        author=row[5],
        body=row[6],
        content_type=row[7],
    )


def _in(n: int) -> str:
    return ", ".join("?" * n)


def _seal(interaction: Interaction, notes: tuple[Note, ...]) -> bytes | None:
    """The ``record`` column of an interaction's row: once it is finished, the
    MessagePack of its ``TimelineEntry`` (it and its notes), else NULL."""
    if interaction.status not in FINISHED:
        return None
    return _msgpack.encode(TimelineEntry(interaction=interaction, notes=notes))


def _unseal(
    decoder: msgspec.msgpack.Decoder[list[_T]], records: Sequence[bytes], count: int | None = None
) -> list[_T]:
    """Records, decoded in one call as one MessagePack array (``0xdd``:
    array32); ``count`` says how many when they come already concatenated
    (``SqlStore.concat_records``)."""
    count = len(records) if count is None else count
    return decoder.decode(b"".join([b"\xdd" + count.to_bytes(4, "big"), *records]))


def _entry_order(entry: TimelineEntry) -> tuple[float, str]:
    """Where an entry stands in a timeline (its rows' ``ORDER BY created_at, id``)."""
    return (entry.interaction.created_at, entry.interaction.id)


_message_order = attrgetter("at", "id")
_message_at = attrgetter("at")


def _brought_up_to_date(
    kept: KeptTimeline, changed: list[TimelineEntry], count: int, newest: int
) -> KeptTimeline | None:
    """The kept entries with the records written since (numbered up to
    ``newest``) in their places, or None unless that makes all ``count`` of
    them (one was cleared, or moved to another customer by a merge): then the
    timeline is read whole."""
    if not changed:
        return kept if len(kept.entries) == count else None
    rewritten = {e.interaction.id: e for e in changed if e.interaction.id in kept.ids}
    entries = [rewritten.get(e.interaction.id, e) for e in kept.entries] if rewritten else list(kept.entries)
    added = sorted((e for e in changed if e.interaction.id not in kept.ids), key=_entry_order)
    for entry in added:
        bisect.insort(entries, entry, key=_entry_order)
    if len(entries) != count:
        return None
    ids = kept.ids.union(e.interaction.id for e in added) if added else kept.ids
    return KeptTimeline(newest, entries, ids)


# The condition of the partial index of interactions that can still change
# (schema version 6), word for word: a query uses the index only if its
# WHERE repeats it.
_LIVE = "status IN ('waiting', 'offered', 'assigned')"
_LIVE_STATUSES = frozenset({"waiting", "offered", "assigned"})

# The columns of an interaction a patch can set; the first times keep the
# value they had (a transfer does not reset them).
_PATCHED = (
    "status",
    "queue",
    "agent",
    "offer",
    "queued_at",
    "offered_at",
    "answered_at",
    "ended_at",
    "wrap_up_ended_at",
    "disposition",
    "outcome",
    "held_at",
    "hold_seconds",
)
_FIRST_TIMES = frozenset({"queued_at", "offered_at", "answered_at"})


_patched_values = attrgetter(*_PATCHED)
_CLEARED = (("agent", "clear_agent"), ("offer", "clear_offer"), ("held_at", "clear_held"))
# The statuses a patch may leave an interaction in: finished, or none named
# (a patch without a status may change a row that is already finished).
_MAY_FINISH = FINISHED | {None}


def _patch_fields(patch: InteractionPatch) -> dict[str, Any]:
    """A patch as the columns it sets (None: emptied)."""
    fields = {
        name: value for name, value in zip(_PATCHED, _patched_values(patch), strict=True) if value is not None
    }
    for name, flag in _CLEARED:
        if getattr(patch, flag):
            fields[name] = None
    return fields


@functools.lru_cache(maxsize=1024)
def _patch_clauses(names: tuple[str, ...]) -> str:
    """The SET clauses for these columns, in this order; a first time keeps
    the value it had. Made once per set of columns (and order: a runtime
    makes a few dozen)."""
    unknown = [name for name in names if name not in _PATCHED]
    if unknown:
        raise InvalidInputError(
            f"patch: {', '.join(unknown)} cannot be patched (patchable: {', '.join(_PATCHED)})"
        )
    return ", ".join(
        f"{name} = COALESCE({name}, ?)" if name in _FIRST_TIMES else f"{name} = ?" for name in names
    )


def _patch_changes(fields: Mapping[str, Any], row: Interaction) -> dict[str, Any]:
    """What the columns set change on ``row``: a first time only where it had none."""
    return {
        name: value
        for name, value in fields.items()
        if name not in _FIRST_TIMES or getattr(row, name) is None
    }


_NOTE_COLUMNS = "id, customer_id, interaction_id, author, at, body"


def _note(row: Sequence[Any]) -> Note:
    return Note(id=row[0], customer_id=row[1], interaction_id=row[2], author=row[3], at=row[4], body=row[5])


@dataclass(frozen=True, slots=True)
class _Sealed(Generic[_T]):
    """A table whose rows carry their record (schema version 5): how to read
    it by record, and by column."""

    table: str
    columns: str
    build: Callable[[Sequence[Any]], _T]
    decoder: msgspec.msgpack.Decoder[list[_T]]


_NOTES = _Sealed("notes", _NOTE_COLUMNS, _note, msgspec.msgpack.Decoder(list[Note]))
_MESSAGES = _Sealed("messages", _MESSAGE_COLUMNS, _message, msgspec.msgpack.Decoder(list[Message]))


def _grouped(rows: Iterable[_R]) -> dict[str | None, tuple[_R, ...]]:
    """Notes or messages by the interaction they belong to, in the order read."""
    grouped: dict[str | None, list[_R]] = {}
    for row in rows:
        grouped.setdefault(row.interaction_id, []).append(row)
    return {on: tuple(group) for on, group in grouped.items()}


class Reader:
    """Reads, on a connection of the calling thread (or inside a write)."""

    def __init__(self, store: SqlStore, cursor: Any) -> None:
        self._cur = cursor
        self._q = store.sql
        self._kept = store.kept
        self._concat_records = store.concat_records

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        self._cur.execute(self._q(sql), params)
        return list(self._cur.fetchall())

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> Iterator[Any]:
        """The rows one at a time, for a loop that runs no other query."""
        return iter(self._cur.execute(self._q(sql), params))

    def _records(self, kind: _Sealed[_T], where: str, params: Sequence[Any]) -> list[_T]:
        """The rows of a table whose rows never change once written, from their
        records; rows written before schema version 5 have none, and if any
        does, every row is read column by column."""
        # Row by row: each row's tuple is freed before the next is made, so a
        # thousand rows do not set off the garbage collector.
        records = [r[0] for r in self._rows(f"SELECT record FROM {kind.table} WHERE {where}", params)]
        if None not in records:
            return _unseal(kind.decoder, records)
        return [
            kind.build(r) for r in self._all(f"SELECT {kind.columns} FROM {kind.table} WHERE {where}", params)
        ]

    def _notes_of(self, interaction_ids: Sequence[str]) -> dict[str | None, tuple[Note, ...]]:
        """The notes of each of these interactions, oldest first."""
        notes: dict[str | None, tuple[Note, ...]] = {}
        for start in range(0, len(interaction_ids), 500):
            chunk = interaction_ids[start : start + 500]
            notes.update(
                _grouped(
                    self._records(_NOTES, f"interaction_id IN ({_in(len(chunk))}) ORDER BY at, id", chunk)
                )
            )
        return notes

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self._cur.execute(self._q(sql), params)
        return self._cur.fetchone()

    # ----- customers -----

    def customer(self, customer_id: str) -> Customer:
        row = self._one(
            "SELECT id, created_at, display_name, attributes, merged_into FROM customers WHERE id = ?",
            (customer_id,),
        )
        if row is None:
            raise UnknownIdError(f"customer: no customer {customer_id!r}")
        return _customer(row)

    def live_customer(self, customer_id: str) -> Customer:
        """The customer, or the one it is merged into (followed to the end)."""
        customer = self.customer(customer_id)
        seen = {customer.id}
        while customer.merged_into is not None:
            customer = self.customer(customer.merged_into)
            if customer.id in seen:  # pragma: no cover - merges refuse cycles
                raise StoreError(f"customer: merge cycle through {customer.id!r}")
            seen.add(customer.id)
        return customer

    def identities(self, customer_id: str) -> list[IdentityRecord]:
        rows = self._all(
            "SELECT kind, value, customer_id, created_at FROM identities WHERE customer_id = ? "
            "ORDER BY created_at, kind, value",
            (customer_id,),
        )
        return [IdentityRecord(kind=r[0], value=r[1], customer_id=r[2], created_at=r[3]) for r in rows]

    def find_customers(self, identities: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """The customer each known identity belongs to."""
        keys = list(dict.fromkeys(identities))
        found: dict[tuple[str, str], str] = {}
        # Row values (kind, value) IN (...) work on both dialects.
        for start in range(0, len(keys), 400):
            chunk = keys[start : start + 400]
            placeholders = ", ".join("(?, ?)" for _ in chunk)
            params = [x for key in chunk for x in key]
            for kind, value, customer in self._all(
                f"SELECT kind, value, customer_id FROM identities WHERE (kind, value) IN ({placeholders})",
                params,
            ):
                found[(kind, value)] = customer
        return found

    def open_conversations(self, customer_ids: Iterable[str]) -> dict[str, Conversation]:
        """Each customer's latest open conversation."""
        ids = list(dict.fromkeys(customer_ids))
        found: dict[str, Conversation] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for row in self._all(
                f"SELECT {_CONVERSATION_COLUMNS} FROM conversations "
                f"WHERE customer_id IN ({_in(len(chunk))}) AND closed_at IS NULL ORDER BY opened_at",
                chunk,
            ):
                found[row[1]] = _conversation(row)
        return found

    def conversation(self, conversation_id: str) -> Conversation:
        row = self._one(f"SELECT {_CONVERSATION_COLUMNS} FROM conversations WHERE id = ?", (conversation_id,))
        if row is None:
            raise UnknownIdError(f"conversation: no conversation {conversation_id!r}")
        return _conversation(row)

    def conversation_detail(self, conversation_id: str) -> ConversationDetail:
        conversation = self.conversation(conversation_id)
        interactions = [
            _interaction(row)
            for row in self._all(
                f"SELECT {_INTERACTION_COLUMNS} FROM interactions WHERE conversation_id = ? "
                "ORDER BY created_at, id",
                (conversation_id,),
            )
        ]
        messages = self._records(_MESSAGES, "conversation_id = ? ORDER BY at, id", (conversation_id,))
        return ConversationDetail(conversation=conversation, interactions=interactions, messages=messages)

    def last_agents(self, customer_ids: Iterable[str]) -> dict[str, str]:
        """The agent who last answered each customer, on any channel."""
        ids = list(dict.fromkeys(customer_ids))
        found: dict[str, str] = {}
        for customer in ids:
            row = self._one(
                "SELECT agent FROM interactions WHERE customer_id = ? AND answered_at IS NOT NULL "
                "AND agent IS NOT NULL ORDER BY answered_at DESC LIMIT 1",
                (customer,),
            )
            if row is not None:
                found[customer] = row[0]
        return found

    # ----- interactions -----

    def offered(self) -> list[tuple[str, int, str]]:
        """(interaction, offer, agent) of every interaction waiting on an offer."""
        return [
            (r[0], r[1], r[2])
            for r in self._all(
                f"SELECT id, offer, agent FROM interactions WHERE {_LIVE} AND status = 'offered' ORDER BY id"
            )
        ]

    def answered_unfinished(self) -> dict[str, float]:
        """When each interaction still in the engine was first answered, for
        those answered (a transfer puts answered work back in a queue)."""
        return dict(
            self._all(f"SELECT id, answered_at FROM interactions WHERE {_LIVE} AND answered_at IS NOT NULL")
        )

    def holds(self) -> list[Interaction]:
        """The interactions still in the engine that are or were on hold."""
        return [
            _interaction(r)
            for r in self._all(
                f"SELECT {_INTERACTION_COLUMNS} FROM interactions WHERE {_LIVE} "
                "AND (held_at IS NOT NULL OR hold_seconds > 0)"
            )
        ]

    def interaction(self, interaction_id: str) -> Interaction:
        row = self._one(f"SELECT {_INTERACTION_COLUMNS} FROM interactions WHERE id = ?", (interaction_id,))
        if row is None:
            raise UnknownIdError(f"interaction: no interaction {interaction_id!r}")
        return _interaction(row)

    def interactions_by_id(self, ids: Iterable[str]) -> dict[str, Interaction]:
        keys = list(dict.fromkeys(ids))
        found: dict[str, Interaction] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            for row in self._all(
                f"SELECT {_INTERACTION_COLUMNS} FROM interactions WHERE id IN ({_in(len(chunk))})", chunk
            ):
                found[row[0]] = _interaction(row)
        return found

    def interactions(
        self, *, status: Iterable[str] | None = None, batch: int = 5000
    ) -> Iterator[Interaction]:
        """Every interaction (optionally only some statuses), in id order,
        page by page (never all in memory)."""
        after = ""
        statuses = list(status) if status is not None else None
        if statuses == []:
            return
        while True:
            where = "id > ?"
            params: list[Any] = [after]
            if statuses is not None:
                where += f" AND status IN ({_in(len(statuses))})"
                params.extend(statuses)
                if set(statuses) <= _LIVE_STATUSES:
                    where += f" AND {_LIVE}"
            rows = self._all(
                f"SELECT {_INTERACTION_COLUMNS} FROM interactions WHERE {where} "
                f"ORDER BY id LIMIT {int(batch)}",
                params,
            )
            if not rows:
                return
            for row in rows:
                yield _interaction(row)
            after = rows[-1][0]

    def count(self, table: str) -> int:
        if table not in _TABLES:
            raise InvalidInputError(f"table: {table!r} is not one of {sorted(_TABLES)}")
        if table == "events":
            # Events in pages count one by one.
            row = self._one(
                "SELECT (SELECT COUNT(*) FROM events) + "
                "(SELECT COALESCE(SUM(last_seq - first_seq + 1), 0) FROM event_pages)"
            )
        else:
            row = self._one(f"SELECT COUNT(*) FROM {table}")
        return int(row[0])

    def delivery(self, message_id: str) -> Delivery | None:
        row = self._one(
            "SELECT message_id, channel, status, updated_at, provider_id, detail FROM deliveries "
            "WHERE message_id = ?",
            (message_id,),
        )
        if row is None:
            return None
        return Delivery(
            message_id=row[0],
            channel=row[1],
            status=row[2],
            updated_at=row[3],
            provider_id=row[4],
            detail=row[5],
        )

    def delivery_by_provider_id(self, channel: str, provider_id: str) -> Delivery | None:
        row = self._one(
            "SELECT message_id FROM deliveries WHERE channel = ? AND provider_id = ?", (channel, provider_id)
        )
        return self.delivery(row[0]) if row is not None else None

    def channel_cursor(self, name: str) -> int:
        """How far through the event log a channel host has sent (0: from the start)."""
        row = self._one("SELECT seq FROM channel_cursors WHERE name = ?", (name,))
        return int(row[0]) if row is not None else 0

    def live_interaction(self, customer_id: str, channel: str) -> Interaction | None:
        """The customer's newest interaction on a channel that is still in the engine."""
        row = self._one(
            f"SELECT {_INTERACTION_COLUMNS} FROM interactions WHERE customer_id = ? AND channel = ? "
            "AND status IN ('waiting', 'offered', 'assigned') ORDER BY created_at DESC, id DESC LIMIT 1",
            (customer_id, channel),
        )
        return _interaction(row) if row is not None else None

    def interaction_notes(self, interaction_id: str) -> list[Note]:
        """An interaction's notes, oldest first."""
        return list(self._notes_of([interaction_id]).get(interaction_id, ()))

    def message(self, message_id: str) -> Message | None:
        row = self._one(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,))
        return _message(row) if row is not None else None

    def messages(self, interaction_id: str) -> list[Message]:
        rows = self._all(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE interaction_id = ? ORDER BY at, id",
            (interaction_id,),
        )
        return [_message(r) for r in rows]

    def attachments(self, message_id: str) -> list[Attachment]:
        rows = self._all(
            "SELECT id, message_id, filename, content_type, size, sha256, location FROM attachments "
            "WHERE message_id = ? ORDER BY id",
            (message_id,),
        )
        return [
            Attachment(
                id=r[0],
                message_id=r[1],
                filename=r[2],
                content_type=r[3],
                size=r[4],
                sha256=r[5],
                location=r[6],
            )
            for r in rows
        ]

    # ----- the context an agent sees -----

    def context(self, customer_id: str, *, limit: int | None = None) -> CustomerContext:
        """The customer's unified timeline across channels, newest first
        (its ``limit`` newest entries, if given)."""
        if limit is not None and limit < 0:
            raise InvalidInputError(f"limit: {limit} is negative")
        # The customer, their open conversation and who last answered them
        # (over all their interactions, not only the ``limit`` newest), in one
        # statement: each is a round trip to a server.
        row = self._one(_CONTEXT_HEAD, (customer_id, customer_id))
        if row is None:
            raise UnknownIdError(f"customer: no customer {customer_id!r}")
        if row[4] is not None:
            # Merged into another: read as that one.
            return self.context(self.live_customer(customer_id).id, limit=limit)
        customer = _customer(row)
        cid = customer.id
        open_conversation = _conversation(row[6:]) if row[6] is not None else None
        return CustomerContext(
            customer=customer,
            identities=self.identities(cid),
            timeline=self._timeline(cid, limit),
            open_conversation=open_conversation,
            transcript=self._transcript(open_conversation.id) if open_conversation is not None else [],
            last_agent=row[5],
            customer_notes=self._records(
                _NOTES, "customer_id = ? AND interaction_id IS NULL ORDER BY at, id", (cid,)
            ),
        )

    def _timeline(self, cid: str, limit: int | None) -> list[TimelineEntry]:
        """The customer's interactions, newest first: the finished ones from
        what is kept (``store/kept.py``) brought up to date, or read whole;
        the open ones read column by column with their notes."""
        kept = self._kept.timeline(cid)
        if kept is not None:
            # One statement, so one snapshot on both databases: how many
            # records there are and the newest number, the open rows, and the
            # records written since what is kept.
            count = newest = -1
            changed: list[bytes] = []
            open_ids: list[str] = []
            for record, iid, number, top in self._rows(
                "SELECT NULL, NULL, count(sealed_seq), coalesce(max(sealed_seq), 0) FROM interactions "
                "WHERE customer_id = ? UNION ALL SELECT * FROM (SELECT record, id, sealed_seq, "
                "CAST(NULL AS BIGINT) FROM interactions "
                "WHERE customer_id = ? AND (sealed_seq IS NULL OR sealed_seq > ?) "
                # In the timeline's order, so that the timeline's index is read
                # (its numbers pick the rows), not the rows.
                "ORDER BY created_at, id) AS since",
                (cid, cid, kept.newest),
            ):
                if iid is None:
                    count, newest = number, top
                elif record is None:
                    open_ids.append(iid)
                else:
                    changed.append(record)
            # A reader whose snapshot is older than what is kept reads whole.
            current = (
                _brought_up_to_date(kept, _unseal(_sealed_entries, changed), count, newest)
                if newest >= kept.newest
                else None
            )
            if current is not None:
                self._kept.counted(True)
                if changed:
                    self._kept.keep_timeline(cid, current)
                return self._woven(current.entries, open_ids, limit)
        self._kept.counted(False)
        if limit is not None:
            return self._newest_entries(cid, limit)
        entries, newest, open_ids = self._whole_timeline(cid)
        if len(entries) >= self._kept.smallest:
            self._kept.keep_timeline(cid, KeptTimeline(newest, entries))
        return self._woven(entries, open_ids, None)

    def _whole_timeline(self, cid: str) -> tuple[list[TimelineEntry], int, list[str]]:
        """The finished entries, oldest first, the newest number among them and
        the open interactions' ids, in one statement (one snapshot)."""
        open_ids: list[str] = []
        if self._concat_records is None:
            records: list[bytes] = []
            newest = 0
            for record, iid, number in self._rows(
                "SELECT record, CASE WHEN record IS NULL THEN id END, sealed_seq FROM interactions "
                "WHERE customer_id = ? ORDER BY created_at, id",
                (cid,),
            ):
                if record is None:
                    open_ids.append(iid)
                else:
                    records.append(record)
                    newest = max(newest, number)
            return _unseal(_sealed_entries, records), newest, open_ids
        # The first row is every record at once; the open interactions' ids follow.
        concatenated: bytes | None = None
        count = newest = 0
        for blob, number, top, iid in self._rows(
            f"SELECT {self._concat_records}, count(record), coalesce(max(sealed_seq), 0), CAST(NULL AS TEXT) "
            "FROM (SELECT record, sealed_seq, created_at, id FROM interactions "
            "WHERE customer_id = ? ORDER BY created_at, id) AS timeline UNION ALL "
            "SELECT NULL, NULL, NULL, id FROM interactions WHERE customer_id = ? AND sealed_seq IS NULL",
            (cid, cid),
        ):
            if number is not None:
                concatenated, count, newest = blob, number, top
            else:
                open_ids.append(iid)
        records = [] if concatenated is None else [concatenated]
        return _unseal(_sealed_entries, records, count), newest, open_ids

    def _newest_entries(self, cid: str, limit: int) -> list[TimelineEntry]:
        """The ``limit`` newest entries, read whole (nothing is kept of them)."""
        records: list[bytes] = []
        open_ids = []
        for record, iid in self._rows(
            "SELECT record, CASE WHEN record IS NULL THEN id END FROM interactions "
            "WHERE customer_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
            (cid, limit),
        ):
            if record is None:
                open_ids.append(iid)
            else:
                records.append(record)
        records.reverse()
        return self._woven(_unseal(_sealed_entries, records), open_ids, limit)

    def _woven(
        self, sealed: list[TimelineEntry], open_ids: list[str], limit: int | None
    ) -> list[TimelineEntry]:
        """The finished entries (oldest first) and the open interactions, newest first."""
        if open_ids:
            live = self.interactions_by_id(open_ids)
            notes = self._notes_of(open_ids)
            sealed = list(sealed)
            for entry in sorted(
                (TimelineEntry(interaction=live[i], notes=notes.get(i, ())) for i in open_ids),
                key=_entry_order,
            ):
                bisect.insort(sealed, entry, key=_entry_order)
        newest_first = sealed[::-1]
        return newest_first if limit is None else newest_first[:limit]

    def _transcript(self, conversation_id: str) -> list[Message]:
        """The conversation's messages, oldest first: those kept and the ones
        since, or all of them read whole."""
        kept = self._kept.transcript(conversation_id)
        if kept is not None:
            since = kept[-1].at
            count = -1
            records: list[bytes | None] = []
            # One statement, one snapshot: how many there are, and those from
            # the last one kept on (messages never change once written).
            for record, number in self._rows(
                "SELECT NULL, count(*) FROM messages WHERE conversation_id = ? UNION ALL "
                "SELECT record, NULL FROM messages WHERE conversation_id = ? AND at >= ?",
                (conversation_id, conversation_id, since),
            ):
                if number is not None:
                    count = number
                else:
                    records.append(record)
            if None not in records:
                head = kept[: bisect.bisect_left(kept, since, key=_message_at)]
                tail = sorted(_unseal(_MESSAGES.decoder, cast("list[bytes]", records)), key=_message_order)
                if len(head) + len(tail) == count:
                    self._kept.counted(True)
                    current = head + tail
                    if len(current) != len(kept):
                        self._kept.keep_transcript(conversation_id, list(current))
                    return current
        self._kept.counted(False)
        # Read whole: every record at once where the database can, unless a
        # message stored before schema version 5 has none; else row by row.
        messages: list[Message] | None = None
        if self._concat_records is not None:
            total, count, concatenated = self._one(
                f"SELECT count(*), count(record), {self._concat_records} FROM (SELECT record, at, id "
                "FROM messages WHERE conversation_id = ? ORDER BY at, id) AS transcript",
                (conversation_id,),
            )
            if total == count:
                messages = _unseal(_MESSAGES.decoder, [] if concatenated is None else [concatenated], count)
        if messages is None:
            messages = self._records(_MESSAGES, "conversation_id = ? ORDER BY at, id", (conversation_id,))
        if len(messages) >= self._kept.smallest:
            self._kept.keep_transcript(conversation_id, list(messages))
        return messages

    # ----- who may use the server (schema version 7) -----

    def user(self, name: str) -> User:
        row = self._one(f"SELECT {_USER_COLUMNS} FROM users WHERE name = ?", (name,))
        if row is None:
            raise UnknownIdError(f"user: no user {name!r}")
        return _user(row)

    def users(self) -> list[User]:
        return [_user(r) for r in self._all(f"SELECT {_USER_COLUMNS} FROM users ORDER BY name")]

    def credentials(self, name: str) -> tuple[User, str] | None:
        """The user and its password hash, or None for an unknown name."""
        row = self._one(f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE name = ?", (name,))
        return None if row is None else (_user(row), row[5])

    def session(self, token_hash: str) -> tuple[Session, User] | None:
        """The session of this token's hash and its user, or None."""
        row = self._one(
            "SELECT s.created_at, s.expires_at, s.ended_at, u.name, u.role, u.agent, u.created_at, "
            "u.disabled_at FROM sessions s JOIN users u ON u.name = s.user_name WHERE s.token_hash = ?",
            (token_hash,),
        )
        if row is None:
            return None
        user = _user(row[3:])
        return Session(user=user.name, created_at=row[0], expires_at=row[1], ended_at=row[2]), user

    def api_token(self, token_hash: str) -> ApiToken | None:
        row = self._one(f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = ?", (token_hash,))
        return None if row is None else _token(row)

    def api_tokens(self) -> list[ApiToken]:
        return [
            _token(r) for r in self._all(f"SELECT {_TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id")
        ]

    # ----- merges -----

    def merge(self, merge_id: str) -> Merge:
        row = self._one(
            "SELECT id, survivor, merged, at, moved, undone_at FROM customer_merges WHERE id = ?", (merge_id,)
        )
        if row is None:
            raise UnknownIdError(f"merge: no merge {merge_id!r}")
        moved = _moved.decode(row[4])
        return Merge(
            id=row[0],
            survivor=row[1],
            merged=row[2],
            at=row[3],
            identities=[(k, v) for k, v in moved["identities"]],
            conversations=moved["conversations"],
            interactions=moved["interactions"],
            notes=moved["notes"],
            undone_at=row[5],
        )

    # ----- configuration -----

    def _config_bodies(self, table: str, key: str, order: list[Any]) -> list[str]:
        """A configuration table's bodies in the order saved (by name if no order was saved)."""
        bodies: dict[str, str] = dict(self._all(f"SELECT {key}, body FROM {table} ORDER BY {key}"))
        names = [name for name in order if name in bodies]
        saved = set(names)
        return [bodies[name] for name in [*names, *(name for name in bodies if name not in saved)]]

    def config(self) -> EngineConfig | None:
        """The stored configuration, or None before one is saved."""
        settings = dict(self._all("SELECT key, value FROM config_settings"))
        if not settings:
            return None
        # Saved order matters: the engine breaks ties by it (agent created first).
        order = _moved.decode(settings["order"]) if "order" in settings else {}
        channels = [
            msgspec.json.decode(b, type=ChannelConfig)
            for b in self._config_bodies("config_channels", "name", order.get("channels", []))
        ]
        queues = [
            msgspec.json.decode(b, type=QueueConfig)
            for b in self._config_bodies("config_queues", "name", order.get("queues", []))
        ]
        agents = [
            msgspec.json.decode(b, type=AgentConfig)
            for b in self._config_bodies("config_agents", "id", order.get("agents", []))
        ]
        return EngineConfig(
            channels=channels,
            queues=queues,
            agents=agents,
            seed=int(settings.get("seed", "0")),
            max_missed_offers=int(settings.get("max_missed_offers", "3")),
        )

    # ----- logs -----

    def events(self, after: int = 0, *, limit: int = 10_000) -> list[StoredEvent]:
        """Up to ``limit`` events after seq ``after``, in seq order."""
        # Events written before the log was kept in pages come first.
        rows = self._all(
            "SELECT seq, type, time, subject, data FROM events WHERE seq > ? "
            f"ORDER BY seq LIMIT {int(limit)}",
            (after,),
        )
        found = [StoredEvent(seq=r[0], type=r[1], time=r[2], subject=r[3], data=bytes(r[4])) for r in rows]
        if found:
            after = found[-1].seq
        while len(found) < limit:
            pages = self._all(
                "SELECT last_seq, events FROM event_pages WHERE last_seq > ? ORDER BY last_seq LIMIT 8",
                (after,),
            )
            if not pages:
                break
            for last_seq, body in pages:
                for seq, type_, at, subject, data in _page.decode(body):
                    if seq > after and len(found) < limit:
                        found.append(StoredEvent(seq=seq, type=type_, time=at, subject=subject, data=data))
                after = last_seq
        return found

    def last_event_seq(self) -> int:
        row = self._one(
            "SELECT MAX(s) FROM "
            "(SELECT MAX(seq) AS s FROM events UNION ALL SELECT MAX(last_seq) FROM event_pages) m"
        )
        return int(row[0]) if row[0] is not None else 0

    def last_log_seq(self) -> int:
        row = self._one("SELECT MAX(seq) FROM engine_log")
        return int(row[0]) if row[0] is not None else 0

    def log_after(self, seq: int, *, batch: int = 2000) -> Iterator[LogEntry]:
        while True:
            rows = self._all(
                f"SELECT seq, now, inputs, metrics FROM engine_log WHERE seq > ? ORDER BY seq LIMIT {batch}",
                (seq,),
            )
            if not rows:
                return
            for r in rows:
                yield LogEntry(
                    seq=r[0], now=r[1], inputs=bytes(r[2]), metrics=None if r[3] is None else bytes(r[3])
                )
            seq = rows[-1][0]

    def latest_snapshot_seq(self) -> int | None:
        row = self._one("SELECT MAX(log_seq) FROM engine_snapshots")
        return None if row[0] is None else int(row[0])

    def latest_snapshot(self) -> EngineSnapshot | None:
        row = self._one(
            "SELECT log_seq, event_seq, taken_at, engine, metrics FROM engine_snapshots "
            "ORDER BY log_seq DESC LIMIT 1"
        )
        if row is None:
            return None
        return EngineSnapshot(
            log_seq=row[0], event_seq=row[1], taken_at=row[2], engine=bytes(row[3]), metrics=bytes(row[4])
        )


_TABLES = frozenset(
    {
        "customers",
        "identities",
        "conversations",
        "interactions",
        "messages",
        "notes",
        "attachments",
        "customer_merges",
        "events",
        "engine_log",
        "engine_snapshots",
    }
)


_NOTHING_KEPT = Kept(0)


class Writer(Reader):
    """Writes inside one transaction: all of it lands, or none of it."""

    def __init__(self, store: SqlStore, cursor: Any) -> None:
        super().__init__(store, cursor)
        self._sealed_seq: int | None = None
        # A write sees what it has not committed yet: nothing it reads is kept.
        self._kept = _NOTHING_KEPT

    def _seal_number(self) -> int:
        """The number this transaction's writes of interaction records carry
        (``sealed_seq``, schema version 10): taken once from the counter, whose
        row stays locked until the transaction ends, so it is higher than any
        number committed before and lower than any committed after."""
        if self._sealed_seq is None:
            row = self._one("UPDATE seal_counter SET value = value + 1 WHERE id = 1 RETURNING value")
            self._sealed_seq = int(row[0])
        return self._sealed_seq

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cur.executemany(self._q(sql), rows)

    def add_customers(self, customers: Sequence[Customer]) -> None:
        self._many(
            "INSERT INTO customers (id, created_at, display_name, attributes, merged_into) "
            "VALUES (?, ?, ?, ?, ?)",
            [
                (c.id, c.created_at, c.display_name, _json.encode(c.attributes).decode(), c.merged_into)
                for c in customers
            ],
        )

    def set_customer_attributes(self, customer_id: str, attributes: dict[str, Any]) -> None:
        self._cur.execute(
            self._q("UPDATE customers SET attributes = ? WHERE id = ?"),
            (_json.encode(attributes).decode(), customer_id),
        )

    def add_identities(self, identities: Sequence[IdentityRecord]) -> None:
        self._many(
            "INSERT INTO identities (kind, value, customer_id, created_at) VALUES (?, ?, ?, ?)",
            [(i.kind, i.value, i.customer_id, i.created_at) for i in identities],
        )

    def add_conversations(self, conversations: Sequence[Conversation]) -> None:
        self._many(
            "INSERT INTO conversations (id, customer_id, opened_at, last_activity_at, closed_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [(c.id, c.customer_id, c.opened_at, c.last_activity_at, c.closed_at) for c in conversations],
        )

    def touch_conversations(self, activity: dict[str, float]) -> None:
        self._many(
            "UPDATE conversations SET last_activity_at = ? WHERE id = ? AND last_activity_at < ?",
            [(at, cid, at) for cid, at in activity.items()],
        )

    def close_conversation(self, conversation_id: str, at: float) -> None:
        self._cur.execute(
            self._q("UPDATE conversations SET closed_at = ? WHERE id = ? AND closed_at IS NULL"),
            (at, conversation_id),
        )

    def add_interactions(self, interactions: Sequence[Interaction]) -> None:
        sealed = self._seal_number() if any(i.status in FINISHED for i in interactions) else None
        self._many(
            f"INSERT INTO interactions ({_INTERACTION_COLUMNS}, record, sealed_seq) VALUES ({_in(24)})",
            [
                (
                    i.id,
                    i.conversation_id,
                    i.customer_id,
                    i.channel,
                    i.direction,
                    i.queue,
                    i.status,
                    i.priority,
                    i.agent,
                    i.offer,
                    i.created_at,
                    i.queued_at,
                    i.offered_at,
                    i.answered_at,
                    i.ended_at,
                    i.wrap_up_ended_at,
                    i.disposition,
                    i.outcome,
                    i.subject,
                    _json.encode(i.attributes).decode(),
                    i.held_at,
                    i.hold_seconds,
                    # Notes come after their interaction, and reseal it.
                    _seal(i, ()),
                    sealed if i.status in FINISHED else None,
                )
                for i in interactions
            ],
        )

    def _reseal_interactions(self, ids: Iterable[str]) -> None:
        """Rewrite the record of each of these interactions that is finished,
        after one of its notes was added or moved, or for a migration (a
        change to the row itself goes through ``patch_interactions``, which
        writes the record in the same UPDATE)."""
        finished = [i for i in self.interactions_by_id(ids).values() if i.status in FINISHED]
        if not finished:
            return
        notes = self._notes_of([i.id for i in finished])
        sealed = self._seal_number()
        self._many(
            "UPDATE interactions SET record = ?, sealed_seq = ? WHERE id = ?",
            [(_seal(i, notes.get(i.id, ())), sealed, i.id) for i in finished],
        )

    def patch_interactions(self, patches: Sequence[InteractionPatch]) -> None:
        """Apply each patch, setting only the columns it names, so that an
        UPDATE touches only the indexes over those columns. A patch that may
        leave its interaction finished reads the row first and writes the
        record in the same UPDATE."""
        self.patch_interaction_fields([(p.id, _patch_fields(p)) for p in patches])

    def patch_interaction_fields(self, patches: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """``patch_interactions`` for patches given as an interaction's id and
        the columns to set, column -> value (None empties the column; a first
        time, ``queued_at``, ``offered_at`` or ``answered_at``, keeps the
        value it had)."""
        if len({iid for iid, _ in patches}) < len(patches):
            # Patches of one row apply in order; grouped statements would not keep it.
            for patch in patches:
                self.patch_interaction_fields([patch])
            return
        # Each patch's SET clauses, which also checks its columns before anything is read.
        clauses_of = [_patch_clauses(tuple(fields)) for _, fields in patches]
        may_finish = [iid for iid, fields in patches if fields.get("status") in _MAY_FINISH]
        current = self.interactions_by_id(may_finish) if may_finish else {}
        finished: dict[str, Interaction] = {}
        for iid, fields in patches:
            before = current.get(iid)
            if before is not None:
                after = current[iid] = msgspec.structs.replace(before, **_patch_changes(fields, before))
                if after.status in FINISHED:
                    finished[iid] = after
        notes = self._notes_of(list(finished)) if finished else {}
        groups: dict[tuple[str, bool], list[list[Any]]] = {}
        for (iid, fields), clauses in zip(patches, clauses_of, strict=True):
            params = list(fields.values())
            after_row = finished.get(iid)
            if after_row is not None:
                # A finished interaction's row carries its record, with its notes.
                params.extend((_seal(after_row, notes.get(iid, ())), self._seal_number()))
            elif not clauses:
                continue
            params.append(iid)
            groups.setdefault((clauses, after_row is not None), []).append(params)
        for (clauses, sealed), rows in groups.items():
            sets = ", ".join(c for c in (clauses, "record = ?, sealed_seq = ?" if sealed else "") if c)
            self._many(f"UPDATE interactions SET {sets} WHERE id = ?", rows)

    def end_wrap_up(self, agent: str, at: float) -> list[tuple[str, str, str, float]]:
        """Mark the agent's completed interactions still in wrap-up as wrapped
        up at ``at``; returns their (id, queue, channel, ended_at)."""
        rows = [
            (r[0], r[1], r[2], r[3])
            for r in self._all(
                "SELECT id, queue, channel, ended_at FROM interactions "
                "WHERE agent = ? AND status = 'completed' "
                "AND wrap_up_ended_at IS NULL",
                (agent,),
            )
        ]
        self.patch_interactions([InteractionPatch(id=r[0], wrap_up_ended_at=at) for r in rows])
        return rows

    def add_messages(self, messages: Sequence[Message]) -> None:
        self._many(
            f"INSERT INTO messages ({_MESSAGE_COLUMNS}, record) VALUES ({_in(9)})",
            [
                (
                    m.id,
                    m.interaction_id,
                    m.conversation_id,
                    m.at,
                    m.direction,
                    m.author,
                    m.body,
                    m.content_type,
                    _msgpack.encode(m),
                )
                for m in messages
            ],
        )

    def add_attachments(self, attachments: Sequence[Attachment]) -> None:
        self._many(
            "INSERT INTO attachments (id, message_id, filename, content_type, size, sha256, location) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (a.id, a.message_id, a.filename, a.content_type, a.size, a.sha256, a.location)
                for a in attachments
            ],
        )

    def add_notes(self, notes: Sequence[Note]) -> None:
        self._many(
            f"INSERT INTO notes ({_NOTE_COLUMNS}, record) VALUES ({_in(7)})",
            [
                (n.id, n.customer_id, n.interaction_id, n.author, n.at, n.body, _msgpack.encode(n))
                for n in notes
            ],
        )
        # A finished interaction's record holds its notes.
        self._reseal_interactions(n.interaction_id for n in notes if n.interaction_id is not None)

    def _reseal_rows(self, kind: _Sealed[Any], ids: Sequence[str]) -> list[Any]:
        """Rewrite the record of each of these notes or messages from its row
        (after an UPDATE of the row); returns them."""
        built = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = [
                kind.build(r)
                for r in self._all(
                    f"SELECT {kind.columns} FROM {kind.table} WHERE id IN ({_in(len(chunk))})", chunk
                )
            ]
            self._many(
                f"UPDATE {kind.table} SET record = ? WHERE id = ?", [(_msgpack.encode(r), r.id) for r in rows]
            )
            built.extend(rows)
        return built

    def _reseal_moved(self, interactions: Sequence[str], notes: Sequence[str]) -> None:
        """Rewrite the records of interactions and notes a merge (or its undo)
        moved: the notes first, then the interactions, whose records hold
        their notes (those of a moved note's interaction too)."""
        moved = self._reseal_rows(_NOTES, notes)
        self._reseal_interactions(
            [*interactions, *(n.interaction_id for n in moved if n.interaction_id is not None)]
        )

    def reseal_all(self, table: str) -> None:
        """Write the records a migration asks for, 500 rows at a time: every
        finished interaction's, and every note's or message's that has none."""
        reseal: Callable[[list[str]], object]
        if table == "interactions":
            where, params = f"status IN ({_in(len(FINISHED))})", sorted(FINISHED)
            reseal = self._reseal_interactions
        else:
            kind: _Sealed[Any] = _NOTES if table == "notes" else _MESSAGES
            where, params = "record IS NULL", []
            reseal = functools.partial(self._reseal_rows, kind)
        after = ""
        while ids := [
            r[0]
            for r in self._all(
                f"SELECT id FROM {table} WHERE id > ? AND {where} ORDER BY id LIMIT 500", [after, *params]
            )
        ]:
            reseal(ids)
            after = ids[-1]

    def append_events(self, events: Sequence[StoredEvent]) -> None:
        """Store events, in seq order, as one page of the log (one row, however many events)."""
        ordered = sorted(events, key=lambda e: e.seq)
        self.append_event_rows([(e.seq, e.type, e.time, e.subject, e.data) for e in ordered])

    def append_event_rows(self, rows: Sequence[tuple[int, str, float, str, bytes]]) -> None:
        """Store events given as (seq, type, time, subject, data), their seqs
        strictly increasing, as one page of the log."""
        if not rows:
            return
        first, last = rows[0][0], rows[-1][0]
        seqs = [row[0] for row in rows]
        if not all(map(operator.lt, seqs, seqs[1:])):
            raise StoreError(f"events: seq {first} to {last} repeats a seq; each is written once")
        if self._one(
            "SELECT 1 FROM event_pages WHERE first_seq <= ? AND last_seq >= ? "
            "UNION ALL SELECT 1 FROM events WHERE seq BETWEEN ? AND ?",
            (last, first, first, last),
        ):
            raise StoreError(
                f"events: seq {first} to {last} overlaps events already stored; each is written once"
            )
        self._cur.execute(
            self._q("INSERT INTO event_pages (first_seq, last_seq, events) VALUES (?, ?, ?)"),
            (first, last, _msgpack.encode(rows)),
        )

    def append_log(self, entry: LogEntry) -> None:
        self._cur.execute(
            self._q("INSERT INTO engine_log (seq, now, inputs, metrics) VALUES (?, ?, ?, ?)"),
            (entry.seq, entry.now, entry.inputs, entry.metrics),
        )

    def save_snapshot(self, snapshot: EngineSnapshot, *, keep: int = 2) -> None:
        """Store a snapshot and drop all but the newest ``keep``."""
        self._cur.execute(
            self._q(
                "INSERT INTO engine_snapshots (log_seq, event_seq, taken_at, engine, metrics) "
                "VALUES (?, ?, ?, ?, ?)"
            ),
            (snapshot.log_seq, snapshot.event_seq, snapshot.taken_at, snapshot.engine, snapshot.metrics),
        )
        kept = self._all(f"SELECT log_seq FROM engine_snapshots ORDER BY log_seq DESC LIMIT {int(keep)}")
        if len(kept) == keep:
            self._cur.execute(self._q("DELETE FROM engine_snapshots WHERE log_seq < ?"), (kept[-1][0],))

    def save_config(self, config: EngineConfig) -> None:
        """Replace the stored configuration with this one."""
        for table in ("agent_skills", "config_agents", "config_queues", "config_channels", "config_settings"):
            self._cur.execute(f"DELETE FROM {table}")
        self._many(
            "INSERT INTO config_channels (name, body) VALUES (?, ?)",
            [(c.name, _json.encode(c).decode()) for c in config.channels],
        )
        self._many(
            "INSERT INTO config_queues (name, body) VALUES (?, ?)",
            [(q.name, _json.encode(q).decode()) for q in config.queues],
        )
        self._many(
            "INSERT INTO config_agents (id, body) VALUES (?, ?)",
            [(a.id, _json.encode(a).decode()) for a in config.agents],
        )
        self._many(
            "INSERT INTO agent_skills (agent, skill, level) VALUES (?, ?, ?)",
            [(a.id, skill, level) for a in config.agents for skill, level in a.skills.items()],
        )
        self._many(
            "INSERT INTO config_settings (key, value) VALUES (?, ?)",
            [
                ("seed", str(config.seed)),
                ("max_missed_offers", str(config.max_missed_offers)),
                (
                    "order",
                    _json.encode(
                        {
                            "channels": [c.name for c in config.channels],
                            "queues": [q.name for q in config.queues],
                            "agents": [a.id for a in config.agents],
                        }
                    ).decode(),
                ),
            ],
        )

    # ----- merges -----

    # ----- who may use the server (schema version 7) -----

    def put_delivery(self, delivery: Delivery) -> None:
        """Insert or replace a message's delivery (the caller keeps it moving forward)."""
        self._cur.execute(self._q("DELETE FROM deliveries WHERE message_id = ?"), (delivery.message_id,))
        self._cur.execute(
            self._q(
                "INSERT INTO deliveries (message_id, channel, status, provider_id, detail, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)"
            ),
            (
                delivery.message_id,
                delivery.channel,
                delivery.status,
                delivery.provider_id,
                delivery.detail,
                delivery.updated_at,
            ),
        )

    def save_channel_cursor(self, name: str, seq: int) -> None:
        self._cur.execute(self._q("DELETE FROM channel_cursors WHERE name = ?"), (name,))
        self._cur.execute(self._q("INSERT INTO channel_cursors (name, seq) VALUES (?, ?)"), (name, seq))

    def add_user(self, user: User, password_hash: str) -> None:
        if self.credentials(user.name) is not None:
            raise DuplicateIdError(f"name: a user {user.name!r} exists already")
        if user.agent is not None:
            row = self._one("SELECT name FROM users WHERE agent = ?", (user.agent,))
            if row is not None:
                raise DuplicateIdError(f"agent: agent {user.agent!r} is already the user {row[0]!r}")
        self._cur.execute(
            self._q(f"INSERT INTO users ({_USER_COLUMNS}, password_hash) VALUES (?, ?, ?, ?, ?, ?)"),
            (user.name, user.role, user.agent, user.created_at, user.disabled_at, password_hash),
        )

    def set_password(self, name: str, password_hash: str, at: float) -> None:
        """A new password; every session of the user ends."""
        self.user(name)
        self._cur.execute(self._q("UPDATE users SET password_hash = ? WHERE name = ?"), (password_hash, name))
        self.end_sessions(name, at)

    def disable_user(self, name: str, at: float) -> None:
        """The user can no longer log in; every session ends."""
        self.user(name)
        self._cur.execute(
            self._q("UPDATE users SET disabled_at = ? WHERE name = ? AND disabled_at IS NULL"), (at, name)
        )
        self.end_sessions(name, at)

    def add_session(self, token_hash: str, session: Session) -> None:
        self._cur.execute(
            self._q(
                "INSERT INTO sessions (token_hash, user_name, created_at, expires_at, ended_at) "
                "VALUES (?, ?, ?, ?, ?)"
            ),
            (token_hash, session.user, session.created_at, session.expires_at, session.ended_at),
        )

    def end_session(self, token_hash: str, at: float) -> None:
        self._cur.execute(
            self._q("UPDATE sessions SET ended_at = ? WHERE token_hash = ? AND ended_at IS NULL"),
            (at, token_hash),
        )

    def end_sessions(self, name: str, at: float) -> None:
        self._cur.execute(
            self._q("UPDATE sessions SET ended_at = ? WHERE user_name = ? AND ended_at IS NULL"), (at, name)
        )

    def add_api_token(self, token_hash: str, token: ApiToken) -> None:
        self._cur.execute(
            self._q(f"INSERT INTO api_tokens ({_TOKEN_COLUMNS}, token_hash) VALUES (?, ?, ?, ?, ?, ?, ?)"),
            (
                token.id,
                token.name,
                " ".join(token.scopes),
                token.created_at,
                token.expires_at,
                token.revoked_at,
                token_hash,
            ),
        )

    def revoke_api_token(self, token_id: str, at: float) -> None:
        if self._one("SELECT id FROM api_tokens WHERE id = ?", (token_id,)) is None:
            raise UnknownIdError(f"token: no API token {token_id!r}")
        self._cur.execute(
            self._q("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"),
            (at, token_id),
        )

    def merge_customers(self, survivor: str, merged: str, at: float, *, merge_id: str | None = None) -> Merge:
        """Fold ``merged`` into ``survivor``: identities, conversations,
        interactions and notes move; the merge is recorded for undo."""
        if survivor == merged:
            raise InvalidInputError(f"merged: cannot merge customer {merged!r} into itself")
        keep = self.customer(survivor)
        gone = self.customer(merged)
        if keep.merged_into is not None:
            raise InvalidInputError(f"survivor: customer {survivor!r} is merged into {keep.merged_into!r}")
        if gone.merged_into is not None:
            raise InvalidInputError(
                f"merged: customer {merged!r} is already merged into {gone.merged_into!r}"
            )
        identities = [
            (r[0], r[1])
            for r in self._all(
                "SELECT kind, value FROM identities WHERE customer_id = ? ORDER BY kind, value", (merged,)
            )
        ]
        moved: dict[str, list[Any]] = {"identities": [list(i) for i in identities]}
        for table in ("conversations", "interactions", "notes"):
            ids = [
                r[0]
                for r in self._all(f"SELECT id FROM {table} WHERE customer_id = ? ORDER BY id", (merged,))
            ]
            moved[table] = ids
            self._cur.execute(
                self._q(f"UPDATE {table} SET customer_id = ? WHERE customer_id = ?"), (survivor, merged)
            )
        self._reseal_moved(moved["interactions"], moved["notes"])
        self._cur.execute(
            self._q("UPDATE identities SET customer_id = ? WHERE customer_id = ?"), (survivor, merged)
        )
        self._cur.execute(self._q("UPDATE customers SET merged_into = ? WHERE id = ?"), (survivor, merged))
        merge_id = merge_id or new_id()
        self._cur.execute(
            self._q(
                "INSERT INTO customer_merges (id, survivor, merged, at, moved, undone_at) "
                "VALUES (?, ?, ?, ?, ?, NULL)"
            ),
            (merge_id, survivor, merged, at, _json.encode(moved).decode()),
        )
        return self.merge(merge_id)

    def undo_merge(self, merge_id: str, at: float) -> Merge:
        """Give the merged customer back what was theirs at the merge. What
        arrived for the survivor since stays with the survivor."""
        merge = self.merge(merge_id)
        if merge.undone_at is not None:
            raise InvalidInputError(f"merge: merge {merge_id!r} was already undone")
        survivor = self.customer(merge.survivor)
        if survivor.merged_into is not None:
            raise InvalidInputError(
                f"merge: customer {merge.survivor!r} has since been merged into {survivor.merged_into!r}; "
                "undo that merge first"
            )
        self._many(
            "UPDATE identities SET customer_id = ? WHERE kind = ? AND value = ? AND customer_id = ?",
            [(merge.merged, k, v, merge.survivor) for k, v in merge.identities],
        )
        for table, ids in (
            ("conversations", merge.conversations),
            ("interactions", merge.interactions),
            ("notes", merge.notes),
        ):
            self._many(
                f"UPDATE {table} SET customer_id = ? WHERE id = ? AND customer_id = ?",
                [(merge.merged, i, merge.survivor) for i in ids],
            )
        self._reseal_moved(merge.interactions, merge.notes)
        self._cur.execute(self._q("UPDATE customers SET merged_into = NULL WHERE id = ?"), (merge.merged,))
        self._cur.execute(self._q("UPDATE customer_merges SET undone_at = ? WHERE id = ?"), (at, merge_id))
        return self.merge(merge_id)


class SqlStore(ABC):
    """Storage behind one interface: the runtime writes from one thread and
    reads from any. Open with :func:`omniroute.store.open_store`."""

    blob_type: str = "BLOB"

    # An aggregate of the records of an ordered subquery's rows, in its
    # order, as one value; None where reading them row by row is faster
    # (see SqliteStore).
    concat_records: str | None = None

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()
        self._connections: list[tuple[threading.Thread, Connection]] = []
        self._lock = threading.Lock()
        self._closed = False
        self._sql_cache: dict[str, str] = {}
        # Long timelines and transcripts decoded once, for the next context read.
        self.kept = Kept()

    # ----- dialect -----

    @abstractmethod
    def _connect(self) -> Connection: ...

    def _prepare_sql(self, sql: str) -> str:
        return sql

    def _cursor(self, conn: Connection) -> Any:
        return conn.cursor()

    def sql(self, sql: str) -> str:
        cached = self._sql_cache.get(sql)
        if cached is None:
            cached = self._sql_cache[sql] = self._prepare_sql(sql)
        return cached

    def _begin(self, cur: Any) -> None:
        cur.execute("BEGIN")

    def _redacted(self) -> str:
        """The URL, as error messages show it (without a password)."""
        return self.url

    @abstractmethod
    def acquire_writer(self) -> None:
        """Make this the only writer of the store; raise StoreError if another runtime holds it."""

    # ----- connections -----

    def _connection(self) -> Connection:
        if self._closed:
            raise StoreError(f"store {self._redacted()}: closed")
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                # Worker pools end idle threads: close what those left open.
                alive = []
                for thread, other in self._connections:
                    if thread.is_alive():
                        alive.append((thread, other))
                    else:
                        with contextlib.suppress(Exception):
                            other.close()
                self._connections = [*alive, (threading.current_thread(), conn)]
        return conn

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for _, conn in self._connections:
                # Closing other threads' connections is best effort.
                with contextlib.suppress(Exception):
                    conn.close()
            self._connections.clear()
        self._local = threading.local()

    # Whether a read runs in a transaction of its own: on SQLite that is its
    # snapshot; see PostgresStore.
    reads_in_transaction = True

    @contextmanager
    def read(self) -> Iterator[Reader]:
        cur = self._cursor(self._connection())
        if not self.reads_in_transaction:
            yield Reader(self, cur)
            return
        self._begin(cur)
        try:
            yield Reader(self, cur)
        finally:
            cur.execute("ROLLBACK")

    @contextmanager
    def write(self) -> Iterator[Writer]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self._transaction() as cur:
            yield Writer(self, cur)

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """A write transaction on a cursor of this thread's connection."""
        cur = self._cursor(self._connection())
        self._begin_write(cur)
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")
        if getattr(cur, "statusmessage", None) == "ROLLBACK":
            # PostgreSQL answers COMMIT with a rollback once a statement in the
            # transaction failed (its error caught inside the block).
            raise StoreError(
                f"store {self._redacted()}: a statement in this transaction failed; none of it was stored"
            )
        self._committed()

    def _begin_write(self, cur: Any) -> None:
        self._begin(cur)

    def _committed(self) -> None:  # noqa: B027 (a hook: most stores need nothing)
        """Called after each commit of a write transaction (see SqliteStore)."""

    # ----- schema -----

    def schema_version(self) -> int:
        conn = self._connection()
        cur = conn.cursor()
        if not self._has_table(cur, "omniroute_schema"):
            return 0
        cur.execute("SELECT MAX(version) FROM omniroute_schema")
        row = cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    @abstractmethod
    def _has_table(self, cur: Any, name: str) -> bool: ...

    def migrate(self, target: int | None = None) -> int:
        """Apply the migrations up to ``target`` (default: the latest); returns the version."""
        target = latest_version() if target is None else target
        if not 0 <= target <= latest_version():
            raise InvalidInputError(f"target: schema version {target} does not exist (0..{latest_version()})")
        with self._transaction() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS omniroute_schema (version BIGINT PRIMARY KEY, "
                "applied_at DOUBLE PRECISION NOT NULL, description TEXT NOT NULL)"
            )
        current = self.schema_version()
        if current > latest_version():
            raise StoreError(
                f"store {self._redacted()}: schema version {current} is newer than this omniroute knows "
                f"({latest_version()}); upgrade omniroute"
            )
        pending = [m for m in MIGRATIONS if current < m.version <= target]
        if not pending:
            return current
        # One transaction for the whole upgrade (both databases change their
        # schema transactionally): it happens entirely or not at all. Records
        # are resealed last, by today's code, which reads the columns of the
        # latest version: an upgrade that stops short of it clears them, to
        # be read column by column, as rows without a record always are.
        with self._transaction() as cur:
            for migration in pending:
                for statement in migration.statements:
                    cur.execute(statement.format(blob=self.blob_type))
                cur.execute(
                    self.sql(
                        "INSERT INTO omniroute_schema (version, applied_at, description) VALUES (?, ?, ?)"
                    ),
                    (migration.version, time.time(), migration.description),
                )
            resealed = list(dict.fromkeys(t for m in pending for t in m.reseal))
            for table in resealed:
                if target == latest_version():
                    Writer(self, cur).reseal_all(table)
                else:
                    # Records of an older shape would be read as today's: without
                    # one, a row is read column by column (correct, only slower).
                    numbered = table == "interactions" and target >= 10
                    cur.execute(
                        f"UPDATE {table} SET record = NULL{', sealed_seq = NULL' if numbered else ''}"
                    )
        return target

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
