//! Property tests: random days of a small contact center, valid and invalid
//! events mixed, checked event by event against a small reference model
//! that recomputes every rule by brute force over all agents.

// Times are compared exactly where the engine promises exact times (a timer
// fires at the instant it was set for).
#![allow(clippy::float_cmp)]

mod common;

use common::{all, channels, not, skill};
use omniroute_core::model::{
    AgentConfig, AgentStatus, ChannelConfig, Condition, EngineConfig, Input, InputError, NewTask, Output, QueueConfig,
    RequestedState, Step, StepAction, Strategy as Routing, Verdict,
};
use omniroute_core::{Engine, FEATURES};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// Agents a0..a5 may exist; "zed" never does.
const AGENTS: [&str; 7] = ["a0", "a1", "a2", "a3", "a4", "a5", "zed"];
/// q3 exists only once an upsert creates it; "nowhere" never does.
const QUEUES: [&str; 6] = ["q0", "q1", "q2", "qx", "q3", "nowhere"];
const SKILLS: [&str; 3] = ["billing", "es", "vip"];
/// "note" exists only once an upsert creates it; "fax" never does.
const CHANNELS: [&str; 6] = ["voice", "chat", "email", "sms", "note", "fax"];
const TASK_IDS: u8 = 40;

// ===================================================================
// Generators
// ===================================================================

fn condition() -> impl Strategy<Value = Condition> {
    let leaf = (0..SKILLS.len(), 0u8..4).prop_map(|(s, l)| skill(SKILLS[s], l));
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(all),
            prop::collection::vec(inner.clone(), 0..3).prop_map(common::any),
            inner.prop_map(not),
        ]
    })
}

fn routing() -> impl Strategy<Value = Routing> {
    let weights =
        prop::collection::btree_map((0..FEATURES.len()).prop_map(|f| FEATURES[f].to_owned()), -2i32..=2, 1..3);
    prop_oneof![
        any::<bool>().prop_map(|per_channel| Routing::LongestIdle { per_channel }),
        Just(Routing::LeastOccupied),
        Just(Routing::MostSkilled),
        Just(Routing::RoundRobin),
        Just(Routing::FewestHandled),
        (0..FEATURES.len()).prop_map(|f| Routing::WeightedRandom { feature: FEATURES[f].to_owned() }),
        weights.prop_map(|w| Routing::Score { weights: w.into_iter().map(|(k, v)| (k, f64::from(v))).collect() }),
        Just(Routing::External),
    ]
}

/// Relaxation steps of queue `own`; overflow goes to q0..qx, never itself.
fn steps(own: usize) -> impl Strategy<Value = Vec<Step>> {
    let action = prop_oneof![
        (0..SKILLS.len(), 1u8..3).prop_map(|(s, l)| StepAction::LowerLevel { skill: SKILLS[s].into(), min_level: l }),
        (0..SKILLS.len()).prop_map(|s| StepAction::DropCondition { skill: SKILLS[s].into() }),
        (0..4usize)
            .prop_map(move |q| StepAction::AddQueue { queue: QUEUES[if q == own { (q + 1) % 4 } else { q }].into() }),
        condition().prop_map(|condition| StepAction::AddCondition { condition }),
    ];
    let after = prop::sample::select(vec![0.0f64, 5.0, 10.1, 30.0, 60.0]);
    prop::collection::vec((after, action), 0..3).prop_map(|mut v| {
        v.sort_by(|x, y| x.0.total_cmp(&y.0));
        v.into_iter().map(|(after_seconds, action)| Step { after_seconds, action }).collect()
    })
}

fn queue_config(own: usize) -> impl Strategy<Value = QueueConfig> {
    (
        routing(),
        prop::sample::select(vec![0.0, 0.5]),
        prop::sample::select(vec![15.0, 30.0]),
        prop::sample::select(vec![None, Some(0.0), Some(5.0)]),
        steps(own),
    )
        .prop_map(move |(strategy, aging_per_second, offer_timeout, wrap_up, steps)| QueueConfig {
            strategy,
            aging_per_second,
            offer_timeout,
            wrap_up,
            steps,
            ..QueueConfig::named(QUEUES[own])
        })
}

/// Agent `id`, serving queues among the first `queues` names.
fn agent_config(id: usize, queues: usize) -> impl Strategy<Value = AgentConfig> {
    (
        prop::sample::select(vec![10u32, 60, 60, 60, 120, 120]),
        prop::collection::btree_map((0..SKILLS.len()).prop_map(|s| SKILLS[s].to_owned()), 1u8..5, 0..3),
        prop::collection::btree_map((0..queues).prop_map(|q| QUEUES[q].to_owned()), 0i32..3, 1..4),
        prop::bool::weighted(0.85),
    )
        .prop_map(move |(capacity, skills, queues, available)| AgentConfig {
            id: AGENTS[id].into(),
            capacity,
            skills,
            queues,
            available,
            team: None,
        })
}

#[derive(Clone, Debug)]
struct Setup {
    start: f64,
    seed: u64,
    max_missed_offers: u32,
    queues: Vec<QueueConfig>,
    agents: Vec<AgentConfig>,
}

fn setup() -> impl Strategy<Value = Setup> {
    let queues = (queue_config(0), queue_config(1), queue_config(2), queue_config(3)).prop_map(|(a, b, c, mut x)| {
        x.strategy = Routing::External;
        vec![a, b, c, x]
    });
    let agents = (
        agent_config(0, 4),
        agent_config(1, 4),
        agent_config(2, 4),
        agent_config(3, 4),
        prop::option::of(agent_config(4, 4)),
        prop::option::of(agent_config(5, 4)),
    )
        .prop_map(|(a, b, c, d, e, f)| [Some(a), Some(b), Some(c), Some(d), e, f].into_iter().flatten().collect());
    (prop::sample::select(vec![0.0, 1_700_000_000.25]), any::<u64>(), 0u32..4, queues, agents).prop_map(
        |(start, seed, max_missed_offers, queues, agents)| Setup { start, seed, max_missed_offers, queues, agents },
    )
}

