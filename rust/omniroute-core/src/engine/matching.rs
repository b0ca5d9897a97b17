//! Matching in both directions: a task finds the best free agent; an agent
//! with room finds the best waiting task across every queue it serves.

use super::index::{Class, WaitKey, NO_CLASS};
use super::state::{AgentIx, Phase, QueueIx, TaskIx, TaskRec, Time, TimerKind};
use super::Engine;
use crate::model::{Candidate, OfferReason, Output, ScorePart, Strategy};
use std::borrow::Cow;

/// What made the engine look for a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trigger {
    TaskArrived,
    AgentFreed,
    Picked,
}

impl Trigger {
    fn name(self) -> &'static str {
        match self {
            Trigger::TaskArrived => "task_arrived",
            Trigger::AgentFreed => "agent_freed",
            Trigger::Picked => "picked",
        }
    }
}

impl Engine {
    /// Whether agent `a` may take waiting task `t` right now (everything but
    /// the phase of the task).
    pub(crate) fn can_take(&self, a: AgentIx, t: TaskIx) -> bool {
        self.agent(a).status == crate::model::AgentStatus::Available && self.could_take(a, t)
    }

    /// Whether agent `a` could take task `t` if it were available: skills,
    /// queues, reservations, exclusions and capacity.
    pub(crate) fn could_take(&self, a: AgentIx, t: TaskIx) -> bool {
        let agent = self.agent(a);
        let task = self.task(t);
        if task.excludes(a) || self.fits(agent, task.channel).is_err() {
            return false;
        }
        let class = &self.ix.classes[self.ix.task_class[t as usize] as usize];
        match &task.reservation {
            Some(r) if r.agents.contains(&a) => r.named || class.cond.holds(&agent.levels),
            Some(_) => false,
            None => class.serving.iter().any(|&q| agent.priority_for(q).is_some()) && class.cond.holds(&agent.levels),
        }
    }

    /// Whether a ready agent of one of the class's queues may take the task,
    /// which has no reservation: not excluded, with room on its channel, and
    /// meeting the class's condition. [`Engine::candidates`] and
    /// [`Engine::best_ready`] both ask this, so they agree on who is eligible.
    #[inline]
    pub(crate) fn ready_ok(&self, task: &TaskRec, class: &Class, a: AgentIx) -> bool {
        let agent = self.agent(a);
        !task.excludes(a) && self.fits(agent, task.channel).is_ok() && class.cond.holds(&agent.levels)
    }

    /// The agents who may take the task now, by index.
    pub(crate) fn candidates(&self, t: TaskIx) -> Vec<AgentIx> {
        let task = self.task(t);
        if let Some(r) = &task.reservation {
            r.agents.iter().copied().filter(|&a| self.can_take(a, t)).collect()
        } else {
            let class = &self.ix.classes[self.ix.task_class[t as usize] as usize];
            let agent_ok = |a: AgentIx| self.ready_ok(task, class, a);
            let ready = |q: QueueIx| &self.ix.ready[q as usize][task.channel as usize];
            let mut v: Vec<AgentIx> = Vec::with_capacity(class.serving.iter().map(|&q| ready(q).len()).sum());
            for &q in &class.serving {
                v.extend(ready(q).iter().filter(|&a| agent_ok(a)));
            }
            if class.serving.len() > 1 {
                v.sort_unstable();
                v.dedup();
            }
            v
        }
    }

    /// Try to offer a waiting task (in the backlog) to the best free agent.
    pub(crate) fn match_task(&mut self, t: TaskIx) {
        self.try_match(t, true);
    }

    /// A waiting task that is not in the backlog yet (it just arrived, or an
    /// agent let it go): offered at once if an agent may take it, else
    /// enlisted where agents will find it. The same as enlisting it and then
    /// matching it, without putting in the backlog a task that leaves it at once.
    pub(crate) fn place_task(&mut self, t: TaskIx) {
        if !self.try_match(t, false) {
            self.enlist(t);
        }
    }

