//! A discrete-event simulator that drives the real routing engine and the
//! real metrics in virtual time.
//!
//! Customers arrive (Poisson streams with a rate per interval, or a recorded
//! log replayed), wait with a patience, and are handled for a drawn time;
//! agents work shifts with breaks, accept, reject or let offers time out.
//! Everything the engine decides — offers, relaxation, wrap-up, timeouts,
//! not-responding — is the engine's own code, and every figure comes from the
//! same aggregation production uses. The same seed gives the same result.

mod dist;
mod result;
mod run;
mod scenario;

pub use dist::{Distribution, Sampler};
pub use result::{IntervalReport, QueueLength, Replication, Tally};
pub use run::{replication_seed, run_replication, Simulation};
pub use scenario::{AgentGroup, Arrivals, Break, Rate, Replayed, Scenario, Shift, MAX_AGENTS, MAX_REPLICATIONS};
