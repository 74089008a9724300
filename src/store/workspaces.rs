//! Every workspace of a snapshot, by id: a persistent hash map whose entries hold each
//! workspace and its id in one allocation.
//!
//! A lookup confirms the id it found by the hash, and then reads the workspace. With the
//! id in an allocation of its own (a `WorkspaceId` key beside an `Arc<Workspace>`), that
//! was two cache misses at scale; with the id stored after the workspace, the
//! confirmation reads the allocation the check reads next anyway. At 100,000
//! workspaces it took a tenth off an in-process check (`benches/scale.rs`).

use std::{borrow::Borrow, fmt, hash::Hash};

use triomphe::{Arc, HeaderSlice};

use crate::model::{Workspace, WorkspaceId};

/// A workspace and its id, shared between the snapshots that hold it unchanged.
#[derive(Clone)]
struct Entry(Arc<HeaderSlice<Workspace, str>>);

impl Borrow<str> for Entry {
    fn borrow(&self) -> &str {
        &self.0.slice
    }
}

// Equal and hashed as its id, as `Borrow<str>` requires.
impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.0.slice == other.0.slice
    }
}

impl Eq for Entry {}

impl Hash for Entry {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.slice.hash(state);
    }
}

/// Every workspace by id. Persistent, so that publishing a write copies only the path to
/// the workspaces it changed; hashed with foldhash, because every check looks one up.
#[derive(Clone, Default)]
pub struct Workspaces(
    imbl::GenericHashMap<
        Entry,
        (),
        foldhash::fast::RandomState,
        imbl::shared_ptr::DefaultSharedPtr,
    >,
);

impl Workspaces {
    /// The workspace `id`, if there is one.
    pub fn get(&self, id: &str) -> Option<&Workspace> {
        self.0.get_key_value(id).map(|(entry, ())| &entry.0.header)
    }

    /// Sets workspace `id` to `workspace`.
    pub fn insert(&mut self, id: &WorkspaceId, workspace: Workspace) {
        let entry = Entry(Arc::from_header_and_str(workspace, id.as_str()));
        self.0.insert(entry, ());
    }

    /// Removes workspace `id`, if there is one.
    pub fn remove(&mut self, id: &str) {
        self.0.remove(id);
    }

    /// How many workspaces there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every workspace with its id, in no set order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Workspace)> {
        self.0.keys().map(|entry| (&entry.0.slice, &entry.0.header))
    }
}

impl FromIterator<(WorkspaceId, Workspace)> for Workspaces {
    fn from_iter<I: IntoIterator<Item = (WorkspaceId, Workspace)>>(iter: I) -> Self {
        let mut workspaces = Self::default();
        for (id, workspace) in iter {
            workspaces.insert(&id, workspace);
        }
        workspaces
    }
}

impl fmt::Debug for Workspaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProductSet;

    fn id(raw: &str) -> WorkspaceId {
        WorkspaceId::parse(raw).unwrap()
    }

    #[test]
    fn workspaces_are_found_replaced_and_removed_by_id() {
        let (a, b) = (id("ws_a"), id("ws_ab"));
        let mut workspaces = Workspaces::default();
        workspaces.insert(&a, Workspace::new(ProductSet::default()));
        workspaces.insert(&b, Workspace::new(ProductSet::default()));
        let copy = workspaces.clone();
        let protocols = crate::model::Catalog::built_in()
            .product_id("protocols")
            .unwrap();
        let other = Workspace::new(ProductSet::default().with(protocols));
        workspaces.insert(&a, other.clone());
        assert_eq!(workspaces.len(), 2);
        assert_eq!(workspaces.get("ws_a"), Some(&other));
        assert_ne!(copy.get("ws_a"), Some(&other), "a copy keeps what it held");
        assert!(workspaces.get("ws_").is_none() && workspaces.get("ws_abc").is_none());
        workspaces.remove("ws_a");
        assert!(workspaces.get("ws_a").is_none());
        assert!(workspaces.get("ws_ab").is_some());
        let mut ids: Vec<&str> = copy.iter().map(|(id, _)| id).collect();
        ids.sort_unstable();
        assert_eq!(ids, ["ws_a", "ws_ab"]);
    }
}
