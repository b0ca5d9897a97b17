//! What the aggregator reports: a snapshot of every dimension at `now`, and past intervals for historical reports.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::agent_time::AgentTime;
use super::agents::AgentTrack;
use super::aggregator::Aggregator;
use super::counts::Counts;
use super::dimension::{DimRef, DimensionKind};
use super::error::MetricsError;
use super::event::{check_at, AgentActivity};
use super::histogram::WaitHistogram;
use super::live::{Percentiles, FIRST_WINDOW, INTERVAL, MAX_SPANS, PERCENTILES, SINCE_START};
use super::stats::Stats;
use super::time::{to_micros, to_seconds, Micros};

/// Every figure of every dimension at one moment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// The moment of the snapshot, in seconds.
    pub now: f64,
    /// Start of the current fixed interval, in seconds.
    pub interval_start: f64,
    /// Length and start of each sliding window, in configuration order.
    pub windows: Vec<WindowSpan>,
    pub overall: DimensionSnapshot,
    /// By queue name.
    pub queues: BTreeMap<String, DimensionSnapshot>,
    /// By channel name.
    pub channels: BTreeMap<String, DimensionSnapshot>,
    /// By agent name.
    pub agents: BTreeMap<String, DimensionSnapshot>,
}

/// Which dimensions a snapshot reports; the overall figures are always there.
///
/// A wallboard of queues refreshed every second need not pay for the figures
/// of thousands of agents each time ([`SnapshotScope::QUEUES_AND_CHANNELS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SnapshotScope {
    pub queues: bool,
    pub channels: bool,
    pub agents: bool,
}

impl SnapshotScope {
    /// Every queue, channel and agent.
    pub const ALL: Self = Self { queues: true, channels: true, agents: true };
    /// Queues and channels, no agents.
    pub const QUEUES_AND_CHANNELS: Self = Self { queues: true, channels: true, agents: false };
}

impl Default for SnapshotScope {
    fn default() -> Self {
        Self::ALL
    }
}

/// A sliding window: `seconds` long in name, starting at `start` (a slot boundary) and ending at `now`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowSpan {
    pub seconds: u32,
    pub start: f64,
}

/// One dimension's figures at one moment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DimensionSnapshot {
    /// Since the first event.
    pub since_start: Stats,
    /// Since the start of the current fixed interval.
    pub current_interval: Stats,
    /// Over each sliding window, in configuration order.
    pub windows: Vec<WindowStats>,
    /// Contacts waiting now (queues, channels and overall; `None` for agents).
    pub waiting: Option<WaitingNow>,
    /// Agents now (agents and overall; `None` for queues and channels).
    pub staffing: Option<StaffingNow>,
}

/// One sliding window's figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    pub seconds: u32,
    pub stats: Stats,
}

/// Contacts that have arrived and are not yet answered, abandoned or transferred.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WaitingNow {
    pub contacts: u64,
    /// Seconds since the original arrival of the oldest of them; `None` when none waits.
    pub longest_wait: Option<f64>,
}

/// Agents by current state, and their capacity. For one agent, its own state counts 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffingNow {
    pub offline: u64,
    pub available: u64,
    pub away: u64,
    pub not_responding: u64,
    pub wrap_up: u64,
    /// Capacity units in use, over agents not offline.
    pub capacity_used: u64,
    /// Capacity units free (`capacity - used`), over agents not offline.
    pub capacity_free: u64,
    /// Tasks held, over agents not offline.
    pub tasks_held: u64,
}

impl StaffingNow {
    fn add(&mut self, track: &AgentTrack) {
        match track.activity {
            AgentActivity::Offline => {
                self.offline += 1;
                return;
            }
            AgentActivity::Available => self.available += 1,
            AgentActivity::Away => self.away += 1,
            AgentActivity::NotResponding => self.not_responding += 1,
            AgentActivity::WrapUp => self.wrap_up += 1,
        }
        self.capacity_used += u64::from(track.used);
        self.capacity_free += u64::from(track.capacity - track.used);
        self.tasks_held += u64::from(track.tasks);
    }
}

/// One fixed interval's figures, for historical reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IntervalStats {
    /// Start of the interval, in seconds.
    pub start: f64,
    pub stats: Stats,
}

