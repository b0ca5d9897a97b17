//! The Python face of omniroute-core: bytes in, bytes out.
//!
//! Batches cross the boundary as MessagePack (msgspec encodes and decodes
//! them on the Python side), so one call carries any number of events and
//! costs one conversion, not one per field.

use omniroute_core::model::{EngineConfig, Input};
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
    /// Lock the engine. Waiting happens with the GIL released, so a thread
    /// routing a large batch without the GIL never waits on one that holds it.
    fn lock(&self, py: Python<'_>) -> PyResult<MutexGuard<'_, CoreEngine>> {
        loop {
            match self.inner.try_lock() {
                Ok(guard) => return Ok(guard),
                Err(TryLockError::WouldBlock) => py.detach(|| drop(self.inner.lock())),
                Err(TryLockError::Poisoned(_)) => {
                    return Err(InvariantError::new_err("the engine was poisoned by an earlier failure"))
                }
            }
        }
    }
}

#[pymethods]
impl Engine {
    #[new]
    fn new(config: &[u8], now: f64) -> PyResult<Self> {
        let config: EngineConfig = rmp_serde::from_slice(config).map_err(|e| InvalidConfigError::new_err(format!("config: {e}")))?;
        let engine = CoreEngine::new(&config, now).map_err(|e| to_py(&e))?;
        Ok(Engine { inner: Mutex::new(engine) })
    }

    /// Apply a batch (a MessagePack array of input events) at `now`; returns
    /// the MessagePack batch result.
    fn process<'py>(&self, py: Python<'py>, now: f64, batch: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let inputs: Vec<Input> = decode("batch", batch)?;
        let mut guard = self.lock(py)?;
        let engine: &mut CoreEngine = &mut guard;
        let result = if inputs.len() >= DETACH_AT {
            py.detach(|| engine.process(now, &inputs))
        } else {
            engine.process(now, &inputs)
        }
        .map_err(|e| to_py(&e))?;
        Ok(PyBytes::new(py, &encode(&result, result_size(&result))?))
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

    /// Offers made, arrivals, inputs applied and inputs refused since creation.
    fn counters(&self, py: Python<'_>) -> PyResult<(u64, u64, u64, u64)> {
        let c = self.lock(py)?.counters();
        Ok((c.offers, c.arrivals, c.inputs, c.refused))
    }
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
