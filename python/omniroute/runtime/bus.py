"""The in-process event bus: bounded per-subscriber buffers that never hold routing back."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence

import anyio
from msgspec import Struct

from omniroute.errors import RuntimeClosedError
from omniroute.runtime.events import Envelope

__all__ = ["EventBus", "SubscriberStats", "Subscription"]

# Reads the log after a seq: (after, limit) -> envelopes in seq order.
LogReader = Callable[[int, int], Awaitable[list[Envelope]]]


class SubscriberStats(Struct, frozen=True, kw_only=True):
    name: str
    delivered: int
    # Events that did not fit the buffer when published; a subscription
    # with catch_up reads them back from the event log.
    lost: int
    buffered: int
    behind: bool


class Subscription:
    """An ordered stream of events. ``async for envelope in subscription``.

    Publishing never waits for a subscriber. When the buffer is full the
    event is dropped and counted as lost; the subscription then reads what
    it missed from the event log (``catch_up=True``, the default) before it
    takes live events again, so it sees every event once and in order. With
    ``catch_up=False`` it skips the gap instead (for screens that only want
    what is current).
    """

    def __init__(
        self, bus: EventBus, name: str, buffer: int, types: frozenset[str] | None, catch_up: bool, after: int
    ) -> None:
        self._bus = bus
        self.name = name
        self._buffer: deque[Envelope] = deque()
        self._capacity = buffer
        self._types = types
        self._catch_up = catch_up
        self._wake = anyio.Event()
        self._closed = False
        # The last seq handed out (or skipped) and whether live events are
        # being dropped until the log has been read up to the bus's seq.
        self.last_seq = after
        self._behind = catch_up and after < bus.last_seq
        self.delivered = 0
        self.lost = 0

    def wants(self, envelope: Envelope) -> bool:
        return self._types is None or envelope.type in self._types

    def _offer_all(self, envelopes: Sequence[Envelope]) -> None:
        """Take the events of one batch that this subscription wants, as far
        as its buffer has room, and wake its reader once."""
        types = self._types
        wanted = envelopes if types is None else [e for e in envelopes if e.type in types]
        if not wanted:
            if not self._buffer and not self._behind:
                # Nothing waits to be read: the skipped events count as seen.
                self.last_seq = envelopes[-1].seq
            return
        room = 0 if self._behind else self._capacity - len(self._buffer)
        if len(wanted) <= room:
            self._buffer.extend(wanted)
        else:
            # What does not fit is not handed over: read back from the log
            # later, or skipped for good.
            if room > 0:
                self._buffer.extend(wanted[:room])
            self.lost += len(wanted) - max(room, 0)
            self._behind = self._catch_up
        self._wake.set()

    async def receive(self) -> Envelope:
        while True:
            if self._buffer:
                envelope = self._buffer.popleft()
                self.last_seq = envelope.seq
                self.delivered += 1
                return envelope
            if self._closed:
                raise anyio.EndOfStream
            if self._behind:
                await self._read_log()
                continue
            self._wake = anyio.Event()
            await self._wake.wait()

    async def _read_log(self) -> None:
        target = self._bus.last_seq
        while self.last_seq < target:
            page = await self._bus.read_log(self.last_seq, 1000)
            if not page:
                # The log ends before the bus's seq: nothing more to read.
                self.last_seq = target
                break
            for envelope in page:
                if envelope.seq > target:
                    break
                if self.wants(envelope):
                    self._buffer.append(envelope)
                # Skipped types count as seen, so the next page starts after them.
                self.last_seq = envelope.seq
            if self._buffer:
                # Hand these out first; the rest of the gap is read after.
                return
        # Live again once the log has been read up to the bus's last event;
        # if more was dropped meanwhile, the next receive reads on.
        if self.last_seq >= self._bus.last_seq:
            self._behind = False

    def close(self) -> None:
        self._closed = True
        self._bus._unsubscribe(self)
        self._wake.set()

    def stats(self) -> SubscriberStats:
        return SubscriberStats(
            name=self.name,
            delivered=self.delivered,
            lost=self.lost,
            buffered=len(self._buffer),
            behind=self._behind,
        )

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Envelope:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """Fans committed events out to subscribers, in seq order."""

    def __init__(self, read_log: LogReader, *, last_seq: int = 0, default_buffer: int = 10_000) -> None:
        self.read_log = read_log
        self.last_seq = last_seq
        self.default_buffer = default_buffer
        self._subscribers: list[Subscription] = []
        self._count = 0
        self._closed = False

    def subscribe(
        self,
        *,
        types: Iterable[str] | None = None,
        buffer: int | None = None,
        catch_up: bool = True,
        after: int | None = None,
        name: str | None = None,
    ) -> Subscription:
        """A new subscription to events after ``after`` (default: from now on)."""
        if self._closed:
            raise RuntimeClosedError("the runtime has stopped: there are no more events to follow")
        capacity = self.default_buffer if buffer is None else buffer
        if capacity < 1:
            raise ValueError(f"buffer: {capacity} must be at least 1")
        start = self.last_seq if after is None else after
        if not 0 <= start <= self.last_seq:
            raise ValueError(f"after: {start} is not between 0 and the last event, {self.last_seq}")
        self._count += 1
        subscription = Subscription(
            self,
            name or f"subscriber-{self._count}",
            capacity,
            None if types is None else frozenset(types),
            catch_up,
            start,
        )
        self._subscribers.append(subscription)
        return subscription

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Hand committed events to every subscriber; never waits."""
        if not envelopes:
            return
        for subscription in self._subscribers:
            subscription._offer_all(envelopes)
        self.last_seq = envelopes[-1].seq

    def close(self) -> None:
        self._closed = True
        for subscription in list(self._subscribers):
            subscription.close()

    def _unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscribers:
            self._subscribers.remove(subscription)

    def stats(self) -> list[SubscriberStats]:
        return [s.stats() for s in self._subscribers]
