//! What a replication reports: the production metrics (since start and per
//! interval), the steady-state tally the theory checks use, and the queue's
//! length through the day.

use crate::engine::Counters;
use crate::metrics::{IntervalStats, MetricsSnapshot};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Contacts that arrived after the warm-up, and what became of them.
///
/// Probability of waiting = `waited / (answered + abandoned)`; service level
/// = `answered_within / (answered + abandoned)` (abandons count against it,
/// short ones too); ASA = `wait_seconds / answered`; abandonment =
/// `abandoned / (answered + abandoned)`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub arrivals: u64,
    pub answered: u64,
    /// Answered within their queue's service-level threshold.
    pub answered_within: u64,
    pub abandoned: u64,
    /// Answered or abandoned after a wait above zero.
    pub waited: u64,
    /// Total wait of the answered.
    pub wait_seconds: f64,
    /// Total wait of the abandoned.
    pub abandon_wait_seconds: f64,
}

impl Tally {
    pub(crate) fn answer(&mut self, wait: f64, threshold: f64) {
        self.answered += 1;
        self.wait_seconds += wait;
        if wait > 0.0 {
            self.waited += 1;
        }
        if wait <= threshold {
            self.answered_within += 1;
        }
    }

    pub(crate) fn abandon(&mut self, wait: f64) {
        self.abandoned += 1;
        self.abandon_wait_seconds += wait;
        if wait > 0.0 {
            self.waited += 1;
        }
    }
}

/// The fixed intervals of every dimension, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IntervalReport {
    pub overall: Vec<IntervalStats>,
    pub queues: BTreeMap<String, Vec<IntervalStats>>,
    pub channels: BTreeMap<String, Vec<IntervalStats>>,
    /// Only when the scenario asks for `agent_intervals`.
    pub agents: BTreeMap<String, Vec<IntervalStats>>,
}

/// Contacts waiting (arrived, neither answered nor abandoned) over one interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueLength {
    pub start: f64,
    /// Time-weighted mean over the interval.
    pub mean: f64,
    pub max: u64,
}

/// One replication's results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Replication {
    pub replication: u32,
    /// The seed this replication's random streams were drawn from.
    pub seed: u64,
    /// Virtual time reached.
    pub end: f64,
    pub arrivals: u64,
    /// Contacts still waiting or being handled when the run stopped.
    pub unfinished: u64,
    /// Agent answers that came after their offer was gone.
    pub stale_responses: u64,
    pub steady: Tally,
    pub snapshot: MetricsSnapshot,
    pub intervals: IntervalReport,
    pub queue_length: Vec<QueueLength>,
    pub engine: Counters,
}
