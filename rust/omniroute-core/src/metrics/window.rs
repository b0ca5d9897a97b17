//! Sliding windows ending at `now`, kept as running totals over a ring of time slots.
//!
//! Time is cut into slots of `window_slot_seconds`. A window of `w` seconds is
//! the current (partial) slot and the `w / slot - 1` slots before it, so it
//! starts at `(floor(now / slot) - w / slot + 1) * slot` and spans between
//! `w - slot` and `w` seconds. An event adds into every window's running total
//! (a span of [`LiveFigures`]) as it happens; when a slot leaves a window, what
//! the slot added is subtracted from that window's total. Counters are
//! integers, so the totals always equal a recount of the events inside the window.
//!
//! The hot path only notes which dimensions an event touched. What a slot
//! added to a dimension is worked out once, when the slot ends: the
//! dimension's since-start counters then, minus what they were when the slot
//! began (kept per dimension as `base`).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::config::MetricsConfig;
use super::counts::COUNTERS;
use super::dimension::{DimRef, DimensionKind, PerDimension};
use super::histogram::BUCKETS;
use super::live::{LiveFigures, FIRST_WINDOW, SINCE_START};
use super::time::Micros;

/// One answered contact's wait, remembered by the slot so windows can take it back out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WaitRecord {
    pub bucket: u16,
    pub queue: u32,
    pub channel: u32,
    pub agent: u32,
}

impl WaitRecord {
    fn dims(self) -> [DimRef; 4] {
        [DimRef::OVERALL, DimRef::queue(self.queue), DimRef::channel(self.channel), DimRef::agent(self.agent)]
    }
}

/// What one slot added, per dimension touched, and the waits answered in it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Slot {
    index: i64,
    entries: Vec<(DimRef, [u64; COUNTERS])>,
    waits: Vec<WaitRecord>,
}

/// The slot in progress: which dimensions were touched; their counts are worked out when it ends.
#[derive(Clone, Debug, Default)]
struct CurrentSlot {
    index: i64,
    touched: Vec<DimRef>,
    waits: Vec<WaitRecord>,
}

/// The last slot that touched a dimension, and which counters it moved there (`1 << field`).
#[derive(Clone, Copy, Debug)]
struct Touch {
    slot: i64,
    fields: u32,
}

impl Default for Touch {
    fn default() -> Self {
        Self { slot: i64::MIN, fields: 0 }
    }
}

/// The windows as saved: the past slots, and the current one with its counts worked out.
#[derive(Serialize)]
pub(crate) struct SavedWindowsRef<'a> {
    past: &'a VecDeque<Slot>,
    current: Option<Slot>,
}

#[derive(Deserialize)]
pub(crate) struct SavedWindows {
    past: VecDeque<Slot>,
    current: Option<Slot>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Windows {
    /// Past slots still inside some window, consecutive, oldest first.
    past: VecDeque<Slot>,
    /// Empty until the first event.
    current: Option<CurrentSlot>,
    slot_micros: Micros,
    /// Slots per window (the current slot included), in configuration order.
    spans: Vec<i64>,
    /// Slots in the longest window (at least 1).
    kept: i64,
    /// Per dimension, the last slot that touched it and the counters moved in it.
    last_touched: PerDimension<Touch>,
    /// Per dimension, its since-start counters when the current slot began (valid for the
    /// dimensions the current slot touched; refreshed when a slot that touched it ends).
    base: PerDimension<[u64; COUNTERS]>,
    /// Spare slot buffers, so ending a slot does not allocate.
    spare: Vec<Slot>,
}

impl Windows {
    pub fn new(config: &MetricsConfig) -> Self {
        let mut windows = Self::default();
        windows.configure(config);
        windows
    }

    fn configure(&mut self, config: &MetricsConfig) {
        self.slot_micros = config.slot_micros();
        self.spans = config.windows.iter().map(|&w| i64::from(w / config.window_slot_seconds)).collect();
        self.kept = self.spans.iter().copied().max().unwrap_or(1);
        self.last_touched = PerDimension::default();
        self.base = PerDimension::default();
    }

