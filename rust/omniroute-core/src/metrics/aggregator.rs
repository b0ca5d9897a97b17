//! The aggregator: interns names, checks events and adds them to every span of time they count in.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

use super::agents::Agents;
use super::config::MetricsConfig;
use super::counts::Contribution;
use super::dimension::{DimRef, DimensionKind, Names, SharedKeys};
use super::error::MetricsError;
use super::event::{MetricEvent, NamedMetricEvent};
use super::histogram::bucket_of;
use super::interval::Intervals;
use super::live::{LiveFigures, INTERVAL};
use super::time::{to_micros, Micros};
use super::waiting::Waiting;
use super::window::{WaitRecord, Windows};

/// The time of the last event or snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Clock {
    /// As the caller gave it, for messages.
    pub at: f64,
    pub micros: Micros,
}

/// Aggregates contact-center events into service level, ASA, AHT, occupancy
/// and the rest, per queue, channel and agent and overall; since start, per
/// fixed interval and over sliding windows.
///
/// No clock: every call carries its time, and events must come in
/// non-decreasing time order. The hot path ([`Self::record`],
/// [`Self::record_batch`]) indexes arrays by the dense keys handed out by
/// [`Self::queue_key`], [`Self::channel_key`] and [`Self::agent_key`]; it
/// neither hashes names nor allocates per event (beyond amortised growth).
///
/// The whole state is serde-serializable (see also [`Self::to_bytes`]).
#[derive(Clone, Debug)]
pub struct Aggregator {
    pub(super) config: MetricsConfig,
    pub(super) queues: Names,
    pub(super) channels: Names,
    pub(super) agent_names: Names,
    pub(super) clock: Option<Clock>,
    /// Since-start, current-interval and window figures of every dimension.
    pub(super) live: LiveFigures,
    pub(super) intervals: Intervals,
    pub(super) windows: Windows,
    pub(super) agents: Agents,
    pub(super) waiting: Waiting,
    /// Derived from the configuration: the short-abandon limit, µs.
    pub(super) short_abandon: u64,
    /// Derived from the configuration: each queue's service-level threshold, µs.
    pub(super) queue_threshold: Vec<u64>,
    /// Derived: before this time no slot or interval ends, so the clock just moves.
    pub(super) next_boundary: Micros,
    /// Derived: keys of shared names seen lately, by address.
    pub(super) shared: SharedKeys,
}

impl Aggregator {
    /// An aggregator with nothing recorded yet.
    pub fn new(config: MetricsConfig) -> Result<Self, MetricsError> {
        config.validate()?;
        let config_windows = config.windows.len();
        Ok(Self {
            intervals: Intervals::new(&config),
            windows: Windows::new(&config),
            short_abandon: to_micros(config.short_abandon_seconds) as u64,
            config,
            queues: Names::default(),
            channels: Names::default(),
            agent_names: Names::default(),
            clock: None,
            live: LiveFigures::new(config_windows),
            agents: Agents::default(),
            waiting: Waiting::default(),
            queue_threshold: Vec::new(),
            next_boundary: Micros::MIN,
            shared: SharedKeys::default(),
        })
    }

    #[must_use]
    pub fn config(&self) -> &MetricsConfig {
        &self.config
    }

    /// The time of the last event or snapshot, in seconds.
    #[must_use]
    pub fn last_time(&self) -> Option<f64> {
        self.clock.map(|clock| clock.at)
    }

    /// The key of queue `name`, interning it if new.
    pub fn queue_key(&mut self, name: &str) -> u32 {
        let (key, new) = self.queues.intern(name);
        if new {
            let len = self.queues.len();
            self.grow(DimensionKind::Queue, len);
            self.waiting.grow_queues(len);
            self.queue_threshold.push(self.config.threshold_micros(name) as u64);
        }
        key
    }

