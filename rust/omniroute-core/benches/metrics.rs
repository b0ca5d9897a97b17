//! Metrics aggregation throughput, and the incremental snapshot against a naive recompute from the stored events.
//!
//! The stream: 1,000 queues, 10 channels and 5,000 agents handling about 15
//! contacts a second (arrivals, answers, abandons, transfers, talk/hold/wrap-up
//! segments, dispositions, CSAT, agent states and loads), about 1.7 hours of
//! traffic in one million events. Groups:
//! - `metrics_record`: `record_batch` alone (events/s), and the incremental
//!   path to a wallboard (`record_batch` then `snapshot`);
//! - `metrics_snapshot`: one wallboard refresh (the last second's events,
//!   then a snapshot) against the naive baseline that keeps the events and
//!   recomputes the same wallboard from every one of them.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use omniroute_core::metrics::{AgentActivity, Aggregator, MetricEvent, MetricsConfig, MetricsSnapshot, SnapshotScope};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

const QUEUES: u32 = 1_000;
const CHANNELS: u32 = 10;
const AGENTS: u32 = 5_000;
const EVENTS: usize = 1_000_000;
const CONTACTS_PER_SECOND: f64 = 15.0;

/// A fresh aggregator with every name interned (keys 0..n in order).
fn empty_aggregator() -> Aggregator {
    let mut metrics = Aggregator::new(MetricsConfig::default()).expect("default configuration");
    for q in 0..QUEUES {
        metrics.queue_key(&format!("queue-{q:04}"));
    }
    for c in 0..CHANNELS {
        metrics.channel_key(&format!("channel-{c:02}"));
    }
    for a in 0..AGENTS {
        metrics.agent_key(&format!("agent-{a:04}"));
    }
    metrics
}

/// A deterministic, time-ordered stream of about `EVENTS` events.
// One contact's life, top to bottom: long, but read in one go.
#[allow(clippy::too_many_lines)]
fn stream() -> Vec<MetricEvent> {
    let mut rng = Pcg64::seed_from_u64(7);
    let mut events: Vec<MetricEvent> = Vec::with_capacity(EVENTS + 1_000);
    for agent in 0..AGENTS {
        events.push(MetricEvent::AgentState { at: 0.0, agent, state: AgentActivity::Available });
        events.push(MetricEvent::AgentLoad { at: 0.0, agent, used: 0, capacity: 3, tasks: 0 });
    }
    let mut arrival = 0.0_f64;
    let mut task = 0_u64;
    let mut next_agent = 0_u32;
    while events.len() < EVENTS {
        arrival += -(1.0 - rng.gen::<f64>()).ln() / CONTACTS_PER_SECOND;
        task += 1;
        let queue = rng.gen_range(0..QUEUES);
        let channel = rng.gen_range(0..CHANNELS);
        events.push(MetricEvent::Arrived { at: arrival, task, queue, channel });
        let wait = rng.gen_range(0.0..60.0);
        let at = arrival + wait;
        if rng.gen_bool(0.08) {
            events.push(MetricEvent::Abandoned { at, task, queue, channel, wait });
            continue;
        }
        let agent = next_agent;
        next_agent = (next_agent + 1) % AGENTS;
        events.push(MetricEvent::Answered { at, task, queue, channel, agent, wait });
        events.push(MetricEvent::AgentLoad { at, agent, used: 1, capacity: 3, tasks: 1 });
        let talk_seconds = rng.gen_range(60.0..400.0);
        let hold = if rng.gen_bool(0.3) { rng.gen_range(5.0..60.0) } else { 0.0 };
        let end = at + talk_seconds + hold;
        events.push(MetricEvent::Talk { at: end, task, queue, channel, agent, seconds: talk_seconds });
        if hold > 0.0 {
            events.push(MetricEvent::Hold { at: end, task, queue, channel, agent, seconds: hold });
        }
        if rng.gen_bool(0.05) {
            events.push(MetricEvent::Transferred { at: end, task, queue, channel, agent: Some(agent) });
        }
        events.push(MetricEvent::AgentLoad { at: end, agent, used: 0, capacity: 3, tasks: 0 });
        events.push(MetricEvent::AgentState { at: end, agent, state: AgentActivity::WrapUp });
        let wrap_up = rng.gen_range(10.0..60.0);
        let done = end + wrap_up;
        events.push(MetricEvent::WrapUp { at: done, task, queue, channel, agent, seconds: wrap_up });
        events.push(MetricEvent::Disposition { at: done, task, queue, channel, agent, resolved: rng.gen_bool(0.7) });
        events.push(MetricEvent::Completed { at: done, task, queue, channel, agent });
        events.push(MetricEvent::AgentState { at: done, agent, state: AgentActivity::Available });
        if rng.gen_bool(0.2) {
            let score = f64::from(rng.gen_range(1_u8..=5));
            events.push(MetricEvent::Csat { at: done + 30.0, task, queue, channel, agent: Some(agent), score });
        }
    }
    // Stable: events of one contact at the same moment keep their order.
    events.sort_by(|a, b| a.at().total_cmp(&b.at()));
    events
}

