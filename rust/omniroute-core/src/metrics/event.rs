//! The events the metrics aggregator consumes, keyed by dense `u32` keys or, for Python, by name.

use serde::{Deserialize, Serialize};

use super::dimension::DimensionKind;
use super::error::MetricsError;
use super::time::{in_range, AT_ACCEPTED, MAX_ABS_AT, MAX_SCORE, MAX_SECONDS, SCORE_ACCEPTED, SECONDS_ACCEPTED};

/// An agent's state as reported by the runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentActivity {
    /// Logged out; counts toward nothing.
    #[default]
    Offline,
    /// Logged in and ready for work.
    Available,
    /// Logged in, not taking new work (break, meeting).
    Away,
    /// Logged in but missed an offer; not taking new work.
    NotResponding,
    /// After-contact work; counts as handling time.
    WrapUp,
}

/// One thing that happened in the contact center, with dimensions as dense keys
/// from [`Aggregator::queue_key`](super::Aggregator::queue_key) and friends.
///
/// `at` is in seconds since the caller's epoch; events must come in
/// non-decreasing `at` order. Waits and segment lengths are in seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MetricEvent {
    /// A contact entered a queue (it is offered to the queue). A transferred
    /// contact arriving in its next queue is a new arrival there.
    Arrived { at: f64, task: u64, queue: u32, channel: u32 },
    /// An agent accepted the contact; `wait` is the seconds since its original
    /// arrival (kept across transfers).
    Answered { at: f64, task: u64, queue: u32, channel: u32, agent: u32, wait: f64 },
    /// The customer left before an answer, after `wait` seconds.
    Abandoned { at: f64, task: u64, queue: u32, channel: u32, wait: f64 },
    /// The contact left this queue by transfer, from an agent when `agent` is set.
    Transferred { at: f64, task: u64, queue: u32, channel: u32, agent: Option<u32> },
    /// The agent finished handling the contact (a handled contact, for AHT).
    Completed { at: f64, task: u64, queue: u32, channel: u32, agent: u32 },
    /// Seconds of talk reported for the contact.
    Talk { at: f64, task: u64, queue: u32, channel: u32, agent: u32, seconds: f64 },
    /// Seconds on hold reported for the contact.
    Hold { at: f64, task: u64, queue: u32, channel: u32, agent: u32, seconds: f64 },
    /// Seconds of after-contact work reported for the contact.
    WrapUp { at: f64, task: u64, queue: u32, channel: u32, agent: u32, seconds: f64 },
    /// The agent's disposition: was the customer's issue resolved?
    Disposition { at: f64, task: u64, queue: u32, channel: u32, agent: u32, resolved: bool },
    /// A customer-satisfaction answer.
    Csat { at: f64, task: u64, queue: u32, channel: u32, agent: Option<u32>, score: f64 },
    /// The agent's state changed.
    AgentState { at: f64, agent: u32, state: AgentActivity },
    /// The agent's load changed: capacity units in use, total capacity, tasks held.
    AgentLoad { at: f64, agent: u32, used: u32, capacity: u32, tasks: u32 },
}

/// [`MetricEvent`] with names instead of keys, for input from Python; see
/// [`Aggregator::record_named`](super::Aggregator::record_named).
///
/// Task names are hashed to 64 bits (FNV-1a); two task names colliding is
/// about as likely as a 64-bit random collision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum NamedMetricEvent {
    Arrived { at: f64, task: String, queue: String, channel: String },
    Answered { at: f64, task: String, queue: String, channel: String, agent: String, wait: f64 },
    Abandoned { at: f64, task: String, queue: String, channel: String, wait: f64 },
    Transferred { at: f64, task: String, queue: String, channel: String, agent: Option<String> },
    Completed { at: f64, task: String, queue: String, channel: String, agent: String },
    Talk { at: f64, task: String, queue: String, channel: String, agent: String, seconds: f64 },
    Hold { at: f64, task: String, queue: String, channel: String, agent: String, seconds: f64 },
    WrapUp { at: f64, task: String, queue: String, channel: String, agent: String, seconds: f64 },
    Disposition { at: f64, task: String, queue: String, channel: String, agent: String, resolved: bool },
    Csat { at: f64, task: String, queue: String, channel: String, agent: Option<String>, score: f64 },
    AgentState { at: f64, agent: String, state: AgentActivity },
    AgentLoad { at: f64, agent: String, used: u32, capacity: u32, tasks: u32 },
}