    /// Offer a waiting task to the best free agent; whether it was offered.
    /// `listed`: whether the task is in the backlog (to be taken out of it).
    fn try_match(&mut self, t: TaskIx, listed: bool) -> bool {
        if self.tasks[t as usize].as_ref().is_none_or(|task| task.phase != Phase::Waiting) {
            return false;
        }
        let q = self.task(t).queue;
        let class = self.ix.task_class[t as usize];
        let reserved = self.task(t).reservation.is_some();
        let strategy = &self.queues[q as usize].config.strategy;
        let chosen = if !reserved
            && self.ix.classes[class as usize].serving.len() == 1
            && !matches!(strategy, Strategy::External | Strategy::WeightedRandom { .. })
        {
            // One queue's ready agents, one deterministic strategy: the best
            // of them in one pass, in the order `candidates` lists them.
            self.best_ready(strategy, t, class)
        } else {
            let candidates = self.candidates(t);
            if candidates.is_empty() {
                return false;
            }
            let strategy = strategy.clone();
            if strategy == Strategy::External && !reserved {
                self.request_pick(t, &candidates);
                return false;
            }
            self.choose(&strategy, &candidates, t, class)
        };
        let Some(a) = chosen else {
            return false;
        };
        let strategy = &self.queues[q as usize].config.strategy;
        let (score, parts) = self.score(strategy, a, t, class);
        let (name, round_robin) = (strategy.name(), matches!(strategy, Strategy::RoundRobin));
        self.offer(t, a, Trigger::TaskArrived, name, score, parts, listed);
        if round_robin {
            self.queues[q as usize].rr_last = Some(a);
        }
        true
    }

    fn request_pick(&mut self, t: TaskIx, candidates: &[AgentIx]) {
        let class = self.ix.task_class[t as usize];
        let list = candidates
            .iter()
            .map(|&a| Candidate { agent: self.agent(a).id.clone(), features: self.features(a, t, class) })
            .collect();
        let task = self.task(t);
        let ev = Output::PickRequested {
            at: self.now,
            task: task.id.clone(),
            queue: self.queue_name(task.queue),
            candidates: list,
        };
        self.out.push(ev);
    }

    /// The best waiting task for an agent: its reservations first, then by
    /// the agent's priority for the queue, the effective priority, the oldest.
    /// Tasks of external-pick queues are returned separately.
    /// `room` is the set of channels the agent has room for (one bit each).
    fn best_task_for(&mut self, a: AgentIx, room: u64) -> (Option<(TaskIx, bool)>, Option<TaskIx>) {
        let mark = self.next_mark();
        let agent = self.agents[a as usize].as_ref().expect("live agent index");
        for &(_, _, t) in &self.ix.reserved[a as usize] {
            if self.could_take(a, t) {
                return (Some((t, true)), None);
            }
        }
        let mut best: Option<Pick> = None;
        let mut best_external: Option<Pick> = None;
        for &(q, tier) in &agent.queues {
            if best.is_some_and(|b| tier < b.0) {
                break;
            }
            let external = matches!(self.queues[q as usize].config.strategy, Strategy::External);
            for ch in (0..self.channels.len()).filter(|&ch| room & (1 << ch) != 0) {
                // The queue's own classes, best head first: stop at the first
                // head that cannot beat what this list already gave.
                let mut local: Option<WaitKey> = None;
                for &(head, c) in &self.ix.heads[q as usize][ch] {
                    if local.is_some_and(|l| head >= l) {
                        break;
                    }
                    // A class seen at a higher tier is not reconsidered at a lower one.
                    let seen = &mut self.ix.class_mark[c as usize];
                    if *seen == mark {
                        continue;
                    }
                    *seen = mark;
                    if let Some(k) = self.first_takeable(c, a, &agent.levels, head) {
                        if local.is_none_or(|l| k < l) {
                            local = Some(k);
                        }
                    }
                }
                if let Some(k) = local {
                    let slot = if external { &mut best_external } else { &mut best };
                    self.consider(slot, tier, k);
                }
                // Other queues' classes that overflowed to this queue.
                for &c in &self.ix.overflow[q as usize][ch] {
                    let seen = &mut self.ix.class_mark[c as usize];
                    if *seen == mark {
                        continue;
                    }
                    *seen = mark;
                    let class = &self.ix.classes[c as usize];
                    let Some(&head) = class.backlog.first() else { continue };
                    let Some(k) = self.first_takeable(c, a, &agent.levels, head) else { continue };
                    let own = class.key.queue;
                    let slot = if matches!(self.queues[own as usize].config.strategy, Strategy::External) {
                        &mut best_external
                    } else {
                        &mut best
                    };
                    self.consider(slot, tier, k);
                }
            }
        }
        (best.map(|b| (b.4, false)), best_external.map(|b| b.4))
    }

