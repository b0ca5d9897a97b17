//! The live figures of every dimension, with every span side by side: since start, the current interval, each window.
//!
//! An event adds the same amounts to every span it is in, and it is in all of
//! them when it happens; spans only differ later, when a window drops a slot or
//! an interval closes. So each dimension keeps one block of counters laid out
//! field by field, each field holding one cell per span next to each other, and
//! one histogram of waits whose buckets each hold one count per span. An event
//! then touches one cache line per counter it moves, however many spans there are.

use serde::{Deserialize, Serialize};

use super::config::MAX_WINDOWS;
use super::counts::{field, Counts, Deltas, Tally, COUNTERS};
use super::dimension::{DimRef, DimensionKind, PerDimension};
use super::histogram::{representative, WaitHistogram, BUCKETS};

/// The span index of since-start figures.
pub(crate) const SINCE_START: usize = 0;
/// The span index of the current interval.
pub(crate) const INTERVAL: usize = 1;
/// The span index of the first sliding window; window `w` is `FIRST_WINDOW + w`.
pub(crate) const FIRST_WINDOW: usize = 2;
/// Most spans: since start, the current interval and the most windows.
pub(crate) const MAX_SPANS: usize = FIRST_WINDOW + MAX_WINDOWS;

/// Percentiles reported for answered waits.
pub(crate) const PERCENTILES: [u64; 3] = [50, 90, 99];

/// Wait percentiles of one span: p50, p90, p99.
pub(crate) type Percentiles = [Option<f64>; 3];

/// Counter blocks, `COUNTERS * spans` cells per dimension, per kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Blocks {
    overall: Vec<u64>,
    queues: Vec<u64>,
    channels: Vec<u64>,
    agents: Vec<u64>,
}

/// Histogram of answered waits over every span: sorted buckets, and `spans` counts per bucket.
///
/// The percentiles of every span are cached until the histogram next changes:
/// between two wallboard refreshes most dimensions answer nobody.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct SpanWaits {
    buckets: Vec<u16>,
    counts: Vec<u64>,
    #[serde(skip)]
    cached: Vec<Percentiles>,
    #[serde(skip)]
    fresh: bool,
    /// Where the last wait went: most waits of a dimension fall in the same
    /// few buckets (no wait at all, mostly), so this often spares the search.
    #[serde(skip)]
    hint: usize,
}

impl PartialEq for SpanWaits {
    fn eq(&self, other: &Self) -> bool {
        self.buckets == other.buckets && self.counts == other.counts
    }
}

impl SpanWaits {
    /// One more wait in `bucket`, in every span.
    #[inline]
    fn add(&mut self, bucket: u16, spans: usize) {
        self.fresh = false;
        let i = self.find_or_insert(bucket, spans);
        for count in &mut self.counts[i * spans..(i + 1) * spans] {
            *count += 1;
        }
    }

    #[inline]
    fn find_or_insert(&mut self, bucket: u16, spans: usize) -> usize {
        if self.buckets.get(self.hint) == Some(&bucket) {
            return self.hint;
        }
        self.hint = match self.buckets.binary_search(&bucket) {
            Ok(i) => i,
            Err(i) => {
                self.buckets.insert(i, bucket);
                let end = self.counts.len();
                self.counts.resize(end + spans, 0);
                self.counts.copy_within(i * spans..end, (i + 1) * spans);
                self.counts[i * spans..(i + 1) * spans].fill(0);
                i
            }
        };
        self.hint
    }

    /// One wait more (`add`) or less in `bucket`, in span `span` only.
    fn adjust(&mut self, bucket: u16, spans: usize, span: usize, add: bool) {
        self.fresh = false;
        if add {
            let i = self.find_or_insert(bucket, spans);
            self.counts[i * spans + span] += 1;
        } else if let Ok(i) = self.buckets.binary_search(&bucket) {
            let count = &mut self.counts[i * spans + span];
            debug_assert!(*count > 0, "removing a wait that was never added");
            *count = count.saturating_sub(1);
        }
    }