/// The naive baseline: no running state, every figure recomputed from the stored events.
mod naive {
    use super::{AgentActivity, MetricEvent, AGENTS, CHANNELS, QUEUES};

    /// The figures of one dimension over one span, as the incremental snapshot reports them.
    #[derive(Clone, Default)]
    pub struct Figures {
        pub offered: u64,
        pub answered: u64,
        pub answered_within: u64,
        pub abandoned: u64,
        pub short_abandoned: u64,
        pub abandoned_within: u64,
        pub transferred: u64,
        pub completed: u64,
        pub dispositions: u64,
        pub resolved: u64,
        pub csat_responses: u64,
        pub csat_sum: f64,
        pub waits: Vec<f64>,
        pub abandon_wait: f64,
        pub talk: f64,
        pub hold: f64,
        pub wrap_up: f64,
        pub handling: f64,
        pub idle: f64,
        pub logged_in: f64,
        pub derived: Vec<Option<f64>>,
    }

    fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
        (denominator != 0.0).then(|| numerator / denominator)
    }

    impl Figures {
        fn derive(&mut self) {
            let sl_events = (self.answered + self.abandoned - self.short_abandoned) as f64;
            self.waits.sort_by(f64::total_cmp);
            let n = self.waits.len();
            let rank = |p: usize| (n > 0).then(|| self.waits[((n * p).div_ceil(100)).max(1) - 1]);
            let (p50, p90, p99) = (rank(50), rank(90), rank(99));
            let wait: f64 = self.waits.iter().sum();
            let completed = self.completed as f64;
            self.derived = vec![
                ratio(self.answered_within as f64, self.answered as f64),
                ratio(self.answered_within as f64, sl_events - self.abandoned_within as f64),
                ratio(self.answered_within as f64, sl_events),
                ratio((self.answered_within + self.abandoned_within) as f64, sl_events),
                ratio((self.abandoned - self.short_abandoned) as f64, sl_events),
                ratio(wait, self.answered as f64),
                ratio(self.abandon_wait, self.abandoned as f64),
                p50,
                p90,
                p99,
                ratio(self.talk + self.hold + self.wrap_up, completed),
                ratio(self.talk, completed),
                ratio(self.hold, completed),
                ratio(self.wrap_up, completed),
                ratio(self.handling, self.handling + self.idle),
                ratio(self.handling, self.logged_in),
                ratio(self.transferred as f64, self.answered as f64),
                ratio(self.resolved as f64, self.dispositions as f64),
                ratio(self.csat_sum, self.csat_responses as f64),
            ];
        }
    }

    /// Per dimension: overall, queues, channels, agents.
    pub struct Span {
        pub overall: Figures,
        pub queues: Vec<Figures>,
        pub channels: Vec<Figures>,
        pub agents: Vec<Figures>,
    }

    /// Every span of the wallboard: since start, current interval, each window.
    pub struct Wallboard {
        pub spans: Vec<Span>,
        pub waiting: Vec<(u64, Option<f64>)>,
    }

    /// Adds `seconds` of an agent's time in state `(activity, tasks)`.
    fn accrue(f: &mut Figures, (activity, tasks): (AgentActivity, u32), seconds: f64) {
        if seconds <= 0.0 || activity == AgentActivity::Offline {
            return;
        }
        f.logged_in += seconds;
        if tasks > 0 || activity == AgentActivity::WrapUp {
            f.handling += seconds;
        }
        if activity == AgentActivity::Available && tasks == 0 {
            f.idle += seconds;
        }
    }

    /// Counts one contact event into `f`.
    fn count(f: &mut Figures, event: &MetricEvent) {
        match *event {
            MetricEvent::Arrived { .. } => f.offered += 1,
            MetricEvent::Answered { wait, .. } => {
                f.answered += 1;
                f.answered_within += u64::from(wait <= 20.0);
                f.waits.push(wait);
            }
            MetricEvent::Abandoned { wait, .. } => {
                f.abandoned += 1;
                f.abandon_wait += wait;
                if wait < 5.0 {
                    f.short_abandoned += 1;
                } else if wait <= 20.0 {
                    f.abandoned_within += 1;
                }
            }
            MetricEvent::Transferred { .. } => f.transferred += 1,
            MetricEvent::Completed { .. } => f.completed += 1,
            MetricEvent::Talk { seconds, .. } => f.talk += seconds,
            MetricEvent::Hold { seconds, .. } => f.hold += seconds,
            MetricEvent::WrapUp { seconds, .. } => f.wrap_up += seconds,
            MetricEvent::Disposition { resolved, .. } => {
                f.dispositions += 1;
                f.resolved += u64::from(resolved);
            }
            MetricEvent::Csat { score, .. } => {
                f.csat_responses += 1;
                f.csat_sum += score;
            }
            MetricEvent::AgentState { .. } | MetricEvent::AgentLoad { .. } => {}
        }
    }

    /// Recounts the events with `at >= from` (and agent time from `from` to `now`).
    #[allow(clippy::too_many_lines)] // the whole recount in one place, on purpose
    fn span(events: &[MetricEvent], from: f64, now: f64) -> Span {
        let mut s = Span {
            overall: Figures::default(),
            queues: vec![Figures::default(); QUEUES as usize],
            channels: vec![Figures::default(); CHANNELS as usize],
            agents: vec![Figures::default(); AGENTS as usize],
        };
        let mut agent_since = vec![from; AGENTS as usize];
        let mut agent_state = vec![(AgentActivity::Offline, 0_u32); AGENTS as usize];
        for event in events {
            if let MetricEvent::AgentState { at, agent, .. } | MetricEvent::AgentLoad { at, agent, .. } = *event {
                let a = agent as usize;
                accrue(&mut s.agents[a], agent_state[a], at - agent_since[a].max(from));
                agent_since[a] = at;
                match *event {
                    MetricEvent::AgentState { state, .. } => agent_state[a].0 = state,
                    MetricEvent::AgentLoad { tasks, .. } => agent_state[a].1 = tasks,
                    _ => {}
                }
                continue;
            }
            if event.at() < from {
                continue;
            }
            let (queue, channel, agent) = match *event {
                MetricEvent::Arrived { queue, channel, .. } | MetricEvent::Abandoned { queue, channel, .. } => {
                    (queue, channel, None)
                }
                MetricEvent::Answered { queue, channel, agent, .. }
                | MetricEvent::Completed { queue, channel, agent, .. }
                | MetricEvent::Talk { queue, channel, agent, .. }
                | MetricEvent::Hold { queue, channel, agent, .. }
                | MetricEvent::WrapUp { queue, channel, agent, .. }
                | MetricEvent::Disposition { queue, channel, agent, .. } => (queue, channel, Some(agent)),
                MetricEvent::Transferred { queue, channel, agent, .. }
                | MetricEvent::Csat { queue, channel, agent, .. } => (queue, channel, agent),
                _ => continue,
            };
            count(&mut s.overall, event);
            count(&mut s.queues[queue as usize], event);
            count(&mut s.channels[channel as usize], event);
            if let Some(agent) = agent {
                count(&mut s.agents[agent as usize], event);
            }
        }
        for (a, f) in s.agents.iter_mut().enumerate() {
            accrue(f, agent_state[a], now - agent_since[a].max(from));
            s.overall.handling += f.handling;
            s.overall.idle += f.idle;
            s.overall.logged_in += f.logged_in;
        }
        for f in std::iter::once(&mut s.overall).chain(&mut s.queues).chain(&mut s.channels).chain(&mut s.agents) {
            f.derive();
        }
        s
    }

    /// Recomputes the wallboard at `now` from every stored event.
    pub fn recompute(events: &[MetricEvent], now: f64, interval_start: f64, window_starts: &[f64]) -> Wallboard {
        let mut spans = vec![span(events, f64::NEG_INFINITY, now), span(events, interval_start, now)];
        spans.extend(window_starts.iter().map(|&start| span(events, start, now)));
        // Contacts waiting now, per queue: replay arrivals and their ends.
        let mut waiting_since = std::collections::HashMap::new();
        for event in events {
            match *event {
                MetricEvent::Arrived { at, task, queue, .. } => {
                    let original = waiting_since.get(&task).map_or(at, |&(original, _)| original);
                    waiting_since.insert(task, (original, Some(queue)));
                }
                MetricEvent::Answered { task, .. } | MetricEvent::Transferred { task, .. } => {
                    if let Some(entry) = waiting_since.get_mut(&task) {
                        entry.1 = None;
                    }
                }
                MetricEvent::Abandoned { task, .. } => {
                    waiting_since.remove(&task);
                }
                MetricEvent::Completed { task, .. }
                    if waiting_since.get(&task).is_some_and(|&(_, queue)| queue.is_none()) =>
                {
                    waiting_since.remove(&task);
                }
                _ => {}
            }
        }
        let mut waiting = vec![(0_u64, None::<f64>); QUEUES as usize];
        for &(original, queue) in waiting_since.values() {
            if let Some(queue) = queue {
                let slot = &mut waiting[queue as usize];
                slot.0 += 1;
                slot.1 = Some(slot.1.map_or(now - original, |longest: f64| longest.max(now - original)));
            }
        }
        Wallboard { spans, waiting }
    }
}