    pub fn grow(&mut self, kind: DimensionKind, len: usize) {
        self.last_touched.grow(kind, len);
        self.base.grow(kind, len);
    }

    /// Index of the current slot, once started.
    pub fn current(&self) -> Option<i64> {
        self.current.as_ref().map(|slot| slot.index)
    }

    /// Where the slot after the current one starts: nothing expires before then.
    pub fn next_boundary(&self) -> Micros {
        self.current().map_or(Micros::MIN, |current| (current + 1) * self.slot_micros)
    }

    /// Moves the current slot to the one holding `t`, taking what leaves each window out of `live`.
    pub fn advance_to(&mut self, t: Micros, live: &mut LiveFigures) {
        let target = t.div_euclid(self.slot_micros);
        let Some(current) = self.current() else {
            self.current = Some(CurrentSlot { index: target, ..CurrentSlot::default() });
            return;
        };
        if target <= current {
            return;
        }
        // After `kept` steps every slot has left every window: skip the rest of a long gap.
        for _ in 0..(target - current).min(self.kept) {
            self.step(live);
        }
        let offset = target - self.current().unwrap_or(target);
        for slot in &mut self.past {
            slot.index += offset;
        }
        if let Some(slot) = &mut self.current {
            slot.index += offset;
        }
    }

    /// Ends the current slot and starts the next.
    fn step(&mut self, live: &mut LiveFigures) {
        let Some(current) = self.current.as_mut() else {
            return;
        };
        let next = current.index + 1;
        let mut ended = self.spare.pop().unwrap_or_default();
        ended.index = current.index;
        for &dim in &current.touched {
            let base = self.base.get_mut(dim);
            let mut added = [0; COUNTERS];
            let mut fields = self.last_touched.get(dim).fields;
            // Only the counters this slot moved: the others' lines stay untouched.
            while fields != 0 {
                let f = fields.trailing_zeros() as usize;
                fields &= fields - 1;
                let now = live.cell(dim, SINCE_START, f);
                added[f] = now.wrapping_sub(base[f]);
                base[f] = now;
            }
            ended.entries.push((dim, added));
        }
        current.touched.clear();
        std::mem::swap(&mut ended.waits, &mut current.waits);
        current.index = next;
        self.past.push_back(ended);
        let oldest = self.past.front().map_or(next, |slot| slot.index);
        for (w, &span) in self.spans.iter().enumerate() {
            // The slot leaving this window as `next` becomes current.
            let leaving = next - span;
            if leaving >= oldest {
                apply(live, FIRST_WINDOW + w, &self.past[(leaving - oldest) as usize], false);
            }
        }
        while self.past.front().is_some_and(|slot| slot.index <= next - self.kept) {
            if let Some(mut slot) = self.past.pop_front() {
                slot.entries.clear();
                slot.waits.clear();
                self.spare.push(slot);
            }
        }
    }

    /// Notes that a contact event moved counters `fields` (`1 << field`) of `dims`
    /// (and answered a contact after `wait`).
    #[inline]
    pub fn touch(&mut self, dims: &[DimRef], fields: u32, wait: Option<WaitRecord>) {
        if self.spans.is_empty() {
            return;
        }
        let Some(current) = self.current.as_mut() else {
            return;
        };
        for &dim in dims {
            let last = self.last_touched.get_mut(dim);
            if last.slot == current.index {
                last.fields |= fields;
            } else {
                *last = Touch { slot: current.index, fields };
                current.touched.push(dim);
            }
        }
        if let Some(wait) = wait {
            current.waits.push(wait);
        }
    }

    /// Number of windows.
    pub fn count(&self) -> usize {
        self.spans.len()
    }

    /// Where window `w` starts, given the current slot.
    pub fn start_of(&self, w: usize) -> Micros {
        let current = self.current().unwrap_or(0);
        (current - self.spans[w] + 1) * self.slot_micros
    }

    /// The oldest start of any window: agent history older than this is not needed.
    pub fn horizon(&self) -> Micros {
        let current = self.current().unwrap_or(0);
        (current - self.kept + 1) * self.slot_micros
    }

