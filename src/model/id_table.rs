//! A [`Table`] of ids that keeps four bytes of each key in an array of its own, so that
//! a lookup counts through a few cache lines of integers and then reads one entry and
//! one id, where a binary search over ids read an entry and an id's bytes at every step.
//! The four bytes are a window after the prefix all of the table's keys share; keys
//! whose windows are equal are told apart by a binary search on whole keys. Why, and
//! what it costs: ARCHITECTURE.md, "In memory".

use std::borrow::Borrow;

use super::{
    ids::{ResourceId, UserId, WorkspaceId},
    table::{Iter, Range, Table},
};

/// Keys that are strings underneath, ordered bytewise: a table of them is searched by a
/// borrowed `&str`, comparing bytes, without turning each key it passes into a `str`.
pub trait StrKey: Borrow<str> {
    /// The string's bytes.
    fn key_bytes(&self) -> &[u8];
}

impl StrKey for WorkspaceId {
    // Inline, here and below: called at every step of every id search.
    #[inline]
    fn key_bytes(&self) -> &[u8] {
        self.as_str().as_bytes()
    }
}

impl StrKey for UserId {
    #[inline]
    fn key_bytes(&self) -> &[u8] {
        self.as_str().as_bytes()
    }
}

impl StrKey for ResourceId {
    #[inline]
    fn key_bytes(&self) -> &[u8] {
        self.as_str().as_bytes()
    }
}

/// The entries of an [`IdTable`] that may hold a key, to confirm by comparing it whole.
pub enum Candidates<'a, K: Ord + Clone + StrKey, V: Clone> {
    /// Consecutive entries of a flat table, in key order: one, nearly always.
    Run(&'a [(K, V)]),
    /// A table too large to be flat, searched as a tree.
    Tree(&'a Table<K, V>),
}

impl<'a, K: Ord + Clone + StrKey, V: Clone> Candidates<'a, K, V> {
    /// The entry whose key is `key`, if one of the candidates is: the second half of a
    /// lookup, given the key the candidates were found for.
    pub fn confirm(self, key: &str) -> Option<(&'a K, &'a V)> {
        match self {
            Self::Run(run) => {
                let at = run
                    .binary_search_by(|(k, _)| k.key_bytes().cmp(key.as_bytes()))
                    .ok()?;
                run.get(at).map(|(k, v)| (k, v))
            }
            Self::Tree(table) => table.get_key_value(key),
        }
    }
}

/// A map from ids to `V` in id order, found by borrowed `&str`: while flat (up to
/// `FLAT_MAX` entries) by its windows, then one id followed; past that, as a B-tree.
#[derive(Clone)]
pub struct IdTable<K: Ord + Clone + StrKey, V: Clone> {
    table: Table<K, V>,
    /// While `table` is flat, the `window` at `offset` of each of its keys, in the same
    /// order; empty once it is a tree, whose lookups go to the tree.
    windows: Box<[Window]>,
    /// How many bytes every key of the flat table starts with in common (at most 255).
    offset: u8,
}

/// The bytes of each key kept beside a flat table, as an integer.
type Window = u32;
const WINDOW_BYTES: usize = Window::BITS as usize / 8;

/// `WINDOW_BYTES` bytes of `key` from `offset`, padded with zeros, as a big-endian
/// integer. Of two keys that share their first `offset` bytes, the one with the lesser
/// window is the lesser key (a zero pad sorts first, as a shorter key does); keys with equal windows
/// must be compared whole.
fn window(key: &[u8], offset: u8) -> Window {
    let rest = key.get(usize::from(offset)..).unwrap_or_default();
    let mut bytes = [0; WINDOW_BYTES];
    let n = rest.len().min(WINDOW_BYTES);
    if let (Some(to), Some(from)) = (bytes.get_mut(..n), rest.get(..n)) {
        to.copy_from_slice(from);
    }
    Window::from_be_bytes(bytes)
}

/// How many bytes `a` and `b` start with in common, at most 255. For the first and the
/// last key of a sorted table, that is what every key between shares too.
fn common_prefix(a: &[u8], b: &[u8]) -> u8 {
    let shared = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    u8::try_from(shared).unwrap_or(u8::MAX)
}

impl<K: Ord + Clone + StrKey, V: Clone> Default for IdTable<K, V> {
    fn default() -> Self {
        Self {
            table: Table::default(),
            windows: Box::default(),
            offset: 0,
        }
    }
}

impl<K: Ord + Clone + StrKey + std::fmt::Debug, V: Clone + std::fmt::Debug> std::fmt::Debug
    for IdTable<K, V>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.table.fmt(f)
    }
}

impl<K: Ord + Clone + StrKey, V: Clone + PartialEq> PartialEq for IdTable<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.table == other.table
    }
}

impl<K: Ord + Clone + StrKey, V: Clone + Eq> Eq for IdTable<K, V> {}