/// The naive recompute must report the same counts as the snapshot, or the comparison means nothing.
fn assert_same_figures(snapshot: &MetricsSnapshot, wallboard: &naive::Wallboard) {
    for q in 0..QUEUES {
        let incremental = &snapshot.queues[&format!("queue-{q:04}")];
        let recount = |span: usize| &wallboard.spans[span].queues[q as usize];
        let spans = [
            &incremental.since_start,
            &incremental.current_interval,
            &incremental.windows[0].stats,
            &incremental.windows[1].stats,
        ];
        for (span, stats) in spans.into_iter().enumerate() {
            let naive = recount(span);
            assert_eq!(
                (stats.offered, stats.answered, stats.abandoned, stats.completed, stats.transferred),
                (naive.offered, naive.answered, naive.abandoned, naive.completed, naive.transferred)
            );
        }
        assert_eq!(incremental.waiting.map(|w| w.contacts), Some(wallboard.waiting[q as usize].0));
    }
    let agent = &snapshot.agents["agent-0000"].since_start;
    let naive = &wallboard.spans[0].agents[0];
    assert!((agent.logged_in_seconds - naive.logged_in).abs() < 1e-3);
    assert!((agent.handling_seconds - naive.handling).abs() < 1e-3);
}

// Both groups share the stream and the fed aggregator, built once.
#[allow(clippy::too_many_lines)]
fn benches(c: &mut Criterion) {
    let events = stream();
    let last = events.last().map_or(0.0, MetricEvent::at);
    let now = last + 1.0;
    let fresh = empty_aggregator();

    let mut fed = fresh.clone();
    fed.record_batch(&events).expect("a valid stream");
    let snapshot = fed.snapshot(now).expect("a later time");
    let window_starts: Vec<f64> = snapshot.windows.iter().map(|w| w.start).collect();
    assert_same_figures(&snapshot, &naive::recompute(&events, now, snapshot.interval_start, &window_starts));

    let mut group = c.benchmark_group("metrics_record");
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("record_batch", |b| {
        b.iter_batched(
            || fresh.clone(),
            |mut metrics| metrics.record_batch(black_box(&events)).map(|()| metrics),
            BatchSize::LargeInput,
        );
    });
    group.bench_function("record_batch_then_snapshot", |b| {
        b.iter_batched(
            || fresh.clone(),
            |mut metrics| {
                metrics.record_batch(black_box(&events)).expect("a valid stream");
                metrics.snapshot(now)
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();

    // A wallboard refresh: the last second's events, then a snapshot. The aggregator starts
    // fed with all but the last 200,000 events and takes them a second at a time.
    let split = events.len() - 200_000;
    let mut prefix = fresh.clone();
    prefix.record_batch(&events[..split]).expect("a valid stream");
    let mut seconds: Vec<&[MetricEvent]> = Vec::new();
    let mut start = split;
    while start < events.len() {
        let second = events[start].at().floor() + 1.0;
        let end = start + events[start..].partition_point(|e| e.at() < second);
        seconds.push(&events[start..end]);
        start = end;
    }
    let refresh = |b: &mut criterion::Bencher, scope: SnapshotScope| {
        let mut metrics = prefix.clone();
        let mut next = 0;
        b.iter_custom(|iterations| {
            let mut spent = Duration::ZERO;
            for _ in 0..iterations {
                if next == seconds.len() {
                    metrics = prefix.clone();
                    next = 0;
                }
                let second = seconds[next];
                next += 1;
                let started = std::time::Instant::now();
                metrics.record_batch(black_box(second)).expect("a valid stream");
                let snapshot = metrics.snapshot_scoped(second[second.len() - 1].at(), scope);
                spent += started.elapsed();
                black_box(snapshot).expect("a later time");
            }
            spent
        });
    };
    let mut group = c.benchmark_group("metrics_snapshot");
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    group.bench_function("refresh_1000_queues_10_channels", |b| {
        refresh(b, SnapshotScope::QUEUES_AND_CHANNELS);
    });
    group.bench_function("refresh_1000_queues_10_channels_5000_agents", |b| {
        refresh(b, SnapshotScope::ALL);
    });
    group.bench_function("naive_recompute_1000_queues_10_channels_5000_agents", |b| {
        b.iter(|| naive::recompute(black_box(&events), now, snapshot.interval_start, &window_starts));
    });
    group.finish();
}

criterion_group!(metrics, benches);
criterion_main!(metrics);
