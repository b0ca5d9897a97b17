//! What a simulation is told: the contact center (channels, queues, agent
//! groups with shifts and behaviour), the arrivals, and how long to run.

use super::dist::{finite, Distribution};
use crate::error::{Error, Result};
use crate::metrics::MetricsConfig;
use crate::model::{AgentConfig, ChannelConfig, Condition, EngineConfig, QueueConfig};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

fn default_replications() -> u32 {
    10
}
fn default_seed() -> u64 {
    1
}
fn default_missed() -> u32 {
    3
}
fn default_drain() -> f64 {
    3600.0
}
fn default_capacity() -> u32 {
    60
}
fn default_recover() -> f64 {
    60.0
}
fn default_rate_interval() -> f64 {
    900.0
}
fn default_reason() -> String {
    "break".to_owned()
}

/// Most replications of one scenario.
pub const MAX_REPLICATIONS: u32 = 10_000;
/// Most agents a scenario may create.
pub const MAX_AGENTS: u64 = 1_000_000;

/// A whole simulation scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Seed of everything random; the same seed gives the same result.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Independent runs, each with its own random streams drawn from `seed`.
    #[serde(default = "default_replications")]
    pub replications: u32,
    /// Arrivals happen in `[0, duration_seconds)`.
    pub duration_seconds: f64,
    /// Contacts arriving before this are left out of the steady-state tally.
    #[serde(default)]
    pub warmup_seconds: f64,
    /// After the last arrival, work still in the system is followed at most
    /// this long (0: stop at `duration_seconds`).
    #[serde(default = "default_drain")]
    pub drain_seconds: f64,
    /// Consecutive offer timeouts after which an agent is not-responding.
    #[serde(default = "default_missed")]
    pub max_missed_offers: u32,
    pub channels: Vec<ChannelConfig>,
    pub queues: Vec<QueueConfig>,
    pub agents: Vec<AgentGroup>,
    /// Poisson arrival streams.
    #[serde(default)]
    pub arrivals: Vec<Arrivals>,
    /// Recorded arrivals replayed as they came, sorted by `at`.
    #[serde(default)]
    pub replay: Vec<Replayed>,
    /// How the metrics are bucketed; service-level thresholds default to the queues' own.
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
    /// Report every agent's figures per interval too (otherwise since start only).
    #[serde(default)]
    pub agent_intervals: bool,
}

/// Agents alike: the same skills, queues, shifts and behaviour. They are
/// named `{name}-1` to `{name}-{count}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentGroup {
    pub name: String,
    pub count: u32,
    #[serde(default = "default_capacity")]
    pub capacity: u32,
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
    pub queues: BTreeMap<String, i32>,
    /// When the agents are on duty; none: the whole run.
    #[serde(default)]
    pub shifts: Vec<Shift>,
    /// Breaks within the shifts (away with a reason).
    #[serde(default)]
    pub breaks: Vec<Break>,
    /// Chance that an agent rejects an offer.
    #[serde(default)]
    pub reject_probability: f64,
    /// Chance that an agent lets an offer time out.
    #[serde(default)]
    pub no_answer_probability: f64,
    /// Time an agent takes to accept or reject an offer (default: at once).
    #[serde(default)]
    pub answer: Option<Distribution>,
    /// A not-responding agent makes itself available again after this long.
    #[serde(default = "default_recover")]
    pub recover_seconds: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shift {
    pub start: f64,
    pub end: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Break {
    pub start: f64,
    pub seconds: f64,
    #[serde(default = "default_reason")]
    pub reason: String,
}

/// The arrival rate per hour: one figure for the whole run, or one per
/// `rate_interval_seconds` from the start (0 after the last).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Rate {
    Constant(f64),
    Profile(Vec<f64>),
}

/// A Poisson stream of contacts into one queue on one channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arrivals {
    pub queue: String,
    pub channel: String,
    #[serde(default)]
    pub priority: i32,
    #[serde(default)]
    pub requires: Option<Condition>,
    pub per_hour: Rate,
    #[serde(default = "default_rate_interval")]
    pub rate_interval_seconds: f64,
    /// Handle time, from answer to completion (wrap-up is the queue's).
    pub handle: Distribution,
    /// How long a contact waits before it abandons; none: it never does.
    #[serde(default)]
    pub patience: Option<Distribution>,
}

/// One recorded contact, replayed at its time with its own handle time and patience.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replayed {
    pub at: f64,
    pub queue: String,
    pub channel: String,
    #[serde(default)]
    pub priority: i32,
    pub handle_seconds: f64,
    #[serde(default)]
    pub patience_seconds: Option<f64>,
}

fn bad(field: String, problem: impl Into<String>) -> Error {
    Error::config(field, problem.into())
}

