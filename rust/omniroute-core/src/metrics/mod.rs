//! Contact-center metrics: service level, ASA, abandons, AHT, occupancy and the rest, aggregated from events.
//!
//! The engine (or the Python runtime) feeds [`MetricEvent`]s into an
//! [`Aggregator`] in time order; the aggregator keeps, per queue, channel and
//! agent and overall, running figures since start, per fixed interval and over
//! sliding windows, and reports them in a [`MetricsSnapshot`] or, for past
//! intervals, through [`Aggregator::intervals`]. There is no clock: every call
//! carries its time in seconds. `docs/metrics.md` gives every formula.
//!
//! ```
//! use omniroute_core::metrics::{Aggregator, MetricEvent, MetricsConfig};
//!
//! let mut metrics = Aggregator::new(MetricsConfig::default())?;
//! let (billing, voice, ann) = (metrics.queue_key("billing"), metrics.channel_key("voice"), metrics.agent_key("ann"));
//! metrics.record_batch(&[
//!     MetricEvent::Arrived { at: 0.0, task: 1, queue: billing, channel: voice },
//!     MetricEvent::Answered { at: 12.0, task: 1, queue: billing, channel: voice, agent: ann, wait: 12.0 },
//! ])?;
//! let snapshot = metrics.snapshot(60.0)?;
//! assert_eq!(snapshot.queues["billing"].since_start.asa, Some(12.0));
//! assert_eq!(snapshot.queues["billing"].since_start.service_level_abandons_negative, Some(1.0));
//! # Ok::<(), omniroute_core::metrics::MetricsError>(())
//! ```

mod agent_time;
mod agents;
mod aggregator;
mod config;
mod counts;
mod dimension;
mod error;
mod event;
mod histogram;
mod interval;
mod live;
mod persist;
mod snapshot;
mod stats;
mod time;
mod waiting;
mod window;

#[cfg(test)]
mod reference_tests;
#[cfg(test)]
mod scenario_tests;

pub use aggregator::Aggregator;
pub use config::{MetricsConfig, MAX_WINDOWS, MAX_WINDOW_SLOTS};
pub use dimension::DimensionKind;
pub use error::MetricsError;
pub use event::{task_id, AgentActivity, MetricEvent, NamedMetricEvent};
pub use histogram::WAIT_PERCENTILE_RELATIVE_ERROR;
pub use snapshot::{
    DimensionSnapshot, IntervalStats, MetricsSnapshot, SnapshotScope, StaffingNow, WaitingNow, WindowSpan, WindowStats,
};
pub use stats::Stats;
