"""The live engine: the routing core and the metrics kept in time, on durable storage, behind one API."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Literal, TypeVar

import anyio
import msgspec

from omniroute.engine import Engine
from omniroute.errors import (
    InvalidInputError,
    InvalidTransitionError,
    OmnirouteError,
    RuntimeClosedError,
    UnknownIdError,
    error_for_kind,
    from_validation,
    refuse_nul,
)
from omniroute.identity import find_identities, normalize
from omniroute.ids import new_id
from omniroute.metrics import (
    Disposition,
    Hold,
    IntervalStats,
    MetricEvent,
    Metrics,
    MetricsConfig,
    MetricsSnapshot,
    Talk,
    WrapUp,
)
from omniroute.model import (
    Accept,
    AddTask,
    AgentLoad,
    AgentState,
    AgentStateChanged,
    AttributeValue,
    Cancel,
    Complete,
    CustomerActivity,
    EndWrapUp,
    EngineConfig,
    Explanation,
    Input,
    NewTask,
    OfferMade,
    OfferRejected,
    OfferRescinded,
    OfferTimedOut,
    Output,
    Reject,
    RemoveAgent,
    SetAgentState,
    SetPriority,
    TaskAssigned,
    TaskCancelled,
    TaskCompleted,
    TaskQueued,
    TaskTransferred,
    Transfer,
    UpsertAgent,
    UpsertChannel,
    UpsertQueue,
)
from omniroute.runtime.api import Acknowledgement, MessageIn, NewInteraction, RuntimeSettings
from omniroute.runtime.bus import EventBus, Subscription
from omniroute.runtime.clock import Clock, SystemClock
from omniroute.runtime.events import (
    ConfigApplied,
    ConsultSent,
    ConversationClosed,
    ConversationOpened,
    CustomerCreated,
    CustomersMerged,
    CustomerUpdated,
    DeliveryUpdated,
    Envelope,
    EventData,
    IdentityAdded,
    InteractionCreated,
    InteractionUpdated,
    MergeUndone,
    MessageAdded,
    NoteAdded,
    TaskHeld,
    TaskResumed,
    encode_data,
    envelope_of,
    iso_time,
)
from omniroute.store import (
    Attachment,
    Conversation,
    ConversationDetail,
    Customer,
    CustomerContext,
    Delivery,
    EngineSnapshot,
    IdentityRecord,
    Interaction,
    Kept,
    LogEntry,
    Merge,
    Message,
    Note,
    Reader,
    SqlStore,
    Writer,
)
from omniroute.store.records import DELIVERY_ORDER, DeliveryStatus
from omniroute.store.sql import StoreError

__all__ = ["Runtime", "RuntimeClosedError"]

_T = TypeVar("_T")

_encoder = msgspec.msgpack.Encoder()


def _tag(value: msgspec.Struct) -> str:
    tag = type(value).__struct_config__.tag
    assert isinstance(tag, str)
    return tag


@dataclass(slots=True, eq=False)
class _Command:
    """One call waiting for the next batch."""

    kind: str
    args: dict[str, Any]
    result: Any = None
    error: BaseException | None = None
    # Whether a refusal by the engine fails the call (a message still lands
    # even when the engine has nothing to reactivate).
    engine_required: bool = True


def _stands(command: _Command) -> bool:
    """Whether what a call wrote stands: it was not refused, or the engine's
    refusal does not undo it (a message lands even with nothing to reactivate)."""
    return command.error is None or not command.engine_required


def _any_stands(owners: list[_Command] | None) -> bool:
    """Whether a row or an event made in a batch stands: it stands with any
    call that made or used it (None: whatever the calls' outcome)."""
    return owners is None or any(_stands(c) for c in owners)


@dataclass(slots=True)
class _Pending:
    """An interaction's changes within one batch, folded in event order."""

    fields: dict[str, Any] = field(default_factory=dict)

    def set(self, **values: Any) -> None:
        self.fields.update(values)

    def first(self, name: str, value: float) -> None:
        self.fields.setdefault(name, value)


@dataclass(slots=True)
class _Hold:
    """A live interaction's holds: since when it is on hold (None: not now),
    the seconds of the holds that ended, and where to count them."""

    since: float | None
    ended: float
    agent: str
    queue: str
    channel: str


@dataclass(slots=True, eq=False)
class _MergeOp:
    """A merge or an undo decided in a batch, carried out once the batch's
    rows are written (they may name customers the batch creates) and only if
    a call that stands made or relied on it."""

    kind: Literal["merge", "undo"]
    id: str
    survivor: str
    merged: str
    owners: list[_Command]
    command: _Command | None = None


@dataclass(slots=True)
class _Batch:
    now: float
    inputs: list[Input] = field(default_factory=list)
    owners: list[_Command] = field(default_factory=list)
    # Rows made in this batch, each with the calls it stands or falls with
    # (a list that grows as later calls in the batch use the row).
    customers: dict[str, tuple[Customer, list[_Command]]] = field(default_factory=dict)
    identities: dict[tuple[str, str], tuple[IdentityRecord, list[_Command]]] = field(default_factory=dict)
    conversations: dict[str, tuple[Conversation, list[_Command]]] = field(default_factory=dict)
    touched: list[tuple[str, float, _Command]] = field(default_factory=list)
    interactions: dict[str, tuple[_Command, Interaction]] = field(default_factory=dict)
    stored_interactions: dict[str, Interaction] = field(default_factory=dict)
    messages: list[tuple[_Command, Message, list[Attachment]]] = field(default_factory=list)
    # The same messages by id, with the call that made each (retried deliveries look here).
    message_makers: dict[str, tuple[_Command, Message]] = field(default_factory=dict)
    notes: list[tuple[Note, _Command]] = field(default_factory=list)
    merges: list[_MergeOp] = field(default_factory=list)
    # Calls about an interaction another call of this batch creates: they fall with it.
    depends: list[tuple[_Command, _Command]] = field(default_factory=list)
    # What a call does once the engine has accepted it. The batch is passed
    # in, not captured: a closure over the batch, held by the batch, would be
    # a reference cycle, and every batch's objects garbage for the cycle
    # collector instead of freed when the batch ends.
    on_stand: list[tuple[_Command, Callable[[_Batch], None]]] = field(default_factory=list)
    # What happened, each with the calls it stands or falls with (None: it
    # stands whatever the engine says).
    events: list[tuple[EventData, list[_Command] | None]] = field(default_factory=list)
    patches: dict[str, _Pending] = field(default_factory=dict)
    metric_events: list[MetricEvent] = field(default_factory=list)
    # Identities whose owner this batch changed (an undone merge gives them back).
    identity_owner: dict[tuple[str, str], str] = field(default_factory=dict)
    # Each customer's open conversation as this batch has settled it, and
    # the open conversations read ahead for the customers known by identity.
    open_conversations: dict[str, Conversation] = field(default_factory=dict)
    stored_conversations: dict[str, Conversation | None] = field(default_factory=dict)
    last_agent: dict[str, str | None] = field(default_factory=dict)
    # Merges made in this batch (by the merged customer), and customers whose
    # stored merge this batch undid.
    merged_into: dict[str, _MergeOp] = field(default_factory=dict)
    unmerged: set[str] = field(default_factory=set)
    cancel_status: dict[str, str] = field(default_factory=dict)
    wrapping: dict[str, list[tuple[str, str, str, float]]] = field(default_factory=dict)

    def live(self, customer: str, user: _Command | None) -> str:
        """The record a customer is after this batch's merges; ``user`` relies
        on those merges, so they stand with it."""
        while (op := self.merged_into.get(customer)) is not None:
            if user is not None:
                op.owners.append(user)
            customer = op.survivor
        return customer

    def emit(self, event: EventData, owners: list[_Command] | None = None) -> None:
        self.events.append((event, owners))

    def add_input(self, command: _Command, event: Input) -> None:
        self.inputs.append(event)
        self.owners.append(command)

    def patch(self, interaction: str) -> _Pending:
        pending = self.patches.get(interaction)
        if pending is None:
            pending = self.patches[interaction] = _Pending()
        return pending


class Runtime:
    """Owns the routing engine and the metrics, keeps their time, stores
    everything before acknowledging it, and publishes every change.

    Use ``async with Runtime.open(store, config) as runtime``; calls are
    batched: whatever arrives while a batch is being stored goes into the
    next one, so throughput grows with load while each call still waits for
    its own commit.
    """

    def __init__(
        self,
        store: SqlStore,
        config: EngineConfig | None = None,
        *,
        settings: RuntimeSettings | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or RuntimeSettings()
        store.kept = Kept(self.settings.context_kept_entries)
        self.clock: Clock = clock or SystemClock()
        self._initial_config = config
        self._config: EngineConfig | None = None
        self._engine: Engine | None = None
        self._metrics: Metrics | None = None
        self._log_seq = 0
        self._event_seq = 0
        # Open offers (offer → interaction, agent) and the open offer of each
        # interaction (the engine offers a task to one agent at a time).
        self._offers: dict[int, tuple[str, str]] = {}
        self._offer_of: dict[str, int] = {}
        # When each unfinished interaction was first answered (for talk time).
        self._answered_at: dict[str, float] = {}
        # Live interactions that are or were on hold.
        self._holds: dict[str, _Hold] = {}
        self._wrap_up_queues: set[str] = set()
        self._channels: set[str] = set()
        self._queues: set[str] = set()
        self._agents: set[str] = set()
        self._writer = anyio.CapacityLimiter(1)
        self._readers = anyio.CapacityLimiter(4)
        # Calls waiting for a batch: up to max_batch per batch, each batch with
        # the event its callers wait on.
        self._queue: deque[tuple[list[_Command], anyio.Event]] = deque()
        self._queued = 0
        self._running = False
        self._work: anyio.Event
        self._room: anyio.Event
        self._next_timer: float | None = None
        self._timer_changed = anyio.Event()
        self._closing = False
        self._stopped = False
        self._batches_since_snapshot = 0
        self._snapshot_at = 0.0
        self._floor = 0.0
        self.bus = EventBus(self._read_log, default_buffer=self.settings.subscriber_buffer)
        self.recovered_batches = 0
        self.recovery_seconds = 0.0

    # ----- lifecycle -----

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        store: SqlStore,
        config: EngineConfig | None = None,
        *,
        settings: RuntimeSettings | None = None,
        clock: Clock | None = None,
    ) -> AsyncIterator[Runtime]:
        """Start a runtime on ``store``: rebuild the engine from the latest
        snapshot and the log since, then serve until the block ends. The
        configuration seeds an empty store; a store that has one keeps it
        (change it with :meth:`apply_config`)."""
        runtime = cls(store, config, settings=settings, clock=clock)
        try:
            await anyio.to_thread.run_sync(store.acquire_writer, limiter=runtime._writer)
            await anyio.to_thread.run_sync(runtime._recover, limiter=runtime._writer)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(store.close)
            raise
        failed: Exception | None = None
        async with anyio.create_task_group() as tg:
            runtime._work = anyio.Event()
            runtime._room = anyio.Event()
            runtime._running = True
            tg.start_soon(runtime._batcher)
            tg.start_soon(runtime._timer_loop)
            try:
                yield runtime
            except Exception as e:
                # Raised as it is below, not wrapped in the task group's ExceptionGroup.
                failed = e
            finally:
                with anyio.CancelScope(shield=True):
                    await runtime._shutdown()
                tg.cancel_scope.cancel()
        if failed is not None:
            raise failed

    async def _shutdown(self) -> None:
        """Stop taking calls, finish those taken, snapshot, close the store."""
        self._closing = True
        self._room.set()
        # Behind every call already taken.
        await self._enqueue(_Command("stop", {}))
        if self._engine is not None:
            await anyio.to_thread.run_sync(self._take_snapshot, limiter=self._writer)
        self.bus.close()
        await anyio.to_thread.run_sync(self.store.close, limiter=self._writer)
        self._stopped = True

    # ----- recovery -----

    def _recover(self) -> None:
        """Rebuild the engine and the metrics from storage: the latest
        snapshot, then every logged batch since, replayed as it was made."""
        started = time.perf_counter()
        replayed = 0
        with self.store.read() as r:
            config = r.config()
            snapshot = r.latest_snapshot()
        if snapshot is None:
            config = config or self._initial_config
            if config is None:
                raise StoreError(f"store {self.store.url}: empty, and no configuration was given to start it")
            now = self.clock.now()
            engine = Engine(config, now=now)
            metrics = Metrics(self.settings.metrics or MetricsConfig.for_engine(config))
            engine.roster(metrics=metrics)
            with self.store.write() as w:
                w.save_config(config)
                w.save_snapshot(
                    EngineSnapshot(
                        log_seq=0,
                        event_seq=0,
                        taken_at=now,
                        engine=engine.snapshot(),
                        metrics=metrics.to_bytes(),
                    )
                )
        else:
            assert config is not None
            engine = Engine.restore(snapshot.engine)
            metrics = Metrics.from_bytes(snapshot.metrics)
            with self.store.read() as r:
                for entry in r.log_after(snapshot.log_seq):
                    engine.process_encoded(entry.now, entry.inputs, metrics=metrics)
                    if entry.metrics is not None:
                        metrics.core.record(entry.metrics)
                    replayed += 1
        engine.check_invariants()
        with self.store.read() as r:
            self._log_seq = r.last_log_seq()
            self._event_seq = r.last_event_seq()
            offered = r.offered()
            answered = r.answered_unfinished()
            holds = r.holds()
        self._engine = engine
        self._metrics = metrics
        self._set_config(config)
        self._offers = {offer: (task, agent) for task, offer, agent in offered}
        self._offer_of = {task: offer for task, offer, _ in offered}
        self._answered_at = answered
        self._holds = {
            i.id: _Hold(i.held_at, i.hold_seconds, i.agent or "", i.queue, i.channel) for i in holds
        }
        self.bus.last_seq = self._event_seq
        self._next_timer = engine.next_timer_at()
        self.recovered_batches = replayed
        self.recovery_seconds = time.perf_counter() - started
        self._snapshot_at = self.clock.now()
        if replayed:
            # Start the next restart from here rather than replaying again.
            self._take_snapshot()

    def _set_config(self, config: EngineConfig) -> None:
        self._config = config
        self._channels = {c.name for c in config.channels}
        self._queues = {q.name for q in config.queues}
        self._agents = {a.id for a in config.agents}
        self._wrap_up_queues = {q.name for q in config.queues if q.wrap_up is not None}

    def _take_snapshot(self) -> None:
        engine, metrics = self._live()
        snapshot = EngineSnapshot(
            log_seq=self._log_seq,
            event_seq=self._event_seq,
            taken_at=self.clock.now(),
            engine=engine.snapshot(),
            metrics=metrics.to_bytes(),
        )
        with self.store.write() as w:
            if w.latest_snapshot_seq() != self._log_seq:
                w.save_snapshot(snapshot)
        self._batches_since_snapshot = 0
        self._snapshot_at = self.clock.now()

    def _now(self, engine: Engine) -> float:
        """The clock, never behind what the engine or the metrics have seen
        (a wall clock can step back)."""
        self._floor = max(self.clock.now(), engine.now, self._floor)
        return self._floor

    def _live(self) -> tuple[Engine, Metrics]:
        if self._stopped or self._engine is None or self._metrics is None:
            raise RuntimeClosedError("the runtime is not running")
        return self._engine, self._metrics

    # ----- the batcher -----

    async def _submit(self, command: _Command) -> Any:
        # Named as the caller named them: a new interaction's fields at the top.
        refuse_nul(command.args, top="new")
        while self._queued >= self.settings.queue_size and not self._closing:
            await self._room.wait()
        if self._closing or not self._running:
            raise RuntimeClosedError("the runtime is shutting down; nothing was applied")
        await self._enqueue(command)
        if command.error is not None:
            raise command.error
        return command.result

    async def _enqueue(self, command: _Command) -> None:
        """Queue a call for the next batch with room, and wait until that batch is stored.

        The calls of one batch share one event (one wake-up per batch, not one
        object per call)."""
        if not self._queue or len(self._queue[-1][0]) >= self.settings.max_batch:
            self._queue.append(([], anyio.Event()))
        calls, done = self._queue[-1]
        calls.append(command)
        self._queued += 1
        self._work.set()
        await done.wait()

    async def _batcher(self) -> None:
        while True:
            while not self._queue:
                self._work = anyio.Event()
                await self._work.wait()
            commands, done = self._queue.popleft()
            self._queued -= len(commands)
            self._room.set()
            self._room = anyio.Event()
            try:
                work: list[_Command] = []
                for c in commands:
                    if c.kind == "config":
                        # A configuration is tried on a copy of the engine as it
                        # stands, so it goes alone, after the calls before it.
                        if work:
                            await self._run(work)
                        await self._run([c])
                        work = []
                    elif c.kind != "stop":
                        work.append(c)
                if work:
                    await self._run(work)
            finally:
                done.set()
            if any(c.kind == "stop" for c in commands):
                return

    async def _run(self, commands: list[_Command]) -> None:
        try:
            envelopes, snapshot_due = await anyio.to_thread.run_sync(
                self._run_batch, commands, limiter=self._writer
            )
        except BaseException as e:
            for c in commands:
                if c.error is None:
                    c.error = (
                        e if isinstance(e, OmnirouteError) else StoreError(f"the batch was not stored: {e!r}")
                    )
            if not isinstance(e, Exception):
                raise
            return
        self.bus.publish(envelopes)
        self._timer_changed.set()
        if snapshot_due:
            await anyio.to_thread.run_sync(self._take_snapshot, limiter=self._writer)

    def _run_batch(self, commands: list[_Command]) -> tuple[list[Envelope], bool]:
        engine, metrics = self._live()
        now = self._now(engine)
        batch = _Batch(now)
        try:
            with self.store.write() as w:
                self._prepare(w, batch, commands)
                raw = _encoder.encode(batch.inputs)
                result = engine.process_encoded(now, raw, metrics=metrics)
                for error in result.errors:
                    owner = batch.owners[error.index]
                    if owner.engine_required and owner.error is None:
                        owner.error = error_for_kind(error.kind, error.message)
                self._settle(batch)
                self._derive(w, batch, result.events)
                extras = None
                if batch.metric_events:
                    extras = _encoder.encode(batch.metric_events)
                    metrics.core.record(extras)
                if batch.inputs or result.events or extras is not None:
                    self._log_seq += 1
                    w.append_log(LogEntry(seq=self._log_seq, now=now, inputs=raw, metrics=extras))
                self._write_rows(w, batch)
                # What a refused call would have caused did not happen.
                happened = [e for e, owners in batch.events if _any_stands(owners)]
                envelopes, rows = self._envelopes(happened, result.events)
                w.append_event_rows(rows)
        except BaseException:
            # The engine may have moved past what storage holds: rebuild
            # both from storage so they agree again.
            self._engine = None
            self._recover()
            raise
        self._next_timer = engine.next_timer_at()
        self._batches_since_snapshot += 1
        due = self._batches_since_snapshot >= self.settings.snapshot_every_batches or (
            now - self._snapshot_at >= self.settings.snapshot_every_seconds
            and self._batches_since_snapshot > 0
        )
        return envelopes, due

    def _envelopes(
        self, runtime_events: list[EventData], outputs: list[Output]
    ) -> tuple[list[Envelope], list[tuple[int, str, float, str, bytes]]]:
        """The batch's events in their envelopes, and as the event log's rows."""
        envelopes = []
        rows = []
        seq = self._event_seq
        for data in [*runtime_events, *outputs]:
            seq += 1
            type_, subject_of = _kind(data)
            subject = subject_of(data)
            at = data.at
            envelopes.append(Envelope(seq=seq, type=type_, time=at, subject=subject, data=data))
            rows.append((seq, type_, at, subject, encode_data(data)))
        self._event_seq = seq
        return envelopes, rows

    # ----- preparing commands: reads and checks, rows kept for after routing -----

    def _prepare(self, w: Writer, batch: _Batch, commands: list[_Command]) -> None:
        # The stored interactions the calls need to look at, read in one go.
        named = [
            c.args["interaction"]
            for c in commands
            if c.kind in ("message", "note") and c.args["interaction"] is not None
        ]
        named += [
            c.args["task"]
            for c in commands
            if (c.kind in ("complete", "transfer") and _reads_task(c)) or c.kind == "hold"
        ]
        if named:
            batch.stored_interactions = w.interactions_by_id(named)
        creates = [c for c in commands if c.kind == "create"]
        if creates:
            self._prepare_creates(w, batch, creates)
        for c in commands:
            if c.kind == "create":
                continue
            try:
                getattr(self, f"_prepare_{c.kind}")(w, batch, c)
            except OmnirouteError as e:
                c.error = e

    def _settle(self, batch: _Batch) -> None:
        """After routing: calls about an interaction whose creation was
        refused fall with it; what accepted calls do once accepted is done."""
        for dependent, creator in batch.depends:
            if not _stands(creator) and dependent.error is None:
                what = (
                    f"interaction: {creator.args['id']!r} was not created"
                    if creator.kind == "create"
                    else "message.id: the call that stored this message first was refused"
                )
                dependent.error = UnknownIdError(f"{what} ({creator.error})")
                dependent.engine_required = True
        for c, then in batch.on_stand:
            if _stands(c):
                then(batch)

    def _prepare_creates(self, w: Writer, batch: _Batch, commands: list[_Command]) -> None:
        # A retried create names its interaction, which may exist already; an
        # id this process made (time-ordered, ``omniroute.ids``) cannot.
        named = [c.args["id"] for c in commands if c.args["new"].id is not None]
        existing = w.interactions_by_id(named) if named else {}
        keys = [key for c in commands for key in c.args["identities"]]
        known = w.find_customers(keys) if keys else {}
        owners = set(known.values())
        found = w.open_conversations(owners)
        batch.stored_conversations = {owner: found.get(owner) for owner in owners}
        for c in commands:
            try:
                self._prepare_create(w, batch, c, existing, known)
            except OmnirouteError as e:
                c.error = e

    def _owner_of(self, batch: _Batch, key: tuple[str, str], known: dict[tuple[str, str], str]) -> str | None:
        """Whose an identity is as this batch stands (before its merges are followed)."""
        owner = batch.identity_owner.get(key)
        if owner is not None:
            return owner
        made = batch.identities.get(key)
        if made is not None:
            return made[0].customer_id
        return known.get(key)

    def _add_identity(self, batch: _Batch, key: tuple[str, str], customer_id: str, c: _Command) -> None:
        """A new identity of a customer, standing with the calls that use it."""
        record = IdentityRecord(kind=key[0], value=key[1], customer_id=customer_id, created_at=batch.now)
        owners = [c]
        batch.identities[key] = (record, owners)
        batch.emit(IdentityAdded(at=batch.now, identity=record), owners)

    def _use_identity(self, batch: _Batch, key: tuple[str, str], user: _Command) -> None:
        made = batch.identities.get(key)
        if made is not None:
            made[1].append(user)

    def _resolve(
        self, w: Writer, batch: _Batch, customer_id: str, user: _Command | None, *, stored_live: bool = False
    ) -> str:
        """The live record of a customer, as this batch stands; ``user`` relies
        on it. ``stored_live``: storage holds it unmerged (an identity's owner)."""
        made = batch.customers.get(customer_id)
        if made is None and not stored_live:
            customer = w.customer(customer_id)
            while customer.merged_into is not None and customer.id not in batch.unmerged:
                customer = w.customer(customer.merged_into)
            customer_id = customer.id
        live = batch.live(customer_id, user)
        made = batch.customers.get(live)
        if made is not None and user is not None:
            made[1].append(user)
        return live

    def _customer_record(self, w: Writer, batch: _Batch, customer_id: str) -> Customer:
        made = batch.customers.get(customer_id)
        return made[0] if made is not None else w.customer(customer_id)

    def _prepare_create(
        self,
        w: Writer,
        batch: _Batch,
        c: _Command,
        existing: dict[str, Interaction],
        known: dict[tuple[str, str], str],
    ) -> None:
        new: NewInteraction = c.args["new"]
        iid: str = c.args["id"]
        now = batch.now
        found = existing.get(iid)
        if found is None and iid in batch.interactions:
            found = batch.interactions[iid][1]
        if found is not None:
            c.result = Acknowledgement(
                interaction=found.id,
                customer=found.customer_id,
                conversation=found.conversation_id,
                created=False,
                at=found.created_at,
            )
            return
        identities: list[tuple[str, str]] = c.args["identities"]
        # Which customer: named, else found by any identity (merging the
        # records when the identities belong to several), else a new one.
        owners: list[str] = []
        if new.customer is not None:
            owners.append(self._resolve(w, batch, new.customer, c))
        for key in identities:
            owner = self._owner_of(batch, key, known)
            if owner is not None:
                self._use_identity(batch, key, c)
                owner = self._resolve(w, batch, owner, c, stored_live=key not in batch.identity_owner)
                if owner not in owners:
                    owners.append(owner)
        # Everything that can refuse the call comes before anything is made.
        if new.message is not None and new.message.id is not None:
            known_message = self._known_message(w, batch, new.message.id, c)
            if known_message is not None:
                raise InvalidInputError(
                    f"message.id: {new.message.id!r} is a message of interaction "
                    f"{known_message.interaction_id!r} already"
                )
        named = None
        if new.conversation is not None:
            named = self._named_conversation(w, batch, new.conversation, owners, c)
        if not owners:
            customer = Customer(id=new_id(), created_at=now, display_name=new.display_name)
            batch.customers[customer.id] = (customer, [c])
            # Nobody to go back to yet, and no conversation to join.
            batch.last_agent[customer.id] = None
            batch.stored_conversations[customer.id] = None
            batch.emit(CustomerCreated(at=now, customer=customer), batch.customers[customer.id][1])
            customer_id = customer.id
        else:
            customer_id = owners[0]
            for other in owners[1:]:
                self._merge(batch, customer_id, other, [c])
        for key in identities:
            if self._owner_of(batch, key, known) is None:
                self._add_identity(batch, key, customer_id, c)
        conversation = named or self._conversation_for(w, batch, customer_id, c)
        interaction = Interaction(
            id=iid,
            conversation_id=conversation.id,
            customer_id=customer_id,
            channel=new.channel,
            direction=new.direction,
            queue=new.queue,
            status="waiting",
            priority=new.priority,
            created_at=now,
            subject=new.subject,
            attributes=dict(new.attributes),
        )
        batch.interactions[iid] = (c, interaction)
        batch.emit(InteractionCreated(at=now, interaction=interaction), [c])
        if new.message is not None:
            self._add_message(batch, c, interaction, new.message, author_default=customer_id)
        preferred: list[str] = []
        until = None
        if new.sticky and self.settings.sticky_seconds > 0:
            if customer_id not in batch.last_agent:
                batch.last_agent[customer_id] = w.last_agents([customer_id]).get(customer_id)
            last = batch.last_agent[customer_id]
            if last is not None and last in self._agents:
                preferred = [last]
                until = now + self.settings.sticky_seconds
        batch.add_input(
            c,
            AddTask(
                task=NewTask(
                    id=iid,
                    channel=new.channel,
                    queue=new.queue,
                    priority=new.priority,
                    requires=new.requires,
                    preferred_agents=preferred,
                    preferred_until=until,
                    attributes=dict(new.attributes),
                )
            ),
        )
        c.result = Acknowledgement(
            interaction=iid, customer=customer_id, conversation=conversation.id, created=True, at=now
        )

    def _named_conversation(
        self, w: Writer, batch: _Batch, named: str, owners: list[str], c: _Command
    ) -> Conversation:
        """The conversation a new contact names: open, and the customer's own."""
        chosen = w.conversation(named)
        if self._resolve(w, batch, chosen.customer_id, None) not in owners:
            raise InvalidInputError(f"conversation: {named!r} belongs to another customer")
        if chosen.closed_at is not None:
            raise InvalidInputError(f"conversation: {named!r} is closed")
        batch.touched.append((chosen.id, batch.now, c))
        return chosen

    def _conversation_for(self, w: Writer, batch: _Batch, customer_id: str, c: _Command) -> Conversation:
        now = batch.now
        conversation: Conversation | None = batch.open_conversations.get(customer_id)
        if conversation is None:
            if customer_id in batch.stored_conversations:
                conversation = batch.stored_conversations.pop(customer_id)
            else:
                conversation = w.open_conversations([customer_id]).get(customer_id)
            if (
                conversation is not None
                and now - conversation.last_activity_at > self.settings.conversation_idle_seconds
            ):
                w.close_conversation(conversation.id, now)
                batch.emit(ConversationClosed(at=now, conversation=conversation.id))
                conversation = None
        if conversation is None:
            conversation = Conversation(
                id=new_id(), customer_id=customer_id, opened_at=now, last_activity_at=now
            )
            batch.conversations[conversation.id] = (conversation, [c])
            batch.emit(
                ConversationOpened(at=now, conversation=conversation), batch.conversations[conversation.id][1]
            )
        elif conversation.id in batch.conversations:
            batch.conversations[conversation.id][1].append(c)
        batch.open_conversations[customer_id] = conversation
        batch.touched.append((conversation.id, now, c))
        return conversation

    def _add_message(
        self, batch: _Batch, c: _Command, interaction: Interaction, message: MessageIn, *, author_default: str
    ) -> Message:
        record = Message(
            id=message.id or new_id(),
            interaction_id=interaction.id,
            conversation_id=interaction.conversation_id,
            at=batch.now,
            direction=message.direction,
            author=message.author or author_default,
            body=message.body,
            content_type=message.content_type,
        )
        attachments = [
            Attachment(
                id=new_id(),
                message_id=record.id,
                filename=a.filename,
                content_type=a.content_type,
                size=a.size,
                sha256=a.sha256,
                location=a.location,
            )
            for a in message.attachments
        ]
        batch.messages.append((c, record, attachments))
        batch.message_makers[record.id] = (c, record)
        batch.touched.append((interaction.conversation_id, batch.now, c))
        batch.emit(MessageAdded(at=batch.now, message=record, attachments=attachments), [c])
        return record

    def _interaction(self, w: Writer, batch: _Batch, iid: str, user: _Command) -> Interaction:
        """An interaction a call names; one this batch creates takes the call with it."""
        if iid in batch.interactions:
            creator, interaction = batch.interactions[iid]
            batch.depends.append((user, creator))
            return interaction
        if iid in batch.stored_interactions:
            return batch.stored_interactions[iid]
        return w.interaction(iid)  # raises UnknownIdError naming it

    def _known_message(self, w: Writer, batch: _Batch, message_id: str, user: _Command) -> Message | None:
        """The message of this id, stored or made in this batch (``user`` then
        stands or falls with the call that made it)."""
        made = batch.message_makers.get(message_id)
        if made is not None:
            batch.depends.append((user, made[0]))
            return made[1]
        return w.message(message_id)

    def _prepare_message(self, w: Writer, batch: _Batch, c: _Command) -> None:
        interaction = self._interaction(w, batch, c.args["interaction"], c)
        message: MessageIn = c.args["message"]
        if message.id is not None:
            earlier = self._known_message(w, batch, message.id, c)
            if earlier is not None:
                if earlier.interaction_id != interaction.id:
                    raise InvalidInputError(
                        f"message.id: {message.id!r} is a message of interaction {earlier.interaction_id!r}"
                    )
                c.result = earlier.id  # a retried delivery: stored once
                return
        if message.direction == "inbound" and c.args["revealed"]:
            # The customer may reveal who else they are (an e-mail typed in
            # a chat): known identities merge the records, new ones join.
            keys: list[tuple[str, str]] = c.args["revealed"]
            known = w.find_customers(keys)
            customer = self._resolve(w, batch, interaction.customer_id, c)
            for key in keys:
                owner = self._owner_of(batch, key, known)
                if owner is None:
                    self._add_identity(batch, key, customer, c)
                    continue
                self._use_identity(batch, key, c)
                owner = self._resolve(w, batch, owner, c)
                if owner != customer:
                    # The known customer keeps the record; the newcomer folds into it.
                    survivor, merged = sorted(
                        (self._customer_record(w, batch, owner), self._customer_record(w, batch, customer)),
                        key=lambda x: (x.created_at, x.id),
                    )
                    self._merge(batch, survivor.id, merged.id, [c])
                    customer = survivor.id
        # An outbound or internal message names its author (checked before submitting).
        author = interaction.customer_id if message.direction == "inbound" else ""
        c.result = self._add_message(batch, c, interaction, message, author_default=author).id
        if message.direction == "inbound" and interaction.status == "assigned":
            c.engine_required = False
            batch.add_input(c, CustomerActivity(task=interaction.id))

    def _prepare_note(self, w: Writer, batch: _Batch, c: _Command) -> None:
        interaction_id: str | None = c.args["interaction"]
        customer_id: str | None = c.args["customer"]
        if interaction_id is not None:
            interaction = self._interaction(w, batch, interaction_id, c)
            customer_id = interaction.customer_id
        if customer_id is None:
            raise InvalidInputError("customer: a note needs a customer or an interaction")
        customer = self._resolve(w, batch, customer_id, c)
        c.result = self._add_note(batch, c, customer, interaction_id, c.args["author"], c.args["body"])

    def _add_note(
        self, batch: _Batch, c: _Command, customer_id: str, interaction_id: str | None, author: str, body: str
    ) -> Note:
        note = Note(
            id=new_id(),
            customer_id=customer_id,
            interaction_id=interaction_id,
            author=author,
            at=batch.now,
            body=body,
        )
        batch.notes.append((note, c))
        batch.emit(NoteAdded(at=batch.now, note=note), [c])
        return note

    def _check_offer(self, c: _Command) -> None:
        offer: int = c.args["offer"]
        agent: str | None = c.args["agent"]
        held = self._offers.get(offer)
        if held is None:
            raise UnknownIdError(f"offer: no open offer {offer} (answered, withdrawn or timed out)")
        if agent is not None and held[1] != agent:
            raise InvalidInputError(f"offer: offer {offer} was made to another agent, not {agent!r}")

    def _prepare_accept(self, w: Writer, batch: _Batch, c: _Command) -> None:
        self._check_offer(c)
        batch.add_input(c, Accept(offer=c.args["offer"]))

    def _prepare_reject(self, w: Writer, batch: _Batch, c: _Command) -> None:
        self._check_offer(c)
        batch.add_input(c, Reject(offer=c.args["offer"]))

    def _check_agent_owns(self, w: Writer, batch: _Batch, c: _Command) -> Interaction:
        interaction = self._interaction(w, batch, c.args["task"], c)
        agent: str | None = c.args.get("agent")
        if agent is not None and interaction.agent != agent:
            raise InvalidInputError(f"task: interaction {interaction.id!r} is not with agent {agent!r}")
        return interaction

    def _prepare_complete(self, w: Writer, batch: _Batch, c: _Command) -> None:
        task: str = c.args["task"]
        disposition: str | None = c.args["disposition"]
        outcome: str | None = c.args["outcome"]
        resolved: bool | None = c.args["resolved"]
        # Checked before anything is added: a refused call adds nothing.
        interaction = self._check_agent_owns(w, batch, c) if _reads_task(c) else None
        note_for = None
        if interaction is not None and c.args["note"]:
            note_for = self._resolve(w, batch, interaction.customer_id, c)
        batch.add_input(c, Complete(task=task))
        if disposition is not None or outcome is not None:
            batch.emit(
                InteractionUpdated(at=batch.now, interaction=task, disposition=disposition, outcome=outcome),
                [c],
            )

        def completed(batch: _Batch) -> None:
            # Only what the call gives: a None here would empty the column.
            if disposition is not None:
                batch.patch(task).set(disposition=disposition)
            if outcome is not None:
                batch.patch(task).set(outcome=outcome)
            # Only a call that gives ``resolved`` reads the interaction for its agent.
            if resolved is not None and interaction is not None and interaction.agent is not None:
                batch.metric_events.append(
                    Disposition(
                        at=batch.now,
                        task=interaction.id,
                        queue=interaction.queue,
                        channel=interaction.channel,
                        agent=interaction.agent,
                        resolved=resolved,
                    )
                )

        batch.on_stand.append((c, completed))
        if interaction is not None and note_for is not None:
            self._add_note(batch, c, note_for, interaction.id, interaction.agent or "system", c.args["note"])

    def _prepare_cancel(self, w: Writer, batch: _Batch, c: _Command) -> None:
        batch.cancel_status[c.args["task"]] = c.args["status"]
        batch.add_input(c, Cancel(task=c.args["task"]))

    def _prepare_transfer(self, w: Writer, batch: _Batch, c: _Command) -> None:
        if _reads_task(c):
            self._check_agent_owns(w, batch, c)
        batch.add_input(c, c.args["input"])

    def _prepare_hold(self, w: Writer, batch: _Batch, c: _Command) -> None:
        task: str = c.args["task"]
        on: bool = c.args["on"]
        interaction = self._check_agent_owns(w, batch, c)
        if interaction.status != "assigned" or interaction.agent is None:
            raise InvalidTransitionError(
                f"task: interaction {task!r} is {interaction.status}; only work an agent has "
                "accepted can be put on hold or taken off it"
            )
        hold = self._holds.get(task)
        since = hold.since if hold is not None else None
        if on and since is not None:
            raise InvalidTransitionError(
                f"task: interaction {task!r} is on hold already, since {iso_time(since)}"
            )
        if not on and since is None:
            raise InvalidTransitionError(f"task: interaction {task!r} is not on hold")
        # Applied now, not once the batch stands: a hold has no engine input,
        # so once checked it stands, and a hold and a resume in one batch see
        # each other. A batch that fails rebuilds the holds from storage.
        if not on:
            self._end_hold(batch, task, batch.now, finished=False)
            return
        ended = hold.ended if hold is not None else 0.0
        self._holds[task] = _Hold(batch.now, ended, interaction.agent, interaction.queue, interaction.channel)
        batch.patch(task).set(held_at=batch.now)
        batch.emit(TaskHeld(at=batch.now, task=task, agent=interaction.agent), [c])

    def _prepare_consult(self, w: Writer, batch: _Batch, c: _Command) -> None:
        sender: str = c.args["sender"]
        to: str = c.args["to"]
        task: str | None = c.args["task"]
        for where, agent in (("sender", sender), ("to", to)):
            if agent not in self._agents:
                raise UnknownIdError(f"{where}: no agent {agent!r} in the configuration")
        if task is not None:
            self._interaction(w, batch, task, c)  # raises UnknownIdError naming it
        consult = ConsultSent(at=batch.now, id=new_id(), sender=sender, to=to, body=c.args["body"], task=task)
        batch.emit(consult, [c])
        c.result = consult

    # The two calls below have no engine input: once checked they stand, so
    # they write at once (as closing a conversation does), and a later call of
    # the same batch reads what they wrote.

    def _prepare_customer_attributes(self, w: Writer, batch: _Batch, c: _Command) -> None:
        customer = self._customer_record(w, batch, self._resolve(w, batch, c.args["customer"], c))
        attributes = {**customer.attributes, **c.args["attributes"]}
        updated = msgspec.structs.replace(customer, attributes=attributes)
        c.result = updated
        if attributes == customer.attributes:
            return  # nothing new: no write, no event
        made = batch.customers.get(customer.id)
        if made is not None:
            batch.customers[customer.id] = (updated, made[1])  # not stored yet: stored as updated
        else:
            w.set_customer_attributes(customer.id, attributes)
        batch.emit(CustomerUpdated(at=batch.now, customer=updated), [c])

    def _prepare_delivery(self, w: Writer, batch: _Batch, c: _Command) -> None:
        update: Delivery = msgspec.structs.replace(c.args["delivery"], updated_at=batch.now)
        cursor: tuple[str, int] | None = c.args["cursor"]
        message = w.message(update.message_id)  # sent, so stored in an earlier batch
        if message is None:
            raise UnknownIdError(f"message_id: no message {update.message_id!r}")
        current = w.delivery(update.message_id)
        changed = current is None or DELIVERY_ORDER[update.status] > DELIVERY_ORDER[current.status]
        if current is not None and update.provider_id is None and current.provider_id is not None:
            update = msgspec.structs.replace(update, provider_id=current.provider_id)
        c.result = update if changed else current
        if changed:
            w.put_delivery(update)
            batch.emit(
                DeliveryUpdated(at=batch.now, delivery=update, interaction=message.interaction_id), [c]
            )
        if cursor is not None:
            w.save_channel_cursor(*cursor)

    def _prepare_engine(self, w: Writer, batch: _Batch, c: _Command) -> None:
        """A call that is one engine input, checked when it was made."""
        batch.add_input(c, c.args["input"])

    def _prepare_tick(self, w: Writer, batch: _Batch, c: _Command) -> None:
        """Timers fire in every batch; a tick is a batch with nothing else."""

    def _merged_into(self, w: Writer, batch: _Batch, customer_id: str) -> str | None:
        """Whom a customer is merged into as this batch stands (None: nobody);
        UnknownIdError if there is no such customer."""
        op = batch.merged_into.get(customer_id)
        if op is not None:
            return op.survivor
        if customer_id in batch.customers or customer_id in batch.unmerged:
            return None
        return w.customer(customer_id).merged_into

    def _prepare_merge(self, w: Writer, batch: _Batch, c: _Command) -> None:
        survivor: str = c.args["survivor"]
        merged: str = c.args["merged"]
        if survivor == merged:
            raise InvalidInputError(f"merged: cannot merge customer {merged!r} into itself")
        for where, customer in (("survivor", survivor), ("merged", merged)):
            into = self._merged_into(w, batch, customer)
            if into is not None:
                raise InvalidInputError(f"{where}: customer {customer!r} is merged into {into!r}")
        for customer in (survivor, merged):
            if customer in batch.customers:
                batch.customers[customer][1].append(c)
        self._merge(batch, survivor, merged, [c], command=c)

    def _prepare_undo_merge(self, w: Writer, batch: _Batch, c: _Command) -> None:
        merge_id: str = c.args["merge"]
        made = next((op for op in batch.merges if op.kind == "merge" and op.id == merge_id), None)
        stored = None
        if made is not None:
            undone = batch.merged_into.get(made.merged) is not made
            survivor, merged = made.survivor, made.merged
        else:
            stored = w.merge(merge_id)  # raises UnknownIdError naming it
            undone = stored.undone_at is not None or any(
                op.kind == "undo" and op.id == merge_id for op in batch.merges
            )
            survivor, merged = stored.survivor, stored.merged
        if undone:
            raise InvalidInputError(f"merge: merge {merge_id!r} was already undone")
        into = self._merged_into(w, batch, survivor)
        if into is not None:
            raise InvalidInputError(
                f"merge: customer {survivor!r} has since been merged into {into!r}; undo that merge first"
            )
        # Checked: the batch now sees the customers apart.
        if made is not None:
            made.owners.append(c)
        if stored is not None:
            batch.unmerged.add(merged)
            for kind, value in stored.identities:
                batch.identity_owner[(kind, value)] = merged
        batch.merged_into.pop(merged, None)
        batch.merges.append(_MergeOp("undo", merge_id, survivor, merged, [c], command=c))

    def _merge(
        self,
        batch: _Batch,
        survivor: str,
        merged: str,
        owners: list[_Command],
        command: _Command | None = None,
    ) -> None:
        """Fold ``merged`` into ``survivor`` (carried out when the batch's rows are written)."""
        op = _MergeOp("merge", new_id(), survivor, merged, owners, command)
        batch.merges.append(op)
        batch.merged_into[merged] = op

    def _prepare_close_conversation(self, w: Writer, batch: _Batch, c: _Command) -> None:
        conversation = w.conversation(c.args["conversation"])
        w.close_conversation(conversation.id, batch.now)
        batch.emit(ConversationClosed(at=batch.now, conversation=conversation.id))

    def _prepare_config(self, w: Writer, batch: _Batch, c: _Command) -> None:
        new: EngineConfig = c.args["config"]
        old = self._config
        assert old is not None
        dropped_channels = {ch.name for ch in old.channels} - {ch.name for ch in new.channels}
        dropped_queues = {q.name for q in old.queues} - {q.name for q in new.queues}
        if dropped_channels or dropped_queues:
            raise InvalidInputError(
                "config: channels and queues cannot be removed from a running engine "
                f"(missing: {sorted(dropped_channels | dropped_queues)})"
            )
        old_channels = {ch.name: ch for ch in old.channels}
        old_queues = {q.name: q for q in old.queues}
        old_agents = {a.id: a for a in old.agents}
        channels = [ch for ch in new.channels if old_channels.get(ch.name) != ch]
        queues = [q for q in new.queues if old_queues.get(q.name) != q]
        agents = [a for a in new.agents if old_agents.get(a.id) != a]
        removed = sorted(set(old_agents) - {a.id for a in new.agents})
        changes: list[Input] = [
            *(UpsertChannel(channel=ch) for ch in channels),
            *(UpsertQueue(queue=q) for q in queues),
            *(UpsertAgent(agent=a) for a in agents),
            *(RemoveAgent(agent=agent) for agent in removed),
        ]
        # All or nothing: the changes are tried on a copy of the engine first
        # (the batch holds this call alone, so the copy sees what the engine will).
        engine, _ = self._live()
        trial = Engine.restore(engine.snapshot()).process(changes, batch.now)
        if trial.errors:
            error = trial.errors[0]
            raise error_for_kind(error.kind, f"config: {error.message}")
        for change in changes:
            batch.add_input(c, change)

        def applied(_: _Batch) -> None:
            w.save_config(new)
            self._set_config(new)

        batch.on_stand.append((c, applied))
        batch.emit(
            ConfigApplied(
                at=batch.now,
                channels=[ch.name for ch in channels],
                queues=[q.name for q in queues],
                agents=[a.id for a in agents],
                removed_agents=removed,
            ),
            [c],
        )
        c.result = new

    # ----- what routing did, as stored facts -----

    def _derive(self, w: Writer, batch: _Batch, outputs: list[Output]) -> None:
        """Interaction records and the runtime's own metric events from what
        routing did. The engine has already recorded its events up to the
        batch's time, so talk and wrap-up segments are recorded at that time
        too (their lengths are exact; only their interval may be the next
        one when a timer fell due just before it)."""
        for o in outputs:
            if type(o) not in _DERIVED:
                continue  # most events change no record (agent load, metrics, ...)
            # The commonest first.
            if isinstance(o, TaskQueued):
                p = batch.patch(o.task)
                p.set(status="waiting", queue=o.queue)
                p.first("queued_at", o.at)
            elif isinstance(o, OfferMade):
                p = batch.patch(o.task)
                p.set(status="offered", offer=o.offer, agent=o.agent)
                p.first("offered_at", o.at)
                self._offers[o.offer] = (o.task, o.agent)
                self._offer_of[o.task] = o.offer
            elif isinstance(o, TaskAssigned):
                p = batch.patch(o.task)
                p.set(status="assigned", agent=o.agent, offer=None)
                p.first("answered_at", o.at)
                self._answered_at.setdefault(o.task, o.at)
                self._close_offer(o.task)
            elif isinstance(o, _OFFER_ENDED):
                self._close_offer(o.task)
                p = batch.patch(o.task)
                if p.fields.get("status") not in ("abandoned", "cancelled", "completed"):
                    p.set(status="waiting", offer=None, agent=None)
            elif isinstance(o, TaskCancelled):
                self._close_offer(o.task)
                self._answered_at.pop(o.task, None)
                self._end_hold(batch, o.task, o.at, finished=True)
                status = batch.cancel_status.get(o.task, "abandoned")
                batch.patch(o.task).set(status=status, ended_at=o.at, offer=None)
            elif isinstance(o, TaskCompleted):
                p = batch.patch(o.task)
                p.set(status="completed", ended_at=o.at)
                held = self._end_hold(batch, o.task, o.at, finished=True)
                answered = self._answered_at.pop(o.task, None)
                if answered is not None:
                    batch.metric_events.append(
                        Talk(
                            at=batch.now,
                            task=o.task,
                            queue=o.queue,
                            channel=o.channel,
                            agent=o.agent,
                            seconds=max(0.0, o.at - answered - held),
                        )
                    )
                if o.queue in self._wrap_up_queues:
                    batch.wrapping.setdefault(o.agent, []).append((o.task, o.queue, o.channel, o.at))
                else:
                    p.set(wrap_up_ended_at=o.at)
            elif isinstance(o, TaskTransferred):
                # Back to waiting, with nobody; an offer to a named agent follows.
                self._end_hold(batch, o.task, o.at, finished=False)
                p = batch.patch(o.task)
                p.set(status="waiting", agent=None, offer=None)
                if o.to_queue is not None:
                    p.set(queue=o.to_queue)
            elif isinstance(o, AgentStateChanged) and o.status.state != "wrap_up":
                # The store ends the stored ones' wrap-up itself; those
                # completed in this batch are not stored yet.
                wrapping = batch.wrapping.pop(o.agent, [])
                for task, _, _, _ in wrapping:
                    batch.patch(task).set(wrap_up_ended_at=o.at)
                for task, queue, channel, ended_at in w.end_wrap_up(o.agent, o.at) + wrapping:
                    batch.metric_events.append(
                        WrapUp(
                            at=batch.now,
                            task=task,
                            queue=queue,
                            channel=channel,
                            agent=o.agent,
                            seconds=max(0.0, o.at - ended_at),
                        )
                    )

    def _end_hold(self, batch: _Batch, task: str, at: float, *, finished: bool) -> float:
        """End a task's hold, if it is on one, counting the hold's time;
        returns the task's hold time so far (every hold). ``finished``: the
        task leaves the engine, and its holds are forgotten."""
        hold = self._holds.pop(task, None) if finished else self._holds.get(task)
        if hold is None:
            return 0.0
        if hold.since is not None:
            seconds = max(0.0, at - hold.since)
            hold.ended += seconds
            hold.since = None
            batch.metric_events.append(
                Hold(
                    at=batch.now,
                    task=task,
                    queue=hold.queue,
                    channel=hold.channel,
                    agent=hold.agent,
                    seconds=seconds,
                )
            )
            batch.emit(TaskResumed(at=at, task=task, agent=hold.agent, seconds=seconds))
            batch.patch(task).set(held_at=None, hold_seconds=hold.ended)
        return hold.ended

    def _close_offer(self, task: str) -> None:
        offer = self._offer_of.pop(task, None)
        if offer is not None:
            del self._offers[offer]

    def _write_rows(self, w: Writer, batch: _Batch) -> None:
        w.add_customers([row for row, owners in batch.customers.values() if _any_stands(owners)])
        w.add_identities([row for row, owners in batch.identities.values() if _any_stands(owners)])
        w.add_conversations([row for row, owners in batch.conversations.values() if _any_stands(owners)])
        # A new interaction is written as routing left it, not written then patched.
        created = []
        for c, interaction in batch.interactions.values():
            if _stands(c):
                pending = batch.patches.pop(interaction.id, None)
                if pending is not None:
                    interaction = msgspec.structs.replace(interaction, **pending.fields)
                created.append(interaction)
        w.add_interactions(created)
        messages = [(m, a) for c, m, a in batch.messages if _stands(c)]
        w.add_messages([m for m, _ in messages])
        w.add_attachments([a for _, attachments in messages for a in attachments])
        w.add_notes([note for note, c in batch.notes if _stands(c)])
        w.touch_conversations({cid: at for cid, at, c in batch.touched if _stands(c)})
        w.patch_interaction_fields([(iid, pending.fields) for iid, pending in batch.patches.items()])
        # Merges last: they move rows this batch may just have written.
        for op in batch.merges:
            if not _any_stands(op.owners):
                continue
            if op.kind == "merge":
                merge = w.merge_customers(op.survivor, op.merged, batch.now, merge_id=op.id)
                batch.emit(CustomersMerged(at=batch.now, merge=merge))
            else:
                merge = w.undo_merge(op.id, batch.now)
                batch.emit(MergeUndone(at=batch.now, merge=merge))
            if op.command is not None:
                op.command.result = merge

    # ----- timers -----

    async def _timer_loop(self) -> None:
        while not self._closing:
            changed = self._timer_changed = anyio.Event()
            due = self._next_timer
            if due is not None and self.clock.now() >= due:
                try:
                    await self._submit(_Command("tick", {}))
                except RuntimeClosedError:
                    return
                continue
            async with anyio.create_task_group() as tg:

                async def sleep(
                    deadline: float | None = due, scope: anyio.CancelScope = tg.cancel_scope
                ) -> None:
                    if deadline is None:
                        await anyio.sleep_forever()
                    else:
                        await self.clock.sleep_until(deadline)
                    scope.cancel()

                tg.start_soon(sleep)
                # A batch that leaves the next timer where it was, or later,
                # does not restart the sleep: waking at the old deadline
                # finds nothing due and sleeps on (one restart per batch was
                # a task group, a task and a cancellation each time).
                while True:
                    await changed.wait()
                    if self._wake_timer_before(due):
                        break
                    changed = self._timer_changed = anyio.Event()
                tg.cancel_scope.cancel()

    def _wake_timer_before(self, due: float | None) -> bool:
        """Whether the timer loop, sleeping until ``due``, must wake now: the
        runtime is closing, or a batch brought the next timer forward."""
        soonest = self._next_timer
        return self._closing or (soonest is not None and (due is None or soonest < due))

    # ----- the API -----

    async def create_interaction(self, new: NewInteraction) -> Acknowledgement:
        """Store a new contact and route it; returns once it is stored."""
        new = _validated(new, NewInteraction)
        identities = self._check_new(new)
        return await self._submit(  # type: ignore[no-any-return]
            _Command("create", {"new": new, "id": new.id or new_id(), "identities": identities})
        )

    def _check_new(self, new: NewInteraction) -> list[tuple[str, str]]:
        """Everything that can be checked before storing: the named channel
        and queue exist, identities parse, the message fits."""
        if new.channel not in self._channels:
            raise InvalidInputError(
                f"channel: unknown channel {new.channel!r} (known: {sorted(self._channels)})"
            )
        if new.queue not in self._queues:
            raise InvalidInputError(f"queue: unknown queue {new.queue!r} (known: {sorted(self._queues)})")
        keys = []
        for i, identity in enumerate(new.identities):
            found = normalize(
                identity.kind,
                identity.value,
                default_region=self.settings.default_region,
                field=f"identities[{i}]",
            )
            keys.append((found.kind, found.value))
        if new.message is not None:
            self._check_message(new.message, "message")
        for name, value in new.attributes.items():
            _check_attribute(name, value)
        return list(dict.fromkeys(keys))

    def _check_body(self, body: str, what: str) -> None:
        if not body.strip():
            raise InvalidInputError(f"body: {what} cannot be empty")
        if len(body.encode()) > self.settings.max_message_bytes:
            raise InvalidInputError(f"body: over the limit of {self.settings.max_message_bytes} bytes")

    def _check_message(self, message: MessageIn, where: str) -> None:
        size = len(message.body.encode())
        if size > self.settings.max_message_bytes:
            raise InvalidInputError(
                f"{where}.body: {size} bytes is over the limit of {self.settings.max_message_bytes} bytes"
            )

    async def add_message(self, interaction: str, message: MessageIn) -> str:
        """Store a message of an interaction (reactivating asynchronous work
        the customer writes on); identities typed by the customer join their
        record or merge it with a known customer's. Returns the message id."""
        message = _validated(message, MessageIn, "message")
        self._check_message(message, "message")
        if message.direction != "inbound" and message.author is None:
            raise InvalidInputError(
                "message.author: an outbound or internal message needs its author (an agent)"
            )
        revealed = []
        if message.direction == "inbound" and message.content_type.startswith("text/"):
            revealed = [
                (i.kind, i.value)
                for i in find_identities(message.body, default_region=self.settings.default_region)
            ]
        return await self._submit(  # type: ignore[no-any-return]
            _Command("message", {"interaction": interaction, "message": message, "revealed": revealed})
        )

    async def add_note(
        self, body: str, *, author: str, interaction: str | None = None, customer: str | None = None
    ) -> Note:
        _check_strings(body=body, author=author)
        _check_strings(optional=True, interaction=interaction, customer=customer)
        self._check_body(body, "a note")
        return await self._submit(  # type: ignore[no-any-return]
            _Command(
                "note", {"body": body, "author": author, "interaction": interaction, "customer": customer}
            )
        )

    async def accept(self, offer: int, *, agent: str | None = None) -> None:
        """Accept an offer (``agent``, when given, must be the one offered)."""
        _check_offer_id(offer)
        _check_strings(optional=True, agent=agent)
        await self._submit(_Command("accept", {"offer": offer, "agent": agent}))

    async def reject(self, offer: int, *, agent: str | None = None) -> None:
        _check_offer_id(offer)
        _check_strings(optional=True, agent=agent)
        await self._submit(_Command("reject", {"offer": offer, "agent": agent}))

    async def complete(
        self,
        task: str,
        *,
        agent: str | None = None,
        disposition: str | None = None,
        outcome: str | None = None,
        resolved: bool | None = None,
        note: str | None = None,
    ) -> None:
        """The customer's part is done: capacity frees, wrap-up starts if the queue has one."""
        _check_strings(task=task)
        _check_strings(optional=True, agent=agent, disposition=disposition, outcome=outcome, note=note)
        if resolved is not None and not isinstance(resolved, bool):
            raise InvalidInputError(f"resolved: expected true or false, got {resolved!r}")
        if note is not None and len(note.encode()) > self.settings.max_message_bytes:
            raise InvalidInputError(f"note: over the limit of {self.settings.max_message_bytes} bytes")
        await self._submit(
            _Command(
                "complete",
                {
                    "task": task,
                    "agent": agent,
                    "disposition": disposition,
                    "outcome": outcome,
                    "resolved": resolved,
                    "note": note,
                },
            )
        )

    async def cancel(self, task: str, *, status: Literal["abandoned", "cancelled"] = "abandoned") -> None:
        """The customer left (``abandoned``) or the work was withdrawn (``cancelled``)."""
        _check_strings(task=task)
        if status not in ("abandoned", "cancelled"):
            raise InvalidInputError(f"status: expected 'abandoned' or 'cancelled', got {status!r}")
        await self._submit(_Command("cancel", {"task": task, "status": status}))

    async def transfer(
        self, task: str, *, to_queue: str | None = None, to_agent: str | None = None, agent: str | None = None
    ) -> None:
        """Send work to another queue or to a named agent (exactly one of
        them); ``agent``, when given, must be the one holding it."""
        _check_strings(optional=True, agent=agent)
        if (to_queue is None) == (to_agent is None):
            raise InvalidInputError("to_queue: give exactly one of to_queue and to_agent")
        move = _validated(Transfer(task=task, to_queue=to_queue, to_agent=to_agent), Transfer)
        await self._submit(_Command("transfer", {"task": task, "agent": agent, "input": move}))

    async def hold(self, task: str, *, agent: str | None = None) -> None:
        """Put the customer on hold (the task stays with its agent; hold time
        is counted apart from talk time); ``agent``, when given, must be the one holding it."""
        _check_strings(task=task)
        _check_strings(optional=True, agent=agent)
        await self._submit(_Command("hold", {"task": task, "agent": agent, "on": True}))

    async def resume(self, task: str, *, agent: str | None = None) -> None:
        """Take the customer off hold."""
        _check_strings(task=task)
        _check_strings(optional=True, agent=agent)
        await self._submit(_Command("hold", {"task": task, "agent": agent, "on": False}))

    def on_hold(self, task: str) -> float | None:
        """Since when a task is on hold (None: it is not)."""
        hold = self._holds.get(task)
        return hold.since if hold is not None else None

    async def consult(self, sender: str, to: str, body: str, *, task: str | None = None) -> ConsultSent:
        """A message from one agent to another (internal chat), optionally
        about a task; it is kept in the event log and reaches both agents' streams."""
        _check_strings(sender=sender, to=to, body=body)
        _check_strings(optional=True, task=task)
        if sender == to:
            raise InvalidInputError(f"to: an agent consults a colleague, not itself ({to!r})")
        self._check_body(body, "a consult message")
        return await self._submit(  # type: ignore[no-any-return]
            _Command("consult", {"sender": sender, "to": to, "body": body, "task": task})
        )

    async def record_delivery(
        self,
        message_id: str,
        *,
        channel: str,
        status: DeliveryStatus,
        provider_id: str | None = None,
        detail: str | None = None,
        cursor: tuple[str, int] | None = None,
    ) -> Delivery:
        """A channel's report on an outbound message. A status only moves
        forward (queued, sent, delivered, read; or failed): a repeated or
        late report changes nothing and returns the delivery as it stands.
        ``cursor`` (a channel host's name and an event seq) is saved with it."""
        _check_strings(message_id=message_id, channel=channel)
        _check_strings(optional=True, provider_id=provider_id, detail=detail)
        if status not in DELIVERY_ORDER:
            raise InvalidInputError(f"status: {status!r} is not one of {', '.join(DELIVERY_ORDER)}")
        update = Delivery(
            message_id=message_id,
            channel=channel,
            status=status,
            updated_at=0.0,  # the batch's time, set when it is stored
            provider_id=provider_id,
            detail=detail[:1000] if detail is not None else None,
        )
        return await self._submit(  # type: ignore[no-any-return]
            _Command("delivery", {"delivery": update, "cursor": cursor})
        )

    async def update_customer(self, customer: str, attributes: dict[str, Any]) -> Customer:
        """Add or change a customer's attributes (a CRM's tier or account, say);
        the others stay. Returns the record after (the one it is merged into,
        when it is merged)."""
        _check_strings(customer=customer)
        if not isinstance(attributes, dict):
            raise InvalidInputError(f"attributes: expected an object, got {type(attributes).__name__}")
        checked: dict[str, AttributeValue] = {}
        for name, value in attributes.items():
            if type(name) is not str or not 1 <= len(name) <= 256:
                raise InvalidInputError(f"attributes: the name {str(name)[:40]!r} is not 1 to 256 characters")
            _check_attribute(name, value)
            checked[name] = value
        return await self._submit(  # type: ignore[no-any-return]
            _Command("customer_attributes", {"customer": customer, "attributes": checked})
        )

    async def interaction_notes(self, interaction: str) -> list[Note]:
        """An interaction's notes, oldest first."""
        return await self._read(lambda r: r.interaction_notes(interaction))

    async def delivery(self, message_id: str) -> Delivery | None:
        """An outbound message's delivery as its channel last reported it (None: not taken yet)."""
        return await self._read(lambda r: r.delivery(message_id))

    async def delivery_by_provider_id(self, channel: str, provider_id: str) -> Delivery | None:
        """The delivery a provider's own message id belongs to (its status callbacks name it so)."""
        return await self._read(lambda r: r.delivery_by_provider_id(channel, provider_id))

    async def channel_cursor(self, name: str) -> int:
        return await self._read(lambda r: r.channel_cursor(name))

    async def live_interaction(self, customer: str, channel: str) -> Interaction | None:
        """The customer's newest interaction on a channel still waiting, offered or assigned."""
        return await self._read(lambda r: r.live_interaction(customer, channel))

    async def inbound_state(
        self, message_id: str, identities: Sequence[tuple[str, str]], channel: str | None
    ) -> tuple[Message | None, Interaction | None]:
        """For a channel's inbound message, in one read: the message if it is
        stored already (a retried delivery) with its interaction; else the live
        interaction on ``channel`` of the customer any of these (normalised)
        identities belongs to (None for ``channel``: do not look)."""

        def read(r: Reader) -> tuple[Message | None, Interaction | None]:
            earlier = r.message(message_id)
            if earlier is not None:
                return earlier, r.interaction(earlier.interaction_id)
            if channel is None or not identities:
                return None, None
            owners = r.find_customers(list(identities))
            for key in identities:
                owner = owners.get(key)
                if owner is not None:
                    return None, r.live_interaction(r.live_customer(owner).id, channel)
            return None, None

        return await self._read(read)

    async def message(self, message_id: str) -> Message | None:
        return await self._read(lambda r: r.message(message_id))

    async def identities(self, customer: str) -> list[IdentityRecord]:
        """Every identity of a customer (how a channel reaches them)."""
        return await self._read(lambda r: r.identities(customer))

    async def end_wrap_up(self, agent: str) -> None:
        await self._submit(_Command("engine", {"input": _validated(EndWrapUp(agent=agent), EndWrapUp)}))

    async def set_agent_state(self, agent: str, state: AgentState) -> None:
        """Put an agent offline, available, or away with a reason code."""
        change = _validated(SetAgentState(agent=agent, state=state), SetAgentState)
        if change.state.state == "away" and not change.state.reason:
            raise InvalidInputError("state.reason: an agent away needs a reason code (such as 'break')")
        if change.state.state != "away" and change.state.reason is not None:
            raise InvalidInputError(
                f"state.reason: only an agent away has a reason, not one {change.state.state}"
            )
        await self._submit(_Command("engine", {"input": change}))

    async def set_priority(self, task: str, priority: int) -> None:
        change = _validated(SetPriority(task=task, priority=priority), SetPriority)
        await self._submit(_Command("engine", {"input": change}))

    async def merge_customers(self, survivor: str, merged: str) -> Merge:
        """Fold ``merged`` into ``survivor`` with all its history (undo with :meth:`undo_merge`)."""
        _check_strings(survivor=survivor, merged=merged)
        return await self._submit(  # type: ignore[no-any-return]
            _Command("merge", {"survivor": survivor, "merged": merged})
        )

    async def undo_merge(self, merge: str) -> Merge:
        _check_strings(merge=merge)
        return await self._submit(_Command("undo_merge", {"merge": merge}))  # type: ignore[no-any-return]

    async def close_conversation(self, conversation: str) -> None:
        _check_strings(conversation=conversation)
        await self._submit(_Command("close_conversation", {"conversation": conversation}))

    async def apply_config(self, config: EngineConfig) -> EngineConfig:
        """Change the configuration live: waiting work is re-evaluated at once."""
        self._check_config(config)
        result: EngineConfig = await self._submit(_Command("config", {"config": config}))
        return result

    def _check_config(self, config: EngineConfig) -> None:
        # A throwaway engine refuses what the live one would, before anything is stored.
        Engine(config, now=0.0)

    async def tick(self) -> None:
        """Fire the timers due now (the runtime does this by itself; tests with a manual clock call it)."""
        await self._submit(_Command("tick", {}))

    # ----- reads -----

    async def _read(self, fn: Callable[[Reader], _T]) -> _T:
        if self._stopped:
            raise RuntimeClosedError("the runtime has stopped; reopen the store to read it")

        def run() -> _T:
            with self.store.read() as r:
                return fn(r)

        return await anyio.to_thread.run_sync(run, limiter=self._readers)

    async def context(self, customer: str, *, limit: int | None = None) -> CustomerContext:
        """What an agent sees with an offer: the customer across every channel."""
        return await self._read(lambda r: r.context(customer, limit=limit))

    async def messages(self, interaction: str) -> list[Message]:
        """An interaction's messages, oldest first (UnknownIdError if there is no such interaction)."""

        def read(r: Reader) -> list[Message]:
            r.interaction(interaction)
            return r.messages(interaction)

        return await self._read(read)

    async def conversation(self, conversation: str) -> ConversationDetail:
        """A conversation with its interactions on every channel and its messages."""
        _check_strings(conversation=conversation)
        return await self._read(lambda r: r.conversation_detail(conversation))

    async def interaction_context(self, interaction: str) -> CustomerContext:
        """The context of an interaction's customer, in one read (an offer's)."""
        return await self._read(lambda r: r.context(r.interaction(interaction).customer_id))

    async def interaction(self, interaction: str) -> Interaction:
        return await self._read(lambda r: r.interaction(interaction))

    async def customer(self, customer: str) -> Customer:
        return await self._read(lambda r: r.customer(customer))

    async def find_customer(self, kind: str, value: str) -> Customer | None:
        identity = normalize(kind, value, default_region=self.settings.default_region)
        key = (identity.kind, identity.value)

        def find(r: Reader) -> Customer | None:
            owner = r.find_customers([key]).get(key)
            return None if owner is None else r.live_customer(owner)

        return await self._read(find)

    async def _read_log(self, after: int, limit: int) -> list[Envelope]:
        stored = await self._read(lambda r: r.events(after, limit=limit))
        return [envelope_of(e) for e in stored]

    async def events(self, after: int = 0, *, limit: int = 1000) -> list[Envelope]:
        """Events from the log, after a seq."""
        return await self._read_log(after, limit)

    def subscribe(
        self,
        *,
        types: Sequence[str] | None = None,
        buffer: int | None = None,
        catch_up: bool = True,
        after: int | None = None,
        name: str | None = None,
    ) -> Subscription:
        return self.bus.subscribe(types=types, buffer=buffer, catch_up=catch_up, after=after, name=name)

    async def metrics(
        self, *, queues: bool = True, channels: bool = True, agents: bool = True
    ) -> MetricsSnapshot:
        """Every figure now (``docs/metrics.md``). Taken between batches: a
        snapshot moves the metrics' time, and no batch may come before it."""

        def take() -> MetricsSnapshot:
            engine, metrics = self._live()
            now = self._now(engine)
            return metrics.snapshot(now, queues=queues, channels=channels, agents=agents)

        return await anyio.to_thread.run_sync(take, limiter=self._writer)

    @property
    def interval_seconds(self) -> int:
        """The length of the metrics' fixed intervals."""
        return (self.settings.metrics or MetricsConfig()).interval_seconds

    async def intervals(
        self,
        kind: Literal["overall", "queue", "channel", "agent", "team"],
        name: str,
        start: float,
        end: float,
    ) -> list[IntervalStats]:
        """Past fixed intervals of one queue, channel, agent or team (or
        overall) that start in ``[start, end)``, for historical reports. A
        team is the agents the configuration puts in it now, their figures summed."""
        for where, bound in (("start", start), ("end", end)):
            if math.isnan(bound):
                raise InvalidInputError(f"{where}: a number of seconds, not NaN")
        members: list[str] = []
        if kind == "team":
            members = [a.id for a in self.config.agents if a.team == name]
            if not members:
                teams = sorted({a.team for a in self.config.agents if a.team is not None})
                raise InvalidInputError(
                    f"name: no agent is in team {name!r} (teams: {', '.join(teams) or 'none configured'})"
                )
        elif kind != "overall":
            configured = {"queue": self._queues, "channel": self._channels, "agent": self._agents}[kind]
            if name not in configured:
                raise InvalidInputError(f"name: there is no {kind} {name!r}")

        def take() -> list[IntervalStats]:
            _, metrics = self._live()
            if kind == "team":
                return metrics.group_intervals(members, start, end)
            try:
                return metrics.intervals(kind, name, start, end)
            except InvalidInputError:
                return []  # configured, but the metrics have had nothing of it yet

        return await anyio.to_thread.run_sync(take, limiter=self._writer)

    async def roster(self) -> list[AgentStateChanged | AgentLoad]:
        """Every agent's state and load now, as the engine reports them; taken
        between batches, like the metrics."""

        def take() -> list[AgentStateChanged | AgentLoad]:
            engine, _ = self._live()
            return [o for o in engine.roster() if isinstance(o, AgentStateChanged | AgentLoad)]

        return await anyio.to_thread.run_sync(take, limiter=self._writer)

    def explain(self, task: str) -> Explanation:
        engine, _ = self._live()
        return engine.explain(task)

    def check_invariants(self) -> None:
        engine, _ = self._live()
        engine.check_invariants()

    @property
    def engine(self) -> Engine:
        """The routing engine (read it; change it only through the runtime)."""
        return self._live()[0]

    @property
    def config(self) -> EngineConfig:
        if self._config is None:
            raise RuntimeClosedError("the runtime is not running")
        return self._config

    @property
    def last_event_seq(self) -> int:
        return self._event_seq

    def offers(self) -> dict[int, tuple[str, str]]:
        """Open offers: offer id → (interaction, agent)."""
        return dict(self._offers)

    def offer(self, offer: int) -> tuple[str, str] | None:
        """One open offer's (interaction, agent), or None."""
        return self._offers.get(offer)


def _reads_task(c: _Command) -> bool:
    """Whether a completion or a transfer needs the stored interaction (to
    check who holds it, or to credit its agent); otherwise the engine's own
    checks suffice."""
    args = c.args
    return args.get("agent") is not None or bool(args.get("note")) or args.get("resolved") is not None


def _check_strings(*, optional: bool = False, **values: object) -> None:
    """Each named value is a string (or None, when ``optional``)."""
    for name, value in values.items():
        if not isinstance(value, str) and not (optional and value is None):
            raise InvalidInputError(f"{name}: expected a string, got {type(value).__name__}")


def _check_attribute(name: str, value: object) -> None:
    """An attribute's value: a string, true/false, or a finite number (JSON has no NaN)."""
    if not isinstance(value, bool | int | float | str):
        raise InvalidInputError(
            f"attributes.{name}: expected a string, a number or true/false, got {type(value).__name__}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInputError(f"attributes.{name}: {value!r} is not a finite number")


def _check_offer_id(offer: object) -> None:
    if not isinstance(offer, int) or isinstance(offer, bool) or not 0 <= offer < 2**64:
        raise InvalidInputError(f"offer: expected an offer id (a whole number ≥ 0), got {offer!r}")


def _validated(value: _T, cls: type[_T], where: str = "") -> _T:
    """``value`` checked against its type's constraints (a struct built in
    Python skips them); the error names the field."""
    try:
        return msgspec.convert(msgspec.to_builtins(value), cls)
    except msgspec.ValidationError as e:
        raise from_validation(e, where=where) from e


# What an event happened to: an interaction, an agent, a customer, a conversation.
_SUBJECTS: dict[type, Callable[[Any], str]] = {
    InteractionCreated: lambda d: d.interaction.id,
    InteractionUpdated: attrgetter("interaction"),
    CustomerCreated: lambda d: d.customer.id,
    CustomerUpdated: lambda d: d.customer.id,
    IdentityAdded: lambda d: d.identity.customer_id,
    ConversationOpened: lambda d: d.conversation.id,
    ConversationClosed: attrgetter("conversation"),
    MessageAdded: lambda d: d.message.interaction_id,
    NoteAdded: lambda d: d.note.customer_id,
    CustomersMerged: lambda d: d.merge.survivor,
    MergeUndone: lambda d: d.merge.survivor,
    ConfigApplied: lambda d: "config",
    ConsultSent: attrgetter("to"),
    DeliveryUpdated: attrgetter("interaction"),
    AgentStateChanged: attrgetter("agent"),
    AgentLoad: attrgetter("agent"),
}
# The engine events that change an interaction's record or end a wrap-up.
_DERIVED = frozenset(
    {
        TaskQueued,
        OfferMade,
        OfferRejected,
        OfferTimedOut,
        OfferRescinded,
        TaskAssigned,
        TaskCancelled,
        TaskCompleted,
        TaskTransferred,
        AgentStateChanged,
    }
)
# A tuple made once: a union in the isinstance would be built at each test.
_OFFER_ENDED = (OfferRejected, OfferTimedOut, OfferRescinded)
# Every other engine event is about a task.
_TASK = attrgetter("task")
_KINDS: dict[type, tuple[str, Callable[[Any], str]]] = {}


def _kind(data: EventData) -> tuple[str, Callable[[Any], str]]:
    """An event's type name and how to find its subject (worked out once per class)."""
    cls = type(data)
    found = _KINDS.get(cls)
    if found is None:
        found = _KINDS[cls] = (_tag(data), _SUBJECTS.get(cls, _TASK))
    return found