/// One input event, with the ids it refers to left to be chosen against
/// the state of the day when it is sent (`wild`: any id, likely wrong).
#[derive(Clone, Debug)]
enum Op {
    Add {
        id: u8,
        channel: u8,
        queue: u8,
        priority: i32,
        requires: Option<Condition>,
        preferred: Option<(u8, u8)>,
        excluded: Option<u8>,
        back: u8,
    },
    Accept {
        pick: u8,
        wild: bool,
    },
    Reject {
        pick: u8,
        wild: bool,
    },
    Cancel {
        pick: u8,
        wild: bool,
    },
    Complete {
        pick: u8,
        wild: bool,
    },
    EndWrapUp {
        agent: u8,
    },
    Transfer {
        pick: u8,
        to_agent: bool,
        target: u8,
    },
    SetState {
        agent: u8,
        state: u8,
    },
    Activity {
        pick: u8,
        wild: bool,
    },
    Pick {
        pick: u8,
        agent: u8,
    },
    SetPriority {
        pick: u8,
        priority: i32,
    },
    UpsertAgent(AgentConfig),
    RemoveAgent {
        agent: u8,
    },
    UpsertQueue(QueueConfig),
    UpsertChannel {
        variant: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let wild = || prop::bool::weighted(0.15);
    let add = (
        any::<u8>(),
        0u8..30,
        0u8..26,
        0i32..3,
        prop::option::weighted(0.35, condition()),
        prop::option::weighted(0.2, (0u8..7, 0u8..3)),
        prop::option::weighted(0.05, 0u8..7),
        0u8..16,
    )
        .prop_map(|(id, channel, queue, priority, requires, preferred, excluded, back)| Op::Add {
            id,
            channel,
            queue,
            priority,
            requires,
            preferred,
            excluded,
            back,
        });
    prop_oneof![
        10 => add,
        8 => (any::<u8>(), wild()).prop_map(|(pick, wild)| Op::Accept { pick, wild }),
        2 => (any::<u8>(), wild()).prop_map(|(pick, wild)| Op::Reject { pick, wild }),
        2 => (any::<u8>(), wild()).prop_map(|(pick, wild)| Op::Cancel { pick, wild }),
        5 => (any::<u8>(), wild()).prop_map(|(pick, wild)| Op::Complete { pick, wild }),
        1 => (0u8..7).prop_map(|agent| Op::EndWrapUp { agent }),
        1 => (any::<u8>(), any::<bool>(), any::<u8>()).prop_map(|(pick, to_agent, target)| Op::Transfer { pick, to_agent, target }),
        2 => (0u8..7, 0u8..3).prop_map(|(agent, state)| Op::SetState { agent, state }),
        2 => (any::<u8>(), wild()).prop_map(|(pick, wild)| Op::Activity { pick, wild }),
        2 => (any::<u8>(), 0u8..7).prop_map(|(pick, agent)| Op::Pick { pick, agent }),
        1 => (any::<u8>(), -2i32..5).prop_map(|(pick, priority)| Op::SetPriority { pick, priority }),
        1 => (0usize..6).prop_flat_map(|i| agent_config(i, 5)).prop_map(Op::UpsertAgent),
        1 => (0u8..7).prop_map(|agent| Op::RemoveAgent { agent }),
        1 => (0usize..5).prop_flat_map(queue_config).prop_map(Op::UpsertQueue),
        1 => (0u8..9).prop_map(|variant| Op::UpsertChannel { variant }),
    ]
}

/// Time passes (a tenth of a second to four minutes), then some events.
#[derive(Clone, Debug)]
struct Batch {
    dt: f64,
    ops: Vec<Op>,
}

fn batch() -> impl Strategy<Value = Batch> {
    let dt = prop_oneof![
        3 => Just(0.0),
        4 => (1u32..50).prop_map(|x| f64::from(x) / 10.0),
        3 => (1u32..30).prop_map(f64::from),
        1 => Just(61.0),
        1 => Just(250.0),
    ];
    (dt, prop::collection::vec(op(), 0..6)).prop_map(|(dt, ops)| Batch { dt, ops })
}

// ===================================================================
// The reference model
// ===================================================================

#[derive(Clone, Debug, PartialEq)]
enum Phase {
    Waiting,
    Offered { offer: u64, agent: String, expires_at: f64 },
    Assigned { agent: String },
}

#[derive(Clone, Debug)]
struct Reservation {
    agents: BTreeSet<String>,
    until: f64,
    named: bool,
}

#[derive(Clone, Debug)]
struct Task {
    id: String,
    channel: String,
    queue: String,
    priority: i32,
    requires: Option<Condition>,
    reservation: Option<Reservation>,
    /// The reservation ended because all its agents declined; the engine
    /// reports it as expired.
    released: bool,
    excluded: BTreeSet<String>,
    arrived_at: f64,
    queued_at: f64,
    seq: u64,
    phase: Phase,
    inactive: bool,
    last_activity: f64,
}

impl Task {
    fn holder(&self) -> Option<&str> {
        match &self.phase {
            Phase::Waiting => None,
            Phase::Offered { agent, .. } | Phase::Assigned { agent } => Some(agent),
        }
    }

    /// The reservation in force at `at`, if any.
    fn reserved_at(&self, at: f64) -> Option<&Reservation> {
        self.reservation.as_ref().filter(|r| r.named || at < r.until)
    }
}

#[derive(Clone, Debug)]
struct Agent {
    cfg: AgentConfig,
    status: AgentStatus,
    missed: u32,
}

/// What the model expects of one input event.
#[derive(Debug)]
enum Expect {
    Accepted,
    /// Refused, with one of these kinds.
    Refused(Vec<&'static str>),
}

/// Everything the engine was told and said, replayed by hand.
struct Model {
    channels: BTreeMap<String, ChannelConfig>,
    queues: BTreeMap<String, QueueConfig>,
    agents: BTreeMap<String, Agent>,
    tasks: BTreeMap<String, Task>,
    max_missed: u32,
    last_offer: u64,
    next_seq: u64,
    last_at: f64,
    /// The task being added by the input under way.
    adding: Option<NewTask>,
    /// The last event seen, for events that must follow another.
    previous: Option<Output>,
    added: u64,
    finished: u64,
}

fn level(agent: &AgentConfig, skill: &str) -> u8 {
    agent.skills.get(skill).copied().unwrap_or(0)
}

/// The reference evaluator of a requirement.
fn holds(c: &Condition, agent: &AgentConfig) -> bool {
    match c {
        Condition::Skill { skill, min_level } => level(agent, skill) >= *min_level,
        Condition::All { of } => of.iter().all(|x| holds(x, agent)),
        Condition::Any { of } => of.iter().any(|x| holds(x, agent)),
        Condition::Not { condition } => !holds(condition, agent),
    }
}

/// Every condition on `skill` (or its negation) becomes "always".
fn drop_skill(c: &Condition, skill: &str) -> Condition {
    match c {
        Condition::Skill { skill: s, .. } if s == skill => all(vec![]),
        Condition::Not { condition } if matches!(&**condition, Condition::Skill { skill: s, .. } if s == skill) => {
            all(vec![])
        }
        Condition::Not { condition } => not(drop_skill(condition, skill)),
        Condition::All { of } => all(of.iter().map(|x| drop_skill(x, skill)).collect()),
        Condition::Any { of } => common::any(of.iter().map(|x| drop_skill(x, skill)).collect()),
        Condition::Skill { .. } => c.clone(),
    }
}

/// Every condition on `skill` asks for `level` at most.
fn lower(c: &Condition, skill: &str, level: u8) -> Condition {
    match c {
        Condition::Skill { skill: s, min_level } if s == skill => {
            Condition::Skill { skill: s.clone(), min_level: (*min_level).min(level) }
        }
        Condition::Skill { .. } => c.clone(),
        Condition::Not { condition } => not(lower(condition, skill, level)),
        Condition::All { of } => all(of.iter().map(|x| lower(x, skill, level)).collect()),
        Condition::Any { of } => common::any(of.iter().map(|x| lower(x, skill, level)).collect()),
    }
}

/// The requirement after the first `step` steps, and the queues whose
/// agents may take the task.
fn relaxed(task: &Task, queue: &QueueConfig, step: usize) -> (Option<Condition>, Vec<String>) {
    let mut req = task.requires.clone();
    let mut serving = vec![task.queue.clone()];
    for s in queue.steps.iter().take(step) {
        match &s.action {
            StepAction::LowerLevel { skill, min_level } => {
                req = req.map(|c| lower(&c, skill, *min_level));
            }
            StepAction::DropCondition { skill } => req = req.map(|c| drop_skill(&c, skill)),
            StepAction::AddQueue { queue } => serving.push(queue.clone()),
            StepAction::AddCondition { condition } => {
                req = Some(match req {
                    None => condition.clone(),
                    Some(c) => all(vec![c, condition.clone()]),
                });
            }
        }
    }
    (req, serving)
}

fn status_of(available: bool) -> AgentStatus {
    if available {
        AgentStatus::Available
    } else {
        AgentStatus::Offline
    }
}

impl Model {
    fn new(cfg: &EngineConfig, start: f64) -> Model {
        Model {
            channels: cfg.channels.iter().map(|c| (c.name.clone(), c.clone())).collect(),
            queues: cfg.queues.iter().map(|q| (q.name.clone(), q.clone())).collect(),
            agents: cfg
                .agents
                .iter()
                .map(|a| (a.id.clone(), Agent { cfg: a.clone(), status: status_of(a.available), missed: 0 }))
                .collect(),
            tasks: BTreeMap::new(),
            max_missed: cfg.max_missed_offers,
            last_offer: 0,
            next_seq: 0,
            last_at: start,
            adding: None,
            previous: None,
            added: 0,
            finished: 0,
        }
    }

