//! The keyspace: how workspaces, memberships, grants, instances, the revision and the
//! change log are laid out as sled keys. Names (of products, roles, types) are stored
//! rather than catalog indexes, so a reordered catalog reads the same data.
//!
//! sled's default tree holds the state, which start-up reads whole:
//! ```text
//! r                               -> u64 BE: the last revision written
//! c                               -> u64 BE seed, u64 BE period: where chunks start
//! w 0 {ws}                        -> product names joined by ','
//! M 0 {ws} 0 {first user}         -> a chunk of member records (see `chunks`), each
//!                                    "{user} 0 owner" | "{user} 0 member", then one line
//!                                    per grant, "\n{role} 0 a" (all instances) or
//!                                    "\n{role} 0 i{type} 0 {id}" (one instance)
//! I 0 {ws} 0 {type} 0 {first id}  -> a chunk of instance records of one type, each
//!                                    "{id} 0 " or "{id} 0 {parent type} 0 {parent id}"
//! ```
//! A chunk's key names its first record, or nothing for the head chunk (see `chunks`).
//! `0` is a NUL byte; ids are printable ASCII, so neither it nor a newline ever occurs
//! inside one. A member's grants live in their member record, and records live in
//! chunks, not under keys of their own: sled's cost is per key.
//!
//! Older layouts, upgraded at open: one key per record, `m 0 {ws} 0 {user}` and
//! `i 0 {ws} 0 {type} 0 {id}`, with the record as value (see `upgrade`); and the change
//! log, now in files of its own (see `change_log`), in the tree `change_log` as JSON
//! lines keyed by revision and part, or earlier still in the default tree as
//! `l {u64 BE revision}`.

use crate::model::{Catalog, Grant, InstanceKey, Membership, Scope, WorkspaceId, access::Member};

/// The key of the last revision written.
pub const REVISION: &[u8] = b"r";
/// The key of the seed and period of chunk boundaries.
pub const CHUNK_BOUNDARIES: &[u8] = b"c";
/// Prefix of workspace records.
pub const WORKSPACES: &[u8] = b"w\0";
/// Prefix of chunks of member records.
pub const MEMBERS: &[u8] = b"M\0";
/// Prefix of chunks of instance records.
pub const INSTANCES: &[u8] = b"I\0";
/// The name of the tree that held the change log before it had files of its own.
pub const CHANGE_LOG_TREE: &[u8] = b"change_log";
/// Prefix of member records in the layout of one key per record.
pub const LEGACY_MEMBERS: &[u8] = b"m\0";
/// Prefix of instance records in the layout of one key per record.
pub const LEGACY_INSTANCES: &[u8] = b"i\0";
/// Prefix of change log entries in the default tree, as data directories written
/// before the change log had a tree of its own keep them.
pub const LEGACY_CHANGE_LOG: &[u8] = b"l";

const SEP: u8 = 0;

fn key(prefix: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let len = prefix.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>();
    let mut key = Vec::with_capacity(len);
    key.extend_from_slice(prefix);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push(SEP);
        }
        key.extend_from_slice(part);
    }
    key
}

/// The key of a workspace record.
pub fn workspace(ws: &WorkspaceId) -> Vec<u8> {
    key(WORKSPACES, &[ws.as_str().as_bytes()])
}

/// The prefix of every key of `kind` (member or instance chunks) in a workspace.
pub fn in_workspace(kind: &[u8], ws: &WorkspaceId) -> Vec<u8> {
    key(kind, &[ws.as_str().as_bytes(), b""])
}

/// The key of the chunk of member records that starts with user `first`, or of the
/// head chunk for `""`.
pub fn member_chunk(ws: &str, first: &str) -> Vec<u8> {
    key(MEMBERS, &[ws.as_bytes(), first.as_bytes()])
}

/// The key of the chunk of instance records of type `type_name` that starts with id
/// `first`, or of the head chunk for `""`.
pub fn instance_chunk(ws: &str, type_name: &str, first: &str) -> Vec<u8> {
    key(
        INSTANCES,
        &[ws.as_bytes(), type_name.as_bytes(), first.as_bytes()],
    )
}

