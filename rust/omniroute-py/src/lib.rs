//! The Python face of omniroute-core: bytes in, bytes out.
//!
//! Batches cross the boundary as MessagePack (msgspec encodes and decodes
//! them on the Python side), so one call carries any number of events and
//! costs one conversion, not one per field.

use omniroute_core::metrics::{
    Aggregator, DimensionKind, MetricsConfig, MetricsError, NamedMetricEvent, SnapshotScope,
};
use omniroute_core::model::{EngineConfig, Input};
use omniroute_core::sim::{Scenario, Simulation as CoreSimulation};
use omniroute_core::{Engine as CoreEngine, Error};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::sync::{Mutex, MutexGuard, TryLockError};

// The engine allocates and frees many small strings and tree nodes per
// decision; mimalloc serves them about 1.5x faster than glibc's allocator
// (docs/performance.md). It governs this library's Rust allocations only.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

create_exception!(_rust, OmnirouteError, PyException, "Base class of every omniroute error.");
create_exception!(_rust, UnknownIdError, OmnirouteError, "An id that the engine does not know.");
create_exception!(_rust, DuplicateIdError, OmnirouteError, "An id that the engine already has.");
create_exception!(_rust, InvalidTransitionError, OmnirouteError, "A call that the current state does not allow.");
create_exception!(_rust, InvalidConfigError, OmnirouteError, "A configuration value that is not accepted.");
create_exception!(_rust, InvalidInputError, OmnirouteError, "An input value that is not accepted.");
create_exception!(_rust, SnapshotError, OmnirouteError, "Bytes that are not a usable snapshot.");
create_exception!(_rust, InvariantError, OmnirouteError, "The engine's state is inconsistent.");

fn to_py(e: &Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::UnknownId { .. } => UnknownIdError::new_err(msg),
        Error::DuplicateId { .. } => DuplicateIdError::new_err(msg),
        Error::InvalidTransition(_) => InvalidTransitionError::new_err(msg),
        Error::InvalidConfig { .. } => InvalidConfigError::new_err(msg),
        Error::InvalidInput { .. } => InvalidInputError::new_err(msg),
        Error::Snapshot(_) => SnapshotError::new_err(msg),
        Error::Invariant(_) => InvariantError::new_err(msg),
    }
}

fn metrics_err(e: &MetricsError) -> PyErr {
    match e {
        MetricsError::InvalidConfig { .. } => InvalidConfigError::new_err(e.to_string()),
        _ => InvalidInputError::new_err(e.to_string()),
    }
}

/// Lock a mutex; waiting happens with the GIL released, so a thread working
/// without the GIL never waits on one that holds it.
fn lock<'a, T: Send>(py: Python<'_>, mutex: &'a Mutex<T>) -> PyResult<MutexGuard<'a, T>> {
    loop {
        match mutex.try_lock() {
            Ok(guard) => return Ok(guard),
            Err(TryLockError::WouldBlock) => py.detach(|| drop(mutex.lock())),
            Err(TryLockError::Poisoned(_)) => return Err(InvariantError::new_err("poisoned by an earlier failure")),
        }
    }
}

/// Results travel as MessagePack arrays (fields by position): the Python
/// structs are `array_like` and list their fields in the same order.
fn encode<T: serde::Serialize>(value: &T, size_hint: usize) -> PyResult<Vec<u8>> {
    // Sized up front: a large result grown by doubling is copied and
    // re-mapped several times over.
    let mut buf = Vec::with_capacity(size_hint);
    rmp_serde::encode::write(&mut buf, value)
        .map_err(|e| OmnirouteError::new_err(format!("encoding the result failed: {e}")))?;
    Ok(buf)
}

/// Bytes to reserve for a batch result: about what an event encodes to.
fn result_size(result: &omniroute_core::model::BatchResult) -> usize {
    64 + result.events.len() * 96 + result.errors.len() * 128
}

fn decode<'a, T: serde::Deserialize<'a>>(what: &str, bytes: &'a [u8]) -> PyResult<T> {
    rmp_serde::from_slice(bytes).map_err(|e| InvalidInputError::new_err(format!("{what}: {e}")))
}

/// Batches of this many events or more are routed without the GIL.
const DETACH_AT: usize = 256;

/// The routing engine. All methods take and return MessagePack bytes;
/// `omniroute.Engine` wraps them with typed msgspec structs.
#[pyclass(module = "omniroute._rust", frozen)]
struct Engine {
    inner: Mutex<CoreEngine>,
}

