//! The invariant checker: every index agrees with the records, capacity is
//! never exceeded, and no waiting task is left beside an agent free to take it.

use super::index::{ClassKey, NO_CLASS};
use super::state::{AgentIx, Phase, TaskIx, Time, TimerKind};
use super::Engine;
use crate::error::{Error, Result};
use crate::model::Strategy;
use std::collections::BTreeSet;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(Error::Invariant(format!($($msg)+)));
        }
    };
}

impl Engine {
    /// Check the engine's consistency; the error names the first violation.
    pub fn check_invariants(&self) -> Result<()> {
        self.check_timers_in_bounds()?;
        self.check_tasks()?;
        self.check_agents()?;
        self.check_indices()?;
        self.check_work_conserving()
    }

    fn check_timers_in_bounds(&self) -> Result<()> {
        for timer in &self.timers {
            let ok = match timer.0.kind {
                TimerKind::Step { task, .. }
                | TimerKind::OfferTimeout { task, .. }
                | TimerKind::ReservationEnd { task, .. }
                | TimerKind::Inactivity { task, .. } => (task as usize) < self.tasks.len(),
                TimerKind::WrapUpEnd { agent, .. } => (agent as usize) < self.agents.len(),
            };
            ensure!(ok, "timer {:?} points outside the engine", timer.0);
        }
        Ok(())
    }

    fn check_tasks(&self) -> Result<()> {
        let offer_timers: BTreeSet<u64> = self
            .timers
            .iter()
            .filter_map(|t| match t.0.kind {
                TimerKind::OfferTimeout { offer, .. } => Some(offer),
                _ => None,
            })
            .collect();
        let mut live = 0;
        for (t, task) in self.tasks.iter().enumerate() {
            let Some(task) = task else { continue };
            live += 1;
            let t = t as TaskIx;
            ensure!(self.ix.task_by_id.get(&task.id) == Some(&t), "task {:?} is not indexed by its id", task.id);
            let c = self.ix.task_class[t as usize];
            ensure!(c != NO_CLASS, "task {:?} has no class", task.id);
            let class = &self.ix.classes[c as usize];
            let key = ClassKey { queue: task.queue, channel: task.channel, requires: task.requires, step: task.step };
            ensure!(class.key == key, "task {:?} is filed under the wrong class", task.id);
            ensure!(task.excluded.windows(2).all(|w| w[0] < w[1]), "task {:?} exclusions are not sorted", task.id);
            let in_backlog = class.backlog.contains(&self.wait_key(t));
            let reserved_in: Vec<AgentIx> = (0..self.ix.reserved.len() as AgentIx)
                .filter(|&a| self.ix.reserved[a as usize].contains(&(Time(task.arrived_at), task.seq, t)))
                .collect();
            match task.phase {
                Phase::Waiting => match &task.reservation {
                    None => {
                        ensure!(
                            in_backlog && reserved_in.is_empty(),
                            "waiting task {:?} is not in its backlog",
                            task.id
                        );
                    }
                    Some(r) => {
                        let mut want = r.agents.clone();
                        want.sort_unstable();
                        ensure!(
                            !in_backlog && reserved_in == want,
                            "reserved task {:?} is not with its agents",
                            task.id
                        );
                    }
                },
                Phase::Offered { offer, agent, .. } => {
                    ensure!(
                        !in_backlog && reserved_in.is_empty(),
                        "offered task {:?} is still listed as waiting",
                        task.id
                    );
                    ensure!(self.ix.offers.get(&offer) == Some(&t), "offer {offer} is not indexed");
                    ensure!(offer_timers.contains(&offer), "offer {offer} has no timeout");
                    ensure!(
                        self.agent(agent).tasks.contains(&t),
                        "offered task {:?} is not held by its agent",
                        task.id
                    );
                }
                Phase::Assigned { agent } => {
                    ensure!(
                        !in_backlog && reserved_in.is_empty(),
                        "assigned task {:?} is still listed as waiting",
                        task.id
                    );
                    ensure!(
                        self.agent(agent).tasks.contains(&t),
                        "assigned task {:?} is not held by its agent",
                        task.id
                    );
                }
            }
        }
        ensure!(
            live == self.ix.task_by_id.len(),
            "the task index holds {} ids for {live} tasks",
            self.ix.task_by_id.len()
        );
        let offered = self.tasks.iter().flatten().filter(|t| matches!(t.phase, Phase::Offered { .. })).count();
        ensure!(offered == self.ix.offers.len(), "{} offers indexed for {offered} offered tasks", self.ix.offers.len());
        for &t in &self.free_tasks {
            ensure!(self.tasks[t as usize].is_none(), "free slot {t} holds a task");
        }
        Ok(())
    }