    /// Nearest-rank percentiles of every span; `totals[s]` is span `s`'s number of waits.
    ///
    /// The median is found walking up from the shortest wait, p90 and p99
    /// walking down from the longest, so a pass reads about half the buckets.
    fn percentiles(&self, spans: usize, totals: &[u64], out: &mut [Percentiles]) {
        // Ranks counted from the bottom for p50, from the top for p90 and p99.
        // A span with no waits (or one the caller does not ask about) is never looked at.
        let mut from_bottom = [u64::MAX; MAX_SPANS];
        let mut from_top = [[u64::MAX; 2]; MAX_SPANS];
        let mut pending_low = 0;
        let mut pending_high = 0;
        for s in 0..spans {
            out[s] = [None; 3];
            let n = totals[s];
            if n > 0 {
                let rank = |p: u64| (n * p).div_ceil(100).max(1);
                from_bottom[s] = rank(PERCENTILES[0]);
                from_top[s] = [n + 1 - rank(PERCENTILES[1]), n + 1 - rank(PERCENTILES[2])];
                pending_low += 1;
                pending_high += 1;
            }
        }
        let mut seen = [0_u64; MAX_SPANS];
        for (i, &bucket) in self.buckets.iter().enumerate() {
            if pending_low == 0 {
                break;
            }
            for (s, &count) in self.counts[i * spans..(i + 1) * spans].iter().enumerate() {
                if count > 0 && from_bottom[s] != u64::MAX && out[s][0].is_none() {
                    seen[s] += count;
                    if seen[s] >= from_bottom[s] {
                        out[s][0] = Some(representative(bucket));
                        pending_low -= 1;
                    }
                }
            }
        }
        let mut seen = [0_u64; MAX_SPANS];
        for (i, &bucket) in self.buckets.iter().enumerate().rev() {
            if pending_high == 0 {
                break;
            }
            for (s, &count) in self.counts[i * spans..(i + 1) * spans].iter().enumerate() {
                if count > 0 && from_top[s][0] != u64::MAX && out[s][1].is_none() {
                    seen[s] += count;
                    if seen[s] >= from_top[s][1] && out[s][2].is_none() {
                        out[s][2] = Some(representative(bucket));
                    }
                    if seen[s] >= from_top[s][0] {
                        out[s][1] = Some(representative(bucket));
                        pending_high -= 1;
                    }
                }
            }
        }
    }

    /// The histogram of span `span`, left as it is.
    fn histogram(&self, spans: usize, span: usize) -> WaitHistogram {
        let held = self.buckets.iter().enumerate().filter_map(|(i, &bucket)| {
            let count = self.counts[i * spans + span];
            (count > 0).then_some((bucket, count))
        });
        WaitHistogram::from_sorted(held.collect())
    }

    /// The histogram of span `span`, which is then emptied; it holds
    /// `held` waits (the span's answered count: each answer adds one wait).
    /// The walk stops once they are all taken: the buckets of the longer
    /// waits seen since start are mostly empty in a fresh interval.
    fn take(&mut self, spans: usize, span: usize, held: u64) -> WaitHistogram {
        self.fresh = false;
        let mut taken = Vec::new();
        let mut left = held;
        for (i, &bucket) in self.buckets.iter().enumerate() {
            if left == 0 {
                break;
            }
            let count = std::mem::take(&mut self.counts[i * spans + span]);
            if count > 0 {
                taken.push((bucket, count));
                left = left.saturating_sub(count);
            }
        }
        debug_assert!(
            (0..self.buckets.len()).all(|i| self.counts[i * spans + span] == 0),
            "a span held more waits than answers"
        );
        WaitHistogram::from_sorted(taken)
    }

    fn check(&self, spans: usize) -> Result<(), String> {
        let sorted = self.buckets.windows(2).all(|pair| pair[0] < pair[1]);
        let in_range = self.buckets.iter().all(|&bucket| bucket < BUCKETS);
        if sorted && in_range && self.counts.len() == self.buckets.len() * spans {
            Ok(())
        } else {
            Err("a wait histogram is out of order, out of range or of the wrong size".into())
        }
    }
}

/// Every dimension's counters and wait histogram over every span.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct LiveFigures {
    spans: usize,
    counts: Blocks,
    waits: PerDimension<SpanWaits>,
}

impl LiveFigures {
    /// Figures for since-start, the current interval and `windows` windows.
    pub fn new(windows: usize) -> Self {
        let spans = FIRST_WINDOW + windows.min(MAX_WINDOWS);
        Self {
            spans,
            counts: Blocks { overall: vec![0; COUNTERS * spans], ..Blocks::default() },
            waits: PerDimension::default(),
        }
    }

    pub fn spans(&self) -> usize {
        self.spans
    }

