//! Additive contact counters: what one event adds to one dimension over one span of time.

use serde::{Deserialize, Serialize};

use super::histogram::WaitHistogram;

/// Number of contact counters; see [`Counts`] for their order.
pub(crate) const COUNTERS: usize = 17;

/// Indices of the counters in [`Counts::to_array`] order. Counters one event
/// moves together sit next to each other, so they share cache lines.
pub(crate) mod field {
    pub const OFFERED: usize = 0;
    pub const ANSWERED: usize = 1;
    pub const ANSWERED_WITHIN: usize = 2;
    pub const ANSWERED_WAIT: usize = 3;
    pub const ABANDONED: usize = 4;
    pub const SHORT_ABANDONED: usize = 5;
    pub const ABANDONED_WITHIN: usize = 6;
    pub const ABANDONED_WAIT: usize = 7;
    pub const TRANSFERRED: usize = 8;
    pub const COMPLETED: usize = 9;
    pub const TALK: usize = 10;
    pub const HOLD: usize = 11;
    pub const WRAP_UP: usize = 12;
    pub const DISPOSITIONS: usize = 13;
    pub const RESOLVED: usize = 14;
    pub const CSAT_RESPONSES: usize = 15;
    pub const CSAT_SUM: usize = 16;
}

/// What one contact event adds to the counters of each dimension it touches.
/// Durations in microseconds, CSAT scores in millionths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Contribution {
    Offered,
    Answered { wait: u64, within: bool },
    Abandoned { wait: u64, short: bool, within: bool },
    Transferred,
    Completed,
    Talk(u64),
    Hold(u64),
    WrapUp(u64),
    Disposition { resolved: bool },
    Csat(i64),
}

/// Up to three `(field, amount)` increments; amounts wrap (the CSAT sum is signed).
pub(crate) struct Deltas {
    items: [(usize, u64); 3],
    len: usize,
}

impl Deltas {
    #[inline]
    pub fn as_slice(&self) -> &[(usize, u64)] {
        &self.items[..self.len]
    }

    /// The counters that actually move, as bits (`1 << field`).
    #[inline]
    pub fn fields(&self) -> u32 {
        self.as_slice().iter().filter(|&&(_, amount)| amount != 0).fold(0, |mask, &(f, _)| mask | 1 << f)
    }
}

impl Contribution {
    /// The counters this contribution moves, and by how much.
    #[inline]
    pub fn deltas(self) -> Deltas {
        use field::{
            ABANDONED, ABANDONED_WAIT, ABANDONED_WITHIN, ANSWERED, ANSWERED_WAIT, ANSWERED_WITHIN, COMPLETED,
            CSAT_RESPONSES, CSAT_SUM, DISPOSITIONS, HOLD, OFFERED, RESOLVED, SHORT_ABANDONED, TALK, TRANSFERRED,
            WRAP_UP,
        };
        let (items, len) = match self {
            Self::Offered => ([(OFFERED, 1), (0, 0), (0, 0)], 1),
            Self::Answered { wait, within } => {
                ([(ANSWERED, 1), (ANSWERED_WAIT, wait), (ANSWERED_WITHIN, u64::from(within))], 3)
            }
            Self::Abandoned { wait, short, within } => {
                let third = if short { (SHORT_ABANDONED, 1) } else { (ABANDONED_WITHIN, u64::from(within)) };
                ([(ABANDONED, 1), (ABANDONED_WAIT, wait), third], 3)
            }
            Self::Transferred => ([(TRANSFERRED, 1), (0, 0), (0, 0)], 1),
            Self::Completed => ([(COMPLETED, 1), (0, 0), (0, 0)], 1),
            Self::Talk(micros) => ([(TALK, micros), (0, 0), (0, 0)], 1),
            Self::Hold(micros) => ([(HOLD, micros), (0, 0), (0, 0)], 1),
            Self::WrapUp(micros) => ([(WRAP_UP, micros), (0, 0), (0, 0)], 1),
            Self::Disposition { resolved } => ([(DISPOSITIONS, 1), (RESOLVED, u64::from(resolved)), (0, 0)], 2),
            Self::Csat(score) => ([(CSAT_RESPONSES, 1), (CSAT_SUM, score as u64), (0, 0)], 2),
        };
        Deltas { items, len }
    }
}

