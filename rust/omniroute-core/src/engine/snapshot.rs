//! Snapshot and restore: the whole engine state as bytes, and back.

use super::index::Indices;
use super::state::{AgentRec, ChannelRec, QueueRec, TaskIx, TaskRec, Timer};
use super::{Counters, Engine};
use crate::error::{Error, Result};
use crate::model::Condition;
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;

/// The format's version; a snapshot of another version is refused.
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct State {
    version: u32,
    max_missed_offers: u32,
    channels: Vec<ChannelRec>,
    queues: Vec<QueueRec>,
    agents: Vec<Option<AgentRec>>,
    tasks: Vec<Option<TaskRec>>,
    free_tasks: Vec<TaskIx>,
    skills: Vec<String>,
    conditions: Vec<Condition>,
    timers: Vec<Timer>,
    now: f64,
    next_offer: u64,
    next_seq: u64,
    next_timer: u64,
    rng: Pcg64Mcg,
    counters: Counters,
}

impl Engine {
    /// The whole state as bytes (`MessagePack`). Restoring them gives an
    /// engine that behaves exactly like this one.
    pub fn snapshot(&self) -> Result<Vec<u8>> {
        let mut timers: Vec<Timer> = self.timers.iter().map(|r| r.0).collect();
        timers.sort_unstable();
        let state = State {
            version: VERSION,
            max_missed_offers: self.max_missed_offers,
            channels: self.channels.clone(),
            queues: self.queues.clone(),
            agents: self.agents.clone(),
            tasks: self.tasks.clone(),
            free_tasks: self.free_tasks.clone(),
            skills: self.skills.clone(),
            conditions: self.conditions.clone(),
            timers,
            now: self.now,
            next_offer: self.next_offer,
            next_seq: self.next_seq,
            next_timer: self.next_timer,
            rng: self.rng.clone(),
            counters: self.counters,
        };
        rmp_serde::to_vec(&state).map_err(|e| Error::Snapshot(e.to_string()))
    }

    /// An engine restored from `snapshot` bytes; its invariants are checked.
    pub fn restore(bytes: &[u8]) -> Result<Engine> {
        let state: State =
            rmp_serde::from_slice(bytes).map_err(|e| Error::Snapshot(format!("not an engine snapshot: {e}")))?;
        if state.version != VERSION {
            return Err(Error::Snapshot(format!("version {} is not supported (expected {VERSION})", state.version)));
        }
        let mut engine = Engine {
            max_missed_offers: state.max_missed_offers,
            channels: state.channels,
            queues: state.queues,
            agents: state.agents,
            tasks: state.tasks,
            free_tasks: state.free_tasks,
            skills: state.skills,
            conditions: state.conditions,
            timers: state.timers.into_iter().map(Reverse).collect(),
            now: state.now,
            next_offer: state.next_offer,
            next_seq: state.next_seq,
            next_timer: state.next_timer,
            rng: state.rng,
            counters: state.counters,
            ix: Indices::default(),
            out: Vec::new(),
        };
        engine.check_references()?;
        engine.rebuild();
        engine.check_invariants().map_err(|e| Error::Snapshot(e.to_string()))?;
        Ok(engine)
    }

    /// Indices inside the snapshot must point at live records, so that
    /// rebuilding cannot go out of bounds on damaged bytes.
    fn check_references(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Snapshot(format!("damaged: {what}")));
        if self.conditions.is_empty() {
            return bad("condition table is empty");
        }
        let nq = self.queues.len() as u32;
        let nc = self.channels.len() as u32;
        let live_agent = |a: u32| self.agents.get(a as usize).is_some_and(Option::is_some);
        for agent in self.agents.iter().flatten() {
            if agent.queues.iter().any(|(q, _)| *q >= nq)
                || agent.tasks.iter().any(|&t| self.tasks.get(t as usize).is_none_or(Option::is_none))
            {
                return bad("agent refers to a missing queue or task");
            }
        }
        for task in self.tasks.iter().flatten() {
            if task.queue >= nq || task.channel >= nc || task.requires as usize >= self.conditions.len() {
                return bad("task refers to a missing queue, channel or requirement");
            }
            let agent_ok = match task.phase {
                super::state::Phase::Waiting => true,
                super::state::Phase::Offered { agent, .. } | super::state::Phase::Assigned { agent } => {
                    live_agent(agent)
                }
            };
            if !agent_ok || task.reservation.as_ref().is_some_and(|r| !r.agents.iter().all(|&a| live_agent(a))) {
                return bad("task refers to a missing agent");
            }
        }
        for &t in &self.free_tasks {
            if self.tasks.get(t as usize).is_none_or(Option::is_some) {
                return bad("free task slot is not free");
            }
        }
        Ok(())
    }
}
