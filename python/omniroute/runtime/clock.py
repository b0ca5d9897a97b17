"""Where the runtime's time comes from: the wall clock, or a clock a test or simulation moves."""

from __future__ import annotations

import math
import time
from typing import Protocol

import anyio

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch (or the clock's own epoch)."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return once ``now() >= deadline`` (or earlier if cancelled)."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> float:
        return time.time()

    async def sleep_until(self, deadline: float) -> None:
        delay = deadline - time.time()
        if delay > 0:
            await anyio.sleep(delay)


class ManualClock:
    """Time that moves only when told to: offer timeouts and relaxation
    steps fall due exactly when a test says so."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._moved = anyio.Event()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"seconds: {seconds!r} must be a finite number >= 0")
        self._now += seconds
        self._moved.set()
        self._moved = anyio.Event()

    async def sleep_until(self, deadline: float) -> None:
        while self._now < deadline:
            await self._moved.wait()