impl<K: Ord + Clone + StrKey, V: Clone> IdTable<K, V> {
    fn indexed(table: Table<K, V>) -> Self {
        let Some(entries) = table.flat_entries() else {
            return Self {
                table,
                windows: Box::default(),
                offset: 0,
            };
        };
        let offset = match (entries.first(), entries.last()) {
            (Some((first, _)), Some((last, _))) => {
                common_prefix(first.key_bytes(), last.key_bytes())
            }
            _ => 0,
        };
        let windows = entries
            .iter()
            .map(|(k, _)| window(k.key_bytes(), offset))
            .collect();
        Self {
            table,
            windows,
            offset,
        }
    }

    /// Rebuilds the windows after a write that may have added or removed keys.
    fn reindex(&mut self) {
        *self = Self::indexed(std::mem::take(&mut self.table));
    }

    /// A table of `entries`, in any order; of equal keys, the last one stays.
    pub fn from_entries(entries: Vec<(K, V)>) -> Self {
        Self::indexed(Table::from_entries(entries))
    }

    /// How many entries the table holds.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The entry for the key whose string is `key`, with the key as stored.
    pub fn get_key_value_str(&self, key: &str) -> Option<(&K, &V)> {
        self.candidates(key).confirm(key)
    }

    /// The first half of a lookup of `key`: the entries that may hold it, found from the
    /// windows alone. Two lookups whose halves are taken in turn (see
    /// `Workspace::member_and_instance`) wait for memory at the same time rather than
    /// one after the other.
    pub fn candidates(&self, key: &str) -> Candidates<'_, K, V> {
        let Some(entries) = self.table.flat_entries() else {
            return Candidates::Tree(&self.table);
        };
        // A key of the table shares its first `offset` bytes, and then the order of the
        // windows is the order of the keys: the keys whose windows equal the wanted one
        // are a run, one long nearly always, after every key whose window is less. Whole
        // keys are compared within the run only, which also confirms the shared bytes:
        // a key that does not share them is found nowhere, as it should be.
        let wanted = window(key.as_bytes(), self.offset);
        let start = self.windows.iter().filter(|&&w| w < wanted).count();
        let equal = self
            .windows
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take_while(|&&w| w == wanted)
            .count();
        Candidates::Run(entries.get(start..start + equal).unwrap_or_default())
    }

    /// The entry for `key`, with the key as stored.
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.table.get_key_value(key)
    }

    /// The value for `key`, to change in place (copying it first if it is shared).
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.table.get_mut(key)
    }

    /// Sets `key` to `value`, returning the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let replaced = self.table.insert(key, value);
        if replaced.is_none() {
            self.reindex();
        }
        replaced
    }

    /// Removes `key`, returning its value.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let removed = self.table.remove(key);
        if removed.is_some() {
            self.reindex();
        }
        removed
    }

    /// Every entry in key order.
    pub fn iter(&self) -> Iter<'_, K, V> {
        self.table.iter()
    }

    /// The values in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> {
        self.table.values()
    }

    /// The entries whose keys fall in `range`, in key order.
    pub fn range<Q, R>(&self, range: R) -> Range<'_, K, V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
        R: std::ops::RangeBounds<Q>,
    {
        self.table.range(range)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::model::{ids::UserId, table::FLAT_MAX};

    #[test]
    fn windows_order_as_keys_do_where_they_differ() {
        assert_eq!(window(b"", 0), 0);
        assert_eq!(window(b"usr_", 7), 0);
        assert!(window(b"a", 0) < window(b"ab", 0));
        assert!(window(b"usr_0", 4) < window(b"usr_1", 4));
        assert_eq!(window(b"usr_0", 0), window(b"usr_1", 0));
        assert_eq!(window(b"abcd", 0), window(b"abcdZ", 0));
        assert!(window(b"usr_0000000041", 4) == window(b"usr_0000000042", 4));
        assert!(window(b"usr_0000000041", 10) < window(b"usr_0000000042", 10));
        assert_eq!(common_prefix(b"usr_0000000041", b"usr_0000000099"), 12);
        assert_eq!(common_prefix(b"a", b"a"), 1);
        assert_eq!(common_prefix(&[b'x'; 300], &[b'x'; 300]), 255);
    }

    #[test]
    fn a_table_that_became_a_tree_and_flat_again_finds_every_key() {
        let id = |n: usize| format!("usr_{n:04}");
        let mut table: IdTable<UserId, usize> = IdTable::default();
        for n in 0..=FLAT_MAX {
            table.insert(user(&id(n)), n);
        }
        assert!(table.windows.is_empty(), "a tree keeps no windows");
        for n in 0..=FLAT_MAX / 2 {
            table.remove(id(n).as_str());
        }
        assert_eq!(
            table.windows.len(),
            table.len(),
            "flat again, with its windows"
        );
        for n in 0..=FLAT_MAX {
            let found = table.get_key_value_str(&id(n)).map(|(_, v)| *v);
            assert_eq!(found, (n > FLAT_MAX / 2).then_some(n), "{}", id(n));
        }
    }

    #[test]
    fn ids_padded_with_zeros_are_found_by_the_bytes_after_their_shared_prefix() {
        let ids: Vec<String> = (0..FLAT_MAX)
            .map(|n| format!("usr_{:020}", n * 37))
            .collect();
        let table = IdTable::from_entries(ids.iter().map(|id| (user(id), ())).collect());
        assert_eq!(usize::from(table.offset), "usr_".len() + 20 - 4);
        for id in &ids {
            assert!(table.get_key_value_str(id).is_some(), "{id}");
        }
        for absent in ["usr_00000000000000000001", "usr_", "usr_1", "zzz", "a"] {
            assert!(table.get_key_value_str(absent).is_none(), "{absent}");
        }
    }

    fn user(raw: &str) -> UserId {
        UserId::parse(raw).unwrap_or_else(|e| panic!("{raw:?}: {e}"))
    }

    /// The part of an id after its case's common prefix: from a small alphabet, some a
    /// prefix of others, so that many share their windows.
    fn suffix() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ab]{0,3}",
            "[ab]{0,12}",
            "abababab[ab]{0,3}",
            "[a-z0-9]{1,12}"
        ]
    }

    /// A prefix every id of a case starts with, so that tables share more than it.
    fn shared() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just("u"),
            Just("usr_"),
            Just("usr_0000000000"),
            Just("usr_abababababab")
        ]
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(String, u8),
        /// Removes a key the table may not hold.
        Remove(String),
        /// Removes one of the keys the table holds, if any.
        RemoveHeld(proptest::sample::Index),
    }

    fn op(inserts: u32, removes: u32) -> impl Strategy<Value = Op> {
        prop_oneof![
            inserts => (suffix(), any::<u8>()).prop_map(|(k, v)| Op::Insert(k, v)),
            removes => suffix().prop_map(Op::Remove),
            removes => any::<proptest::sample::Index>().prop_map(Op::RemoveHeld),
        ]
    }

    /// Mostly inserts, then mostly removes: tables grow past `FLAT_MAX` into a tree,
    /// and often shrink back to flat, whose windows must then be built again.
    fn ops() -> impl Strategy<Value = Vec<Op>> {
        (
            proptest::collection::vec(op(8, 1), 0..(3 * FLAT_MAX)),
            proptest::collection::vec(op(1, 8), 0..(3 * FLAT_MAX)),
        )
            .prop_map(|(mut grow, shrink)| {
                grow.extend(shrink);
                grow
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the writes, every id is found by `&str` exactly when a BTreeMap holds
        /// it, flat or (past `FLAT_MAX`) a tree, and so is every id never inserted.
        #[test]
        fn ids_are_found_as_an_ordered_map_finds_them(
            shared in shared(),
            ops in ops(),
            suffixes in proptest::collection::vec(suffix(), 0..32),
            others in proptest::collection::vec("[a-z0-9_]{1,20}", 0..32),
        ) {
            let mut table: IdTable<UserId, u8> = IdTable::default();
            let mut model: BTreeMap<String, u8> = BTreeMap::new();
            for op in &ops {
                match op {
                    Op::Insert(k, v) => {
                        let k = format!("{shared}{k}");
                        prop_assert_eq!(table.insert(user(&k), *v), model.insert(k, *v));
                    }
                    Op::Remove(k) => {
                        let k = format!("{shared}{k}");
                        prop_assert_eq!(table.remove(k.as_str()), model.remove(&k));
                    }
                    Op::RemoveHeld(at) => {
                        if let Some(k) = model.keys().nth(at.index(model.len().max(1))).cloned() {
                            prop_assert_eq!(table.remove(k.as_str()), model.remove(&k));
                        }
                    }
                }
            }
            // Absent ids with the shared prefix, and ids that may not share it.
            let probes: Vec<String> =
                suffixes.iter().map(|s| format!("{shared}{s}")).chain(others).collect();
            prop_assert_eq!(table.len(), model.len());
            for k in model.keys().chain(&probes) {
                let found = table.get_key_value_str(k).map(|(k, v)| (k.as_str(), *v));
                prop_assert_eq!(found, model.get_key_value(k).map(|(k, v)| (k.as_str(), *v)));
            }
            let rebuilt = IdTable::from_entries(model.iter().map(|(k, v)| (user(k), *v)).collect());
            prop_assert!(rebuilt == table);
            for k in model.keys().chain(&probes) {
                prop_assert_eq!(
                    rebuilt.get_key_value_str(k).map(|(_, v)| *v),
                    model.get(k).copied()
                );
            }
        }
    }
}
