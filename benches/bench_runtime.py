"""The live engine: sustained intake on SQLite and PostgreSQL, the customer's context, and restart.

Each figure is a ratio against a baseline measured in the same run:

- intake (interactions created, stored, routed, answered and completed per
  second, through the runtime with its event bus and storage) against the
  same work through the routing engine alone, in memory;
- ``context()`` for a customer with 1,000 past interactions (and the open
  conversation's 1,000 messages) against a primary-key read of the customer
  on the same store: cold (nothing kept decoded from an earlier read, as on
  a process's first read of that customer) and returning (the customer comes
  back before each read, one more contact answered and completed, so each
  read brings what the store keeps up to date: ``store/kept.py``);
- ``context()`` cold while the runtime takes in 20,000 interactions, read
  from another thread every 10 ms, against the same reads with the runtime
  idle;
- restart with 100,000 waiting tasks (snapshot read from storage, engine and
  metrics restored, invariants checked, runtime serving) against restoring
  the engine from the same snapshot bytes in memory.

Intake and ``context()`` run with the cycle collector as ``omniroute
run`` sets it up in the service's process (``tune_gc``), and with CPython's
defaults. Intake runs on the service's event loop (uvloop, as ``omniroute
run`` and ``omniroute serve`` run it), and on asyncio's own for comparison.

Timings are never asserted; what must hold (everything answered, nothing
lost) is. Under ``--benchmark-disable`` the sizes shrink so the file runs as
a quick test in a debug build.
"""

from __future__ import annotations

import gc
import math
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, TypeVarTuple, Unpack

import anyio
import pytest

from omniroute import Engine
from omniroute.model import (
    Accept,
    AddTask,
    AgentConfig,
    ChannelConfig,
    Complete,
    EngineConfig,
    NewTask,
    OfferMade,
    QueueConfig,
)
from omniroute.runtime import IdentityIn, ManualClock, MessageIn, NewInteraction, Runtime, RuntimeSettings
from omniroute.runtime.service import run_on_service_loop, tune_gc
from omniroute.store import SqlStore, open_store
from workload import percentile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import pg

INTAKE = {"full": 20_000, "test": 300}
CONTEXT_HISTORY = {"full": 1_000, "test": 100}
CONTEXT_READS = {"full": 500, "test": 20}
RESTART_WAITING = {"full": 100_000, "test": 2_000}
TARGET_INTAKE_SQLITE = 5_000
TARGET_CONTEXT_P99_MS = 5.0
TARGET_RESTART_S = 2.0

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[pg.PostgresServer]:
    """The tests' server when they ran in the same session, else one of its own."""
    with pg.shared() as server:
        yield server


@pytest.fixture
def mode(request: pytest.FixtureRequest) -> str:
    return "test" if request.config.getoption("benchmark_disable") else "full"


def centre(agents: int = 50) -> EngineConfig:
    return EngineConfig(
        channels=[ChannelConfig(name="email", cost=1), ChannelConfig(name="chat", cost=20)],
        queues=[QueueConfig(name="support", offer_timeout=600.0)],
        agents=[AgentConfig(id=f"a{i}", capacity=60, queues={"support": 0}) for i in range(agents)],
    )


def new_interaction(i: int) -> NewInteraction:
    return NewInteraction(
        channel="email",
        queue="support",
        identities=[IdentityIn(kind="email", value=f"customer{i % 2000}@example.com")],
        message=MessageIn(body=f"Order {i}: where is it?"),
        sticky=False,
    )


async def intake(store_url: str, n: int) -> float:
    """Create ``n`` interactions with at most 1,000 unfinished while agents
    accept and complete each offer as it arrives; seconds from the first
    create to the last completion.

    The clients are pools of long-lived tasks, as a connector or a server's
    workers would be: 1,000 creating, 200 answering. (A task spawned per call
    cost the interpreter about 30 us, a third of the time measured, and it
    measured anyio rather than the runtime.) They yield to the event loop
    only when they have to wait: the window's semaphore takes a free place
    without a checkpoint, and an answering task takes the next offer without
    one while offers are queued (each checkpoint is a pass of the event loop:
    3.3 % of the instructions per interaction, by callgrind)."""
    async with Runtime.open(open_store(store_url), centre()) as runtime:
        elapsed = await take_in(runtime, n)
        with runtime.store.read() as r:
            assert r.count("interactions") == n
            assert sum(1 for _ in r.interactions(status=["completed"])) == n
    return elapsed