    /// The key of channel `name`, interning it if new.
    pub fn channel_key(&mut self, name: &str) -> u32 {
        let (key, new) = self.channels.intern(name);
        if new {
            let len = self.channels.len();
            self.grow(DimensionKind::Channel, len);
            self.waiting.grow_channels(len);
        }
        key
    }

    /// The key of agent `name`, interning it if new.
    pub fn agent_key(&mut self, name: &str) -> u32 {
        let (key, new) = self.agent_names.intern(name);
        if new {
            let len = self.agent_names.len();
            self.grow(DimensionKind::Agent, len);
            self.agents.grow(len);
        }
        key
    }

    /// The name behind a key, if it was handed out.
    #[must_use]
    pub fn name_of(&self, kind: DimensionKind, key: u32) -> Option<&str> {
        let names = self.names(kind)?;
        ((key as usize) < names.len()).then(|| names.name(key))
    }

    pub(super) fn names(&self, kind: DimensionKind) -> Option<&Names> {
        match kind {
            DimensionKind::Overall => None,
            DimensionKind::Queue => Some(&self.queues),
            DimensionKind::Channel => Some(&self.channels),
            DimensionKind::Agent => Some(&self.agent_names),
        }
    }

    fn grow(&mut self, kind: DimensionKind, len: usize) {
        self.live.grow(kind, len);
        self.windows.grow(kind, len);
    }

    fn key_of(&mut self, kind: DimensionKind, name: &str) -> u32 {
        match kind {
            DimensionKind::Queue => self.queue_key(name),
            DimensionKind::Channel => self.channel_key(name),
            DimensionKind::Agent | DimensionKind::Overall => self.agent_key(name),
        }
    }

    /// Records one event. A refused event changes nothing.
    #[inline]
    pub fn record(&mut self, event: &MetricEvent) -> Result<(), MetricsError> {
        let scalars = event.scalars();
        scalars.check(self.last_time())?;
        self.check_keys(event, scalars.event)?;
        self.apply(event, scalars.at);
        Ok(())
    }

    /// Records events in order, stopping at the first refused one (see
    /// [`MetricsError::InBatch`]): the events before it are recorded.
    pub fn record_batch(&mut self, events: &[MetricEvent]) -> Result<(), MetricsError> {
        for (index, event) in events.iter().enumerate() {
            self.record(event).map_err(|source| MetricsError::InBatch { index, source: Box::new(source) })?;
        }
        Ok(())
    }

    /// Records an event that names its queue, channel and agent, interning new
    /// names. A refused event changes nothing (its names are not interned).
    pub fn record_named(&mut self, event: &NamedMetricEvent) -> Result<(), MetricsError> {
        self.record_built(|key| event.to_keyed(key))
    }

    /// Records the event `build` makes once it is given a key for each name
    /// it names: the engine's outputs reach the metrics this way without a
    /// named copy of each event. A refused event changes nothing: new names
    /// are interned only once the event has passed its checks.
    pub fn record_built(
        &mut self,
        build: impl Fn(&mut dyn FnMut(DimensionKind, &str) -> u32) -> MetricEvent,
    ) -> Result<(), MetricsError> {
        self.record_keyed(|m, kind, name: &str| m.names(kind).and_then(|names| names.key(name)), build)
    }

    /// As [`Self::record_built`], for an event whose names are shared
    /// (`Arc<str>`, as the engine's output events carry them): a name seen
    /// before is found by its address, without hashing its text.
    pub fn record_shared(
        &mut self,
        build: impl Fn(&mut dyn FnMut(DimensionKind, &Arc<str>) -> u32) -> MetricEvent,
    ) -> Result<(), MetricsError> {
        self.record_keyed(
            |m, kind, name: &Arc<str>| {
                m.shared.get(kind, name).or_else(|| {
                    let key = m.names(kind)?.key(name)?;
                    m.shared.put(kind, name, key);
                    Some(key)
                })
            },
            build,
        )
    }

