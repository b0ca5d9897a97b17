//! Input events: each handler checks everything first, then changes state,
//! so a refused event changes nothing.

use super::state::{AgentIx, AgentRec, ChannelRec, Phase, QueueIx, QueueRec, Reservation, TaskIx, TaskRec, TimerKind};
use super::{check_time, Engine};
use crate::engine::strategy::FEATURES;
use crate::error::{Error, Result};
use crate::model::{
    AgentConfig, AgentStatus, ChannelConfig, Condition, Input, Name, NewTask, Output, QueueConfig, RequestedState,
    StepAction, Strategy,
};

/// Limits that keep a requirement cheap to evaluate and safe to recurse over.
const MAX_CONDITION_DEPTH: usize = 16;
const MAX_CONDITION_NODES: usize = 256;
/// Agents' room is kept as one bit per channel.
const MAX_CHANNELS: usize = 64;

impl Engine {
    pub(crate) fn apply(&mut self, input: &Input) -> Result<()> {
        match input {
            Input::AddTask { task } => self.add_task(task),
            Input::Accept { offer } => self.accept(*offer),
            Input::Reject { offer } => self.reject(*offer),
            Input::Cancel { task } => self.cancel(task),
            Input::Complete { task } => self.complete(task),
            Input::EndWrapUp { agent } => self.end_wrap_up(agent),
            Input::Transfer { task, to_queue, to_agent } => {
                self.transfer(task, to_queue.as_deref(), to_agent.as_deref())
            }
            Input::SetAgentState { agent, state } => self.set_agent_state(agent, state),
            Input::CustomerActivity { task } => self.customer_activity(task),
            Input::Pick { task, agent } => self.pick(task, agent),
            Input::SetPriority { task, priority } => self.set_priority(task, *priority),
            Input::UpsertAgent { agent } => self.upsert_agent(agent),
            Input::RemoveAgent { agent } => self.remove_agent(agent),
            Input::UpsertQueue { queue } => self.upsert_queue(queue),
            Input::UpsertChannel { channel } => self.upsert_channel(channel),
        }
    }

    // ----- tasks -----

    fn add_task(&mut self, nt: &NewTask) -> Result<()> {
        check_name("task.id", &nt.id)?;
        if self.ix.task_by_id.contains_key(nt.id.as_str()) {
            return Err(Error::DuplicateId { kind: "task", id: nt.id.clone() });
        }
        let channel = self.ix.channels.get(&nt.channel).ok_or_else(|| self.unknown_channel(&nt.channel))?;
        let queue = self.ix.queues.get(&nt.queue).ok_or_else(|| self.unknown_queue(&nt.queue))?;
        if let Some(c) = &nt.requires {
            check_condition("task.requires", c)?;
        }
        let mut preferred = self.agent_list("task.preferred_agents", &nt.preferred_agents)?;
        let mut excluded = self.agent_list("task.excluded_agents", &nt.excluded_agents)?;
        excluded.sort_unstable();
        excluded.dedup();
        // An agent named twice is one preference; an excluded one is none.
        preferred.sort_unstable();
        preferred.dedup();
        preferred.retain(|a| excluded.binary_search(a).is_err());
        let until = match (preferred.is_empty(), nt.preferred_until) {
            (true, _) => None,
            (false, None) => {
                return Err(Error::input(
                    "task.preferred_until",
                    "required when preferred_agents is given (seconds, absolute time)",
                ))
            }
            (false, Some(u)) => {
                check_time("task.preferred_until", u)?;
                Some(u)
            }
        };
        let arrived_at = nt.enqueued_at.unwrap_or(self.now);
        check_time("task.enqueued_at", arrived_at)?;
        if arrived_at > self.now {
            return Err(Error::input("task.enqueued_at", format!("{arrived_at} is after now ({})", self.now)));
        }
        // Checked: apply.
        let requires = self.intern_condition(nt.requires.as_ref());
        let reservation = until.filter(|u| *u > self.now && !preferred.is_empty()).map(|u| Reservation {
            agents: preferred,
            until: u,
            named: false,
        });
        let seq = self.next_seq;
        self.next_seq += 1;
        let id: Name = nt.id.as_str().into();
        let rec = TaskRec {
            id: id.clone(),
            channel,
            queue,
            priority: nt.priority,
            requires,
            reservation,
            excluded,
            attributes: nt.attributes.clone(),
            arrived_at,
            queued_at: arrived_at,
            step: 0,
            phase: Phase::Waiting,
            seq,
            inactive: false,
            reactivation_pending: false,
            last_activity: self.now,
            activity_gen: 0,
            declined: Vec::new(),
        };
        let t = if let Some(t) = self.free_tasks.pop() {
            self.tasks[t as usize] = Some(rec);
            t
        } else {
            self.tasks.push(Some(rec));
            (self.tasks.len() - 1) as TaskIx
        };
        self.ix.task_by_id.insert(id.clone(), t);
        self.counters.arrivals += 1;
        self.task_mut(t).step = self.due_step(t);
        self.refresh_class(t);
        self.schedule_task_timers(t);
        let ev = Output::TaskQueued {
            at: self.now,
            task: id,
            queue: self.queue_name(queue),
            channel: self.channel_name(channel),
            priority: nt.priority,
            arrived_at,
        };
        self.out.push(ev);
        self.place_task(t);
        Ok(())
    }

