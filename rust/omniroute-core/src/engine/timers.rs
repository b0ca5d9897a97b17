//! Timers: relaxation steps, offer timeouts, reservations, wrap-up and
//! inactivity, fired in the order they fall due.

use super::state::{AgentIx, Phase, TaskIx, TimerKind};
use super::Engine;
use crate::model::{AgentStatus, Output};

impl Engine {
    /// Fire every timer due at or before `now`, each at its own time.
    pub(crate) fn fire_timers(&mut self, now: f64) {
        while let Some(std::cmp::Reverse(top)) = self.timers.peek().copied() {
            if top.at.0 > now {
                break;
            }
            self.timers.pop();
            if top.at.0 > self.now {
                self.now = top.at.0;
            }
            self.fire(top.kind);
        }
    }

    fn fire(&mut self, kind: TimerKind) {
        // A timer [`Self::timer_is_live`] finds stale does nothing: that is
        // what lets `next_timer_at` drop such timers unfired.
        if !self.timer_is_live(kind) {
            return;
        }
        match kind {
            TimerKind::Step { task, .. } => {
                self.delist(task);
                self.catch_up_steps(task);
                self.place_task(task);
            }
            TimerKind::OfferTimeout { task, offer } => {
                let pending = self.tasks[task as usize].as_ref().and_then(|t| match t.phase {
                    Phase::Offered { offer: o, agent, .. } if o == offer => Some(agent),
                    _ => None,
                });
                if let Some(a) = pending {
                    self.offer_timed_out(task, offer, a);
                }
            }
            TimerKind::ReservationEnd { task, .. } => {
                let due = self.task(task).reservation.as_ref().is_some_and(|r| r.until <= self.now);
                if !due {
                    return;
                }
                let waiting = self.task(task).phase == Phase::Waiting;
                if waiting {
                    self.delist(task);
                }
                self.task_mut(task).reservation = None;
                let ev = Output::ReservationExpired { at: self.now, task: self.task(task).id.clone() };
                self.out.push(ev);
                if waiting {
                    self.place_task(task);
                }
            }
            TimerKind::WrapUpEnd { agent, .. } => self.become_available(agent),
            TimerKind::Inactivity { task, .. } => {
                let t = self.task(task);
                let Phase::Assigned { agent } = t.phase else {
                    return;
                };
                let silent_for = self.channels[t.channel as usize].config.inactive_after;
                // Compared as the timer was computed (`last_activity + s`):
                // `now - last_activity` may round below `s` on large times.
                if !t.inactive && silent_for.is_some_and(|s| t.last_activity + s <= self.now) {
                    self.make_inactive(task, agent);
                }
            }
        }
    }

    /// Whether firing the timer could still change something: its task,
    /// offer or wrap-up is still the one it was set for.
    pub(crate) fn timer_is_live(&self, kind: TimerKind) -> bool {
        match kind {
            TimerKind::Step { task, seq } => self.live(task, seq).is_some_and(|p| *p == Phase::Waiting),
            TimerKind::OfferTimeout { offer, .. } => self.ix.offers.contains_key(&offer),
            TimerKind::ReservationEnd { task, seq } => {
                self.live(task, seq).is_some() && self.task(task).reservation.is_some()
            }
            TimerKind::WrapUpEnd { agent, gen } => self.agents[agent as usize]
                .as_ref()
                .is_some_and(|a| a.status == AgentStatus::WrapUp && a.wrap_gen == gen),
            TimerKind::Inactivity { task, seq, gen } => {
                matches!(self.live(task, seq), Some(Phase::Assigned { .. })) && self.task(task).activity_gen == gen
            }
        }
    }

    /// The phase of the task in this slot, if it is still the task `seq`.
    fn live(&self, t: TaskIx, seq: u64) -> Option<&Phase> {
        self.tasks[t as usize].as_ref().filter(|x| x.seq == seq).map(|x| &x.phase)
    }

    fn offer_timed_out(&mut self, t: TaskIx, offer: u64, a: AgentIx) {
        let ev = Output::OfferTimedOut {
            at: self.now,
            offer,
            task: self.task(t).id.clone(),
            agent: self.agent(a).id.clone(),
        };
        self.out.push(ev);
        let max = self.max_missed_offers;
        let agent = self.agent_mut(a);
        agent.missed += 1;
        let silent = max > 0 && agent.missed >= max && agent.status == AgentStatus::Available;
        if silent {
            agent.status = AgentStatus::NotResponding;
            self.emit_status(a);
            self.refresh_ready(a);
        }
        self.withdraw_offer(t, a);
        if silent {
            self.rescind_offers_of(a, "agent_not_responding");
        }
    }

    /// How many relaxation steps are due for a task at the engine's time.
    pub(crate) fn due_step(&self, t: TaskIx) -> u32 {
        let task = self.task(t);
        // The same sum as the step's timer (`queued_at + after`): comparing
        // `now - queued_at` instead may round below `after` on large times,
        // and the timer would then be set again for the same instant forever.
        let steps = &self.queues[task.queue as usize].config.steps;
        steps.iter().take_while(|s| task.queued_at + s.after_seconds <= self.now).count() as u32
    }

    /// Bring a task that is out of the backlog to the step due now, report
    /// each step reached, and set the timer for the next one.
    pub(crate) fn catch_up_steps(&mut self, t: TaskIx) {
        let due = self.due_step(t);
        let from = self.task(t).step;
        if due != from {
            self.task_mut(t).step = due;
            let c = self.refresh_class(t);
            if due > from {
                let task = self.task(t);
                let ev = Output::StepReached {
                    at: self.now,
                    task: task.id.clone(),
                    queue: self.queue_name(task.queue),
                    step: due,
                    requirement: self.ix.classes[c as usize].text.clone(),
                };
                self.out.push(ev);
            }
        }
        self.schedule_step(t);
    }

    fn schedule_step(&mut self, t: TaskIx) {
        let task = self.task(t);
        let next = self.queues[task.queue as usize].config.steps.get(task.step as usize).map(|s| s.after_seconds);
        if let Some(after) = next {
            let (at, seq) = (task.queued_at + after, task.seq);
            self.schedule(at, TimerKind::Step { task: t, seq });
        }
    }

    /// Timers of a task that just entered a queue.
    pub(crate) fn schedule_task_timers(&mut self, t: TaskIx) {
        self.schedule_step(t);
        let task = self.task(t);
        if let Some(r) = &task.reservation {
            if r.until.is_finite() {
                let (at, seq) = (r.until, task.seq);
                self.schedule(at, TimerKind::ReservationEnd { task: t, seq });
            }
        }
    }

    pub(crate) fn schedule_inactivity(&mut self, t: TaskIx) {
        let task = self.task(t);
        if let Some(s) = self.channels[task.channel as usize].config.inactive_after {
            let (at, seq, gen) = (task.last_activity + s, task.seq, task.activity_gen);
            self.schedule(at, TimerKind::Inactivity { task: t, seq, gen });
        }
    }

    /// After a queue's steps changed: every waiting task moves to the step
    /// its wait now calls for.
    pub(crate) fn resync_steps(&mut self) {
        for t in 0..self.tasks.len() as TaskIx {
            if self.tasks[t as usize].as_ref().is_some_and(|x| x.phase == Phase::Waiting) {
                self.delist(t);
                self.catch_up_steps(t);
                self.enlist(t);
            }
        }
    }
}