    fn task(&self, id: &str) -> &Task {
        self.tasks.get(id).unwrap_or_else(|| panic!("event about task {id:?}, which the model does not hold"))
    }

    fn task_mut(&mut self, id: &str) -> &mut Task {
        self.tasks.get_mut(id).unwrap_or_else(|| panic!("event about task {id:?}, which the model does not hold"))
    }

    fn queue(&self, name: &str) -> &QueueConfig {
        &self.queues[name]
    }

    fn external(&self, task: &Task) -> bool {
        self.queue(&task.queue).strategy == Routing::External
    }

    /// The steps in force at `at` at the latest and at the earliest: a step
    /// due exactly at `at` may or may not have fired before an event at `at`.
    fn steps_due(&self, task: &Task, at: f64) -> (usize, usize) {
        let steps = &self.queue(&task.queue).steps;
        let lo = steps.iter().filter(|s| task.queued_at + s.after_seconds < at).count();
        let hi = steps.iter().filter(|s| task.queued_at + s.after_seconds <= at).count();
        (lo, hi)
    }

    /// Capacity held by an agent: (firm, interruptible, active per channel,
    /// assigned tasks).
    fn load(&self, agent: &str) -> (u32, u32, BTreeMap<&str, u32>, u32) {
        let (mut firm, mut interruptible, mut per_channel, mut assigned) = (0, 0, BTreeMap::new(), 0);
        for task in self.tasks.values().filter(|t| t.holder() == Some(agent)) {
            if matches!(task.phase, Phase::Assigned { .. }) {
                assigned += 1;
            }
            if task.inactive {
                continue;
            }
            let ch = &self.channels[&task.channel];
            if ch.interruptible {
                interruptible += ch.cost;
            } else {
                firm += ch.cost;
            }
            *per_channel.entry(task.channel.as_str()).or_insert(0) += 1;
        }
        (firm, interruptible, per_channel, assigned)
    }

    /// Whether a task of `channel` fits the agent now.
    fn fits(&self, agent: &Agent, channel: &str) -> Result<(), String> {
        let (firm, interruptible, per_channel, _) = self.load(&agent.cfg.id);
        let ch = &self.channels[channel];
        let held = per_channel.get(channel).copied().unwrap_or(0);
        if ch.max_per_agent.is_some_and(|max| held >= max) {
            return Err(format!("holds {held} tasks of {channel}, the maximum"));
        }
        let base = if ch.interruptible { firm + interruptible } else { firm };
        if base + ch.cost > agent.cfg.capacity {
            return Err(format!("{base} + {} units over capacity {}", ch.cost, agent.cfg.capacity));
        }
        Ok(())
    }

    /// The brute-force eligibility of an agent for a task at `at`, with
    /// `step` relaxation steps in force.
    fn eligible(&self, agent_id: &str, task: &Task, at: f64, step: usize) -> Result<(), String> {
        let agent = self.agents.get(agent_id).ok_or("no such agent")?;
        if agent.status != AgentStatus::Available {
            return Err(format!("status {:?}", agent.status));
        }
        if task.excluded.contains(agent_id) {
            return Err("excluded".into());
        }
        let (req, serving) = relaxed(task, self.queue(&task.queue), step);
        let skills_ok = req.as_ref().is_none_or(|c| holds(c, &agent.cfg));
        match task.reserved_at(at) {
            Some(r) if !r.agents.contains(agent_id) => return Err("reserved for others".into()),
            Some(r) if r.named => {}
            Some(_) => {
                if !skills_ok {
                    return Err("skills".into());
                }
            }
            None => {
                if !serving.iter().any(|q| agent.cfg.queues.contains_key(q)) {
                    return Err("not serving".into());
                }
                if !skills_ok {
                    return Err("skills".into());
                }
            }
        }
        self.fits(agent, &task.channel)
    }

    /// Every agent eligible for a task at `at`.
    fn eligible_set(&self, task: &Task, at: f64, step: usize) -> BTreeSet<String> {
        self.agents.keys().filter(|a| self.eligible(a, task, at, step).is_ok()).cloned().collect()
    }

    /// The agent's priority for the best queue that may serve the task.
    fn tier(&self, agent: &Agent, task: &Task, step: usize) -> i32 {
        let (_, serving) = relaxed(task, self.queue(&task.queue), step);
        serving.iter().filter_map(|q| agent.cfg.queues.get(q).copied()).max().unwrap_or(0)
    }

    fn effective_priority(&self, task: &Task, at: f64) -> f64 {
        f64::from(task.priority) + self.queue(&task.queue).aging_per_second * (at - task.arrived_at)
    }