    /// Both of the above: `known` finds the key of a name already interned.
    #[inline]
    fn record_keyed<N: AsRef<str> + ?Sized>(
        &mut self,
        known: impl Fn(&mut Self, DimensionKind, &N) -> Option<u32>,
        build: impl Fn(&mut dyn FnMut(DimensionKind, &N) -> u32) -> MetricEvent,
    ) -> Result<(), MetricsError> {
        let mut unknown = false;
        let probe = build(&mut |kind, name| {
            known(self, kind, name).unwrap_or_else(|| {
                unknown = true;
                0
            })
        });
        let scalars = probe.scalars();
        scalars.check(self.last_time())?;
        if unknown {
            self.record_new_names(build, scalars.at);
        } else {
            // Applied where it was built: a copy of the event would be read
            // back from the stack before its stores have landed.
            self.apply(&probe, scalars.at);
        }
        Ok(())
    }

    /// The rest of [`Self::record_keyed`] for a checked event that names
    /// something new: its names are interned, then it is applied.
    #[cold]
    fn record_new_names<N: AsRef<str> + ?Sized>(
        &mut self,
        build: impl Fn(&mut dyn FnMut(DimensionKind, &N) -> u32) -> MetricEvent,
        at: f64,
    ) {
        let event = build(&mut |kind, name| self.key_of(kind, name.as_ref()));
        self.apply(&event, at);
    }

    /// [`Self::record_named`] over a batch, stopping at the first refused event.
    pub fn record_named_batch(&mut self, events: &[NamedMetricEvent]) -> Result<(), MetricsError> {
        for (index, event) in events.iter().enumerate() {
            self.record_named(event).map_err(|source| MetricsError::InBatch { index, source: Box::new(source) })?;
        }
        Ok(())
    }