impl Engine {
    fn lock(&self, py: Python<'_>) -> PyResult<MutexGuard<'_, CoreEngine>> {
        lock(py, &self.inner)
    }
}

#[pymethods]
impl Engine {
    #[new]
    fn new(config: &[u8], now: f64) -> PyResult<Self> {
        let config: EngineConfig =
            rmp_serde::from_slice(config).map_err(|e| InvalidConfigError::new_err(format!("config: {e}")))?;
        let engine = CoreEngine::new(&config, now).map_err(|e| to_py(&e))?;
        Ok(Engine { inner: Mutex::new(engine) })
    }

    /// Apply a batch (a MessagePack array of input events) at `now`; returns
    /// the MessagePack batch result. With `metrics`, the result's events are
    /// recorded there too.
    #[pyo3(signature = (now, batch, metrics=None))]
    fn process<'py>(
        &self,
        py: Python<'py>,
        now: f64,
        batch: &[u8],
        metrics: Option<&Metrics>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let inputs: Vec<Input> = decode("batch", batch)?;
        let mut guard = self.lock(py)?;
        let mut metrics_guard = metrics.map(|m| lock(py, &m.inner)).transpose()?;
        if let Some(last) = metrics_guard.as_ref().and_then(|m| m.last_time()) {
            // Checked before routing: once the engine has moved, its events
            // must reach the metrics, or they would be lost to them. The
            // earliest event this call can make is at its first live timer's
            // time or at `now`, and none is before the engine's own time.
            let earliest =
                if last <= guard.now() { guard.now() } else { guard.next_timer_at().map_or(now, |t| t.min(now)) };
            if earliest < last {
                return Err(InvalidInputError::new_err(format!(
                    "now: this call would report events at {earliest}, before the metrics' time {last} (their \
                     last event or snapshot); read the metrics at the engine's time, or tick the engine first"
                )));
            }
        }
        let engine: &mut CoreEngine = &mut guard;
        let result = if inputs.len() >= DETACH_AT {
            py.detach(|| engine.process(now, &inputs))
        } else {
            engine.process(now, &inputs)
        }
        .map_err(|e| to_py(&e))?;
        if let Some(m) = metrics_guard.as_mut() {
            omniroute_core::feed::record_outputs(m, &result.events)
                .map_err(|e| InvariantError::new_err(format!("the metrics refused the engine's events: {e}")))?;
        }
        Ok(PyBytes::new(py, &encode(&result, result_size(&result))?))
    }

    /// Every agent's state and load now (MessagePack list of events); with
    /// `metrics`, recorded there too.
    #[pyo3(signature = (metrics=None))]
    fn roster<'py>(&self, py: Python<'py>, metrics: Option<&Metrics>) -> PyResult<Bound<'py, PyBytes>> {
        let events = self.lock(py)?.roster();
        if let Some(m) = metrics {
            let mut aggregator = lock(py, &m.inner)?;
            omniroute_core::feed::record_outputs(&mut aggregator, &events).map_err(|e| metrics_err(&e))?;
        }
        Ok(PyBytes::new(py, &encode(&events, events.len() * 48)?))
    }

    /// Fire the timers due by `now`; returns the MessagePack batch result.
    fn tick<'py>(&self, py: Python<'py>, now: f64) -> PyResult<Bound<'py, PyBytes>> {
        let result = self.lock(py)?.process(now, &[]).map_err(|e| to_py(&e))?;
        Ok(PyBytes::new(py, &encode(&result, result_size(&result))?))
    }

    /// Why the task is where it is, agent by agent (MessagePack).
    fn explain<'py>(&self, py: Python<'py>, task: &str) -> PyResult<Bound<'py, PyBytes>> {
        let explanation = self.lock(py)?.explain(task).map_err(|e| to_py(&e))?;
        Ok(PyBytes::new(py, &encode(&explanation, 4096)?))
    }

    /// The whole engine state as bytes.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self.lock(py)?.snapshot().map_err(|e| to_py(&e))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// An engine restored from `snapshot()` bytes.
    #[staticmethod]
    fn restore(py: Python<'_>, snapshot: &[u8]) -> PyResult<Self> {
        let engine = py.detach(|| CoreEngine::restore(snapshot)).map_err(|e| to_py(&e))?;
        Ok(Engine { inner: Mutex::new(engine) })
    }

    /// Raise `InvariantError` naming the first inconsistency, if any.
    fn check_invariants(&self, py: Python<'_>) -> PyResult<()> {
        let guard = self.lock(py)?;
        let engine: &CoreEngine = &guard;
        py.detach(|| engine.check_invariants()).map_err(|e| to_py(&e))
    }

    /// The engine's time: the `now` of the last call.
    #[getter]
    fn now(&self, py: Python<'_>) -> PyResult<f64> {
        Ok(self.lock(py)?.now())
    }

    /// Tasks held in any phase.
    #[getter]
    fn task_count(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.lock(py)?.task_count())
    }

    /// Tasks waiting (not offered, not assigned).
    #[getter]
    fn waiting(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.lock(py)?.waiting())
    }

    /// When the next live timer falls due (relaxation, offer timeout,
    /// reservation, wrap-up, inactivity), or None; cheap after every batch.
    fn next_timer_at(&self, py: Python<'_>) -> PyResult<Option<f64>> {
        Ok(self.lock(py)?.next_timer_at())
    }

    /// Offers made, arrivals, inputs applied and inputs refused since creation.
    fn counters(&self, py: Python<'_>) -> PyResult<(u64, u64, u64, u64)> {
        let c = self.lock(py)?.counters();
        Ok((c.offers, c.arrivals, c.inputs, c.refused))
    }
}

