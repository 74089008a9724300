//! The change log's line format read back, its files as the store leaves them, and
//! what its retention keeps.

mod format;
mod on_disk;
mod retention;

use crate::model::{Catalog, Change, Grant, ResourceId, Scope, UserId, WorkspaceId};

use super::GroupLines;

fn grants(catalog: &Catalog, count: usize) -> Vec<Change> {
    let source = catalog.type_id("source").unwrap();
    (0..count)
        .map(|i| Change::AddGrant {
            workspace: WorkspaceId::parse(&format!("ws-{}", i % 7)).unwrap(),
            user: UserId::parse(&format!("user-{i:04}")).unwrap(),
            grant: Grant {
                role: catalog.role_id("source_admin").unwrap(),
                // An id that looks like a field name, where lines are split.
                scope: Scope::Instance(source, ResourceId::parse("op").unwrap()),
            },
        })
        .collect()
}

/// The lines of one entry, as the writer formats them.
fn lines(
    catalog: &Catalog,
    revision: u64,
    unix_millis: u128,
    command: &str,
    changes: &[Change],
) -> Vec<Vec<u8>> {
    let mut group = GroupLines::default();
    group.push(catalog, revision, unix_millis, command, changes);
    group
        .bytes()
        .split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}