    #[inline]
    fn check_keys(&self, event: &MetricEvent, name: &'static str) -> Result<(), MetricsError> {
        use MetricEvent as E;
        let check = |field: &'static str, kind: DimensionKind, key: u32, known: usize| {
            if (key as usize) < known {
                Ok(())
            } else {
                Err(MetricsError::UnknownKey { event: name, field, kind, key, known })
            }
        };
        let queue = |key| check("queue", DimensionKind::Queue, key, self.queues.len());
        let channel = |key| check("channel", DimensionKind::Channel, key, self.channels.len());
        let agent = |key| check("agent", DimensionKind::Agent, key, self.agent_names.len());
        match *event {
            E::Arrived { queue: q, channel: c, .. } | E::Abandoned { queue: q, channel: c, .. } => {
                queue(q)?;
                channel(c)
            }
            E::Answered { queue: q, channel: c, agent: a, .. }
            | E::Completed { queue: q, channel: c, agent: a, .. }
            | E::Talk { queue: q, channel: c, agent: a, .. }
            | E::Hold { queue: q, channel: c, agent: a, .. }
            | E::WrapUp { queue: q, channel: c, agent: a, .. }
            | E::Disposition { queue: q, channel: c, agent: a, .. } => {
                queue(q)?;
                channel(c)?;
                agent(a)
            }
            E::Transferred { queue: q, channel: c, agent: a, .. } | E::Csat { queue: q, channel: c, agent: a, .. } => {
                queue(q)?;
                channel(c)?;
                a.map_or(Ok(()), agent)
            }
            E::AgentState { agent: a, .. } | E::AgentLoad { agent: a, .. } => agent(a),
        }
    }

    /// Moves the clock to `t`: closes the intervals and expires the window
    /// slots that `t` leaves behind.
    #[inline]
    pub(super) fn advance_to(&mut self, at: f64, t: Micros) {
        if t >= self.next_boundary {
            self.cross_boundaries(t);
        }
        self.clock = Some(Clock { at, micros: t });
    }

    fn cross_boundaries(&mut self, t: Micros) {
        self.windows.advance_to(t, &mut self.live);
        let target = self.intervals.index_of(t);
        match self.intervals.current_index() {
            None => self.intervals.restart_at(target),
            Some(mut current) if current < target => {
                // Intervals older than `first_kept` would be dropped at once: skip them.
                let first_kept = target - self.intervals.retained();
                if current < first_kept {
                    self.live.take_span(INTERVAL);
                    self.intervals.restart_at(first_kept);
                    self.agents.restart_interval(self.intervals.start_of(first_kept));
                    current = first_kept;
                }
                while current < target {
                    let time = self.agents.close_interval(self.intervals.start_of(current + 1));
                    self.intervals.close(self.live.take_span(INTERVAL), &time);
                    current += 1;
                }
            }
            Some(_) => {}
        }
        self.next_boundary = self.windows.next_boundary().min(self.intervals.start_of(target + 1));
    }

    /// Adds one checked event.
    // One arm per event type: long, but each arm reads on its own.
    #[allow(clippy::too_many_lines)]
    #[inline]
    fn apply(&mut self, event: &MetricEvent, at: f64) {
        use MetricEvent as E;
        let now = to_micros(at);
        self.advance_to(at, now);
        match *event {
            E::Arrived { task, queue, channel, .. } => {
                self.waiting.arrived(task, queue, channel, now);
                self.contribute(&dims(queue, channel, None), Contribution::Offered, None);
            }
            E::Answered { task, queue, channel, agent, wait, .. } => {
                let wait = to_micros(wait) as u64;
                let within = wait <= self.queue_threshold[queue as usize];
                self.waiting.stopped_waiting(task);
                let record = WaitRecord { bucket: bucket_of(wait), queue, channel, agent };
                let contribution = Contribution::Answered { wait, within };
                self.contribute(&dims(queue, channel, Some(agent)), contribution, Some(record));
            }
            E::Abandoned { task, queue, channel, wait, .. } => {
                let wait = to_micros(wait) as u64;
                let contribution = Contribution::Abandoned {
                    wait,
                    short: wait < self.short_abandon,
                    within: wait <= self.queue_threshold[queue as usize],
                };
                self.waiting.ended(task, false);
                self.contribute(&dims(queue, channel, None), contribution, None);
            }
            E::Transferred { task, queue, channel, agent, .. } => {
                self.waiting.stopped_waiting(task);
                self.contribute(&dims(queue, channel, agent), Contribution::Transferred, None);
            }
            E::Completed { task, queue, channel, agent, .. } => {
                // A contact completed by one agent may already wait in its next queue.
                self.waiting.ended(task, true);
                self.contribute(&dims(queue, channel, Some(agent)), Contribution::Completed, None);
            }
            E::Talk { queue, channel, agent, seconds, .. } => {
                let contribution = Contribution::Talk(to_micros(seconds) as u64);
                self.contribute(&dims(queue, channel, Some(agent)), contribution, None);
            }
            E::Hold { queue, channel, agent, seconds, .. } => {
                let contribution = Contribution::Hold(to_micros(seconds) as u64);
                self.contribute(&dims(queue, channel, Some(agent)), contribution, None);
            }
            E::WrapUp { queue, channel, agent, seconds, .. } => {
                let contribution = Contribution::WrapUp(to_micros(seconds) as u64);
                self.contribute(&dims(queue, channel, Some(agent)), contribution, None);
            }
            E::Disposition { queue, channel, agent, resolved, .. } => {
                let contribution = Contribution::Disposition { resolved };
                self.contribute(&dims(queue, channel, Some(agent)), contribution, None);
            }
            E::Csat { queue, channel, agent, score, .. } => {
                let contribution = Contribution::Csat(to_micros(score));
                self.contribute(&dims(queue, channel, agent), contribution, None);
            }
            E::AgentState { agent, state, .. } => {
                let horizon = self.windows.horizon();
                self.agents.set_state(agent, now, state, horizon);
            }
            E::AgentLoad { agent, used, capacity, tasks, .. } => {
                let horizon = self.windows.horizon();
                self.agents.set_load(agent, now, used, capacity, tasks, horizon);
            }
        }
    }

    /// Adds a contact event to since-start, the current interval and the windows of every dimension in `dims`.
    #[inline]
    fn contribute(&mut self, dims: &[DimRef], contribution: Contribution, wait: Option<WaitRecord>) {
        let deltas = contribution.deltas();
        self.live.add(dims, &deltas, wait.map(|w| w.bucket));
        self.windows.touch(dims, deltas.fields(), wait);
    }
}

