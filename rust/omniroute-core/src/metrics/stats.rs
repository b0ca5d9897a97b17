//! `Stats`: the raw counts and sums of one dimension over one span of time, and every figure derived from them.

use serde::{Deserialize, Serialize};

use super::agent_time::AgentTime;
use super::counts::Counts;
use super::live::Percentiles;
use super::time::sum_to_seconds;

/// Every figure of one dimension (a queue, a channel, an agent, or overall)
/// over one span of time. See `docs/metrics.md` for each formula.
///
/// Counts are contacts, sums are seconds, ratios are fractions (0.8, not 80).
/// A ratio whose denominator is zero is `None` (null on the wire), never NaN.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Arrivals into a queue (a transferred contact arriving again counts again).
    pub offered: u64,
    pub answered: u64,
    /// Answered with a wait at most the queue's service-level threshold.
    pub answered_within_threshold: u64,
    /// Abandons, short ones included.
    pub abandoned: u64,
    /// Abandons with a wait below `short_abandon_seconds`.
    pub short_abandoned: u64,
    /// Abandons with a wait at most the threshold, short abandons not included.
    pub abandoned_within_threshold: u64,
    pub transferred: u64,
    /// Handled contacts (the denominator of AHT).
    pub completed: u64,
    pub dispositions: u64,
    /// Dispositions marked resolved.
    pub resolved: u64,
    pub csat_responses: u64,

    /// Total wait of answered contacts.
    pub wait_seconds: f64,
    /// Total wait of abandoned contacts, short ones included.
    pub abandon_wait_seconds: f64,
    pub talk_seconds: f64,
    pub hold_seconds: f64,
    pub wrap_up_seconds: f64,
    pub csat_sum: f64,
    /// Agent time holding at least one task or in wrap-up (agents and overall only).
    pub handling_seconds: f64,
    /// Agent time available and holding no task (agents and overall only).
    pub available_idle_seconds: f64,
    /// Agent time not offline (agents and overall only).
    pub logged_in_seconds: f64,

    /// `answered_within / answered` (Asterisk's `SL`): abandons play no part.
    pub service_level_answered: Option<f64>,
    /// `answered_within / (answered + abandoned - short - abandoned_within)`
    /// (Cisco "abandoned calls ignored").
    pub service_level_abandons_ignored: Option<f64>,
    /// `answered_within / (answered + abandoned - short)` (Cisco "abandoned calls have negative impact").
    pub service_level_abandons_negative: Option<f64>,
    /// `(answered_within + abandoned_within) / (answered + abandoned - short)`
    /// (Cisco "abandoned calls have positive impact"; Asterisk's `SL2` when short abandons are off).
    pub service_level_abandons_positive: Option<f64>,
    /// `(abandoned - short) / (answered + abandoned - short)`.
    pub abandon_rate: Option<f64>,
    /// Average speed of answer: `wait_seconds / answered`.
    pub asa: Option<f64>,
    /// `abandon_wait_seconds / abandoned`.
    pub average_abandon_wait: Option<f64>,
    /// Percentiles of answered contacts' waits (nearest rank, estimated; see
    /// [`WAIT_PERCENTILE_RELATIVE_ERROR`](super::WAIT_PERCENTILE_RELATIVE_ERROR)).
    pub wait_p50: Option<f64>,
    pub wait_p90: Option<f64>,
    pub wait_p99: Option<f64>,
    /// Average handle time: `(talk + hold + wrap_up) / completed`.
    pub aht: Option<f64>,
    pub average_talk: Option<f64>,
    pub average_hold: Option<f64>,
    pub average_wrap_up: Option<f64>,
    /// `handling / (handling + available_idle)` (agents and overall only).
    pub occupancy: Option<f64>,
    /// `handling / logged_in` (agents and overall only).
    pub utilisation: Option<f64>,
    /// `transferred / answered`.
    pub transfer_rate: Option<f64>,
    /// `resolved / dispositions`.
    pub resolution_rate: Option<f64>,
    /// `csat_sum / csat_responses`.
    pub average_csat: Option<f64>,
}

/// `numerator / denominator`, or `None` when the denominator is zero.
#[inline]
fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator != 0.0).then(|| numerator / denominator)
}

#[inline]
fn count_ratio(numerator: u64, denominator: u64) -> Option<f64> {
    ratio(numerator as f64, denominator as f64)
}

