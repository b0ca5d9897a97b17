//! The metrics configuration: interval length, sliding windows, service-level thresholds, retention.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::MetricsError;
use super::time::{in_range, to_micros, Micros, MAX_SECONDS};

/// Most slots the longest window may span (a week of one-minute slots is 10,080).
pub const MAX_WINDOW_SLOTS: u32 = 100_000;

/// Most sliding windows.
pub const MAX_WINDOWS: usize = 16;

/// How figures are bucketed in time and judged against service-level targets.
///
/// Every field has a default, so `{}` is a valid configuration; unknown fields
/// are an error so a typo does not silently fall back to a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Length of the fixed reporting intervals, in seconds; intervals start at
    /// multiples of it (`floor(at / interval) * interval`). Default 900 (15 minutes).
    pub interval_seconds: u32,
    /// Sliding windows ending at `now`, in seconds; each a whole number of
    /// slots. Default `[900, 3600]`.
    pub windows: Vec<u32>,
    /// Granularity of the sliding windows, in seconds. Default 60.
    pub window_slot_seconds: u32,
    /// A contact is answered (or abandoned) within service level when its wait
    /// is at most this many seconds. Default 20.
    pub service_level_threshold: f64,
    /// Per-queue thresholds by queue name, overriding `service_level_threshold`.
    pub queue_thresholds: BTreeMap<String, f64>,
    /// An abandon with a wait shorter than this is a short abandon, left out of
    /// the service-level and abandon-rate denominators. Default 5; 0 turns it off.
    pub short_abandon_seconds: f64,
    /// How many past fixed intervals are kept for reports. Default 672 (a week of 15 minutes).
    pub intervals_retained: u32,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            interval_seconds: 900,
            windows: vec![900, 3600],
            window_slot_seconds: 60,
            service_level_threshold: 20.0,
            queue_thresholds: BTreeMap::new(),
            short_abandon_seconds: 5.0,
            intervals_retained: 96 * 7,
        }
    }
}

const THRESHOLD_ACCEPTED: &str = "must be a finite number of seconds from 0 to 1e9";

impl MetricsConfig {
    /// Checks every field; the error names the first bad one and what it accepts.
    pub fn validate(&self) -> Result<(), MetricsError> {
        let bad = |field: &'static str, problem: String| Err(MetricsError::InvalidConfig { field, problem });
        if self.interval_seconds == 0 {
            return bad("interval_seconds", "is 0; accepted: a whole number of seconds >= 1".into());
        }
        if self.window_slot_seconds == 0 {
            return bad("window_slot_seconds", "is 0; accepted: a whole number of seconds >= 1".into());
        }
        if self.windows.len() > MAX_WINDOWS {
            return bad("windows", format!("has {} lengths; accepted: at most {MAX_WINDOWS}", self.windows.len()));
        }
        for (i, &window) in self.windows.iter().enumerate() {
            if window == 0 || window % self.window_slot_seconds != 0 {
                return bad(
                    "windows",
                    format!(
                        "[{i}] is {window}; accepted: a positive multiple of window_slot_seconds ({})",
                        self.window_slot_seconds
                    ),
                );
            }
            if window / self.window_slot_seconds > MAX_WINDOW_SLOTS {
                return bad(
                    "windows",
                    format!(
                        "[{i}] is {window}, {} slots of {} s; accepted: at most {MAX_WINDOW_SLOTS} slots",
                        window / self.window_slot_seconds,
                        self.window_slot_seconds
                    ),
                );
            }
            if self.windows[..i].contains(&window) {
                return bad("windows", format!("[{i}] repeats {window}; accepted: distinct lengths"));
            }
        }
        if !in_range(self.service_level_threshold, MAX_SECONDS, true) {
            return bad(
                "service_level_threshold",
                format!("is {}; {THRESHOLD_ACCEPTED}", self.service_level_threshold),
            );
        }
        for (queue, &threshold) in &self.queue_thresholds {
            if !in_range(threshold, MAX_SECONDS, true) {
                return bad("queue_thresholds", format!("[{queue:?}] is {threshold}; {THRESHOLD_ACCEPTED}"));
            }
        }
        if !in_range(self.short_abandon_seconds, MAX_SECONDS, true) {
            return bad("short_abandon_seconds", format!("is {}; {THRESHOLD_ACCEPTED}", self.short_abandon_seconds));
        }
        Ok(())
    }

