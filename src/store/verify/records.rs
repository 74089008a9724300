//! The raw records checked one by one: the single keys (format, revision, boundaries,
//! history), every key decoding as its kind, each chunk's records where its boundaries
//! put them and in order, and what records say of one another (a grant's instance, an
//! instance's parent, a workspace's owners). Names only: the catalog is not consulted.

use std::collections::{BTreeMap, BTreeSet};

use super::Verified;
use crate::{
    model::{ResourceId, UserId, WorkspaceId},
    store::{
        StoreError,
        identity::Following,
        record::{
            self, FORMAT, ScopeRecord,
            chunks::{self, Boundaries},
            keys,
        },
    },
};

/// An instance by type name and id.
pub type NamedInstance = (String, String);

/// A workspace's records, by name.
#[derive(Debug, Default)]
pub struct StoredWorkspace {
    /// Its instances, with their parents.
    pub instances: BTreeMap<NamedInstance, Option<NamedInstance>>,
    /// Its members, with whether each is an owner.
    pub members: BTreeMap<String, bool>,
}

/// What the records hold, by name, as far as the checks of indexes need it.
#[derive(Debug, Default)]
pub struct Stored {
    /// Where chunks start, if the database says.
    pub boundaries: Option<Boundaries>,
    /// The workspaces, by id.
    pub workspaces: BTreeMap<String, StoredWorkspace>,
}

/// A stored key as a place, its bytes escaped.
fn key_place(key: &[u8]) -> String {
    format!("key `{}`", key.escape_ascii())
}

/// Checks every record of `db`; returns what they hold.
pub fn check(db: &sled::Db, verified: &mut Verified) -> Result<Stored, StoreError> {
    let mut stored = Stored::default();
    singles(db, verified, &mut stored)?;
    for item in db.scan_prefix(keys::WORKSPACES) {
        let (key, value) = item?;
        let Some(ws) = workspace_id(&key, verified) else {
            continue;
        };
        if let Err(e) = record::decode_products(&value) {
            verified.violation(format!("workspace `{ws}`"), format!("products: {e}"));
        }
        stored.workspaces.insert(ws, StoredWorkspace::default());
    }
    verified.workspaces = stored.workspaces.len();
    if verified.revision == 0 && !stored.workspaces.is_empty() {
        verified.violation(
            key_place(keys::REVISION),
            "missing, yet the database holds workspaces",
        );
    }
    let mut scan = Scan {
        boundaries: stored.boundaries,
        run: Vec::new(),
        last: Vec::new(),
        orphans: BTreeSet::new(),
    };
    for item in db.iter() {
        let (key, value) = item?;
        if key.starts_with(keys::INSTANCES) {
            scan.instance_chunk(&key, &value, &mut stored, verified);
        } else if key.starts_with(keys::MEMBERS) {
            scan.member_chunk(&key, &value, &mut stored, verified);
        } else if !known(&key) {
            verified.violation(key_place(&key), "a key of no kind this format has");
        }
    }
    for (ws, workspace) in &stored.workspaces {
        for ((ty, id), parent) in &workspace.instances {
            if let Some((parent_type, parent_id)) = parent
                && !workspace
                    .instances
                    .contains_key(&(parent_type.clone(), parent_id.clone()))
            {
                verified.violation(
                    format!("workspace `{ws}`"),
                    format!(
                        "instance `{ty}:{id}` names its parent `{parent_type}:{parent_id}`, \
                         which is not registered"
                    ),
                );
            }
        }
        if !workspace.members.values().any(|owner| *owner) {
            verified.violation(
                format!("workspace `{ws}`"),
                "no owner: every workspace has at least one",
            );
        }
    }
    Ok(stored)
}

/// Whether `key` is of a kind this format has (chunks are checked on their own).
fn known(key: &[u8]) -> bool {
    keys::ALL.iter().any(|kind| {
        if kind.len() == 1 {
            key == *kind
        } else {
            key.starts_with(kind)
        }
    })
}