    /// The first task of class `c` (whose first task is `head`) that agent
    /// `a` with these skill levels may take: none if the class's requirement
    /// does not hold, else the first one that does not exclude the agent.
    fn first_takeable(&self, c: u32, a: AgentIx, levels: &[u8], head: WaitKey) -> Option<WaitKey> {
        let class = &self.ix.classes[c as usize];
        if !class.cond.holds(levels) {
            return None;
        }
        if !self.task(head.task).excludes(a) {
            return Some(head);
        }
        class.backlog.iter().find(|k| !self.task(k.task).excludes(a)).copied()
    }

    /// Keep `k` (a task reached at `tier`) if it beats `slot`.
    fn consider(&self, slot: &mut Option<Pick>, tier: i32, k: WaitKey) {
        let cand = (tier, self.effective_priority(k.task), k.arrived, k.seq, k.task);
        if slot.is_none_or(|b| better(cand, b)) {
            *slot = Some(cand);
        }
    }

    /// The task the agent would be offered next if it were available now,
    /// by the same indexed search the engine routes with (external-pick
    /// queues aside). A supervisor's "what would Ann get next?"; tests hold
    /// it to [`Engine::best_task_by_scan`].
    pub fn next_task_for(&mut self, agent: &str) -> crate::error::Result<Option<String>> {
        let a = self.agent_ix(agent)?;
        let room = self.room_for(self.agent(a));
        Ok(self.best_task_for(a, room).0.map(|(t, _)| self.task(t).id.to_string()))
    }

    /// Offer work to an agent while it has room and there is work it may
    /// take; if room remains and an external-pick task could use it, ask for
    /// a pick.
    pub(crate) fn match_agent(&mut self, a: AgentIx) {
        while self.ix.agent_ready.get(a as usize).copied().unwrap_or(0) != 0 {
            let (best, external) = self.best_task_for(a, self.ix.agent_ready[a as usize]);
            let Some((t, reserved)) = best else {
                if let Some(t) = external {
                    let candidates = self.candidates(t);
                    self.request_pick(t, &candidates);
                }
                break;
            };
            let task = self.task(t);
            let tier = self.agent(a).priority_for(task.queue).unwrap_or(0);
            let eff = self.effective_priority(t);
            let parts = vec![
                ScorePart { feature: "queue_priority".into(), value: f64::from(tier), weight: 0.0 },
                ScorePart { feature: "effective_priority".into(), value: eff, weight: 1.0 },
                ScorePart { feature: "wait_seconds".into(), value: self.now - task.arrived_at, weight: 0.0 },
            ];
            let strategy = if reserved { "reserved" } else { "agent_queue_order" };
            self.offer(t, a, Trigger::AgentFreed, strategy, eff, parts, true);
        }
    }