/// The numbers of an event that are checked the same way whether it is keyed or named.
pub(crate) struct Scalars {
    pub event: &'static str,
    pub at: f64,
    /// The field holding a duration (`wait` or `seconds`) and its value.
    pub duration: Option<(&'static str, f64)>,
    pub score: Option<f64>,
    pub load: Option<(u32, u32)>,
}

impl Scalars {
    /// Checks range and time order; `last` is the time of the last event or snapshot.
    #[inline]
    pub fn check(&self, last: Option<f64>) -> Result<(), MetricsError> {
        check_at(self.event, "at", self.at, last)?;
        if let Some((field, value)) = self.duration {
            if !in_range(value, MAX_SECONDS, true) {
                return Err(MetricsError::InvalidValue { event: self.event, field, value, accepted: SECONDS_ACCEPTED });
            }
        }
        if let Some(value) = self.score {
            if !in_range(value, MAX_SCORE, false) {
                return Err(MetricsError::InvalidValue {
                    event: self.event,
                    field: "score",
                    value,
                    accepted: SCORE_ACCEPTED,
                });
            }
        }
        if let Some((used, capacity)) = self.load {
            if used > capacity {
                return Err(MetricsError::LoadOverCapacity { used, capacity });
            }
        }
        Ok(())
    }
}

/// Checks a point in time: finite, in range, and not older than `last`.
pub(crate) fn check_at(
    event: &'static str,
    field: &'static str,
    at: f64,
    last: Option<f64>,
) -> Result<(), MetricsError> {
    if !in_range(at, MAX_ABS_AT, false) {
        return Err(MetricsError::InvalidValue { event, field, value: at, accepted: AT_ACCEPTED });
    }
    match last {
        Some(last) if at < last => Err(MetricsError::TimeWentBackwards { event, at, last }),
        _ => Ok(()),
    }
}

macro_rules! scalars_of {
    ($event:expr, $ty:ident) => {
        match $event {
            $ty::Arrived { at, .. } => Scalars::plain("arrived", *at),
            $ty::Answered { at, wait, .. } => Scalars::timed("answered", *at, "wait", *wait),
            $ty::Abandoned { at, wait, .. } => Scalars::timed("abandoned", *at, "wait", *wait),
            $ty::Transferred { at, .. } => Scalars::plain("transferred", *at),
            $ty::Completed { at, .. } => Scalars::plain("completed", *at),
            $ty::Talk { at, seconds, .. } => Scalars::timed("talk", *at, "seconds", *seconds),
            $ty::Hold { at, seconds, .. } => Scalars::timed("hold", *at, "seconds", *seconds),
            $ty::WrapUp { at, seconds, .. } => Scalars::timed("wrap_up", *at, "seconds", *seconds),
            $ty::Disposition { at, .. } => Scalars::plain("disposition", *at),
            $ty::Csat { at, score, .. } => Scalars { score: Some(*score), ..Scalars::plain("csat", *at) },
            $ty::AgentState { at, .. } => Scalars::plain("agent_state", *at),
            $ty::AgentLoad { at, used, capacity, .. } => {
                Scalars { load: Some((*used, *capacity)), ..Scalars::plain("agent_load", *at) }
            }
        }
    };
}

impl Scalars {
    fn plain(event: &'static str, at: f64) -> Self {
        Self { event, at, duration: None, score: None, load: None }
    }

    fn timed(event: &'static str, at: f64, field: &'static str, value: f64) -> Self {
        Self { duration: Some((field, value)), ..Self::plain(event, at) }
    }
}

impl MetricEvent {
    /// When it happened, in seconds.
    #[must_use]
    pub fn at(&self) -> f64 {
        self.scalars().at
    }

