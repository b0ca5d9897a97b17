//! The routing engine: one matching queue for every channel.
//!
//! The engine never reads a clock: every batch carries `now`, and timers
//! (relaxation, offer timeouts, reservations, wrap-up, inactivity) fire when a
//! batch's `now` passes them, in the order they were due.

mod explain;
mod handlers;
mod index;
mod invariants;
mod matching;
mod requirement;
mod scan;
mod snapshot;
mod state;
mod strategy;
mod timers;

use crate::error::{Error, Result};
use crate::model::{AgentStatus, BatchResult, Condition, EngineConfig, Input, InputError, Name, Output};
use index::Indices;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use state::{AgentIx, AgentRec, ChannelIx, ChannelRec, QueueRec, TaskIx, TaskRec, Timer};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

pub use strategy::FEATURES;

/// Counters of what the engine has done since it was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    /// Offers made: each one a routing decision.
    pub offers: u64,
    /// Tasks that arrived.
    pub arrivals: u64,
    /// Input events applied and refused.
    pub inputs: u64,
    pub refused: u64,
}

/// The routing engine.
pub struct Engine {
    pub(crate) max_missed_offers: u32,
    pub(crate) channels: Vec<ChannelRec>,
    pub(crate) queues: Vec<QueueRec>,
    pub(crate) agents: Vec<Option<AgentRec>>,
    pub(crate) tasks: Vec<Option<TaskRec>>,
    pub(crate) free_tasks: Vec<TaskIx>,
    pub(crate) skills: Vec<String>,
    /// Base requirements by index; index 0 stands for "none".
    pub(crate) conditions: Vec<Condition>,
    pub(crate) timers: BinaryHeap<Reverse<Timer>>,
    pub(crate) now: f64,
    pub(crate) next_offer: u64,
    pub(crate) next_seq: u64,
    pub(crate) next_timer: u64,
    pub(crate) rng: Pcg64Mcg,
    pub(crate) counters: Counters,
    pub(crate) ix: Indices,
    /// Output of the batch under way.
    pub(crate) out: Vec<Output>,
}

impl Engine {
    /// An engine with this configuration, at time `now`.
    pub fn new(config: &EngineConfig, now: f64) -> Result<Engine> {
        check_time("now", now)?;
        let mut engine = Engine {
            max_missed_offers: config.max_missed_offers,
            channels: Vec::new(),
            queues: Vec::new(),
            agents: Vec::new(),
            tasks: Vec::new(),
            free_tasks: Vec::new(),
            skills: Vec::new(),
            conditions: vec![Condition::All { of: Vec::new() }],
            timers: BinaryHeap::new(),
            now,
            next_offer: 1,
            next_seq: 0,
            next_timer: 0,
            rng: Pcg64Mcg::seed_from_u64(config.seed),
            counters: Counters::default(),
            ix: Indices::default(),
            out: Vec::new(),
        };
        engine.configure(config)?;
        engine.out.clear();
        Ok(engine)
    }

    /// Apply a whole configuration: channels, queues, then agents.
    fn configure(&mut self, config: &EngineConfig) -> Result<()> {
        for (i, c) in config.channels.iter().enumerate() {
            self.upsert_channel(c).map_err(|e| prefix(e, &format!("channels[{i}]")))?;
        }
        for (i, q) in config.queues.iter().enumerate() {
            self.check_queue_name_free(&q.name, i)?;
            self.add_queue_shell(q);
        }
        for (i, q) in config.queues.iter().enumerate() {
            self.upsert_queue(q).map_err(|e| prefix(e, &format!("queues[{i}]")))?;
        }
        for (i, a) in config.agents.iter().enumerate() {
            if self.ix.agent_by_id.contains_key(a.id.as_str()) {
                return Err(Error::config(format!("agents[{i}].id"), format!("duplicate agent id {:?}", a.id)));
            }
            self.upsert_agent(a).map_err(|e| prefix(e, &format!("agents[{i}]")))?;
        }
        Ok(())
    }

