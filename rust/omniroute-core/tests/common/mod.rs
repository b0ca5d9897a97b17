//! Shared helpers of the routing-engine tests: a small contact center to
//! configure, tasks to send it, and a `World` that drives the engine batch by
//! batch and checks its invariants after every one.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use omniroute_core::model::{
    AgentConfig, AgentStatus, BatchResult, ChannelConfig, Condition, EngineConfig, Explanation, Input, NewTask,
    OfferReason, Output, QueueConfig, RequestedState, Step, StepAction, Strategy, Verdict,
};
use omniroute_core::Engine;

// ----- configuration -----

/// A phone call: it fills an agent's default capacity of 60.
pub fn voice() -> ChannelConfig {
    ChannelConfig { name: "voice".into(), cost: 60, max_per_agent: None, interruptible: false, inactive_after: None }
}

/// A web chat: up to three at once.
pub fn chat() -> ChannelConfig {
    ChannelConfig { name: "chat".into(), cost: 20, max_per_agent: Some(3), interruptible: false, inactive_after: None }
}

/// An e-mail: five fill an agent, and a call or chat may interrupt them.
pub fn email() -> ChannelConfig {
    ChannelConfig { name: "email".into(), cost: 12, max_per_agent: None, interruptible: true, inactive_after: None }
}

/// An SMS conversation: it stops counting against the agent after the
/// customer has been silent for a minute.
pub fn sms() -> ChannelConfig {
    ChannelConfig {
        name: "sms".into(),
        cost: 20,
        max_per_agent: None,
        interruptible: false,
        inactive_after: Some(60.0),
    }
}

pub fn channels() -> Vec<ChannelConfig> {
    vec![voice(), chat(), email(), sms()]
}

pub fn queue(name: &str) -> QueueConfig {
    QueueConfig::named(name)
}

pub fn queue_with(name: &str, strategy: Strategy) -> QueueConfig {
    QueueConfig { strategy, ..QueueConfig::named(name) }
}

pub fn step(after_seconds: f64, action: StepAction) -> Step {
    Step { after_seconds, action }
}

/// An available agent with the default capacity, serving `queues` (with
/// the agent's priority for each) with `skills`.
pub fn agent(id: &str, queues: &[(&str, i32)], skills: &[(&str, u8)]) -> AgentConfig {
    AgentConfig {
        queues: queues.iter().map(|(q, p)| ((*q).to_owned(), *p)).collect(),
        skills: skills.iter().map(|(s, l)| ((*s).to_owned(), *l)).collect(),
        ..AgentConfig::named(id)
    }
}

/// An agent serving one queue at priority 0, without skills.
pub fn member(id: &str, queue: &str) -> AgentConfig {
    agent(id, &[(queue, 0)], &[])
}

/// The standard four channels, the queues and agents given, seed 0 and
/// three missed offers before an agent counts as not responding.
pub fn config(queues: Vec<QueueConfig>, agents: Vec<AgentConfig>) -> EngineConfig {
    EngineConfig { seed: 0, max_missed_offers: 3, channels: channels(), queues, agents }
}

// ----- conditions and tasks -----

pub fn skill(name: &str, min_level: u8) -> Condition {
    Condition::Skill { skill: name.into(), min_level }
}

pub fn all(of: Vec<Condition>) -> Condition {
    Condition::All { of }
}

pub fn any(of: Vec<Condition>) -> Condition {
    Condition::Any { of }
}

pub fn not(c: Condition) -> Condition {
    Condition::Not { condition: Box::new(c) }
}

/// A task with no requirement, priority 0, no preferences.
pub fn task(id: &str, channel: &str, queue: &str) -> NewTask {
    NewTask {
        id: id.into(),
        channel: channel.into(),
        queue: queue.into(),
        priority: 0,
        requires: None,
        preferred_agents: Vec::new(),
        preferred_until: None,
        excluded_agents: Vec::new(),
        attributes: std::collections::BTreeMap::new(),
        enqueued_at: None,
    }
}

pub fn add(t: NewTask) -> Input {
    Input::AddTask { task: t }
}

pub fn accept(offer: u64) -> Input {
    Input::Accept { offer }
}

pub fn reject(offer: u64) -> Input {
    Input::Reject { offer }
}

pub fn cancel(task: &str) -> Input {
    Input::Cancel { task: task.into() }
}

pub fn complete(task: &str) -> Input {
    Input::Complete { task: task.into() }
}

pub fn to_queue(task: &str, queue: &str) -> Input {
    Input::Transfer { task: task.into(), to_queue: Some(queue.into()), to_agent: None }
}

pub fn to_agent(task: &str, agent: &str) -> Input {
    Input::Transfer { task: task.into(), to_queue: None, to_agent: Some(agent.into()) }
}

pub fn set_state(agent: &str, state: RequestedState) -> Input {
    Input::SetAgentState { agent: agent.into(), state }
}

pub fn away(agent: &str) -> Input {
    set_state(agent, RequestedState::Away { reason: "break".into() })
}

pub fn available(agent: &str) -> Input {
    set_state(agent, RequestedState::Available {})
}

pub fn offline(agent: &str) -> Input {
    set_state(agent, RequestedState::Offline {})
}

pub fn activity(task: &str) -> Input {
    Input::CustomerActivity { task: task.into() }
}

// ----- reading output -----

/// An offer as the tests need it.
#[derive(Clone, Debug, PartialEq)]
pub struct Offer {
    pub id: u64,
    pub task: String,
    pub agent: String,
    pub queue: String,
    pub at: f64,
    pub expires_at: f64,
    pub reason: OfferReason,
}

