//! The incremental aggregator against a naive recount over the stored events, and window/interval edge cases.

// Figures are compared exactly: both sides sum the same integer microseconds.
#![allow(clippy::float_cmp)]

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::agent_time::{AgentTime, Rates, TimeClass};
use super::counts::Counts;
use super::dimension::DimRef;
use super::histogram::{bucket_of, WaitHistogram};
use super::time::{to_micros, Micros};
use super::*;
use MetricEvent as E;

const QUEUES: u32 = 2;
const CHANNELS: u32 = 2;
const AGENTS: u32 = 2;

fn config() -> MetricsConfig {
    let mut config = MetricsConfig {
        interval_seconds: 300,
        windows: vec![120, 300],
        window_slot_seconds: 60,
        service_level_threshold: 20.0,
        short_abandon_seconds: 5.0,
        intervals_retained: 3,
        ..MetricsConfig::default()
    };
    config.queue_thresholds.insert("q1".into(), 10.0);
    config
}

fn aggregator() -> Aggregator {
    let mut agg = Aggregator::new(config()).unwrap();
    for i in 0..QUEUES {
        agg.queue_key(&format!("q{i}"));
    }
    for i in 0..CHANNELS {
        agg.channel_key(&format!("c{i}"));
    }
    for i in 0..AGENTS {
        agg.agent_key(&format!("a{i}"));
    }
    agg
}

/// The obviously-correct model: look at every stored event, keep those in range, count.
struct Naive<'a> {
    config: MetricsConfig,
    events: &'a [MetricEvent],
}

