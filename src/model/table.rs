//! A sorted map that is a flat array while small and a persistent B-tree once large.
//!
//! Most tables of a workspace are small: the members of a typical workspace, the holders
//! of one source's grants, the destinations of one source. imbl's B-tree spends a node of
//! sixteen slots (and half-empty nodes when filled in order) even on one entry, which made
//! those small tables most of the memory at millions of grants. A flat array sized to its
//! entries costs only the entries, and copying it on write is cheap while it is small.
//! Past [`FLAT_MAX`] entries a table becomes an `OrdMap`, so the writes of a large
//! workspace stay O(log n) and copying its state stays O(1) per table.

use std::{
    borrow::Borrow,
    cmp::Ordering,
    ops::{Bound, RangeBounds},
};

use imbl::OrdMap;

/// Entries a table holds as a flat array before it becomes a B-tree.
pub const FLAT_MAX: usize = 128;
/// Entries at which a B-tree that shrank becomes flat again (below `FLAT_MAX`, so a table
/// at the boundary does not switch on every write).
const FLAT_AGAIN: usize = FLAT_MAX / 2;

/// A map from `K` to `V` in key order.
#[derive(Clone)]
pub struct Table<K: Ord + Clone, V: Clone>(Repr<K, V>);

#[derive(Clone)]
enum Repr<K: Ord + Clone, V: Clone> {
    /// Sorted by key, without duplicates, its capacity its length.
    Flat(Vec<(K, V)>),
    Tree(OrdMap<K, V>),
}

/// Binary search of sorted entries by key, stopping at the first equal key. The
/// standard library's search is branchless and never stops early, which is the better
/// trade for integers; comparing ids is a `memcmp` each, and stopping early halved the
/// comparisons of a typical lookup.
fn search<K, V>(entries: &[(K, V)], compare: impl Fn(&K) -> Ordering) -> Result<usize, usize> {
    let (mut low, mut high) = (0, entries.len());
    while low < high {
        let mid = low + (high - low) / 2;
        match entries.get(mid).map(|(k, _)| compare(k)) {
            Some(Ordering::Less) => low = mid + 1,
            Some(Ordering::Greater) => high = mid,
            Some(Ordering::Equal) => return Ok(mid),
            None => break,
        }
    }
    Err(low)
}

/// A set of `T` in order: a table without values.
pub type Set<T> = Table<T, ()>;

impl<K: Ord + Clone, V: Clone> Default for Table<K, V> {
    fn default() -> Self {
        Self(Repr::Flat(Vec::new()))
    }
}

impl<K: Ord + Clone + std::fmt::Debug, V: Clone + std::fmt::Debug> std::fmt::Debug for Table<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Ord + Clone, V: Clone + PartialEq> PartialEq for Table<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<K: Ord + Clone, V: Clone + Eq> Eq for Table<K, V> {}

