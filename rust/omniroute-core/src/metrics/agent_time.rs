//! Agent time: how an agent's state classifies the time it spends, and the sums of it.

use serde::{Deserialize, Serialize};

use super::event::AgentActivity;

/// Which sums a stretch of an agent's time counts toward.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TimeClass {
    /// Not offline: the denominator of utilisation.
    pub logged_in: bool,
    /// Holding a task or in wrap-up: the numerator of occupancy and utilisation.
    pub handling: bool,
    /// Available and holding no task: idle time that could have been used.
    pub available_idle: bool,
}

impl TimeClass {
    /// The class of the time an agent in `activity` holding `tasks` tasks spends.
    pub fn of(activity: AgentActivity, tasks: u32) -> Self {
        let logged_in = activity != AgentActivity::Offline;
        Self {
            logged_in,
            handling: logged_in && (tasks > 0 || activity == AgentActivity::WrapUp),
            available_idle: activity == AgentActivity::Available && tasks == 0,
        }
    }
}

/// How many agents' time counts toward each sum: 0 or 1 for one agent, the
/// number of agents in each class for all of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Rates {
    pub handling: u64,
    pub available_idle: u64,
    pub logged_in: u64,
}

impl Rates {
    pub fn of(class: TimeClass) -> Self {
        Self {
            handling: u64::from(class.handling),
            available_idle: u64::from(class.available_idle),
            logged_in: u64::from(class.logged_in),
        }
    }

    /// `self - from + to`: the rates of a group after one member moved from `from` to `to`.
    #[must_use]
    pub fn moved(self, from: Self, to: Self) -> Self {
        Self {
            handling: self.handling - from.handling + to.handling,
            available_idle: self.available_idle - from.available_idle + to.available_idle,
            logged_in: self.logged_in - from.logged_in + to.logged_in,
        }
    }
}

/// Sums of agent time, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AgentTime {
    pub handling: u64,
    pub available_idle: u64,
    pub logged_in: u64,
}

impl AgentTime {
    /// Adds `micros` of time at `rates`.
    #[inline]
    pub fn accrue(&mut self, rates: Rates, micros: u64) {
        self.handling += rates.handling * micros;
        self.available_idle += rates.available_idle * micros;
        self.logged_in += rates.logged_in * micros;
    }

    pub fn add(&mut self, other: &Self) {
        self.handling += other.handling;
        self.available_idle += other.available_idle;
        self.logged_in += other.logged_in;
    }

    /// `self - earlier`, where `earlier` is a cumulative total taken before `self`.
    #[must_use]
    pub fn since(self, earlier: Self) -> Self {
        Self {
            handling: self.handling.saturating_sub(earlier.handling),
            available_idle: self.available_idle.saturating_sub(earlier.available_idle),
            logged_in: self.logged_in.saturating_sub(earlier.logged_in),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_the_documented_rules() {
        use AgentActivity::{Available, Away, NotResponding, Offline, WrapUp};
        let class = |logged_in, handling, available_idle| TimeClass { logged_in, handling, available_idle };
        assert_eq!(TimeClass::of(Offline, 0), class(false, false, false));
        // Tasks held while offline count toward nothing: offline time is not logged in.
        assert_eq!(TimeClass::of(Offline, 2), class(false, false, false));
        assert_eq!(TimeClass::of(Available, 0), class(true, false, true));
        assert_eq!(TimeClass::of(Available, 1), class(true, true, false));
        assert_eq!(TimeClass::of(Away, 0), class(true, false, false));
        assert_eq!(TimeClass::of(Away, 1), class(true, true, false));
        assert_eq!(TimeClass::of(NotResponding, 0), class(true, false, false));
        assert_eq!(TimeClass::of(WrapUp, 0), class(true, true, false));
    }

    #[test]
    fn accrual_adds_to_the_sums_of_the_class() {
        let mut time = AgentTime::default();
        time.accrue(Rates::of(TimeClass::of(AgentActivity::Available, 0)), 10);
        time.accrue(Rates::of(TimeClass::of(AgentActivity::WrapUp, 0)), 5);
        time.accrue(Rates::of(TimeClass::of(AgentActivity::Offline, 0)), 100);
        assert_eq!(time, AgentTime { handling: 5, available_idle: 10, logged_in: 15 });
        let mut doubled = time;
        doubled.add(&time);
        assert_eq!(doubled.since(time), time);
        assert!(time.since(time).is_empty());
        // Two agents handling, one of them logged in only: rates multiply.
        let group = Rates { handling: 2, available_idle: 0, logged_in: 3 };
        let mut time = AgentTime::default();
        time.accrue(group, 10);
        assert_eq!(time, AgentTime { handling: 20, available_idle: 0, logged_in: 30 });
        let idle = Rates::of(TimeClass::of(AgentActivity::Available, 0));
        let busy = Rates::of(TimeClass::of(AgentActivity::Available, 1));
        assert_eq!(group.moved(busy, idle), Rates { handling: 1, available_idle: 1, logged_in: 3 });
    }
}