impl Naive<'_> {
    fn threshold(&self, queue: u32) -> u64 {
        to_micros(
            self.config
                .queue_thresholds
                .get(&format!("q{queue}"))
                .copied()
                .unwrap_or(self.config.service_level_threshold),
        ) as u64
    }

    /// Whether an event touching `queue`, `channel` and `agent` counts for `dim`.
    fn touches(dim: DimRef, queue: u32, channel: u32, agent: Option<u32>) -> bool {
        match dim.kind {
            DimensionKind::Overall => true,
            DimensionKind::Queue => dim.key == queue,
            DimensionKind::Channel => dim.key == channel,
            DimensionKind::Agent => agent == Some(dim.key),
        }
    }

    /// The figures of `dim` over events with `from <= at < to`, agent time over `[from, min(to, now)]`.
    fn stats(&self, dim: DimRef, from: Micros, to: Micros, now: Micros) -> Stats {
        let mut c = Counts::default();
        let mut waits = WaitHistogram::default();
        for event in self.events {
            let at = to_micros(event.at());
            if at >= from && at < to {
                self.count(dim, event, &mut c, &mut waits);
            }
        }
        let time = match dim.kind {
            DimensionKind::Overall => (0..AGENTS).fold(AgentTime::default(), |mut sum, agent| {
                sum.add(&self.agent_time(agent, from, to.min(now)));
                sum
            }),
            DimensionKind::Agent => self.agent_time(dim.key, from, to.min(now)),
            _ => AgentTime::default(),
        };
        let [p50, p90, p99] = waits.percentiles([50, 90, 99]);
        Stats::compute(&c, [p50, p90, p99], &time)
    }

    /// Counts one event into `c` and `waits` if it touches `dim`.
    fn count(&self, dim: DimRef, event: &MetricEvent, c: &mut Counts, waits: &mut WaitHistogram) {
        {
            match *event {
                E::Arrived { queue, channel, .. } if Self::touches(dim, queue, channel, None) => {
                    c.offered += 1;
                }
                E::Answered { queue, channel, agent, wait, .. } if Self::touches(dim, queue, channel, Some(agent)) => {
                    let wait = to_micros(wait) as u64;
                    c.answered += 1;
                    c.answered_wait += wait;
                    if wait <= self.threshold(queue) {
                        c.answered_within += 1;
                    }
                    waits.add(bucket_of(wait));
                }
                E::Abandoned { queue, channel, wait, .. } if Self::touches(dim, queue, channel, None) => {
                    let wait = to_micros(wait) as u64;
                    c.abandoned += 1;
                    c.abandoned_wait += wait;
                    if wait < to_micros(self.config.short_abandon_seconds) as u64 {
                        c.short_abandoned += 1;
                    } else if wait <= self.threshold(queue) {
                        c.abandoned_within += 1;
                    }
                }
                E::Transferred { queue, channel, agent, .. } if Self::touches(dim, queue, channel, agent) => {
                    c.transferred += 1;
                }
                E::Completed { queue, channel, agent, .. } if Self::touches(dim, queue, channel, Some(agent)) => {
                    c.completed += 1;
                }
                E::Talk { queue, channel, agent, seconds, .. } if Self::touches(dim, queue, channel, Some(agent)) => {
                    c.talk += to_micros(seconds) as u64;
                }
                E::Hold { queue, channel, agent, seconds, .. } if Self::touches(dim, queue, channel, Some(agent)) => {
                    c.hold += to_micros(seconds) as u64;
                }
                E::WrapUp { queue, channel, agent, seconds, .. } if Self::touches(dim, queue, channel, Some(agent)) => {
                    c.wrap_up += to_micros(seconds) as u64;
                }
                E::Disposition { queue, channel, agent, resolved, .. }
                    if Self::touches(dim, queue, channel, Some(agent)) =>
                {
                    c.dispositions += 1;
                    c.resolved += u64::from(resolved);
                }
                E::Csat { queue, channel, agent, score, .. } if Self::touches(dim, queue, channel, agent) => {
                    c.csat_responses += 1;
                    c.csat_sum += to_micros(score);
                }
                _ => {}
            }
        }
    }

    /// The agent's time inside `[from, to]`, stepping through its state changes.
    fn agent_time(&self, agent: u32, from: Micros, to: Micros) -> AgentTime {
        let mut time = AgentTime::default();
        let (mut activity, mut tasks) = (AgentActivity::Offline, 0);
        let mut since = Micros::MIN;
        let mut accrue = |start: Micros, end: Micros, activity, tasks| {
            let (start, end) = (start.max(from), end.min(to));
            let class = TimeClass::of(activity, tasks);
            // Offline time counts toward nothing (and may start at the beginning of time).
            if end > start && class != TimeClass::default() {
                time.accrue(Rates::of(class), (end - start) as u64);
            }
        };
        for event in self.events {
            let at = to_micros(event.at());
            match *event {
                MetricEvent::AgentState { agent: a, state, .. } if a == agent => {
                    accrue(since, at, activity, tasks);
                    (since, activity) = (at, state);
                }
                MetricEvent::AgentLoad { agent: a, tasks: t, .. } if a == agent => {
                    accrue(since, at, activity, tasks);
                    (since, tasks) = (at, t);
                }
                _ => {}
            }
        }
        accrue(since, to, activity, tasks);
        time
    }

    /// Contacts waiting at the end, replaying the documented rules with a map.
    fn waiting(&self, dim: DimRef, now: Micros) -> Option<WaitingNow> {
        if dim.kind == DimensionKind::Agent {
            return None;
        }
        // task -> (original arrival, waiting in (queue, channel))
        let mut tasks: BTreeMap<u64, (Micros, Option<(u32, u32)>)> = BTreeMap::new();
        for event in self.events {
            let at = to_micros(event.at());
            match *event {
                E::Arrived { task, queue, channel, .. } => {
                    let entry = tasks.entry(task).or_insert((at, None));
                    entry.1 = Some((queue, channel));
                }
                E::Answered { task, .. } | E::Transferred { task, .. } => {
                    if let Some(entry) = tasks.get_mut(&task) {
                        entry.1 = None;
                    }
                }
                E::Abandoned { task, .. } => {
                    tasks.remove(&task);
                }
                E::Completed { task, .. } if tasks.get(&task).is_some_and(|entry| entry.1.is_none()) => {
                    tasks.remove(&task);
                }
                _ => {}
            }
        }
        let waiting: Vec<Micros> = tasks
            .values()
            .filter_map(|&(arrived, waiting)| {
                let (queue, channel) = waiting?;
                Self::touches(dim, queue, channel, None).then_some(arrived)
            })
            .collect();
        Some(WaitingNow {
            contacts: waiting.len() as u64,
            longest_wait: waiting.iter().min().map(|&arrived| (now - arrived) as f64 / 1e6),
        })
    }
}