    /// The wire name of the event type (`"arrived"`, `"wrap_up"`, ...).
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        self.scalars().event
    }

    #[inline]
    pub(crate) fn scalars(&self) -> Scalars {
        scalars_of!(self, MetricEvent)
    }
}

impl NamedMetricEvent {
    /// When it happened, in seconds.
    #[must_use]
    pub fn at(&self) -> f64 {
        self.scalars().at
    }

    pub(crate) fn scalars(&self) -> Scalars {
        scalars_of!(self, NamedMetricEvent)
    }

    /// The keyed twin, with names turned into keys by `key` and the task name hashed.
    // One arm per event type: long, but each arm reads on its own.
    #[allow(clippy::too_many_lines)]
    pub(crate) fn to_keyed(&self, mut key: impl FnMut(DimensionKind, &str) -> u32) -> MetricEvent {
        use DimensionKind::{Agent, Channel, Queue};
        use NamedMetricEvent as N;
        let t = |task: &str| task_id(task);
        match self {
            N::Arrived { at, task, queue, channel } => MetricEvent::Arrived {
                at: *at,
                task: t(task),
                queue: key(Queue, queue),
                channel: key(Channel, channel),
            },
            N::Answered { at, task, queue, channel, agent, wait } => MetricEvent::Answered {
                at: *at,
                task: t(task),
                queue: key(Queue, queue),
                channel: key(Channel, channel),
                agent: key(Agent, agent),
                wait: *wait,
            },
            N::Abandoned { at, task, queue, channel, wait } => MetricEvent::Abandoned {
                at: *at,
                task: t(task),
                queue: key(Queue, queue),
                channel: key(Channel, channel),
                wait: *wait,
            },
            N::Transferred { at, task, queue, channel, agent } => MetricEvent::Transferred {
                at: *at,
                task: t(task),
                queue: key(Queue, queue),
                channel: key(Channel, channel),
                agent: agent.as_deref().map(|agent| key(Agent, agent)),
            },
            N::Completed { at, task, queue, channel, agent } => MetricEvent::Completed {
                at: *at,
                task: t(task),
                queue: key(Queue, queue),
                channel: key(Channel, channel),
                agent: key(Agent, agent),
            },
            N::Talk { at, task, queue, channel, agent, seconds } => MetricEvent::Talk {
                at: *at,
                task: t(task),
                queue: key(Queue, queue),
                channel: key(Channel, channel),
                agent: key(Agent, agent),
                seconds: *seconds,
            },
            N::Hold { at, task, queue, channel, agent, seconds } => MetricEvent::Hold {
                at: *at,
                task: t(task),
                queue: key(Queue, queue),
                channel: key(Channel, channel),
                agent: key(Agent, agent),
                seconds: *seconds,
            },
            N::WrapUp { at, task, queue, channel, agent, seconds } => MetricEvent::WrapUp {
                at: *at,
                task: t(task),
                queue: key(Queue, queue),
                channel: key(Channel, channel),
                agent: key(Agent, agent),
                seconds: *seconds,
            },
            N::Disposition { at, task, queue, channel, agent, resolved } => MetricEvent::Disposition {
                at: *at,
                task: t(task),
                queue: key(Queue, queue),
                channel: key(Channel, channel),
                agent: key(Agent, agent),
                resolved: *resolved,
            },
            N::Csat { at, task, queue, channel, agent, score } => MetricEvent::Csat {
                at: *at,
                task: t(task),
                queue: key(Queue, queue),
                channel: key(Channel, channel),
                agent: agent.as_deref().map(|agent| key(Agent, agent)),
                score: *score,
            },
            N::AgentState { at, agent, state } => {
                MetricEvent::AgentState { at: *at, agent: key(Agent, agent), state: *state }
            }
            N::AgentLoad { at, agent, used, capacity, tasks } => MetricEvent::AgentLoad {
                at: *at,
                agent: key(Agent, agent),
                used: *used,
                capacity: *capacity,
                tasks: *tasks,
            },
        }
    }
}