/// The metrics aggregation: service level, ASA, abandons, AHT, occupancy
/// and the rest, per queue, channel, agent and overall.
#[pyclass(module = "omniroute._rust", frozen)]
struct Metrics {
    inner: Mutex<Aggregator>,
}

fn dimension(kind: &str) -> PyResult<DimensionKind> {
    match kind {
        "overall" => Ok(DimensionKind::Overall),
        "queue" => Ok(DimensionKind::Queue),
        "channel" => Ok(DimensionKind::Channel),
        "agent" => Ok(DimensionKind::Agent),
        other => Err(InvalidInputError::new_err(format!(
            "kind: {other:?} is not a dimension; accepted: overall, queue, channel, agent"
        ))),
    }
}

#[pymethods]
impl Metrics {
    #[new]
    fn new(config: &[u8]) -> PyResult<Self> {
        let config: MetricsConfig =
            rmp_serde::from_slice(config).map_err(|e| InvalidConfigError::new_err(format!("metrics config: {e}")))?;
        let aggregator = Aggregator::new(config).map_err(|e| metrics_err(&e))?;
        Ok(Metrics { inner: Mutex::new(aggregator) })
    }

    /// Record events the runtime adds (talk, hold and wrap-up segments,
    /// dispositions, CSAT, ...): a MessagePack array. Stops at the first
    /// refused event; the error says which and that those before it count.
    fn record(&self, py: Python<'_>, batch: &[u8]) -> PyResult<()> {
        let events: Vec<NamedMetricEvent> = decode("batch", batch)?;
        lock(py, &self.inner)?.record_named_batch(&events).map_err(|e| metrics_err(&e))
    }

    /// Every figure at `now` (MessagePack), for the dimensions asked for.
    #[pyo3(signature = (now, queues=true, channels=true, agents=true))]
    fn snapshot<'py>(
        &self,
        py: Python<'py>,
        now: f64,
        queues: bool,
        channels: bool,
        agents: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let scope = SnapshotScope { queues, channels, agents };
        let snapshot = lock(py, &self.inner)?.snapshot_scoped(now, scope).map_err(|e| metrics_err(&e))?;
        Ok(PyBytes::new(py, &encode(&snapshot, 64 * 1024)?))
    }

    /// Past fixed intervals of one dimension that start in `[start, end)`.
    fn intervals<'py>(
        &self,
        py: Python<'py>,
        kind: &str,
        name: &str,
        start: f64,
        end: f64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let kind = dimension(kind)?;
        let list = lock(py, &self.inner)?.intervals(kind, name, start, end).map_err(|e| metrics_err(&e))?;
        Ok(PyBytes::new(py, &encode(&list, 4096)?))
    }

    /// Past fixed intervals of a group of agents (a team), their figures summed.
    // PyO3 extracts a Python list as an owned Vec; there is no borrowed form.
    #[allow(clippy::needless_pass_by_value)]
    fn group_intervals<'py>(
        &self,
        py: Python<'py>,
        agents: Vec<String>,
        start: f64,
        end: f64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let names: Vec<&str> = agents.iter().map(String::as_str).collect();
        let list = lock(py, &self.inner)?.group_intervals(&names, start, end).map_err(|e| metrics_err(&e))?;
        Ok(PyBytes::new(py, &encode(&list, 4096)?))
    }

    /// The aggregator's whole state as bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = lock(py, &self.inner)?.to_bytes().map_err(|e| metrics_err(&e))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// An aggregator restored from `to_bytes()`.
    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<Self> {
        let aggregator = Aggregator::from_bytes(data).map_err(|e| SnapshotError::new_err(e.to_string()))?;
        Ok(Metrics { inner: Mutex::new(aggregator) })
    }
}

