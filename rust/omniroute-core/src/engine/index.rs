//! Derived indices: requirement classes with their backlogs, ready agents per
//! queue, reservations. Rebuilt from the primary records after a restore or
//! a queue change; kept up to date incrementally otherwise.

use super::requirement::{relax, Cond};
use super::state::{AgentIx, ChannelIx, Phase, QueueIx, TaskIx, Time};
use super::Engine;
use crate::model::{Condition, Name, StepAction};
use rustc_hash::FxHashMap;
use std::collections::BTreeSet;

pub(crate) type ClassIx = u32;
pub(crate) const NO_CLASS: ClassIx = u32::MAX;

/// A waiting task's place in its class backlog. Within one queue the aging
/// rate is shared, so ordering by `priority - rate * arrived_at` is the
/// same as ordering by effective priority at any moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct WaitKey {
    pub rank: Time,
    pub arrived: Time,
    pub seq: u64,
    pub task: TaskIx,
}

/// A reserved task's place in an agent's reservations: oldest first.
pub(crate) type ReservedKey = (Time, u64, TaskIx);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClassKey {
    pub queue: QueueIx,
    pub channel: ChannelIx,
    pub requires: u32,
    pub step: u32,
}

/// Tasks that share queue, channel, base requirement and relaxation step:
/// one eligibility check serves them all.
#[derive(Debug)]
pub(crate) struct Class {
    pub key: ClassKey,
    pub cond: Cond,
    pub text: Name,
    /// The queue and its overflow queues: agents of these may take the tasks.
    pub serving: Vec<QueueIx>,
    pub backlog: BTreeSet<WaitKey>,
}

/// Names of queues or channels by index and indices by name: one shared copy
/// of each name serves the lookups and every output event that carries it.
#[derive(Debug, Default)]
pub(crate) struct NameIndex {
    by_name: FxHashMap<Name, u32>,
    names: Vec<Name>,
}

impl NameIndex {
    /// Registers the next index's name and returns the index.
    pub fn add(&mut self, name: &str) -> u32 {
        let ix = self.names.len() as u32;
        let name: Name = name.into();
        self.by_name.insert(name.clone(), ix);
        self.names.push(name);
        ix
    }

    pub fn get(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    pub fn name(&self, ix: u32) -> Name {
        self.names[ix as usize].clone()
    }
}

/// A set of agents by index, one bit each: an agent joins or leaves with
/// one bit flipped instead of a tree insertion, and the set is walked in
/// index order, as the ordered set it replaces was (the order ties are
/// broken in).
#[derive(Clone, Debug, Default)]
pub(crate) struct AgentSet {
    words: Vec<u64>,
}

impl AgentSet {
    pub fn insert(&mut self, a: AgentIx) {
        let w = a as usize / 64;
        if self.words.len() <= w {
            self.words.resize(w + 1, 0);
        }
        self.words[w] |= 1_u64 << (a % 64);
    }

    pub fn remove(&mut self, a: AgentIx) {
        if let Some(word) = self.words.get_mut(a as usize / 64) {
            *word &= !(1_u64 << (a % 64));
        }
    }

    pub fn contains(&self, a: AgentIx) -> bool {
        self.words.get(a as usize / 64).is_some_and(|&w| w & (1_u64 << (a % 64)) != 0)
    }

    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The agents, lowest index first.
    pub fn iter(&self) -> AgentSetIter<'_> {
        AgentSetIter { words: &self.words, base: 0, word: self.words.first().copied().unwrap_or(0) }
    }
}

impl<'a> IntoIterator for &'a AgentSet {
    type Item = AgentIx;
    type IntoIter = AgentSetIter<'a>;

    fn into_iter(self) -> AgentSetIter<'a> {
        self.iter()
    }
}

/// The agents of an [`AgentSet`], lowest index first.
pub(crate) struct AgentSetIter<'a> {
    words: &'a [u64],
    /// Index of the word in `word`.
    base: usize,
    /// What is left of that word.
    word: u64,
}