/// Appends one grant as a line of a member record (without its leading newline).
fn push_grant(value: &mut Vec<u8>, catalog: &Catalog, grant: &Grant) {
    value.extend_from_slice(catalog.role_name(grant.role).as_bytes());
    value.push(SEP);
    match &grant.scope {
        Scope::All => value.push(b'a'),
        Scope::Instance(ty, id) => {
            value.push(b'i');
            value.extend_from_slice(catalog.type_name(*ty).as_bytes());
            value.push(SEP);
            value.extend_from_slice(id.as_str().as_bytes());
        }
    }
}

/// Appends a member record: the membership, then each grant on a line of its own, then
/// the `retained` lines (grants of roles the catalog in force does not have, kept
/// verbatim).
pub fn push_member(value: &mut Vec<u8>, catalog: &Catalog, member: &Member, retained: &[Vec<u8>]) {
    value.extend_from_slice(membership_value(member.membership));
    for grant in &member.grants {
        value.push(b'\n');
        push_grant(value, catalog, grant);
    }
    for line in retained {
        value.push(b'\n');
        value.extend_from_slice(line);
    }
}

/// Appends an instance record: its parent, if any.
pub fn push_instance(value: &mut Vec<u8>, catalog: &Catalog, parent: Option<&InstanceKey>) {
    if let Some((ty, id)) = parent {
        value.extend_from_slice(catalog.type_name(*ty).as_bytes());
        value.push(SEP);
        value.extend_from_slice(id.as_str().as_bytes());
    }
}

/// The revision of a change log entry in the default tree (`l {u64 BE revision}`), as
/// data directories written before the change log had a tree of its own keep them.
pub fn legacy_change_log_revision(key: &[u8]) -> Option<u64> {
    let revision = key.strip_prefix(LEGACY_CHANGE_LOG)?;
    Some(u64::from_be_bytes(revision.try_into().ok()?))
}

/// A counter stored as 8 bytes big-endian under `key` of `tree` (the revision); 0 when
/// absent. `what` names it in the corruption error.
pub fn read_u64(tree: &sled::Tree, key: &[u8], what: &str) -> Result<u64, super::StoreError> {
    match tree.get(key)? {
        Some(bytes) => bytes
            .as_ref()
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| super::StoreError::Corrupt(format!("{what} is not 8 bytes"))),
        None => Ok(0),
    }
}

/// The stored form of a membership.
pub fn membership_value(membership: Membership) -> &'static [u8] {
    match membership {
        Membership::Owner => b"owner",
        Membership::Member => b"member",
    }
}

/// Splits a key after its prefix into its NUL-separated parts, without allocating:
/// start-up splits every key of the database. Keys have at most three parts; one with
/// more shows only its first [`MAX_PARTS`], which no key's pattern matches.
pub fn parts<'a>(key: &'a [u8], prefix: &[u8]) -> Parts<'a> {
    let mut parts = Parts {
        found: [&[]; MAX_PARTS],
        len: 0,
    };
    let rest = key.get(prefix.len()..);
    for (slot, part) in parts
        .found
        .iter_mut()
        .zip(rest.into_iter().flat_map(|rest| rest.split(|b| *b == SEP)))
    {
        *slot = part;
        parts.len += 1;
    }
    parts
}

/// The most parts [`parts`] shows.
pub const MAX_PARTS: usize = 4;

/// The parts of a key, as a slice.
#[derive(Debug, Clone, Copy)]
pub struct Parts<'a> {
    found: [&'a [u8]; MAX_PARTS],
    len: usize,
}

impl<'a> std::ops::Deref for Parts<'a> {
    type Target = [&'a [u8]];

    fn deref(&self) -> &Self::Target {
        self.found.get(..self.len).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_into_their_parts_after_the_prefix() {
        let key = key(MEMBERS, &[b"ws", b"user"]);
        assert_eq!(*parts(&key, MEMBERS), [&b"ws"[..], b"user"]);
        assert_eq!(*parts(b"", b""), [&b""[..]]);
        assert!(parts(b"m", MEMBERS).is_empty(), "shorter than the prefix");
        assert_eq!(
            parts(b"a\0b\0c\0d\0e", b"").len(),
            MAX_PARTS,
            "more parts than shown"
        );
    }
}
