//! Contacts waiting right now, per queue and channel, and the longest of their waits.
//!
//! A contact waits from its arrival in a queue until it is answered, abandoned
//! or transferred out. Its wait counts from its *original* arrival: a contact
//! transferred into another queue keeps the arrival time it first had, which
//! the task table remembers until the contact is completed or abandoned.
//!
//! The oldest waiting contact of a queue (or channel) is the top of a min-heap
//! keyed by original arrival. Heaps are not updated when a contact stops
//! waiting; stale entries are recognised by their sequence number and dropped
//! when they reach the top or when a heap grows to twice its live size.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::time::Micros;

/// Task id to what is known of it. Fx hashing: ids are plain integers, the
/// table is on the hot path, and its order must be the same in every run so
/// saved state is deterministic.
type TaskMap = FxHashMap<u64, TaskEntry>;

/// Where a waiting contact waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WaitingIn {
    pub queue: u32,
    pub channel: u32,
    /// Unique per wait, so heap entries of an earlier wait are recognisably stale.
    pub seq: u64,
}

/// What is remembered of a task between its first arrival and its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TaskEntry {
    /// When the contact first arrived, µs.
    pub arrived: Micros,
    pub waiting: Option<WaitingIn>,
}

/// A heap entry: original arrival, wait sequence number, task.
type HeapEntry = Reverse<(Micros, u64, u64)>;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Waiting {
    /// Saved sorted by task id, so equal states save to equal bytes whatever the map's history.
    #[serde(serialize_with = "save_sorted", deserialize_with = "load_sorted")]
    tasks: TaskMap,
    next_seq: u64,
    // Everything below is rebuilt from `tasks` on load.
    #[serde(skip)]
    queue_heaps: Vec<BinaryHeap<HeapEntry>>,
    #[serde(skip)]
    channel_heaps: Vec<BinaryHeap<HeapEntry>>,
    #[serde(skip)]
    queue_counts: Vec<u64>,
    #[serde(skip)]
    channel_counts: Vec<u64>,
    #[serde(skip)]
    total: u64,
}

impl Waiting {
    pub fn grow_queues(&mut self, len: usize) {
        self.queue_heaps.resize_with(len, BinaryHeap::new);
        self.queue_counts.resize(len, 0);
    }

    pub fn grow_channels(&mut self, len: usize) {
        self.channel_heaps.resize_with(len, BinaryHeap::new);
        self.channel_counts.resize(len, 0);
    }