/// Agent time of one agent (or all) in each span: since start, current interval, each window.
struct SpanTimes {
    spans: usize,
    /// `spans` entries per agent.
    agents: Vec<AgentTime>,
    overall: Vec<AgentTime>,
}

impl SpanTimes {
    fn of(&self, dim: DimRef) -> Option<&[AgentTime]> {
        match dim.kind {
            DimensionKind::Overall => Some(&self.overall),
            DimensionKind::Agent => {
                let start = dim.key as usize * self.spans;
                Some(&self.agents[start..start + self.spans])
            }
            DimensionKind::Queue | DimensionKind::Channel => None,
        }
    }
}

impl Aggregator {
    /// Every figure at `now`, which becomes the aggregator's time: later events
    /// must not be older. The current interval, the windows and agent time run up to `now`.
    pub fn snapshot(&mut self, now: f64) -> Result<MetricsSnapshot, MetricsError> {
        self.snapshot_scoped(now, SnapshotScope::ALL)
    }

    /// [`Self::snapshot`] of the dimensions in `scope` only (and overall).
    pub fn snapshot_scoped(&mut self, now: f64, scope: SnapshotScope) -> Result<MetricsSnapshot, MetricsError> {
        check_at("snapshot", "now", now, self.last_time())?;
        let t = to_micros(now);
        self.advance_to(now, t);
        let times = self.span_times(t, scope.agents);
        let order = |names: &mut super::dimension::Names, wanted: bool| {
            if wanted {
                names.sorted_keys().to_vec()
            } else {
                Vec::new()
            }
        };
        let queue_order = order(&mut self.queues, scope.queues);
        let channel_order = order(&mut self.channels, scope.channels);
        let agent_order = order(&mut self.agent_names, scope.agents);
        self.live.refresh_percentiles(DimRef::OVERALL);
        for (kind, keys) in [
            (DimensionKind::Queue, &queue_order),
            (DimensionKind::Channel, &channel_order),
            (DimensionKind::Agent, &agent_order),
        ] {
            for &key in keys {
                self.live.refresh_percentiles(DimRef { kind, key });
            }
        }
        let by_name = |kind: DimensionKind, order: &[u32]| -> BTreeMap<String, DimensionSnapshot> {
            let Some(names) = self.names(kind) else {
                return BTreeMap::new();
            };
            // Keys come in name order: inserting them one by one appends to the map, without
            // the intermediate vector (and its sort) that collecting into a map would build.
            let mut map = BTreeMap::new();
            for &key in order {
                map.insert(names.name(key).to_owned(), self.dimension(DimRef { kind, key }, t, &times));
            }
            map
        };
        Ok(MetricsSnapshot {
            now,
            interval_start: to_seconds(self.intervals.start_of(self.intervals.current_index().unwrap_or(0))),
            windows: self
                .config
                .windows
                .iter()
                .enumerate()
                .map(|(w, &seconds)| WindowSpan { seconds, start: to_seconds(self.windows.start_of(w)) })
                .collect(),
            overall: self.dimension(DimRef::OVERALL, t, &times),
            queues: by_name(DimensionKind::Queue, &queue_order),
            channels: by_name(DimensionKind::Channel, &channel_order),
            agents: by_name(DimensionKind::Agent, &agent_order),
        })
    }

    /// Agent time since start, in the current interval and in each window, up
    /// to `t`: overall, and per agent when `per_agent`.
    fn span_times(&mut self, t: Micros, per_agent: bool) -> SpanTimes {
        let window_starts: Vec<Micros> = (0..self.windows.count()).map(|w| self.windows.start_of(w)).collect();
        let windows = window_starts.len();
        let spans = FIRST_WINDOW + windows;
        let everybody = self.agents.overall();
        let now = everybody.cumulative_at(t);
        let mut overall = vec![now, everybody.interval_time(t)];
        overall.extend(window_starts.iter().map(|&start| now.since(everybody.cumulative_at(start))));
        if !per_agent {
            return SpanTimes { spans, agents: Vec::new(), overall };
        }
        let slot = self.windows.current().unwrap_or(0);
        let (tracks, bases) = self.agents.window_bases(slot, &window_starts);
        let mut agents = vec![AgentTime::default(); tracks.len() * spans];
        for (a, (track, row)) in tracks.iter().zip(agents.chunks_exact_mut(spans)).enumerate() {
            if track.time.last_change().is_none() {
                continue; // never logged in: no time anywhere
            }
            let cumulative = track.time.cumulative_at(t);
            row[SINCE_START] = cumulative;
            row[INTERVAL] = track.time.interval_time(t);
            for (w, time) in row[FIRST_WINDOW..].iter_mut().enumerate() {
                *time = cumulative.since(bases[a * windows + w]);
            }
        }
        SpanTimes { spans, agents, overall }
    }