    /// The offer's task, or an error that says whether the offer never
    /// existed or is no longer pending.
    fn pending_offer(&self, offer: u64) -> Result<(TaskIx, AgentIx)> {
        match self.ix.offers.get(&offer) {
            Some(&t) => match self.task(t).phase {
                Phase::Offered { agent, .. } => Ok((t, agent)),
                _ => Err(Error::InvalidTransition(format!("offer {offer} is no longer pending"))),
            },
            None if offer > 0 && offer < self.next_offer => Err(Error::InvalidTransition(format!(
                "offer {offer} is no longer pending: it was accepted, rejected, rescinded or timed out"
            ))),
            None => Err(Error::unknown("offer", offer.to_string())),
        }
    }

    fn accept(&mut self, offer: u64) -> Result<()> {
        let (t, a) = self.pending_offer(offer)?;
        self.ix.offers.remove(&offer);
        let now = self.now;
        let task = self.task_mut(t);
        task.phase = Phase::Assigned { agent: a };
        task.reservation = None;
        task.last_activity = now;
        let (queue, channel, wait, id) = (task.queue, task.channel, now - task.arrived_at, task.id.clone());
        let agent = self.agent_mut(a);
        agent.missed = 0;
        agent.handled += 1;
        let agent_id = agent.id.clone();
        self.out.push(Output::TaskAssigned {
            at: now,
            task: id,
            agent: agent_id,
            queue: self.queue_name(queue),
            channel: self.channel_name(channel),
            wait,
        });
        self.emit_load(a);
        self.schedule_inactivity(t);
        Ok(())
    }

    fn reject(&mut self, offer: u64) -> Result<()> {
        let (t, a) = self.pending_offer(offer)?;
        let ev = Output::OfferRejected {
            at: self.now,
            offer,
            task: self.task(t).id.clone(),
            agent: self.agent(a).id.clone(),
        };
        self.out.push(ev);
        // An answer, even a no, ends a run of missed offers.
        self.agent_mut(a).missed = 0;
        self.withdraw_offer(t, a);
        Ok(())
    }

    /// End a pending offer the agent declined (rejected, or let time out):
    /// the agent is excluded and the task goes back to its original place.
    pub(crate) fn withdraw_offer(&mut self, t: TaskIx, a: AgentIx) {
        if let Phase::Offered { offer, .. } = self.task(t).phase {
            self.ix.offers.remove(&offer);
        }
        self.release(a, t);
        let task = self.task_mut(t);
        task.phase = Phase::Waiting;
        if let Err(p) = task.excluded.binary_search(&a) {
            task.excluded.insert(p, a);
        }
        task.declined.push(a);
        // Once every agent it was reserved for has declined it, the
        // reservation can only keep the customer waiting: end it.
        let excluded = &task.excluded;
        if task.reservation.as_ref().is_some_and(|r| r.agents.iter().all(|x| excluded.binary_search(x).is_ok())) {
            task.reservation = None;
            let ev = Output::ReservationExpired { at: self.now, task: self.task(t).id.clone() };
            self.out.push(ev);
        }
        self.catch_up_steps(t);
        self.place_task(t);
        self.after_release(a);
    }