async def take_in(runtime: Runtime, n: int) -> float:
    """``intake``'s work on a running runtime; seconds it took."""
    completed = anyio.Event()
    done = 0
    window = anyio.Semaphore(1000, fast_acquire=True)
    send, receive = anyio.create_memory_object_stream[tuple[bool, Any]](max_buffer_size=math.inf)
    ids = iter(range(n))

    async def customer() -> None:
        for i in ids:
            await window.acquire()
            await runtime.create_interaction(new_interaction(i))

    async def agent() -> None:
        while True:
            try:
                is_offer, ref = receive.receive_nowait()
            except anyio.WouldBlock:
                try:
                    is_offer, ref = await receive.receive()
                except anyio.EndOfStream:
                    return
            except anyio.EndOfStream:
                return
            if is_offer:
                await runtime.accept(ref)
            else:
                await runtime.complete(ref)

    async def dispatch() -> None:
        nonlocal done
        with runtime.subscribe(types=["offer_made", "task_assigned", "task_completed"]) as events:
            async for envelope in events:
                data = envelope.data
                if envelope.type == "offer_made":
                    assert isinstance(data, OfferMade)
                    send.send_nowait((True, data.offer))
                elif envelope.type == "task_assigned":
                    send.send_nowait((False, envelope.subject))
                else:
                    done += 1
                    window.release()
                    if done == n:
                        completed.set()
                        return

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(dispatch)
        for _ in range(200):
            tg.start_soon(agent)
        for _ in range(1000):
            tg.start_soon(customer)
        await completed.wait()
        send.close()
    elapsed = time.perf_counter() - started
    receive.close()
    runtime.check_invariants()
    return elapsed


def engine_alone(n: int) -> float:
    """The same work through the engine in memory: add, accept, complete."""
    engine = Engine(centre(), now=0.0)
    started = time.perf_counter()
    now = 0.0
    for start in range(0, n, 1000):
        now += 1.0
        result = engine.process(
            [
                AddTask(task=NewTask(id=f"t{i}", channel="email", queue="support"))
                for i in range(start, min(n, start + 1000))
            ],
            now,
        )
        offers = [e for e in result.events if isinstance(e, OfferMade)]
        engine.process([Accept(offer=o.offer) for o in offers], now)
        engine.process([Complete(task=o.task) for o in offers], now)
    elapsed = time.perf_counter() - started
    assert engine.task_count == 0
    return elapsed


@contextmanager
def collector(settings: str) -> Iterator[None]:
    """The cycle collector as ``omniroute run`` sets it (``tune_gc``), or
    CPython's defaults; put back afterwards."""
    if settings == "default":
        yield
        return
    threshold = gc.get_threshold()
    tune_gc()
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def run_loop(loop: str, func: Callable[[Unpack[_Ts]], Awaitable[_T]], *args: *_Ts) -> _T:
    """``func`` on the service's event loop (uvloop, as ``omniroute run``
    and ``omniroute serve`` run it) or on asyncio's own."""
    if loop == "service":
        return run_on_service_loop(func, *args)
    return anyio.run(func, *args)


@pytest.mark.parametrize(
    ("backend", "gc_settings", "loop"),
    [
        ("sqlite", "service", "service"),
        ("sqlite", "service", "asyncio"),
        ("sqlite", "default", "service"),
        ("postgresql", "service", "service"),
    ],
)
def test_sustained_intake(
    benchmark: Any, mode: str, backend: str, gc_settings: str, loop: str, tmp_path: Path, request: Any
) -> None:
    n = INTAKE[mode]
    url = f"sqlite:///{tmp_path}/bench.db"
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_server").create_database(f"bench_{tmp_path.name[-20:]}")
    with collector(gc_settings):
        seconds = benchmark.pedantic(lambda: run_loop(loop, intake, url, n), rounds=1, iterations=1)
        baseline = engine_alone(n)
    rate = n / seconds
    benchmark.extra_info.update(
        {
            "interactions_per_second": rate,
            "engine_alone_per_second": n / baseline,
            "ratio": baseline / seconds,
            "gc": gc_settings,
            "loop": loop,
        }
    )
    target = f" (target {TARGET_INTAKE_SQLITE:,}/s)" if backend == "sqlite" else ""
    print(
        f"\nintake {backend}, {gc_settings} collector settings, {loop} event loop: "
        f"{rate:,.0f} interactions/s created, "
        f"stored, routed, answered, completed{target}; "
        f"engine alone in memory {n / baseline:,.0f}/s; runtime/engine = {baseline / seconds:.3f}"
    )


