//! Fixed reporting intervals aligned to `floor(at / interval) * interval`, the current one and those retained.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::agent_time::AgentTime;
use super::config::MetricsConfig;
use super::counts::Tally;
use super::dimension::{DimRef, DimensionKind};
use super::time::Micros;

/// One dimension's figures in a closed interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct IntervalEntry {
    pub dim: DimRef,
    pub tally: Tally,
    pub agent_time: AgentTime,
}

/// A past interval: only the dimensions where something happened, sorted by dimension.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClosedInterval {
    pub index: i64,
    pub entries: Vec<IntervalEntry>,
}

impl ClosedInterval {
    pub fn entry(&self, dim: DimRef) -> Option<&IntervalEntry> {
        self.entries.binary_search_by(|entry| entry.dim.cmp(&dim)).ok().map(|i| &self.entries[i])
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Intervals {
    /// Index (start / interval length) of the current interval, once started.
    current_index: Option<i64>,
    /// Index of the interval of the first event: reports start no earlier.
    first_index: Option<i64>,
    /// Past intervals with something in them, oldest first.
    closed: VecDeque<ClosedInterval>,
    #[serde(skip)]
    interval_micros: Micros,
    #[serde(skip)]
    retained: i64,
}

impl Intervals {
    pub fn new(config: &MetricsConfig) -> Self {
        let mut intervals = Self::default();
        intervals.configure(config);
        intervals
    }

    pub fn configure(&mut self, config: &MetricsConfig) {
        self.interval_micros = config.interval_micros();
        self.retained = i64::from(config.intervals_retained);
    }

    pub fn current_index(&self) -> Option<i64> {
        self.current_index
    }

    /// The index of the interval holding `t`.
    pub fn index_of(&self, t: Micros) -> i64 {
        t.div_euclid(self.interval_micros)
    }

    pub fn start_of(&self, index: i64) -> Micros {
        index * self.interval_micros
    }

    pub fn retained(&self) -> i64 {
        self.retained
    }

    /// The oldest interval a report can show: retained, and not before the first event.
    pub fn oldest_reported(&self) -> Option<i64> {
        let current = self.current_index?;
        Some((current - self.retained).max(self.first_index.unwrap_or(current)))
    }

    /// Makes `index` the current interval without closing the one before: used
    /// to start, and to jump over intervals that would not be retained (the
    /// caller empties the current interval's figures).
    pub fn restart_at(&mut self, index: i64) {
        self.current_index = Some(index);
        self.first_index.get_or_insert(index);
        self.drop_expired();
    }

    /// Closes the current interval with its contact figures (by dimension, in
    /// dimension order) and each agent's time in it, and opens the next one.
    pub fn close(&mut self, tallies: Vec<(DimRef, Tally)>, agent_time: &[(u32, AgentTime)]) {
        let Some(index) = self.current_index else {
            return;
        };
        let mut entries: Vec<IntervalEntry> = tallies
            .into_iter()
            .map(|(dim, tally)| IntervalEntry { dim, tally, agent_time: AgentTime::default() })
            .collect();
        let mut overall = AgentTime::default();
        for &(agent, time) in agent_time {
            overall.add(&time);
            let dim = DimRef::agent(agent);
            match entries.binary_search_by(|entry| entry.dim.cmp(&dim)) {
                Ok(i) => entries[i].agent_time = time,
                Err(i) => entries.insert(i, IntervalEntry { dim, tally: Tally::default(), agent_time: time }),
            }
        }
        if !overall.is_empty() {
            match entries.first_mut() {
                Some(first) if first.dim == DimRef::OVERALL => first.agent_time = overall,
                _ => entries
                    .insert(0, IntervalEntry { dim: DimRef::OVERALL, tally: Tally::default(), agent_time: overall }),
            }
        }
        if !entries.is_empty() {
            self.closed.push_back(ClosedInterval { index, entries });
        }
        self.current_index = Some(index + 1);
        self.drop_expired();
    }

    fn drop_expired(&mut self) {
        let Some(current) = self.current_index else {
            return;
        };
        while self.closed.front().is_some_and(|c| c.index < current - self.retained) {
            self.closed.pop_front();
        }
    }

    /// The closed interval `index`, if it was retained and had anything in it.
    pub fn closed(&self, index: i64) -> Option<&ClosedInterval> {
        let i = self.closed.partition_point(|c| c.index < index);
        self.closed.get(i).filter(|c| c.index == index)
    }

    /// Checks deserialized state against the number of names.
    pub fn check(&self, queues: usize, channels: usize, agents: usize) -> Result<(), String> {
        let len_of = |kind: DimensionKind| match kind {
            DimensionKind::Overall => 1,
            DimensionKind::Queue => queues,
            DimensionKind::Channel => channels,
            DimensionKind::Agent => agents,
        };
        if self.current_index.is_some() != self.first_index.is_some()
            || self.first_index.zip(self.current_index).is_some_and(|(first, current)| first > current)
        {
            return Err("the first interval does not match the current one".into());
        }
        let current = self.current_index.unwrap_or(i64::MIN);
        for (i, closed) in self.closed.iter().enumerate() {
            if closed.index >= current || (i > 0 && self.closed[i - 1].index >= closed.index) {
                return Err("closed intervals are out of order".into());
            }
            if !closed.entries.windows(2).all(|pair| pair[0].dim < pair[1].dim) {
                return Err("a closed interval's dimensions are out of order".into());
            }
            for entry in &closed.entries {
                if entry.dim.key as usize >= len_of(entry.dim.kind) {
                    return Err(format!("a closed interval refers to an unknown {}", entry.dim.kind));
                }
                entry.tally.waits.check()?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::counts::Counts;

    fn intervals(retained: u32) -> Intervals {
        let config = MetricsConfig { interval_seconds: 900, intervals_retained: retained, ..MetricsConfig::default() };
        Intervals::new(&config)
    }

    fn offered(dim: DimRef) -> (DimRef, Tally) {
        let counts = Counts { offered: 1, ..Counts::default() };
        (dim, Tally { counts, ..Tally::default() })
    }

    #[test]
    fn intervals_are_aligned_to_multiples_of_their_length() {
        let i = intervals(4);
        assert_eq!(i.index_of(0), 0);
        assert_eq!(i.index_of(899_999_999), 0);
        assert_eq!(i.index_of(900_000_000), 1);
        assert_eq!(i.index_of(-1), -1);
        assert_eq!(i.start_of(3), 2_700_000_000);
    }

    #[test]
    fn closing_keeps_the_figures_and_each_agents_time() {
        let mut i = intervals(4);
        i.restart_at(0);
        let time = AgentTime { handling: 1, available_idle: 2, logged_in: 3 };
        i.close(vec![offered(DimRef::OVERALL), offered(DimRef::queue(1))], &[(1, time)]);
        assert_eq!(i.current_index(), Some(1));
        let closed = i.closed(0).unwrap();
        let dims: Vec<DimRef> = closed.entries.iter().map(|e| e.dim).collect();
        assert_eq!(dims, vec![DimRef::OVERALL, DimRef::queue(1), DimRef::agent(1)]);
        assert_eq!(closed.entry(DimRef::OVERALL).unwrap().agent_time, time);
        assert_eq!(closed.entry(DimRef::agent(1)).unwrap().agent_time, time);
        assert_eq!(closed.entry(DimRef::queue(1)).unwrap().tally.counts.offered, 1);
        assert!(closed.entry(DimRef::queue(0)).is_none());
        // An empty interval is not stored.
        i.close(Vec::new(), &[]);
        assert!(i.closed(1).is_none());
        assert!(i.check(2, 0, 2).is_ok());
        assert!(i.check(1, 0, 2).is_err());
    }

    #[test]
    fn only_the_configured_number_of_past_intervals_is_retained() {
        let mut i = intervals(2);
        i.restart_at(10);
        for _ in 0..4 {
            i.close(vec![offered(DimRef::OVERALL)], &[]);
        }
        // Current is 14; 12 and 13 are retained.
        assert_eq!(i.current_index(), Some(14));
        assert!(i.closed(11).is_none());
        assert!(i.closed(12).is_some());
        assert!(i.closed(13).is_some());
        assert_eq!(i.oldest_reported(), Some(12));
        i.restart_at(20);
        assert!(i.closed(13).is_none());
        assert_eq!(i.oldest_reported(), Some(18));
        let mut fresh = intervals(10);
        assert_eq!(fresh.oldest_reported(), None);
        fresh.restart_at(5);
        // Nothing before the first event's interval is reported.
        assert_eq!(fresh.oldest_reported(), Some(5));
    }
}