/// Contact counters of one dimension over one span of time. Every field adds
/// up, so spans combine by addition and a window drops a slot by subtraction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Counts {
    pub offered: u64,
    pub answered: u64,
    /// Answered with a wait at most the queue's threshold.
    pub answered_within: u64,
    pub abandoned: u64,
    /// Abandoned with a wait below `short_abandon_seconds`.
    pub short_abandoned: u64,
    /// Abandoned with a wait at most the threshold, short abandons not included.
    pub abandoned_within: u64,
    pub transferred: u64,
    pub completed: u64,
    pub dispositions: u64,
    pub resolved: u64,
    pub csat_responses: u64,
    /// Sum of the waits of answered contacts, µs.
    pub answered_wait: u64,
    /// Sum of the waits of abandoned contacts, µs.
    pub abandoned_wait: u64,
    pub talk: u64,
    pub hold: u64,
    pub wrap_up: u64,
    /// Sum of CSAT scores, in millionths.
    pub csat_sum: i64,
}

impl Counts {
    /// The counters in [`field`] order (the CSAT sum as its two's-complement bits).
    #[cfg(test)]
    pub fn to_array(self) -> [u64; COUNTERS] {
        let mut cells = [0; COUNTERS];
        cells[field::OFFERED] = self.offered;
        cells[field::ANSWERED] = self.answered;
        cells[field::ANSWERED_WITHIN] = self.answered_within;
        cells[field::ANSWERED_WAIT] = self.answered_wait;
        cells[field::ABANDONED] = self.abandoned;
        cells[field::SHORT_ABANDONED] = self.short_abandoned;
        cells[field::ABANDONED_WITHIN] = self.abandoned_within;
        cells[field::ABANDONED_WAIT] = self.abandoned_wait;
        cells[field::TRANSFERRED] = self.transferred;
        cells[field::COMPLETED] = self.completed;
        cells[field::TALK] = self.talk;
        cells[field::HOLD] = self.hold;
        cells[field::WRAP_UP] = self.wrap_up;
        cells[field::DISPOSITIONS] = self.dispositions;
        cells[field::RESOLVED] = self.resolved;
        cells[field::CSAT_RESPONSES] = self.csat_responses;
        cells[field::CSAT_SUM] = self.csat_sum as u64;
        cells
    }

    /// The inverse of [`Self::to_array`], reading field `f` through `get(f)`.
    #[inline]
    pub fn from_fn(get: impl Fn(usize) -> u64) -> Self {
        Self {
            offered: get(field::OFFERED),
            answered: get(field::ANSWERED),
            answered_within: get(field::ANSWERED_WITHIN),
            abandoned: get(field::ABANDONED),
            short_abandoned: get(field::SHORT_ABANDONED),
            abandoned_within: get(field::ABANDONED_WITHIN),
            transferred: get(field::TRANSFERRED),
            completed: get(field::COMPLETED),
            dispositions: get(field::DISPOSITIONS),
            resolved: get(field::RESOLVED),
            csat_responses: get(field::CSAT_RESPONSES),
            answered_wait: get(field::ANSWERED_WAIT),
            abandoned_wait: get(field::ABANDONED_WAIT),
            talk: get(field::TALK),
            hold: get(field::HOLD),
            wrap_up: get(field::WRAP_UP),
            csat_sum: signed(get(field::CSAT_SUM)),
        }
    }