async def contact(runtime: Runtime, clock: ManualClock, i: int) -> str:
    """One more contact of the same customer, on e-mail or chat, answered,
    completed with a note an hour later; returns the customer."""
    ack = await runtime.create_interaction(
        NewInteraction(
            channel=("email", "chat")[i % 2],
            queue="support",
            identities=[IdentityIn(kind="email", value="regular@example.com")],
            message=MessageIn(body=f"Contact {i}"),
        )
    )
    offer = next(o for o, (task, _) in runtime.offers().items() if task == ack.interaction)
    await runtime.accept(offer)
    clock.advance(30)
    await runtime.complete(ack.interaction, disposition="answered", note=f"note {i}")
    clock.advance(3600)
    return ack.customer


def timed_context(store: SqlStore, customer: str) -> tuple[float, int, int]:
    """One read of the customer's context: its seconds, and its timeline's
    and transcript's lengths. The context is freed on return, after the
    timing, not inside the next read's (for a cold read, 2,000 records that
    the kept entries' clear left to it)."""
    started = time.perf_counter()
    with store.read() as r:
        context = r.context(customer)
    return time.perf_counter() - started, len(context.timeline), len(context.transcript)


async def read_contexts(store_url: str, history: int, reads: int, returning: bool) -> tuple[Any, ...]:
    """A customer with ``history`` finished interactions across channels, with
    notes, and their open conversation's messages; then ``reads`` reads of
    their context, each timed, with a primary-key read of the customer after
    each as the baseline. Cold: nothing kept from the read before. Returning:
    the customer comes back before each read (one more contact, answered and
    completed), so each read brings what is kept up to date."""
    clock = ManualClock(1_700_000_000.0)
    timings: list[float] = []
    baseline: list[float] = []
    async with Runtime.open(open_store(store_url), centre(4), clock=clock) as runtime:
        for i in range(history):
            customer = await contact(runtime, clock, i)
        store = runtime.store
        for n in range(reads):
            if returning:
                await contact(runtime, clock, history + n)
            else:
                store.kept.clear()
            seconds, entries, messages = timed_context(store, customer)
            timings.append(seconds)
            assert entries == history + (n + 1 if returning else 0)
            assert messages == entries
            started = time.perf_counter()
            with store.read() as r:
                r.customer(customer)
            baseline.append(time.perf_counter() - started)
        kept = (store.kept.hits, store.kept.misses)
    return timings, baseline, kept


@pytest.mark.parametrize(
    ("backend", "reads", "gc_settings"),
    [
        ("sqlite", "cold", "service"),
        ("sqlite", "returning", "service"),
        ("sqlite", "returning", "default"),
        ("postgresql", "cold", "service"),
        ("postgresql", "returning", "service"),
    ],
)
def test_context_p99(
    benchmark: Any, mode: str, backend: str, reads: str, gc_settings: str, tmp_path: Path, request: Any
) -> None:
    url = f"sqlite:///{tmp_path}/context.db"
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_server").create_database(f"context_{tmp_path.name[-20:]}")
    history = CONTEXT_HISTORY[mode]
    result: list[Any] = []

    def run() -> None:
        result.extend(anyio.run(read_contexts, url, history, CONTEXT_READS[mode], reads == "returning"))

    # "service": in the service's process, as ``omniroute run`` sets the collector up.
    with collector(gc_settings):
        benchmark.pedantic(run, rounds=1, iterations=1)
    timings, baseline, (hits, misses) = result
    p99 = percentile(timings, 99) * 1000
    base_p99 = percentile(baseline, 99) * 1000
    p50 = statistics.median(timings) * 1000
    benchmark.extra_info.update(
        {"p99_ms": p99, "p50_ms": p50, "ratio": p99 / base_p99, "gc": gc_settings, "kept_hits": hits}
    )
    grown = f"{history:,} to {history + CONTEXT_READS[mode]:,}" if reads == "returning" else f"{history:,}"
    print(
        f"\ncontext() {backend} {reads}, {grown} past interactions, {gc_settings} collector settings: "
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms (target {TARGET_CONTEXT_P99_MS} ms); "
        f"customer by key p99 {base_p99:.3f} ms; ratio {p99 / base_p99:.0f}x; "
        f"kept timelines and transcripts used {hits} times, read whole {misses}"
    )