    fn pending_offers(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .tasks
            .values()
            .filter_map(|t| match t.phase {
                Phase::Offered { offer, .. } => Some(offer),
                _ => None,
            })
            .collect();
        v.sort_unstable();
        v
    }

    fn ids_where(&self, keep: impl Fn(&Task) -> bool) -> Vec<String> {
        self.tasks.values().filter(|t| keep(t)).map(|t| t.id.clone()).collect()
    }

    // ----- choosing the next input -----

    /// The input for an op, and what the engine must make of it.
    #[allow(clippy::too_many_lines)] // one arm per kind of input reads best in one place
    fn resolve(&self, op: &Op, now: f64) -> (Input, Expect) {
        let choose = |pick: u8, wild: bool, ids: Vec<String>| {
            if wild || ids.is_empty() {
                format!("t{}", pick % TASK_IDS)
            } else {
                ids[pick as usize % ids.len()].clone()
            }
        };
        let by_phase = |id: &str, ok: fn(&Phase) -> bool| match self.tasks.get(id) {
            Some(t) if ok(&t.phase) => Expect::Accepted,
            Some(_) => Expect::Refused(vec!["invalid_transition"]),
            None => Expect::Refused(vec!["unknown_id"]),
        };
        // An answer with nothing to answer keeps the day going instead: a
        // plain task arrives (wild ops still try their luck with any id).
        let idle = match op {
            Op::Accept { pick, wild: false } | Op::Reject { pick, wild: false } => {
                self.pending_offers().is_empty().then_some(*pick)
            }
            Op::Cancel { pick, wild: false } => {
                self.tasks.values().all(|t| matches!(t.phase, Phase::Assigned { .. })).then_some(*pick)
            }
            Op::Complete { pick, wild: false } | Op::Activity { pick, wild: false } => {
                self.tasks.values().all(|t| !matches!(t.phase, Phase::Assigned { .. })).then_some(*pick)
            }
            _ => None,
        };
        if let Some(pick) = idle {
            let plain = Op::Add {
                id: pick,
                channel: pick / 7 % 4,
                queue: pick / 3 % 4,
                priority: 0,
                requires: None,
                preferred: None,
                excluded: None,
                back: 0,
            };
            return self.resolve_add(&plain, now);
        }
        match op {
            Op::Add { .. } => self.resolve_add(op, now),
            Op::Accept { pick, wild } | Op::Reject { pick, wild } => {
                let pending = self.pending_offers();
                let offer = if *wild || pending.is_empty() {
                    u64::from(*pick % 40)
                } else {
                    pending[*pick as usize % pending.len()]
                };
                let expect = if pending.contains(&offer) {
                    Expect::Accepted
                } else if offer >= 1 && offer <= self.last_offer {
                    Expect::Refused(vec!["invalid_transition"])
                } else {
                    Expect::Refused(vec!["unknown_id"])
                };
                let input =
                    if matches!(op, Op::Accept { .. }) { Input::Accept { offer } } else { Input::Reject { offer } };
                (input, expect)
            }
            Op::Cancel { pick, wild } => {
                let id = choose(*pick, *wild, self.ids_where(|t| !matches!(t.phase, Phase::Assigned { .. })));
                let expect = by_phase(&id, |p| !matches!(p, Phase::Assigned { .. }));
                (Input::Cancel { task: id }, expect)
            }
            Op::Complete { pick, wild } => {
                let id = choose(*pick, *wild, self.ids_where(|t| matches!(t.phase, Phase::Assigned { .. })));
                let expect = by_phase(&id, |p| matches!(p, Phase::Assigned { .. }));
                (Input::Complete { task: id }, expect)
            }
            Op::Activity { pick, wild } => {
                let id = choose(*pick, *wild, self.ids_where(|t| matches!(t.phase, Phase::Assigned { .. })));
                let expect = by_phase(&id, |p| matches!(p, Phase::Assigned { .. }));
                (Input::CustomerActivity { task: id }, expect)
            }
            Op::SetPriority { pick, priority } => {
                let id = choose(*pick, false, self.ids_where(|_| true));
                let expect = by_phase(&id, |_| true);
                (Input::SetPriority { task: id, priority: *priority }, expect)
            }
            Op::EndWrapUp { agent } => {
                let id = AGENTS[*agent as usize % AGENTS.len()];
                let expect = match self.agents.get(id) {
                    Some(a) if a.status == AgentStatus::WrapUp => Expect::Accepted,
                    Some(_) => Expect::Refused(vec!["invalid_transition"]),
                    None => Expect::Refused(vec!["unknown_id"]),
                };
                (Input::EndWrapUp { agent: id.into() }, expect)
            }
            Op::SetState { agent, state } => {
                let id = AGENTS[*agent as usize % AGENTS.len()];
                let state = match state {
                    0 => RequestedState::Offline {},
                    1 => RequestedState::Available {},
                    _ => RequestedState::Away { reason: "lunch".into() },
                };
                let expect =
                    if self.agents.contains_key(id) { Expect::Accepted } else { Expect::Refused(vec!["unknown_id"]) };
                (Input::SetAgentState { agent: id.into(), state }, expect)
            }
            Op::Transfer { pick, to_agent, target } => self.resolve_transfer(*pick, *to_agent, *target),
            Op::Pick { pick, agent } => self.resolve_pick(*pick, *agent, now),
            Op::UpsertAgent(cfg) => (Input::UpsertAgent { agent: cfg.clone() }, self.expect_upsert_agent(cfg)),
            Op::RemoveAgent { agent } => {
                let id = AGENTS[*agent as usize % AGENTS.len()];
                let expect = if !self.agents.contains_key(id) {
                    Expect::Refused(vec!["unknown_id"])
                } else if self.tasks.values().any(|t| t.holder() == Some(id)) {
                    Expect::Refused(vec!["invalid_transition"])
                } else {
                    Expect::Accepted
                };
                (Input::RemoveAgent { agent: id.into() }, expect)
            }
            Op::UpsertQueue(cfg) => {
                let known = |q: &str| self.queues.contains_key(q);
                let ok = cfg.steps.iter().all(|s| match &s.action {
                    StepAction::AddQueue { queue } => known(queue) && queue != &cfg.name,
                    _ => true,
                });
                let expect = if ok { Expect::Accepted } else { Expect::Refused(vec!["invalid_config"]) };
                (Input::UpsertQueue { queue: cfg.clone() }, expect)
            }
            Op::UpsertChannel { variant } => self.resolve_channel(*variant),
        }
    }