fn all_dims() -> Vec<(DimRef, String)> {
    let mut dims = vec![(DimRef::OVERALL, String::new())];
    dims.extend((0..QUEUES).map(|k| (DimRef::queue(k), format!("q{k}"))));
    dims.extend((0..CHANNELS).map(|k| (DimRef::channel(k), format!("c{k}"))));
    dims.extend((0..AGENTS).map(|k| (DimRef::agent(k), format!("a{k}"))));
    dims
}

fn dimension<'s>(snapshot: &'s MetricsSnapshot, dim: DimRef, name: &str) -> &'s DimensionSnapshot {
    match dim.kind {
        DimensionKind::Overall => &snapshot.overall,
        DimensionKind::Queue => &snapshot.queues[name],
        DimensionKind::Channel => &snapshot.channels[name],
        DimensionKind::Agent => &snapshot.agents[name],
    }
}

/// Checks a snapshot at `now` and the interval reports against the naive recount of `events`.
fn check_against_naive(agg: &mut Aggregator, events: &[MetricEvent], now: f64) -> Result<(), TestCaseError> {
    let naive = Naive { config: config(), events };
    let snapshot = agg.snapshot(now).unwrap();
    let t = to_micros(now);
    let end = t + 1; // events at `now` are inside
    for (dim, name) in all_dims() {
        let got = dimension(&snapshot, dim, &name);
        prop_assert_eq!(&got.since_start, &naive.stats(dim, Micros::MIN, end, t), "since start of {:?}", dim);
        let interval_start = to_micros(snapshot.interval_start);
        prop_assert_eq!(
            &got.current_interval,
            &naive.stats(dim, interval_start, end, t),
            "current interval of {:?}",
            dim
        );
        for (w, span) in snapshot.windows.iter().enumerate() {
            let start = to_micros(span.start);
            prop_assert_eq!(
                &got.windows[w].stats,
                &naive.stats(dim, start, end, t),
                "window {} of {:?}",
                span.seconds,
                dim
            );
        }
        prop_assert_eq!(got.waiting, naive.waiting(dim, t), "waiting in {:?}", dim);
        let history = agg.intervals(dim.kind, &name, f64::NEG_INFINITY, f64::INFINITY).unwrap();
        prop_assert!(history.len() <= 4, "3 past intervals and the current one at most");
        for interval in history {
            let start = to_micros(interval.start);
            let expected = naive.stats(dim, start, start + 300_000_000, t);
            prop_assert_eq!(&interval.stats, &expected, "interval at {} of {:?}", interval.start, dim);
        }
    }
    Ok(())
}