    /// Offer a waiting task to an agent; `listed`: whether the task is in the
    /// backlog (to be taken out of it).
    // The reason's parts, and where the task is: one argument each.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn offer(
        &mut self,
        t: TaskIx,
        a: AgentIx,
        trigger: Trigger,
        strategy: &'static str,
        score: f64,
        parts: Vec<ScorePart>,
        listed: bool,
    ) {
        if listed {
            self.delist(t);
        }
        let offer = self.next_offer;
        self.next_offer += 1;
        let (queue, channel, step) = {
            let task = self.task(t);
            (task.queue, task.channel, task.step)
        };
        let expires_at = self.now + self.queues[queue as usize].config.offer_timeout;
        let reserved = self.task(t).reservation.as_ref().is_some_and(|r| r.agents.contains(&a));
        self.task_mut(t).phase = Phase::Offered { offer, agent: a, expires_at };
        self.hold(a, t);
        self.ix.offers.insert(offer, t);
        self.schedule(expires_at, TimerKind::OfferTimeout { task: t, offer });
        self.counters.offers += 1;
        let class = self.ix.task_class[t as usize];
        let requirement = if class == NO_CLASS { "".into() } else { self.ix.classes[class as usize].text.clone() };
        let ev = Output::OfferMade {
            at: self.now,
            offer,
            task: self.task(t).id.clone(),
            agent: self.agent(a).id.clone(),
            queue: self.queue_name(queue),
            channel: self.channel_name(channel),
            expires_at,
            reason: Box::new(OfferReason {
                trigger: Cow::Borrowed(trigger.name()),
                strategy: Cow::Borrowed(strategy),
                score,
                parts,
                step,
                requirement,
                reserved,
            }),
        };
        self.out.push(ev);
        self.emit_load(a);
        self.refresh_ready(a);
    }

    /// Count a task against the agent's capacity.
    pub(crate) fn hold(&mut self, a: AgentIx, t: TaskIx) {
        self.agent_mut(a).tasks.push(t);
        self.activate(a, self.task(t).channel);
    }

    /// Take a task off the agent's capacity.
    pub(crate) fn release(&mut self, a: AgentIx, t: TaskIx) {
        self.agent_mut(a).tasks.retain(|&x| x != t);
        let task = self.task(t);
        if !task.inactive {
            self.deactivate(a, task.channel);
        }
    }

    /// Count one active task of channel `c` against the agent's capacity.
    pub(crate) fn activate(&mut self, a: AgentIx, c: u32) {
        let ch = &self.channels[c as usize].config;
        let agent = self.agents[a as usize].as_mut().expect("live agent index");
        if ch.interruptible {
            agent.load_interruptible += ch.cost;
        } else {
            agent.load_firm += ch.cost;
        }
        let slot = c as usize;
        if agent.per_channel.len() <= slot {
            agent.per_channel.resize(slot + 1, 0);
        }
        agent.per_channel[slot] += 1;
    }

    /// Take one active task of channel `c` off the agent's capacity.
    pub(crate) fn deactivate(&mut self, a: AgentIx, c: u32) {
        let ch = &self.channels[c as usize].config;
        let agent = self.agents[a as usize].as_mut().expect("live agent index");
        if ch.interruptible {
            agent.load_interruptible -= ch.cost;
        } else {
            agent.load_firm -= ch.cost;
        }
        agent.per_channel[c as usize] -= 1;
    }

    /// After an agent's capacity was freed: reactivate its own waiting
    /// conversations first, then look for new work.
    pub(crate) fn after_release(&mut self, a: AgentIx) {
        self.try_reactivate(a);
        self.emit_load(a);
        self.refresh_ready(a);
        self.match_agent(a);
    }

    /// Match every waiting task, highest effective priority and oldest first
    /// (after a change that may make many tasks eligible).
    pub(crate) fn rematch_all(&mut self) {
        let mut waiting: Vec<(f64, Time, u64, TaskIx)> = Vec::new();
        for (t, task) in self.tasks.iter().enumerate() {
            if let Some(task) = task {
                if task.phase == Phase::Waiting {
                    let eff = self.effective_priority(t as TaskIx);
                    waiting.push((-eff, Time(task.arrived_at), task.seq, t as TaskIx));
                }
            }
        }
        waiting.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
        for (_, _, _, t) in waiting {
            if !self.anyone_ready() {
                break;
            }
            self.match_task(t);
        }
    }
}

/// A candidate task for an agent: (tier, effective priority, arrived, seq, task).
type Pick = (i32, f64, Time, u64, TaskIx);

/// Higher tier, then higher effective priority, then older, then earlier.
fn better(x: Pick, y: Pick) -> bool {
    x.0.cmp(&y.0).then(x.1.total_cmp(&y.1)).then(y.2.cmp(&x.2)).then(y.3.cmp(&x.3)).is_gt()
}
