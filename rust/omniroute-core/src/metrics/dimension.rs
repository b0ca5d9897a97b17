//! Dimensions (queue, channel, agent, overall) and the interning of their names into dense keys.

use rustc_hash::FxHashMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// What a figure is broken down by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DimensionKind {
    /// The whole contact center: every queue, channel and agent together.
    Overall,
    Queue,
    Channel,
    Agent,
}

impl DimensionKind {
    /// The name used in messages and on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Overall => "overall",
            Self::Queue => "queue",
            Self::Channel => "channel",
            Self::Agent => "agent",
        }
    }
}

impl fmt::Display for DimensionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One dimension value: a kind and its dense key (0 for `Overall`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct DimRef {
    pub kind: DimensionKind,
    pub key: u32,
}

impl DimRef {
    pub const OVERALL: Self = Self { kind: DimensionKind::Overall, key: 0 };

    pub fn queue(key: u32) -> Self {
        Self { kind: DimensionKind::Queue, key }
    }

    pub fn channel(key: u32) -> Self {
        Self { kind: DimensionKind::Channel, key }
    }

    pub fn agent(key: u32) -> Self {
        Self { kind: DimensionKind::Agent, key }
    }
}

/// One value of `T` per dimension value, stored densely by key so the hot path
/// indexes arrays instead of hashing names.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct PerDimension<T> {
    pub overall: T,
    pub queues: Vec<T>,
    pub channels: Vec<T>,
    pub agents: Vec<T>,
}

impl<T: Default> PerDimension<T> {
    /// Grows the table of `kind` to `len` entries (never shrinks it).
    pub fn grow(&mut self, kind: DimensionKind, len: usize) {
        if let Some(values) = self.values_mut(kind) {
            if values.len() < len {
                values.resize_with(len, T::default);
            }
        }
    }
}

impl<T> PerDimension<T> {
    #[inline]
    pub fn get(&self, dim: DimRef) -> &T {
        match dim.kind {
            DimensionKind::Overall => &self.overall,
            DimensionKind::Queue => &self.queues[dim.key as usize],
            DimensionKind::Channel => &self.channels[dim.key as usize],
            DimensionKind::Agent => &self.agents[dim.key as usize],
        }
    }

    #[inline]
    pub fn get_mut(&mut self, dim: DimRef) -> &mut T {
        match dim.kind {
            DimensionKind::Overall => &mut self.overall,
            DimensionKind::Queue => &mut self.queues[dim.key as usize],
            DimensionKind::Channel => &mut self.channels[dim.key as usize],
            DimensionKind::Agent => &mut self.agents[dim.key as usize],
        }
    }

    fn values_mut(&mut self, kind: DimensionKind) -> Option<&mut Vec<T>> {
        match kind {
            DimensionKind::Overall => None,
            DimensionKind::Queue => Some(&mut self.queues),
            DimensionKind::Channel => Some(&mut self.channels),
            DimensionKind::Agent => Some(&mut self.agents),
        }
    }

    /// Every dimension value with its entry, overall first, then queues,
    /// channels and agents by key (that is, in `DimRef` order).
    pub fn iter(&self) -> impl Iterator<Item = (DimRef, &T)> {
        std::iter::once((DimRef::OVERALL, &self.overall))
            .chain(Self::keyed(DimensionKind::Queue, &self.queues))
            .chain(Self::keyed(DimensionKind::Channel, &self.channels))
            .chain(Self::keyed(DimensionKind::Agent, &self.agents))
    }

    fn keyed(kind: DimensionKind, values: &[T]) -> impl Iterator<Item = (DimRef, &T)> {
        values.iter().enumerate().map(move |(key, value)| (DimRef { kind, key: key as u32 }, value))
    }

    /// Checks that each table holds exactly as many entries as there are names.
    pub fn check_lens(&self, what: &str, queues: usize, channels: usize, agents: usize) -> Result<(), String> {
        for (kind, have, want) in [
            (DimensionKind::Queue, self.queues.len(), queues),
            (DimensionKind::Channel, self.channels.len(), channels),
            (DimensionKind::Agent, self.agents.len(), agents),
        ] {
            if have != want {
                return Err(format!("{what}: {have} {kind} entries for {want} {kind} names"));
            }
        }
        Ok(())
    }
}

/// The names of one kind of dimension, interned into dense keys `0..len`.
///
/// Only the list of names is persisted; the lookup table and the sorted order
/// are rebuilt on load.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Names {
    list: Vec<String>,
    #[serde(skip)]
    index: FxHashMap<String, u32>,
    /// Keys sorted by name; rebuilt lazily when names were added.
    #[serde(skip)]
    sorted: Vec<u32>,
}

impl Names {
    /// The key of `name`, interning it if new. The flag says whether it was new.
    pub fn intern(&mut self, name: &str) -> (u32, bool) {
        if let Some(&key) = self.index.get(name) {
            return (key, false);
        }
        let key = self.list.len() as u32;
        self.list.push(name.to_owned());
        self.index.insert(name.to_owned(), key);
        (key, true)
    }