    fn resolve_add(&self, op: &Op, now: f64) -> (Input, Expect) {
        let Op::Add { id, channel, queue, priority, requires, preferred, excluded, back } = op else { unreachable!() };
        let channel = match channel {
            0..=27 => CHANNELS[*channel as usize % 4],
            28 => CHANNELS[4],
            _ => CHANNELS[5],
        };
        let queue = match queue {
            0..=23 => QUEUES[*queue as usize % 4],
            24 => QUEUES[4],
            _ => QUEUES[5],
        };
        let task = NewTask {
            id: format!("t{}", id % TASK_IDS),
            channel: channel.into(),
            queue: queue.into(),
            priority: *priority,
            requires: requires.clone(),
            preferred_agents: preferred.iter().map(|(a, _)| AGENTS[*a as usize % AGENTS.len()].to_owned()).collect(),
            preferred_until: preferred.map(|(_, u)| now + [-5.0, 20.0, 100.0][u as usize % 3]),
            excluded_agents: excluded.iter().map(|a| AGENTS[*a as usize % AGENTS.len()].to_owned()).collect(),
            attributes: BTreeMap::new(),
            enqueued_at: match back {
                14 => Some(now - 50.0),
                15 => Some(now + 1.0),
                _ => None,
            },
        };
        let mut kinds = Vec::new();
        if self.tasks.contains_key(&task.id) {
            kinds.push("duplicate_id");
        }
        if !self.channels.contains_key(channel) || !self.queues.contains_key(queue) {
            kinds.push("unknown_id");
        }
        let unknown_agent = |ids: &[String]| ids.iter().any(|a| !self.agents.contains_key(a));
        if unknown_agent(&task.preferred_agents) || unknown_agent(&task.excluded_agents) || *back == 15 {
            kinds.push("invalid_input");
        }
        let expect = if kinds.is_empty() { Expect::Accepted } else { Expect::Refused(kinds) };
        (Input::AddTask { task }, expect)
    }

    fn resolve_transfer(&self, pick: u8, to_agent: bool, target: u8) -> (Input, Expect) {
        let live = self.ids_where(|_| true);
        let id =
            if live.is_empty() { format!("t{}", pick % TASK_IDS) } else { live[pick as usize % live.len()].clone() };
        let (to_queue, agent) = if to_agent {
            (None, Some(AGENTS[target as usize % AGENTS.len()].to_owned()))
        } else {
            (Some(QUEUES[target as usize % QUEUES.len()].to_owned()), None)
        };
        let expect = match self.tasks.get(&id) {
            None => Expect::Refused(vec!["unknown_id"]),
            Some(task) => match (&to_queue, &agent) {
                (Some(q), _) if !self.queues.contains_key(q) => Expect::Refused(vec!["unknown_id"]),
                (_, Some(a)) if !self.agents.contains_key(a) => Expect::Refused(vec!["unknown_id"]),
                (_, Some(a)) if task.holder() == Some(a.as_str()) => Expect::Refused(vec!["invalid_transition"]),
                _ => Expect::Accepted,
            },
        };
        (Input::Transfer { task: id, to_queue, to_agent: agent }, expect)
    }

    fn resolve_pick(&self, pick: u8, agent: u8, now: f64) -> (Input, Expect) {
        let mut ids = self.ids_where(|t| t.phase == Phase::Waiting && self.external(t) && t.reserved_at(now).is_none());
        if ids.is_empty() {
            ids = self.ids_where(|t| t.phase == Phase::Waiting);
        }
        let id = if ids.is_empty() { format!("t{}", pick % TASK_IDS) } else { ids[pick as usize % ids.len()].clone() };
        let agent = AGENTS[agent as usize % AGENTS.len()];
        let expect = match self.tasks.get(&id) {
            None => Expect::Refused(vec!["unknown_id"]),
            Some(_) if !self.agents.contains_key(agent) => Expect::Refused(vec!["unknown_id"]),
            Some(t) if t.phase != Phase::Waiting => Expect::Refused(vec!["invalid_transition"]),
            Some(t) => {
                let (_, hi) = self.steps_due(t, now);
                if self.eligible(agent, t, now, hi).is_ok() {
                    Expect::Accepted
                } else {
                    Expect::Refused(vec!["invalid_transition"])
                }
            }
        };
        (Input::Pick { task: id, agent: agent.into() }, expect)
    }

    fn expect_upsert_agent(&self, cfg: &AgentConfig) -> Expect {
        if cfg.queues.keys().any(|q| !self.queues.contains_key(q)) {
            return Expect::Refused(vec!["invalid_config"]);
        }
        if self.agents.contains_key(&cfg.id) {
            let (firm, interruptible, _, _) = self.load(&cfg.id);
            if cfg.capacity < firm.max(interruptible) {
                return Expect::Refused(vec!["invalid_config"]);
            }
        }
        Expect::Accepted
    }

    fn resolve_channel(&self, variant: u8) -> (Input, Expect) {
        let channel = match variant {
            0 => ChannelConfig { max_per_agent: Some(2), ..common::chat() },
            1 => ChannelConfig { max_per_agent: Some(4), ..common::chat() },
            2 => common::chat(),
            3 => ChannelConfig { inactive_after: Some(30.5), ..common::sms() },
            4 => ChannelConfig { inactive_after: None, ..common::sms() },
            5 => common::sms(),
            6 => ChannelConfig {
                name: "note".into(),
                cost: 5,
                max_per_agent: None,
                interruptible: false,
                inactive_after: None,
            },
            7 => ChannelConfig { cost: 50, ..common::voice() },
            _ => common::voice(),
        };
        let expect = match self.channels.get(&channel.name) {
            None => Expect::Accepted,
            Some(old) => {
                let held = self.tasks.values().any(|t| t.channel == channel.name && t.phase != Phase::Waiting);
                let over = channel.max_per_agent.is_some_and(|max| {
                    self.agents.keys().any(|a| self.load(a).2.get(channel.name.as_str()).copied().unwrap_or(0) > max)
                });
                if (held && (old.cost != channel.cost || old.interruptible != channel.interruptible)) || over {
                    Expect::Refused(vec!["invalid_transition"])
                } else {
                    Expect::Accepted
                }
            }
        };
        (Input::UpsertChannel { channel }, expect)
    }

    // ----- what an accepted input changes beyond its events -----

    fn apply(&mut self, input: &Input, now: f64) {
        match input {
            Input::AddTask { task } => self.adding = Some(task.clone()),
            Input::CustomerActivity { task } => self.task_mut(task).last_activity = now,
            Input::SetPriority { task, priority } => self.task_mut(task).priority = *priority,
            Input::UpsertAgent { agent } => {
                let status =
                    self.agents.get(&agent.id).map_or_else(|| status_of(agent.available), |a| a.status.clone());
                let missed = self.agents.get(&agent.id).map_or(0, |a| a.missed);
                self.agents.insert(agent.id.clone(), Agent { cfg: agent.clone(), status, missed });
            }
            Input::RemoveAgent { agent } => {
                self.agents.remove(agent);
                // The engine knows agents by index: an agent added later
                // under the same id is a new agent, neither reserved nor
                // excluded.
                for task in self.tasks.values_mut() {
                    task.excluded.remove(agent);
                    if let Some(r) = &mut task.reservation {
                        r.agents.remove(agent);
                        if r.agents.is_empty() {
                            task.reservation = None;
                        }
                    }
                }
            }
            Input::UpsertQueue { queue } => {
                self.queues.insert(queue.name.clone(), queue.clone());
            }
            Input::UpsertChannel { channel } => {
                self.channels.insert(channel.name.clone(), channel.clone());
            }
            _ => {}
        }
    }