    pub fn grow(&mut self, kind: DimensionKind, len: usize) {
        let stride = COUNTERS * self.spans;
        let cells = match kind {
            DimensionKind::Overall => return,
            DimensionKind::Queue => &mut self.counts.queues,
            DimensionKind::Channel => &mut self.counts.channels,
            DimensionKind::Agent => &mut self.counts.agents,
        };
        if cells.len() < len * stride {
            cells.resize(len * stride, 0);
        }
        self.waits.grow(kind, len);
    }

    #[inline]
    fn block(&self, dim: DimRef) -> &[u64] {
        let stride = COUNTERS * self.spans;
        let start = dim.key as usize * stride;
        let cells = match dim.kind {
            DimensionKind::Overall => &self.counts.overall,
            DimensionKind::Queue => &self.counts.queues,
            DimensionKind::Channel => &self.counts.channels,
            DimensionKind::Agent => &self.counts.agents,
        };
        &cells[start..start + stride]
    }

    #[inline]
    fn block_mut(&mut self, dim: DimRef) -> &mut [u64] {
        let stride = COUNTERS * self.spans;
        let start = dim.key as usize * stride;
        let cells = match dim.kind {
            DimensionKind::Overall => &mut self.counts.overall,
            DimensionKind::Queue => &mut self.counts.queues,
            DimensionKind::Channel => &mut self.counts.channels,
            DimensionKind::Agent => &mut self.counts.agents,
        };
        &mut cells[start..start + stride]
    }

    /// Adds what a contact event moves to every span of every dimension in `dims`.
    #[inline]
    pub fn add(&mut self, dims: &[DimRef], deltas: &Deltas, wait_bucket: Option<u16>) {
        // The usual numbers of spans get loops of known length, which compile to a few vector adds.
        match self.spans {
            2 => self.add_cells::<2>(dims, deltas.as_slice()),
            3 => self.add_cells::<3>(dims, deltas.as_slice()),
            4 => self.add_cells::<4>(dims, deltas.as_slice()),
            5 => self.add_cells::<5>(dims, deltas.as_slice()),
            _ => {
                let spans = self.spans;
                for &dim in dims {
                    let block = self.block_mut(dim);
                    for &(f, amount) in deltas.as_slice() {
                        for cell in block[f * spans..].iter_mut().take(spans) {
                            *cell = cell.wrapping_add(amount);
                        }
                    }
                }
            }
        }
        if let Some(bucket) = wait_bucket {
            let spans = self.spans;
            for &dim in dims {
                self.waits.get_mut(dim).add(bucket, spans);
            }
        }
    }

    #[inline]
    fn add_cells<const SPANS: usize>(&mut self, dims: &[DimRef], deltas: &[(usize, u64)]) {
        for &dim in dims {
            let block = self.block_mut(dim);
            for &(f, amount) in deltas {
                if let Some(cells) = block.get_mut(f * SPANS..(f + 1) * SPANS) {
                    for cell in cells {
                        *cell = cell.wrapping_add(amount);
                    }
                }
            }
        }
    }

    /// Every dimension, overall first.
    pub fn dims(&self) -> impl Iterator<Item = (DimRef, &SpanWaits)> {
        self.waits.iter()
    }

    /// Adds (or takes away) counters to one span of one dimension.
    pub fn adjust(&mut self, dim: DimRef, span: usize, cells: &[u64; COUNTERS], add: bool) {
        let spans = self.spans;
        let block = self.block_mut(dim);
        // Most counters of a slot are zero: skipping them skips their cache lines.
        for (f, &amount) in cells.iter().enumerate().filter(|&(_, &amount)| amount != 0) {
            let cell = &mut block[f * spans + span];
            *cell = if add { cell.wrapping_add(amount) } else { cell.wrapping_sub(amount) };
        }
    }

    /// Adds (or takes away) one wait in one span of one dimension.
    pub fn adjust_wait(&mut self, dim: DimRef, span: usize, bucket: u16, add: bool) {
        let spans = self.spans;
        self.waits.get_mut(dim).adjust(bucket, spans, span, add);
    }

    /// The counters of one span of one dimension.
    #[inline]
    pub fn counts(&self, dim: DimRef, span: usize) -> Counts {
        let cells = self.cells(dim, span);
        Counts::from_fn(|f| cells[f])
    }

    /// Counter `f` of one span of one dimension.
    #[inline]
    pub fn cell(&self, dim: DimRef, span: usize, f: usize) -> u64 {
        self.block(dim)[f * self.spans + span]
    }

    /// The counters of one span of one dimension, in [`field`](super::counts::field) order.
    #[inline]
    pub fn cells(&self, dim: DimRef, span: usize) -> [u64; COUNTERS] {
        let spans = self.spans;
        let block = self.block(dim);
        std::array::from_fn(|f| block[f * spans + span])
    }

