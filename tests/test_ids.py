"""Record ids: unique, and sorted in the order they were made, in every thread."""

from __future__ import annotations

import re
import threading
import time

from omniroute.ids import new_id


def test_ids_are_32_hex_digits_led_by_the_time_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    made = new_id()
    after = time.time_ns() // 1_000_000
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert before <= int(made[:12], 16) <= after


def test_ids_made_in_one_instant_sort_in_the_order_they_were_made() -> None:
    made = [new_id() for _ in range(10_000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_ids_from_many_threads_never_repeat() -> None:
    per_thread: list[list[str]] = [[] for _ in range(8)]

    def make(out: list[str]) -> None:
        out.extend(new_id() for _ in range(2_000))

    threads = [threading.Thread(target=make, args=(out,)) for out in per_thread]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for out in per_thread for i in out]
    assert len(set(every)) == len(every)
    for out in per_thread:
        assert out == sorted(out)