fn seconds(field: &str, value: f64, positive: bool) -> Result<()> {
    finite(field, value, positive, " of seconds")
}

fn probability(field: String, value: f64) -> Result<()> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(bad(field, format!("expected a probability from 0 to 1, got {value}")))
    }
}

impl Scenario {
    /// The time the run stops at the latest: the end of arrivals plus the drain.
    #[must_use]
    pub fn end(&self) -> f64 {
        self.duration_seconds + self.drain_seconds
    }

    /// Checks everything the types do not, naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        if self.replications == 0 || self.replications > MAX_REPLICATIONS {
            return Err(bad(
                "replications".into(),
                format!("expected 1 to {MAX_REPLICATIONS}, got {}", self.replications),
            ));
        }
        seconds("duration_seconds", self.duration_seconds, true)?;
        seconds("warmup_seconds", self.warmup_seconds, false)?;
        seconds("drain_seconds", self.drain_seconds, false)?;
        if self.warmup_seconds >= self.duration_seconds {
            return Err(bad(
                "warmup_seconds".into(),
                format!("{} leaves nothing of duration_seconds ({})", self.warmup_seconds, self.duration_seconds),
            ));
        }
        if self.agents.is_empty() {
            return Err(bad("agents".into(), "expected at least one agent group"));
        }
        if self.arrivals.is_empty() && self.replay.is_empty() {
            return Err(bad("arrivals".into(), "expected arrival streams or a replay (both are empty)"));
        }
        let known = Known::of(self);
        self.validate_agents(&known)?;
        self.validate_arrivals(&known)?;
        self.validate_replay(&known)?;
        if let Some(m) = &self.metrics {
            m.validate().map_err(|e| bad("metrics".into(), e.to_string()))?;
        }
        // The engine checks its part (strategies, steps, skills, capacities)
        // with one agent per group, so `agents[i]` names the group.
        let mut probe = self.engine_config_with(|_| 1);
        for (agent, group) in probe.agents.iter_mut().zip(&self.agents) {
            agent.id.clone_from(&group.name);
        }
        crate::Engine::new(&probe, 0.0).map(drop)
    }

    fn validate_agents(&self, known: &Known<'_>) -> Result<()> {
        let mut names = BTreeSet::new();
        let mut total: u64 = 0;
        for (i, g) in self.agents.iter().enumerate() {
            let at = |f: &str| format!("agents[{i}].{f}");
            if !names.insert(g.name.as_str()) {
                return Err(bad(at("name"), format!("duplicate agent group {:?}", g.name)));
            }
            if g.count == 0 {
                return Err(bad(at("count"), "expected at least 1 agent"));
            }
            total += u64::from(g.count);
            if g.queues.is_empty() {
                return Err(bad(at("queues"), "expected at least one queue"));
            }
            for q in g.queues.keys() {
                known.queue(at("queues"), q)?;
            }
            for (k, s) in g.shifts.iter().enumerate() {
                seconds(&at(&format!("shifts[{k}].start")), s.start, false)?;
                seconds(&at(&format!("shifts[{k}].end")), s.end, true)?;
                if s.end <= s.start {
                    return Err(bad(
                        at(&format!("shifts[{k}].end")),
                        format!("{} is not after start {}", s.end, s.start),
                    ));
                }
                if k > 0 && s.start < g.shifts[k - 1].end {
                    return Err(bad(
                        at(&format!("shifts[{k}].start")),
                        "shifts must be in time order and not overlap".to_owned(),
                    ));
                }
            }
            for (k, b) in g.breaks.iter().enumerate() {
                seconds(&at(&format!("breaks[{k}].start")), b.start, false)?;
                seconds(&at(&format!("breaks[{k}].seconds")), b.seconds, true)?;
                if b.reason.trim().is_empty() {
                    return Err(bad(at(&format!("breaks[{k}].reason")), "expected a reason"));
                }
                let end = b.start + b.seconds;
                if !g.shifts.is_empty() && !g.shifts.iter().any(|s| s.start <= b.start && end <= s.end) {
                    // Its end would make the agent available outside its shifts.
                    return Err(bad(at(&format!("breaks[{k}].start")), "a break must fall within one of the shifts"));
                }
                if k > 0 && b.start < g.breaks[k - 1].start + g.breaks[k - 1].seconds {
                    return Err(bad(
                        at(&format!("breaks[{k}].start")),
                        "breaks must be in time order and not overlap".to_owned(),
                    ));
                }
            }
            probability(at("reject_probability"), g.reject_probability)?;
            probability(at("no_answer_probability"), g.no_answer_probability)?;
            if g.reject_probability + g.no_answer_probability > 1.0 {
                return Err(bad(
                    at("no_answer_probability"),
                    "reject_probability + no_answer_probability must be at most 1".to_owned(),
                ));
            }
            if let Some(d) = &g.answer {
                d.validate(&at("answer"))?;
            }
            seconds(&at("recover_seconds"), g.recover_seconds, true)?;
        }
        if total > MAX_AGENTS {
            return Err(bad("agents".into(), format!("{total} agents; accepted: at most {MAX_AGENTS}")));
        }
        Ok(())
    }

    fn validate_arrivals(&self, known: &Known<'_>) -> Result<()> {
        for (i, a) in self.arrivals.iter().enumerate() {
            let at = |f: &str| format!("arrivals[{i}].{f}");
            known.queue(at("queue"), &a.queue)?;
            known.channel(at("channel"), &a.channel)?;
            let rates: &[f64] = match &a.per_hour {
                Rate::Constant(r) => std::slice::from_ref(r),
                Rate::Profile(list) => list,
            };
            for (k, &r) in rates.iter().enumerate() {
                if !(r.is_finite() && r >= 0.0) {
                    let field = match a.per_hour {
                        Rate::Constant(_) => at("per_hour"),
                        Rate::Profile(_) => at(&format!("per_hour[{k}]")),
                    };
                    return Err(bad(field, format!("expected a non-negative number of contacts per hour, got {r}")));
                }
            }
            seconds(&at("rate_interval_seconds"), a.rate_interval_seconds, true)?;
            a.handle.validate(&at("handle"))?;
            if let Some(p) = &a.patience {
                p.validate(&at("patience"))?;
            }
        }
        Ok(())
    }

    fn validate_replay(&self, known: &Known<'_>) -> Result<()> {
        let mut last = 0.0;
        for (i, r) in self.replay.iter().enumerate() {
            let at = |f: &str| format!("replay[{i}].{f}");
            seconds(&at("at"), r.at, false)?;
            if r.at < last {
                return Err(bad(at("at"), format!("{} is before the previous arrival ({last}); sort by time", r.at)));
            }
            last = r.at;
            known.queue(at("queue"), &r.queue)?;
            known.channel(at("channel"), &r.channel)?;
            seconds(&at("handle_seconds"), r.handle_seconds, false)?;
            if let Some(p) = r.patience_seconds {
                seconds(&at("patience_seconds"), p, false)?;
            }
        }
        Ok(())
    }

    /// The engine's configuration: every agent of every group, offline
    /// until its first shift starts.
    #[must_use]
    pub fn engine_config(&self) -> EngineConfig {
        self.engine_config_with(|g| g.count)
    }

    fn engine_config_with(&self, count: impl Fn(&AgentGroup) -> u32) -> EngineConfig {
        let mut agents = Vec::new();
        for g in &self.agents {
            for n in 1..=count(g) {
                agents.push(AgentConfig {
                    id: format!("{}-{n}", g.name),
                    capacity: g.capacity,
                    skills: g.skills.clone(),
                    queues: g.queues.clone(),
                    available: false,
                    team: None,
                });
            }
        }
        EngineConfig {
            seed: self.seed,
            max_missed_offers: self.max_missed_offers,
            channels: self.channels.clone(),
            queues: self.queues.clone(),
            agents,
        }
    }

    /// The metrics configuration: as given, or production's defaults with
    /// each queue's own service-level threshold, no sliding windows (a
    /// simulation reports intervals and totals) and every interval kept.
    #[must_use]
    pub fn metrics_config(&self) -> MetricsConfig {
        let mut m =
            self.metrics.clone().unwrap_or_else(|| MetricsConfig { windows: Vec::new(), ..MetricsConfig::default() });
        for q in &self.queues {
            m.queue_thresholds.entry(q.name.clone()).or_insert(q.service_level_seconds);
        }
        let intervals = (self.end() / f64::from(m.interval_seconds)).ceil() as u32 + 2;
        m.intervals_retained = m.intervals_retained.max(intervals);
        m
    }
}

/// The names a scenario's parts refer to: its queues and channels.
struct Known<'a> {
    queues: BTreeSet<&'a str>,
    channels: BTreeSet<&'a str>,
}

impl<'a> Known<'a> {
    fn of(scenario: &'a Scenario) -> Self {
        Known {
            queues: scenario.queues.iter().map(|q| q.name.as_str()).collect(),
            channels: scenario.channels.iter().map(|c| c.name.as_str()).collect(),
        }
    }

    fn queue(&self, field: String, name: &str) -> Result<()> {
        Self::check(field, "queue", name, &self.queues)
    }

    fn channel(&self, field: String, name: &str) -> Result<()> {
        Self::check(field, "channel", name, &self.channels)
    }

    fn check(field: String, what: &str, name: &str, set: &BTreeSet<&str>) -> Result<()> {
        if set.contains(name) {
            Ok(())
        } else {
            Err(bad(field, format!("unknown {what} {name:?}; known: {set:?}")))
        }
    }
}
