//! The one error type of the metrics module; every message names the bad value and the accepted ones.

use thiserror::Error;

use super::dimension::DimensionKind;

/// Why the metrics aggregator refused an event, a query, a configuration or saved state.
///
/// A refused event or query changes nothing.
#[derive(Clone, Debug, PartialEq, Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// An event (or a snapshot's `now`) is older than the last one seen.
    #[error("event `{event}` at {at} is older than the last event or snapshot at {last}; events must come in non-decreasing `at` order")]
    TimeWentBackwards { event: &'static str, at: f64, last: f64 },
    /// A number is NaN or infinite, or outside its accepted range.
    #[error("`{event}.{field}` is {value}; accepted: {accepted}")]
    InvalidValue { event: &'static str, field: &'static str, value: f64, accepted: &'static str },
    /// An agent reports more capacity in use than it has.
    #[error("`agent_load.used` is {used} but `agent_load.capacity` is {capacity}; accepted: used <= capacity")]
    LoadOverCapacity { used: u32, capacity: u32 },
    /// A key that no `*_key` call has handed out.
    #[error("`{event}.{field}` is {kind} key {key}, but only {known} {kind} names are interned (keys 0..{known}); get keys from `Aggregator::{kind}_key`")]
    UnknownKey { event: &'static str, field: &'static str, kind: DimensionKind, key: u32, known: usize },
    /// A name that has never been seen, in a query.
    #[error("unknown {kind} name {name:?}; accepted: a name already seen in an event or interned with `Aggregator::{kind}_key`")]
    UnknownName { kind: DimensionKind, name: String },
    /// A configuration field out of range.
    #[error("invalid metrics configuration: `{field}` {problem}")]
    InvalidConfig { field: &'static str, problem: String },
    /// One event of a batch was refused; the events before it were recorded, the rest were not.
    #[error(
        "event {index} of the batch was refused (the {index} before it were recorded, the rest were not): {source}"
    )]
    InBatch { index: usize, source: Box<MetricsError> },
    /// Saved state could not be encoded.
    #[error("could not encode the metrics state: {0}")]
    Encode(String),
    /// Saved state could not be decoded or is inconsistent.
    #[error("could not restore the metrics state: {0}")]
    Decode(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_field_and_the_accepted_values() {
        let err = MetricsError::InvalidValue {
            event: "talk",
            field: "seconds",
            value: -1.0,
            accepted: "a finite number from 0 to 1e9",
        };
        assert_eq!(err.to_string(), "`talk.seconds` is -1; accepted: a finite number from 0 to 1e9");
        let err =
            MetricsError::UnknownKey { event: "arrived", field: "queue", kind: DimensionKind::Queue, key: 3, known: 2 };
        assert!(err.to_string().contains("only 2 queue names are interned (keys 0..2)"));
        assert!(err.to_string().contains("Aggregator::queue_key"));
    }

    #[test]
    fn batch_errors_say_where_the_batch_stopped() {
        let err = MetricsError::InBatch {
            index: 2,
            source: Box::new(MetricsError::LoadOverCapacity { used: 3, capacity: 1 }),
        };
        assert!(err.to_string().starts_with("event 2 of the batch was refused (the 2 before it were recorded"));
    }
}