    fn cancel(&mut self, id: &str) -> Result<()> {
        let t = self.task_ix(id)?;
        let phase = self.task(t).phase.clone();
        match phase {
            Phase::Assigned { .. } => {
                return Err(Error::InvalidTransition(format!(
                    "task {id:?} is assigned: cancel is for waiting or offered tasks; complete it instead"
                )))
            }
            Phase::Waiting => self.delist(t),
            Phase::Offered { offer, agent, .. } => {
                self.rescind(t, offer, agent, "cancelled");
            }
        }
        let task = self.task(t);
        let ev = Output::TaskCancelled {
            at: self.now,
            task: task.id.clone(),
            queue: self.queue_name(task.queue),
            channel: self.channel_name(task.channel),
            wait: self.now - task.arrived_at,
        };
        self.out.push(ev);
        let agent = match phase {
            Phase::Offered { agent, .. } => Some(agent),
            _ => None,
        };
        self.drop_task(t);
        if let Some(a) = agent {
            self.after_release(a);
        }
        Ok(())
    }

    /// Withdraw an offer the agent did not answer, without excluding anyone;
    /// the task stays out of the backlog (the caller decides where it goes).
    fn rescind(&mut self, t: TaskIx, offer: u64, a: AgentIx, why: &str) {
        self.ix.offers.remove(&offer);
        self.release(a, t);
        self.task_mut(t).phase = Phase::Waiting;
        let ev = Output::OfferRescinded {
            at: self.now,
            offer,
            task: self.task(t).id.clone(),
            agent: self.agent(a).id.clone(),
            why: why.to_owned(),
        };
        self.out.push(ev);
    }

    fn drop_task(&mut self, t: TaskIx) {
        // Dropped in its slot, not moved out first (a task record is large).
        let task = self.tasks[t as usize].as_ref().expect("live task index");
        self.ix.task_by_id.remove(&task.id);
        self.tasks[t as usize] = None;
        self.ix.task_class[t as usize] = super::index::NO_CLASS;
        self.free_tasks.push(t);
    }

    fn assigned_agent(&self, t: TaskIx, what: &str) -> Result<AgentIx> {
        match self.task(t).phase {
            Phase::Assigned { agent } => Ok(agent),
            _ => Err(Error::InvalidTransition(format!(
                "task {:?} is not assigned: only an assigned task can be {what}",
                self.task(t).id
            ))),
        }
    }

    fn complete(&mut self, id: &str) -> Result<()> {
        let t = self.task_ix(id)?;
        let a = self.assigned_agent(t, "completed")?;
        self.release(a, t);
        let now = self.now;
        let task = self.task(t);
        let (queue, channel) = (task.queue, task.channel);
        let ev = Output::TaskCompleted {
            at: now,
            task: task.id.clone(),
            agent: self.agent(a).id.clone(),
            queue: self.queue_name(queue),
            channel: self.channel_name(channel),
        };
        self.out.push(ev);
        self.drop_task(t);
        let agent = self.agent_mut(a);
        agent.idle_since = now;
        let slot = channel as usize;
        if agent.channel_idle_since.len() <= slot {
            // NaN: never served that channel (idle time falls back to the agent's).
            agent.channel_idle_since.resize(slot + 1, f64::NAN);
        }
        agent.channel_idle_since[slot] = now;
        if let Some(wrap) = self.queues[queue as usize].config.wrap_up {
            if self.agent(a).status == AgentStatus::Available && wrap > 0.0 {
                let agent = self.agent_mut(a);
                agent.status = AgentStatus::WrapUp;
                agent.wrap_gen += 1;
                let gen = agent.wrap_gen;
                self.schedule(now + wrap, TimerKind::WrapUpEnd { agent: a, gen });
                self.emit_status(a);
            }
        }
        self.after_release(a);
        Ok(())
    }

    fn end_wrap_up(&mut self, id: &str) -> Result<()> {
        let a = self.agent_ix(id)?;
        if self.agent(a).status != AgentStatus::WrapUp {
            return Err(Error::InvalidTransition(format!(
                "agent {id:?} is not in wrap-up (it is {:?})",
                self.agent(a).status
            )));
        }
        self.become_available(a);
        Ok(())
    }

    pub(crate) fn become_available(&mut self, a: AgentIx) {
        let now = self.now;
        let agent = self.agent_mut(a);
        agent.status = AgentStatus::Available;
        agent.missed = 0;
        agent.idle_since = now;
        self.emit_status(a);
        self.refresh_ready(a);
        self.match_agent(a);
    }

