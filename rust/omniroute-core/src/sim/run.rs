//! One replication: the real routing engine and the real metrics driven in
//! virtual time by simulated customers and agents.

use super::dist::Sampler;
use super::result::{IntervalReport, QueueLength, Replication, Tally};
use super::scenario::{Arrivals, Rate, Scenario};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::feed::record_output;
use crate::metrics::{Aggregator, DimensionKind, SnapshotScope};
use crate::model::{Condition, Input, Name, NewTask, Output, RequestedState};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use rustc_hash::FxHashMap;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};

/// What happens at a moment of virtual time, besides the engine's own timers.
#[derive(Clone, Copy, Debug)]
enum Happening {
    /// The next contact of a Poisson stream.
    Arrival { stream: u32 },
    /// The next recorded contact.
    Replay,
    /// The customer's patience runs out.
    Abandon { task: u32 },
    /// The agent answers an offer.
    Respond { offer: u64, accept: bool },
    /// The agent finishes the task.
    Complete { task: u32 },
    /// A shift or a break starts or ends: the agent goes to `states[state]`.
    AgentState { agent: u32, state: u32 },
    /// A not-responding agent makes itself available again.
    Recover { agent: u32 },
}

struct Event {
    at: f64,
    seq: u64,
    what: Happening,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    /// Reversed, so the max-heap pops the earliest (then the first scheduled).
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.total_cmp(&self.at).then(other.seq.cmp(&self.seq))
    }
}

struct Stream {
    /// The service-level threshold of the stream's queue.
    threshold: f64,
    /// Contacts per second, per rate interval (a constant rate is one
    /// entry over an infinite interval).
    rates: Vec<f64>,
    rate_interval: f64,
    handle: Sampler,
    patience: Option<Sampler>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    Assigned,
    Gone,
}

struct Task {
    arrived: f64,
    handle: f64,
    threshold: f64,
    phase: Phase,
}

struct Behaviour {
    reject: f64,
    no_answer: f64,
    answer: Option<Sampler>,
    recover: f64,
}

/// One replication of a scenario, advanced in steps of virtual time.
pub struct Simulation {
    replication: u32,
    seed: u64,
    engine: Engine,
    metrics: Aggregator,
    now: f64,
    duration: f64,
    warmup: f64,
    end: f64,
    heap: BinaryHeap<Event>,
    seq: u64,
    streams: Vec<Stream>,
    replay: Vec<super::scenario::Replayed>,
    next_replay: usize,
    tasks: Vec<Task>,
    agent_ids: Vec<String>,
    agent_slot: FxHashMap<String, (u32, u32)>,
    /// Agent and group by the address of the engine's shared name of the
    /// agent, as its output events carry it: found without hashing the text.
    /// `agent_names` holds those names, so no other name can take an address.
    agent_at: FxHashMap<usize, (u32, u32)>,
    agent_names: Vec<Name>,
    behaviours: Vec<Behaviour>,
    /// The states shifts and breaks put agents in, so a scheduled change is
    /// a small event on the heap.
    states: Vec<RequestedState>,
    thresholds: FxHashMap<String, f64>,
    arrivals_rng: Pcg64Mcg,
    service_rng: Pcg64Mcg,
    patience_rng: Pcg64Mcg,
    agents_rng: Pcg64Mcg,
    tally: Tally,
    stale: u64,
    /// Contacts arrived and neither answered nor abandoned.
    in_queue: u64,
    queue_since: f64,
    interval: f64,
    queue_area: Vec<f64>,
    queue_max: Vec<u64>,
    /// Offers answered at once (an agent with no answer time): accept or not.
    immediate: Vec<(u64, bool)>,
    queue_names: Vec<String>,
    channel_names: Vec<String>,
    agent_intervals: bool,
    finished: bool,
    /// The engine's outputs, a buffer reused by every call.
    outputs: Vec<Output>,
    /// The text of a task id, a buffer reused by every completion and abandonment.
    id: String,
    /// Each stream's contacts as the engine is told of them: an arrival
    /// writes its id into its stream's input (no text copied per contact).
    adds: Vec<Input>,
}

