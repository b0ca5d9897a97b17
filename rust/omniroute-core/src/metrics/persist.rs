//! Saving and restoring the aggregator's whole state (serde, or MessagePack bytes).
//!
//! Only what cannot be recomputed is saved: names, counters, slots, closed
//! intervals, agent histories and the task table. Lookup tables, window running
//! totals and waiting heaps are rebuilt on load, after checking that the saved
//! parts agree with each other, so a damaged or hand-edited state is refused
//! instead of panicking later.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::agents::Agents;
use super::aggregator::{Aggregator, Clock};
use super::config::MetricsConfig;
use super::dimension::{DimensionKind, Names};
use super::error::MetricsError;
use super::event::check_at;
use super::interval::Intervals;
use super::live::LiveFigures;
use super::time::{to_micros, Micros};
use super::waiting::Waiting;
use super::window::{SavedWindows, SavedWindowsRef, Windows};

/// Version of the saved layout; bumped when it changes incompatibly.
const FORMAT: u32 = 1;

#[derive(Serialize)]
struct StateRef<'a> {
    format: u32,
    config: &'a MetricsConfig,
    queues: &'a Names,
    channels: &'a Names,
    agent_names: &'a Names,
    clock: &'a Option<Clock>,
    live: &'a LiveFigures,
    intervals: &'a Intervals,
    windows: SavedWindowsRef<'a>,
    agents: &'a Agents,
    waiting: &'a Waiting,
}

#[derive(Deserialize)]
struct State {
    format: u32,
    config: MetricsConfig,
    queues: Names,
    channels: Names,
    agent_names: Names,
    clock: Option<Clock>,
    live: LiveFigures,
    intervals: Intervals,
    windows: SavedWindows,
    agents: Agents,
    waiting: Waiting,
}

impl Serialize for Aggregator {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StateRef {
            format: FORMAT,
            config: &self.config,
            queues: &self.queues,
            channels: &self.channels,
            agent_names: &self.agent_names,
            clock: &self.clock,
            live: &self.live,
            intervals: &self.intervals,
            windows: self.windows.saved(&self.live),
            agents: &self.agents,
            waiting: &self.waiting,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Aggregator {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let state = State::deserialize(deserializer)?;
        Aggregator::restore(state).map_err(D::Error::custom)
    }
}

impl Aggregator {
    /// The whole state as MessagePack bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, MetricsError> {
        rmp_serde::to_vec_named(self).map_err(|e| MetricsError::Encode(e.to_string()))
    }

