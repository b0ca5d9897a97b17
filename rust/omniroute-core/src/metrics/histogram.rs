//! A sparse log-linear histogram of waits with a bounded relative error, that can be added to and subtracted from.
//!
//! Buckets are log-linear over `y = wait + 1 s`: each power of two of `y` (an
//! octave) is cut into 32 equal sub-buckets, so a bucket is at most 1/32 of its
//! lower bound wide. A percentile is reported as the middle of the bucket that
//! holds the nearest-rank sample, so it is off by at most half a bucket:
//! `|estimate - true| <= (true + 1 s) / 64` (1.6 % of the wait plus 1/64 s).
//! Counts are integers, so a sliding window subtracts an expiring slot exactly.

use serde::{Deserialize, Serialize};

/// `log2` of the sub-buckets per octave.
const SUB_BUCKET_BITS: u32 = 5;
const SUB_BUCKETS: u32 = 1 << SUB_BUCKET_BITS;
/// Octaves of `y = wait + 1 s` covered: `1 s <= y < 2^30 s`, beyond the largest accepted wait (1e9 s).
const OCTAVES: u32 = 30;
/// Number of buckets.
pub(crate) const BUCKETS: u16 = (OCTAVES * SUB_BUCKETS) as u16;

/// Bound of a percentile's error relative to `wait + 1 s`.
pub const WAIT_PERCENTILE_RELATIVE_ERROR: f64 = 1.0 / 64.0;

/// The bucket of a wait given in microseconds.
#[inline]
pub(crate) fn bucket_of(wait_micros: u64) -> u16 {
    // y >= 1, so its biased exponent is >= 1023; the top mantissa bits are the sub-bucket.
    let y = wait_micros as f64 / 1e6 + 1.0;
    let bits = y.to_bits();
    let octave = ((bits >> 52) & 0x7ff).saturating_sub(1023);
    if octave >= u64::from(OCTAVES) {
        return BUCKETS - 1;
    }
    let sub = (bits >> (52 - SUB_BUCKET_BITS)) & u64::from(SUB_BUCKETS - 1);
    (octave * u64::from(SUB_BUCKETS) + sub) as u16
}

/// The wait, in seconds, reported for a bucket: the middle of its range.
#[must_use]
pub(crate) fn representative(bucket: u16) -> f64 {
    let octave = u32::from(bucket) / SUB_BUCKETS;
    let sub = u32::from(bucket) % SUB_BUCKETS;
    let low = f64::from(1_u32 << octave);
    let width = low / f64::from(SUB_BUCKETS);
    low + width * (f64::from(sub) + 0.5) - 1.0
}

/// Counts of waits per bucket, sparse: `(bucket, count)` sorted by bucket.
/// Closed intervals keep their waits this way; live spans use
/// [`LiveFigures`](super::live::LiveFigures).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WaitHistogram {
    buckets: Vec<(u16, u64)>,
}

impl WaitHistogram {
    /// A histogram from `(bucket, count)` pairs already sorted by bucket.
    pub fn from_sorted(buckets: Vec<(u16, u64)>) -> Self {
        debug_assert!(buckets.windows(2).all(|pair| pair[0].0 < pair[1].0));
        Self { buckets }
    }

    #[cfg(test)]
    pub fn add(&mut self, bucket: u16) {
        match self.buckets.binary_search_by_key(&bucket, |&(b, _)| b) {
            Ok(i) => self.buckets[i].1 += 1,
            Err(i) => self.buckets.insert(i, (bucket, 1)),
        }
    }

    /// Adds another histogram's counts, bucket by bucket (both stay sorted).
    pub fn merge(&mut self, other: &Self) {
        if other.buckets.is_empty() {
            return;
        }
        let (mine, theirs) = (&self.buckets, &other.buckets);
        let mut merged = Vec::with_capacity(mine.len() + theirs.len());
        let (mut at_mine, mut at_theirs) = (0, 0);
        loop {
            let next = match (mine.get(at_mine), theirs.get(at_theirs)) {
                (Some(&(bucket, count)), Some(&(other_bucket, other_count))) if bucket == other_bucket => {
                    (at_mine, at_theirs) = (at_mine + 1, at_theirs + 1);
                    (bucket, count + other_count)
                }
                (Some(&pair), Some(&(other_bucket, _))) if pair.0 < other_bucket => {
                    at_mine += 1;
                    pair
                }
                (Some(&pair), None) => {
                    at_mine += 1;
                    pair
                }
                (_, Some(&pair)) => {
                    at_theirs += 1;
                    pair
                }
                (None, None) => break,
            };
            merged.push(next);
        }
        self.buckets = merged;
    }

    pub fn total(&self) -> u64 {
        self.buckets.iter().map(|&(_, count)| count).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.iter().all(|&(_, count)| count == 0)
    }

