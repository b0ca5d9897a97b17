//! Time as integer microseconds, so running totals add and subtract exactly.
//!
//! Every `at`, wait and segment length is rounded to the microsecond once, on
//! the way in. From then on sums are integers: a sliding window that adds a
//! slot and later subtracts it comes back to exactly the same total, which
//! floating-point sums would not.

/// Microseconds since the caller's epoch (or a duration in microseconds).
pub(crate) type Micros = i64;

pub(crate) const MICROS_PER_SECOND: f64 = 1e6;

/// Largest accepted `|at|`, in seconds (about 31,700 years either side of the epoch).
pub(crate) const MAX_ABS_AT: f64 = 1e12;
pub(crate) const AT_ACCEPTED: &str = "a finite number of seconds with |at| <= 1e12";

/// Largest accepted duration (wait, talk, hold, wrap-up), in seconds (about 31.7 years).
pub(crate) const MAX_SECONDS: f64 = 1e9;
pub(crate) const SECONDS_ACCEPTED: &str = "a finite number of seconds from 0 to 1e9";

/// Largest accepted `|score|` of a CSAT answer.
pub(crate) const MAX_SCORE: f64 = 1e6;
pub(crate) const SCORE_ACCEPTED: &str = "a finite number with |score| <= 1e6";

/// Rounds seconds to whole microseconds (half away from zero, like `f64::round`).
/// The caller has checked the range, so the product fits an `i64`.
#[inline]
pub(crate) fn to_micros(seconds: f64) -> Micros {
    // `f64::round` is a library call on baseline x86-64; this is a conversion and a compare.
    let scaled = seconds * MICROS_PER_SECOND;
    let truncated = scaled as Micros;
    let fraction = scaled - truncated as f64;
    if fraction >= 0.5 {
        truncated + 1
    } else if fraction <= -0.5 {
        truncated - 1
    } else {
        truncated
    }
}

/// Seconds from microseconds (exact below 2^53 µs, about 285 years).
#[inline]
pub(crate) fn to_seconds(micros: Micros) -> f64 {
    micros as f64 / MICROS_PER_SECOND
}

/// Seconds from an unsigned microsecond sum.
#[inline]
pub(crate) fn sum_to_seconds(micros: u64) -> f64 {
    micros as f64 / MICROS_PER_SECOND
}

/// Whether `value` is finite and `|value| <= limit` (or `0 <= value <= limit` when `non_negative`).
#[inline]
pub(crate) fn in_range(value: f64, limit: f64, non_negative: bool) -> bool {
    value.is_finite() && value <= limit && value >= if non_negative { 0.0 } else { -limit }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_to_nearest() {
        assert_eq!(to_micros(1.5), 1_500_000);
        assert_eq!(to_micros(0.000_000_4), 0);
        assert_eq!(to_micros(0.000_000_6), 1);
        assert_eq!(to_micros(-2.25), -2_250_000);
        assert_eq!(to_micros(0.000_000_5), 1);
        assert_eq!(to_micros(-0.000_000_5), -1);
        for seconds in [0.1, 0.7, 1.234_567_5, -3.000_000_49, 12_345.678_9, 1_700_000_000.123_456] {
            assert_eq!(to_micros(seconds), (seconds * MICROS_PER_SECOND).round() as Micros, "{seconds}");
        }
        assert_eq!(to_micros(MAX_ABS_AT), 1_000_000_000_000_000_000);
        assert!((to_seconds(to_micros(1_700_000_000.123_456)) - 1_700_000_000.123_456).abs() < 1e-6);
        assert!((sum_to_seconds(2_500_000) - 2.5).abs() < f64::EPSILON);
    }

    #[test]
    fn ranges_exclude_nan_infinity_and_negatives_where_asked() {
        assert!(in_range(0.0, 10.0, true));
        assert!(in_range(10.0, 10.0, true));
        assert!(!in_range(-0.1, 10.0, true));
        assert!(in_range(-0.1, 10.0, false));
        assert!(!in_range(f64::NAN, 10.0, false));
        assert!(!in_range(f64::INFINITY, 10.0, false));
        assert!(!in_range(10.5, 10.0, false));
    }
}