impl Iterator for AgentSetIter<'_> {
    type Item = AgentIx;

    #[inline]
    fn next(&mut self) -> Option<AgentIx> {
        while self.word == 0 {
            self.base += 1;
            self.word = *self.words.get(self.base)?;
        }
        let bit = self.word.trailing_zeros();
        self.word &= self.word - 1;
        Some((self.base * 64) as AgentIx + bit)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Indices {
    pub agent_by_id: FxHashMap<Name, AgentIx>,
    pub task_by_id: FxHashMap<Name, TaskIx>,
    pub queues: NameIndex,
    pub channels: NameIndex,
    pub skill_by_name: FxHashMap<String, u32>,
    pub condition_ix: FxHashMap<Condition, u32>,
    pub offers: FxHashMap<u64, TaskIx>,
    pub classes: Vec<Class>,
    pub class_by_key: FxHashMap<ClassKey, ClassIx>,
    /// Per queue and channel: the queue's own classes with waiting tasks,
    /// ordered by their first task. The queue's aging rate is shared, so this
    /// is the order of effective priority: an agent stops at the first class
    /// whose head is worse than what it already found.
    pub heads: Vec<Vec<BTreeSet<(WaitKey, ClassIx)>>>,
    /// Per queue and channel: other queues' classes with waiting tasks that
    /// have overflowed to this queue's agents.
    pub overflow: Vec<Vec<BTreeSet<ClassIx>>>,
    /// Per queue and channel: available agents serving the queue with room
    /// for a task of the channel.
    pub ready: Vec<Vec<AgentSet>>,
    /// Per agent: the channels it has room for now, one bit each (0: none,
    /// or not available).
    pub agent_ready: Vec<u64>,
    /// Per agent: waiting tasks reserved for it.
    pub reserved: Vec<BTreeSet<ReservedKey>>,
    /// Per queue: its agents, by index (round-robin order).
    pub members: Vec<Vec<AgentIx>>,
    /// Per task slot: the class of its current queue, channel and step.
    pub task_class: Vec<ClassIx>,
    /// Scratch marks for de-duplication, stamped with `mark_gen`.
    pub class_mark: Vec<u32>,
    pub agent_mark: Vec<u32>,
    pub mark_gen: u32,
}

impl Engine {
    pub(crate) fn intern_skill(&mut self, name: &str) -> u32 {
        if let Some(&s) = self.ix.skill_by_name.get(name) {
            return s;
        }
        let s = self.skills.len() as u32;
        self.skills.push(name.to_owned());
        self.ix.skill_by_name.insert(name.to_owned(), s);
        s
    }

    pub(crate) fn intern_condition(&mut self, c: Option<&Condition>) -> u32 {
        let Some(c) = c else { return 0 };
        if let Some(&i) = self.ix.condition_ix.get(c) {
            return i;
        }
        let i = self.conditions.len() as u32;
        self.conditions.push(c.clone());
        self.ix.condition_ix.insert(c.clone(), i);
        i
    }

    /// The class for a key, built on first use.
    pub(crate) fn class_for(&mut self, key: ClassKey) -> ClassIx {
        if let Some(&c) = self.ix.class_by_key.get(&key) {
            return c;
        }
        let mut req = if key.requires == 0 { None } else { Some(self.conditions[key.requires as usize].clone()) };
        let mut serving = vec![key.queue];
        let steps = self.queues[key.queue as usize].config.steps.clone();
        for step in steps.iter().take(key.step as usize) {
            if let StepAction::AddQueue { queue } = &step.action {
                if let Some(q) = self.ix.queues.get(queue) {
                    if !serving.contains(&q) {
                        serving.push(q);
                    }
                }
            }
            req = relax(req, &step.action);
        }
        let cond = match &req {
            None => Cond::True,
            Some(c) => {
                let mut intern = |s: &str| self.intern_skill(s);
                Cond::compile(c, &mut intern)
            }
        };
        let text: Name = req.map_or_else(|| "true".into(), |c| c.to_string().into());
        let ix = self.ix.classes.len() as ClassIx;
        self.ix.classes.push(Class { key, cond, text, serving, backlog: BTreeSet::new() });
        self.ix.class_by_key.insert(key, ix);
        self.ix.class_mark.push(0);
        ix
    }

    pub(crate) fn wait_key(&self, t: TaskIx) -> WaitKey {
        let task = self.task(t);
        let rate = self.queues[task.queue as usize].config.aging_per_second;
        WaitKey {
            rank: Time(rate.mul_add(task.arrived_at, -f64::from(task.priority))),
            arrived: Time(task.arrived_at),
            seq: task.seq,
            task: t,
        }
    }

    /// Recompute the task's class from its queue, channel and step.
    pub(crate) fn refresh_class(&mut self, t: TaskIx) -> ClassIx {
        let task = self.task(t);
        let key = ClassKey { queue: task.queue, channel: task.channel, requires: task.requires, step: task.step };
        let c = self.class_for(key);
        let slot = t as usize;
        if self.ix.task_class.len() <= slot {
            self.ix.task_class.resize(slot + 1, NO_CLASS);
        }
        self.ix.task_class[slot] = c;
        c
    }

    /// Put a waiting task where agents will find it: its class backlog, or
    /// the reserved sets of the agents it is reserved for.
    pub(crate) fn enlist(&mut self, t: TaskIx) {
        let task = self.task(t);
        debug_assert!(task.phase == Phase::Waiting);
        if let Some(r) = &task.reservation {
            let key = (Time(task.arrived_at), task.seq, t);
            for &a in &r.agents.clone() {
                self.ix.reserved[a as usize].insert(key);
            }
            return;
        }
        let key = self.wait_key(t);
        let c = self.ix.task_class[t as usize];
        let class = &mut self.ix.classes[c as usize];
        let old_head = class.backlog.first().copied();
        class.backlog.insert(key);
        if old_head.is_none_or(|h| key < h) {
            let (own, channel) = (class.key.queue as usize, class.key.channel as usize);
            let heads = &mut self.ix.heads[own][channel];
            if let Some(h) = old_head {
                heads.remove(&(h, c));
            } else {
                for &q in &class.serving[1..] {
                    self.ix.overflow[q as usize][channel].insert(c);
                }
            }
            heads.insert((key, c));
        }
    }

    /// Take a waiting task out of the backlog or reserved sets.
    pub(crate) fn delist(&mut self, t: TaskIx) {
        let task = self.task(t);
        if let Some(r) = &task.reservation {
            let key = (Time(task.arrived_at), task.seq, t);
            for a in r.agents.clone() {
                if let Some(set) = self.ix.reserved.get_mut(a as usize) {
                    set.remove(&key);
                }
            }
            return;
        }
        let key = self.wait_key(t);
        let c = self.ix.task_class[t as usize];
        let class = &mut self.ix.classes[c as usize];
        let was_head = class.backlog.first() == Some(&key);
        class.backlog.remove(&key);
        if was_head {
            let (own, channel) = (class.key.queue as usize, class.key.channel as usize);
            let heads = &mut self.ix.heads[own][channel];
            heads.remove(&(key, c));
            if let Some(&h) = class.backlog.first() {
                heads.insert((h, c));
            } else {
                for &q in &class.serving[1..] {
                    self.ix.overflow[q as usize][channel].remove(&c);
                }
            }
        }
    }

    /// The channels an agent has room for now, one bit each; none unless
    /// the agent is available.
    pub(crate) fn compute_room(&self, a: AgentIx) -> u64 {
        let Some(agent) = self.agents[a as usize].as_ref() else {
            return 0;
        };
        if agent.status != crate::model::AgentStatus::Available {
            return 0;
        }
        self.room_for(agent)
    }

    /// The channels whose next task fits the agent's capacity, one bit each,
    /// whatever its state.
    pub(crate) fn room_for(&self, agent: &super::state::AgentRec) -> u64 {
        (0..self.channels.len() as ChannelIx).filter(|&c| self.fits(agent, c).is_ok()).fold(0, |m, c| m | (1 << c))
    }

    /// Bring the agent's entries in the ready sets up to date.
    pub(crate) fn refresh_ready(&mut self, a: AgentIx) {
        let room = self.compute_room(a);
        let slot = a as usize;
        let changed = self.ix.agent_ready[slot] ^ room;
        if changed == 0 {
            return;
        }
        self.ix.agent_ready[slot] = room;
        let agent = self.agents[a as usize].as_ref().expect("live agent index");
        for &(q, _) in &agent.queues {
            for c in 0..self.channels.len() {
                if changed & (1 << c) != 0 {
                    if room & (1 << c) != 0 {
                        self.ix.ready[q as usize][c].insert(a);
                    } else {
                        self.ix.ready[q as usize][c].remove(a);
                    }
                }
            }
        }
    }

    /// Take an agent out of every ready set (before its queues change).
    pub(crate) fn leave_ready_sets(&mut self, a: AgentIx) {
        let agent = self.agents[a as usize].as_ref().expect("live agent index");
        for &(q, _) in &agent.queues {
            for set in &mut self.ix.ready[q as usize] {
                set.remove(a);
            }
        }
        self.ix.agent_ready[a as usize] = 0;
    }

    /// Whether any agent has room for anything.
    pub(crate) fn anyone_ready(&self) -> bool {
        self.ix.agent_ready.iter().any(|&m| m != 0)
    }

    /// Start a fresh de-duplication round over the scratch marks.
    pub(crate) fn next_mark(&mut self) -> u32 {
        self.ix.mark_gen = self.ix.mark_gen.wrapping_add(1);
        if self.ix.mark_gen == 0 {
            self.ix.class_mark.fill(0);
            self.ix.agent_mark.fill(0);
            self.ix.mark_gen = 1;
        }
        self.ix.mark_gen
    }

    /// Rebuild every derived index from the primary records.
    pub(crate) fn rebuild(&mut self) {
        let mut ix = Indices::default();
        for (i, s) in self.skills.iter().enumerate() {
            ix.skill_by_name.insert(s.clone(), i as u32);
        }
        for (i, c) in self.conditions.iter().enumerate().skip(1) {
            ix.condition_ix.insert(c.clone(), i as u32);
        }
        for q in &self.queues {
            ix.queues.add(&q.config.name);
        }
        for c in &self.channels {
            ix.channels.add(&c.config.name);
        }
        let nq = self.queues.len();
        let nc = self.channels.len();
        ix.heads = vec![vec![BTreeSet::new(); nc]; nq];
        ix.overflow = vec![vec![BTreeSet::new(); nc]; nq];
        ix.ready = vec![vec![AgentSet::default(); nc]; nq];
        ix.members = vec![Vec::new(); nq];
        ix.agent_ready = vec![0; self.agents.len()];
        ix.agent_mark = vec![0; self.agents.len()];
        ix.reserved = vec![BTreeSet::new(); self.agents.len()];
        ix.task_class = vec![NO_CLASS; self.tasks.len()];
        for (a, agent) in self.agents.iter().enumerate() {
            if let Some(agent) = agent {
                ix.agent_by_id.insert(agent.id.clone(), a as AgentIx);
                for (q, _) in &agent.queues {
                    ix.members[*q as usize].push(a as AgentIx);
                }
            }
        }
        self.ix = ix;
        for t in 0..self.tasks.len() as TaskIx {
            let Some(task) = self.tasks[t as usize].as_ref() else {
                continue;
            };
            self.ix.task_by_id.insert(task.id.clone(), t);
            if let Phase::Offered { offer, .. } = task.phase {
                self.ix.offers.insert(offer, t);
            }
            let waiting = task.phase == Phase::Waiting;
            self.refresh_class(t);
            if waiting {
                self.enlist(t);
            }
        }
        for a in 0..self.agents.len() as AgentIx {
            self.refresh_ready(a);
        }
    }
}