/// Every offer made in these events, in order.
pub fn offers(events: &[Output]) -> Vec<Offer> {
    events
        .iter()
        .filter_map(|e| match e {
            Output::OfferMade { at, offer, task, agent, queue, expires_at, reason, .. } => Some(Offer {
                id: *offer,
                task: task.to_string(),
                agent: agent.to_string(),
                queue: queue.to_string(),
                at: *at,
                expires_at: *expires_at,
                reason: (**reason).clone(),
            }),
            _ => None,
        })
        .collect()
}

/// The one offer of `task` in these events (panics with the events if there
/// is none or more than one).
pub fn offer_of(events: &[Output], task: &str) -> Offer {
    let found: Vec<Offer> = offers(events).into_iter().filter(|o| o.task == task).collect();
    assert_eq!(found.len(), 1, "expected exactly one offer of {task:?} in {events:#?}");
    found.into_iter().next().unwrap()
}

/// The agent offered `task` in these events.
pub fn offered_to(events: &[Output], task: &str) -> String {
    offer_of(events, task).agent
}

/// (task, agent) of every offer, in order: compact for assertions.
pub fn pairs(events: &[Output]) -> Vec<(String, String)> {
    offers(events).into_iter().map(|o| (o.task, o.agent)).collect()
}

/// Whether no offer was made.
pub fn no_offer(events: &[Output]) -> bool {
    offers(events).is_empty()
}

/// The events that match a predicate.
pub fn select(events: &[Output], keep: impl Fn(&Output) -> bool) -> Vec<&Output> {
    events.iter().filter(|e| keep(e)).collect()
}

/// Every status change of `agent` in these events.
pub fn statuses(events: &[Output], agent: &str) -> Vec<AgentStatus> {
    events
        .iter()
        .filter_map(|e| match e {
            Output::AgentStateChanged { agent: a, status, .. } if **a == *agent => Some(status.clone()),
            _ => None,
        })
        .collect()
}

/// The verdict of one agent in an explanation.
pub fn verdict_of(explanation: &Explanation, agent: &str) -> Verdict {
    explanation
        .agents
        .iter()
        .find(|v| v.agent == agent)
        .unwrap_or_else(|| panic!("no verdict for agent {agent:?} in {explanation:#?}"))
        .verdict
        .clone()
}

// ----- the world -----

/// An engine driven batch by batch, with its invariants checked after each.
pub struct World {
    pub engine: Engine,
    /// Every event of every batch, in order.
    pub log: Vec<Output>,
}

impl World {
    /// An engine with this configuration at time 0.
    pub fn new(config: &EngineConfig) -> World {
        World::at(config, 0.0)
    }

    pub fn at(config: &EngineConfig, now: f64) -> World {
        let engine = Engine::new(config, now).unwrap_or_else(|e| panic!("configuration refused: {e}"));
        engine.check_invariants().unwrap_or_else(|e| panic!("new engine: {e}"));
        World { engine, log: Vec::new() }
    }

    /// Process a batch that must be accepted whole; returns its events.
    pub fn run(&mut self, now: f64, inputs: &[Input]) -> Vec<Output> {
        let result = self.batch(now, inputs);
        assert!(result.errors.is_empty(), "batch at {now} refused events: {:#?}\ninputs: {inputs:#?}", result.errors);
        result.events
    }

    /// Process a batch whose refusals the test inspects itself.
    pub fn batch(&mut self, now: f64, inputs: &[Input]) -> BatchResult {
        let result = self.engine.process(now, inputs).unwrap_or_else(|e| panic!("batch at {now} failed: {e}"));
        if let Err(e) = self.engine.check_invariants() {
            panic!("after the batch at {now} ({inputs:#?}): {e}\nevents: {:#?}", result.events);
        }
        self.log.extend(result.events.iter().cloned());
        result
    }

    /// Process a batch of one event that must be refused; returns the
    /// error's kind and message.
    pub fn refused(&mut self, now: f64, input: Input) -> (String, String) {
        let inputs = [input];
        let result = self.batch(now, &inputs);
        assert_eq!(result.errors.len(), 1, "expected {:?} to be refused; events: {:#?}", inputs[0], result.events);
        let e = &result.errors[0];
        (e.kind.clone(), e.message.clone())
    }

    /// Let time pass to `now`: the timers due by then fire.
    pub fn wait(&mut self, now: f64) -> Vec<Output> {
        self.run(now, &[])
    }

    /// Add one task; returns the batch's events.
    pub fn arrive(&mut self, now: f64, t: NewTask) -> Vec<Output> {
        self.run(now, &[add(t)])
    }

    /// Add a task and have its offer accepted at once; returns the agent.
    pub fn assign(&mut self, now: f64, t: NewTask) -> String {
        let id = t.id.clone();
        let events = self.arrive(now, t);
        let offer = offer_of(&events, &id);
        self.run(now, &[accept(offer.id)]);
        offer.agent
    }

    pub fn explain(&self, task: &str) -> Explanation {
        self.engine.explain(task).unwrap_or_else(|e| panic!("explain {task:?}: {e}"))
    }

    pub fn status(&self, agent: &str) -> AgentStatus {
        self.engine.agent_status(agent).unwrap_or_else(|e| panic!("status of {agent:?}: {e}"))
    }

    pub fn snapshot(&self) -> Vec<u8> {
        self.engine.snapshot().unwrap_or_else(|e| panic!("snapshot: {e}"))
    }
}
