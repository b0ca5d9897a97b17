"""The routing engine's Python face: typed batches in, typed results out."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from omniroute import _rust
from omniroute.errors import InvalidInputError, error_for_kind
from omniroute.metrics import Metrics
from omniroute.model import (
    BatchResult,
    EngineConfig,
    Explanation,
    Input,
    Output,
    batch_decoder,
    encoder,
    explanation_decoder,
)

__all__ = ["Counters", "Engine"]

_outputs_decoder = msgspec.msgpack.Decoder(list[Output])


class Counters(msgspec.Struct, frozen=True, kw_only=True):
    """What the engine has done since it was created."""

    offers: int
    arrivals: int
    inputs: int
    refused: int


class Engine:
    """One matching queue for every channel.

    The engine never reads a clock: every call carries ``now`` (seconds, on
    any epoch the caller keeps to), and timers fall due when a call's ``now``
    passes them. Calls take and return batches: a list of input events in, the
    offers and events they caused out.
    """

    __slots__ = ("_core",)

    def __init__(self, config: EngineConfig, now: float = 0.0) -> None:
        self._core = _rust.Engine(encoder.encode(config), now)

    @classmethod
    def restore(cls, snapshot: bytes) -> Engine:
        """An engine restored from :meth:`snapshot` bytes."""
        engine = cls.__new__(cls)
        engine._core = _rust.Engine.restore(snapshot)
        return engine

    def process(self, events: Sequence[Input], now: float, *, metrics: Metrics | None = None) -> BatchResult:
        """Apply a batch of input events at ``now``, after the timers due by then.

        Each event is applied whole or refused whole; refused events are listed
        in ``result.errors`` with their index, and the others still apply.
        With ``metrics``, the result's events are recorded there in the same call.
        """
        batch = encoder.encode(events)
        try:
            raw = self._core.process(now, batch, None if metrics is None else metrics.core)
        except InvalidInputError:
            _raise_for_bad_event(events)
            raise
        return batch_decoder.decode(raw)

    def process_encoded(self, now: float, batch: bytes, *, metrics: Metrics | None = None) -> BatchResult:
        """:meth:`process` for a batch already encoded as MessagePack (a log
        replays the bytes it stored)."""
        raw = self._core.process(now, batch, None if metrics is None else metrics.core)
        return batch_decoder.decode(raw)

    def apply(self, event: Input, now: float) -> list[Output]:
        """Apply one event and return what it caused; raise if it is refused."""
        result = self.process([event], now)
        if result.errors:
            error = result.errors[0]
            raise error_for_kind(error.kind, error.message)
        return result.events

    def tick(self, now: float, *, metrics: Metrics | None = None) -> BatchResult:
        """Fire the timers due by ``now``: relaxation, offer timeouts,
        reservations, wrap-up and inactivity."""
        return self.process([], now, metrics=metrics)

    def roster(self, *, metrics: Metrics | None = None) -> list[Output]:
        """Every agent's state and load now, as events; with ``metrics``, recorded
        there too (a reporting engine starts from these)."""
        return _outputs_decoder.decode(self._core.roster(None if metrics is None else metrics.core))

    def explain(self, task: str) -> Explanation:
        """Why the task is where it is, agent by agent."""
        return explanation_decoder.decode(self._core.explain(task))

    def snapshot(self) -> bytes:
        """The whole engine state as bytes, for :meth:`restore`."""
        return self._core.snapshot()

    def check_invariants(self) -> None:
        """Raise :class:`~omniroute.errors.InvariantError` if the state is inconsistent."""
        self._core.check_invariants()

    @property
    def now(self) -> float:
        """The ``now`` of the last call."""
        return self._core.now

    @property
    def task_count(self) -> int:
        """Tasks held in any phase: waiting, offered or assigned."""
        return self._core.task_count

    @property
    def waiting(self) -> int:
        """Tasks waiting: not offered, not assigned."""
        return self._core.waiting

    def next_timer_at(self) -> float | None:
        """When the next timer falls due (relaxation, offer timeout, reservation,
        wrap-up, inactivity), or None: a runtime sleeps until then."""
        return self._core.next_timer_at()

    def counters(self) -> Counters:
        offers, arrivals, inputs, refused = self._core.counters()
        return Counters(offers=offers, arrivals=arrivals, inputs=inputs, refused=refused)


def _raise_for_bad_event(events: Sequence[Input]) -> None:
    """Name the first event of a refused batch that does not decode."""
    for i, event in enumerate(events):
        try:
            _rust.check_input(encoder.encode(event))
        except InvalidInputError as e:
            raise InvalidInputError(f"events[{i}] ({type(event).__name__}): {e}") from e