    fn check_agents(&self) -> Result<()> {
        for (a, agent) in self.agents.iter().enumerate() {
            let Some(agent) = agent else { continue };
            let a = a as AgentIx;
            ensure!(self.ix.agent_by_id.get(&agent.id) == Some(&a), "agent {:?} is not indexed by its id", agent.id);
            let (mut firm, mut interruptible) = (0u32, 0u32);
            let mut per_channel = vec![0u32; self.channels.len()];
            let mut seen = BTreeSet::new();
            for &t in &agent.tasks {
                ensure!(seen.insert(t), "agent {:?} holds a task twice", agent.id);
                let task = self.task(t);
                let holder = match task.phase {
                    Phase::Offered { agent, .. } | Phase::Assigned { agent } => Some(agent),
                    Phase::Waiting => None,
                };
                ensure!(holder == Some(a), "agent {:?} holds task {:?} that is not its own", agent.id, task.id);
                if !task.inactive {
                    let ch = &self.channels[task.channel as usize].config;
                    if ch.interruptible {
                        interruptible += ch.cost;
                    } else {
                        firm += ch.cost;
                    }
                    per_channel[task.channel as usize] += 1;
                }
            }
            ensure!(
                firm == agent.load_firm && interruptible == agent.load_interruptible,
                "agent {:?} load {}+{} differs from its tasks' {firm}+{interruptible}",
                agent.id,
                agent.load_firm,
                agent.load_interruptible
            );
            ensure!(
                firm <= agent.capacity,
                "agent {:?} holds {firm} units of firm work over capacity {}",
                agent.id,
                agent.capacity
            );
            ensure!(
                firm + interruptible <= agent.capacity || firm > 0,
                "agent {:?} holds {interruptible} units of interruptible work over capacity {}",
                agent.id,
                agent.capacity
            );
            ensure!(agent.used() <= agent.capacity, "agent {:?} exceeds its capacity", agent.id);
            for (c, &n) in per_channel.iter().enumerate() {
                ensure!(agent.channel_count(c as u32) == n, "agent {:?} channel count is off", agent.id);
                if let Some(max) = self.channels[c].config.max_per_agent {
                    ensure!(n <= max, "agent {:?} holds {n} tasks of channel {c}, over its maximum {max}", agent.id);
                }
            }
            let room = self.compute_room(a);
            ensure!(self.ix.agent_ready[a as usize] == room, "agent {:?} readiness is stale", agent.id);
            for (q, _) in &agent.queues {
                for (c, set) in self.ix.ready[*q as usize].iter().enumerate() {
                    ensure!(set.contains(a) == (room & (1 << c) != 0), "agent {:?} ready set is stale", agent.id);
                }
                ensure!(
                    self.ix.members[*q as usize].binary_search(&a).is_ok(),
                    "agent {:?} missing from members",
                    agent.id
                );
            }
        }
        ensure!(
            self.ix.agent_by_id.len() == self.agents.iter().flatten().count(),
            "the agent index holds ids of removed agents"
        );
        Ok(())
    }

    fn check_indices(&self) -> Result<()> {
        for (c, class) in self.ix.classes.iter().enumerate() {
            for key in &class.backlog {
                let task = self.tasks[key.task as usize].as_ref();
                ensure!(
                    task.is_some_and(|x| x.phase == Phase::Waiting && x.reservation.is_none())
                        && self.ix.task_class[key.task as usize] == c as u32
                        && self.wait_key(key.task) == *key,
                    "backlog of class {c} holds a stale entry"
                );
            }
            let (own, ch) = (class.key.queue as usize, class.key.channel as usize);
            if let Some(&head) = class.backlog.first() {
                ensure!(self.ix.heads[own][ch].contains(&(head, c as u32)), "class {c} is not listed by its head");
            }
            for (q, by_channel) in self.ix.overflow.iter().enumerate() {
                for (x, set) in by_channel.iter().enumerate() {
                    let expected = !class.backlog.is_empty() && class.serving[1..].contains(&(q as u32)) && x == ch;
                    ensure!(set.contains(&(c as u32)) == expected, "queue {q} overflow index is stale for class {c}");
                }
            }
        }
        let listed: usize = self.ix.heads.iter().flatten().map(BTreeSet::len).sum();
        let busy = self.ix.classes.iter().filter(|c| !c.backlog.is_empty()).count();
        ensure!(listed == busy, "{listed} class heads listed for {busy} classes with waiting tasks");
        for (q, by_channel) in self.ix.ready.iter().enumerate() {
            for a in by_channel.iter().flatten() {
                ensure!(
                    self.agents[a as usize].as_ref().is_some_and(|x| x.priority_for(q as u32).is_some()),
                    "queue {q} ready set holds a non-member"
                );
            }
        }
        Ok(())
    }

    /// No waiting task may have an agent free to take it, except in
    /// external-pick queues, where the caller decides.
    fn check_work_conserving(&self) -> Result<()> {
        for (t, task) in self.tasks.iter().enumerate() {
            let Some(task) = task else { continue };
            if task.phase != Phase::Waiting {
                continue;
            }
            if task.reservation.is_none() && self.queues[task.queue as usize].config.strategy == Strategy::External {
                continue;
            }
            let free = self.candidates(t as TaskIx);
            ensure!(
                free.is_empty(),
                "task {:?} waits while agent {:?} is free to take it",
                task.id,
                self.agent(free[0]).id
            );
        }
        Ok(())
    }
}