    pub fn key(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    pub fn name(&self, key: u32) -> &str {
        &self.list[key as usize]
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Keys in name order, so outputs keyed by name come out sorted without sorting them.
    pub fn sorted_keys(&mut self) -> &[u32] {
        if self.sorted.len() != self.list.len() {
            let list = &self.list;
            self.sorted = (0..list.len() as u32).collect();
            self.sorted.sort_unstable_by(|a, b| list[*a as usize].cmp(&list[*b as usize]));
        }
        &self.sorted
    }

    /// Rebuilds the lookup table after deserialization; duplicate names are an error.
    pub fn rebuild(&mut self, kind: DimensionKind) -> Result<(), String> {
        self.index.clear();
        self.sorted.clear();
        for (key, name) in self.list.iter().enumerate() {
            if self.index.insert(name.clone(), key as u32).is_some() {
                return Err(format!("the {kind} name {name:?} appears twice"));
            }
        }
        Ok(())
    }
}

/// Keys of shared names (`Arc<str>`) by address, a small direct-mapped cache
/// in front of [`Names::key`]: the engine's output events carry the same few
/// shared names (its queues, channels and agents) again and again, and
/// comparing an address costs less than hashing and comparing the text.
///
/// An entry holds its name, so the address cannot be reused by another name
/// while the entry stands; a name is only cached once its key is known, and
/// keys never change. A miss (a name seen for the first time, two names on one
/// slot, a copy of a name) falls back to the lookup by text.
#[derive(Clone, Debug)]
pub(crate) struct SharedKeys {
    slots: Box<[Option<SharedKey>]>,
}

/// A cached name, its kind and its key.
type SharedKey = (Arc<str>, DimensionKind, u32);

impl SharedKeys {
    const BITS: u32 = 9;

    fn slot(name: &Arc<str>) -> usize {
        let address = Arc::as_ptr(name).cast::<u8>() as usize as u64;
        // Fibonacci hashing: the top bits of the product spread nearby addresses.
        (address.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - Self::BITS)) as usize
    }

    /// The key of `name` if it is cached.
    #[inline]
    pub fn get(&self, kind: DimensionKind, name: &Arc<str>) -> Option<u32> {
        match &self.slots[Self::slot(name)] {
            Some((cached, k, key)) if *k == kind && Arc::ptr_eq(cached, name) => Some(*key),
            _ => None,
        }
    }

    /// Remember that `name` has key `key`.
    pub fn put(&mut self, kind: DimensionKind, name: &Arc<str>, key: u32) {
        self.slots[Self::slot(name)] = Some((Arc::clone(name), kind, key));
    }
}

impl Default for SharedKeys {
    fn default() -> Self {
        Self { slots: vec![None; 1 << Self::BITS].into_boxed_slice() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_gives_dense_stable_keys() {
        let mut names = Names::default();
        assert_eq!(names.intern("billing"), (0, true));
        assert_eq!(names.intern("sales"), (1, true));
        assert_eq!(names.intern("billing"), (0, false));
        assert_eq!(names.key("sales"), Some(1));
        assert_eq!(names.key("nope"), None);
        assert_eq!(names.name(1), "sales");
        assert_eq!(names.len(), 2);
    }

    #[test]
    fn sorted_keys_follow_names_and_refresh_when_names_are_added() {
        let mut names = Names::default();
        names.intern("c");
        names.intern("a");
        assert_eq!(names.sorted_keys(), &[1, 0]);
        names.intern("b");
        assert_eq!(names.sorted_keys(), &[1, 2, 0]);
    }

    #[test]
    fn shared_keys_match_the_very_name_only() {
        let mut cache = SharedKeys::default();
        let ann: Arc<str> = "ann".into();
        assert_eq!(cache.get(DimensionKind::Agent, &ann), None);
        cache.put(DimensionKind::Agent, &ann, 3);
        assert_eq!(cache.get(DimensionKind::Agent, &ann), Some(3));
        assert_eq!(cache.get(DimensionKind::Agent, &Arc::clone(&ann)), Some(3));
        // The same text elsewhere, or the same name as another kind: not cached.
        assert_eq!(cache.get(DimensionKind::Agent, &"ann".into()), None);
        assert_eq!(cache.get(DimensionKind::Queue, &ann), None);
    }

    #[test]
    fn rebuild_rejects_duplicates() {
        let mut names = Names { list: vec!["a".into(), "a".into()], ..Names::default() };
        let err = names.rebuild(DimensionKind::Queue).unwrap_err();
        assert!(err.contains("queue name \"a\" appears twice"), "{err}");
    }

    #[test]
    fn per_dimension_indexes_by_kind_and_iterates_in_dimref_order() {
        let mut table: PerDimension<u32> = PerDimension::default();
        table.grow(DimensionKind::Queue, 2);
        table.grow(DimensionKind::Agent, 1);
        *table.get_mut(DimRef::queue(1)) = 7;
        *table.get_mut(DimRef::OVERALL) = 1;
        *table.get_mut(DimRef::agent(0)) = 3;
        assert_eq!(*table.get(DimRef::queue(1)), 7);
        let dims: Vec<DimRef> = table.iter().map(|(dim, _)| dim).collect();
        let mut sorted = dims.clone();
        sorted.sort();
        assert_eq!(dims, sorted);
        assert!(table.check_lens("t", 2, 0, 1).is_ok());
        assert!(table.check_lens("t", 2, 1, 1).is_err());
    }
}
