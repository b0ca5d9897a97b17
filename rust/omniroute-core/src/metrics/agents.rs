//! Agents: current state and load, and their time integrated between events.
//!
//! Each agent keeps the points where the class of its time changed (say from
//! available-idle to handling), each with the cumulative time up to it. The
//! cumulative time at any moment `t` after the oldest point kept is then the
//! last point before `t` plus `t` minus that point, so a window's agent time is
//! `F(now) - F(window start)` and nothing has to be updated as time passes.
//! Points older than the oldest window start are dropped (keeping the one
//! before it). All agents together are one more such track, whose rates are
//! the numbers of agents in each class, so overall figures need no pass over
//! the agents.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::agent_time::{AgentTime, Rates, TimeClass};
use super::event::AgentActivity;
use super::time::Micros;

/// Where the rates of a track changed, and the time accrued before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Point {
    at: Micros,
    cumulative: AgentTime,
    rates: Rates,
}

/// Cumulative agent time as a function of time, for one agent or for all.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Track {
    /// Change points, oldest first; empty until the time first counts toward anything.
    history: VecDeque<Point>,
    /// Cumulative time at the start of the current fixed interval.
    interval_base: AgentTime,
}

impl Track {
    /// Cumulative time up to `t`; `t` must not be older than the oldest window start.
    pub fn cumulative_at(&self, t: Micros) -> AgentTime {
        let Some(last) = self.history.back() else {
            return AgentTime::default();
        };
        let point = if t >= last.at {
            last
        } else {
            match self.history.partition_point(|p| p.at <= t) {
                // Before the first point nothing accrued (points before a kept one are only
                // dropped once no query can reach them).
                0 => return self.history[0].cumulative,
                i => &self.history[i - 1],
            }
        };
        let mut cumulative = point.cumulative;
        cumulative.accrue(point.rates, (t - point.at) as u64);
        cumulative
    }

    /// Time accrued in the current interval up to `t`.
    pub fn interval_time(&self, t: Micros) -> AgentTime {
        self.cumulative_at(t).since(self.interval_base)
    }

    pub fn rates(&self) -> Rates {
        self.history.back().map_or(Rates::default(), |p| p.rates)
    }

    /// The rates change to `rates` at `at`; `horizon` is the oldest time a window may still ask about.
    fn change(&mut self, at: Micros, rates: Rates, horizon: Micros) {
        match self.history.back_mut() {
            Some(last) if last.rates == rates => return,
            None if rates == Rates::default() => return,
            Some(last) if last.at == at => last.rates = rates,
            _ => {
                let cumulative = self.cumulative_at(at);
                self.history.push_back(Point { at, cumulative, rates });
            }
        }
        while self.history.len() >= 2 && self.history[1].at <= horizon {
            self.history.pop_front();
        }
    }

    /// Closes the current interval at `boundary`, returning the time in it.
    fn close_interval(&mut self, boundary: Micros) -> AgentTime {
        let cumulative = self.cumulative_at(boundary);
        let time = cumulative.since(self.interval_base);
        self.interval_base = cumulative;
        time
    }

    fn check(&self) -> Result<(), String> {
        let sorted = self.history.iter().zip(self.history.iter().skip(1)).all(|(a, b)| a.at < b.at);
        if sorted {
            Ok(())
        } else {
            Err("an agent's time history is not in time order".into())
        }
    }

    pub fn last_change(&self) -> Option<Micros> {
        self.history.back().map(|p| p.at)
    }
}

/// One agent: what it is doing now, and the history of its time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct AgentTrack {
    pub activity: AgentActivity,
    pub used: u32,
    pub capacity: u32,
    pub tasks: u32,
    pub time: Track,
}

impl AgentTrack {
    /// The rates of the agent's time now, from its state and load: the
    /// rates its history ends with (every change of either goes there),
    /// without reading the history, which lives in memory of its own (an
    /// event that changes no rate, like an offer, then never touches it).
    fn rates(&self) -> Rates {
        let rates = Rates::of(TimeClass::of(self.activity, self.tasks));
        debug_assert_eq!(rates, self.time.rates(), "an agent's state and time history disagree");
        rates
    }
}

/// Every agent, by key, and all of them together.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Agents {
    tracks: Vec<AgentTrack>,
    overall: Track,
    /// Each agent's cumulative time at each window start (agent-major), for the slot in `bases_slot`.
    /// A window start only moves when a slot ends, and time before it never changes, so the
    /// bases are looked up in the histories once per slot rather than once per snapshot.
    #[serde(skip)]
    window_bases: Vec<AgentTime>,
    #[serde(skip)]
    bases_slot: Option<i64>,
}