/// Random events over 2 queues, 2 channels and 2 agents, seconds apart, crossing many slots and intervals.
// One arm per event type.
#[allow(clippy::too_many_lines)]
fn events() -> impl Strategy<Value = Vec<MetricEvent>> {
    let step =
        (0_u64..90_000, 0_u8..12, 0_u64..5, 0..QUEUES, 0..CHANNELS, 0..AGENTS, 0_u64..40_000, any::<bool>(), 0_u32..3);
    prop::collection::vec(step, 1..120).prop_map(|steps| {
        let mut at_ms = 0_u64;
        steps
            .into_iter()
            .map(|(gap_ms, kind, task, queue, channel, agent, amount_ms, flag, tasks)| {
                at_ms += gap_ms;
                let at = at_ms as f64 / 1000.0;
                let amount = amount_ms as f64 / 1000.0;
                let some_agent = flag.then_some(agent);
                match kind {
                    0 | 1 => MetricEvent::Arrived { at, task, queue, channel },
                    2 => MetricEvent::Answered { at, task, queue, channel, agent, wait: amount },
                    3 => MetricEvent::Abandoned { at, task, queue, channel, wait: amount / 4.0 },
                    4 => MetricEvent::Transferred { at, task, queue, channel, agent: some_agent },
                    5 => MetricEvent::Completed { at, task, queue, channel, agent },
                    6 => MetricEvent::Talk { at, task, queue, channel, agent, seconds: amount },
                    7 => MetricEvent::Hold { at, task, queue, channel, agent, seconds: amount },
                    8 => MetricEvent::WrapUp { at, task, queue, channel, agent, seconds: amount },
                    9 if flag => {
                        MetricEvent::Disposition { at, task, queue, channel, agent, resolved: amount_ms % 2 == 0 }
                    }
                    9 => MetricEvent::Csat { at, task, queue, channel, agent: Some(agent), score: amount / 8_000.0 },
                    10 => MetricEvent::AgentState {
                        at,
                        agent,
                        state: [
                            AgentActivity::Offline,
                            AgentActivity::Available,
                            AgentActivity::Away,
                            AgentActivity::NotResponding,
                            AgentActivity::WrapUp,
                        ][(amount_ms % 5) as usize],
                    },
                    _ => MetricEvent::AgentLoad { at, agent, used: tasks, capacity: 2 + tasks, tasks },
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// The running totals of every window, the current interval, the retained
    /// intervals and since-start equal a recount over the events inside them,
    /// at a snapshot in the middle of the stream and at one after it.
    #[test]
    fn incremental_figures_equal_a_naive_recount(events in events(), split in any::<prop::sample::Index>(), extra_ms in 0_u64..700_000) {
        let mut agg = aggregator();
        let split = split.index(events.len());
        agg.record_batch(&events[..split]).unwrap();
        // A snapshot at the next event's time (the snapshot's `now` becomes the clock).
        let middle = events.get(split).map_or(0.0, MetricEvent::at);
        let middle = middle.max(agg.last_time().unwrap_or(middle));
        check_against_naive(&mut agg, &events[..split], middle)?;
        agg.record_batch(&events[split..]).unwrap();
        let now = agg.last_time().unwrap() + extra_ms as f64 / 1000.0;
        check_against_naive(&mut agg, &events, now)?;
        // And the same after a save and restore.
        let mut restored = Aggregator::from_bytes(&agg.to_bytes().unwrap()).unwrap();
        check_against_naive(&mut restored, &events, now)?;
    }
}

fn offered(agg: &mut Aggregator, at: f64) {
    agg.record(&MetricEvent::Arrived { at, task: 0, queue: 0, channel: 0 }).unwrap();
}

#[test]
fn events_leave_a_window_when_it_moves_past_their_slot() {
    let mut agg = aggregator();
    // Slots are one minute; the 120 s window is the current slot and the one before.
    offered(&mut agg, 59.999);
    offered(&mut agg, 60.0);
    offered(&mut agg, 119.0);
    let at = |agg: &mut Aggregator, now: f64| {
        let snapshot = agg.snapshot(now).unwrap();
        (snapshot.windows[0].start, snapshot.overall.windows[0].stats.offered)
    };
    assert_eq!(at(&mut agg, 119.5), (0.0, 3));
    // At 120 s slot 0 (0-60 s) has left: only the events at 60 and 119 s remain.
    assert_eq!(at(&mut agg, 120.0), (60.0, 2));
    assert_eq!(at(&mut agg, 179.999), (60.0, 2));
    assert_eq!(at(&mut agg, 180.0), (120.0, 0));
    // The 300 s window still has them all, until 300 s.
    let snapshot = agg.snapshot(299.0).unwrap();
    assert_eq!(snapshot.overall.windows[1].stats.offered, 3);
    let snapshot = agg.snapshot(300.0).unwrap();
    assert_eq!(snapshot.overall.windows[1].stats.offered, 2);
}

#[test]
fn interval_boundaries_belong_to_the_interval_they_start() {
    let mut agg = aggregator();
    offered(&mut agg, 299.999_999);
    offered(&mut agg, 300.0);
    let snapshot = agg.snapshot(300.0).unwrap();
    assert_eq!(snapshot.interval_start, 300.0);
    assert_eq!(snapshot.overall.current_interval.offered, 1);
    let history = agg.intervals(DimensionKind::Overall, "", 0.0, 600.0).unwrap();
    let counts: Vec<(f64, u64)> = history.iter().map(|i| (i.start, i.stats.offered)).collect();
    assert_eq!(counts, vec![(0.0, 1), (300.0, 1)]);
    // `from` is inclusive, `to` exclusive, both on interval starts.
    assert_eq!(agg.intervals(DimensionKind::Overall, "", 0.1, 600.0).unwrap().len(), 1);
    assert_eq!(agg.intervals(DimensionKind::Overall, "", 0.0, 300.0).unwrap().len(), 1);
    assert!(agg.intervals(DimensionKind::Overall, "", 301.0, 200.0).unwrap().is_empty());
    assert!(matches!(
        agg.intervals(DimensionKind::Overall, "", f64::NAN, 1.0),
        Err(MetricsError::InvalidValue { field: "from", .. })
    ));
    // Negative times align the same way (floor, not truncation).
    let mut agg = aggregator();
    offered(&mut agg, -0.5);
    assert_eq!(agg.snapshot(-0.5).unwrap().interval_start, -300.0);
}

#[test]
fn only_the_configured_number_of_past_intervals_is_retained() {
    let mut agg = aggregator();
    let a0 = 0;
    agg.record(&MetricEvent::AgentState { at: 0.0, agent: a0, state: AgentActivity::Available }).unwrap();
    for i in 0..10 {
        offered(&mut agg, f64::from(i) * 300.0 + 1.0);
    }
    // Current interval 9 (2700-3000 s); 3 retained: 6, 7, 8.
    let history = agg.intervals(DimensionKind::Queue, "q0", f64::NEG_INFINITY, f64::INFINITY).unwrap();
    let starts: Vec<f64> = history.iter().map(|i| i.start).collect();
    assert_eq!(starts, vec![1800.0, 2100.0, 2400.0, 2700.0]);
    assert!(history.iter().all(|i| i.stats.offered == 1));
    // The agent was available throughout each retained interval.
    let agent = agg.intervals(DimensionKind::Agent, "a0", 1800.0, 2700.0).unwrap();
    assert!(agent.iter().all(|i| (i.stats.available_idle_seconds - 300.0).abs() < 1e-9));
    // A jump of a day keeps the last 3 intervals of the jump, agent time included, and nothing older.
    agg.record(&MetricEvent::Arrived { at: 86_400.0, task: 1, queue: 0, channel: 0 }).unwrap();
    let history = agg.intervals(DimensionKind::Agent, "a0", f64::NEG_INFINITY, f64::INFINITY).unwrap();
    let starts: Vec<f64> = history.iter().map(|i| i.start).collect();
    assert_eq!(starts, vec![85_500.0, 85_800.0, 86_100.0, 86_400.0]);
    assert!(history[..3].iter().all(|i| (i.stats.logged_in_seconds - 300.0).abs() < 1e-9));
    assert_eq!(history[3].stats.logged_in_seconds, 0.0);
    let snapshot = agg.snapshot(86_400.0).unwrap();
    assert_eq!(snapshot.overall.since_start.offered, 11);
    assert!((snapshot.agents["a0"].since_start.logged_in_seconds - 86_400.0).abs() < 1e-9);
    assert_eq!(snapshot.overall.windows[1].stats.offered, 1);
}

#[test]
fn snapshots_move_the_clock_and_refuse_the_past() {
    let mut agg = aggregator();
    offered(&mut agg, 10.0);
    agg.snapshot(50.0).unwrap();
    assert_eq!(agg.last_time(), Some(50.0));
    assert_eq!(
        agg.record(&MetricEvent::Arrived { at: 40.0, task: 1, queue: 0, channel: 0 }),
        Err(MetricsError::TimeWentBackwards { event: "arrived", at: 40.0, last: 50.0 })
    );
    assert!(matches!(agg.snapshot(49.0), Err(MetricsError::TimeWentBackwards { event: "snapshot", .. })));
    assert!(matches!(agg.snapshot(f64::NAN), Err(MetricsError::InvalidValue { event: "snapshot", field: "now", .. })));
    // A snapshot before any event works and reports nothing.
    let mut empty = aggregator();
    let snapshot = empty.snapshot(0.0).unwrap();
    assert_eq!(snapshot.overall.since_start, Stats::default());
    assert_eq!(snapshot.queues.len(), 2);
    assert_eq!(snapshot.overall.waiting, Some(WaitingNow { contacts: 0, longest_wait: None }));
}
