//! The change log: what each revision changed and when, for replicas and auditors;
//! nothing in the server reads it. It lives in a sled tree of its own (`change_log`), so
//! that start-up, which reads the default tree, never reads it, and it is kept within a
//! budget of bytes: the writer drops the oldest entries once it is over, and logs
//! nothing with a budget of 0.
//!
//! Entries are JSON lines, readable with sled alone, without code of this crate. An
//! entry is one line, or several for a write of many changes (a bulk-import batch of
//! 20,000 records makes about 600 lines of at most [`LINE_BYTES`]):
//! `{"revision":R,"part":P,"parts":N,"unix_millis":T,"command":"grant","changes":[...]}`.
//! The lines of one group commit are packed, in order, into sled values of at most
//! [`CHUNK_BYTES`], each keyed by the revision (u64 big-endian) and part (u32
//! big-endian) of its first line; the empty key holds the bytes of values the tree
//! holds (u64 big-endian). Small values matter twice to sled: its cost is per key, so
//! a group of 64 grants writes one value rather than 64; and a leaf of sixteen values
//! stays under sled's blob threshold (128 KiB with its 512 KiB segments), over which it
//! becomes a file of its own that sled rewrites whole whenever the leaf changes and
//! never fsyncs. Trimming removes the oldest values first, so the oldest revision kept
//! may lack its first lines.
//!
//! The writer applies a group's change log values before its state, then flushes both;
//! sled recovers a prefix of its log, so a crash in between leaves values of revisions
//! the state never reached, which [`ChangeLog::open`] removes.
//!
//! Serialized straight from borrowed views (no intermediate JSON tree): a bulk import
//! logs every record.

use std::io::Write as _;

use serde::Serialize;
use tracing::{info, warn};

use super::{StoreError, keys};
use crate::model::{Catalog, Change, Grant, InstanceKey, Membership, Scope, UserId, WorkspaceId};

/// The most bytes of one value of the change log's tree, unless one line is longer
/// (none is: see [`LINE_BYTES`]). Sixteen, a sled leaf, stay under sled's blob threshold.
pub const CHUNK_BYTES: usize = 6 * 1024;

/// The most bytes of changes on one line (a single larger change has a line of its
/// own): with the other fields, a line fits a value.
pub const LINE_BYTES: usize = CHUNK_BYTES - 256;

/// The key of the count of bytes the change log's tree holds.
const COUNT: &[u8] = b"";

/// About the most bytes the migration of entries out of the default tree copies in one
/// batch.
const MIGRATE_BATCH_BYTES: usize = 16 << 20;

#[derive(Serialize)]
#[serde(untagged)]
enum ScopeView<'a> {
    All(&'static str),
    Instance { r#type: &'a str, id: &'a str },
}

#[derive(Serialize)]
struct GrantView<'a> {
    role: &'a str,
    scope: ScopeView<'a>,
}

#[derive(Serialize)]
struct ResourceView<'a> {
    r#type: &'a str,
    id: &'a str,
}

#[derive(Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum ChangeView<'a> {
    CreateWorkspace {
        workspace: &'a WorkspaceId,
        products: Vec<&'a str>,
    },
    SetProducts {
        workspace: &'a WorkspaceId,
        products: Vec<&'a str>,
    },
    DeleteWorkspace {
        workspace: &'a WorkspaceId,
    },
    SetMembership {
        workspace: &'a WorkspaceId,
        user: &'a UserId,
        membership: &'static str,
    },
    RemoveMember {
        workspace: &'a WorkspaceId,
        user: &'a UserId,
    },
    AddGrant {
        workspace: &'a WorkspaceId,
        user: &'a UserId,
        grant: GrantView<'a>,
    },
    RemoveGrant {
        workspace: &'a WorkspaceId,
        user: &'a UserId,
        grant: GrantView<'a>,
    },
    RegisterResource {
        workspace: &'a WorkspaceId,
        resource: ResourceView<'a>,
        parent: Option<ResourceView<'a>>,
    },
    DeleteResource {
        workspace: &'a WorkspaceId,
        resource: ResourceView<'a>,
    },
}