    // ----- following the engine's events -----

    fn absorb(&mut self, events: &[Output], now: f64) {
        for e in events {
            let at = e.at();
            assert!(
                at >= self.last_at && at <= now,
                "event at {at} out of order (last {}, now {now}): {e:?}",
                self.last_at
            );
            self.last_at = at;
            self.event(e, at);
            self.previous = Some(e.clone());
        }
        self.adding = None;
    }

    #[allow(clippy::too_many_lines)] // one arm per kind of event reads best in one place
    fn event(&mut self, e: &Output, at: f64) {
        match e {
            Output::TaskQueued { task, queue, channel, priority, arrived_at, .. } => {
                self.queued(task, queue, channel, *priority, *arrived_at, at);
            }
            Output::OfferMade { offer, task, agent, queue, expires_at, reason, .. } => {
                self.offer_made(*offer, task, agent, queue, *expires_at, reason, at);
            }
            Output::OfferRejected { offer, task, agent, .. } | Output::OfferTimedOut { offer, task, agent, .. } => {
                let timed_out = matches!(e, Output::OfferTimedOut { .. });
                self.declined(*offer, task, agent, timed_out, at);
            }
            Output::OfferRescinded { offer, task, agent, .. } => {
                let t = self.task_mut(task);
                assert!(
                    matches!(&t.phase, Phase::Offered { offer: o, agent: a, .. } if o == offer && **a == **agent),
                    "rescinded offer {offer} of {task:?} is not pending: {:?}",
                    t.phase
                );
                t.phase = Phase::Waiting;
            }
            Output::TaskAssigned { task, agent, wait, .. } => {
                let t = self.task_mut(task);
                assert!(
                    matches!(&t.phase, Phase::Offered { agent: a, .. } if **a == **agent),
                    "assigned {task:?} was not offered to {agent:?}"
                );
                assert_eq!(*wait, at - t.arrived_at, "wait of {task:?}");
                t.phase = Phase::Assigned { agent: agent.to_string() };
                t.reservation = None;
                t.last_activity = at;
                self.agents.get_mut(&**agent).expect("assigned to a known agent").missed = 0;
            }
            Output::TaskCancelled { task, wait, .. } => {
                assert_eq!(self.task(task).phase, Phase::Waiting, "cancelled {task:?} was not waiting");
                assert_eq!(*wait, at - self.task(task).arrived_at);
                self.tasks.remove(&**task);
                self.finished += 1;
            }
            Output::TaskCompleted { task, agent, .. } => {
                assert_eq!(self.task(task).phase, Phase::Assigned { agent: agent.to_string() }, "completed {task:?}");
                self.tasks.remove(&**task);
                self.finished += 1;
            }
            Output::TaskTransferred { task, from_queue, from_agent, to_queue, to_agent, .. } => {
                self.transferred(task, from_queue, from_agent.as_deref(), to_queue.as_deref(), to_agent.as_deref(), at);
            }
            Output::StepReached { task, queue, step, .. } => {
                let t = self.task(task);
                assert_eq!((&t.phase, &t.queue), (&Phase::Waiting, &queue.to_string()), "step of {task:?}");
                let (lo, hi) = self.steps_due(t, at);
                assert!((lo..=hi).contains(&(*step as usize)), "{task:?} reached step {step} at {at}; due {lo}..={hi}");
            }
            Output::ReservationExpired { task, .. } => {
                let t = self.task_mut(task);
                let due = t.reservation.as_ref().is_some_and(|r| !r.named && at >= r.until);
                assert!(due || t.released, "reservation of {task:?} expired early: {:?}", t.reservation);
                t.reservation = None;
                t.released = false;
            }
            Output::TaskInactive { task, agent, .. } => {
                let t = self.task(task);
                assert_eq!(t.phase, Phase::Assigned { agent: agent.to_string() });
                assert!(!t.inactive, "{task:?} went inactive twice");
                let after = self.channels[&t.channel].inactive_after.expect("inactivity on a channel without it");
                assert!(t.last_activity + after <= at, "{task:?} inactive at {at}, last active {}", t.last_activity);
                self.task_mut(task).inactive = true;
            }
            Output::TaskReactivated { task, agent, .. } => {
                let t = self.task(task);
                assert!(
                    t.inactive && t.phase == Phase::Assigned { agent: agent.to_string() },
                    "reactivated {task:?}: {t:?}"
                );
                let a = &self.agents[&**agent];
                if let Err(why) = self.fits(a, &t.channel) {
                    panic!("{task:?} reactivated at {agent:?} without room: {why}");
                }
                let t = self.task_mut(task);
                t.inactive = false;
                t.last_activity = at;
            }
            Output::PickRequested { task, candidates, .. } => {
                let t = self.task(task);
                assert!(t.phase == Phase::Waiting && self.external(t) && t.reserved_at(at).is_none(), "pick for {t:?}");
                let listed: BTreeSet<String> = candidates.iter().map(|c| c.agent.to_string()).collect();
                let (lo, hi) = self.steps_due(t, at);
                assert!(
                    listed == self.eligible_set(t, at, lo) || listed == self.eligible_set(t, at, hi),
                    "pick for {task:?} lists {listed:?}; eligible {:?}",
                    self.eligible_set(t, at, hi)
                );
            }
            Output::AgentStateChanged { agent, status, .. } => self.status_changed(agent, status),
            Output::AgentLoad { agent, used, capacity, tasks, .. } => {
                let (firm, interruptible, _, assigned) = self.load(agent);
                let cap = self.agents[&**agent].cfg.capacity;
                let expected = if firm + interruptible <= cap { firm + interruptible } else { firm };
                assert_eq!((*used, *capacity, *tasks), (expected, cap, assigned), "load of {agent:?}");
            }
        }
    }

