//! Routing strategies: how a task chooses among the agents free to take it.

use super::index::ClassIx;
use super::state::{AgentIx, TaskIx};
use super::Engine;
use crate::model::{ScorePart, Strategy};
use rand::Rng;
use std::borrow::Cow;

/// The named features a `score` strategy may weigh, and that external
/// picks receive for each candidate.
pub const FEATURES: [&str; 8] = [
    "idle_seconds",
    "channel_idle_seconds",
    "occupancy",
    "free_capacity",
    "skill_level",
    "handled",
    "queue_priority",
    "reserved",
];

/// The best agent so far: its score, when it became idle, its index.
type Best = (f64, f64, AgentIx);

impl Engine {
    /// The value of one named feature for an agent and a task.
    pub(crate) fn feature(&self, name: &str, a: AgentIx, t: TaskIx, class: ClassIx) -> f64 {
        let agent = self.agent(a);
        let task = self.task(t);
        match name {
            "idle_seconds" => self.idle_seconds(a),
            "channel_idle_seconds" => self.channel_idle_seconds(a, task.channel),
            "occupancy" => f64::from(agent.used()) / f64::from(agent.capacity.max(1)),
            "free_capacity" => f64::from(agent.capacity.saturating_sub(agent.used())),
            "skill_level" => self.ix.classes[class as usize].cond.proficiency(&agent.levels),
            "handled" => agent.handled as f64,
            "queue_priority" => {
                let class = &self.ix.classes[class as usize];
                class.serving.iter().filter_map(|&q| agent.priority_for(q)).max().map_or(0.0, f64::from)
            }
            "reserved" => f64::from(u8::from(task.reservation.as_ref().is_some_and(|r| r.agents.contains(&a)))),
            _ => 0.0,
        }
    }

    /// Seconds since the agent's last task ended; 0 while it holds work (an
    /// agent in a chat is not idle, so chats spread over idle agents).
    #[inline]
    fn idle_seconds(&self, a: AgentIx) -> f64 {
        let agent = self.agent(a);
        if agent.tasks.is_empty() {
            self.now - agent.idle_since
        } else {
            0.0
        }
    }

    /// Seconds since the agent's last task of channel `c` ended; 0 while it
    /// holds a task of that channel.
    fn channel_idle_seconds(&self, a: AgentIx, c: u32) -> f64 {
        let agent = self.agent(a);
        if agent.tasks.iter().any(|&t| self.task(t).channel == c) {
            0.0
        } else {
            self.now - agent.channel_idle(c)
        }
    }

    /// Every feature of an agent for a task, for external picks.
    pub(crate) fn features(&self, a: AgentIx, t: TaskIx, class: ClassIx) -> Vec<(String, f64)> {
        FEATURES.iter().map(|f| ((*f).to_owned(), self.feature(f, a, t, class))).collect()
    }