impl<K: Ord + Clone, V: Clone> Table<K, V> {
    /// How many entries the table holds.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Flat(entries) => entries.len(),
            Repr::Tree(map) => map.len(),
        }
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries in key order while the table is flat; `None` once it is a tree.
    pub(super) fn flat_entries(&self) -> Option<&[(K, V)]> {
        match &self.0 {
            Repr::Flat(entries) => Some(entries),
            Repr::Tree(_) => None,
        }
    }

    /// The entry for `key`, with the key as stored.
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match &self.0 {
            Repr::Flat(entries) => {
                let at = search(entries, |k| k.borrow().cmp(key)).ok()?;
                entries.get(at).map(|(k, v)| (k, v))
            }
            Repr::Tree(map) => map.get_key_value(key),
        }
    }

    /// The value for `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.get_key_value(key).map(|(_, v)| v)
    }

    /// The value for `key`, to change in place (copying it first if it is shared).
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match &mut self.0 {
            Repr::Flat(entries) => {
                let at = search(entries, |k| k.borrow().cmp(key)).ok()?;
                entries.get_mut(at).map(|(_, v)| v)
            }
            Repr::Tree(map) => map.get_mut(key),
        }
    }

    /// Changes the value for `key` with `change`, inserting `make()` first if there is none.
    pub fn update(&mut self, key: K, make: impl FnOnce() -> V, change: impl FnOnce(&mut V)) {
        match self.get_mut(&key) {
            Some(value) => change(value),
            None => {
                let mut value = make();
                change(&mut value);
                self.insert(key, value);
            }
        }
    }

    /// A table of `entries`, in any order; of equal keys, the last one stays. Sized once,
    /// where inserting one entry at a time grows a flat table once per entry.
    pub fn from_entries(mut entries: Vec<(K, V)>) -> Self {
        // Entries read from storage come sorted: then nothing is moved.
        if !entries.is_sorted_by(|(a, _), (b, _)| a < b) {
            // Stable, so that equal keys keep their order and the last can win.
            entries.sort_by(|(a, _), (b, _)| a.cmp(b));
            entries.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    std::mem::swap(later, kept);
                }
                same
            });
        }
        if entries.len() > FLAT_MAX {
            Self(Repr::Tree(entries.into_iter().collect()))
        } else {
            entries.shrink_to_fit();
            Self(Repr::Flat(entries))
        }
    }

    /// Sets `key` to `value`, returning the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match &mut self.0 {
            Repr::Flat(entries) => match search(entries, |k| k.cmp(&key)) {
                Ok(at) => entries
                    .get_mut(at)
                    .map(|(_, v)| std::mem::replace(v, value)),
                Err(_) if entries.len() >= FLAT_MAX => {
                    let mut map: OrdMap<K, V> = std::mem::take(entries).into_iter().collect();
                    map.insert(key, value);
                    self.0 = Repr::Tree(map);
                    None
                }
                Err(at) => {
                    // Grow by one, not by doubling: a flat table's spare capacity would be
                    // a third of its memory on average.
                    entries.reserve_exact(1);
                    entries.insert(at, (key, value));
                    None
                }
            },
            Repr::Tree(map) => map.insert(key, value),
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match &mut self.0 {
            Repr::Flat(entries) => {
                let at = search(entries, |k| k.borrow().cmp(key)).ok()?;
                let (_, value) = entries.remove(at);
                entries.shrink_to_fit();
                Some(value)
            }
            Repr::Tree(map) => {
                let value = map.remove(key);
                if map.len() <= FLAT_AGAIN {
                    let entries: Vec<(K, V)> = std::mem::take(map).into_iter().collect();
                    self.0 = Repr::Flat(entries);
                }
                value
            }
        }
    }

    /// Every entry in key order.
    pub fn iter(&self) -> Iter<'_, K, V> {
        match &self.0 {
            Repr::Flat(entries) => Entries::Flat(entries.iter()),
            Repr::Tree(map) => Entries::Tree(map.iter()),
        }
    }

    /// The keys in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> {
        self.iter().map(|(k, _)| k)
    }

    /// The values in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }

    /// The entries whose keys fall in `range`, in key order.
    pub fn range<Q, R>(&self, range: R) -> Range<'_, K, V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
        R: RangeBounds<Q>,
    {
        match &self.0 {
            Repr::Flat(entries) => {
                let start = match range.start_bound() {
                    Bound::Included(q) => entries.partition_point(|(k, _)| k.borrow() < q),
                    Bound::Excluded(q) => entries.partition_point(|(k, _)| k.borrow() <= q),
                    Bound::Unbounded => 0,
                };
                let end = match range.end_bound() {
                    Bound::Included(q) => entries.partition_point(|(k, _)| k.borrow() <= q),
                    Bound::Excluded(q) => entries.partition_point(|(k, _)| k.borrow() < q),
                    Bound::Unbounded => entries.len(),
                };
                Entries::Flat(
                    entries
                        .get(start..end.max(start))
                        .unwrap_or_default()
                        .iter(),
                )
            }
            Repr::Tree(map) => Entries::Tree(map.range(range)),
        }
    }
}