    fn transfer(&mut self, id: &str, to_queue: Option<&str>, to_agent: Option<&str>) -> Result<()> {
        let t = self.task_ix(id)?;
        // Ok(queue) or Err(agent): where the task goes.
        let target = match (to_queue, to_agent) {
            (Some(queue), None) => Ok(self.ix.queues.get(queue).ok_or_else(|| self.unknown_queue(queue))?),
            (None, Some(agent)) => Err(self.agent_ix(agent)?),
            _ => return Err(Error::input("to_queue", "give exactly one of to_queue and to_agent")),
        };
        let phase = self.task(t).phase.clone();
        if let (Err(a), Phase::Assigned { agent } | Phase::Offered { agent, .. }) = (target, &phase) {
            if a == *agent {
                return Err(Error::InvalidTransition(format!(
                    "task {id:?} is already with agent {:?}",
                    self.agent(a).id
                )));
            }
        }
        // Checked: apply.
        let from_agent = match phase {
            Phase::Waiting => {
                self.delist(t);
                None
            }
            Phase::Offered { offer, agent, .. } => {
                self.rescind(t, offer, agent, "transferred");
                None
            }
            Phase::Assigned { agent } => {
                self.release(agent, t);
                let task = self.task_mut(t);
                task.phase = Phase::Waiting;
                task.inactive = false;
                task.reactivation_pending = false;
                Some(agent)
            }
        };
        let rescinded_from = match phase {
            Phase::Offered { agent, .. } => Some(agent),
            _ => None,
        };
        let now = self.now;
        let from_queue = self.task(t).queue;
        let (to_queue, to_agent) = match target {
            Ok(q) => {
                let task = self.task_mut(t);
                task.queue = q;
                task.queued_at = now;
                task.step = 0;
                task.reservation = None;
                if let Some(a) = from_agent {
                    // The transferring agent is not offered the task back.
                    if let Err(p) = task.excluded.binary_search(&a) {
                        task.excluded.insert(p, a);
                    }
                }
                (Some(self.queue_name(q)), None)
            }
            Err(a) => {
                let task = self.task_mut(t);
                task.reservation = Some(Reservation { agents: vec![a], until: f64::INFINITY, named: true });
                task.excluded.retain(|&x| x != a);
                (None, Some(self.agent(a).id.clone()))
            }
        };
        let task = self.task(t);
        let ev = Output::TaskTransferred {
            at: now,
            task: task.id.clone(),
            from_queue: self.queue_name(from_queue),
            channel: self.channel_name(task.channel),
            from_agent: from_agent.map(|a| self.agent(a).id.clone()),
            to_queue: to_queue.clone(),
            to_agent,
        };
        self.out.push(ev);
        self.task_mut(t).step = self.due_step(t);
        self.refresh_class(t);
        self.schedule_task_timers(t);
        self.enlist(t);
        if to_queue.is_some() {
            let task = self.task(t);
            let ev = Output::TaskQueued {
                at: now,
                task: task.id.clone(),
                queue: self.queue_name(task.queue),
                channel: self.channel_name(task.channel),
                priority: task.priority,
                arrived_at: task.arrived_at,
            };
            self.out.push(ev);
        }
        // The agent who let go of the task has room again: routing the task
        // (or listing candidates for a pick) must see it.
        for a in from_agent.into_iter().chain(rescinded_from) {
            self.refresh_ready(a);
        }
        self.match_task(t);
        for a in from_agent.into_iter().chain(rescinded_from) {
            self.after_release(a);
        }
        Ok(())
    }

    fn set_agent_state(&mut self, id: &str, state: &RequestedState) -> Result<()> {
        let a = self.agent_ix(id)?;
        let status = match state {
            RequestedState::Offline {} => AgentStatus::Offline,
            RequestedState::Available {} => AgentStatus::Available,
            RequestedState::Away { reason } => {
                check_name("state.reason", reason)?;
                AgentStatus::Away { reason: reason.clone() }
            }
        };
        if self.agent(a).status == status {
            return Ok(());
        }
        if status == AgentStatus::Available {
            self.become_available(a);
            return Ok(());
        }
        self.agent_mut(a).status = status;
        self.emit_status(a);
        self.refresh_ready(a);
        self.rescind_offers_of(a, "agent_unavailable");
        Ok(())
    }

    /// Withdraw every pending offer of an agent who can no longer answer,
    /// and route those tasks again.
    pub(crate) fn rescind_offers_of(&mut self, a: AgentIx, why: &str) {
        let pending: Vec<(TaskIx, u64)> = self
            .agent(a)
            .tasks
            .iter()
            .filter_map(|&t| match self.task(t).phase {
                Phase::Offered { offer, .. } => Some((t, offer)),
                _ => None,
            })
            .collect();
        for &(t, offer) in &pending {
            self.rescind(t, offer, a, why);
            self.catch_up_steps(t);
            self.enlist(t);
        }
        if !pending.is_empty() {
            self.emit_load(a);
        }
        for (t, _) in pending {
            self.match_task(t);
        }
    }

