//! What the engine decides: the output events of a batch, and explanations.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::Arc;

/// A name or id in an output event: shared with the engine's own records, so
/// an event costs no copy of the text (it serialises as a plain string).
pub type Name = Arc<str>;

/// One named part of a score. Names known when the engine is built are
/// borrowed, not copied: an offer's reason then costs no allocation per name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScorePart {
    pub feature: Cow<'static, str>,
    pub value: f64,
    pub weight: f64,
}

/// Why an offer was made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OfferReason {
    /// `task_arrived` (a task chose among free agents), `agent_freed` (an
    /// agent chose among waiting tasks) or `picked` (external pick).
    pub trigger: Cow<'static, str>,
    pub strategy: Cow<'static, str>,
    pub score: f64,
    pub parts: Vec<ScorePart>,
    /// How many relaxation steps of the queue were in force.
    pub step: u32,
    /// The requirement in force, as an expression.
    pub requirement: Name,
    /// Whether the task was reserved for this agent (sticky or named transfer).
    pub reserved: bool,
}

/// An agent who could take a task, with its features (external pick).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub agent: Name,
    pub features: Vec<(String, f64)>,
}

/// An agent's state as the engine reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AgentStatus {
    Offline,
    Available,
    Away { reason: String },
    NotResponding,
    WrapUp,
}

/// One output event. Every one carries `at`, the time it happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Output {
    TaskQueued {
        at: f64,
        task: Name,
        queue: Name,
        channel: Name,
        priority: i32,
        arrived_at: f64,
    },
    OfferMade {
        at: f64,
        offer: u64,
        task: Name,
        agent: Name,
        queue: Name,
        channel: Name,
        expires_at: f64,
        /// Boxed: the reason is the largest part of any event, and every
        /// event of a batch is as large as the largest kind.
        reason: Box<OfferReason>,
    },
    OfferRescinded {
        at: f64,
        offer: u64,
        task: Name,
        agent: Name,
        why: String,
    },
    OfferRejected {
        at: f64,
        offer: u64,
        task: Name,
        agent: Name,
    },
    OfferTimedOut {
        at: f64,
        offer: u64,
        task: Name,
        agent: Name,
    },
    TaskAssigned {
        at: f64,
        task: Name,
        agent: Name,
        queue: Name,
        channel: Name,
        wait: f64,
    },
    TaskCancelled {
        at: f64,
        task: Name,
        queue: Name,
        channel: Name,
        wait: f64,
    },
    TaskCompleted {
        at: f64,
        task: Name,
        agent: Name,
        queue: Name,
        channel: Name,
    },
    TaskTransferred {
        at: f64,
        task: Name,
        from_queue: Name,
        channel: Name,
        from_agent: Option<Name>,
        to_queue: Option<Name>,
        to_agent: Option<Name>,
    },
    StepReached {
        at: f64,
        task: Name,
        queue: Name,
        step: u32,
        requirement: Name,
    },
    ReservationExpired {
        at: f64,
        task: Name,
    },
    TaskInactive {
        at: f64,
        task: Name,
        agent: Name,
    },
    TaskReactivated {
        at: f64,
        task: Name,
        agent: Name,
    },
    PickRequested {
        at: f64,
        task: Name,
        queue: Name,
        candidates: Vec<Candidate>,
    },
    AgentStateChanged {
        at: f64,
        agent: Name,
        status: AgentStatus,
    },
    AgentLoad {
        at: f64,
        agent: Name,
        used: u32,
        capacity: u32,
        tasks: u32,
    },
}

impl Output {
    /// The time the event happened.
    #[must_use]
    pub fn at(&self) -> f64 {
        match self {
            Output::TaskQueued { at, .. }
            | Output::OfferMade { at, .. }
            | Output::OfferRescinded { at, .. }
            | Output::OfferRejected { at, .. }
            | Output::OfferTimedOut { at, .. }
            | Output::TaskAssigned { at, .. }
            | Output::TaskCancelled { at, .. }
            | Output::TaskCompleted { at, .. }
            | Output::TaskTransferred { at, .. }
            | Output::StepReached { at, .. }
            | Output::ReservationExpired { at, .. }
            | Output::TaskInactive { at, .. }
            | Output::TaskReactivated { at, .. }
            | Output::PickRequested { at, .. }
            | Output::AgentStateChanged { at, .. }
            | Output::AgentLoad { at, .. } => *at,
        }
    }
}

/// An input event the engine refused, and why. Nothing of it was applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputError {
    /// Position of the event in the batch.
    pub index: u32,
    /// `unknown_id`, `duplicate_id`, `invalid_transition`, `invalid_config`
    /// or `invalid_input`.
    pub kind: String,
    pub message: String,
}

/// What one batch produced.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchResult {
    pub now: f64,
    pub events: Vec<Output>,
    pub errors: Vec<InputError>,
}

/// Why an agent was or was not offered a task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Eligible now; the strategy's score for this agent.
    Eligible {
        score: f64,
    },
    /// The task is currently offered to this agent.
    Offered,
    NotServingQueue,
    MissingSkill {
        skill: String,
        required: u8,
        has: u8,
    },
    /// A negated or alternative condition does not hold.
    ConditionNotMet {
        condition: String,
    },
    NoCapacity {
        needed: u32,
        free: u32,
    },
    ChannelLimit {
        channel: String,
        max: u32,
    },
    NotAvailable {
        status: AgentStatus,
    },
    DeclinedBefore,
    Excluded,
    ReservedForOthers {
        until: f64,
    },
}

/// One agent's verdict on a task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentVerdict {
    pub agent: String,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// Why a task is where it is, agent by agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub task: String,
    pub queue: String,
    /// `waiting`, `offered` or `assigned`.
    pub phase: String,
    pub step: u32,
    pub requirement: String,
    pub effective_priority: f64,
    pub agents: Vec<AgentVerdict>,
}