    /// The contact entered `queue`: it waits there, counting from its original arrival.
    pub fn arrived(&mut self, task: u64, queue: u32, channel: u32, at: Micros) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = self.tasks.entry(task).or_insert(TaskEntry { arrived: at, waiting: None });
        let previous = entry.waiting.replace(WaitingIn { queue, channel, seq });
        let arrived = entry.arrived;
        if let Some(previous) = previous {
            // A contact waits in one queue at a time: arriving elsewhere ends the earlier wait.
            self.uncount(previous);
        }
        self.queue_heaps[queue as usize].push(Reverse((arrived, seq, task)));
        self.channel_heaps[channel as usize].push(Reverse((arrived, seq, task)));
        self.queue_counts[queue as usize] += 1;
        self.channel_counts[channel as usize] += 1;
        self.total += 1;
    }

    /// The contact stopped waiting (answered or transferred) but may come back to a queue.
    pub fn stopped_waiting(&mut self, task: u64) {
        if let Some(entry) = self.tasks.get_mut(&task) {
            if let Some(was) = entry.waiting.take() {
                self.uncount(was);
            }
        }
    }

    /// The contact is over (abandoned, or completed and not waiting again): forget it.
    pub fn ended(&mut self, task: u64, only_if_not_waiting: bool) {
        // One lookup: the entry found is the one removed.
        let std::collections::hash_map::Entry::Occupied(entry) = self.tasks.entry(task) else {
            return;
        };
        match entry.get().waiting {
            Some(_) if only_if_not_waiting => {}
            Some(was) => {
                entry.remove();
                self.uncount(was);
            }
            None => {
                entry.remove();
            }
        }
    }

    fn uncount(&mut self, was: WaitingIn) {
        self.queue_counts[was.queue as usize] -= 1;
        self.channel_counts[was.channel as usize] -= 1;
        self.total -= 1;
        let tasks = &self.tasks;
        tidy(&mut self.queue_heaps[was.queue as usize], tasks, self.queue_counts[was.queue as usize]);
        tidy(&mut self.channel_heaps[was.channel as usize], tasks, self.channel_counts[was.channel as usize]);
    }

    pub fn queue_waiting(&self, queue: u32) -> (u64, Option<Micros>) {
        (self.queue_counts[queue as usize], oldest(&self.queue_heaps[queue as usize]))
    }

    pub fn channel_waiting(&self, channel: u32) -> (u64, Option<Micros>) {
        (self.channel_counts[channel as usize], oldest(&self.channel_heaps[channel as usize]))
    }

    /// Every waiting contact waits in exactly one queue, so the oldest overall is the oldest of the queues' oldest.
    pub fn overall_waiting(&self) -> (u64, Option<Micros>) {
        (self.total, self.queue_heaps.iter().filter_map(oldest).min())
    }

    /// Number of tasks remembered (waiting, or answered and not yet completed).
    #[cfg(test)]
    pub fn tasks_known(&self) -> usize {
        self.tasks.len()
    }

    /// Rebuilds heaps and counts from the task table after deserialization.
    pub fn rebuild(&mut self, queues: usize, channels: usize) -> Result<(), String> {
        self.queue_heaps = vec![BinaryHeap::new(); queues];
        self.channel_heaps = vec![BinaryHeap::new(); channels];
        self.queue_counts = vec![0; queues];
        self.channel_counts = vec![0; channels];
        self.total = 0;
        let mut entries: Vec<(u64, TaskEntry)> = self.tasks.iter().map(|(&task, &entry)| (task, entry)).collect();
        entries.sort_unstable_by_key(|&(task, _)| task);
        for (task, entry) in entries {
            let Some(w) = entry.waiting else { continue };
            if w.queue as usize >= queues || w.channel as usize >= channels {
                return Err(format!("task {task} waits in an unknown queue or channel"));
            }
            if w.seq >= self.next_seq {
                return Err(format!("task {task} has a wait sequence number from the future"));
            }
            self.queue_heaps[w.queue as usize].push(Reverse((entry.arrived, w.seq, task)));
            self.channel_heaps[w.channel as usize].push(Reverse((entry.arrived, w.seq, task)));
            self.queue_counts[w.queue as usize] += 1;
            self.channel_counts[w.channel as usize] += 1;
            self.total += 1;
        }
        Ok(())
    }
}

fn save_sorted<S: serde::Serializer>(tasks: &TaskMap, serializer: S) -> Result<S::Ok, S::Error> {
    let mut sorted: Vec<(u64, TaskEntry)> = tasks.iter().map(|(&task, &entry)| (task, entry)).collect();
    sorted.sort_unstable_by_key(|&(task, _)| task);
    sorted.serialize(serializer)
}

fn load_sorted<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<TaskMap, D::Error> {
    let sorted = Vec::<(u64, TaskEntry)>::deserialize(deserializer)?;
    let mut tasks = TaskMap::default();
    tasks.reserve(sorted.len());
    for (task, entry) in sorted {
        if tasks.insert(task, entry).is_some() {
            return Err(serde::de::Error::custom(format!("task {task} is saved twice")));
        }
    }
    Ok(tasks)
}

fn is_live(tasks: &TaskMap, &Reverse((_, seq, task)): &HeapEntry) -> bool {
    tasks.get(&task).and_then(|entry| entry.waiting).is_some_and(|w| w.seq == seq)
}

/// Drops stale entries from the top, and rebuilds the heap when stale entries
/// below the top outnumber the live ones, so its size stays within twice the
/// number of waiting contacts (plus a little).
fn tidy(heap: &mut BinaryHeap<HeapEntry>, tasks: &TaskMap, live: u64) {
    if live == 0 {
        // Nobody waits here: every entry is stale, none needs looking up
        // (the usual case when contacts are answered as they arrive).
        heap.clear();
        return;
    }
    while heap.peek().is_some_and(|top| !is_live(tasks, top)) {
        heap.pop();
    }
    if heap.len() as u64 > 2 * live + 32 {
        heap.retain(|entry| is_live(tasks, entry));
    }
}