    fn customer_activity(&mut self, id: &str) -> Result<()> {
        let t = self.task_ix(id)?;
        let a = self.assigned_agent(t, "active again")?;
        let now = self.now;
        let task = self.task_mut(t);
        task.last_activity = now;
        task.activity_gen += 1;
        if task.inactive {
            // Reactivation sets the next inactivity timer, now or when
            // there is room.
            task.reactivation_pending = true;
            self.try_reactivate(a);
            self.refresh_ready(a);
        } else {
            self.schedule_inactivity(t);
        }
        Ok(())
    }

    /// Give capacity back to the agent's conversations that became active
    /// again, oldest first, as far as the capacity allows.
    pub(crate) fn try_reactivate(&mut self, a: AgentIx) {
        let pending: Vec<TaskIx> =
            self.agent(a).tasks.iter().copied().filter(|&t| self.task(t).reactivation_pending).collect();
        for t in pending {
            let c = self.task(t).channel;
            if self.fits(self.agent(a), c).is_err() {
                continue;
            }
            let now = self.now;
            let task = self.task_mut(t);
            task.inactive = false;
            task.reactivation_pending = false;
            // Silence counts from the moment the agent has the conversation
            // back; it may have waited for room longer than `inactive_after`.
            task.last_activity = now;
            task.activity_gen += 1;
            let id = task.id.clone();
            self.activate(a, c);
            let ev = Output::TaskReactivated { at: self.now, task: id, agent: self.agent(a).id.clone() };
            self.out.push(ev);
            self.schedule_inactivity(t);
            self.emit_load(a);
        }
    }

    /// Release an assigned task's capacity while its customer is silent.
    pub(crate) fn make_inactive(&mut self, t: TaskIx, a: AgentIx) {
        self.task_mut(t).inactive = true;
        self.deactivate(a, self.task(t).channel);
        let ev = Output::TaskInactive { at: self.now, task: self.task(t).id.clone(), agent: self.agent(a).id.clone() };
        self.out.push(ev);
        self.after_release(a);
    }

    fn pick(&mut self, task: &str, agent: &str) -> Result<()> {
        let t = self.task_ix(task)?;
        let a = self.agent_ix(agent)?;
        if self.task(t).phase != Phase::Waiting {
            return Err(Error::InvalidTransition(format!(
                "task {task:?} is not waiting: only a waiting task can be picked"
            )));
        }
        if !self.can_take(a, t) {
            let why = self.verdict(a, t);
            return Err(Error::InvalidTransition(format!("agent {agent:?} cannot take task {task:?}: {why:?}")));
        }
        let class = self.ix.task_class[t as usize];
        let q = self.task(t).queue;
        let strategy = self.queues[q as usize].config.strategy.clone();
        let (score, parts) = self.score(&strategy, a, t, class);
        self.offer(t, a, super::matching::Trigger::Picked, strategy.name(), score, parts, true);
        Ok(())
    }

    fn set_priority(&mut self, id: &str, priority: i32) -> Result<()> {
        let t = self.task_ix(id)?;
        let waiting = self.task(t).phase == Phase::Waiting;
        if waiting {
            self.delist(t);
        }
        self.task_mut(t).priority = priority;
        if waiting {
            self.enlist(t);
        }
        Ok(())
    }

    // ----- configuration -----