    /// Wait percentiles of every span of `dim`; `answered[s]` is span `s`'s answered count
    /// (0 for a span not wanted).
    pub fn percentiles(&self, dim: DimRef, answered: &[u64], out: &mut [Percentiles]) {
        self.waits.get(dim).percentiles(self.spans, answered, out);
    }

    /// The answered waits of one span of one dimension.
    pub fn span_waits(&self, dim: DimRef, span: usize) -> WaitHistogram {
        self.waits.get(dim).histogram(self.spans, span)
    }

    /// Brings the cached wait percentiles of every span of `dim` up to date.
    pub fn refresh_percentiles(&mut self, dim: DimRef) {
        let spans = self.spans;
        if self.waits.get(dim).fresh {
            return;
        }
        let mut answered = [0; MAX_SPANS];
        answered[..spans].copy_from_slice(&self.block(dim)[field::ANSWERED * spans..(field::ANSWERED + 1) * spans]);
        let waits = self.waits.get_mut(dim);
        let mut cached = std::mem::take(&mut waits.cached);
        cached.resize(spans, [None; 3]);
        waits.percentiles(spans, &answered[..spans], &mut cached);
        waits.cached = cached;
        waits.fresh = true;
    }

    /// The wait percentiles of every span of `dim` as of its last [`Self::refresh_percentiles`].
    pub fn cached_percentiles(&self, dim: DimRef) -> &[Percentiles] {
        &self.waits.get(dim).cached
    }

    /// Empties span `span` of every dimension, returning what the dimensions that had anything held.
    pub fn take_span(&mut self, span: usize) -> Vec<(DimRef, Tally)> {
        let spans = self.spans;
        let dims: Vec<DimRef> = self.waits.iter().map(|(dim, _)| dim).collect();
        // Sized once: a busy interval has something in nearly every dimension.
        let mut taken = Vec::with_capacity(dims.len());
        for dim in dims {
            let counts = self.counts(dim, span);
            let block = self.block_mut(dim);
            for f in 0..COUNTERS {
                block[f * spans + span] = 0;
            }
            let waits = self.waits.get_mut(dim).take(spans, span, counts.answered);
            if !counts.is_empty() || !waits.is_empty() {
                taken.push((dim, Tally { counts, waits }));
            }
        }
        taken
    }

    /// Empties the window spans, before they are rebuilt from the window slots.
    pub fn clear_windows(&mut self) {
        let spans = self.spans;
        let dims: Vec<DimRef> = self.waits.iter().map(|(dim, _)| dim).collect();
        for dim in dims {
            let block = self.block_mut(dim);
            for f in 0..COUNTERS {
                block[f * spans + FIRST_WINDOW..(f + 1) * spans].fill(0);
            }
            let waits = self.waits.get_mut(dim);
            waits.fresh = false;
            for (i, _) in waits.buckets.iter().enumerate() {
                waits.counts[i * spans + FIRST_WINDOW..(i + 1) * spans].fill(0);
            }
        }
    }