fn grant<'a>(catalog: &'a Catalog, grant: &'a Grant) -> GrantView<'a> {
    GrantView {
        role: catalog.role_name(grant.role),
        scope: match &grant.scope {
            Scope::All => ScopeView::All("all"),
            Scope::Instance(ty, id) => ScopeView::Instance {
                r#type: catalog.type_name(*ty),
                id: id.as_str(),
            },
        },
    }
}

fn resource<'a>(catalog: &'a Catalog, key: &'a InstanceKey) -> ResourceView<'a> {
    ResourceView {
        r#type: catalog.type_name(key.0),
        id: key.1.as_str(),
    }
}

fn membership(membership: Membership) -> &'static str {
    match membership {
        Membership::Owner => "owner",
        Membership::Member => "member",
    }
}

fn view<'a>(catalog: &'a Catalog, change: &'a Change) -> ChangeView<'a> {
    let products = |set: crate::model::ProductSet| -> Vec<&'a str> {
        set.iter().map(|p| catalog.product_name(p)).collect()
    };
    match change {
        Change::CreateWorkspace {
            workspace,
            products: set,
        } => ChangeView::CreateWorkspace {
            workspace,
            products: products(*set),
        },
        Change::SetProducts {
            workspace,
            products: set,
        } => ChangeView::SetProducts {
            workspace,
            products: products(*set),
        },
        Change::DeleteWorkspace { workspace } => ChangeView::DeleteWorkspace { workspace },
        Change::SetMembership {
            workspace,
            user,
            membership: m,
        } => ChangeView::SetMembership {
            workspace,
            user,
            membership: membership(*m),
        },
        Change::RemoveMember { workspace, user } => ChangeView::RemoveMember { workspace, user },
        Change::AddGrant {
            workspace,
            user,
            grant: g,
        } => ChangeView::AddGrant {
            workspace,
            user,
            grant: grant(catalog, g),
        },
        Change::RemoveGrant {
            workspace,
            user,
            grant: g,
        } => ChangeView::RemoveGrant {
            workspace,
            user,
            grant: grant(catalog, g),
        },
        Change::RegisterResource {
            workspace,
            resource: r,
            parent,
        } => ChangeView::RegisterResource {
            workspace,
            resource: resource(catalog, r),
            parent: parent.as_ref().map(|p| resource(catalog, p)),
        },
        Change::DeleteResource {
            workspace,
            resource: r,
        } => ChangeView::DeleteResource {
            workspace,
            resource: resource(catalog, r),
        },
    }
}