    /// The agents named in a task's list, by index. Most tasks name nobody:
    /// that case is answered inline, without a call, an iterator or a result
    /// read back from memory.
    #[inline]
    fn agent_list(&self, field: &str, ids: &[String]) -> Result<Vec<AgentIx>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.named_agents(field, ids)
    }

    fn named_agents(&self, field: &str, ids: &[String]) -> Result<Vec<AgentIx>> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| {
                self.ix
                    .agent_by_id
                    .get(id.as_str())
                    .copied()
                    .ok_or_else(|| Error::input(format!("{field}[{i}]"), format!("unknown agent {id:?}")))
            })
            .collect()
    }

    fn unknown_queue(&self, name: &str) -> Error {
        let mut known: Vec<&str> = self.queues.iter().map(|q| q.config.name.as_str()).collect();
        known.sort_unstable();
        Error::UnknownId { kind: "queue", id: format!("{name}; known queues: {}", known.join(", ")) }
    }

    fn unknown_channel(&self, name: &str) -> Error {
        let known: Vec<&str> = self.channels.iter().map(|c| c.config.name.as_str()).collect();
        Error::UnknownId { kind: "channel", id: format!("{name}; known channels: {}", known.join(", ")) }
    }

    pub(crate) fn upsert_channel(&mut self, cfg: &ChannelConfig) -> Result<()> {
        check_name("name", &cfg.name)?;
        if cfg.cost == 0 {
            return Err(Error::config("cost", "expected a whole number of capacity units ≥ 1"));
        }
        if cfg.max_per_agent == Some(0) {
            return Err(Error::config("max_per_agent", "expected a number ≥ 1, or none for no limit"));
        }
        if let Some(s) = cfg.inactive_after {
            if !(s.is_finite() && s > 0.0) {
                return Err(Error::config("inactive_after", format!("expected a number of seconds > 0, got {s}")));
            }
        }
        if let Some(c) = self.ix.channels.get(&cfg.name) {
            let old = &self.channels[c as usize].config;
            if old.cost != cfg.cost || old.interruptible != cfg.interruptible {
                let held = self.tasks.iter().flatten().filter(|t| t.channel == c && t.phase != Phase::Waiting).count();
                if held > 0 {
                    return Err(Error::InvalidTransition(format!(
                        "channel {:?} has {held} tasks offered or assigned: change its cost or interruptibility when none are held",
                        cfg.name
                    )));
                }
            }
            if let Some(max) = cfg.max_per_agent {
                if let Some(agent) = self.agents.iter().flatten().find(|x| x.channel_count(c) > max) {
                    return Err(Error::InvalidTransition(format!(
                        "agent {:?} holds {} tasks of channel {:?}: lower its maximum to {max} when nobody holds more",
                        agent.id,
                        agent.channel_count(c),
                        cfg.name
                    )));
                }
            }
            self.channels[c as usize].config = cfg.clone();
            for a in 0..self.agents.len() as AgentIx {
                if self.agents[a as usize].is_some() {
                    self.refresh_ready(a);
                }
            }
            self.rematch_all();
        } else {
            if self.channels.len() >= MAX_CHANNELS {
                return Err(Error::config("name", format!("at most {MAX_CHANNELS} channels can be configured")));
            }
            self.ix.channels.add(&cfg.name);
            self.channels.push(ChannelRec { config: cfg.clone() });
            for q in 0..self.queues.len() {
                self.ix.heads[q].push(std::collections::BTreeSet::new());
                self.ix.overflow[q].push(std::collections::BTreeSet::new());
                self.ix.ready[q].push(super::index::AgentSet::default());
            }
            for a in 0..self.agents.len() as AgentIx {
                if self.agents[a as usize].is_some() {
                    self.refresh_ready(a);
                    self.match_agent(a);
                }
            }
        }
        Ok(())
    }

    pub(crate) fn check_queue_name_free(&self, name: &str, i: usize) -> Result<()> {
        check_name("name", name).map_err(|e| super::prefix(e, &format!("queues[{i}]")))?;
        if self.ix.queues.contains(name) {
            return Err(Error::config(format!("queues[{i}].name"), format!("duplicate queue name {name:?}")));
        }
        Ok(())
    }

    /// Register a queue's name with default settings, so that queues can
    /// name each other in overflow steps before all are configured.
    pub(crate) fn add_queue_shell(&mut self, cfg: &QueueConfig) -> QueueIx {
        let q = self.ix.queues.add(&cfg.name);
        self.queues.push(QueueRec { config: QueueConfig::named(&cfg.name), rr_last: None });
        let nc = self.channels.len();
        self.ix.heads.push(vec![std::collections::BTreeSet::new(); nc]);
        self.ix.overflow.push(vec![std::collections::BTreeSet::new(); nc]);
        self.ix.ready.push(vec![super::index::AgentSet::default(); nc]);
        self.ix.members.push(Vec::new());
        q
    }

    fn validate_queue(&self, cfg: &QueueConfig) -> Result<()> {
        let positive = |field: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::config(field, format!("expected a number > 0, got {v}")))
            }
        };
        let non_negative = |field: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(Error::config(field, format!("expected a number ≥ 0, got {v}")))
            }
        };
        positive("service_level_seconds", cfg.service_level_seconds)?;
        positive("offer_timeout", cfg.offer_timeout)?;
        non_negative("aging_per_second", cfg.aging_per_second)?;
        if let Some(w) = cfg.wrap_up {
            non_negative("wrap_up", w)?;
        }
        match &cfg.strategy {
            Strategy::Score { weights } => {
                if weights.is_empty() {
                    return Err(Error::config(
                        "strategy.weights",
                        format!("expected at least one of {}", FEATURES.join(", ")),
                    ));
                }
                for (f, w) in weights {
                    check_feature(&format!("strategy.weights.{f}"), f)?;
                    if !w.is_finite() {
                        return Err(Error::config(
                            format!("strategy.weights.{f}"),
                            format!("expected a finite weight, got {w}"),
                        ));
                    }
                }
            }
            Strategy::WeightedRandom { feature } => check_feature("strategy.feature", feature)?,
            _ => {}
        }
        let mut last = 0.0;
        for (i, step) in cfg.steps.iter().enumerate() {
            let field = format!("steps[{i}].after_seconds");
            non_negative(&field, step.after_seconds)?;
            if step.after_seconds < last {
                return Err(Error::config(
                    field,
                    format!("steps must be in order: {} comes after {last}", step.after_seconds),
                ));
            }
            last = step.after_seconds;
            match &step.action {
                StepAction::AddQueue { queue } => {
                    let problem = if queue == &cfg.name {
                        "a queue cannot overflow to itself".to_owned()
                    } else if self.ix.queues.contains(queue) {
                        continue;
                    } else {
                        format!("unknown queue {queue:?}")
                    };
                    return Err(Error::config(format!("steps[{i}].action.queue"), problem));
                }
                StepAction::AddCondition { condition } => {
                    check_condition(&format!("steps[{i}].action.condition"), condition).map_err(|e| match e {
                        Error::InvalidInput { field, problem } => Error::InvalidConfig { field, problem },
                        other => other,
                    })?;
                }
                StepAction::DropCondition { skill } | StepAction::LowerLevel { skill, .. } => {
                    check_name(&format!("steps[{i}].action.skill"), skill)
                        .map_err(|_| Error::config(format!("steps[{i}].action.skill"), "expected a skill name"))?;
                }
            }
        }
        Ok(())
    }

    pub(crate) fn upsert_queue(&mut self, cfg: &QueueConfig) -> Result<()> {
        check_name("name", &cfg.name)?;
        self.validate_queue(cfg)?;
        let q = match self.ix.queues.get(&cfg.name) {
            Some(q) => q,
            None => self.add_queue_shell(cfg),
        };
        self.queues[q as usize].config = cfg.clone();
        // Requirements, overflow and ordering of waiting work may all have
        // changed: rebuild the indices and route again.
        self.rebuild();
        self.resync_steps();
        self.rematch_all();
        Ok(())
    }

    pub(crate) fn upsert_agent(&mut self, cfg: &AgentConfig) -> Result<()> {
        check_name("id", &cfg.id)?;
        if cfg.capacity == 0 {
            return Err(Error::config("capacity", "expected a whole number of capacity units ≥ 1"));
        }
        for (s, &l) in &cfg.skills {
            check_name("skills", s).map_err(|_| Error::config("skills", "expected skill names that are not empty"))?;
            if l == 0 {
                return Err(Error::config(format!("skills.{s}"), "expected a level from 1 to 255"));
            }
        }
        let mut queues = Vec::with_capacity(cfg.queues.len());
        for (name, &p) in &cfg.queues {
            let q = self.ix.queues.get(name).ok_or_else(|| Error::config(format!("queues.{name}"), "unknown queue"))?;
            queues.push((q, p));
        }
        queues.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        let existing = self.ix.agent_by_id.get(cfg.id.as_str()).copied();
        if let Some(a) = existing {
            let agent = self.agent(a);
            // Firm and interruptible work must each fit; not their sum,
            // which firm work may interrupt (a call with e-mails open).
            let need = agent.load_firm.max(agent.load_interruptible);
            if cfg.capacity < need {
                return Err(Error::config(
                    "capacity",
                    format!("agent {:?} holds {need} units of work; capacity cannot go below that", cfg.id),
                ));
            }
        }
        // Checked: apply.
        let mut levels = Vec::new();
        for (s, &l) in &cfg.skills {
            let ix = self.intern_skill(s) as usize;
            if levels.len() <= ix {
                levels.resize(ix + 1, 0);
            }
            levels[ix] = l;
        }
        let a = if let Some(a) = existing {
            // Leave the ready sets and member lists of the old queues first.
            self.leave_ready_sets(a);
            let old: Vec<u32> = self.agent(a).queues.iter().map(|(q, _)| *q).collect();
            for q in old {
                self.ix.members[q as usize].retain(|&x| x != a);
            }
            let agent = self.agent_mut(a);
            agent.capacity = cfg.capacity;
            agent.levels = levels;
            agent.queues = queues;
            a
        } else {
            let a = self.agents.len() as AgentIx;
            let id: Name = cfg.id.as_str().into();
            self.agents.push(Some(AgentRec {
                id: id.clone(),
                capacity: cfg.capacity,
                levels,
                queues,
                status: if cfg.available { AgentStatus::Available } else { AgentStatus::Offline },
                wrap_gen: 0,
                load_firm: 0,
                load_interruptible: 0,
                per_channel: Vec::new(),
                tasks: Vec::new(),
                missed: 0,
                idle_since: self.now,
                channel_idle_since: Vec::new(),
                handled: 0,
            }));
            self.ix.agent_by_id.insert(id, a);
            self.ix.agent_ready.push(0);
            self.ix.agent_mark.push(0);
            self.ix.reserved.push(std::collections::BTreeSet::new());
            self.emit_status(a);
            a
        };
        let qs: Vec<u32> = self.agent(a).queues.iter().map(|(q, _)| *q).collect();
        for q in qs {
            let members = &mut self.ix.members[q as usize];
            if let Err(p) = members.binary_search(&a) {
                members.insert(p, a);
            }
        }
        self.refresh_ready(a);
        self.match_agent(a);
        Ok(())
    }

    fn remove_agent(&mut self, id: &str) -> Result<()> {
        let a = self.agent_ix(id)?;
        let held = self.agent(a).tasks.len();
        if held > 0 {
            return Err(Error::InvalidTransition(format!(
                "agent {id:?} holds {held} tasks: complete or transfer them before removing the agent"
            )));
        }
        let reserved: Vec<TaskIx> = self.ix.reserved[a as usize].iter().map(|k| k.2).collect();
        for &t in &reserved {
            self.delist(t);
            let task = self.task_mut(t);
            if let Some(r) = &mut task.reservation {
                r.agents.retain(|&x| x != a);
                if r.agents.is_empty() {
                    task.reservation = None;
                }
            }
            self.enlist(t);
        }
        self.leave_ready_sets(a);
        let qs: Vec<u32> = self.agent(a).queues.iter().map(|(q, _)| *q).collect();
        for q in qs {
            self.ix.members[q as usize].retain(|&x| x != a);
        }
        self.ix.agent_by_id.remove(id);
        let ev = Output::AgentStateChanged { at: self.now, agent: id.into(), status: AgentStatus::Offline };
        self.out.push(ev);
        self.agents[a as usize] = None;
        for t in reserved {
            self.match_task(t);
        }
        Ok(())
    }
}