impl<T: Ord + Clone> Set<T> {
    /// Adds `value`; false if it was there.
    pub fn add(&mut self, value: T) -> bool {
        self.insert(value, ()).is_none()
    }

    /// Whether the set holds `value`.
    pub fn contains<Q>(&self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.get(value).is_some()
    }
}

/// Removes `value` from the set at `key`, and the set itself once it is empty.
pub(super) fn remove_from_set<K: Ord + Clone, V: Ord + Clone>(
    map: &mut Table<K, Set<V>>,
    key: &K,
    value: &V,
) {
    if let Some(set) = map.get_mut(key) {
        set.remove(value);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

/// The range of keys after `after` (exclusive), or of every key: where a page resumes.
pub(super) fn exclusive_from<T: Clone>(after: Option<&T>) -> (Bound<T>, Bound<T>) {
    match after {
        Some(after) => (Bound::Excluded(after.clone()), Bound::Unbounded),
        None => (Bound::Unbounded, Bound::Unbounded),
    }
}

/// Entries of a table in key order, from either representation.
pub enum Entries<'a, K, V, T> {
    /// Of a flat table.
    Flat(std::slice::Iter<'a, (K, V)>),
    /// Of a B-tree.
    Tree(T),
}

/// Every entry of a table, in key order.
pub type Iter<'a, K, V> =
    Entries<'a, K, V, imbl::ordmap::Iter<'a, K, V, imbl::shared_ptr::DefaultSharedPtr>>;

/// The entries of a table within a range, in key order.
pub type Range<'a, K, V> =
    Entries<'a, K, V, imbl::ordmap::RangedIter<'a, K, V, imbl::shared_ptr::DefaultSharedPtr>>;

impl<'a, K: 'a, V: 'a, T: Iterator<Item = (&'a K, &'a V)>> Iterator for Entries<'a, K, V, T> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Flat(it) => it.next().map(|(k, v)| (k, v)),
            Self::Tree(it) => it.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Self::Flat(it) => it.size_hint(),
            Self::Tree(it) => it.size_hint(),
        }
    }
}