/// The dimensions a contact event counts in: overall, its queue, its channel and its agent if any.
#[inline]
fn dims(queue: u32, channel: u32, agent: Option<u32>) -> Dims {
    let mut dims =
        Dims { dims: [DimRef::OVERALL, DimRef::queue(queue), DimRef::channel(channel), DimRef::OVERALL], len: 3 };
    if let Some(agent) = agent {
        dims.dims[3] = DimRef::agent(agent);
        dims.len = 4;
    }
    dims
}

/// Up to four dimensions, without allocating.
struct Dims {
    dims: [DimRef; 4],
    len: usize,
}

impl std::ops::Deref for Dims {
    type Target = [DimRef];

    fn deref(&self) -> &[DimRef] {
        &self.dims[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::event::{task_id, AgentActivity};
    use crate::metrics::live::SINCE_START;

    fn aggregator() -> Aggregator {
        let mut agg = Aggregator::new(MetricsConfig::default()).unwrap();
        agg.queue_key("billing");
        agg.channel_key("voice");
        agg.agent_key("ann");
        agg
    }

    fn arrived(at: f64, task: u64) -> MetricEvent {
        MetricEvent::Arrived { at, task, queue: 0, channel: 0 }
    }

    /// Everything observable: a snapshot (taken on a clone, as it moves the clock) and the saved state.
    fn observe(agg: &Aggregator) -> (Vec<u8>, super::super::MetricsSnapshot) {
        let now = agg.last_time().unwrap_or(0.0);
        (agg.to_bytes().unwrap(), agg.clone().snapshot(now).unwrap())
    }

    #[test]
    fn keys_are_dense_and_stable() {
        let mut agg = aggregator();
        assert_eq!(agg.queue_key("billing"), 0);
        assert_eq!(agg.queue_key("sales"), 1);
        assert_eq!(agg.channel_key("chat"), 1);
        assert_eq!(agg.agent_key("bob"), 1);
        assert_eq!(agg.name_of(DimensionKind::Queue, 1), Some("sales"));
        assert_eq!(agg.name_of(DimensionKind::Agent, 7), None);
        assert_eq!(agg.name_of(DimensionKind::Overall, 0), None);
    }

    #[test]
    fn refused_events_change_nothing() {
        let mut agg = aggregator();
        agg.record(&arrived(100.0, 1)).unwrap();
        let before = observe(&agg);
        let refused = [
            // Time going backwards.
            arrived(99.0, 2),
            // NaN and infinite values.
            arrived(f64::NAN, 2),
            MetricEvent::Answered { at: 100.0, task: 1, queue: 0, channel: 0, agent: 0, wait: f64::NAN },
            MetricEvent::Csat { at: 100.0, task: 1, queue: 0, channel: 0, agent: None, score: f64::INFINITY },
            // Negative seconds.
            MetricEvent::Talk { at: 100.0, task: 1, queue: 0, channel: 0, agent: 0, seconds: -1.0 },
            MetricEvent::Abandoned { at: 100.0, task: 1, queue: 0, channel: 0, wait: -0.5 },
            // Unknown keys.
            MetricEvent::Arrived { at: 100.0, task: 2, queue: 1, channel: 0 },
            MetricEvent::Arrived { at: 100.0, task: 2, queue: 0, channel: 5 },
            MetricEvent::Transferred { at: 100.0, task: 1, queue: 0, channel: 0, agent: Some(3) },
            MetricEvent::AgentState { at: 100.0, agent: 1, state: AgentActivity::Available },
            // More capacity in use than there is.
            MetricEvent::AgentLoad { at: 100.0, agent: 0, used: 2, capacity: 1, tasks: 1 },
        ];
        for event in &refused {
            assert!(agg.record(event).is_err(), "{event:?} should be refused");
            assert_eq!(observe(&agg), before, "{event:?} changed the state");
        }
        assert_eq!(
            agg.record(&refused[0]),
            Err(MetricsError::TimeWentBackwards { event: "arrived", at: 99.0, last: 100.0 })
        );
        assert_eq!(
            agg.record(&refused[6]),
            Err(MetricsError::UnknownKey {
                event: "arrived",
                field: "queue",
                kind: DimensionKind::Queue,
                key: 1,
                known: 1
            })
        );
    }

    #[test]
    fn a_refused_named_event_interns_nothing() {
        let mut agg = aggregator();
        let event = NamedMetricEvent::Talk {
            at: 5.0,
            task: "t".into(),
            queue: "new-queue".into(),
            channel: "voice".into(),
            agent: "ann".into(),
            seconds: -2.0,
        };
        assert!(matches!(
            agg.record_named(&event),
            Err(MetricsError::InvalidValue { event: "talk", field: "seconds", .. })
        ));
        assert_eq!(agg.queues.len(), 1);
        let fine =
            NamedMetricEvent::Arrived { at: 5.0, task: "t".into(), queue: "new-queue".into(), channel: "voice".into() };
        agg.record_named(&fine).unwrap();
        assert_eq!(agg.queues.key("new-queue"), Some(1));
        let (count, oldest) = agg.waiting.queue_waiting(1);
        assert_eq!((count, oldest), (1, Some(5_000_000)));
        assert_eq!(agg.waiting.queue_waiting(0).0, 0);
        assert!(task_id("t") != 0);
    }

    #[test]
    fn a_batch_stops_at_the_first_refused_event() {
        let mut agg = aggregator();
        let batch = [arrived(1.0, 1), arrived(2.0, 2), arrived(1.5, 3), arrived(3.0, 4)];
        let err = agg.record_batch(&batch).unwrap_err();
        assert_eq!(
            err,
            MetricsError::InBatch {
                index: 2,
                source: Box::new(MetricsError::TimeWentBackwards { event: "arrived", at: 1.5, last: 2.0 })
            }
        );
        assert_eq!(agg.live.counts(DimRef::OVERALL, SINCE_START).offered, 2);
        let named = [NamedMetricEvent::AgentState { at: 0.0, agent: "x".into(), state: AgentActivity::Away }];
        assert!(matches!(agg.record_named_batch(&named), Err(MetricsError::InBatch { index: 0, .. })));
    }

    #[test]
    fn per_queue_thresholds_decide_within() {
        let mut config = MetricsConfig::default();
        config.queue_thresholds.insert("vip".into(), 10.0);
        let mut agg = Aggregator::new(config).unwrap();
        let vip = agg.queue_key("vip");
        let std = agg.queue_key("standard");
        let voice = agg.channel_key("voice");
        let ann = agg.agent_key("ann");
        for (task, queue) in [(1, vip), (2, std)] {
            agg.record(&MetricEvent::Answered { at: 20.0, task, queue, channel: voice, agent: ann, wait: 15.0 })
                .unwrap();
        }
        let since_start = |dim| agg.live.counts(dim, SINCE_START);
        assert_eq!(since_start(DimRef::queue(vip)).answered_within, 0);
        assert_eq!(since_start(DimRef::queue(std)).answered_within, 1);
        // The channel and overall count each contact by its own queue's threshold.
        assert_eq!(since_start(DimRef::channel(voice)).answered_within, 1);
        assert_eq!(since_start(DimRef::OVERALL).answered, 2);
    }

    #[test]
    fn invalid_configuration_is_refused() {
        let config = MetricsConfig { windows: vec![90], ..MetricsConfig::default() };
        assert!(matches!(Aggregator::new(config), Err(MetricsError::InvalidConfig { field: "windows", .. })));
    }
}