fn check_name(field: &str, s: &str) -> Result<()> {
    if s.is_empty() {
        Err(Error::input(field, "expected a non-empty string"))
    } else if s.len() > 256 {
        Err(Error::input(field, format!("expected at most 256 bytes, got {}", s.len())))
    } else {
        Ok(())
    }
}

fn check_feature(field: &str, f: &str) -> Result<()> {
    if FEATURES.contains(&f) {
        Ok(())
    } else {
        Err(Error::config(field, format!("unknown feature {f:?}; expected one of {}", FEATURES.join(", "))))
    }
}

/// A requirement must name its skills and stay small enough to evaluate
/// quickly and to recurse over safely.
pub(crate) fn check_condition(field: &str, c: &Condition) -> Result<()> {
    fn walk(c: &Condition, depth: usize, nodes: &mut usize, field: &str) -> Result<()> {
        *nodes += 1;
        if depth > MAX_CONDITION_DEPTH {
            return Err(Error::input(field, format!("nested deeper than {MAX_CONDITION_DEPTH} levels")));
        }
        if *nodes > MAX_CONDITION_NODES {
            return Err(Error::input(field, format!("more than {MAX_CONDITION_NODES} conditions")));
        }
        match c {
            Condition::Skill { skill, .. } => {
                check_name(field, skill).map_err(|_| Error::input(field, "expected a skill name that is not empty"))
            }
            Condition::All { of } | Condition::Any { of } => {
                of.iter().try_for_each(|x| walk(x, depth + 1, nodes, field))
            }
            Condition::Not { condition } => walk(condition, depth + 1, nodes, field),
        }
    }
    walk(c, 0, &mut 0, field)
}