    /// The service-level threshold of the queue called `queue`, in microseconds.
    pub(crate) fn threshold_micros(&self, queue: &str) -> Micros {
        to_micros(self.queue_thresholds.get(queue).copied().unwrap_or(self.service_level_threshold))
    }

    pub(crate) fn slot_micros(&self) -> Micros {
        Micros::from(self.window_slot_seconds) * 1_000_000
    }

    pub(crate) fn interval_micros(&self) -> Micros {
        Micros::from(self.interval_seconds) * 1_000_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(config: &MetricsConfig) -> String {
        config.validate().unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_valid_and_as_documented() {
        let config = MetricsConfig::default();
        config.validate().unwrap();
        assert_eq!(config.interval_seconds, 900);
        assert_eq!(config.windows, vec![900, 3600]);
        assert_eq!(config.window_slot_seconds, 60);
        assert!((config.service_level_threshold - 20.0).abs() < f64::EPSILON);
        assert!((config.short_abandon_seconds - 5.0).abs() < f64::EPSILON);
        assert_eq!(config.intervals_retained, 672);
    }

    #[test]
    fn empty_input_gives_the_defaults_and_typos_are_refused() {
        let config: MetricsConfig =
            rmp_serde::from_slice(&rmp_serde::to_vec_named(&BTreeMap::<String, u32>::new()).unwrap()).unwrap();
        assert_eq!(config, MetricsConfig::default());
        let mut typo = BTreeMap::new();
        typo.insert("interval_second", 60_u32);
        assert!(rmp_serde::from_slice::<MetricsConfig>(&rmp_serde::to_vec_named(&typo).unwrap()).is_err());
    }

    #[test]
    fn each_bad_field_is_named() {
        let base = MetricsConfig::default();
        let cases: Vec<(MetricsConfig, &str)> = vec![
            (MetricsConfig { interval_seconds: 0, ..base.clone() }, "`interval_seconds` is 0"),
            (MetricsConfig { window_slot_seconds: 0, ..base.clone() }, "`window_slot_seconds` is 0"),
            (
                MetricsConfig { windows: vec![900, 90], ..base.clone() },
                "`windows` [1] is 90; accepted: a positive multiple of window_slot_seconds (60)",
            ),
            (MetricsConfig { windows: vec![0], ..base.clone() }, "`windows` [0] is 0"),
            (MetricsConfig { windows: vec![60, 60], ..base.clone() }, "[1] repeats 60"),
            (MetricsConfig { windows: vec![6_000_060], ..base.clone() }, "at most 100000 slots"),
            (
                MetricsConfig { windows: (1..=17).map(|i| i * 60).collect(), ..base.clone() },
                "has 17 lengths; accepted: at most 16",
            ),
            (MetricsConfig { service_level_threshold: f64::NAN, ..base.clone() }, "`service_level_threshold` is NaN"),
            (MetricsConfig { short_abandon_seconds: -1.0, ..base.clone() }, "`short_abandon_seconds` is -1"),
        ];
        for (config, expected) in cases {
            let message = problem(&config);
            assert!(message.contains(expected), "{message} should contain {expected}");
        }
        let mut thresholds = base.clone();
        thresholds.queue_thresholds.insert("vip".into(), -3.0);
        assert!(problem(&thresholds).contains("`queue_thresholds` [\"vip\"] is -3"));
    }

    #[test]
    fn queue_thresholds_override_the_default() {
        let mut config = MetricsConfig::default();
        config.queue_thresholds.insert("vip".into(), 10.5);
        assert_eq!(config.threshold_micros("vip"), 10_500_000);
        assert_eq!(config.threshold_micros("other"), 20_000_000);
        assert_eq!(config.slot_micros(), 60_000_000);
        assert_eq!(config.interval_micros(), 900_000_000);
        assert!(MetricsConfig { windows: vec![], ..config }.validate().is_ok());
    }
}