    /// Checks deserialized state: one block and one histogram per name, of the configured width.
    pub fn check(&self, windows: usize, queues: usize, channels: usize, agents: usize) -> Result<(), String> {
        if self.spans != FIRST_WINDOW + windows {
            return Err(format!("{} spans saved for {windows} windows", self.spans));
        }
        let stride = COUNTERS * self.spans;
        let c = &self.counts;
        if c.overall.len() != stride
            || c.queues.len() != queues * stride
            || c.channels.len() != channels * stride
            || c.agents.len() != agents * stride
        {
            return Err("the saved counters do not match the number of names".into());
        }
        self.waits.check_lens("wait histograms", queues, channels, agents)?;
        for (_, waits) in self.waits.iter() {
            waits.check(self.spans)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::counts::Contribution;
    use crate::metrics::histogram::bucket_of;

    fn live() -> LiveFigures {
        let mut live = LiveFigures::new(2);
        live.grow(DimensionKind::Queue, 3);
        live.grow(DimensionKind::Agent, 1);
        live
    }

    #[test]
    fn an_event_counts_in_every_span_of_its_dimensions() {
        let mut live = live();
        let dims = [DimRef::OVERALL, DimRef::queue(2)];
        live.add(&dims, &Contribution::Talk(5).deltas(), None);
        for span in 0..live.spans() {
            assert_eq!(live.counts(DimRef::queue(2), span).talk, 5);
            assert_eq!(live.counts(DimRef::OVERALL, span).talk, 5);
            assert_eq!(live.counts(DimRef::queue(1), span).talk, 0);
        }
    }

    #[test]
    fn spans_are_adjusted_and_emptied_one_at_a_time() {
        let mut live = live();
        let dims = [DimRef::OVERALL, DimRef::agent(0)];
        let wait = 12_000_000;
        live.add(&dims, &Contribution::Answered { wait, within: true }.deltas(), Some(bucket_of(wait)));
        let mut cells = [0; COUNTERS];
        cells[field::ANSWERED] = 1;
        cells[field::ANSWERED_WITHIN] = 1;
        cells[field::ANSWERED_WAIT] = wait;
        live.adjust(DimRef::agent(0), FIRST_WINDOW, &cells, false);
        live.adjust_wait(DimRef::agent(0), FIRST_WINDOW, bucket_of(wait), false);
        assert!(live.counts(DimRef::agent(0), FIRST_WINDOW).is_empty());
        assert_eq!(live.counts(DimRef::agent(0), FIRST_WINDOW + 1).answered, 1);
        let mut out = [[None; 3]; 4];
        live.percentiles(DimRef::agent(0), &[1, 1, 0, 1], &mut out);
        assert_eq!(out[0], [Some(representative(bucket_of(wait))); 3]);
        assert_eq!(out[2], [None; 3]);
        let taken = live.take_span(INTERVAL);
        assert_eq!(taken.len(), 2);
        assert_eq!(taken[1].0, DimRef::agent(0));
        assert_eq!(taken[1].1.counts.answered_wait, wait);
        assert_eq!(taken[1].1.waits.total(), 1);
        assert!(live.counts(DimRef::agent(0), INTERVAL).is_empty());
        assert_eq!(live.counts(DimRef::agent(0), SINCE_START).answered, 1);
        live.clear_windows();
        assert!(live.counts(DimRef::OVERALL, FIRST_WINDOW + 1).is_empty());
        assert!(live.check(2, 3, 0, 1).is_ok());
        assert!(live.check(1, 3, 0, 1).is_err());
        assert!(live.check(2, 2, 0, 1).is_err());
    }

    #[test]
    fn percentiles_of_every_span_in_one_pass() {
        let mut live = live();
        let dim = DimRef::queue(0);
        for wait in [10_u64, 30, 165] {
            let micros = wait * 1_000_000;
            live.add(&[dim], &Contribution::Answered { wait: micros, within: false }.deltas(), Some(bucket_of(micros)));
        }
        // The first window lost the 10 s wait.
        live.adjust_wait(dim, FIRST_WINDOW, bucket_of(10_000_000), false);
        let mut out = [[None; 3]; 4];
        live.percentiles(dim, &[3, 3, 2, 3], &mut out);
        assert_eq!(out[SINCE_START], [Some(30.25), Some(165.0), Some(165.0)]);
        assert_eq!(out[FIRST_WINDOW], [Some(30.25), Some(165.0), Some(165.0)]);
        // Only the spans asked about are computed, whatever the others hold.
        live.percentiles(dim, &[0, 3, 0, 0], &mut out);
        assert_eq!(out[INTERVAL], [Some(30.25), Some(165.0), Some(165.0)]);
        assert_eq!(out[SINCE_START], [None; 3]);
        // Two waits: p50 is the first of them.
        live.adjust_wait(dim, FIRST_WINDOW, bucket_of(10_000_000), true);
        live.adjust_wait(dim, FIRST_WINDOW, bucket_of(30_000_000), false);
        live.percentiles(dim, &[3, 3, 2, 3], &mut out);
        assert_eq!(out[FIRST_WINDOW][0], Some(representative(bucket_of(10_000_000))));
        // The cache follows the histogram (since start holds 10, 30 and 165 s).
        live.refresh_percentiles(dim);
        assert_eq!(live.cached_percentiles(dim)[SINCE_START], [Some(30.25), Some(165.0), Some(165.0)]);
        for _ in 0..3 {
            let micros = 1_000_000_000;
            live.add(&[dim], &Contribution::Answered { wait: micros, within: false }.deltas(), Some(bucket_of(micros)));
        }
        live.refresh_percentiles(dim);
        assert_eq!(live.cached_percentiles(dim)[SINCE_START][2], Some(representative(bucket_of(1_000_000_000))));
        assert_eq!(live.cached_percentiles(dim)[SINCE_START][0], Some(165.0));
    }
}
