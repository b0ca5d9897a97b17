"""Routing throughput: decisions per second through the batch API, against the reference model, and as
the number of agents grows.

A routing decision is an offer made. The workload (``workload.py``) is kept in
steady state: each batch accepts the previous batch's offers and completes
tasks at random, and each freed agent takes its next task from the backlog.
Every figure is reported as a ratio against a baseline measured in the same
run, in ``benchmark.extra_info`` and in one printed line. Timings are never
asserted; what must hold of each batch is (``Driver.check``).

Under ``--benchmark-disable`` the sizes shrink so that the file runs as a quick
test in a debug build.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from omniroute import Engine
from omniroute.model import batch_decoder, encoder
from omniroute.reference import ReferenceEngine
from workload import Driver, Workload, percentile

# (agents, tasks, completes per batch, measured batches): full size, then as a test.
MAIN = {"full": (10_000, 100_000, 450, 60), "test": (1_000, 10_000, 200, 4)}
REFERENCE = {"full": (200, 2_000, 50, 5), "test": (40, 400, 10, 2)}
SCALING = {
    "full": [(1_000, 10_000), (10_000, 100_000), (100_000, 1_000_000)],
    "test": [(100, 1_000), (300, 3_000), (1_000, 10_000)],
}
SCALING_BATCH = {"full": (450, 40), "test": (50, 3)}
TARGET_DECISIONS_PER_SECOND = 300_000
TARGET_REFERENCE_RATIO = 50


@pytest.fixture
def mode(request: pytest.FixtureRequest) -> str:
    return "test" if request.config.getoption("benchmark_disable") else "full"


def steady(engine: Engine | ReferenceEngine, workload: Workload, completes: int) -> Driver:
    """A loaded engine after two warm-up batches."""
    driver = Driver(engine, workload, completes)
    driver.load()
    for _ in range(2):
        driver.step(driver.next_batch())
    if isinstance(engine, Engine) and workload.tasks <= 10_000:
        engine.check_invariants()
    driver.reset()
    return driver


def run(benchmark: Any, driver: Driver, batches: int) -> None:
    """Time ``batches`` steady-state batches, one per benchmark round (a disabled
    benchmark runs its target once: the driver runs the other batches itself)."""
    if not benchmark.enabled:
        for _ in range(batches - 1):
            driver.step(driver.next_batch())
    benchmark.pedantic(driver.step, setup=lambda: ((driver.next_batch(),), {}), rounds=batches)
    assert driver.decisions > 0


def report(benchmark: Any, line: str, **info: object) -> None:
    benchmark.extra_info.update(info)
    print(f"\n{line}")


def test_decisions_per_second_through_the_batch_api(benchmark: Any, mode: str) -> None:
    agents, tasks, completes, batches = MAIN[mode]
    workload = Workload(agents=agents, tasks=tasks)
    engine = Engine(workload.config)
    driver = steady(engine, workload, completes)
    run(benchmark, driver, batches)
    if mode == "test":
        engine.check_invariants()

    # Baseline: the bare MessagePack round trip of the same batches and results,
    # the least any batch API pays at the boundary.
    cpu = time.process_time()
    for batch, result, _ in driver.samples:
        encoder.encode(batch)
        batch_decoder.decode(encoder.encode(result))
    codec = time.process_time() - cpu
    ratio = sum(spent for _, _, spent in driver.samples) / codec
    p99 = percentile(driver.latencies, 99) * 1e3
    events = driver.inputs / len(driver.latencies)
    report(
        benchmark,
        f"batch API, {agents:,} agents, {tasks:,} tasks, {events:,.0f} events/batch: "
        f"{driver.rate:,.0f} decisions/s by the clock, {driver.cpu_rate:,.0f} per CPU second "
        f"(target {TARGET_DECISIONS_PER_SECOND:,}); p99 {p99:.2f} ms/batch; "
        f"{ratio:.1f}x the MessagePack round trip of the same batches",
        decisions_per_second=round(driver.rate),
        decisions_per_cpu_second=round(driver.cpu_rate),
        decisions=driver.decisions,
        events_per_batch=round(events),
        p99_batch_ms=round(p99, 3),
        ratio_to_codec_round_trip=round(ratio, 2),
        target_decisions_per_second=TARGET_DECISIONS_PER_SECOND,
    )


def test_reference_model_on_the_same_workload(benchmark: Any, mode: str) -> None:
    agents, tasks, completes, batches = REFERENCE[mode]
    workload = Workload(agents=agents, tasks=tasks)
    # Baseline: the engine at the same size, on the same batches.
    engine = steady(Engine(workload.config), workload, completes)
    for _ in range(batches * 4):
        engine.step(engine.next_batch())
    model = ReferenceEngine(workload.config)
    reference = steady(model, workload, completes)
    run(benchmark, reference, batches)
    model.check_invariants()
    ratio = engine.cpu_rate / reference.cpu_rate
    report(
        benchmark,
        f"reference model, {agents:,} agents, {tasks:,} tasks: "
        f"{reference.cpu_rate:,.0f} decisions per CPU second; the engine makes {engine.cpu_rate:,.0f} "
        f"at this size, {ratio:,.0f}x (target ≥ {TARGET_REFERENCE_RATIO}x)",
        reference_decisions_per_cpu_second=round(reference.cpu_rate),
        engine_decisions_per_cpu_second=round(engine.cpu_rate),
        ratio_engine_to_reference=round(ratio, 1),
        target_ratio=TARGET_REFERENCE_RATIO,
    )


def test_cost_per_decision_as_agents_grow(benchmark: Any, mode: str) -> None:
    completes, batches = SCALING_BATCH[mode]
    sizes = SCALING[mode]
    rows: list[tuple[int, int, float, float]] = []
    for i, (agents, tasks) in enumerate(sizes):
        workload = Workload(agents=agents, tasks=tasks)
        driver = steady(Engine(workload.config), workload, completes)
        if i == len(sizes) - 1:
            run(benchmark, driver, batches)
        else:
            for _ in range(batches):
                driver.step(driver.next_batch())
        rows.append((agents, tasks, driver.cpu_rate, driver.cpu_seconds / driver.decisions * 1e6))
        del driver, workload
    (small, _, _, base), (large, _, _, top) = rows[0], rows[-1]
    ratio = top / base
    table = "\n".join(
        f"  {agents:>9,} agents {tasks:>11,} tasks {rate:>12,.0f} decisions/CPU s {cost:>8.2f} µs/decision"
        for agents, tasks, rate, cost in rows
    )
    report(
        benchmark,
        f"scaling ({completes} completions per batch):\n{table}\n"
        f"  cost per decision at {large:,} agents: {ratio:.2f}x that at {small:,} "
        f"({large // small}x the agents)",
        table=[
            {
                "agents": a,
                "tasks": t,
                "decisions_per_cpu_second": round(r),
                "cpu_us_per_decision": round(c, 3),
            }
            for a, t, r, c in rows
        ],
        ratio_cost_largest_to_smallest=round(ratio, 2),
    )
