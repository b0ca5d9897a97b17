//! What the engine is told: the input events of a batch.

use super::condition::Condition;
use super::config::{AgentConfig, ChannelConfig, QueueConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A free-form task attribute value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

/// A new piece of customer work.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    pub id: String,
    pub channel: String,
    pub queue: String,
    #[serde(default)]
    pub priority: i32,
    #[serde(default)]
    pub requires: Option<Condition>,
    /// Only these agents may take the task until `preferred_until`.
    #[serde(default)]
    pub preferred_agents: Vec<String>,
    #[serde(default)]
    pub preferred_until: Option<f64>,
    /// These agents are never offered the task.
    #[serde(default)]
    pub excluded_agents: Vec<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeValue>,
    /// The original arrival time, when the task waited elsewhere before
    /// (defaults to the batch's `now`).
    #[serde(default)]
    pub enqueued_at: Option<f64>,
}

/// A state an agent may be put in from outside (the engine itself sets
/// not-responding and wrap-up).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub enum RequestedState {
    // Empty struct variants, not unit variants: the state then decodes from
    // a MessagePack array (`["offline"]`) as well as from a map.
    Offline {},
    Available {},
    Away { reason: String },
}

/// One input event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Input {
    /// A task arrives.
    AddTask { task: NewTask },
    /// The agent accepts an offer.
    Accept { offer: u64 },
    /// The agent rejects an offer.
    Reject { offer: u64 },
    /// The customer left before the task was assigned.
    Cancel { task: String },
    /// The assigned task is finished.
    Complete { task: String },
    /// The agent finished wrap-up early.
    EndWrapUp { agent: String },
    /// Send a task to another queue or to a named agent (exactly one of
    /// the two).
    Transfer {
        task: String,
        #[serde(default)]
        to_queue: Option<String>,
        #[serde(default)]
        to_agent: Option<String>,
    },
    /// Change an agent's state.
    SetAgentState { agent: String, state: RequestedState },
    /// The customer wrote again on an asynchronous task.
    CustomerActivity { task: String },
    /// The caller's choice for a task of an external-pick queue.
    Pick { task: String, agent: String },
    /// Change a waiting task's priority (a VIP, an escalation).
    SetPriority { task: String, priority: i32 },
    /// Add an agent or change its skills, queues or capacity.
    UpsertAgent { agent: AgentConfig },
    /// Remove an agent that holds no work.
    RemoveAgent { agent: String },
    /// Add a queue or change its strategy, steps or timers.
    UpsertQueue { queue: QueueConfig },
    /// Add a channel or change its cost and limits.
    UpsertChannel { channel: ChannelConfig },
}