    fn queued(&mut self, id: &str, queue: &str, channel: &str, priority: i32, arrived_at: f64, at: f64) {
        if let Some(t) = self.tasks.get(id) {
            // Requeued by a transfer.
            assert!(t.phase == Phase::Waiting && t.queue == queue && t.arrived_at == arrived_at, "requeued {t:?}");
            return;
        }
        let nt = self.adding.take().unwrap_or_else(|| panic!("task {id:?} queued without being added"));
        assert_eq!(
            (nt.id.as_str(), nt.queue.as_str(), nt.channel.as_str(), nt.priority),
            (id, queue, channel, priority)
        );
        assert_eq!(arrived_at, nt.enqueued_at.unwrap_or(at));
        let excluded: BTreeSet<String> = nt.excluded_agents.iter().cloned().collect();
        let preferred: BTreeSet<String> =
            nt.preferred_agents.iter().filter(|a| !excluded.contains(*a)).cloned().collect();
        let reservation = nt.preferred_until.filter(|u| *u > at && !preferred.is_empty()).map(|until| Reservation {
            agents: preferred,
            until,
            named: false,
        });
        let task = Task {
            id: id.to_owned(),
            channel: channel.to_owned(),
            queue: queue.to_owned(),
            priority,
            requires: nt.requires.clone(),
            reservation,
            released: false,
            excluded,
            arrived_at,
            queued_at: arrived_at,
            seq: self.next_seq,
            phase: Phase::Waiting,
            inactive: false,
            last_activity: at,
        };
        self.next_seq += 1;
        self.added += 1;
        self.tasks.insert(id.to_owned(), task);
    }

    #[allow(clippy::too_many_arguments)]
    fn offer_made(
        &mut self,
        offer: u64,
        id: &str,
        agent: &str,
        queue: &str,
        expires_at: f64,
        reason: &omniroute_core::model::OfferReason,
        at: f64,
    ) {
        assert!(offer > self.last_offer, "offer {offer} is not new (last {})", self.last_offer);
        self.last_offer = offer;
        let t = self.task(id);
        assert_eq!(t.phase, Phase::Waiting, "{id:?} offered twice at once, or while not waiting");
        assert_eq!(t.queue, queue);
        assert_eq!(expires_at, at + self.queue(queue).offer_timeout);
        let (lo, hi) = self.steps_due(t, at);
        let step = reason.step as usize;
        assert!((lo..=hi).contains(&step), "{id:?} offered at step {step}; due {lo}..={hi}");
        if let Err(why) = self.eligible(agent, t, at, step) {
            panic!("{id:?} offered to {agent:?}, who is not eligible ({why}); reason {reason:?}\ntask {t:#?}");
        }
        let reserved = t.reserved_at(at).is_some_and(|r| r.agents.contains(agent));
        assert_eq!(reason.reserved, reserved, "reserved flag of the offer of {id:?}");
        if reason.trigger == "task_arrived" {
            assert!(!self.external(t) || reserved, "{id:?} of an external queue offered without a pick");
        }
        if reason.trigger == "agent_freed" {
            self.check_agent_order(agent, t, step, reason.strategy.as_ref(), at);
        }
        self.task_mut(id).phase = Phase::Offered { offer, agent: agent.to_owned(), expires_at };
    }

    /// An agent with room takes its reservations first (oldest first), then
    /// its higher-priority queues, the highest effective priority, the
    /// oldest: no waiting task it could take comes before the one offered.
    fn check_agent_order(&self, agent_id: &str, offered: &Task, step: usize, strategy: &str, at: f64) {
        let agent = &self.agents[agent_id];
        let tier = self.tier(agent, offered, step);
        let eff = self.effective_priority(offered, at);
        for u in self.tasks.values().filter(|u| u.phase == Phase::Waiting && u.id != offered.id) {
            let (lo, hi) = self.steps_due(u, at);
            if lo != hi || self.eligible(agent_id, u, at, hi).is_err() {
                continue;
            }
            let older = (u.arrived_at, u.seq) < (offered.arrived_at, offered.seq);
            if u.reserved_at(at).is_some() {
                let skipped = strategy != "reserved" || older;
                assert!(
                    !skipped,
                    "{agent_id:?} was offered {:?} ({strategy}) before its reserved {:?}",
                    offered.id, u.id
                );
                continue;
            }
            if strategy == "reserved" || self.external(u) {
                continue;
            }
            let (u_tier, u_eff) = (self.tier(agent, u, hi), self.effective_priority(u, at));
            let skipped = u_tier > tier
                || (u_tier == tier && u_eff > eff + 1e-6)
                || (u_tier == tier && u.queue == offered.queue && u.priority == offered.priority && older);
            assert!(
                !skipped,
                "{agent_id:?} was offered {:?} (tier {tier}, priority {eff}, since {}) before {:?} (tier {u_tier}, priority {u_eff}, since {})",
                offered.id,
                offered.arrived_at,
                u.id,
                u.arrived_at
            );
        }
    }

    fn declined(&mut self, offer: u64, id: &str, agent: &str, timed_out: bool, at: f64) {
        let t = self.task_mut(id);
        let Phase::Offered { offer: o, agent: a, expires_at } = t.phase.clone() else {
            panic!("declined offer {offer} of {id:?} is not pending: {:?}", t.phase)
        };
        assert_eq!((o, a.as_str()), (offer, agent));
        if timed_out {
            assert_eq!(at, expires_at, "offer {offer} timed out at {at}, due {expires_at}");
        }
        t.phase = Phase::Waiting;
        t.excluded.insert(agent.to_owned());
        if t.reservation.as_ref().is_some_and(|r| r.agents.iter().all(|x| t.excluded.contains(x))) {
            t.released = true;
        }
        let a = self.agents.get_mut(agent).expect("declined by a known agent");
        a.missed = if timed_out { a.missed + 1 } else { 0 };
    }

    fn transferred(
        &mut self,
        id: &str,
        from_queue: &str,
        from: Option<&str>,
        to_queue: Option<&str>,
        to_agent: Option<&str>,
        at: f64,
    ) {
        let t = self.task_mut(id);
        assert_eq!(t.queue, from_queue);
        match (&t.phase, from) {
            (Phase::Waiting, None) => {}
            (Phase::Assigned { agent }, Some(f)) if agent == f => {}
            (phase, from) => panic!("transfer of {id:?} from {from:?} while {phase:?}"),
        }
        t.phase = Phase::Waiting;
        t.inactive = false;
        match (to_queue, to_agent) {
            (Some(q), None) => {
                q.clone_into(&mut t.queue);
                t.queued_at = at;
                t.reservation = None;
                t.released = false;
                if let Some(f) = from {
                    t.excluded.insert(f.to_owned());
                }
            }
            (None, Some(a)) => {
                t.reservation =
                    Some(Reservation { agents: BTreeSet::from([a.to_owned()]), until: f64::INFINITY, named: true });
                t.released = false;
                t.excluded.remove(a);
            }
            other => panic!("transfer of {id:?} to {other:?}"),
        }
    }