    /// An aggregator restored from [`Self::to_bytes`]; inconsistent state is refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MetricsError> {
        rmp_serde::from_slice(bytes).map_err(|e| MetricsError::Decode(e.to_string()))
    }

    fn restore(mut state: State) -> Result<Self, String> {
        if state.format != FORMAT {
            return Err(format!("saved format {} is not the supported format {FORMAT}", state.format));
        }
        let config = state.config;
        config.validate().map_err(|e| e.to_string())?;
        state.queues.rebuild(DimensionKind::Queue)?;
        state.channels.rebuild(DimensionKind::Channel)?;
        state.agent_names.rebuild(DimensionKind::Agent)?;
        let (queues, channels, agents) = (state.queues.len(), state.channels.len(), state.agent_names.len());
        state.live.check(config.windows.len(), queues, channels, agents)?;
        state.intervals.configure(&config);
        state.intervals.check(queues, channels, agents)?;
        let windows = Windows::restore(
            state.windows,
            &config,
            [(DimensionKind::Queue, queues), (DimensionKind::Channel, channels), (DimensionKind::Agent, agents)],
            &mut state.live,
        )?;
        let clock = state.clock;
        if let Some(clock) = clock {
            check_at("state", "clock", clock.at, None).map_err(|e| e.to_string())?;
            if clock.micros != to_micros(clock.at) {
                return Err("the clock's seconds and microseconds disagree".into());
            }
        }
        let clock_micros = clock.map(|clock| clock.micros);
        let slot = clock_micros.map(|t| t.div_euclid(config.slot_micros()));
        let interval = clock_micros.map(|t| state.intervals.index_of(t));
        if windows.current() != slot || state.intervals.current_index() != interval {
            return Err("the window slots or the current interval do not match the clock".into());
        }
        state.agents.check(agents, clock_micros)?;
        state.waiting.rebuild(queues, channels)?;
        let next_boundary = match (windows.current(), state.intervals.current_index()) {
            (Some(_), Some(interval)) => windows.next_boundary().min(state.intervals.start_of(interval + 1)),
            _ => Micros::MIN,
        };
        let queue_threshold =
            (0..queues as u32).map(|key| config.threshold_micros(state.queues.name(key)) as u64).collect();
        Ok(Self {
            short_abandon: to_micros(config.short_abandon_seconds) as u64,
            queue_threshold,
            next_boundary,
            config,
            queues: state.queues,
            channels: state.channels,
            agent_names: state.agent_names,
            clock,
            live: state.live,
            intervals: state.intervals,
            windows,
            agents: state.agents,
            waiting: state.waiting,
            shared: super::dimension::SharedKeys::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::event::{AgentActivity, MetricEvent};

    fn busy() -> Aggregator {
        let mut config = MetricsConfig::default();
        config.queue_thresholds.insert("vip".into(), 5.0);
        let mut agg = Aggregator::new(config).unwrap();
        let vip = agg.queue_key("vip");
        let voice = agg.channel_key("voice");
        let ann = agg.agent_key("ann");
        let events = [
            MetricEvent::AgentState { at: 0.0, agent: ann, state: AgentActivity::Available },
            MetricEvent::Arrived { at: 10.0, task: 1, queue: vip, channel: voice },
            MetricEvent::Arrived { at: 20.0, task: 2, queue: vip, channel: voice },
            MetricEvent::Answered { at: 30.0, task: 1, queue: vip, channel: voice, agent: ann, wait: 20.0 },
            MetricEvent::AgentLoad { at: 30.0, agent: ann, used: 1, capacity: 1, tasks: 1 },
            MetricEvent::Talk { at: 1_000.0, task: 1, queue: vip, channel: voice, agent: ann, seconds: 970.0 },
        ];
        agg.record_batch(&events).unwrap();
        agg
    }

    #[test]
    fn restored_state_carries_on_exactly_like_the_original() {
        let mut original = busy();
        let bytes = original.to_bytes().unwrap();
        let mut restored = Aggregator::from_bytes(&bytes).unwrap();
        // A restored aggregator saves to the bytes it came from.
        assert_eq!(restored.to_bytes().unwrap(), bytes);
        let more = MetricEvent::Answered { at: 1_100.0, task: 2, queue: 0, channel: 0, agent: 0, wait: 1_080.0 };
        original.record(&more).unwrap();
        restored.record(&more).unwrap();
        assert_eq!(original.snapshot(4_000.0).unwrap(), restored.snapshot(4_000.0).unwrap());
        assert_eq!(original.to_bytes().unwrap(), restored.to_bytes().unwrap());
        assert_eq!(
            original.intervals(DimensionKind::Queue, "vip", f64::NEG_INFINITY, f64::INFINITY),
            restored.intervals(DimensionKind::Queue, "vip", f64::NEG_INFINITY, f64::INFINITY)
        );
    }

    #[test]
    fn an_empty_aggregator_round_trips() {
        let agg = Aggregator::new(MetricsConfig::default()).unwrap();
        let restored = Aggregator::from_bytes(&agg.to_bytes().unwrap()).unwrap();
        assert_eq!(restored.to_bytes().unwrap(), agg.to_bytes().unwrap());
    }

    #[test]
    fn garbage_and_inconsistent_state_are_refused() {
        assert!(matches!(Aggregator::from_bytes(b"not msgpack"), Err(MetricsError::Decode(_))));
        // A state whose clock disagrees with its window slots.
        let agg = busy();
        let mut state: State = rmp_serde::from_slice(&agg.to_bytes().unwrap()).unwrap();
        state.clock = state.clock.map(|clock| Clock { at: clock.at + 3_600.0, micros: clock.micros + 3_600_000_000 });
        let err = Aggregator::restore(state).unwrap_err();
        assert!(err.contains("do not match the clock"), "{err}");
        // A state with a name missing.
        let mut state: State = rmp_serde::from_slice(&agg.to_bytes().unwrap()).unwrap();
        state.agent_names = Names::default();
        assert!(Aggregator::restore(state).is_err());
        // A future format.
        let mut state: State = rmp_serde::from_slice(&agg.to_bytes().unwrap()).unwrap();
        state.format = 2;
        assert!(Aggregator::restore(state).unwrap_err().contains("format 2"));
    }
}
