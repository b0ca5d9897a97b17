//! The engine's configuration: channels, queues, agents and routing strategies.

use super::condition::Condition;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

fn default_true() -> bool {
    true
}
fn default_missed() -> u32 {
    3
}
fn default_offer_timeout() -> f64 {
    30.0
}
fn default_service_level() -> f64 {
    20.0
}
fn default_capacity() -> u32 {
    60
}

/// The whole configuration of an engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Seed of the engine's random generator (weighted random strategy).
    #[serde(default)]
    pub seed: u64,
    /// Consecutive offer timeouts after which an agent becomes not-responding
    /// (0: never).
    #[serde(default = "default_missed")]
    pub max_missed_offers: u32,
    pub channels: Vec<ChannelConfig>,
    pub queues: Vec<QueueConfig>,
    #[serde(default)]
    pub agents: Vec<AgentConfig>,
}

/// A channel and what one of its tasks costs an agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub name: String,
    /// Capacity units one task of this channel occupies.
    pub cost: u32,
    /// At most this many tasks of this channel per agent.
    #[serde(default)]
    pub max_per_agent: Option<u32>,
    /// Work that a non-interruptible task may interrupt (e-mail).
    #[serde(default)]
    pub interruptible: bool,
    /// Asynchronous work releases its capacity after the customer has been
    /// silent this many seconds, until the customer writes again.
    #[serde(default)]
    pub inactive_after: Option<f64>,
}

/// A routing strategy: how a task chooses among the agents free to take it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Strategy {
    /// The agent idle longest; `per_channel` counts idle time since the
    /// agent's last task of the task's channel instead of any channel.
    LongestIdle {
        #[serde(default)]
        per_channel: bool,
    },
    /// The agent with the smallest share of capacity in use.
    LeastOccupied,
    /// The agent with the highest proficiency in the required skills.
    MostSkilled,
    /// The next agent after the last one chosen, in the queue's member order.
    RoundRobin,
    /// The agent who has handled the fewest tasks.
    FewestHandled,
    /// A random agent, with probability proportional to a feature.
    WeightedRandom {
        #[serde(default = "default_random_feature")]
        feature: String,
    },
    /// The highest weighted sum of named features.
    Score { weights: BTreeMap<String, f64> },
    /// The engine lists candidates; the caller picks.
    External,
}

fn default_random_feature() -> String {
    "skill_level".to_owned()
}

impl Default for Strategy {
    fn default() -> Self {
        Strategy::LongestIdle { per_channel: false }
    }
}

impl Strategy {
    /// The name used in explanations and documentation.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::LongestIdle { per_channel: false } => "longest_idle",
            Strategy::LongestIdle { per_channel: true } => "longest_idle_per_channel",
            Strategy::LeastOccupied => "least_occupied",
            Strategy::MostSkilled => "most_skilled",
            Strategy::RoundRobin => "round_robin",
            Strategy::FewestHandled => "fewest_handled",
            Strategy::WeightedRandom { .. } => "weighted_random",
            Strategy::Score { .. } => "score",
            Strategy::External => "external",
        }
    }
}

/// What a relaxation step changes in a waiting task's requirements.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StepAction {
    /// Every condition on this skill is dropped (it holds for everyone).
    DropCondition { skill: String },
    /// Every condition on this skill asks for `min_level` at most.
    LowerLevel { skill: String, min_level: u8 },
    /// Agents of another queue become eligible too (overflow).
    AddQueue { queue: String },
    /// A condition is added to the requirements (reverse bullseye).
    AddCondition { condition: Condition },
}

/// One relaxation step: after `after_seconds` in the queue, apply `action`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub after_seconds: f64,
    pub action: StepAction,
}

/// A queue: where tasks wait, and how they are routed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    pub name: String,
    #[serde(default)]
    pub strategy: Strategy,
    /// The service-level threshold in seconds (reported by the metrics).
    #[serde(default = "default_service_level")]
    pub service_level_seconds: f64,
    /// Priority points a waiting task gains per second.
    #[serde(default)]
    pub aging_per_second: f64,
    /// Seconds an agent has to accept an offer.
    #[serde(default = "default_offer_timeout")]
    pub offer_timeout: f64,
    /// Seconds of wrap-up after a task of this queue is completed.
    #[serde(default)]
    pub wrap_up: Option<f64>,
    /// Relaxation steps, in order of `after_seconds`.
    #[serde(default)]
    pub steps: Vec<Step>,
}

impl QueueConfig {
    /// A queue with the given name and every other setting at its default.
    #[must_use]
    pub fn named(name: &str) -> Self {
        QueueConfig {
            name: name.to_owned(),
            strategy: Strategy::default(),
            service_level_seconds: default_service_level(),
            aging_per_second: 0.0,
            offer_timeout: default_offer_timeout(),
            wrap_up: None,
            steps: Vec::new(),
        }
    }
}

/// An agent's standing configuration (its state changes through events).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub id: String,
    /// The capacity budget in units (a call of cost 60 fills the default).
    #[serde(default = "default_capacity")]
    pub capacity: u32,
    /// Skill name to proficiency level (1 and above).
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
    /// Queue name to the agent's own priority for it (higher is served first).
    #[serde(default)]
    pub queues: BTreeMap<String, i32>,
    /// Whether the agent starts available (otherwise offline).
    #[serde(default = "default_true")]
    pub available: bool,
    /// The team the agent reports in (routing does not look at it). Last,
    /// and defaulted, so snapshots written before it still read.
    #[serde(default)]
    pub team: Option<String>,
}

impl AgentConfig {
    /// An agent with the default capacity, no skills and no queues.
    #[must_use]
    pub fn named(id: &str) -> Self {
        AgentConfig {
            id: id.to_owned(),
            capacity: default_capacity(),
            skills: BTreeMap::new(),
            queues: BTreeMap::new(),
            available: true,
            team: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_written_before_teams_reads_with_no_team() {
        // Engine snapshots encode structs as arrays: one written before
        // `team` existed has five elements.
        let old =
            rmp_serde::to_vec(&("ann", 60_u32, BTreeMap::<String, u8>::new(), BTreeMap::<String, i32>::new(), true))
                .unwrap();
        let agent: AgentConfig = rmp_serde::from_slice(&old).unwrap();
        assert_eq!(agent, AgentConfig::named("ann"));
        let with_team = AgentConfig { team: Some("care".into()), ..AgentConfig::named("bob") };
        let back: AgentConfig = rmp_serde::from_slice(&rmp_serde::to_vec(&with_team).unwrap()).unwrap();
        assert_eq!(back, with_team);
    }
}