    /// What is saved: the past slots, and the current one with what it added so far.
    pub fn saved<'a>(&'a self, live: &LiveFigures) -> SavedWindowsRef<'a> {
        let current = self.current.as_ref().map(|current| Slot {
            index: current.index,
            entries: current
                .touched
                .iter()
                .map(|&dim| {
                    let now = live.cells(dim, SINCE_START);
                    let base = self.base.get(dim);
                    let fields = self.last_touched.get(dim).fields;
                    let added =
                        std::array::from_fn(|f| if fields & (1 << f) == 0 { 0 } else { now[f].wrapping_sub(base[f]) });
                    (dim, added)
                })
                .collect(),
            waits: current.waits.clone(),
        });
        SavedWindowsRef { past: &self.past, current }
    }

    /// Restores saved windows, checking them against the configuration and the
    /// names, and recomputes the window spans of `live` from the slots.
    pub fn restore(
        saved: SavedWindows,
        config: &MetricsConfig,
        lens: [(DimensionKind, usize); 3],
        live: &mut LiveFigures,
    ) -> Result<Self, String> {
        let mut windows = Self::new(config);
        for (kind, len) in lens {
            windows.grow(kind, len);
        }
        let len_of = |kind: DimensionKind| match kind {
            DimensionKind::Overall => 1,
            other => lens.iter().find(|(k, _)| *k == other).map_or(0, |&(_, len)| len),
        };
        let slots: Vec<&Slot> = saved.past.iter().chain(saved.current.as_ref()).collect();
        if slots.len() > windows.kept as usize {
            return Err(format!("{} window slots kept, at most {} expected", slots.len(), windows.kept));
        }
        if saved.current.is_none() && !saved.past.is_empty() {
            return Err("window slots saved without a current slot".into());
        }
        for pair in slots.windows(2) {
            if pair[0].index + 1 != pair[1].index {
                return Err("window slots are not consecutive".into());
            }
        }
        for slot in &slots {
            let dims_ok = slot.entries.iter().all(|(dim, _)| (dim.key as usize) < len_of(dim.kind));
            let waits_ok = slot.waits.iter().all(|w| {
                w.bucket < BUCKETS
                    && (w.queue as usize) < len_of(DimensionKind::Queue)
                    && (w.channel as usize) < len_of(DimensionKind::Channel)
                    && (w.agent as usize) < len_of(DimensionKind::Agent)
            });
            if !dims_ok || !waits_ok {
                return Err("a window slot refers to an unknown queue, channel, agent or wait bucket".into());
            }
        }
        live.clear_windows();
        let Some(current_index) = saved.current.as_ref().map(|slot| slot.index) else {
            return Ok(windows);
        };
        for (w, &span) in windows.spans.iter().enumerate() {
            for slot in slots.iter().filter(|slot| slot.index > current_index - span) {
                apply(live, FIRST_WINDOW + w, slot, true);
            }
        }
        let Some(current) = saved.current else {
            return Ok(windows);
        };
        // Every dimension's base is its since-start counters minus what the current slot added.
        for (dim, _) in live.dims() {
            *windows.base.get_mut(dim) = live.cells(dim, SINCE_START);
        }
        let mut touched = Vec::with_capacity(current.entries.len());
        for &(dim, added) in &current.entries {
            if windows.last_touched.get(dim).slot == current.index {
                return Err("the current window slot names a dimension twice".into());
            }
            let fields = (0..COUNTERS).filter(|&f| added[f] != 0).fold(0, |mask, f| mask | 1 << f);
            *windows.last_touched.get_mut(dim) = Touch { slot: current.index, fields };
            let base = windows.base.get_mut(dim);
            *base = std::array::from_fn(|f| base[f].wrapping_sub(added[f]));
            touched.push(dim);
        }
        windows.past = saved.past;
        windows.current = Some(CurrentSlot { index: current.index, touched, waits: current.waits });
        Ok(windows)
    }
}