/// The single keys: the format version, the revision, the chunk boundaries, the history
/// id, what a follower follows, an interrupted bootstrap's marker.
fn singles(db: &sled::Db, verified: &mut Verified, stored: &mut Stored) -> Result<(), StoreError> {
    match db.get(keys::FORMAT_VERSION)? {
        None => verified.violation(
            key_place(keys::FORMAT_VERSION),
            "missing: the format version is stamped when accessd first opens a database",
        ),
        Some(bytes) => match record::decode_u64(&bytes, "the format version") {
            Ok(FORMAT) => {}
            Ok(version) => verified.violation(
                key_place(keys::FORMAT_VERSION),
                format!("format {version}, where this build reads format {FORMAT}"),
            ),
            Err(e) => verified.violation(key_place(keys::FORMAT_VERSION), e.to_string()),
        },
    }
    if let Some(bytes) = db.get(keys::REVISION)? {
        match record::decode_u64(&bytes, "the revision") {
            Ok(revision) => verified.revision = revision,
            Err(e) => verified.violation(key_place(keys::REVISION), e.to_string()),
        }
    }
    match db.get(keys::CHUNK_BOUNDARIES)? {
        Some(bytes) => {
            stored.boundaries = Boundaries::decode(&bytes);
            if stored.boundaries.is_none() {
                verified.violation(
                    key_place(keys::CHUNK_BOUNDARIES),
                    "not a seed and a period above 0",
                );
            }
        }
        None if db.scan_prefix(keys::MEMBERS).next().is_some()
            || db.scan_prefix(keys::INSTANCES).next().is_some() =>
        {
            verified.violation(
                key_place(keys::CHUNK_BOUNDARIES),
                "missing, yet the database holds chunks",
            );
        }
        None => {}
    }
    match db.get(keys::HISTORY)? {
        None => verified.violation(
            key_place(keys::HISTORY),
            "missing: a history id is stamped when accessd first opens a database",
        ),
        Some(bytes) => match record::text(&bytes) {
            Ok(history) if !history.is_empty() => verified.history_id = Some(history.to_owned()),
            _ => verified.violation(key_place(keys::HISTORY), "not a history id"),
        },
    }
    if let Some(bytes) = db.get(keys::FOLLOWING)? {
        match Following::decode(&bytes) {
            Ok(following) => verified.note(
                key_place(keys::FOLLOWING),
                format!(
                    "a follower's copy of `{}` of the history `{}`",
                    following.selection, following.history
                ),
            ),
            Err(e) => verified.violation(key_place(keys::FOLLOWING), e.to_string()),
        }
    }
    if db.contains_key(keys::BOOTSTRAPPING)? {
        verified.violation(
            key_place(keys::BOOTSTRAPPING),
            "a follower's bootstrap was interrupted: the records are a partial copy, which \
             the next open discards",
        );
    }
    Ok(())
}

/// A workspace record's id, or `None` with a violation.
fn workspace_id(key: &[u8], verified: &mut Verified) -> Option<String> {
    let id = keys::decode_workspace(key)
        .ok()
        .and_then(|ws| std::str::from_utf8(ws).ok())
        .filter(|ws| WorkspaceId::parse(ws).is_ok());
    if id.is_none() {
        verified.violation(key_place(key), "not the key of a workspace record");
    }
    id.map(str::to_owned)
}

/// The chunks read so far, in key order.
struct Scan {
    boundaries: Option<Boundaries>,
    /// The run the last chunk belonged to: a workspace's members, or its instances of
    /// one type, whose records ascend across its chunks.
    run: Vec<u8>,
    /// The id of the last record of the run.
    last: Vec<u8>,
    /// Workspaces without a record whose chunks of a kind were reported.
    orphans: BTreeSet<(&'static str, Vec<u8>)>,
}

impl Scan {
    /// The records of a chunk of the run `run`, whose key names `first` (empty for a
    /// head chunk): those with an id, after reporting each out of place.
    fn records<'v>(
        &mut self,
        place: &str,
        run: &[u8],
        first: &[u8],
        value: &'v [u8],
        verified: &mut Verified,
    ) -> Vec<(&'v [u8], &'v [u8])> {
        if self.run != run {
            self.run = run.to_vec();
            self.last.clear();
        }
        let mut found = Vec::new();
        for (at, record) in chunks::records(value).enumerate() {
            let Some((id, record)) = record else {
                verified.violation(place, format!("record {at} of the chunk has no id"));
                continue;
            };
            let named = String::from_utf8_lossy(id);
            let placed = match (at, self.boundaries) {
                (0, Some(b)) if first.is_empty() => !b.starts(id),
                (0, Some(b)) => id == first && b.starts(id),
                (0, None) => first.is_empty() || id == first,
                (_, Some(b)) => !b.starts(id),
                (_, None) => true,
            };
            if !placed {
                verified.violation(
                    place,
                    format!("record `{named}` is not where the chunk boundaries put it"),
                );
            }
            if !self.last.is_empty() && id <= self.last.as_slice() {
                verified.violation(
                    place,
                    format!("record `{named}` is out of order or twice in its chunks"),
                );
            } else {
                self.last = id.to_vec();
            }
            found.push((id, record));
        }
        found
    }