    /// Apply a batch of input events at time `now` (after firing every timer
    /// due by then). Each event is applied whole or refused whole; refusals
    /// are listed in the result with their position.
    pub fn process(&mut self, now: f64, inputs: &[Input]) -> Result<BatchResult> {
        self.advance(now)?;
        let mut errors = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            self.counters.inputs += 1;
            if let Err(e) = self.apply(input) {
                self.counters.refused += 1;
                errors.push(InputError { index: i as u32, kind: e.kind().to_owned(), message: e.to_string() });
            }
        }
        Ok(BatchResult { now: self.now, events: std::mem::take(&mut self.out), errors })
    }

    /// Apply one input event at time `now`; an error means nothing changed.
    pub fn apply_one(&mut self, now: f64, input: &Input) -> Result<Vec<Output>> {
        let mut out = Vec::new();
        self.apply_one_into(now, input, &mut out)?;
        Ok(out)
    }

    /// As [`Engine::apply_one`], with the outputs in `out` (its contents
    /// replaced). The engine keeps `out`'s old buffer for the next call, so a
    /// caller that applies one input at a time, like the simulator, reuses two
    /// buffers instead of allocating one per call. On an error `out` is empty.
    pub fn apply_one_into(&mut self, now: f64, input: &Input, out: &mut Vec<Output>) -> Result<()> {
        out.clear();
        self.advance(now)?;
        self.counters.inputs += 1;
        match self.apply(input) {
            Ok(()) => {
                std::mem::swap(&mut self.out, out);
                Ok(())
            }
            Err(e) => {
                // The timers' output stays for the next call.
                self.counters.refused += 1;
                Err(e)
            }
        }
    }

    /// Fire the timers due by `now`: relaxation, offer timeouts,
    /// reservations, wrap-up ends and inactivity.
    pub fn tick(&mut self, now: f64) -> Result<Vec<Output>> {
        self.advance(now)?;
        Ok(std::mem::take(&mut self.out))
    }

    fn advance(&mut self, now: f64) -> Result<()> {
        check_time("now", now)?;
        if now < self.now {
            return Err(Error::input(
                "now",
                format!("time went backwards: {now} is before the engine's time {}", self.now),
            ));
        }
        self.fire_timers(now);
        self.now = now;
        Ok(())
    }

    /// Where every agent stands now, as the events that would have told it:
    /// one `AgentStateChanged` and one `AgentLoad` per agent, at the
    /// engine's time. A reporting engine starting to follow this one (or
    /// one restored) begins from these.
    #[must_use]
    pub fn roster(&self) -> Vec<Output> {
        let mut out = Vec::with_capacity(self.ix.agent_by_id.len() * 2);
        for a in 0..self.agents.len() as AgentIx {
            if self.agents[a as usize].is_some() {
                out.push(self.status_event(a));
                out.push(self.load_event(a));
            }
        }
        out
    }

    /// When the next live timer falls due, if any; stale timers at the top
    /// of the heap (offers already answered, tasks gone) are dropped on the
    /// way, so a runtime can call this after every batch: amortised O(1).
    /// Dropping them changes nothing a later call can observe.
    pub fn next_timer_at(&mut self) -> Option<f64> {
        while let Some(top) = self.timers.peek() {
            if self.timer_is_live(top.0.kind) {
                return Some(top.0.at.0);
            }
            self.timers.pop();
        }
        None
    }

    /// The engine's time: the `now` of the last call.
    #[must_use]
    pub fn now(&self) -> f64 {
        self.now
    }

    #[must_use]
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Number of tasks waiting (not offered, not assigned).
    #[must_use]
    pub fn waiting(&self) -> usize {
        self.tasks.iter().flatten().filter(|t| t.phase == state::Phase::Waiting).count()
    }

    /// Number of tasks the engine holds in any phase.
    #[must_use]
    pub fn task_count(&self) -> usize {
        self.ix.task_by_id.len()
    }

    /// The status of an agent.
    pub fn agent_status(&self, id: &str) -> Result<AgentStatus> {
        let a = self.agent_ix(id)?;
        Ok(self.agent(a).status.clone())
    }

    // --- small accessors used across the engine's files ---

    pub(crate) fn agent(&self, a: AgentIx) -> &AgentRec {
        self.agents[a as usize].as_ref().expect("live agent index")
    }

    pub(crate) fn agent_mut(&mut self, a: AgentIx) -> &mut AgentRec {
        self.agents[a as usize].as_mut().expect("live agent index")
    }

    pub(crate) fn task(&self, t: TaskIx) -> &TaskRec {
        self.tasks[t as usize].as_ref().expect("live task index")
    }

    pub(crate) fn task_mut(&mut self, t: TaskIx) -> &mut TaskRec {
        self.tasks[t as usize].as_mut().expect("live task index")
    }

    pub(crate) fn agent_ix(&self, id: &str) -> Result<AgentIx> {
        self.ix.agent_by_id.get(id).copied().ok_or_else(|| Error::unknown("agent", id))
    }

    pub(crate) fn task_ix(&self, id: &str) -> Result<TaskIx> {
        self.ix.task_by_id.get(id).copied().ok_or_else(|| Error::unknown("task", id))
    }

    /// Priority plus what the task has gained by waiting since its original
    /// arrival, at its queue's aging rate.
    pub(crate) fn effective_priority(&self, t: TaskIx) -> f64 {
        let task = self.task(t);
        let rate = self.queues[task.queue as usize].config.aging_per_second;
        f64::from(task.priority) + rate * (self.now - task.arrived_at)
    }

    pub(crate) fn queue_name(&self, q: u32) -> Name {
        self.ix.queues.name(q)
    }

    pub(crate) fn channel_name(&self, c: ChannelIx) -> Name {
        self.ix.channels.name(c)
    }

    pub(crate) fn schedule(&mut self, at: f64, kind: state::TimerKind) {
        let seq = self.next_timer;
        self.next_timer += 1;
        self.timers.push(Reverse(Timer { at: state::Time(at), seq, kind }));
    }

    /// Whether a task of channel `c` fits the agent's capacity now, or the
    /// capacity it needs and the capacity free.
    #[inline]
    pub(crate) fn fits(&self, agent: &AgentRec, c: ChannelIx) -> std::result::Result<(), Misfit> {
        let ch = &self.channels[c as usize].config;
        if let Some(max) = ch.max_per_agent {
            if agent.channel_count(c) >= max {
                return Err(Misfit::ChannelLimit(max));
            }
        }
        let base = if ch.interruptible { agent.load_firm + agent.load_interruptible } else { agent.load_firm };
        if base + ch.cost <= agent.capacity {
            Ok(())
        } else {
            Err(Misfit::Capacity { needed: ch.cost, free: agent.capacity.saturating_sub(base) })
        }
    }

    /// The agent's capacity in use and the tasks it has accepted, now.
    fn load_event(&self, a: AgentIx) -> Output {
        let agent = self.agent(a);
        let assigned =
            agent.tasks.iter().filter(|&&t| matches!(self.task(t).phase, state::Phase::Assigned { .. })).count() as u32;
        Output::AgentLoad {
            at: self.now,
            agent: agent.id.clone(),
            used: agent.used(),
            capacity: agent.capacity,
            tasks: assigned,
        }
    }

    fn status_event(&self, a: AgentIx) -> Output {
        let agent = self.agent(a);
        Output::AgentStateChanged { at: self.now, agent: agent.id.clone(), status: agent.status.clone() }
    }

    pub(crate) fn emit_load(&mut self, a: AgentIx) {
        let ev = self.load_event(a);
        self.out.push(ev);
    }

    pub(crate) fn emit_status(&mut self, a: AgentIx) {
        let ev = self.status_event(a);
        self.out.push(ev);
    }
}

/// Why a task does not fit an agent's capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Misfit {
    ChannelLimit(u32),
    Capacity { needed: u32, free: u32 },
}

pub(crate) fn check_time(field: &str, t: f64) -> Result<()> {
    if t.is_finite() {
        Ok(())
    } else {
        Err(Error::input(field, format!("expected a finite number of seconds, got {t}")))
    }
}

/// Put a path in front of a configuration error's field.
/// Everything wrong in a configuration is a configuration error, including
/// the checks it shares with input events (names).
pub(crate) fn prefix(e: Error, path: &str) -> Error {
    match e {
        Error::InvalidConfig { field, problem } | Error::InvalidInput { field, problem } => {
            Error::InvalidConfig { field: format!("{path}.{field}"), problem }
        }
        other => other,
    }
}