impl<'a, K: 'a, V: 'a, T: DoubleEndedIterator<Item = (&'a K, &'a V)>> DoubleEndedIterator
    for Entries<'a, K, V, T>
{
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            Self::Flat(it) => it.next_back().map(|(k, v)| (k, v)),
            Self::Tree(it) => it.next_back(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16, u8),
        Remove(u16),
        Update(u16),
    }

    /// Keys from a range twice `FLAT_MAX` wide, so that tables cross it both ways.
    const KEYS: u16 = 2 * FLAT_MAX as u16;

    fn op(inserts: u32, removes: u32) -> impl Strategy<Value = Op> {
        prop_oneof![
            inserts => (0..KEYS, any::<u8>()).prop_map(|(k, v)| Op::Insert(k, v)),
            removes => (0..KEYS).prop_map(Op::Remove),
            1 => (0..KEYS).prop_map(Op::Update),
        ]
    }

    /// Mostly inserts, then mostly removes: a table grows past `FLAT_MAX` and shrinks
    /// below `FLAT_AGAIN` in most cases.
    fn ops() -> impl Strategy<Value = Vec<Op>> {
        (
            proptest::collection::vec(op(8, 1), 200..600),
            proptest::collection::vec(op(1, 8), 0..600),
        )
            .prop_map(|(mut grow, shrink)| {
                grow.extend(shrink);
                grow
            })
    }

    fn is_flat<K: Ord + Clone, V: Clone>(table: &Table<K, V>) -> bool {
        matches!(table.0, Repr::Flat(_))
    }

    #[test]
    fn a_table_is_flat_up_to_its_limit_then_a_tree_and_flat_again_once_small() {
        let mut table = Table::default();
        for k in 0..FLAT_MAX {
            table.insert(k, ());
        }
        assert!(is_flat(&table));
        table.insert(FLAT_MAX, ());
        assert!(!is_flat(&table));
        for k in 0..=FLAT_MAX - FLAT_AGAIN {
            assert!(!is_flat(&table), "still a tree after removing {k} keys");
            table.remove(&k);
        }
        assert!(is_flat(&table));
        assert_eq!(table.len(), FLAT_AGAIN);
        assert!(
            table
                .keys()
                .copied()
                .eq(FLAT_MAX - FLAT_AGAIN + 1..=FLAT_MAX)
        );
    }

    #[test]
    fn a_flat_table_holds_no_spare_capacity() {
        let mut table = Table::default();
        for k in (0..40).rev() {
            table.insert(k, k);
        }
        table.remove(&7);
        match &table.0 {
            Repr::Flat(entries) => assert_eq!(entries.capacity(), entries.len()),
            Repr::Tree(_) => panic!("40 entries should be flat"),
        }
    }

    proptest! {
        #[test]
        fn a_table_from_entries_equals_one_filled_by_inserts(
            entries in proptest::collection::vec((0..KEYS, any::<u8>()), 0..300),
        ) {
            let mut inserted = Table::default();
            for (k, v) in &entries {
                inserted.insert(*k, *v);
            }
            let built = Table::from_entries(entries);
            prop_assert!(built.iter().eq(inserted.iter()));
            prop_assert_eq!(is_flat(&built), built.len() <= FLAT_MAX);
            if let Repr::Flat(flat) = &built.0 {
                prop_assert_eq!(flat.capacity(), flat.len());
            }
        }
    }

    #[test]
    fn string_keys_are_found_by_borrowed_str() {
        let mut table: Table<String, u8> = Table::default();
        table.insert("b".to_owned(), 2);
        table.insert("a".to_owned(), 1);
        assert_eq!(table.get("a"), Some(&1));
        assert_eq!(
            table.get_key_value("b").map(|(k, v)| (k.as_str(), *v)),
            Some(("b", 2))
        );
        assert_eq!(table.get("c"), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the writes, a table answers as a BTreeMap does, in both
        /// representations, and a copy taken midway is not changed by later writes.
        #[test]
        fn a_table_behaves_as_an_ordered_map(
            ops in ops(),
            from in 0..KEYS,
            to in 0..KEYS,
        ) {
            let mut table: Table<u16, u8> = Table::default();
            let mut model: BTreeMap<u16, u8> = BTreeMap::new();
            let mut copy = None;
            for (i, op) in ops.iter().enumerate() {
                match *op {
                    Op::Insert(k, v) => prop_assert_eq!(table.insert(k, v), model.insert(k, v)),
                    Op::Remove(k) => prop_assert_eq!(table.remove(&k), model.remove(&k)),
                    Op::Update(k) => {
                        table.update(k, || 0, |v| *v = v.wrapping_add(1));
                        let v = model.entry(k).or_insert(0);
                        *v = v.wrapping_add(1);
                    }
                }
                if i == ops.len() / 2 {
                    copy = Some((table.clone(), model.clone()));
                }
            }
            prop_assert_eq!(table.len(), model.len());
            prop_assert!(table.iter().eq(model.iter()));
            prop_assert!(table.iter().rev().eq(model.iter().rev()));
            for k in 0..KEYS {
                prop_assert_eq!(table.get(&k), model.get(&k));
            }
            let (lo, hi) = (from.min(to), from.max(to));
            prop_assert!(table.range(lo..hi).eq(model.range(lo..hi)));
            prop_assert!(table.range(lo..=hi).eq(model.range(lo..=hi)));
            prop_assert!(table
                .range((Bound::Excluded(lo), Bound::Unbounded))
                .eq(model.range((Bound::Excluded(lo), Bound::Unbounded))));
            prop_assert!(table.range(..hi).eq(model.range(..hi)));
            if let Some((copy, model_then)) = copy {
                prop_assert!(copy.iter().eq(model_then.iter()));
                for k in 0..KEYS {
                    prop_assert_eq!(copy.get(&k), model_then.get(&k));
                }
            }
        }
    }
}