/// One replication of a simulation scenario: the real engine and metrics
/// driven in virtual time. `advance` runs it in steps (for a progress bar);
/// a step releases the GIL.
#[pyclass(module = "omniroute._rust", frozen)]
struct Simulation {
    inner: Mutex<CoreSimulation>,
}

fn scenario_of(bytes: &[u8]) -> PyResult<Scenario> {
    rmp_serde::from_slice(bytes).map_err(|e| InvalidConfigError::new_err(format!("scenario: {e}")))
}

#[pymethods]
impl Simulation {
    #[new]
    fn new(scenario: &[u8], replication: u32) -> PyResult<Self> {
        let scenario = scenario_of(scenario)?;
        let sim = CoreSimulation::new(&scenario, replication).map_err(|e| to_py(&e))?;
        Ok(Simulation { inner: Mutex::new(sim) })
    }

    /// Run until virtual time `until` (or the end); True once the run is over.
    fn advance(&self, py: Python<'_>, until: f64) -> PyResult<bool> {
        let mut guard = lock(py, &self.inner)?;
        let sim: &mut CoreSimulation = &mut guard;
        py.detach(|| sim.advance(until)).map_err(|e| to_py(&e))
    }

    /// The replication's results (MessagePack, fields by position).
    fn result<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let result = lock(py, &self.inner)?.result().map_err(|e| to_py(&e))?;
        Ok(PyBytes::new(py, &encode(&result, 64 * 1024)?))
    }

    /// Virtual time reached.
    #[getter]
    fn now(&self, py: Python<'_>) -> PyResult<f64> {
        Ok(lock(py, &self.inner)?.now())
    }

    /// The latest time the run can reach (end of arrivals plus the drain).
    #[getter]
    fn end(&self, py: Python<'_>) -> PyResult<f64> {
        Ok(lock(py, &self.inner)?.end())
    }

    /// Contacts arrived so far.
    #[getter]
    fn arrivals(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(lock(py, &self.inner)?.arrivals())
    }
}

/// Check a scenario (MessagePack) as the simulator would, raising
/// `InvalidConfigError` naming the first bad field.
#[pyfunction]
fn check_scenario(scenario: &[u8]) -> PyResult<()> {
    scenario_of(scenario)?.validate().map_err(|e| to_py(&e))
}

/// Decode one input event, raising `InvalidInputError` that says what is
/// wrong with it (used to find the bad event of a refused batch).
#[pyfunction]
fn check_input(event: &[u8]) -> PyResult<()> {
    decode::<Input>("event", event).map(drop)
}

#[pymodule]
fn _rust(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Engine>()?;
    m.add_class::<Metrics>()?;
    m.add_class::<Simulation>()?;
    m.add_function(wrap_pyfunction!(check_scenario, m)?)?;
    m.add_function(wrap_pyfunction!(check_input, m)?)?;
    m.add("OmnirouteError", py.get_type::<OmnirouteError>())?;
    m.add("UnknownIdError", py.get_type::<UnknownIdError>())?;
    m.add("DuplicateIdError", py.get_type::<DuplicateIdError>())?;
    m.add("InvalidTransitionError", py.get_type::<InvalidTransitionError>())?;
    m.add("InvalidConfigError", py.get_type::<InvalidConfigError>())?;
    m.add("InvalidInputError", py.get_type::<InvalidInputError>())?;
    m.add("SnapshotError", py.get_type::<SnapshotError>())?;
    m.add("InvariantError", py.get_type::<InvariantError>())?;
    m.add("FEATURES", omniroute_core::FEATURES.to_vec())?;
    Ok(())
}
