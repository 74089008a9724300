//! Rebuilding the in-memory state from the database at start-up. Records the catalog
//! no longer knows (a removed role or type) are reported and left out, so they are denied.

use std::{cmp::Ordering, collections::HashMap, iter::Peekable};

use tracing::warn;

use super::{
    StoreError,
    record::{
        self, ScopeRecord,
        chunks::{self, Boundaries},
        keys, text,
    },
};
use crate::model::{
    Catalog, Grant, InstanceKey, ProductSet, ResourceId, Scope, UserId, Workspace, WorkspaceId,
    access::Member,
    workspace::{Parts, registered_id},
};

/// What loading found that the catalog in force cannot represent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Grants whose role is not in the catalog, by role name, with how many there are.
    /// They are denied, and kept on disk for a catalog that has the role again.
    pub unknown_roles: HashMap<String, usize>,
    /// Records of other kinds skipped, with why.
    pub skipped: Vec<String>,
}

fn id<T>(
    bytes: &[u8],
    parse: fn(&str) -> Result<T, crate::model::ids::IdError>,
) -> Result<T, StoreError> {
    parse(text(bytes)?).map_err(|e| StoreError::Corrupt(format!("bad id in key: {e}")))
}

/// Reads every workspace from `db`, with the last revision written, on every core.
pub fn load(
    db: &sled::Db,
    catalog: &Catalog,
    boundaries: Boundaries,
) -> Result<Loaded, StoreError> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    load_on(db, catalog, boundaries, threads)
}

/// Reads every workspace from `db` on `threads` threads.
fn load_on(
    db: &sled::Db,
    catalog: &Catalog,
    boundaries: Boundaries,
    threads: usize,
) -> Result<Loaded, StoreError> {
    let revision = read_revision(db)?;
    let mut report = LoadReport::default();
    let mut workspaces: Vec<(WorkspaceId, ProductSet)> = Vec::new();
    for item in db.scan_prefix(keys::WORKSPACES) {
        let (key, value) = item?;
        let ws = id(keys::decode_workspace(&key)?, WorkspaceId::parse)?;
        let mut products = catalog.always_enabled();
        for name in record::decode_products(&value)? {
            match catalog.product_id(name) {
                Some(product) => products = products.with(product),
                None => report.skipped.push(format!(
                    "workspace `{ws}`: product `{name}` is not in the catalog"
                )),
            }
        }
        workspaces.push((ws, products));
    }

    // Decoding and building the trees is most of a restart: split the workspaces (in
    // key order) into one contiguous range per core, and load the ranges in parallel.
    let per_thread = workspaces.len().div_ceil(threads.max(1)).max(1);
    let mut ranges: Vec<Vec<(WorkspaceId, ProductSet)>> = Vec::new();
    let mut rest = workspaces.into_iter().peekable();
    while rest.peek().is_some() {
        ranges.push(rest.by_ref().take(per_thread).collect());
    }
    let firsts: Vec<Option<WorkspaceId>> = ranges
        .iter()
        .map(|range| range.first().map(|(id, _)| id.clone()))
        .collect();
    let results: Vec<Result<Range, StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = ranges
            .into_iter()
            .enumerate()
            .map(|(i, range)| {
                let end = firsts.get(i + 1).cloned().flatten();
                scope.spawn(move || load_range(db, catalog, boundaries, range, end.as_ref()))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(StoreError::Corrupt("a loading thread failed".into())))
            })
            .collect()
    });
    let mut retained = Retained::new();
    let mut retained_instances = RetainedInstances::new();
    let mut all = HashMap::new();
    for range in results {
        let range = range?;
        all.extend(range.workspaces);
        retained.extend(range.retained);
        retained_instances.extend(range.retained_instances);
        report.skipped.extend(range.report.skipped);
        for (role, count) in range.report.unknown_roles {
            *report.unknown_roles.entry(role).or_default() += count;
        }
    }

    for (role, count) in &report.unknown_roles {
        warn!(
            role,
            count, "grants of a role the catalog no longer has are denied"
        );
    }
    for skipped in &report.skipped {
        warn!(%skipped, "record skipped at start-up");
    }
    Ok(Loaded {
        revision,
        workspaces: all,
        report,
        retained,
        retained_instances,
    })
}

/// What one range of workspaces loaded.
struct Range {
    workspaces: HashMap<WorkspaceId, Workspace>,
    report: LoadReport,
    retained: Retained,
    retained_instances: RetainedInstances,
}

