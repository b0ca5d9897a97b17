"""Identifiers for stored records: unique, and sorted in the order they were made.

An id is 32 lowercase hexadecimal digits, like a UUID without dashes: 48 bits
of milliseconds since the Unix epoch, then 80 bits that start from a random
value per process and count up. Within a process every id is greater than the
one before, even when the wall clock steps back, so records made in the same
instant (the messages of one batch) still sort in the order they were made;
across processes the time prefix orders them. The random start keeps ids of
two processes in the same millisecond apart.

The layout follows UUIDv7 (RFC 9562) without its version bits, and costs one
lock and an addition instead of a read of the system's random source
(``uuid.uuid4``) per id: in the runtime's writer thread such a system call
hands the interpreter lock to the event loop, and waits to get it back.
"""

from __future__ import annotations

import random
import secrets
import threading
import time

__all__ = ["new_id"]

_COUNTER_BITS = 80
_lock = threading.Lock()
_last = 0
# Not for secrets: only to keep two processes' ids apart. Seeded once from
# the system's random source, then no system call per id.
_random = random.Random(secrets.randbits(128))


def new_id() -> str:
    """A new id, greater than every id this process made before."""
    global _last
    with _lock:
        floor = (time.time_ns() // 1_000_000) << _COUNTER_BITS
        if _last < floor:
            # A new millisecond: start the counter at a random point in its
            # lower half, leaving room to count up within the millisecond.
            _last = floor | _random.getrandbits(_COUNTER_BITS - 1)
        else:
            _last += 1
        return f"{_last:032x}"