async def contexts_during_intake(
    store_url: str, history: int, n: int, reads: int
) -> tuple[list[float], list[float], float]:
    """A customer with ``history`` finished interactions; ``reads`` cold reads
    of their context with the runtime idle, then cold reads from another
    thread, every 10 ms, while the same runtime takes in ``n`` interactions
    (``take_in``): an agent opening a customer's history while the centre is
    busy. Returns both timings and the intake's seconds."""
    clock = ManualClock(1_700_000_000.0)
    async with Runtime.open(open_store(store_url), centre(), clock=clock) as runtime:
        for i in range(history):
            customer = await contact(runtime, clock, i)
        store = runtime.store

        def cold_read() -> float:
            store.kept.clear()
            seconds, entries, _ = timed_context(store, customer)
            assert entries == history
            return seconds

        idle = [cold_read() for _ in range(reads)]
        loaded: list[float] = []
        stop = threading.Event()

        def reader() -> None:
            while not stop.is_set():
                loaded.append(cold_read())
                stop.wait(0.01)

        thread = threading.Thread(target=reader, name="context-reader")
        thread.start()
        try:
            seconds = await take_in(runtime, n)
        finally:
            stop.set()
            thread.join()
        with store.read() as r:
            assert r.count("interactions") == history + n
    return idle, loaded, seconds


def test_context_during_intake(benchmark: Any, mode: str, tmp_path: Path) -> None:
    """Cold ``context()`` reads while the runtime takes in interactions, on
    SQLite, against the same reads with the runtime idle: the reading thread
    shares the interpreter with the runtime's event loop and batch thread."""
    history = CONTEXT_HISTORY[mode]
    result: list[Any] = []

    def run() -> None:
        url = f"sqlite:///{tmp_path}/loaded.db"
        result.extend(anyio.run(contexts_during_intake, url, history, INTAKE[mode], CONTEXT_READS[mode]))

    with collector("service"):
        benchmark.pedantic(run, rounds=1, iterations=1)
    idle, loaded, seconds = result
    assert loaded, "no read finished during the intake"
    idle_p50, loaded_p50 = statistics.median(idle) * 1000, statistics.median(loaded) * 1000
    idle_p99, loaded_p99 = percentile(idle, 99) * 1000, percentile(loaded, 99) * 1000
    benchmark.extra_info.update(
        {
            "idle_p50_ms": idle_p50,
            "loaded_p50_ms": loaded_p50,
            "loaded_p99_ms": loaded_p99,
            "reads": len(loaded),
        }
    )
    print(
        f"\ncontext() sqlite cold, {history:,} past interactions, during intake "
        f"({INTAKE[mode] / seconds:,.0f} interactions/s meanwhile): {len(loaded)} reads, "
        f"p50 {loaded_p50:.2f} ms, p99 {loaded_p99:.2f} ms; "
        f"idle p50 {idle_p50:.2f} ms, p99 {idle_p99:.2f} ms; ratio {loaded_p50 / idle_p50:.1f}x at p50"
    )


async def fill_waiting(store_url: str, waiting: int) -> None:
    """``waiting`` tasks in the queue with every agent away, then a clean stop (snapshot)."""
    config = EngineConfig(
        channels=[ChannelConfig(name="email", cost=1)],
        queues=[QueueConfig(name="support")],
        agents=[AgentConfig(id="a0", queues={"support": 0}, available=False)],
    )
    settings = RuntimeSettings(max_batch=5000)
    async with Runtime.open(open_store(store_url), config, settings=settings) as runtime:
        async with anyio.create_task_group() as tg:
            for i in range(waiting):
                tg.start_soon(
                    runtime.create_interaction,
                    NewInteraction(
                        channel="email",
                        queue="support",
                        identities=[IdentityIn(kind="email", value=f"w{i}@example.com")],
                    ),
                )
                if i % 5000 == 4999:
                    await anyio.sleep(0)
        assert runtime.engine.waiting == waiting


async def restart(store_url: str) -> tuple[float, int]:
    started = time.perf_counter()
    async with Runtime.open(open_store(store_url)) as runtime:
        seconds = time.perf_counter() - started
        return seconds, runtime.engine.waiting


def test_restart_with_waiting_tasks(benchmark: Any, mode: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/restart.db"
    waiting = RESTART_WAITING[mode]
    anyio.run(fill_waiting, url, waiting)
    seconds, found = benchmark.pedantic(lambda: anyio.run(restart, url), rounds=1, iterations=1)
    assert found == waiting
    store = open_store(url)
    try:
        with store.read() as r:
            snapshot = r.latest_snapshot()
    finally:
        store.close()
    assert snapshot is not None
    started = time.perf_counter()
    Engine.restore(snapshot.engine).check_invariants()
    baseline = time.perf_counter() - started
    benchmark.extra_info.update({"restart_seconds": seconds, "restore_in_memory_seconds": baseline})
    print(
        f"\nrestart with {waiting:,} waiting tasks: {seconds:.3f} s (target {TARGET_RESTART_S} s); "
        f"engine restore from the same snapshot in memory {baseline:.3f} s; ratio {seconds / baseline:.1f}x"
    )
