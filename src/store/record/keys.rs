//! The keyspace: the sled key of every record, built and split apart again. Keys are
//! a one-letter kind, then NUL-separated parts; ids are printable ASCII, so a NUL never
//! occurs inside a part.

use super::super::StoreError;
use crate::model::WorkspaceId;

/// The key of the stored format's version.
pub const FORMAT_VERSION: &[u8] = b"v";
/// The key of the last revision written.
pub const REVISION: &[u8] = b"r";
/// The key of the seed and period of chunk boundaries.
pub const CHUNK_BOUNDARIES: &[u8] = b"c";
/// The key of the id of the history the data belongs to.
pub const HISTORY: &[u8] = b"h";
/// The key of what a follower follows: the leader's history and the selection held.
pub const FOLLOWING: &[u8] = b"f";
/// The key present while a follower's bootstrap is being written.
pub const BOOTSTRAPPING: &[u8] = b"b";
/// Prefix of workspace records.
pub const WORKSPACES: &[u8] = b"w\0";
/// Prefix of chunks of member records.
pub const MEMBERS: &[u8] = b"M\0";
/// Prefix of chunks of instance records.
pub const INSTANCES: &[u8] = b"I\0";

/// Every key (one byte) and key prefix (ending with the NUL separator) of this format: a
/// database holding any other key was written in another one.
pub const ALL: [&[u8]; 9] = [
    FORMAT_VERSION,
    REVISION,
    CHUNK_BOUNDARIES,
    HISTORY,
    FOLLOWING,
    BOOTSTRAPPING,
    WORKSPACES,
    MEMBERS,
    INSTANCES,
];

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

/// The workspace id a workspace record's key names.
pub fn decode_workspace(key: &[u8]) -> Result<&[u8], StoreError> {
    match parts(key, WORKSPACES)[..] {
        [ws] => Ok(ws),
        _ => Err(StoreError::Corrupt("bad workspace key".into())),
    }
}

/// The workspace and the first user a member chunk's key names (empty for a head chunk).
pub fn decode_member_chunk(key: &[u8]) -> Result<(&[u8], &[u8]), StoreError> {
    match parts(key, MEMBERS)[..] {
        [ws, first] => Ok((ws, first)),
        _ => Err(StoreError::Corrupt("bad member chunk key".into())),
    }
}

/// What an instance chunk's key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceChunkKey<'a> {
    /// The workspace.
    pub workspace: &'a [u8],
    /// The type of the instances.
    pub type_name: &'a [u8],
    /// The id of the first record; empty for a head chunk.
    pub first: &'a [u8],
}

/// What an instance chunk's key names.
pub fn decode_instance_chunk(key: &[u8]) -> Result<InstanceChunkKey<'_>, StoreError> {
    match parts(key, INSTANCES)[..] {
        [workspace, type_name, first] => Ok(InstanceChunkKey {
            workspace,
            type_name,
            first,
        }),
        _ => Err(StoreError::Corrupt("bad instance chunk key".into())),
    }
}

/// The workspace a member or instance chunk's key (of `kind`) belongs to, if it has one.
pub fn workspace_of<'a>(key: &'a [u8], kind: &[u8]) -> Option<&'a [u8]> {
    parts(key, kind).first().copied()
}

/// Splits `bytes` after `prefix` into its NUL-separated parts, without allocating:
/// start-up splits every key of the database. Keys have at most three parts; one with
/// more shows only its first [`MAX_PARTS`], which no key's pattern matches. A key that
/// does not start with `prefix` has none.
pub fn parts<'a>(bytes: &'a [u8], prefix: &[u8]) -> Parts<'a> {
    let mut parts = Parts {
        found: [&[]; MAX_PARTS],
        len: 0,
    };
    let rest = bytes.strip_prefix(prefix);
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
        assert!(parts(b"source\0ios", MEMBERS).is_empty(), "another prefix");
    }

    #[test]
    fn a_key_of_another_kind_does_not_decode_as_this_kind() {
        let member_chunk = member_chunk("acme", "sam");
        assert!(decode_member_chunk(&member_chunk).is_ok());
        assert!(decode_instance_chunk(&member_chunk).is_err());
        assert!(decode_member_chunk(b"source\0ios").is_err());
        assert!(decode_workspace(&instance_chunk("acme", "source", "")).is_err());
        assert_eq!(workspace_of(&member_chunk, INSTANCES), None);
        assert_eq!(
            parts(b"a\0b\0c\0d\0e", b"").len(),
            MAX_PARTS,
            "more parts than shown"
        );
    }
}