/// The 64-bit id of a task name (FNV-1a), stable across runs and platforms.
#[must_use]
pub fn task_id(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip<T: Serialize + for<'de> Deserialize<'de>>(value: &T) -> T {
        rmp_serde::from_slice(&rmp_serde::to_vec_named(value).unwrap()).unwrap()
    }

    #[test]
    fn events_are_tagged_by_snake_case_type() {
        #[derive(Deserialize)]
        struct Wire {
            #[serde(rename = "type")]
            kind: String,
            state: Option<String>,
        }
        let event = MetricEvent::WrapUp { at: 1.0, task: 9, queue: 0, channel: 1, agent: 2, seconds: 30.0 };
        assert_eq!(roundtrip(&event), event);
        // The tag and the field names as they appear on the wire.
        let wire: Wire = rmp_serde::from_slice(&rmp_serde::to_vec_named(&event).unwrap()).unwrap();
        assert_eq!(wire.kind, "wrap_up");
        let state = MetricEvent::AgentState { at: 0.0, agent: 0, state: AgentActivity::NotResponding };
        let wire: Wire = rmp_serde::from_slice(&rmp_serde::to_vec_named(&state).unwrap()).unwrap();
        assert_eq!(wire.kind, "agent_state");
        assert_eq!(wire.state.as_deref(), Some("not_responding"));
    }

    #[test]
    fn named_events_round_trip_and_map_to_keys() {
        let named = NamedMetricEvent::Csat {
            at: 5.0,
            task: "t-1".into(),
            queue: "billing".into(),
            channel: "chat".into(),
            agent: None,
            score: 4.0,
        };
        assert_eq!(roundtrip(&named), named);
        let keyed = named.to_keyed(|kind, name| match (kind, name) {
            (DimensionKind::Queue, "billing") => 3,
            (DimensionKind::Channel, "chat") => 1,
            _ => 99,
        });
        assert_eq!(
            keyed,
            MetricEvent::Csat { at: 5.0, task: task_id("t-1"), queue: 3, channel: 1, agent: None, score: 4.0 }
        );
        assert!((keyed.at() - 5.0).abs() < f64::EPSILON);
        assert_eq!(keyed.type_name(), "csat");
    }

    #[test]
    fn task_ids_are_fnv1a() {
        // Reference values of 64-bit FNV-1a.
        assert_eq!(task_id(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(task_id("a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(task_id("t-1"), task_id("t-2"));
    }

    #[test]
    fn scalars_are_checked_with_named_fields() {
        let ok = MetricEvent::Talk { at: 10.0, task: 1, queue: 0, channel: 0, agent: 0, seconds: 3.0 };
        assert!(ok.scalars().check(Some(10.0)).is_ok());
        assert_eq!(
            ok.scalars().check(Some(11.0)),
            Err(MetricsError::TimeWentBackwards { event: "talk", at: 10.0, last: 11.0 })
        );
        let negative = MetricEvent::Hold { at: 10.0, task: 1, queue: 0, channel: 0, agent: 0, seconds: -3.0 };
        assert!(matches!(
            negative.scalars().check(None),
            Err(MetricsError::InvalidValue { event: "hold", field: "seconds", .. })
        ));
        let nan_at = MetricEvent::Arrived { at: f64::NAN, task: 1, queue: 0, channel: 0 };
        assert!(matches!(
            nan_at.scalars().check(None),
            Err(MetricsError::InvalidValue { event: "arrived", field: "at", .. })
        ));
        let score = MetricEvent::Csat { at: 1.0, task: 1, queue: 0, channel: 0, agent: None, score: f64::INFINITY };
        assert!(matches!(score.scalars().check(None), Err(MetricsError::InvalidValue { field: "score", .. })));
        let load = MetricEvent::AgentLoad { at: 1.0, agent: 0, used: 2, capacity: 1, tasks: 1 };
        assert_eq!(load.scalars().check(None), Err(MetricsError::LoadOverCapacity { used: 2, capacity: 1 }));
    }
}