    /// The strategy's score for an agent (higher wins) and its parts.
    pub(crate) fn score(&self, strategy: &Strategy, a: AgentIx, t: TaskIx, class: ClassIx) -> (f64, Vec<ScorePart>) {
        let single = |feature: Cow<'static, str>, weight: f64| {
            let value = self.feature(&feature, a, t, class);
            (weight * value, vec![ScorePart { feature, value, weight }])
        };
        match strategy {
            Strategy::LongestIdle { per_channel: false } => single(Cow::Borrowed("idle_seconds"), 1.0),
            Strategy::LongestIdle { per_channel: true } => single(Cow::Borrowed("channel_idle_seconds"), 1.0),
            Strategy::LeastOccupied => single(Cow::Borrowed("occupancy"), -1.0),
            Strategy::MostSkilled => single(Cow::Borrowed("skill_level"), 1.0),
            Strategy::FewestHandled => single(Cow::Borrowed("handled"), -1.0),
            Strategy::WeightedRandom { feature } => single(Cow::Owned(feature.clone()), 1.0),
            Strategy::RoundRobin => {
                let q = self.task(t).queue;
                let value = self.rotation_distance(q, a);
                (-value, vec![ScorePart { feature: Cow::Borrowed("rotation_distance"), value, weight: -1.0 }])
            }
            Strategy::Score { weights } => {
                let mut total = 0.0;
                let mut parts = Vec::with_capacity(weights.len());
                for (feature, &weight) in weights {
                    let value = self.feature(feature, a, t, class);
                    total += weight * value;
                    parts.push(ScorePart { feature: Cow::Owned(feature.clone()), value, weight });
                }
                (total, parts)
            }
            Strategy::External => (0.0, Vec::new()),
        }
    }

    /// The fast path of `score`: the number alone. Inlined into the scans
    /// over the ready agents, where it runs once per agent; the strategies
    /// that need the whole score go through one call.
    #[inline]
    fn score_value(&self, strategy: &Strategy, a: AgentIx, t: TaskIx, class: ClassIx) -> f64 {
        match strategy {
            Strategy::LongestIdle { per_channel: false } => self.idle_seconds(a),
            Strategy::LongestIdle { per_channel: true } => self.channel_idle_seconds(a, self.task(t).channel),
            Strategy::RoundRobin => -self.rotation_distance(self.task(t).queue, a),
            _ => self.score_total(strategy, a, t, class),
        }
    }

    #[inline(never)]
    fn score_total(&self, strategy: &Strategy, a: AgentIx, t: TaskIx, class: ClassIx) -> f64 {
        self.score(strategy, a, t, class).0
    }

    /// How many members of the queue come between the last agent chosen by
    /// round robin and this one.
    fn rotation_distance(&self, q: u32, a: AgentIx) -> f64 {
        let members = &self.ix.members[q as usize];
        let n = members.len().max(1);
        let pos = members.binary_search(&a).unwrap_or_else(|p| p);
        let last = self.queues[q as usize].rr_last.map_or(n - 1, |l| match members.binary_search(&l) {
            Ok(p) => p,
            Err(p) => (p + n - 1) % n,
        });
        ((pos + n - last - 1) % n) as f64
    }

    /// Choose among candidates: the highest score, then the longest idle,
    /// then the lowest index; weighted random draws with the seeded generator.
    // Exact float ties are meant: they fall through to the tie-breakers.
    #[allow(clippy::float_cmp)]
    pub(crate) fn choose(
        &mut self,
        strategy: &Strategy,
        candidates: &[AgentIx],
        t: TaskIx,
        class: ClassIx,
    ) -> Option<AgentIx> {
        if candidates.is_empty() {
            return None;
        }
        if let Strategy::WeightedRandom { .. } = strategy {
            let weights: Vec<f64> =
                candidates.iter().map(|&a| self.score_value(strategy, a, t, class).max(0.0)).collect();
            let total: f64 = weights.iter().sum();
            if total <= 0.0 || !total.is_finite() {
                let i = self.rng.gen_range(0..candidates.len());
                return Some(candidates[i]);
            }
            let mut x = self.rng.gen_range(0.0..total);
            for (i, w) in weights.iter().enumerate() {
                if x < *w {
                    return Some(candidates[i]);
                }
                x -= w;
            }
            // Rounding can leave `x` just past the last weight: the draw then
            // belongs to the last agent that had any weight at all.
            let last = weights.iter().rposition(|w| *w > 0.0).unwrap_or(candidates.len() - 1);
            return Some(candidates[last]);
        }
        let mut best: Option<Best> = None;
        for &a in candidates {
            self.consider_agent(&mut best, strategy, a, t, class);
        }
        best.map(|(_, _, a)| a)
    }

    /// Keep agent `a` in `best` if it beats it: the highest score, then the
    /// longest idle, then the lowest index.
    // Exact float ties are meant: they fall through to the tie-breakers.
    #[allow(clippy::float_cmp)]
    #[inline]
    fn consider_agent(&self, best: &mut Option<Best>, strategy: &Strategy, a: AgentIx, t: TaskIx, class: ClassIx) {
        let s = self.score_value(strategy, a, t, class);
        let idle = self.agent(a).idle_since;
        let better = match *best {
            None => true,
            Some((bs, bi, ba)) => s > bs || (s == bs && (idle < bi || (idle == bi && a < ba))),
        };
        if better {
            *best = Some((s, idle, a));
        }
    }

    /// What [`Engine::choose`] picks among [`Engine::candidates`] for a
    /// deterministic strategy, for a task without a reservation whose class
    /// one queue serves: the same agents in the same order, without listing them.
    pub(crate) fn best_ready(&self, strategy: &Strategy, t: TaskIx, class: ClassIx) -> Option<AgentIx> {
        let task = self.task(t);
        let cls = &self.ix.classes[class as usize];
        debug_assert!(task.reservation.is_none() && cls.serving.len() == 1);
        let mut best: Option<Best> = None;
        for a in &self.ix.ready[cls.serving[0] as usize][task.channel as usize] {
            if self.ready_ok(task, cls, a) {
                self.consider_agent(&mut best, strategy, a, t, class);
            }
        }
        best.map(|(_, _, a)| a)
    }
}