impl Stats {
    /// Derives every figure from contact counters, wait percentiles and agent time.
    pub(crate) fn compute(counts: &Counts, percentiles: Percentiles, time: &AgentTime) -> Self {
        let c = counts;
        // Contacts that had a service-level event: every answer and every abandon but the short ones.
        let sl_events = c.answered + c.abandoned - c.short_abandoned;
        let wait_seconds = sum_to_seconds(c.answered_wait);
        let abandon_wait_seconds = sum_to_seconds(c.abandoned_wait);
        let talk_seconds = sum_to_seconds(c.talk);
        let hold_seconds = sum_to_seconds(c.hold);
        let wrap_up_seconds = sum_to_seconds(c.wrap_up);
        let csat_sum = c.csat_sum as f64 / 1e6;
        let handling_seconds = sum_to_seconds(time.handling);
        let available_idle_seconds = sum_to_seconds(time.available_idle);
        let logged_in_seconds = sum_to_seconds(time.logged_in);
        let completed = c.completed as f64;
        let [wait_p50, wait_p90, wait_p99] = percentiles;
        Self {
            offered: c.offered,
            answered: c.answered,
            answered_within_threshold: c.answered_within,
            abandoned: c.abandoned,
            short_abandoned: c.short_abandoned,
            abandoned_within_threshold: c.abandoned_within,
            transferred: c.transferred,
            completed: c.completed,
            dispositions: c.dispositions,
            resolved: c.resolved,
            csat_responses: c.csat_responses,
            wait_seconds,
            abandon_wait_seconds,
            talk_seconds,
            hold_seconds,
            wrap_up_seconds,
            csat_sum,
            handling_seconds,
            available_idle_seconds,
            logged_in_seconds,
            service_level_answered: count_ratio(c.answered_within, c.answered),
            service_level_abandons_ignored: count_ratio(c.answered_within, sl_events - c.abandoned_within),
            service_level_abandons_negative: count_ratio(c.answered_within, sl_events),
            service_level_abandons_positive: count_ratio(c.answered_within + c.abandoned_within, sl_events),
            abandon_rate: count_ratio(c.abandoned - c.short_abandoned, sl_events),
            asa: ratio(wait_seconds, c.answered as f64),
            average_abandon_wait: ratio(abandon_wait_seconds, c.abandoned as f64),
            wait_p50,
            wait_p90,
            wait_p99,
            aht: ratio(talk_seconds + hold_seconds + wrap_up_seconds, completed),
            average_talk: ratio(talk_seconds, completed),
            average_hold: ratio(hold_seconds, completed),
            average_wrap_up: ratio(wrap_up_seconds, completed),
            occupancy: ratio(handling_seconds, handling_seconds + available_idle_seconds),
            utilisation: ratio(handling_seconds, logged_in_seconds),
            transfer_rate: count_ratio(c.transferred, c.answered),
            resolution_rate: count_ratio(c.resolved, c.dispositions),
            average_csat: ratio(csat_sum, c.csat_responses as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::counts::Contribution;

    #[test]
    fn nothing_happened_means_every_ratio_is_none() {
        let stats = Stats::compute(&Counts::default(), [None; 3], &AgentTime::default());
        assert_eq!(stats, Stats::default());
        assert!(stats.service_level_abandons_negative.is_none());
        assert!(stats.occupancy.is_none());
        assert!(stats.wait_p50.is_none());
    }

    #[test]
    fn service_levels_follow_the_cisco_and_asterisk_formulas() {
        let mut counts = Counts::default();
        // 70 answered within, 10 answered late, 10 abandoned within, 10 abandoned late, 5 short abandons.
        for (n, contribution) in [
            (70, Contribution::Answered { wait: 1, within: true }),
            (10, Contribution::Answered { wait: 1, within: false }),
            (10, Contribution::Abandoned { wait: 1, short: false, within: true }),
            (10, Contribution::Abandoned { wait: 1, short: false, within: false }),
            (5, Contribution::Abandoned { wait: 1, short: true, within: true }),
        ] {
            for _ in 0..n {
                counts.apply(contribution);
            }
        }
        let stats = Stats::compute(&counts, [Some(1.0), Some(2.0), Some(3.0)], &AgentTime::default());
        assert_eq!((stats.wait_p50, stats.wait_p90, stats.wait_p99), (Some(1.0), Some(2.0), Some(3.0)));
        // 100 service-level events: the 5 short abandons are left out.
        assert_eq!(stats.service_level_answered, Some(70.0 / 80.0));
        assert_eq!(stats.service_level_abandons_ignored, Some(70.0 / 90.0));
        assert_eq!(stats.service_level_abandons_negative, Some(70.0 / 100.0));
        assert_eq!(stats.service_level_abandons_positive, Some(80.0 / 100.0));
        assert_eq!(stats.abandon_rate, Some(20.0 / 100.0));
    }

    #[test]
    fn averages_and_rates() {
        let mut counts = Counts::default();
        counts.apply(Contribution::Answered { wait: 10_000_000, within: true });
        counts.apply(Contribution::Answered { wait: 20_000_000, within: false });
        counts.apply(Contribution::Transferred);
        counts.apply(Contribution::Completed);
        counts.apply(Contribution::Completed);
        counts.apply(Contribution::Talk(100_000_000));
        counts.apply(Contribution::Hold(20_000_000));
        counts.apply(Contribution::WrapUp(40_000_000));
        counts.apply(Contribution::Disposition { resolved: true });
        counts.apply(Contribution::Csat(4_500_000));
        let time = AgentTime { handling: 30_000_000, available_idle: 10_000_000, logged_in: 60_000_000 };
        let stats = Stats::compute(&counts, [None; 3], &time);
        assert_eq!(stats.asa, Some(15.0));
        assert_eq!(stats.aht, Some(80.0));
        assert_eq!(stats.average_talk, Some(50.0));
        assert_eq!(stats.average_hold, Some(10.0));
        assert_eq!(stats.average_wrap_up, Some(20.0));
        assert_eq!(stats.occupancy, Some(0.75));
        assert_eq!(stats.utilisation, Some(0.5));
        assert_eq!(stats.transfer_rate, Some(0.5));
        assert_eq!(stats.resolution_rate, Some(1.0));
        assert_eq!(stats.average_csat, Some(4.5));
        assert_eq!(stats.average_abandon_wait, None);
    }
}