impl Agents {
    pub fn grow(&mut self, len: usize) {
        if self.tracks.len() < len {
            self.tracks.resize_with(len, AgentTrack::default);
        }
    }

    pub fn track(&self, agent: u32) -> &AgentTrack {
        &self.tracks[agent as usize]
    }

    pub fn tracks(&self) -> &[AgentTrack] {
        &self.tracks
    }

    /// All agents together.
    pub fn overall(&self) -> &Track {
        &self.overall
    }

    pub fn set_state(&mut self, agent: u32, at: Micros, activity: AgentActivity, horizon: Micros) {
        let track = &mut self.tracks[agent as usize];
        let before = track.rates();
        track.activity = activity;
        self.changed(agent, at, before, horizon);
    }

    pub fn set_load(&mut self, agent: u32, at: Micros, used: u32, capacity: u32, tasks: u32, horizon: Micros) {
        let track = &mut self.tracks[agent as usize];
        let before = track.rates();
        track.used = used;
        track.capacity = capacity;
        track.tasks = tasks;
        self.changed(agent, at, before, horizon);
    }

    fn changed(&mut self, agent: u32, at: Micros, before: Rates, horizon: Micros) {
        let track = &mut self.tracks[agent as usize];
        let after = Rates::of(TimeClass::of(track.activity, track.tasks));
        if after != before {
            track.time.change(at, after, horizon);
            let overall = self.overall.rates().moved(before, after);
            self.overall.change(at, overall, horizon);
        }
    }

    /// The agents, and each one's cumulative time at each of `starts`
    /// (agent-major), the window starts of slot `slot`; computed once per slot.
    pub fn window_bases(&mut self, slot: i64, starts: &[Micros]) -> (&[AgentTrack], &[AgentTime]) {
        let wanted = self.tracks.len() * starts.len();
        if self.bases_slot != Some(slot) {
            self.window_bases.clear();
            for track in &self.tracks {
                self.window_bases.extend(starts.iter().map(|&start| track.time.cumulative_at(start)));
            }
            self.bases_slot = Some(slot);
        } else if self.window_bases.len() < wanted {
            // Agents added since: nothing accrued before this slot's window starts.
            self.window_bases.resize(wanted, AgentTime::default());
        }
        (&self.tracks, &self.window_bases)
    }

    /// Closes the current interval at `boundary`: returns each agent's time in
    /// it (agents with none left out) and starts the next interval there.
    pub fn close_interval(&mut self, boundary: Micros) -> Vec<(u32, AgentTime)> {
        self.overall.close_interval(boundary);
        let mut closed = Vec::new();
        for (key, track) in self.tracks.iter_mut().enumerate() {
            let time = track.time.close_interval(boundary);
            if !time.is_empty() {
                closed.push((key as u32, time));
            }
        }
        closed
    }

    /// Starts the current interval at `boundary` without reporting the one before it.
    pub fn restart_interval(&mut self, boundary: Micros) {
        self.overall.close_interval(boundary);
        for track in &mut self.tracks {
            track.time.close_interval(boundary);
        }
    }