/// The keys of `kind` from workspace `first` up to (not including)
/// workspace `end`: a workspace's keys are `kind {ws} 0 ...`, and NUL sorts first.
fn key_range(
    kind: &[u8],
    first: Option<&WorkspaceId>,
    end: Option<&WorkspaceId>,
) -> (Vec<u8>, Vec<u8>) {
    let bound = |ws: &WorkspaceId| keys::in_workspace(kind, ws);
    let start = first.map_or_else(|| kind.to_vec(), bound);
    let stop = end.map_or_else(
        || {
            // Just past every key of the prefix: its last byte (the NUL separator) plus one.
            let mut past = kind.to_vec();
            if let Some(last) = past.last_mut() {
                *last += 1;
            }
            past
        },
        bound,
    );
    (start, stop)
}

/// Loads the instances and members of one contiguous range of workspaces (`range`, in
/// key order, with their products). Both kinds of record are in workspace order, so the
/// two scans advance together and each workspace is built whole once its records are read.
fn load_range(
    db: &sled::Db,
    catalog: &Catalog,
    boundaries: Boundaries,
    range: Vec<(WorkspaceId, ProductSet)>,
    end: Option<&WorkspaceId>,
) -> Result<Range, StoreError> {
    let first = range.first().map(|(id, _)| id.clone());
    let mut report = LoadReport::default();
    let mut retained = Retained::new();
    let mut retained_instances = RetainedInstances::new();
    let (start, stop) = key_range(keys::INSTANCES, first.as_ref(), end);
    let mut instances = db.range(start..stop).peekable();
    let (start, stop) = key_range(keys::MEMBERS, first.as_ref(), end);
    let mut members = db.range(start..stop).peekable();
    let mut workspaces = HashMap::with_capacity(range.len());

    let mut parts = Parts::default();
    for (workspace, products) in range {
        parts.products = products;
        let (mut last_type, mut last_id) = (None, Vec::new());
        while let Some((key, value)) = next_of(&mut instances, keys::INSTANCES, &workspace)? {
            let keys::InstanceChunkKey {
                type_name: ty,
                first,
                ..
            } = keys::decode_instance_chunk(&key)?;
            let Some(ty) = catalog.type_id(text(ty)?) else {
                report.skipped.push(format!(
                    "workspace `{workspace}`: resource type `{}` is not in the catalog",
                    text(ty)?
                ));
                continue;
            };
            if last_type != Some(ty) {
                (last_type, last_id) = (Some(ty), Vec::new());
            }
            for record in chunk_records(boundaries, first, &value) {
                let (rid, record) = record?;
                in_order(&mut last_id, rid)?;
                let key = (ty, id(rid, ResourceId::parse)?);
                let parent = match record::decode_instance(record)? {
                    None => None,
                    Some((pty, pid)) => match catalog.type_id(pty) {
                        Some(pty) => Some((pty, id(pid.as_bytes(), ResourceId::parse)?)),
                        None => {
                            // Registered without its parent, which the catalog cannot
                            // name; the record is kept as it is for when it can.
                            report.skipped.push(format!(
                                "workspace `{workspace}`: the parent of `{}` is of type \
                                 `{}`, which is not in the catalog; kept without it",
                                text(rid)?,
                                pty
                            ));
                            retained_instances
                                .insert((workspace.clone(), key.clone()), record.to_vec());
                            None
                        }
                    },
                };
                parts.instances.push((key, parent));
            }
        }
        // Sorted for `grant` to find the instances granted on.
        parts.instances.sort_by(|(a, _), (b, _)| a.cmp(b));

        last_id.clear();
        while let Some((key, value)) = next_of(&mut members, keys::MEMBERS, &workspace)? {
            let (_, first) = keys::decode_member_chunk(&key)?;
            for record in chunk_records(boundaries, first, &value) {
                let (user, record) = record?;
                in_order(&mut last_id, user)?;
                let user = id(user, UserId::parse)?;
                let record = record::decode_member(record)?;
                let mut grants = Vec::with_capacity(record.grant_count());
                for line in record.grant_lines() {
                    match grant(catalog, line, &parts.instances, &mut report)? {
                        Some(grant) => grants.push(grant),
                        None => retained
                            .entry((workspace.clone(), user.clone()))
                            .or_default()
                            .push(line.to_vec()),
                    }
                }
                let grants = grants.into_boxed_slice();
                parts.members.push((
                    user,
                    Member {
                        membership: record.membership,
                        grants,
                    },
                ));
            }
        }
        workspaces.insert(workspace, Workspace::from_parts(&mut parts));
    }

    Ok(Range {
        workspaces,
        report,
        retained,
        retained_instances,
    })
}