/// The seed of replication `r`: splitmix64 of the scenario's seed and `r`,
/// so replications are independent and any one can be rerun alone.
#[must_use]
pub fn replication_seed(seed: u64, r: u32) -> u64 {
    let mut z = seed ^ u64::from(r).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The simulator's tasks are named by their index.
fn task_of(id: &str) -> Result<u32> {
    id.parse().map_err(|_| invariant("unknown task", id))
}

/// Writes the id of task `task` (its index in decimal) into `id`, replacing
/// what was there: no allocation, no formatting machinery.
fn write_id(id: &mut String, task: u32) {
    id.clear();
    id.push_str(itoa::Buffer::new().format(task));
}

/// A contact of this queue, channel and priority arriving (its id left to
/// write).
fn add_input(channel: String, queue: String, priority: i32, requires: Option<Condition>) -> Input {
    Input::AddTask {
        task: NewTask {
            id: String::new(),
            channel,
            queue,
            priority,
            requires,
            preferred_agents: Vec::new(),
            preferred_until: None,
            excluded_agents: Vec::new(),
            attributes: BTreeMap::new(),
            enqueued_at: None,
        },
    }
}

impl Arrivals {
    /// The stream's contacts as the engine is told of them (the id left to write).
    fn input(&self) -> Input {
        add_input(self.channel.clone(), self.queue.clone(), self.priority, self.requires.clone())
    }
}

/// The address of a shared name, as a key.
fn address(name: &Name) -> usize {
    std::sync::Arc::as_ptr(name).cast::<u8>() as usize
}

fn invariant(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Invariant(format!("simulation: {what}: {e}"))
}

impl Simulation {
    /// Replication `replication` (from 0) of a validated scenario, at time 0.
    pub fn new(scenario: &Scenario, replication: u32) -> Result<Simulation> {
        scenario.validate()?;
        if replication >= scenario.replications {
            return Err(Error::input(
                "replication",
                format!("{replication} is not below replications ({})", scenario.replications),
            ));
        }
        let seed = replication_seed(scenario.seed, replication);
        let mut config = scenario.engine_config();
        config.seed = seed;
        let engine = Engine::new(&config, 0.0)?;
        let metrics_config = scenario.metrics_config();
        let interval = f64::from(metrics_config.interval_seconds);
        let mut metrics = Aggregator::new(metrics_config).map_err(|e| Error::config("metrics", e.to_string()))?;
        let queue_names: Vec<String> = scenario.queues.iter().map(|q| q.name.clone()).collect();
        let channel_names: Vec<String> = scenario.channels.iter().map(|c| c.name.clone()).collect();
        for q in &queue_names {
            metrics.queue_key(q);
        }
        for c in &channel_names {
            metrics.channel_key(c);
        }
        let thresholds: FxHashMap<String, f64> =
            scenario.queues.iter().map(|q| (q.name.clone(), q.service_level_seconds)).collect();
        let streams = scenario
            .arrivals
            .iter()
            .map(|a| {
                let (rates, rate_interval) = match &a.per_hour {
                    Rate::Constant(r) => (vec![r / 3600.0], f64::INFINITY),
                    Rate::Profile(list) => (list.iter().map(|r| r / 3600.0).collect(), a.rate_interval_seconds),
                };
                Stream {
                    threshold: thresholds.get(&a.queue).copied().unwrap_or(f64::INFINITY),
                    rates,
                    rate_interval,
                    handle: a.handle.sampler(),
                    patience: a.patience.as_ref().map(super::dist::Distribution::sampler),
                }
            })
            .collect();
        let mut sim = Simulation {
            replication,
            seed,
            engine,
            metrics,
            now: 0.0,
            duration: scenario.duration_seconds,
            warmup: scenario.warmup_seconds,
            end: scenario.end(),
            heap: BinaryHeap::new(),
            seq: 0,
            streams,
            replay: scenario.replay.clone(),
            next_replay: 0,
            tasks: Vec::new(),
            agent_ids: Vec::new(),
            agent_slot: FxHashMap::default(),
            agent_at: FxHashMap::default(),
            agent_names: Vec::new(),
            behaviours: Vec::new(),
            states: vec![RequestedState::Available {}, RequestedState::Offline {}],
            thresholds,
            arrivals_rng: Pcg64Mcg::seed_from_u64(seed ^ 1),
            service_rng: Pcg64Mcg::seed_from_u64(seed ^ 2),
            patience_rng: Pcg64Mcg::seed_from_u64(seed ^ 3),
            agents_rng: Pcg64Mcg::seed_from_u64(seed ^ 4),
            tally: Tally::default(),
            stale: 0,
            in_queue: 0,
            queue_since: 0.0,
            interval,
            queue_area: Vec::new(),
            queue_max: Vec::new(),
            immediate: Vec::new(),
            queue_names,
            channel_names,
            agent_intervals: scenario.agent_intervals,
            finished: false,
            outputs: Vec::new(),
            id: String::new(),
            adds: scenario.arrivals.iter().map(Arrivals::input).collect(),
        };
        sim.schedule_agents(scenario);
        let roster = sim.engine.roster();
        sim.learn_names(&roster);
        sim.handle(&roster)?;
        for s in 0..sim.streams.len() as u32 {
            if let Some(at) = sim.next_arrival(s, 0.0) {
                sim.push(at, Happening::Arrival { stream: s });
            }
        }
        if let Some(first) = sim.replay.first() {
            let at = first.at;
            sim.push(at, Happening::Replay);
        }
        Ok(sim)
    }

    fn schedule_agents(&mut self, scenario: &Scenario) {
        // Indices into `states`.
        let (on, off) = (0, 1);
        for (g, group) in scenario.agents.iter().enumerate() {
            self.behaviours.push(Behaviour {
                reject: group.reject_probability,
                no_answer: group.no_answer_probability,
                answer: group.answer.as_ref().map(super::dist::Distribution::sampler),
                recover: group.recover_seconds,
            });
            for n in 1..=group.count {
                let agent = self.agent_ids.len() as u32;
                let id = format!("{}-{n}", group.name);
                self.agent_slot.insert(id.clone(), (agent, g as u32));
                self.agent_ids.push(id);
                if group.shifts.is_empty() {
                    self.push(0.0, Happening::AgentState { agent, state: on });
                }
                for s in &group.shifts {
                    self.push(s.start, Happening::AgentState { agent, state: on });
                    self.push(s.end, Happening::AgentState { agent, state: off });
                }
                for b in &group.breaks {
                    let away = self.state_index(RequestedState::Away { reason: b.reason.clone() });
                    self.push(b.start, Happening::AgentState { agent, state: away });
                    self.push(b.start + b.seconds, Happening::AgentState { agent, state: on });
                }
            }
        }
    }

    /// Remembers the engine's shared name of each agent of the roster.
    fn learn_names(&mut self, roster: &[Output]) {
        for o in roster {
            if let Output::AgentStateChanged { agent, .. } = o {
                if let Some(&slot) = self.agent_slot.get(&**agent) {
                    self.agent_at.insert(address(agent), slot);
                    self.agent_names.push(agent.clone());
                }
            }
        }
    }

    /// The index of `state` in `states`, added if new.
    fn state_index(&mut self, state: RequestedState) -> u32 {
        if let Some(i) = self.states.iter().position(|s| *s == state) {
            return i as u32;
        }
        self.states.push(state);
        (self.states.len() - 1) as u32
    }

    fn push(&mut self, at: f64, what: Happening) {
        self.seq += 1;
        self.heap.push(Event { at, seq: self.seq, what });
    }

    /// The next arrival of stream `s` after `t` (piecewise-constant Poisson:
    /// the gap is drawn at the current rate and drawn again, memoryless, at
    /// each change of rate), or none before the end of arrivals.
    fn next_arrival(&mut self, s: u32, mut t: f64) -> Option<f64> {
        let stream = &self.streams[s as usize];
        loop {
            if t >= self.duration {
                return None;
            }
            // t >= 0: truncation is the floor, without a library call.
            let k = (t / stream.rate_interval) as usize;
            let rate = *stream.rates.get(k)?;
            let segment_end = (k as f64 + 1.0) * stream.rate_interval;
            if rate > 0.0 {
                let gap = -(1.0 - self.arrivals_rng.gen::<f64>()).ln() / rate;
                if t + gap < segment_end {
                    return (t + gap < self.duration).then_some(t + gap);
                }
            }
            t = segment_end;
        }
    }

    /// Virtual time now.
    #[must_use]
    pub fn now(&self) -> f64 {
        self.now
    }

    /// The latest time the run can reach.
    #[must_use]
    pub fn end(&self) -> f64 {
        self.end
    }

    /// Whether the run is over (nothing left to happen, or its end reached).
    #[must_use]
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Contacts that arrived so far.
    #[must_use]
    pub fn arrivals(&self) -> u64 {
        self.tasks.len() as u64
    }

    /// Run until virtual time `until` (or the end); true once the run is over.
    pub fn advance(&mut self, until: f64) -> Result<bool> {
        let until = until.min(self.end);
        while !self.finished {
            let event_at = self.heap.peek().map(|e| e.at);
            let timer_at = self.engine.next_timer_at();
            let next = match (event_at, timer_at) {
                (Some(e), Some(t)) => e.min(t),
                (Some(x), None) | (None, Some(x)) => x,
                (None, None) => {
                    self.finish(self.now);
                    break;
                }
            };
            if timer_at != Some(next) && self.stale_next() {
                // Passed over without moving the clock: a run ends when
                // its last real happening does.
                self.heap.pop();
                continue;
            }
            if next > until {
                if until >= self.end {
                    self.finish(self.end);
                } else {
                    self.move_clock(until);
                }
                break;
            }
            self.move_clock(next);
            if timer_at == Some(next) {
                let outputs = self.engine.tick(next)?;
                self.handle(&outputs)?;
            } else if let Some(event) = self.heap.pop() {
                self.happen(event.what)?;
            }
            self.drain_immediate()?;
        }
        Ok(self.finished)
    }

    /// Whether the next happening can no longer change anything: the
    /// patience of a contact already answered or gone.
    fn stale_next(&self) -> bool {
        match self.heap.peek().map(|e| &e.what) {
            Some(Happening::Abandon { task }) => self.tasks[*task as usize].phase != Phase::Waiting,
            _ => false,
        }
    }

    fn finish(&mut self, at: f64) {
        self.move_clock(at.max(self.now));
        self.finished = true;
    }

    fn move_clock(&mut self, to: f64) {
        if to > self.now {
            self.queue_until(to);
            self.now = to;
        }
    }

    /// Adds the queue length's area from `queue_since` to `to`, interval by interval.
    fn queue_until(&mut self, to: f64) {
        let mut t = self.queue_since;
        while t < to {
            let k = self.queue_slot(t);
            let stop = to.min((k as f64 + 1.0) * self.interval);
            self.queue_area[k] += self.in_queue as f64 * (stop - t);
            self.queue_max[k] = self.queue_max[k].max(self.in_queue);
            if stop <= t {
                break;
            }
            t = stop;
        }
        self.queue_since = to;
    }

    fn queue_change(&mut self, up: bool) {
        self.queue_until(self.now);
        if up {
            self.in_queue += 1;
        } else {
            self.in_queue -= 1;
        }
        let k = self.queue_slot(self.now);
        self.queue_max[k] = self.queue_max[k].max(self.in_queue);
    }

    /// The reporting interval of time `t`, its queue figures allocated.
    fn queue_slot(&mut self, t: f64) -> usize {
        // t >= 0: truncation is the floor, without a library call.
        let k = (t / self.interval) as usize;
        if self.queue_area.len() <= k {
            self.queue_area.resize(k + 1, 0.0);
            self.queue_max.resize(k + 1, 0);
        }
        k
    }

    fn happen(&mut self, what: Happening) -> Result<()> {
        match what {
            Happening::Arrival { stream } => {
                let s = &mut self.streams[stream as usize];
                let handle = s.handle.draw(&mut self.service_rng);
                let patience = s.patience.as_ref().map(|p| p.draw(&mut self.patience_rng));
                let threshold = s.threshold;
                // Taken out while it is applied: moving the list moves no input.
                let mut adds = std::mem::take(&mut self.adds);
                if let Input::AddTask { task } = &mut adds[stream as usize] {
                    write_id(&mut task.id, self.tasks.len() as u32);
                }
                let arrived = self.arrive(&adds[stream as usize], threshold, handle, patience);
                self.adds = adds;
                arrived?;
                if let Some(at) = self.next_arrival(stream, self.now) {
                    self.push(at, Happening::Arrival { stream });
                }
            }
            Happening::Replay => {
                let r = self.replay[self.next_replay].clone();
                self.next_replay += 1;
                let threshold = self.thresholds.get(&r.queue).copied().unwrap_or(f64::INFINITY);
                let mut add = add_input(r.channel, r.queue, r.priority, None);
                if let Input::AddTask { task } = &mut add {
                    write_id(&mut task.id, self.tasks.len() as u32);
                }
                self.arrive(&add, threshold, r.handle_seconds, r.patience_seconds)?;
                if let Some(next) = self.replay.get(self.next_replay) {
                    let at = next.at;
                    if at < self.duration {
                        self.push(at, Happening::Replay);
                    }
                }
            }
            Happening::Abandon { task } => {
                if self.tasks[task as usize].phase == Phase::Waiting {
                    self.apply_to_task(task, |task| Input::Cancel { task })?;
                }
            }
            Happening::Respond { offer, accept } => self.answer(offer, accept)?,
            Happening::Complete { task } => {
                self.tasks[task as usize].phase = Phase::Gone;
                self.apply_to_task(task, |task| Input::Complete { task })?;
            }
            Happening::AgentState { agent, state } => {
                let agent = self.agent_ids[agent as usize].clone();
                let state = self.states[state as usize].clone();
                self.apply(&Input::SetAgentState { agent, state })?;
            }
            Happening::Recover { agent } => {
                let id = &self.agent_ids[agent as usize];
                if self.engine.agent_status(id)? == crate::model::AgentStatus::NotResponding {
                    let agent = id.clone();
                    self.apply(&Input::SetAgentState { agent, state: RequestedState::Available {} })?;
                }
            }
        }
        Ok(())
    }

    /// The next task arrives: `add` adds it to the engine (its id is the
    /// task's index).
    fn arrive(&mut self, add: &Input, threshold: f64, handle: f64, patience: Option<f64>) -> Result<()> {
        let task = self.tasks.len() as u32;
        self.tasks.push(Task { arrived: self.now, handle, threshold, phase: Phase::Waiting });
        if self.now >= self.warmup {
            self.tally.arrivals += 1;
        }
        if let Some(p) = patience {
            self.push(self.now + p, Happening::Abandon { task });
        }
        self.apply(add)
    }

    /// Applies the input `make` builds from task `task`'s id, written into
    /// the reused id buffer.
    fn apply_to_task(&mut self, task: u32, make: fn(String) -> Input) -> Result<()> {
        let mut id = std::mem::take(&mut self.id);
        write_id(&mut id, task);
        let input = make(id);
        let applied = self.apply(&input);
        if let Input::Complete { task: id } | Input::Cancel { task: id } = input {
            self.id = id;
        }
        applied
    }

    fn apply(&mut self, input: &Input) -> Result<()> {
        self.try_apply(input).map_err(|e| invariant("the engine refused", e))?
    }

    /// Applies `input` through the reused output buffer. The outer error is
    /// the engine's refusal (nothing changed), the inner one the handling's.
    fn try_apply(&mut self, input: &Input) -> Result<Result<()>> {
        let mut outputs = std::mem::take(&mut self.outputs);
        let handled = self.engine.apply_one_into(self.now, input, &mut outputs).map(|()| self.handle(&outputs));
        self.outputs = outputs;
        handled
    }

    fn drain_immediate(&mut self) -> Result<()> {
        while let Some((offer, accept)) = self.immediate.pop() {
            self.answer(offer, accept)?;
        }
        Ok(())
    }

    /// An agent accepts or rejects an offer. The offer may be gone by now
    /// (the customer left, the agent went on a break): the engine refuses,
    /// nothing changes, and the answer counts as stale.
    fn answer(&mut self, offer: u64, accept: bool) -> Result<()> {
        let input = if accept { Input::Accept { offer } } else { Input::Reject { offer } };
        match self.try_apply(&input) {
            Ok(handled) => handled,
            Err(Error::InvalidTransition(_) | Error::UnknownId { .. }) => {
                self.stale += 1;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn handle(&mut self, outputs: &[Output]) -> Result<()> {
        for o in outputs {
            record_output(&mut self.metrics, o).map_err(|e| invariant("the metrics refused an event", e))?;
            match o {
                Output::TaskQueued { .. } => self.queue_change(true),
                Output::OfferMade { offer, agent, .. } => self.offered(*offer, agent)?,
                Output::TaskAssigned { task, wait, .. } => {
                    let t = task_of(task)?;
                    self.queue_change(false);
                    let rec = &mut self.tasks[t as usize];
                    rec.phase = Phase::Assigned;
                    let (arrived, threshold, handle) = (rec.arrived, rec.threshold, rec.handle);
                    if arrived >= self.warmup {
                        self.tally.answer(*wait, threshold);
                    }
                    self.push(self.now + handle, Happening::Complete { task: t });
                }
                Output::TaskCancelled { task, wait, .. } => {
                    let t = task_of(task)?;
                    self.queue_change(false);
                    let rec = &mut self.tasks[t as usize];
                    rec.phase = Phase::Gone;
                    if rec.arrived >= self.warmup {
                        self.tally.abandon(*wait);
                    }
                }
                Output::AgentStateChanged { agent, status: crate::model::AgentStatus::NotResponding, .. } => {
                    let (a, g) = self.slot(agent)?;
                    let after = self.behaviours[g as usize].recover;
                    self.push(self.now + after, Happening::Recover { agent: a });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The agent's index and group.
    fn slot(&self, agent: &Name) -> Result<(u32, u32)> {
        if let Some(&slot) = self.agent_at.get(&address(agent)) {
            return Ok(slot);
        }
        self.agent_slot.get(&**agent).copied().ok_or_else(|| invariant("unknown agent", agent))
    }

    /// An agent is offered a task: it accepts, rejects or lets it time out,
    /// after its answer time.
    fn offered(&mut self, offer: u64, agent: &Name) -> Result<()> {
        let (_, g) = self.slot(agent)?;
        let b = &self.behaviours[g as usize];
        let accept = if b.reject > 0.0 || b.no_answer > 0.0 {
            let u: f64 = self.agents_rng.gen();
            if u < b.reject {
                false
            } else if u < b.reject + b.no_answer {
                // The engine's offer timeout takes it from here.
                return Ok(());
            } else {
                true
            }
        } else {
            true
        };
        match &b.answer {
            None => self.immediate.push((offer, accept)),
            Some(delay) => {
                let at = self.now + delay.draw(&mut self.agents_rng);
                self.push(at, Happening::Respond { offer, accept });
            }
        }
        Ok(())
    }

    /// The replication's figures, at the time it reached.
    pub fn result(&mut self) -> Result<Replication> {
        let now = self.now;
        let snapshot =
            self.metrics.snapshot_scoped(now, SnapshotScope::ALL).map_err(|e| invariant("metrics snapshot", e))?;
        let inf = f64::INFINITY;
        let of = |m: &Aggregator, kind, name: &str| {
            m.intervals(kind, name, -inf, inf).map_err(|e| invariant("metrics intervals", e))
        };
        let mut intervals =
            IntervalReport { overall: of(&self.metrics, DimensionKind::Overall, "")?, ..Default::default() };
        for q in &self.queue_names {
            intervals.queues.insert(q.clone(), of(&self.metrics, DimensionKind::Queue, q)?);
        }
        for c in &self.channel_names {
            intervals.channels.insert(c.clone(), of(&self.metrics, DimensionKind::Channel, c)?);
        }
        if self.agent_intervals {
            for a in &self.agent_ids {
                intervals.agents.insert(a.clone(), of(&self.metrics, DimensionKind::Agent, a)?);
            }
        }
        let queue_length = self
            .queue_area
            .iter()
            .zip(&self.queue_max)
            .enumerate()
            .map(|(k, (&area, &max))| {
                let start = k as f64 * self.interval;
                let span = (now.min(start + self.interval) - start).max(0.0);
                QueueLength { start, mean: if span > 0.0 { area / span } else { 0.0 }, max }
            })
            .collect();
        let unfinished = self.tasks.iter().filter(|t| t.phase != Phase::Gone).count() as u64;
        Ok(Replication {
            replication: self.replication,
            seed: self.seed,
            end: now,
            arrivals: self.tasks.len() as u64,
            unfinished,
            stale_responses: self.stale,
            steady: self.tally.clone(),
            snapshot,
            intervals,
            queue_length,
            engine: self.engine.counters(),
        })
    }
}

/// Run replication `replication` of a scenario to its end.
pub fn run_replication(scenario: &Scenario, replication: u32) -> Result<Replication> {
    let mut sim = Simulation::new(scenario, replication)?;
    sim.advance(f64::INFINITY)?;
    sim.result()
}

#[cfg(test)]
mod tests {
    use super::{task_of, write_id};

    #[test]
    fn ids_written_are_the_task_indices() {
        let mut written = "left over".to_owned();
        for task in (0..2_000_u32).chain(999_990..1_000_010).chain([u32::MAX]) {
            write_id(&mut written, task);
            assert_eq!(written, task.to_string());
            assert_eq!(task_of(&written).unwrap(), task);
        }
    }
}