    fn dimension(&self, dim: DimRef, t: Micros, times: &SpanTimes) -> DimensionSnapshot {
        let zero = AgentTime::default();
        let agent_time = times.of(dim);
        let time = |span: usize| agent_time.map_or(&zero, |times| &times[span]);
        // Refreshed by the caller.
        let percentiles = self.live.cached_percentiles(dim);
        // Each span's counters read straight from the dimension's block: no scratch arrays to clear.
        let stats = |span: usize| Stats::compute(&self.live.counts(dim, span), percentiles[span], time(span));
        DimensionSnapshot {
            since_start: stats(SINCE_START),
            current_interval: stats(INTERVAL),
            windows: self
                .config
                .windows
                .iter()
                .enumerate()
                .map(|(w, &seconds)| WindowStats { seconds, stats: stats(FIRST_WINDOW + w) })
                .collect(),
            waiting: self.waiting_now(dim, t),
            staffing: self.staffing_now(dim),
        }
    }

    fn waiting_now(&self, dim: DimRef, t: Micros) -> Option<WaitingNow> {
        let (contacts, oldest) = match dim.kind {
            DimensionKind::Overall => self.waiting.overall_waiting(),
            DimensionKind::Queue => self.waiting.queue_waiting(dim.key),
            DimensionKind::Channel => self.waiting.channel_waiting(dim.key),
            DimensionKind::Agent => return None,
        };
        Some(WaitingNow { contacts, longest_wait: oldest.map(|arrived| to_seconds(t - arrived)) })
    }

    fn staffing_now(&self, dim: DimRef) -> Option<StaffingNow> {
        let mut staffing = StaffingNow::default();
        match dim.kind {
            DimensionKind::Overall => self.agents.tracks().iter().for_each(|track| staffing.add(track)),
            DimensionKind::Agent => staffing.add(self.agents.track(dim.key)),
            DimensionKind::Queue | DimensionKind::Channel => return None,
        }
        Some(staffing)
    }

    /// The fixed intervals of one dimension whose start lies in `[from, to)`
    /// seconds, oldest first, including the current (partial) one: every
    /// retained interval in range, with zero figures where nothing happened.
    /// `name` is ignored for [`DimensionKind::Overall`]; infinite bounds are open.
    /// The current interval's agent time runs up to the last event or snapshot.
    pub fn intervals(
        &self,
        kind: DimensionKind,
        name: &str,
        from: f64,
        to: f64,
    ) -> Result<Vec<IntervalStats>, MetricsError> {
        check_bounds(from, to)?;
        let dim = match self.names(kind) {
            None => DimRef::OVERALL,
            Some(names) => DimRef {
                kind,
                key: names.key(name).ok_or_else(|| MetricsError::UnknownName { kind, name: name.to_owned() })?,
            },
        };
        Ok(self.each_interval(from, to, |index, current, clock| self.interval_stats(index, current, dim, clock)))
    }

    /// The fixed intervals of a group of agents (a team), as
    /// [`Self::intervals`] gives one agent's: their counts, waits and agent
    /// time added up, and every figure derived from the sums (a ratio of
    /// sums, not an average of ratios). An agent never seen in an event
    /// adds nothing; a name given twice counts once.
    pub fn group_intervals(&self, agents: &[&str], from: f64, to: f64) -> Result<Vec<IntervalStats>, MetricsError> {
        check_bounds(from, to)?;
        let mut keys: Vec<u32> = agents.iter().filter_map(|name| self.agent_names.key(name)).collect();
        keys.sort_unstable();
        keys.dedup();
        Ok(self.each_interval(from, to, |index, current, clock| {
            let mut counts = Counts::default();
            let mut waits = WaitHistogram::default();
            let mut time = AgentTime::default();
            for &key in &keys {
                let dim = DimRef::agent(key);
                if index == current {
                    counts.add(&self.live.counts(dim, INTERVAL));
                    waits.merge(&self.live.span_waits(dim, INTERVAL));
                    time.add(&self.agents.track(key).time.interval_time(clock));
                } else if let Some(entry) = self.intervals.closed(index).and_then(|closed| closed.entry(dim)) {
                    counts.add(&entry.tally.counts);
                    waits.merge(&entry.tally.waits);
                    time.add(&entry.agent_time);
                }
            }
            Stats::compute(&counts, waits.percentiles(PERCENTILES), &time)
        }))
    }