    /// The workspace a chunk belongs to, if it has a record; a violation, once per
    /// workspace, if not.
    fn owner<'s>(
        &mut self,
        ws: &[u8],
        what: &'static str,
        stored: &'s mut Stored,
        verified: &mut Verified,
    ) -> Option<(String, &'s mut StoredWorkspace)> {
        let name = String::from_utf8_lossy(ws).into_owned();
        match stored.workspaces.get_mut(&name) {
            Some(workspace) => Some((name, workspace)),
            None => {
                if self.orphans.insert((what, ws.to_vec())) {
                    verified.violation(
                        format!("workspace `{name}`"),
                        format!("{what} records, but no workspace record"),
                    );
                }
                None
            }
        }
    }

    fn instance_chunk(
        &mut self,
        key: &[u8],
        value: &[u8],
        stored: &mut Stored,
        verified: &mut Verified,
    ) {
        let place = key_place(key);
        let Ok(chunk) = keys::decode_instance_chunk(key) else {
            verified.violation(place, "not the key of a chunk of instance records");
            return;
        };
        let run = [chunk.workspace, &[0], chunk.type_name].concat();
        let records = self.records(&place, &run, chunk.first, value, verified);
        let Some((_, workspace)) = self.owner(chunk.workspace, "instance", stored, verified) else {
            return;
        };
        let Ok(type_name) = record::text(chunk.type_name) else {
            verified.violation(place, "the type's name is not UTF-8");
            return;
        };
        for (id, record) in records {
            let Some(id) = valid_id(id, ResourceId::parse) else {
                verified.violation(
                    &place,
                    format!("`{}` is not an instance id", id.escape_ascii()),
                );
                continue;
            };
            let parent = match record::decode_instance(record) {
                Ok(parent) => parent.map(|(ty, id)| (ty.to_owned(), id.to_owned())),
                Err(e) => {
                    verified.violation(&place, format!("instance `{type_name}:{id}`: {e}"));
                    None
                }
            };
            verified.instances += 1;
            workspace
                .instances
                .insert((type_name.to_owned(), id.to_owned()), parent);
        }
    }

    fn member_chunk(
        &mut self,
        key: &[u8],
        value: &[u8],
        stored: &mut Stored,
        verified: &mut Verified,
    ) {
        let place = key_place(key);
        let Ok((ws, first)) = keys::decode_member_chunk(key) else {
            verified.violation(place, "not the key of a chunk of member records");
            return;
        };
        let records = self.records(&place, ws, first, value, verified);
        let Some((ws, workspace)) = self.owner(ws, "member", stored, verified) else {
            return;
        };
        for (user, record) in records {
            let Some(user) = valid_id(user, UserId::parse) else {
                verified.violation(
                    &place,
                    format!("`{}` is not a user id", user.escape_ascii()),
                );
                continue;
            };
            let member_place = format!("workspace `{ws}`, member `{user}`");
            let record = match record::decode_member(record) {
                Ok(record) => record,
                Err(e) => {
                    verified.violation(member_place, e.to_string());
                    continue;
                }
            };
            verified.members += 1;
            workspace.members.insert(
                user.to_owned(),
                record.membership == crate::model::Membership::Owner,
            );
            for (at, line) in record.grant_lines().enumerate() {
                let grant = match record::decode_grant(line) {
                    Ok(grant) => grant,
                    Err(e) => {
                        verified.violation(&member_place, format!("grant {at}: {e}"));
                        continue;
                    }
                };
                verified.grants += 1;
                if let ScopeRecord::Instance { type_name, id } = grant.scope {
                    if ResourceId::parse(id).is_err() {
                        verified.violation(
                            &member_place,
                            format!("grant of `{}`: `{id}` is not an instance id", grant.role),
                        );
                    } else if !workspace
                        .instances
                        .contains_key(&(type_name.to_owned(), id.to_owned()))
                    {
                        verified.violation(
                            &member_place,
                            format!(
                                "grant of `{}` on `{type_name}:{id}`, which is not registered",
                                grant.role
                            ),
                        );
                    }
                }
            }
        }
    }
}

/// `bytes` as an id of the kind `parse` accepts.
fn valid_id<T, E>(bytes: &[u8], parse: fn(&str) -> Result<T, E>) -> Option<&str> {
    std::str::from_utf8(bytes)
        .ok()
        .filter(|id| parse(id).is_ok())
}