/// The next record of `workspace` from `records` (keys `prefix {ws} 0 ...`), past those
/// of earlier workspaces, which belong to no workspace and are skipped; `None` once the
/// records move on to a later workspace.
fn next_of(
    records: &mut Peekable<sled::Iter>,
    prefix: &[u8],
    workspace: &WorkspaceId,
) -> Result<Option<(sled::IVec, sled::IVec)>, StoreError> {
    loop {
        let order = match records.peek() {
            None => return Ok(None),
            Some(Ok((key, _))) => keys::workspace_of(key, prefix)
                .map_or(Ordering::Less, |ws| ws.cmp(workspace.as_str().as_bytes())),
            Some(Err(_)) => Ordering::Equal,
        };
        match order {
            Ordering::Less => {
                records.next();
            }
            Ordering::Equal => return Ok(records.next().transpose()?),
            Ordering::Greater => return Ok(None),
        }
    }
}

/// The records of the chunk `value` whose key names `first` as its first record (empty
/// for a head chunk), checked to lie where the database's boundaries put them: a record
/// in the wrong chunk would be written twice by the next change near it.
fn chunk_records<'v>(
    boundaries: Boundaries,
    first: &'v [u8],
    value: &'v [u8],
) -> impl Iterator<Item = Result<(&'v [u8], &'v [u8]), StoreError>> {
    chunks::records(value).enumerate().map(move |(at, record)| {
        let (id, record) =
            record.ok_or_else(|| StoreError::Corrupt("a chunk record has no id".into()))?;
        let placed = match at {
            0 if first.is_empty() => !boundaries.starts(id),
            0 => id == first && boundaries.starts(id),
            _ => !boundaries.starts(id),
        };
        if !placed {
            return Err(StoreError::Corrupt(format!(
                "record `{}` is not where the chunk boundaries put it",
                String::from_utf8_lossy(id)
            )));
        }
        Ok((id, record))
    })
}

/// Checks that `id` follows `last`, the id before it in its run, and makes it the last:
/// a run's records ascend, each once, across its chunks.
fn in_order(last: &mut Vec<u8>, id: &[u8]) -> Result<(), StoreError> {
    if !last.is_empty() && id <= last.as_slice() {
        return Err(StoreError::Corrupt(format!(
            "record `{}` is out of order or twice in its chunks",
            String::from_utf8_lossy(id)
        )));
    }
    last.clear();
    last.extend_from_slice(id);
    Ok(())
}

/// One line of a member record as a grant; `None` (and a note in the report) if the
/// catalog in force does not know its role or type.
/// `instances`, the workspace's, sorted by key: a grant on one of them shares its id
/// rather than allocating a copy that building the workspace would drop again.
fn grant(
    catalog: &Catalog,
    line: &[u8],
    instances: &[(InstanceKey, Option<InstanceKey>)],
    report: &mut LoadReport,
) -> Result<Option<Grant>, StoreError> {
    let stored = record::decode_grant(line)?;
    let Some(role) = catalog.role_id(stored.role) else {
        *report
            .unknown_roles
            .entry(stored.role.to_owned())
            .or_default() += 1;
        return Ok(None);
    };
    let scope = match stored.scope {
        ScopeRecord::All => Scope::All,
        ScopeRecord::Instance { type_name, id } => {
            let Some(ty) = catalog.type_id(type_name) else {
                report.skipped.push(format!(
                    "grant of `{}`: resource type `{type_name}` is not in the catalog",
                    stored.role
                ));
                return Ok(None);
            };
            let id = match registered_id(instances, ty, id) {
                Some(stored) => stored.clone(),
                None => ResourceId::parse(id)
                    .map_err(|e| StoreError::Corrupt(format!("bad id in a grant: {e}")))?,
            };
            Scope::Instance(ty, id)
        }
    };
    Ok(Some(Grant { role, scope }))
}

/// The last revision the database holds; 0 for a new one.
pub fn read_revision(db: &sled::Db) -> Result<u64, StoreError> {
    db.get(keys::REVISION)?
        .map_or(Ok(0), |bytes| record::decode_u64(&bytes, "the revision"))
}