    pub fn check(&self, agents: usize, clock: Option<Micros>) -> Result<(), String> {
        if self.tracks.len() != agents {
            return Err(format!("{} agent tracks for {agents} agent names", self.tracks.len()));
        }
        let mut rates = Rates::default();
        for track in self.tracks.iter().map(|track| &track.time).chain([&self.overall]) {
            track.check()?;
            if track.last_change().is_some_and(|at| !matches!(clock, Some(clock) if at <= clock)) {
                return Err("an agent changed state after the last event".into());
            }
        }
        for track in &self.tracks {
            rates = rates.moved(Rates::default(), track.time.rates());
        }
        if rates != self.overall.rates() {
            return Err("the agents' classes do not add up to the overall counts".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AgentActivity::{Available, Away, Offline, WrapUp};

    const S: Micros = 1_000_000;

    fn time(handling: Micros, available_idle: Micros, logged_in: Micros) -> AgentTime {
        AgentTime {
            handling: (handling * S) as u64,
            available_idle: (available_idle * S) as u64,
            logged_in: (logged_in * S) as u64,
        }
    }

    #[test]
    fn time_is_integrated_between_changes_and_up_to_any_moment() {
        let mut agents = Agents::default();
        agents.grow(1);
        agents.set_state(0, 0, Available, 0);
        agents.set_load(0, 20 * S, 1, 1, 1, 0); // a task: handling
        agents.set_load(0, 140 * S, 0, 1, 0, 0);
        agents.set_state(0, 140 * S, WrapUp, 0);
        agents.set_state(0, 170 * S, Away, 0);
        agents.set_state(0, 200 * S, Offline, 0);
        let track = &agents.track(0).time;
        assert_eq!(track.cumulative_at(10 * S), time(0, 10, 10));
        assert_eq!(track.cumulative_at(140 * S), time(120, 20, 140));
        assert_eq!(track.cumulative_at(180 * S), time(150, 20, 180));
        assert_eq!(track.cumulative_at(1_000 * S), time(150, 20, 200));
        // A window from 100 s to 180 s.
        assert_eq!(track.cumulative_at(180 * S).since(track.cumulative_at(100 * S)), time(70, 0, 80));
        // Alone, the agent is everybody.
        assert_eq!(agents.overall().cumulative_at(1_000 * S), time(150, 20, 200));
    }

    #[test]
    fn the_overall_track_is_the_sum_of_the_agents() {
        let mut agents = Agents::default();
        agents.grow(2);
        agents.set_state(0, 0, Available, 0);
        agents.set_state(1, 10 * S, Available, 0);
        agents.set_load(1, 30 * S, 1, 2, 1, 0);
        agents.set_state(0, 50 * S, Offline, 0);
        for t in [0, 5, 10, 30, 40, 50, 90] {
            let mut sum = agents.track(0).time.cumulative_at(t * S);
            sum.add(&agents.track(1).time.cumulative_at(t * S));
            assert_eq!(agents.overall().cumulative_at(t * S), sum, "at {t} s");
        }
        assert!(agents.check(2, Some(50 * S)).is_ok());
    }

    #[test]
    fn changes_that_keep_the_class_add_no_point_and_old_points_are_dropped() {
        let mut agents = Agents::default();
        agents.grow(1);
        agents.set_state(0, 0, Offline, 0);
        assert!(agents.track(0).time.history.is_empty());
        agents.set_state(0, S, Available, 0);
        agents.set_load(0, 2 * S, 0, 3, 0, 0); // still available and idle
        assert_eq!(agents.track(0).time.history.len(), 1);
        agents.set_load(0, 3 * S, 1, 3, 1, 0);
        agents.set_load(0, 4 * S, 2, 3, 2, 0); // still handling
        assert_eq!(agents.track(0).time.history.len(), 2);
        // Windows now start at 5 s: the point at 1 s is no longer needed, the one at 3 s is.
        agents.set_load(0, 10 * S, 0, 3, 0, 5 * S);
        assert_eq!(agents.track(0).time.history.len(), 2);
        assert_eq!(agents.track(0).time.cumulative_at(5 * S), time(2, 2, 4));
        assert_eq!(agents.track(0).time.cumulative_at(12 * S), time(7, 4, 11));
    }

    #[test]
    fn same_moment_changes_keep_only_the_last_class() {
        let mut agents = Agents::default();
        agents.grow(1);
        agents.set_state(0, 5 * S, Available, 0);
        agents.set_load(0, 5 * S, 1, 1, 1, 0);
        assert_eq!(agents.track(0).time.history.len(), 1);
        assert_eq!(agents.track(0).time.cumulative_at(7 * S), time(2, 0, 2));
    }

    #[test]
    fn window_bases_are_computed_once_per_slot() {
        let mut agents = Agents::default();
        agents.grow(1);
        agents.set_state(0, 0, Available, 0);
        assert_eq!(agents.window_bases(2, &[60 * S, 0]).1, &[time(0, 60, 60), time(0, 0, 0)]);
        // Later changes happen after the window starts and do not move the bases.
        agents.set_state(0, 150 * S, Away, 0);
        agents.grow(2);
        assert_eq!(
            agents.window_bases(2, &[60 * S, 0]).1,
            &[time(0, 60, 60), time(0, 0, 0), AgentTime::default(), AgentTime::default()]
        );
        assert_eq!(agents.window_bases(3, &[120 * S, 60 * S]).1[0], time(0, 120, 120));
    }

    #[test]
    fn intervals_close_with_each_agents_time() {
        let mut agents = Agents::default();
        agents.grow(2);
        agents.set_state(0, 0, Available, 0);
        assert_eq!(agents.close_interval(900 * S), vec![(0, time(0, 900, 900))]);
        agents.set_state(0, 1_000 * S, Offline, 0);
        assert_eq!(agents.track(0).time.interval_time(1_200 * S), time(0, 100, 100));
        assert_eq!(agents.overall().interval_time(1_200 * S), time(0, 100, 100));
        assert_eq!(agents.close_interval(1_800 * S), vec![(0, time(0, 100, 100))]);
        assert!(agents.close_interval(2_700 * S).is_empty());
        agents.restart_interval(2_700 * S);
        assert!(agents.check(2, Some(2_700 * S)).is_ok());
        assert!(agents.check(2, Some(0)).is_err());
        assert!(agents.check(3, Some(2_700 * S)).is_err());
    }
}