    fn status_changed(&mut self, agent: &str, status: &AgentStatus) {
        let max = self.max_missed;
        let wrap_follows = match &self.previous {
            Some(Output::TaskCompleted { agent: a, queue, .. }) if &**a == agent => {
                self.queue(queue).wrap_up.is_some_and(|w| w > 0.0)
            }
            _ => false,
        };
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        }; // a removed agent
        match status {
            AgentStatus::NotResponding => {
                assert!(max > 0 && a.missed >= max, "{agent:?} not responding after {} missed offers", a.missed);
            }
            AgentStatus::WrapUp => assert!(wrap_follows, "{agent:?} in wrap-up without completing a task"),
            AgentStatus::Available => a.missed = 0,
            _ => {}
        }
        a.status = status.clone();
    }

    // ----- after each batch -----

    /// The engine agrees with the model on every task and agent, capacity
    /// holds, and no waiting task has an agent free to take it.
    fn check_state(&self, engine: &Engine, now: f64) {
        let live = self.tasks.len();
        assert_eq!(engine.task_count(), live, "tasks held");
        assert_eq!(self.added, self.finished + live as u64, "a task was lost");
        let waiting = self.tasks.values().filter(|t| t.phase == Phase::Waiting).count();
        assert_eq!(engine.waiting(), waiting, "tasks waiting");
        for id in AGENTS {
            match self.agents.get(id) {
                Some(a) => assert_eq!(engine.agent_status(id).ok().as_ref(), Some(&a.status), "status of {id:?}"),
                None => assert!(engine.agent_status(id).is_err(), "{id:?} was removed"),
            }
        }
        for (id, agent) in &self.agents {
            let (firm, interruptible, per_channel, _) = self.load(id);
            let cap = agent.cfg.capacity;
            assert!(
                firm <= cap && (firm + interruptible <= cap || firm > 0),
                "{id:?} over capacity: {firm}+{interruptible}/{cap}"
            );
            for (ch, n) in per_channel {
                assert!(self.channels[ch].max_per_agent.is_none_or(|max| n <= max), "{id:?} holds {n} of {ch}");
            }
        }
        for task in self.tasks.values() {
            let e = engine.explain(&task.id).unwrap_or_else(|err| panic!("explain {:?}: {err}", task.id));
            let phase = match task.phase {
                Phase::Waiting => "waiting",
                Phase::Offered { .. } => "offered",
                Phase::Assigned { .. } => "assigned",
            };
            assert_eq!(e.phase, phase, "phase of {:?}", task.id);
            assert_eq!(e.queue, task.queue);
            if let Some(holder) = task.holder() {
                assert!(e.agents.iter().any(|v| v.agent == holder && v.verdict == Verdict::Offered));
                continue;
            }
            let (_, step) = self.steps_due(task, now);
            assert_eq!(e.step as usize, step, "step of {:?}", task.id);
            let eligible = self.eligible_set(task, now, step);
            let said: BTreeSet<String> = e
                .agents
                .iter()
                .filter(|v| matches!(v.verdict, Verdict::Eligible { .. }))
                .map(|v| v.agent.clone())
                .collect();
            assert_eq!(said, eligible, "eligible agents of {:?} per explain and per the model", task.id);
            if task.reserved_at(now).is_some() || !self.external(task) {
                assert!(eligible.is_empty(), "{:?} waits while {eligible:?} could take it", task.id);
            }
        }
    }
}

// ===================================================================
// The property
// ===================================================================

fn check_outcome(input: &Input, expect: &Expect, errors: &[InputError], events: &[Output]) {
    match (expect, errors) {
        (Expect::Accepted, []) => {}
        (Expect::Refused(kinds), [e]) => {
            assert!(
                kinds.contains(&e.kind.as_str()),
                "{input:?} refused as {} ({}), expected one of {kinds:?}",
                e.kind,
                e.message
            );
            assert!(events.is_empty(), "refused {input:?} produced {events:?}");
        }
        _ => panic!("{input:?}: expected {expect:?}, got {errors:?}"),
    }
}

fn run_day(setup: &Setup, batches: &[Batch], restore_at: usize) {
    let cfg = EngineConfig {
        seed: setup.seed,
        max_missed_offers: setup.max_missed_offers,
        channels: channels(),
        queues: setup.queues.clone(),
        agents: setup.agents.clone(),
    };
    // Engine A gets one input per call and is checked against the model
    // after each; engine B gets each batch in one call, and must say the
    // same and end up byte for byte the same.
    let mut a = Engine::new(&cfg, setup.start).expect("configuration");
    let mut b = Engine::new(&cfg, setup.start).expect("configuration");
    let mut model = Model::new(&cfg, setup.start);
    let mut now = setup.start;
    for (k, batch) in batches.iter().enumerate() {
        now += batch.dt;
        let timers = a.process(now, &[]).expect("batch");
        a.check_invariants().unwrap_or_else(|e| panic!("after the timers due by {now}: {e}"));
        model.absorb(&timers.events, now);
        let (mut events, mut errors, mut inputs) = (timers.events, Vec::new(), Vec::new());
        for (i, op) in batch.ops.iter().enumerate() {
            let (input, expect) = model.resolve(op, now);
            let result = a.process(now, std::slice::from_ref(&input)).expect("batch");
            a.check_invariants().unwrap_or_else(|e| panic!("after {input:?}: {e}"));
            check_outcome(&input, &expect, &result.errors, &result.events);
            if result.errors.is_empty() {
                model.apply(&input, now);
            }
            model.absorb(&result.events, now);
            events.extend(result.events);
            errors.extend(result.errors.into_iter().map(|e| InputError { index: i as u32, ..e }));
            inputs.push(input);
        }
        model.check_state(&a, now);

        let together = b.process(now, &inputs).expect("batch");
        b.check_invariants().unwrap_or_else(|e| panic!("engine B after batch {k}: {e}"));
        assert_eq!(together.events, events, "batch {k} in one call");
        assert_eq!(together.errors, errors, "batch {k} in one call");
        if k == restore_at {
            let bytes = b.snapshot().expect("snapshot");
            b = Engine::restore(&bytes).expect("restore");
            assert_eq!(b.snapshot().expect("snapshot"), bytes, "restored engine's snapshot");
        }
        assert!(
            a.snapshot().expect("snapshot") == b.snapshot().expect("snapshot"),
            "engines A and B differ after batch {k}"
        );
    }
}

proptest! {
    // PROPTEST_CASES=n runs a deeper search than CI's default.
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64), ..ProptestConfig::default() })]

    /// A random day: every offer goes to an eligible agent with room, no
    /// task is offered twice or lost, agents take their work in order, and
    /// the same inputs give the same outputs, across a snapshot too.
    #[test]
    fn the_engine_agrees_with_the_reference_model(
        setup in setup(),
        batches in prop::collection::vec(batch(), 1..60),
        restore_at in 0usize..60,
    ) {
        run_day(&setup, &batches, restore_at);
    }
}