    /// Nearest-rank percentiles, `percents` ascending: the estimate of the
    /// `ceil(p/100 * n)`-th smallest wait (at least the first), in seconds;
    /// `None` when the histogram is empty.
    pub fn percentiles<const N: usize>(&self, percents: [u64; N]) -> [Option<f64>; N] {
        let mut out = [None; N];
        let total = self.total();
        if total == 0 {
            return out;
        }
        let ranks = percents.map(|p| (u128::from(total) * u128::from(p)).div_ceil(100).max(1));
        let mut next = 0;
        let mut seen = 0_u128;
        for &(bucket, count) in &self.buckets {
            seen += u128::from(count);
            while next < N && seen >= ranks[next] {
                out[next] = Some(representative(bucket));
                next += 1;
            }
            if next == N {
                break;
            }
        }
        out
    }

    /// Checks the invariants of deserialized state: sorted, distinct, in range.
    pub fn check(&self) -> Result<(), String> {
        let sorted = self.buckets.windows(2).all(|pair| pair[0].0 < pair[1].0);
        let in_range = self.buckets.iter().all(|&(bucket, _)| bucket < BUCKETS);
        if sorted && in_range {
            Ok(())
        } else {
            Err("a wait histogram is not sorted by bucket or has a bucket out of range".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_of_hand_picked_waits() {
        // 0 s: y = 1, first bucket [1, 1 + 1/32), middle 1/64 s.
        assert_eq!(bucket_of(0), 0);
        assert!((representative(0) - 1.0 / 64.0).abs() < 1e-12);
        // 30 s: y = 31 lies in octave 4 ([16, 32)), sub-buckets 0.5 wide; 31 starts sub-bucket 30.
        assert_eq!(bucket_of(30_000_000), 4 * 32 + 30);
        assert!((representative(4 * 32 + 30) - 30.25).abs() < 1e-12);
        // 165 s: y = 166 in octave 7 ([128, 256)), sub-buckets 4 wide: [164, 168), middle 166.
        assert_eq!(bucket_of(165_000_000), 7 * 32 + 9);
        assert!((representative(7 * 32 + 9) - 165.0).abs() < 1e-12);
        // The largest accepted wait still has its own octave.
        assert!(bucket_of(1_000_000_000_000_000) < BUCKETS);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    proptest! {
        #[test]
        fn estimate_is_within_the_documented_bound(wait_micros in 0_u64..1_000_000_000_000_000) {
            let wait = wait_micros as f64 / 1e6;
            let estimate = representative(bucket_of(wait_micros));
            prop_assert!((estimate - wait).abs() <= (wait + 1.0) * WAIT_PERCENTILE_RELATIVE_ERROR + 1e-9);
        }

        #[test]
        fn buckets_are_monotonic(a in 0_u64..1_000_000_000_000, b in 0_u64..1_000_000_000_000) {
            let (low, high) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(bucket_of(low) <= bucket_of(high));
        }
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut histogram = WaitHistogram::default();
        assert_eq!(histogram.percentiles([50, 90, 99]), [None, None, None]);
        for wait in [10, 30, 165] {
            histogram.add(bucket_of(wait * 1_000_000));
        }
        // n = 3: p50 is the 2nd smallest, p90 and p99 the 3rd.
        let [p50, p90, p99] = histogram.percentiles([50, 90, 99]);
        assert_eq!(p50, Some(30.25));
        assert_eq!(p90, Some(165.0));
        assert_eq!(p99, Some(165.0));
        assert_eq!(histogram.total(), 3);
    }

    #[test]
    fn merging_adds_bucket_by_bucket() {
        let mut left = WaitHistogram::from_sorted(vec![(1, 2), (5, 1), (9, 4)]);
        left.merge(&WaitHistogram::from_sorted(vec![(0, 1), (5, 2), (7, 1), (12, 3)]));
        assert_eq!(left, WaitHistogram::from_sorted(vec![(0, 1), (1, 2), (5, 3), (7, 1), (9, 4), (12, 3)]));
        left.merge(&WaitHistogram::default());
        assert_eq!(left.total(), 14);
        let mut empty = WaitHistogram::default();
        empty.merge(&left);
        assert_eq!(empty, left);
        assert!(empty.check().is_ok());
    }

    #[test]
    fn from_sorted_keeps_counts() {
        let histogram = WaitHistogram::from_sorted(vec![(1, 2), (5, 1)]);
        assert_eq!(histogram.total(), 3);
        assert!(!histogram.is_empty());
        assert!(WaitHistogram::default().is_empty());
        assert_eq!(histogram.percentiles([50]), [Some(representative(1))]);
    }

    #[test]
    fn check_refuses_unsorted_or_out_of_range_buckets() {
        assert!(WaitHistogram { buckets: vec![(3, 1), (2, 1)] }.check().is_err());
        assert!(WaitHistogram { buckets: vec![(BUCKETS, 1)] }.check().is_err());
        assert!(WaitHistogram { buckets: vec![(2, 1), (3, 0)] }.check().is_ok());
    }
}