    #[cfg(test)]
    pub fn apply(&mut self, contribution: Contribution) {
        let mut cells = self.to_array();
        for &(f, amount) in contribution.deltas().as_slice() {
            cells[f] = cells[f].wrapping_add(amount);
        }
        *self = Self::from_fn(|f| cells[f]);
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Adds another span's counters: spans, and dimensions, combine by addition.
    pub fn add(&mut self, other: &Self) {
        self.offered = self.offered.wrapping_add(other.offered);
        self.answered = self.answered.wrapping_add(other.answered);
        self.answered_within = self.answered_within.wrapping_add(other.answered_within);
        self.abandoned = self.abandoned.wrapping_add(other.abandoned);
        self.short_abandoned = self.short_abandoned.wrapping_add(other.short_abandoned);
        self.abandoned_within = self.abandoned_within.wrapping_add(other.abandoned_within);
        self.transferred = self.transferred.wrapping_add(other.transferred);
        self.completed = self.completed.wrapping_add(other.completed);
        self.dispositions = self.dispositions.wrapping_add(other.dispositions);
        self.resolved = self.resolved.wrapping_add(other.resolved);
        self.csat_responses = self.csat_responses.wrapping_add(other.csat_responses);
        self.answered_wait = self.answered_wait.wrapping_add(other.answered_wait);
        self.abandoned_wait = self.abandoned_wait.wrapping_add(other.abandoned_wait);
        self.talk = self.talk.wrapping_add(other.talk);
        self.hold = self.hold.wrapping_add(other.hold);
        self.wrap_up = self.wrap_up.wrapping_add(other.wrap_up);
        self.csat_sum = self.csat_sum.wrapping_add(other.csat_sum);
    }
}

/// The signed value of a counter kept as two's-complement bits (the CSAT sum).
#[allow(clippy::cast_possible_wrap)]
#[inline]
fn signed(bits: u64) -> i64 {
    bits as i64
}

/// Counters plus the histogram of answered waits: everything about contacts
/// one dimension accumulated over one closed interval.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Tally {
    pub counts: Counts,
    pub waits: WaitHistogram,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_contribution_moves_its_own_counters() {
        let mut counts = Counts::default();
        counts.apply(Contribution::Offered);
        counts.apply(Contribution::Answered { wait: 10, within: true });
        counts.apply(Contribution::Answered { wait: 30, within: false });
        counts.apply(Contribution::Abandoned { wait: 3, short: true, within: true });
        counts.apply(Contribution::Abandoned { wait: 15, short: false, within: true });
        counts.apply(Contribution::Abandoned { wait: 40, short: false, within: false });
        counts.apply(Contribution::Transferred);
        counts.apply(Contribution::Completed);
        counts.apply(Contribution::Talk(100));
        counts.apply(Contribution::Hold(20));
        counts.apply(Contribution::WrapUp(30));
        counts.apply(Contribution::Disposition { resolved: true });
        counts.apply(Contribution::Disposition { resolved: false });
        counts.apply(Contribution::Csat(-2_000_000));
        assert_eq!(
            counts,
            Counts {
                offered: 1,
                answered: 2,
                answered_within: 1,
                abandoned: 3,
                short_abandoned: 1,
                // The short abandon is not counted as abandoned within threshold.
                abandoned_within: 1,
                transferred: 1,
                completed: 1,
                dispositions: 2,
                resolved: 1,
                csat_responses: 1,
                answered_wait: 40,
                abandoned_wait: 58,
                talk: 100,
                hold: 20,
                wrap_up: 30,
                csat_sum: -2_000_000,
            }
        );
    }

    #[test]
    fn arrays_round_trip_in_field_order() {
        let mut counts = Counts::default();
        counts.apply(Contribution::Csat(-7));
        counts.apply(Contribution::Hold(9));
        let array = counts.to_array();
        assert_eq!(array[field::HOLD], 9);
        assert_eq!(signed(array[field::CSAT_SUM]), -7);
        assert_eq!(Counts::from_fn(|f| array[f]), counts);
        assert!(!counts.is_empty());
        assert!(Counts::default().is_empty());
    }
}