    /// Each retained interval whose start lies in `[from, to)` seconds, with
    /// the figures `stats(index, current index, clock)` gives it.
    fn each_interval(&self, from: f64, to: f64, stats: impl Fn(i64, i64, Micros) -> Stats) -> Vec<IntervalStats> {
        let (Some(current), Some(oldest), Some(clock)) =
            (self.intervals.current_index(), self.intervals.oldest_reported(), self.clock)
        else {
            return Vec::new();
        };
        let length = f64::from(self.config.interval_seconds);
        // Index i starts at i * length: from <= i * length < to.
        let clamp = |index: f64| index.clamp(oldest as f64, (current + 1) as f64) as i64;
        let first = clamp((from / length).ceil());
        let end = clamp((to / length).ceil());
        (first..end)
            .map(|index| IntervalStats {
                start: to_seconds(self.intervals.start_of(index)),
                stats: stats(index, current, clock.micros),
            })
            .collect()
    }

    fn interval_stats(&self, index: i64, current: i64, dim: DimRef, clock: Micros) -> Stats {
        if index == current {
            let spans = self.live.spans();
            let counts = self.live.counts(dim, INTERVAL);
            let mut answered = [0; MAX_SPANS];
            answered[INTERVAL] = counts.answered;
            let mut percentiles: [Percentiles; MAX_SPANS] = [[None; 3]; MAX_SPANS];
            self.live.percentiles(dim, &answered[..spans], &mut percentiles[..spans]);
            let time = match dim.kind {
                DimensionKind::Agent => self.agents.track(dim.key).time.interval_time(clock),
                DimensionKind::Overall => self.agents.overall().interval_time(clock),
                DimensionKind::Queue | DimensionKind::Channel => AgentTime::default(),
            };
            return Stats::compute(&counts, percentiles[INTERVAL], &time);
        }
        self.intervals.closed(index).and_then(|closed| closed.entry(dim)).map_or_else(Stats::default, |entry| {
            let [p50, p90, p99] = entry.tally.waits.percentiles(PERCENTILES);
            Stats::compute(&entry.tally.counts, [p50, p90, p99], &entry.agent_time)
        })
    }
}

