//! omniroute-core: the routing engine and the metrics aggregation of
//! omniroute, in pure Rust. It knows nothing of I/O, clocks or Python.

pub mod engine;
pub mod error;
pub mod feed;
pub mod metrics;
pub mod model;
pub mod sim;

pub use engine::{Counters, Engine, FEATURES};
pub use error::{Error, Result};
