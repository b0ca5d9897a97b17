"""Long timelines and transcripts, kept decoded between reads of a customer's context.

Reading a customer's context decodes every past interaction and every
message of the open conversation: for a customer with a thousand of each,
most of the read. A returning customer's next read needs only what changed
since, so the store keeps the decoded entries of long timelines and
transcripts here, and each read checks them against the database in the
same statement that fetches the changes (``sql.py``, ``Reader.context``):

- a timeline is checked by the number of its sealed interactions and the
  newest ``sealed_seq`` among them (schema version 10: every write of an
  interaction's record takes a number higher than any committed before it);
- a transcript by the number of its messages, which are never changed or
  removed once written.

What is kept is only ever a copy of what the database holds, so it is
right for every process and every writer; a check that fails falls back to
reading everything. Entries are frozen records shared between readers, and
each kept list is replaced, never changed in place.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from omniroute.errors import InvalidInputError
from omniroute.store.records import Message, TimelineEntry

__all__ = ["DEFAULT_CAPACITY", "SMALLEST_KEPT", "Kept", "KeptTimeline"]

# About 1 KB each in memory (an interaction with a note, or a message, as
# measured with tracemalloc): 100,000 entries are about 100 MB.
DEFAULT_CAPACITY = 100_000
# Shorter timelines and transcripts are read whole: a few dozen rows cost
# less than keeping them.
SMALLEST_KEPT = 64


class KeptTimeline:
    """A customer's sealed (finished) interactions, oldest first, as of
    ``newest``: the highest ``sealed_seq`` among them."""

    __slots__ = ("_ids", "entries", "newest")

    def __init__(self, newest: int, entries: list[TimelineEntry], ids: frozenset[str] | None = None) -> None:
        self.newest = newest
        self.entries = entries
        self._ids = ids

    @property
    def ids(self) -> frozenset[str]:
        """The entries' interaction ids: made when a read first brings the
        timeline up to date (a cold read does not need them), then carried
        from one version to the next. (Two threads may both make them: the
        same set.)"""
        if self._ids is None:
            self._ids = frozenset(e.interaction.id for e in self.entries)
        return self._ids


class Kept:
    """Decoded timelines and transcripts, at most ``capacity`` entries in
    all, the least recently used dropped first. Thread-safe: readers on
    several threads share it."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, smallest: int = SMALLEST_KEPT) -> None:
        if capacity < 0:
            raise InvalidInputError(f"context_kept_entries: {capacity} is negative; 0 keeps none")
        self.capacity = capacity
        # An empty transcript is never kept: a kept one has a last message.
        self.smallest = max(1, smallest)
        self._lock = threading.Lock()
        # One LRU order over both kinds; the key says which.
        self._items: OrderedDict[tuple[str, str], tuple[int, object]] = OrderedDict()
        self._size = 0
        self.hits = 0
        self.misses = 0

    @property
    def size(self) -> int:
        """Entries kept now (interactions and messages)."""
        return self._size

    def timeline(self, customer_id: str) -> KeptTimeline | None:
        found = self._get(("timeline", customer_id))
        return found if isinstance(found, KeptTimeline) else None

    def keep_timeline(self, customer_id: str, kept: KeptTimeline) -> None:
        self._put(("timeline", customer_id), kept, len(kept.entries))

    def transcript(self, conversation_id: str) -> list[Message] | None:
        found = self._get(("transcript", conversation_id))
        return found if isinstance(found, list) else None

    def keep_transcript(self, conversation_id: str, messages: list[Message]) -> None:
        self._put(("transcript", conversation_id), messages, len(messages))

    def counted(self, hit: bool) -> None:
        """Count a timeline or transcript read from what was kept (a hit) or read whole."""
        if hit:
            self.hits += 1
        else:
            self.misses += 1

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0

    def _get(self, key: tuple[str, str]) -> object | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[1]

    def _put(self, key: tuple[str, str], value: object, size: int) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= old[0]
            if size < self.smallest or size > self.capacity:
                return
            self._items[key] = (size, value)
            self._size += size
            while self._size > self.capacity:
                _, (dropped, _) = self._items.popitem(last=False)
                self._size -= dropped