/// The original arrival of the oldest waiting contact; the top is always live (see `tidy`).
fn oldest(heap: &BinaryHeap<HeapEntry>) -> Option<Micros> {
    heap.peek().map(|&Reverse((arrived, _, _))| arrived)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(queues: usize, channels: usize) -> Waiting {
        let mut w = Waiting::default();
        w.grow_queues(queues);
        w.grow_channels(channels);
        w
    }

    #[test]
    fn the_oldest_waiting_contact_sets_the_longest_wait() {
        let mut w = waiting(2, 1);
        w.arrived(1, 0, 0, 10);
        w.arrived(2, 0, 0, 20);
        w.arrived(3, 1, 0, 15);
        assert_eq!(w.queue_waiting(0), (2, Some(10)));
        assert_eq!(w.queue_waiting(1), (1, Some(15)));
        assert_eq!(w.channel_waiting(0), (3, Some(10)));
        assert_eq!(w.overall_waiting(), (3, Some(10)));
        w.stopped_waiting(1);
        assert_eq!(w.queue_waiting(0), (1, Some(20)));
        assert_eq!(w.overall_waiting(), (2, Some(15)));
        w.ended(3, false);
        assert_eq!(w.queue_waiting(1), (0, None));
        assert_eq!(w.channel_waiting(0), (1, Some(20)));
    }

    #[test]
    fn a_transferred_contact_keeps_its_original_arrival() {
        let mut w = waiting(2, 1);
        w.arrived(7, 0, 0, 100);
        w.stopped_waiting(7); // answered
        w.arrived(8, 1, 0, 150);
        w.arrived(7, 1, 0, 200); // transferred into queue 1
        assert_eq!(w.queue_waiting(1), (2, Some(100)));
        // Completing the first agent's part while the contact waits again keeps it.
        w.ended(7, true);
        assert_eq!(w.queue_waiting(1), (2, Some(100)));
        w.stopped_waiting(7);
        w.ended(7, true);
        assert_eq!(w.tasks_known(), 1);
    }

    #[test]
    fn arriving_elsewhere_ends_the_earlier_wait() {
        let mut w = waiting(2, 2);
        w.arrived(1, 0, 0, 5);
        w.arrived(1, 1, 1, 9);
        assert_eq!(w.queue_waiting(0), (0, None));
        assert_eq!(w.channel_waiting(0), (0, None));
        assert_eq!(w.queue_waiting(1), (1, Some(5)));
        assert_eq!(w.overall_waiting(), (1, Some(5)));
    }

    #[test]
    fn stale_heap_entries_are_bounded() {
        let mut w = waiting(1, 1);
        w.arrived(0, 0, 0, 0); // stays waiting at the top of the heap
        for task in 1..10_000 {
            w.arrived(task, 0, 0, Micros::try_from(task).unwrap());
            w.stopped_waiting(task);
            w.ended(task, true);
        }
        assert!(w.queue_heaps[0].len() <= 2 + 32, "{}", w.queue_heaps[0].len());
        assert_eq!(w.queue_waiting(0), (1, Some(0)));
        assert_eq!(w.tasks_known(), 1);
    }

    #[test]
    fn rebuild_restores_heaps_and_counts() {
        let mut w = waiting(2, 1);
        w.arrived(1, 0, 0, 10);
        w.arrived(2, 1, 0, 5);
        w.arrived(3, 1, 0, 7);
        w.stopped_waiting(3);
        let bytes = rmp_serde::to_vec_named(&w).unwrap();
        let mut restored: Waiting = rmp_serde::from_slice(&bytes).unwrap();
        restored.rebuild(2, 1).unwrap();
        assert_eq!(restored.queue_waiting(0), (1, Some(10)));
        assert_eq!(restored.queue_waiting(1), (1, Some(5)));
        assert_eq!(restored.overall_waiting(), (2, Some(5)));
        assert!(restored.rebuild(1, 1).is_err());
    }
}