/// Adds a slot to (or takes it out of) one window span of `live`.
fn apply(live: &mut LiveFigures, span: usize, slot: &Slot, add: bool) {
    for (dim, cells) in &slot.entries {
        live.adjust(*dim, span, cells, add);
    }
    for wait in &slot.waits {
        for dim in wait.dims() {
            live.adjust_wait(dim, span, wait.bucket, add);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::counts::Contribution;
    use crate::metrics::histogram::bucket_of;

    const S: Micros = 1_000_000;
    const LENS: [(DimensionKind, usize); 3] =
        [(DimensionKind::Queue, 2), (DimensionKind::Channel, 1), (DimensionKind::Agent, 1)];

    struct Fixture {
        config: MetricsConfig,
        windows: Windows,
        live: LiveFigures,
    }

    fn fixture(spans: Vec<u32>) -> Fixture {
        let config = MetricsConfig { windows: spans, window_slot_seconds: 60, ..MetricsConfig::default() };
        let mut windows = Windows::new(&config);
        let mut live = LiveFigures::new(config.windows.len());
        for (kind, len) in LENS {
            windows.grow(kind, len);
            live.grow(kind, len);
        }
        Fixture { config, windows, live }
    }

    impl Fixture {
        fn advance_to(&mut self, t: Micros) {
            self.windows.advance_to(t, &mut self.live);
        }

        fn record(&mut self, t: Micros, dims: &[DimRef], contribution: Contribution, wait: Option<WaitRecord>) {
            self.advance_to(t);
            let deltas = contribution.deltas();
            self.live.add(dims, &deltas, wait.map(|w| w.bucket));
            self.windows.touch(dims, deltas.fields(), wait);
        }

        fn offered(&mut self, t: Micros, queue: u32) {
            self.record(t, &[DimRef::OVERALL, DimRef::queue(queue)], Contribution::Offered, None);
        }

        fn offered_in(&self, w: usize, dim: DimRef) -> u64 {
            self.live.counts(dim, FIRST_WINDOW + w).offered
        }

        fn save_and_restore(&self) -> (Windows, LiveFigures) {
            let bytes = rmp_serde::to_vec_named(&self.windows.saved(&self.live)).unwrap();
            let mut live = self.live.clone();
            live.clear_windows();
            let windows =
                Windows::restore(rmp_serde::from_slice(&bytes).unwrap(), &self.config, LENS, &mut live).unwrap();
            (windows, live)
        }
    }

    #[test]
    fn events_leave_a_window_when_their_slot_does() {
        // Windows of 2 and 3 one-minute slots.
        let mut f = fixture(vec![120, 180]);
        f.offered(10 * S, 0); // slot 0
        f.offered(70 * S, 1); // slot 1
        assert_eq!(f.windows.start_of(0), 0);
        assert_eq!(f.windows.next_boundary(), 120 * S);
        assert_eq!(f.offered_in(0, DimRef::OVERALL), 2);
        f.advance_to(120 * S); // slot 2: slot 0 leaves the 2-slot window only
        assert_eq!(f.windows.start_of(0), 60 * S);
        assert_eq!(f.windows.start_of(1), 0);
        assert_eq!(f.offered_in(0, DimRef::OVERALL), 1);
        assert_eq!(f.offered_in(0, DimRef::queue(0)), 0);
        assert_eq!(f.offered_in(1, DimRef::OVERALL), 2);
        f.advance_to(180 * S); // slot 3
        assert_eq!(f.offered_in(0, DimRef::OVERALL), 0);
        assert_eq!(f.offered_in(1, DimRef::OVERALL), 1);
        assert_eq!(f.offered_in(1, DimRef::queue(1)), 1);
        assert_eq!(f.windows.horizon(), 60 * S);
        // Since start keeps everything.
        assert_eq!(f.live.counts(DimRef::OVERALL, SINCE_START).offered, 2);
    }

    #[test]
    fn a_slot_records_what_it_added_even_when_a_dimension_was_touched_before() {
        let mut f = fixture(vec![120]);
        f.offered(0, 0);
        f.offered(1, 0);
        f.offered(70 * S, 0); // queue 0 again in slot 1: its base is 2 offered
        f.offered(71 * S, 1);
        f.advance_to(120 * S); // slot 0 leaves: 2 offered out of queue 0
        assert_eq!(f.offered_in(0, DimRef::queue(0)), 1);
        f.advance_to(180 * S); // slot 1 leaves
        assert_eq!(f.offered_in(0, DimRef::queue(0)), 0);
        assert_eq!(f.offered_in(0, DimRef::queue(1)), 0);
        assert_eq!(f.offered_in(0, DimRef::OVERALL), 0);
    }

    #[test]
    fn a_long_gap_empties_every_window_without_stepping_through_it() {
        let mut f = fixture(vec![120, 180]);
        f.offered(0, 0);
        f.advance_to(1_000_000 * 60 * S);
        assert_eq!(f.windows.current(), Some(1_000_000));
        assert!(f.windows.past.len() <= 2);
        assert!(f.windows.past.iter().all(|slot| slot.entries.is_empty()));
        assert_eq!(f.offered_in(0, DimRef::OVERALL), 0);
        assert_eq!(f.offered_in(1, DimRef::OVERALL), 0);
        f.offered(1_000_000 * 60 * S + 1, 0);
        assert_eq!(f.offered_in(1, DimRef::OVERALL), 1);
    }

    #[test]
    fn waits_leave_the_window_histograms_too() {
        let mut f = fixture(vec![60]);
        let wait = 12 * S as u64;
        let record = WaitRecord { bucket: bucket_of(wait), queue: 1, channel: 0, agent: 0 };
        let dims = [DimRef::OVERALL, DimRef::queue(1), DimRef::channel(0), DimRef::agent(0)];
        f.record(0, &dims, Contribution::Answered { wait, within: true }, Some(record));
        let mut out = [[None; 3]; 3];
        f.live.percentiles(DimRef::agent(0), &[1, 1, 1], &mut out);
        assert!(out[FIRST_WINDOW][0].is_some());
        f.advance_to(60 * S);
        assert!(f.live.counts(DimRef::queue(1), FIRST_WINDOW).is_empty());
        // The histogram of the window is empty again: asking as if one wait remained finds none.
        f.live.percentiles(DimRef::agent(0), &[1, 1, 1], &mut out);
        assert_eq!(out[FIRST_WINDOW], [None; 3]);
    }

    #[test]
    fn restored_windows_carry_on_like_the_original() {
        let mut f = fixture(vec![120, 180]);
        f.offered(10 * S, 0);
        f.offered(70 * S, 1);
        f.offered(130 * S, 1);
        f.offered(131 * S, 0);
        let (windows, live) = f.save_and_restore();
        assert_eq!(live, f.live);
        let mut g = Fixture { config: f.config.clone(), windows, live };
        for fixture in [&mut f, &mut g] {
            fixture.offered(140 * S, 1);
            fixture.advance_to(200 * S);
            fixture.advance_to(250 * S);
        }
        assert_eq!(g.live, f.live);
        let mut broken =
            rmp_serde::from_slice::<SavedWindows>(&rmp_serde::to_vec_named(&f.windows.saved(&f.live)).unwrap())
                .unwrap();
        broken.current = None;
        assert!(Windows::restore(broken, &f.config, LENS, &mut f.live.clone()).is_err());
        let saved = rmp_serde::from_slice::<SavedWindows>(&rmp_serde::to_vec_named(&f.windows.saved(&f.live)).unwrap())
            .unwrap();
        let short = [(DimensionKind::Queue, 1), (DimensionKind::Channel, 1), (DimensionKind::Agent, 1)];
        assert!(Windows::restore(saved, &f.config, short, &mut f.live.clone()).is_err());
    }

    #[test]
    fn no_windows_configured_means_nothing_is_kept() {
        let mut f = fixture(vec![]);
        f.offered(0, 0);
        assert_eq!(f.windows.count(), 0);
        assert!(f.windows.current.as_ref().unwrap().touched.is_empty());
        f.advance_to(3_600 * S);
        assert!(f.windows.past.is_empty());
    }
}