/// Lines of member records the catalog in force cannot represent, by member, kept so
/// that rewriting a member record does not lose them.
pub type Retained = HashMap<(WorkspaceId, UserId), Vec<Vec<u8>>>;

/// Instance records whose parent's type the catalog in force does not have, as stored,
/// kept so that rewriting their chunk does not lose the parent.
pub type RetainedInstances = HashMap<(WorkspaceId, InstanceKey), Vec<u8>>;

/// What start-up read from the database.
pub struct Loaded {
    /// The last revision written.
    pub revision: u64,
    /// Every workspace.
    pub workspaces: HashMap<WorkspaceId, Workspace>,
    /// What the catalog in force cannot represent.
    pub report: LoadReport,
    /// The member record lines behind `report.unknown_roles`.
    pub retained: Retained,
    /// The instance records whose parent's type is not in the catalog.
    pub retained_instances: RetainedInstances,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        engine::Command,
        model::{Grant, Membership, ProductSet, ResourceId, Scope, UserId},
        store::{Store, StoreConfig},
    };

    /// Ids that are prefixes of one another, so that range bounds between workspaces
    /// are tested where they are easiest to get wrong.
    fn workspace_ids() -> Vec<String> {
        let mut ids = Vec::new();
        for base in ["a", "ab", "ab!", "abc", "b", "b~", "z"] {
            for n in 0..6 {
                ids.push(format!("{base}{}", "x".repeat(n)));
            }
        }
        ids
    }

    #[tokio::test]
    async fn a_parallel_load_finds_every_workspace_with_its_members_grants_and_instances() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Arc::new(Catalog::built_in());
        let source = catalog.type_id("source").unwrap();
        let destination = catalog.type_id("destination").unwrap();
        let admin = catalog.role_id("source_admin").unwrap();
        let store = Store::open(dir.path(), Arc::clone(&catalog), &StoreConfig::default()).unwrap();
        let mut commands = Vec::new();
        for ws in workspace_ids() {
            let workspace = WorkspaceId::parse(&ws).unwrap();
            let src = ResourceId::parse(&format!("src-{ws}")).unwrap();
            commands.push(Command::CreateWorkspace {
                workspace: workspace.clone(),
                owner: UserId::parse("owner").unwrap(),
                products: ProductSet::default(),
            });
            commands.push(Command::RegisterResource {
                workspace: workspace.clone(),
                resource: (source, src.clone()),
                parent: None,
            });
            commands.push(Command::RegisterResource {
                workspace: workspace.clone(),
                resource: (destination, ResourceId::parse("dest").unwrap()),
                parent: Some(src.clone()),
            });
            let user = UserId::parse(&format!("user-of-{ws}")).unwrap();
            commands.push(Command::SetMembership {
                workspace: workspace.clone(),
                user: user.clone(),
                membership: Membership::Member,
                actor: None,
            });
            commands.push(Command::Grant {
                workspace,
                user,
                grant: Grant {
                    role: admin,
                    scope: Scope::Instance(source, src),
                },
                actor: None,
            });
        }
        for result in store.write_all(commands).await.unwrap() {
            result.unwrap();
        }
        let before = store.snapshot();
        store.close();
        drop(store);

        let db = crate::store::open_db(dir.path(), &StoreConfig::default()).unwrap();
        // Records of workspaces that do not exist, before, between and after the others:
        // skipped without disturbing their neighbours.
        for orphan in ["0", "abz", "zzzzzzzz"] {
            let mut record = Vec::new();
            chunks::push(&mut record, "stray", b"member");
            db.insert(keys::member_chunk(orphan, ""), record).unwrap();
            let mut record = Vec::new();
            chunks::push(&mut record, "s", b"");
            db.insert(keys::instance_chunk(orphan, "source", ""), record)
                .unwrap();
        }
        let boundaries = crate::store::open::prepare(&db).unwrap();
        for threads in [1, 2, 3, 7, 100] {
            let loaded = load_on(&db, &catalog, boundaries, threads).unwrap();
            assert_eq!(
                loaded.workspaces.len(),
                workspace_ids().len(),
                "{threads} threads"
            );
            assert_eq!(loaded.revision, before.revision);
            for (id, ws) in before.workspaces.iter() {
                let again = loaded.workspaces.get(id).unwrap();
                assert_eq!(again, ws, "{id}");
                assert_eq!(again.grant_count(), 1, "{id}");
                assert_eq!(again.instances_of(destination, None).count(), 1, "{id}");
            }
        }
    }
}