fn check_bounds(from: f64, to: f64) -> Result<(), MetricsError> {
    for (field, value) in [("from", from), ("to", to)] {
        if value.is_nan() {
            return Err(MetricsError::InvalidValue {
                event: "intervals",
                field,
                value,
                accepted: "a number of seconds, or an infinity for no bound",
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{MetricEvent, MetricsConfig};

    fn aggregator() -> Aggregator {
        let mut agg = Aggregator::new(MetricsConfig::default()).unwrap();
        let queue = agg.queue_key("billing");
        let channel = agg.channel_key("voice");
        let ann = agg.agent_key("ann");
        agg.agent_key("bob");
        let events = [
            MetricEvent::AgentState { at: 0.0, agent: ann, state: AgentActivity::Away },
            MetricEvent::AgentLoad { at: 0.0, agent: ann, used: 2, capacity: 5, tasks: 1 },
            MetricEvent::Arrived { at: 1.0, task: 1, queue, channel },
        ];
        agg.record_batch(&events).unwrap();
        agg
    }

    #[test]
    fn a_scoped_snapshot_leaves_out_whole_kinds_but_not_overall() {
        let mut agg = aggregator();
        let scoped = agg.snapshot_scoped(2.0, SnapshotScope::QUEUES_AND_CHANNELS).unwrap();
        assert!(scoped.agents.is_empty());
        assert_eq!(scoped.queues.keys().collect::<Vec<_>>(), ["billing"]);
        let full = agg.snapshot(2.0).unwrap();
        assert_eq!(full.agents.keys().collect::<Vec<_>>(), ["ann", "bob"]);
        // Overall, queues and channels do not depend on the scope.
        assert_eq!(scoped.overall, full.overall);
        assert_eq!(scoped.queues, full.queues);
        assert_eq!(SnapshotScope::default(), SnapshotScope::ALL);
    }

    #[test]
    fn a_team_sums_its_agents_and_derives_its_figures_from_the_sums() {
        let config = MetricsConfig { interval_seconds: 60, ..MetricsConfig::default() };
        let mut agg = Aggregator::new(config).unwrap();
        let (queue, channel) = (agg.queue_key("billing"), agg.channel_key("chat"));
        let (ann, bob, cat) = (agg.agent_key("ann"), agg.agent_key("bob"), agg.agent_key("cat"));
        let mut events = Vec::new();
        // Interval 0 (closed by the end): ann answers after 5 s, bob after 40 s.
        // Interval 1 (current): ann answers one after 10 s; cat (not in the team) one after 2 s.
        for (task, agent, at, wait, talk) in
            [(1, ann, 10.0, 5.0, 20.0), (2, bob, 50.0, 40.0, 5.0), (3, ann, 70.0, 10.0, 8.0), (4, cat, 75.0, 2.0, 1.0)]
        {
            events.push(MetricEvent::AgentState { at: at - wait, agent, state: AgentActivity::Available });
            events.push(MetricEvent::Arrived { at: at - wait, task, queue, channel });
            events.push(MetricEvent::Answered { at, task, queue, channel, agent, wait });
            events.push(MetricEvent::Talk { at: at + 1.0, task, queue, channel, agent, seconds: talk });
            events.push(MetricEvent::Completed { at: at + 1.0, task, queue, channel, agent });
        }
        events.sort_by(|a, b| a.at().total_cmp(&b.at()));
        agg.record_batch(&events).unwrap();
        let team = agg.group_intervals(&["ann", "bob", "ann", "nobody"], 0.0, f64::INFINITY).unwrap();
        assert_eq!(team.len(), 2);
        let [first, second] = [&team[0].stats, &team[1].stats];
        assert_eq!((first.answered, first.completed), (2, 2));
        assert_eq!(first.asa, Some(22.5), "(5 + 40) / 2, a ratio of the sums");
        assert_eq!(first.average_talk, Some(12.5));
        assert_eq!((second.answered, second.asa), (1, Some(10.0)), "cat's answer is not the team's");
        // One agent's group is that agent's own report, percentiles included.
        for name in ["ann", "bob"] {
            let alone = agg.group_intervals(&[name], 0.0, f64::INFINITY).unwrap();
            assert_eq!(alone, agg.intervals(DimensionKind::Agent, name, 0.0, f64::INFINITY).unwrap(), "{name}");
        }
        // The agents' time adds up too.
        let time = |name| agg.intervals(DimensionKind::Agent, name, 0.0, 60.0).unwrap()[0].stats.logged_in_seconds;
        assert!((first.logged_in_seconds - (time("ann") + time("bob"))).abs() < 1e-9);
        assert!(first.logged_in_seconds > 0.0);
        assert!(agg.group_intervals(&[], 0.0, f64::NAN).is_err());
        assert!(agg.group_intervals(&[], 0.0, 1e9).unwrap().iter().all(|i| i.stats.answered == 0));
    }

    #[test]
    fn staffing_counts_states_and_the_capacity_of_agents_logged_in() {
        let mut agg = aggregator();
        let snapshot = agg.snapshot(2.0).unwrap();
        let ann = StaffingNow { away: 1, capacity_used: 2, capacity_free: 3, tasks_held: 1, ..StaffingNow::default() };
        assert_eq!(snapshot.agents["ann"].staffing, Some(ann));
        assert_eq!(snapshot.agents["bob"].staffing, Some(StaffingNow { offline: 1, ..StaffingNow::default() }));
        assert_eq!(snapshot.overall.staffing, Some(StaffingNow { offline: 1, ..ann }));
        assert_eq!(snapshot.queues["billing"].staffing, None);
        assert_eq!(snapshot.queues["billing"].waiting, Some(WaitingNow { contacts: 1, longest_wait: Some(1.0) }));
        assert_eq!(snapshot.agents["ann"].waiting, None);
    }
}
