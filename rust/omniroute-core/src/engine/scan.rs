//! The agent-side choice stated by brute force: scan every waiting task.
//! Tests hold the indexed matcher to it; benchmarks measure against it.

use super::state::{Phase, TaskIx};
use super::Engine;
use crate::error::Result;
use crate::model::Strategy;

/// (reserved, tier, effective priority, -arrived, -seq): the larger wins.
type ScanKey = (bool, i32, f64, f64, u64);

impl Engine {
    /// The waiting task the agent would be offered next if it were
    /// available now, found by scanning every task: reserved tasks first (oldest first), then the
    /// agent's priority for the queue, the effective priority, the oldest,
    /// the first to arrive. External-pick queues are left to the caller.
    pub fn best_task_by_scan(&self, agent: &str) -> Result<Option<String>> {
        let a = self.agent_ix(agent)?;
        let rec = self.agent(a);
        let mut best: Option<(ScanKey, TaskIx)> = None;
        for (t, task) in self.tasks.iter().enumerate() {
            let Some(task) = task else { continue };
            let t = t as TaskIx;
            if task.phase != Phase::Waiting || !self.could_take(a, t) {
                continue;
            }
            let reserved = task.reservation.is_some();
            let queue = &self.queues[task.queue as usize].config;
            if !reserved && queue.strategy == Strategy::External {
                continue;
            }
            let class = &self.ix.classes[self.ix.task_class[t as usize] as usize];
            let tier = class.serving.iter().filter_map(|&q| rec.priority_for(q)).max().unwrap_or(0);
            let eff = self.effective_priority(t);
            let key = (
                reserved,
                if reserved { 0 } else { tier },
                if reserved { 0.0 } else { eff },
                -task.arrived_at,
                task.seq,
            );
            let better = best.as_ref().is_none_or(|(b, _)| {
                key.0
                    .cmp(&b.0)
                    .then(key.1.cmp(&b.1))
                    .then(key.2.total_cmp(&b.2))
                    .then(key.3.total_cmp(&b.3))
                    .then(b.4.cmp(&key.4))
                    .is_gt()
            });
            if better {
                best = Some((key, t));
            }
        }
        Ok(best.map(|(_, t)| self.task(t).id.to_string()))
    }
}