/// The lines of the change log entry of one write: each a JSON object with the
/// revision, the line's part number and their count, the time, the command, and at
/// most [`LINE_BYTES`] of its changes, ending with a newline.
pub fn lines(
    catalog: &Catalog,
    revision: u64,
    unix_millis: u128,
    command: &str,
    changes: &[Change],
) -> Vec<Vec<u8>> {
    // Each change serialized once, into one buffer, remembering where each ends.
    let mut body = Vec::with_capacity(changes.len() * 192);
    let mut ends = Vec::with_capacity(changes.len());
    for change in changes {
        // Serializing plain structs of strings to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut body, &view(catalog, change));
        ends.push(body.len());
    }
    let changes: Vec<&[u8]> = std::iter::once(0)
        .chain(ends.iter().copied())
        .zip(ends.iter().copied())
        .map(|(start, end)| body.get(start..end).unwrap_or_default())
        .collect();
    let command = serde_json::to_string(command).unwrap_or_default();
    let rest = format!(r#""unix_millis":{unix_millis},"command":{command}"#);
    assemble(revision, rest.as_bytes(), &changes)
}

/// The lines of the entry of `revision` holding `changes` (each a serialized JSON
/// object), with `rest`, the fields after the part (`"unix_millis":..,"command":..`).
fn assemble(revision: u64, rest: &[u8], changes: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut bounds = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, change) in changes.iter().enumerate() {
        if size + change.len() > LINE_BYTES && i > start {
            bounds.push(start..i);
            (start, size) = (i, 0);
        }
        size += change.len() + 1;
    }
    bounds.push(start..changes.len());
    let count = bounds.len();
    bounds
        .into_iter()
        .enumerate()
        .map(|(part, bounds)| {
            let changes = changes.get(bounds).unwrap_or_default();
            let size = changes.iter().map(|c| c.len() + 1).sum::<usize>();
            let mut line = Vec::with_capacity(size + rest.len() + 64);
            // Writing to a Vec cannot fail.
            let _ = write!(
                line,
                r#"{{"revision":{revision},"part":{part},"parts":{count},"#
            );
            line.extend_from_slice(rest);
            line.extend_from_slice(br#","changes":["#);
            for (i, change) in changes.iter().enumerate() {
                if i > 0 {
                    line.push(b',');
                }
                line.extend_from_slice(change);
            }
            line.extend_from_slice(b"]}\n");
            line
        })
        .collect()
}

/// The lines of an entry as data directories of before the change log's tree stored
/// it, whole: `{"revision":R,"unix_millis":T,"command":C,"changes":[{"op":..},..]}`;
/// `None` if it is not of that shape. Split between changes at `},{"op":`, which
/// cannot occur inside a JSON string (a quote in a string is escaped).
fn split_legacy(value: &[u8]) -> Option<Vec<Vec<u8>>> {
    const CHANGES: &[u8] = br#","changes":["#;
    const SEPARATOR: &[u8] = br#"},{"op":"#;
    let fields = value.strip_prefix(br#"{"revision":"#)?;
    let comma = fields.iter().position(|b| *b == b',')?;
    let revision = std::str::from_utf8(fields.get(..comma)?)
        .ok()?
        .parse()
        .ok()?;
    let fields = fields.get(comma + 1..)?;
    let at = fields.windows(CHANGES.len()).position(|w| w == CHANGES)?;
    let rest = fields.get(..at)?;
    let body = fields.get(at + CHANGES.len()..)?.strip_suffix(b"]}")?;
    let mut changes = Vec::new();
    let (mut start, mut at) = (0, 0);
    while let Some(found) = body
        .get(at..)
        .and_then(|tail| tail.windows(SEPARATOR.len()).position(|w| w == SEPARATOR))
    {
        let end = at + found + 1;
        changes.push(body.get(start..end)?);
        start = end + 1;
        at = start;
    }
    if !body.is_empty() {
        changes.push(body.get(start..)?);
    }
    Some(assemble(revision, rest, &changes))
}

/// Lines packed into values of at most [`CHUNK_BYTES`], each keyed by its first line.
#[derive(Default)]
struct Chunks {
    done: Vec<([u8; 12], Vec<u8>)>,
    current: Option<([u8; 12], Vec<u8>)>,
}

impl Chunks {
    /// Adds the lines of the entry of `revision`.
    fn push(&mut self, revision: u64, lines: Vec<Vec<u8>>) {
        for (part, line) in (0_u32..).zip(lines) {
            let full = self
                .current
                .as_ref()
                .is_some_and(|(_, value)| value.len() + line.len() > CHUNK_BYTES);
            if full {
                self.done.extend(self.current.take());
            }
            match &mut self.current {
                Some((_, value)) => value.extend_from_slice(&line),
                None => self.current = Some((keys::change_log(revision, part), line)),
            }
        }
    }

    /// Every value, the last one included.
    fn finish(mut self) -> Vec<([u8; 12], Vec<u8>)> {
        self.done.extend(self.current.take());
        self.done
    }
}

/// The change log's tree and how much it holds; owned by the writer.
pub struct ChangeLog {
    tree: sled::Tree,
    /// The most bytes of values kept; 0 logs nothing.
    budget: u64,
    /// The bytes of values the tree holds once what is pending is applied.
    held: u64,
    /// The lines of the group being committed.
    pending: Chunks,
}

impl ChangeLog {
    /// Opens the change log of `db` with a budget of `budget` bytes: moves the entries
    /// that data directories of before its tree keep in the default tree (see
    /// [`ChangeLog::migrate`]), and removes values of revisions after the state's last,
    /// which a crash between a group's log and its state left.
    pub fn open(db: &sled::Db, budget: u64) -> Result<Self, StoreError> {
        let revision = keys::read_u64(db, keys::REVISION, "revision")?;
        let tree = db.open_tree(keys::CHANGE_LOG_TREE)?;
        let held = keys::read_u64(&tree, COUNT, "change log size")?;
        let mut log = Self {
            tree,
            budget,
            held,
            pending: Chunks::default(),
        };
        log.migrate(db)?;
        let mut batch = sled::Batch::default();
        let mut held = log.held;
        let mut orphans = 0;
        for item in log
            .tree
            .range(keys::change_log(revision.saturating_add(1), 0)..)
        {
            let (key, value) = item?;
            held = held.saturating_sub(value.len() as u64);
            batch.remove(key);
            orphans += 1;
        }
        if orphans > 0 {
            warn!(
                orphans,
                revision, "change log values of revisions never committed removed"
            );
            batch.insert(COUNT, &held.to_be_bytes());
            log.tree.apply_batch(batch)?;
            log.held = held;
        }
        Ok(log)
    }

    /// Moves the change log entries of the default tree (`l` keys) to the change log's
    /// tree, as lines: the newest that fit the budget are copied, a batch at a time;
    /// then the tree is counted, and the entries removed from the default tree.
    /// Interrupted, it starts again at the next open, copies the same values under the
    /// same keys and counts again, so it neither loses an entry nor counts one twice.
    fn migrate(&mut self, db: &sled::Db) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        if db.scan_prefix(keys::LEGACY_CHANGE_LOG).next().is_none() {
            return Ok(());
        }
        let (mut moved, mut copied) = (0_usize, 0_u64);
        let mut batch = sled::Batch::default();
        let mut batch_bytes = 0;
        // Newest first, each entry's values made as the writer makes a group's.
        for item in db.scan_prefix(keys::LEGACY_CHANGE_LOG).rev() {
            let (key, value) = item?;
            let Some(revision) = keys::legacy_change_log_revision(&key) else {
                continue;
            };
            // Whole, as it was, if it is not of the shape this crate wrote.
            let lines = split_legacy(&value).unwrap_or_else(|| {
                let mut line = value.to_vec();
                line.push(b'\n');
                vec![line]
            });
            let mut chunks = Chunks::default();
            chunks.push(revision, lines);
            let values = chunks.finish();
            let size = values.iter().map(|(_, v)| v.len() as u64).sum::<u64>();
            if copied + size > self.budget {
                break;
            }
            for (key, value) in values {
                batch_bytes += value.len();
                batch.insert(&key, value);
            }
            copied += size;
            moved += 1;
            if batch_bytes >= MIGRATE_BATCH_BYTES {
                self.tree.apply_batch(std::mem::take(&mut batch))?;
                batch_bytes = 0;
            }
        }
        self.tree.apply_batch(batch)?;
        self.held = self.count()?;
        self.tree.insert(COUNT, &self.held.to_be_bytes())?;
        let mut removals = sled::Batch::default();
        let mut dropped = 0_usize;
        for key in db.scan_prefix(keys::LEGACY_CHANGE_LOG).keys() {
            removals.remove(key?);
            dropped += 1;
        }
        let dropped = dropped.saturating_sub(moved);
        db.apply_batch(removals)?;
        db.flush()?;
        info!(
            moved,
            dropped,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "change log moved to a tree of its own"
        );
        Ok(())
    }

    /// The bytes of values the tree holds, counted.
    fn count(&self) -> Result<u64, StoreError> {
        let mut held = 0;
        for item in self.tree.iter() {
            let (key, value) = item?;
            if key.as_ref() != COUNT {
                held += value.len() as u64;
            }
        }
        Ok(held)
    }

    /// Whether writes are logged (a budget of 0 logs nothing).
    pub fn enabled(&self) -> bool {
        self.budget > 0
    }

    /// Whether the log holds more than its budget.
    pub fn over_budget(&self) -> bool {
        self.held > self.budget
    }

    /// Adds the lines of the entry of `revision` to the group being committed.
    pub fn append(&mut self, revision: u64, lines: Vec<Vec<u8>>) {
        self.pending.push(revision, lines);
    }

    /// The batch of the change log's tree that writes the group's lines and the new
    /// count (empty if nothing was appended), and how many values it writes.
    pub fn seal(&mut self) -> (sled::Batch, usize) {
        let values = std::mem::take(&mut self.pending).finish();
        let mut batch = sled::Batch::default();
        if values.is_empty() {
            return (batch, 0);
        }
        let count = values.len();
        for (key, value) in values {
            self.held += value.len() as u64;
            batch.insert(&key, value);
        }
        batch.insert(COUNT, &self.held.to_be_bytes());
        (batch, count)
    }

    /// Applies a batch made by [`ChangeLog::seal`].
    pub fn apply(&self, batch: sled::Batch) -> Result<(), StoreError> {
        Ok(self.tree.apply_batch(batch)?)
    }

    /// Once the log is over its budget, removes the oldest values, at most `max_values`
    /// of them, until it holds at most seven eighths of it: a trim then comes once per
    /// eighth of the budget written, rather than after every write. Not flushed (a trim
    /// lost in a crash is done again).
    pub fn trim(&mut self, max_values: usize) -> Result<(), StoreError> {
        if !self.over_budget() {
            return Ok(());
        }
        let target = self.budget - self.budget / 8;
        let mut removals = sled::Batch::default();
        let mut held = self.held;
        let mut oldest = self.tree.range(keys::change_log(0, 0)..);
        let mut removed = 0;
        while held > target && removed < max_values {
            let Some(item) = oldest.next() else {
                // The tree is empty once these go, whatever the count said.
                held = 0;
                break;
            };
            let (key, value) = item?;
            held = held.saturating_sub(value.len() as u64);
            removals.remove(key);
            removed += 1;
        }
        removals.insert(COUNT, &held.to_be_bytes());
        self.tree.apply_batch(removals)?;
        self.held = held;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ResourceId, UserId, WorkspaceId};

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

    #[test]
    fn entries_name_everything_by_name() {
        let catalog = Catalog::built_in();
        let ws = WorkspaceId::parse("acme").unwrap();
        let source = catalog.type_id("source").unwrap();
        let changes = vec![
            Change::AddGrant {
                workspace: ws.clone(),
                user: UserId::parse("sam").unwrap(),
                grant: Grant {
                    role: catalog.role_id("source_admin").unwrap(),
                    scope: Scope::Instance(source, ResourceId::parse("ios").unwrap()),
                },
            },
            Change::AddGrant {
                workspace: ws.clone(),
                user: UserId::parse("ria").unwrap(),
                grant: Grant {
                    role: catalog.role_id("warehouse_read").unwrap(),
                    scope: Scope::All,
                },
            },
        ];
        let lines = lines(&catalog, 7, 1000, "grant", &changes);
        assert_eq!(lines.len(), 1);
        assert_eq!(
            String::from_utf8(lines[0].clone()).unwrap(),
            concat!(
                r#"{"revision":7,"part":0,"parts":1,"unix_millis":1000,"command":"grant","changes":["#,
                r#"{"op":"add_grant","workspace":"acme","user":"sam","grant":{"role":"source_admin","scope":{"type":"source","id":"ios"}}},"#,
                r#"{"op":"add_grant","workspace":"acme","user":"ria","grant":{"role":"warehouse_read","scope":"all"}}]}"#,
                "\n"
            )
        );
    }

    #[test]
    fn a_large_entry_is_split_into_lines_that_are_each_json_and_together_hold_every_change() {
        let catalog = Catalog::built_in();
        let changes = grants(&catalog, 1000);
        let lines = lines(&catalog, 42, 1000, "batch", &changes);
        assert!(lines.len() > 5, "{} lines", lines.len());
        let mut users = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            assert!(line.len() <= CHUNK_BYTES, "line {i}: {} bytes", line.len());
            assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
            let entry: serde_json::Value = serde_json::from_slice(line).unwrap();
            assert_eq!(entry["revision"], 42);
            assert_eq!(entry["part"], i);
            assert_eq!(entry["parts"], lines.len());
            assert_eq!(entry["command"], "batch");
            for change in entry["changes"].as_array().unwrap() {
                users.push(change["user"].as_str().unwrap().to_owned());
            }
        }
        let expected: Vec<String> = (0..1000).map(|i| format!("user-{i:04}")).collect();
        assert_eq!(users, expected);
    }

    #[test]
    fn an_entry_without_changes_is_one_line() {
        let lines = lines(&Catalog::built_in(), 1, 2, "batch", &[]);
        assert_eq!(lines.len(), 1);
        let entry: serde_json::Value = serde_json::from_slice(&lines[0]).unwrap();
        assert_eq!(entry["changes"], serde_json::json!([]));
    }

    #[test]
    fn lines_are_packed_in_order_into_values_keyed_by_their_first_line() {
        let catalog = Catalog::built_in();
        let mut chunks = Chunks::default();
        let mut expected = Vec::new();
        for (revision, count) in [(5, 1), (6, 3), (7, 1000), (8, 1), (9, 2)] {
            let lines = lines(&catalog, revision, 1000, "grant", &grants(&catalog, count));
            for (part, line) in lines.iter().enumerate() {
                expected.push((revision, part, line.clone()));
            }
            chunks.push(revision, lines);
        }
        let values = chunks.finish();
        assert!(values.len() > 5 && values.len() < expected.len());
        let mut found = Vec::new();
        for (key, value) in &values {
            assert!(value.len() <= CHUNK_BYTES, "{} bytes", value.len());
            let mut first = true;
            for line in value.split_inclusive(|b| *b == b'\n') {
                let entry: serde_json::Value = serde_json::from_slice(line).unwrap();
                let (revision, part) = (
                    entry["revision"].as_u64().unwrap(),
                    entry["part"].as_u64().unwrap(),
                );
                if first {
                    assert_eq!(*key, keys::change_log(revision, part as u32));
                    first = false;
                }
                found.push((revision, part as usize, line.to_vec()));
            }
        }
        assert_eq!(found, expected);
        assert!(values.windows(2).all(|w| w[0].0 < w[1].0), "keys ascend");
    }

    /// An entry as data directories of before the change log's tree stored it.
    fn legacy_entry(catalog: &Catalog, revision: u64, changes: &[Change]) -> Vec<u8> {
        let changes: Vec<String> = changes
            .iter()
            .map(|c| serde_json::to_string(&view(catalog, c)).unwrap())
            .collect();
        format!(
            r#"{{"revision":{revision},"unix_millis":1000,"command":"batch","changes":[{}]}}"#,
            changes.join(",")
        )
        .into_bytes()
    }

    #[test]
    fn an_entry_stored_whole_before_splits_into_the_lines_it_would_be_written_as_now() {
        let catalog = Catalog::built_in();
        for count in [0, 1, 2, 37, 1000] {
            let changes = grants(&catalog, count);
            let legacy = legacy_entry(&catalog, 9, &changes);
            assert_eq!(
                split_legacy(&legacy).unwrap(),
                lines(&catalog, 9, 1000, "batch", &changes),
                "{count} changes"
            );
        }
        assert_eq!(split_legacy(br#"{"something":"else"}"#), None);
    }

    /// The store's behaviour on disk, read back with sled alone.
    mod on_disk {
        use std::{path::Path, sync::Arc};

        use super::*;
        use crate::{
            engine::Command,
            model::{Membership, ProductSet},
            store::{Store, StoreConfig, open_db},
        };

        /// What the change log's tree holds: the count, the bytes of its values, and
        /// every line as (revision, part, command).
        struct Contents {
            count: Option<u64>,
            bytes: u64,
            lines: Vec<(u64, u64, String)>,
            legacy: usize,
        }

        fn contents(dir: &Path) -> Contents {
            let db = open_db(dir, &StoreConfig::default()).unwrap();
            let tree = db.open_tree(keys::CHANGE_LOG_TREE).unwrap();
            let mut contents = Contents {
                count: None,
                bytes: 0,
                lines: Vec::new(),
                legacy: db.scan_prefix(keys::LEGACY_CHANGE_LOG).count(),
            };
            for item in tree.iter() {
                let (key, value) = item.unwrap();
                if key.is_empty() {
                    contents.count = Some(u64::from_be_bytes(value.as_ref().try_into().unwrap()));
                    continue;
                }
                contents.bytes += value.len() as u64;
                assert!(value.len() <= CHUNK_BYTES, "{} bytes", value.len());
                for (i, line) in value.split_inclusive(|b| *b == b'\n').enumerate() {
                    assert_eq!(line.last(), Some(&b'\n'));
                    let entry: serde_json::Value = serde_json::from_slice(line).unwrap();
                    let (revision, part) = (
                        entry["revision"].as_u64().unwrap(),
                        entry["part"].as_u64().unwrap_or(0),
                    );
                    if i == 0 {
                        assert_eq!(key.as_ref(), keys::change_log(revision, part as u32));
                    }
                    let command = entry["command"].as_str().unwrap().to_owned();
                    contents.lines.push((revision, part, command));
                }
            }
            contents
        }

        fn config(change_log_bytes: u64) -> StoreConfig {
            StoreConfig {
                change_log_bytes,
                ..StoreConfig::default()
            }
        }

        /// A workspace, then `members` memberships in it: one revision each.
        fn commands(members: usize) -> Vec<Command> {
            let ws = WorkspaceId::parse("acme").unwrap();
            let mut commands = vec![Command::CreateWorkspace {
                workspace: ws.clone(),
                owner: UserId::parse("olivia").unwrap(),
                products: ProductSet::default(),
            }];
            commands.extend((0..members).map(|i| Command::SetMembership {
                workspace: ws.clone(),
                user: UserId::parse(&format!("user-{i:05}")).unwrap(),
                membership: Membership::Member,
                actor: None,
            }));
            commands
        }

        async fn write(dir: &Path, config: &StoreConfig, commands: Vec<Command>) -> u64 {
            let store = Store::open(dir, Arc::new(Catalog::built_in()), config).unwrap();
            for chunk in commands.chunks(100) {
                for result in store.write_all(chunk.to_vec()).await.unwrap() {
                    result.unwrap();
                }
            }
            let revision = store.snapshot().revision;
            store.close();
            revision
        }

        /// The change log after opening the store in `dir` once and closing it.
        fn reopened(dir: &Path, config: &StoreConfig) -> Contents {
            let store = Store::open(dir, Arc::new(Catalog::built_in()), config).unwrap();
            store.close();
            drop(store);
            contents(dir)
        }

        #[tokio::test]
        async fn the_writer_keeps_the_newest_entries_within_the_budget_and_drops_the_oldest() {
            let dir = tempfile::tempdir().unwrap();
            let budget = 64 << 10;
            let last = write(dir.path(), &config(budget), commands(2000)).await;
            assert_eq!(last, 2001);
            let log = contents(dir.path());
            assert_eq!(log.count, Some(log.bytes));
            assert!(log.bytes <= budget, "{} bytes", log.bytes);
            assert!(log.bytes > budget / 2, "{} bytes", log.bytes);
            let revisions: Vec<u64> = log.lines.iter().map(|(r, _, _)| *r).collect();
            let oldest = revisions[0];
            assert!(oldest > 1000, "oldest kept: {oldest}");
            assert_eq!(revisions, (oldest..=last).collect::<Vec<_>>());
            assert_eq!(log.lines.last().unwrap().2, "set_membership");
        }

        #[tokio::test]
        async fn a_budget_of_zero_logs_nothing_and_drops_what_was_logged() {
            let dir = tempfile::tempdir().unwrap();
            write(dir.path(), &StoreConfig::default(), commands(10)).await;
            assert_eq!(contents(dir.path()).lines.len(), 11);
            write(dir.path(), &config(0), commands(20).split_off(11)).await;
            let log = contents(dir.path());
            assert!(log.lines.is_empty());
            assert_eq!(log.count, Some(0));
        }

        /// Entries in the default tree, as data directories of before the change log's
        /// tree have them, for revisions `revisions`, each of `changes` memberships.
        fn put_legacy(dir: &Path, revisions: std::ops::RangeInclusive<u64>, changes: usize) {
            let catalog = Catalog::built_in();
            let db = open_db(dir, &StoreConfig::default()).unwrap();
            for revision in revisions {
                let changes: Vec<Change> = (0..changes)
                    .map(|i| Change::SetMembership {
                        workspace: WorkspaceId::parse("acme").unwrap(),
                        user: UserId::parse(&format!("user-{revision}-{i}")).unwrap(),
                        membership: Membership::Member,
                    })
                    .collect();
                let key = [keys::LEGACY_CHANGE_LOG, &revision.to_be_bytes()].concat();
                db.insert(key, legacy_entry(&catalog, revision, &changes))
                    .unwrap();
            }
            db.flush().unwrap();
        }

        #[tokio::test]
        async fn entries_of_the_default_tree_move_to_the_change_log_tree_the_newest_first() {
            // The state of 31 revisions, logged nowhere, and their entries the old way.
            let dir = tempfile::tempdir().unwrap();
            write(dir.path(), &config(0), commands(30)).await;
            put_legacy(dir.path(), 1..=31, 1);
            put_legacy(dir.path(), 12..=12, 200); // one entry of several lines
            let store = Store::open(
                dir.path(),
                Arc::new(Catalog::built_in()),
                &StoreConfig::default(),
            )
            .unwrap();
            let ws = WorkspaceId::parse("acme").unwrap();
            assert_eq!(
                store.snapshot().workspace(&ws).unwrap().members().count(),
                31
            );
            store.close();
            drop(store);
            let log = contents(dir.path());
            assert_eq!(log.legacy, 0);
            assert_eq!(log.count, Some(log.bytes));
            let revisions: Vec<u64> = log.lines.iter().map(|(r, _, _)| *r).collect();
            let mut expected: Vec<u64> = (1..=31).collect();
            let parts = revisions.iter().filter(|r| **r == 12).count();
            assert!(parts > 1);
            expected.splice(11..12, std::iter::repeat_n(12, parts));
            assert_eq!(revisions, expected);

            // With a budget for a few entries, only the newest are kept.
            let dir = tempfile::tempdir().unwrap();
            write(dir.path(), &config(0), commands(30)).await;
            put_legacy(dir.path(), 1..=31, 1);
            let budget = 1000;
            let log = reopened(dir.path(), &config(budget));
            assert_eq!(log.legacy, 0);
            assert!(
                log.bytes <= budget && log.bytes > budget / 2,
                "{}",
                log.bytes
            );
            let revisions: Vec<u64> = log.lines.iter().map(|(r, _, _)| *r).collect();
            let oldest = revisions[0];
            assert_eq!(revisions, (oldest..=31).collect::<Vec<_>>());
        }

        #[tokio::test]
        async fn an_interrupted_move_is_finished_at_the_next_open_without_counting_twice() {
            let dir = tempfile::tempdir().unwrap();
            write(dir.path(), &config(0), commands(30)).await;
            put_legacy(dir.path(), 1..=31, 3);
            // As if a move had copied the newest ten entries and stopped.
            {
                let db = open_db(dir.path(), &StoreConfig::default()).unwrap();
                let tree = db.open_tree(keys::CHANGE_LOG_TREE).unwrap();
                for revision in 22..=31_u64 {
                    let key = [keys::LEGACY_CHANGE_LOG, &revision.to_be_bytes()].concat();
                    let value = db.get(key).unwrap().unwrap();
                    let mut chunks = Chunks::default();
                    chunks.push(revision, split_legacy(&value).unwrap());
                    for (key, value) in chunks.finish() {
                        tree.insert(key, value).unwrap();
                    }
                }
                db.flush().unwrap();
            }
            let log = reopened(dir.path(), &StoreConfig::default());
            assert_eq!(log.legacy, 0);
            assert_eq!(log.count, Some(log.bytes));
            let revisions: Vec<u64> = log.lines.iter().map(|(r, _, _)| *r).collect();
            assert_eq!(revisions, (1..=31).collect::<Vec<_>>());
        }

        #[tokio::test]
        async fn values_of_revisions_the_state_never_reached_are_removed_at_open() {
            let dir = tempfile::tempdir().unwrap();
            let last = write(dir.path(), &StoreConfig::default(), commands(5)).await;
            // As if a crash had come between a group's log and its state.
            {
                let db = open_db(dir.path(), &StoreConfig::default()).unwrap();
                let tree = db.open_tree(keys::CHANGE_LOG_TREE).unwrap();
                let catalog = Catalog::built_in();
                let count = tree.get(COUNT).unwrap().unwrap();
                let mut count = u64::from_be_bytes(count.as_ref().try_into().unwrap());
                // A value each, so that the next write does not overwrite them all.
                for revision in last + 1..=last + 3 {
                    let mut chunks = Chunks::default();
                    chunks.push(revision, lines(&catalog, revision, 0, "orphan", &[]));
                    for (key, value) in chunks.finish() {
                        count += value.len() as u64;
                        tree.insert(key, value).unwrap();
                    }
                }
                tree.insert(COUNT, &count.to_be_bytes()).unwrap();
                db.flush().unwrap();
            }
            write(
                dir.path(),
                &StoreConfig::default(),
                commands(6).split_off(6),
            )
            .await;
            let log = contents(dir.path());
            assert_eq!(log.count, Some(log.bytes));
            let lines: Vec<(u64, &str)> =
                log.lines.iter().map(|(r, _, c)| (*r, c.as_str())).collect();
            let mut expected = vec![(1, "create_workspace")];
            expected.extend((2..=last + 1).map(|r| (r, "set_membership")));
            assert_eq!(lines, expected);
        }
    }
}
