//! The change log: what each revision changed and when, for replicas and auditors, and
//! the redo log of the state: at open, the server applies the entries the state lacks.
//! It lives in files of its own, beside sled's, in the
//! data directory's `change_log/`: appending to a file costs a write and an fsync, where
//! sled rewrote each value several times over (a bulk import wrote five times its log).
//! It is kept within a budget of bytes: the writer deletes the oldest files once it is
//! over, and logs nothing with a budget of 0.
//!
//! Entries are JSON lines, readable with any tool. An entry is one line, or several for
//! a write of many changes (a bulk-import batch of 20,000 records makes about 600 lines
//! of at most [`LINE_BYTES`] of changes):
//! `{"revision":R,"part":P,"parts":N,"unix_millis":T,"command":"grant","changes":[...]}`.
//! The last line of each write group (what one flush made durable) also has
//! `"end":true`. Lines are appended, in order, to segment files named by the first revision they hold
//! (`{revision:020}.jsonl`, so that names sort as revisions); a new one is started once
//! the current one holds an eighth of the budget, and whole files are deleted, oldest
//! first, to keep within it.
//!
//! The writer appends a group's lines and makes them durable (fdatasync) before it
//! applies the group's state to sled and flushes it. So a crash in between leaves lines
//! of revisions the state never reached, and perhaps a torn last line; and a database
//! that lost writes it had acknowledged (a torn sled blob, `store::blobs`) is behind the
//! log by more. [`ChangeLog::open`] reads back every whole write group past the state's
//! revision, which the store redoes (`writer::redo`) before it serves, and cuts off what
//! a crash leaves after them (a torn or garbled line, an unfinished group). The log
//! never lacks a revision the state has: what is redone is synced first. A whole group
//! it cannot redo (a name the catalog in force lacks), a gap between the state and the
//! log, or damage that whole groups follow stops the open, rather than serve without
//! writes that were made. With a budget of 0 there is nothing to redo from once the
//! log present at open is redone.
//!
//! Serialized straight from borrowed views (no intermediate JSON tree): a bulk import
//! logs every record.

use std::{
    collections::BTreeMap,
    fs::{self, File, OpenOptions},
    io::Write as _,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{StoreError, blobs::Blobs, keys};
use crate::model::{
    Catalog, Change, Grant, InstanceKey, Membership, ProductSet, ResourceId, Scope, UserId,
    WorkspaceId,
};

/// The most bytes of changes on one line (a single larger change has a line of its own).
pub const LINE_BYTES: usize = 6 * 1024 - 256;

/// The extension of segment files.
const SEGMENT_EXTENSION: &str = "jsonl";

/// A change as the log names it: written with `S = &str`, borrowed from the change and
/// the catalog's names, and read back at open with `S = String`.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum ScopeView<S> {
    All(S),
    Instance { r#type: S, id: S },
}

#[derive(Serialize, Deserialize)]
struct GrantView<S> {
    role: S,
    scope: ScopeView<S>,
}

#[derive(Serialize, Deserialize)]
struct ResourceView<S> {
    r#type: S,
    id: S,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum ChangeView<S> {
    CreateWorkspace {
        workspace: S,
        products: Vec<S>,
    },
    SetProducts {
        workspace: S,
        products: Vec<S>,
    },
    DeleteWorkspace {
        workspace: S,
    },
    SetMembership {
        workspace: S,
        user: S,
        membership: S,
    },
    RemoveMember {
        workspace: S,
        user: S,
    },
    AddGrant {
        workspace: S,
        user: S,
        grant: GrantView<S>,
    },
    RemoveGrant {
        workspace: S,
        user: S,
        grant: GrantView<S>,
    },
    RegisterResource {
        workspace: S,
        resource: ResourceView<S>,
        parent: Option<ResourceView<S>>,
    },
    DeleteResource {
        workspace: S,
        resource: ResourceView<S>,
    },
}

fn grant<'a>(catalog: &'a Catalog, grant: &'a Grant) -> GrantView<&'a str> {
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

fn resource<'a>(catalog: &'a Catalog, key: &'a InstanceKey) -> ResourceView<&'a str> {
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

fn view<'a>(catalog: &'a Catalog, change: &'a Change) -> ChangeView<&'a str> {
    let products =
        |set: ProductSet| -> Vec<&'a str> { set.iter().map(|p| catalog.product_name(p)).collect() };
    match change {
        Change::CreateWorkspace {
            workspace,
            products: set,
        } => ChangeView::CreateWorkspace {
            workspace: workspace.as_str(),
            products: products(*set),
        },
        Change::SetProducts {
            workspace,
            products: set,
        } => ChangeView::SetProducts {
            workspace: workspace.as_str(),
            products: products(*set),
        },
        Change::DeleteWorkspace { workspace } => ChangeView::DeleteWorkspace {
            workspace: workspace.as_str(),
        },
        Change::SetMembership {
            workspace,
            user,
            membership: m,
        } => ChangeView::SetMembership {
            workspace: workspace.as_str(),
            user: user.as_str(),
            membership: membership(*m),
        },
        Change::RemoveMember { workspace, user } => ChangeView::RemoveMember {
            workspace: workspace.as_str(),
            user: user.as_str(),
        },
        Change::AddGrant {
            workspace,
            user,
            grant: g,
        } => ChangeView::AddGrant {
            workspace: workspace.as_str(),
            user: user.as_str(),
            grant: grant(catalog, g),
        },
        Change::RemoveGrant {
            workspace,
            user,
            grant: g,
        } => ChangeView::RemoveGrant {
            workspace: workspace.as_str(),
            user: user.as_str(),
            grant: grant(catalog, g),
        },
        Change::RegisterResource {
            workspace,
            resource: r,
            parent,
        } => ChangeView::RegisterResource {
            workspace: workspace.as_str(),
            resource: resource(catalog, r),
            parent: parent.as_ref().map(|p| resource(catalog, p)),
        },
        Change::DeleteResource {
            workspace,
            resource: r,
        } => ChangeView::DeleteResource {
            workspace: workspace.as_str(),
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

/// A line of the log read back: the changes of one part of one revision's entry.
#[derive(Debug, PartialEq, Eq)]
pub struct ReadLine {
    pub revision: u64,
    pub part: u64,
    pub parts: u64,
    pub changes: Vec<Change>,
    /// Whether it is the last line of a write group's (`"end":true`).
    pub end: bool,
}

/// Why a line cannot be read back.
#[derive(Debug)]
pub enum ReadError {
    /// Not an entry of this log: torn or garbled, as a power loss leaves a line written
    /// but not synced.
    Malformed(String),
    /// An entry, but of names the catalog in force does not have.
    Unknown(String),
}

/// Marks the lines of one write group (`bytes`, whole lines) as ending there: the last
/// one gets `"end":true`. At open only whole groups are redone, so that the commands of
/// a request stay all or nothing.
pub fn mark_group_end(bytes: &mut Vec<u8>) {
    if bytes.ends_with(b"}\n") {
        bytes.truncate(bytes.len() - 2);
        bytes.extend_from_slice(GROUP_END);
    }
}

/// How the last line of a write group ends.
const GROUP_END: &[u8] = b",\"end\":true}\n";

#[derive(Deserialize)]
struct LineRecord {
    revision: u64,
    part: u64,
    parts: u64,
    changes: Vec<ChangeView<String>>,
    #[serde(default)]
    end: bool,
}

/// Reads a line of the log back into the changes it records, by `catalog`'s names.
pub fn read_line(catalog: &Catalog, line: &[u8]) -> Result<ReadLine, ReadError> {
    let malformed = |why: String| ReadError::Malformed(why);
    let unknown = |what: &str, name: &str| ReadError::Unknown(format!("unknown {what} `{name}`"));
    let record: LineRecord = serde_json::from_slice(line).map_err(|e| malformed(e.to_string()))?;
    let workspace =
        |id: String| WorkspaceId::parse(&id).map_err(|e| malformed(format!("workspace: {e}")));
    let user = |id: String| UserId::parse(&id).map_err(|e| malformed(format!("user: {e}")));
    let products = |names: Vec<String>| {
        names.iter().try_fold(ProductSet::default(), |set, name| {
            catalog
                .product_id(name)
                .map(|id| set.with(id))
                .ok_or_else(|| unknown("product", name))
        })
    };
    let resource = |r: ResourceView<String>| -> Result<InstanceKey, ReadError> {
        let ty = catalog
            .type_id(&r.r#type)
            .ok_or_else(|| unknown("resource type", &r.r#type))?;
        let id = ResourceId::parse(&r.id).map_err(|e| malformed(format!("resource id: {e}")))?;
        Ok((ty, id))
    };
    let grant = |g: GrantView<String>| -> Result<Grant, ReadError> {
        let role = catalog
            .role_id(&g.role)
            .ok_or_else(|| unknown("role", &g.role))?;
        let scope = match g.scope {
            ScopeView::All(all) if all == "all" => Scope::All,
            ScopeView::All(other) => return Err(unknown("scope", &other)),
            ScopeView::Instance { r#type, id } => {
                let (ty, id) = resource(ResourceView { r#type, id })?;
                Scope::Instance(ty, id)
            }
        };
        Ok(Grant { role, scope })
    };
    let changes = record
        .changes
        .into_iter()
        .map(|change| {
            Ok(match change {
                ChangeView::CreateWorkspace {
                    workspace: ws,
                    products: names,
                } => Change::CreateWorkspace {
                    workspace: workspace(ws)?,
                    products: products(names)?,
                },
                ChangeView::SetProducts {
                    workspace: ws,
                    products: names,
                } => Change::SetProducts {
                    workspace: workspace(ws)?,
                    products: products(names)?,
                },
                ChangeView::DeleteWorkspace { workspace: ws } => Change::DeleteWorkspace {
                    workspace: workspace(ws)?,
                },
                ChangeView::SetMembership {
                    workspace: ws,
                    user: u,
                    membership,
                } => Change::SetMembership {
                    workspace: workspace(ws)?,
                    user: user(u)?,
                    membership: match membership.as_str() {
                        "owner" => Membership::Owner,
                        "member" => Membership::Member,
                        other => return Err(unknown("membership", other)),
                    },
                },
                ChangeView::RemoveMember {
                    workspace: ws,
                    user: u,
                } => Change::RemoveMember {
                    workspace: workspace(ws)?,
                    user: user(u)?,
                },
                ChangeView::AddGrant {
                    workspace: ws,
                    user: u,
                    grant: g,
                } => Change::AddGrant {
                    workspace: workspace(ws)?,
                    user: user(u)?,
                    grant: grant(g)?,
                },
                ChangeView::RemoveGrant {
                    workspace: ws,
                    user: u,
                    grant: g,
                } => Change::RemoveGrant {
                    workspace: workspace(ws)?,
                    user: user(u)?,
                    grant: grant(g)?,
                },
                ChangeView::RegisterResource {
                    workspace: ws,
                    resource: r,
                    parent,
                } => Change::RegisterResource {
                    workspace: workspace(ws)?,
                    resource: resource(r)?,
                    parent: parent.map(resource).transpose()?,
                },
                ChangeView::DeleteResource {
                    workspace: ws,
                    resource: r,
                } => Change::DeleteResource {
                    workspace: workspace(ws)?,
                    resource: resource(r)?,
                },
            })
        })
        .collect::<Result<Vec<_>, ReadError>>()?;
    Ok(ReadLine {
        revision: record.revision,
        part: record.part,
        parts: record.parts,
        changes,
        end: record.end,
    })
}

/// The revision and part a line names, read from its start (`{"revision":R,"part":P,`);
/// part 0 if it names none.
fn line_position(line: &[u8]) -> Option<(u64, u64)> {
    let number = |rest: &[u8]| -> Option<(u64, usize)> {
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let value = std::str::from_utf8(rest.get(..digits)?)
            .ok()?
            .parse()
            .ok()?;
        Some((value, digits))
    };
    let rest = line.strip_prefix(br#"{"revision":"#)?;
    let (revision, digits) = number(rest)?;
    let part = rest
        .get(digits..)
        .and_then(|rest| rest.strip_prefix(br#","part":"#))
        .and_then(number)
        .map_or(0, |(part, _)| part);
    Some((revision, part))
}

/// One segment file: the first revision it holds (its name) and its size.
#[derive(Debug, Clone, Copy)]
struct Segment {
    first: u64,
    bytes: u64,
}

/// An entry of the log read in part, at open.
struct Partial {
    revision: u64,
    /// The part the next line must be.
    next: u64,
    changes: Vec<Change>,
}

/// Entries of the log the state lacks, by revision, in order: what to redo at open.
pub type Pending = Vec<(u64, Vec<Change>)>;

/// The change log's files and how much they hold; owned by the writer.
pub struct ChangeLog {
    dir: PathBuf,
    /// The most bytes kept; 0 logs nothing.
    budget: u64,
    /// Oldest first; the last one is appended to.
    segments: Vec<Segment>,
    /// The last segment, open for appending, once written to since open.
    current: Option<File>,
}

impl ChangeLog {
    /// Opens the change log in `dir` (created if missing) of a database whose state is at
    /// the revision sled holds, with a budget of `budget` bytes. First moves the entries
    /// that older data directories keep in sled (see [`ChangeLog::upgrade`]); then
    /// returns the whole write groups past the state's revision, for the caller to redo
    /// and then [`ChangeLog::settle`] (a crash between a group's log and its state
    /// leaves one; a database that lost writes it had acknowledged, more), having cut off
    /// what a crash leaves after them. With nothing to redo, it settles the log itself.
    pub fn open(
        db: &sled::Db,
        blobs: &mut Blobs,
        catalog: &Catalog,
        dir: &Path,
        budget: u64,
    ) -> Result<(Self, Pending), StoreError> {
        let revision = keys::read_u64(db, keys::REVISION, "revision")?;
        if !dir.is_dir() {
            fs::create_dir_all(dir)?;
            // The new directory's name must survive a crash, as its files' names do.
            if let Some(parent) = dir.parent() {
                File::open(parent)?.sync_all()?;
            }
        }
        let mut log = Self {
            dir: dir.to_owned(),
            budget,
            segments: Vec::new(),
            current: None,
        };
        log.upgrade(db, blobs, revision)?;
        log.segments = log.list()?;
        let pending = log.read_pending(catalog, revision)?;
        // Entries to redo stay until the state has them; the store settles the log then.
        if pending.is_empty() {
            log.settle();
        }
        Ok((log, pending))
    }

    /// Keeps the log within its budget, deleting all of it with a budget of 0: at open
    /// once nothing is left to redo, or once the store has redone it.
    pub fn settle(&mut self) {
        if self.budget > 0 {
            self.trim();
            return;
        }
        for segment in std::mem::take(&mut self.segments) {
            if let Err(err) = fs::remove_file(self.path(segment.first)) {
                warn!(%err, first = segment.first, "cannot delete a change log file");
            }
        }
    }

    /// The write groups past `revision` that the log holds whole, in order: what the
    /// state lacks, to be redone. A group is whole when its last line, which says it
    /// ends (`"end":true`), is there with every entry before it; the commands of a
    /// request stay all or nothing.
    ///
    /// What follows the whole groups is cut off when it is what a crash leaves: a torn or
    /// garbled line, an entry or a group left unfinished, lines out of sequence, none of
    /// it ever acknowledged. A group that cannot be redone (a name the catalog lacks), a
    /// gap between the state and the log, or damage followed by whole groups stops the
    /// open: serving without writes that were made would serve stale access. The files
    /// holding what is to be redone are synced first, so that the state never gets ahead
    /// of its log.
    fn read_pending(&mut self, catalog: &Catalog, revision: u64) -> Result<Pending, StoreError> {
        let mut pending = Vec::new();
        // The whole entries of the group being read, and where its first line starts.
        let mut group = Vec::new();
        let mut group_start = None;
        let mut partial: Option<Partial> = None;
        // Where the log is cut, and why; and whether a group's end line came after it.
        let mut cut: Option<((usize, usize), String)> = None;
        let mut ended_after_cut = false;
        // A line of no known shape among the state's lines: an older log kept it, unless
        // no line of the state's follows it, and then it is damage where the redo starts.
        let mut shapeless: Option<(usize, usize)> = None;
        let first = self
            .segments
            .iter()
            .rposition(|s| s.first <= revision)
            .unwrap_or(0);
        for (index, segment) in self.segments.iter().enumerate().skip(first) {
            let path = self.path(segment.first);
            let contents = fs::read(&path)?;
            let mut offset = 0;
            for line in contents.split_inclusive(|b| *b == b'\n') {
                let at = (index, offset);
                offset += line.len();
                let torn = line.last() != Some(&b'\n');
                if let Some((_, why)) = &cut {
                    // Only the last group can be unsynced, so damage is what a crash
                    // leaves only if nothing follows the end of the group it is in.
                    if ended_after_cut && !line.iter().all(u8::is_ascii_whitespace) {
                        return Err(StoreError::Corrupt(format!(
                            "the change log is damaged past the state's revision {revision} \
                             ({why}) and whole write groups follow: `{}`",
                            path.display()
                        )));
                    }
                    ended_after_cut |= line.ends_with(GROUP_END);
                    continue;
                }
                let position = line_position(line);
                let started = !pending.is_empty() || group_start.is_some();
                if !started && !torn {
                    match position {
                        Some((r, _)) if r <= revision => {
                            shapeless = None;
                            continue;
                        }
                        None => {
                            shapeless.get_or_insert(at);
                            continue;
                        }
                        Some(_) => {}
                    }
                }
                if let Some(at) = shapeless.take() {
                    cut = Some((at, "a garbled line".into()));
                    ended_after_cut = line.ends_with(GROUP_END);
                    continue;
                }
                let passed = position.is_none_or(|(r, _)| r <= revision);
                let cut_here = |why: String| Some((group_start.unwrap_or(at), why));
                if torn || passed {
                    cut = cut_here(format!(
                        "a {} line",
                        if torn { "torn" } else { "misplaced" }
                    ));
                    ended_after_cut = line.ends_with(GROUP_END);
                    continue;
                }
                let read = match read_line(catalog, line) {
                    Ok(read) => read,
                    Err(ReadError::Malformed(why)) => {
                        cut = cut_here(format!("a garbled line: {why}"));
                        ended_after_cut = line.ends_with(GROUP_END);
                        continue;
                    }
                    Err(ReadError::Unknown(why)) => {
                        // Only a whole group must be redone; an unfinished one is cut.
                        let why = format!(
                            "the entry of revision {} cannot be redone: {why}; start with \
                             the role catalog it was written with",
                            position.map_or(0, |(r, _)| r),
                        );
                        if line.ends_with(GROUP_END) {
                            return Err(StoreError::Corrupt(format!(
                                "the change log holds a write group past the state's \
                                 revision {revision} that {why} (`{}`)",
                                path.display()
                            )));
                        }
                        cut = cut_here(why);
                        ended_after_cut = line.ends_with(GROUP_END);
                        continue;
                    }
                };
                let expected = revision + 1 + (pending.len() + group.len()) as u64;
                if !started && read.revision > expected {
                    return Err(StoreError::Corrupt(format!(
                        "the state is at revision {revision} but the change log resumes at \
                         {}: revisions in between are in neither",
                        read.revision
                    )));
                }
                match &mut partial {
                    None if read.revision == expected && read.part == 0 => {
                        partial = Some(Partial {
                            revision: read.revision,
                            next: 1,
                            changes: read.changes,
                        });
                    }
                    Some(p) if read.revision == p.revision && read.part == p.next => {
                        p.next += 1;
                        p.changes.extend(read.changes);
                    }
                    _ => {
                        cut = cut_here(format!("revision {} out of sequence", read.revision));
                        ended_after_cut = line.ends_with(GROUP_END);
                        continue;
                    }
                }
                group_start.get_or_insert(at);
                if let Some(p) = partial.take_if(|p| p.next >= read.parts) {
                    group.push((p.revision, p.changes));
                    if read.end {
                        pending.append(&mut group);
                        group_start = None;
                    }
                }
            }
        }
        if cut.is_none() {
            if let Some(start) = group_start {
                cut = Some((start, "a write group left unfinished".into()));
            } else if let Some(at) = shapeless {
                cut = Some((at, "a garbled last line".into()));
            }
        }
        if let Some(((index, offset), why)) = cut {
            // A file cut to nothing goes whole: its name says it starts with a revision
            // it no longer holds.
            let keep = if offset == 0 { index } else { index + 1 };
            let removed = self.segments.split_off(keep);
            for segment in &removed {
                fs::remove_file(self.path(segment.first))?;
            }
            warn!(
                files = removed.len(),
                revision = revision + pending.len() as u64,
                why,
                "change log lines past its whole write groups cut off"
            );
            if let Some(segment) = self.segments.last_mut().filter(|_| offset > 0) {
                let path = self.dir.join(segment_name(segment.first));
                let file = OpenOptions::new().write(true).open(&path)?;
                file.set_len(offset as u64)?;
                file.sync_all()?;
                segment.bytes = offset as u64;
            }
            File::open(&self.dir)?.sync_all()?;
        }
        if let Some((last, _)) = pending.last() {
            // A kill may have left these lines written but not synced: they must be on
            // disk before the state that redoes them is.
            for segment in self.segments.iter().skip(first) {
                File::open(self.path(segment.first))?.sync_all()?;
            }
            File::open(&self.dir)?.sync_all()?;
            info!(
                from = revision + 1,
                to = last,
                "change log entries the state lacks, to be redone"
            );
        }
        Ok(pending)
    }

    /// The segment files in the directory, oldest first.
    fn list(&self) -> Result<Vec<Segment>, StoreError> {
        let mut segments = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let first = name
                .to_str()
                .and_then(|name| name.strip_suffix(SEGMENT_EXTENSION))
                .and_then(|stem| stem.strip_suffix('.'))
                .and_then(|stem| stem.parse::<u64>().ok());
            if let Some(first) = first {
                let bytes = entry.metadata()?.len();
                segments.push(Segment { first, bytes });
            }
        }
        segments.sort_by_key(|segment| segment.first);
        Ok(segments)
    }

    fn path(&self, first: u64) -> PathBuf {
        self.dir.join(segment_name(first))
    }

    /// The size at which a segment is closed and the next one started: an eighth of the
    /// budget, so that deleting the oldest file keeps the log between seven eighths of
    /// the budget and all of it.
    fn segment_bytes(&self) -> u64 {
        (self.budget / 8).max(1)
    }

    /// Moves the change log that older data directories keep in sled into a segment
    /// file: the `change_log` tree (JSON lines packed into values) and, older still,
    /// whole entries in the default tree under `l {u64 BE revision}`. Every line of a
    /// revision the state reached is kept, once, the newest that fit the budget; then
    /// the sled copies are removed. The file is written whole under a temporary name
    /// and renamed, and named by its first revision: an upgrade interrupted before the
    /// removal writes the same file again at the next open.
    fn upgrade(&self, db: &sled::Db, blobs: &mut Blobs, revision: u64) -> Result<(), StoreError> {
        let has_tree = db
            .tree_names()
            .iter()
            .any(|name| name.as_ref() == keys::CHANGE_LOG_TREE);
        let has_legacy = db.scan_prefix(keys::LEGACY_CHANGE_LOG).next().is_some();
        if !has_tree && !has_legacy {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let mut lines: BTreeMap<(u64, u64), Vec<u8>> = BTreeMap::new();
        for item in db.scan_prefix(keys::LEGACY_CHANGE_LOG) {
            let (key, value) = item?;
            let Some(entry_revision) = keys::legacy_change_log_revision(&key) else {
                continue;
            };
            // Whole, as it was, if it is not of the shape this crate wrote.
            let entry = split_legacy(&value).unwrap_or_else(|| {
                let mut line = value.to_vec();
                line.push(b'\n');
                vec![line]
            });
            for (part, line) in (0..).zip(entry) {
                lines.insert((entry_revision, part), line);
            }
        }
        if has_tree {
            let tree = db.open_tree(keys::CHANGE_LOG_TREE)?;
            for item in tree.iter() {
                let (key, value) = item?;
                if key.is_empty() {
                    continue; // its count of bytes
                }
                for line in value.split_inclusive(|b| *b == b'\n') {
                    if let Some(position) = line_position(line) {
                        lines.insert(position, line.to_vec());
                    }
                }
            }
        }
        // Files here can only be what an upgrade interrupted between removing the legacy
        // entries and dropping the tree wrote: what they hold is merged in, and they are
        // written again whole.
        for segment in self.list()? {
            let contents = fs::read(self.path(segment.first))?;
            for line in contents.split_inclusive(|b| *b == b'\n') {
                if let Some(position) = line_position(line).filter(|_| line.ends_with(b"\n")) {
                    lines.entry(position).or_insert_with(|| line.to_vec());
                }
            }
        }
        // The newest whole entries that fit the budget.
        let mut entries: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
        for ((line_revision, _), line) in lines {
            if line_revision <= revision {
                entries.entry(line_revision).or_default().push(line);
            }
        }
        let mut kept = Vec::new();
        let mut bytes = 0;
        for (entry_revision, entry) in entries.into_iter().rev() {
            let size = entry.iter().map(|line| line.len() as u64).sum::<u64>();
            if bytes + size > self.budget {
                break;
            }
            bytes += size;
            kept.extend(entry.into_iter().rev().map(|line| (entry_revision, line)));
        }
        kept.reverse();
        for entry in fs::read_dir(&self.dir)? {
            fs::remove_file(entry?.path())?;
        }
        if let Some((first, _)) = kept.first() {
            let temporary = self.dir.join("upgrade.tmp");
            let mut file = File::create(&temporary)?;
            for (_, line) in &kept {
                file.write_all(line)?;
            }
            file.sync_all()?;
            fs::rename(&temporary, self.path(*first))?;
            File::open(&self.dir)?.sync_all()?;
        }
        let mut removals = sled::Batch::default();
        for key in db.scan_prefix(keys::LEGACY_CHANGE_LOG).keys() {
            removals.remove(key?);
        }
        db.apply_batch(removals)?;
        if has_tree {
            db.drop_tree(keys::CHANGE_LOG_TREE)?;
        }
        blobs.flush(db)?;
        info!(
            lines = kept.len(),
            bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "change log moved out of the database into files"
        );
        Ok(())
    }

    /// Whether writes are logged (a budget of 0 logs nothing).
    pub fn enabled(&self) -> bool {
        self.budget > 0
    }

    /// Appends `lines`, the lines of a group's entries, the first of revision `first`,
    /// to the current segment (starting a new one if it is full) and makes them durable.
    pub fn write(&mut self, first: u64, lines: &[u8]) -> Result<(), StoreError> {
        if lines.is_empty() || !self.enabled() {
            return Ok(());
        }
        let full = self
            .segments
            .last()
            .is_none_or(|last| last.bytes >= self.segment_bytes());
        if full {
            self.segments.push(Segment { first, bytes: 0 });
            self.current = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.path(first))?,
            );
            // The new file's name must survive a crash as well as its contents.
            File::open(&self.dir)?.sync_all()?;
        }
        let file = match &mut self.current {
            Some(file) => file,
            None => {
                let last = self.segments.last().map_or(first, |last| last.first);
                let path = self.path(last);
                self.current
                    .insert(OpenOptions::new().append(true).open(path)?)
            }
        };
        file.write_all(lines)?;
        file.sync_data()?;
        if let Some(last) = self.segments.last_mut() {
            last.bytes += lines.len() as u64;
        }
        Ok(())
    }

    /// Deletes the oldest segments while the log holds more than its budget; never the
    /// one being appended to. A file that cannot be deleted is left, and reported.
    pub fn trim(&mut self) {
        let mut held: u64 = self.segments.iter().map(|s| s.bytes).sum();
        while held > self.budget && self.segments.len() > 1 {
            let oldest = self.segments.remove(0);
            held -= oldest.bytes;
            if let Err(err) = fs::remove_file(self.path(oldest.first)) {
                warn!(%err, first = oldest.first, "cannot delete a change log file");
            }
        }
    }
}

/// The name of the segment file whose first revision is `first`.
fn segment_name(first: u64) -> String {
    format!("{first:020}.{SEGMENT_EXTENSION}")
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

    /// Every kind of change, in an entry long enough to take several lines, reads back
    /// as it was written: what the redo at open relies on.
    #[test]
    fn every_change_reads_back_as_written() {
        let catalog = Catalog::built_in();
        let ws = WorkspaceId::parse("acme").unwrap();
        let sam = UserId::parse("sam").unwrap();
        let source = catalog.type_id("source").unwrap();
        let destination = catalog.type_id("destination").unwrap();
        let ios = (source, ResourceId::parse("ios").unwrap());
        let products = ProductSet::default().with(catalog.product_id("personas").unwrap());
        let mut changes = vec![
            Change::CreateWorkspace {
                workspace: ws.clone(),
                products,
            },
            Change::SetProducts {
                workspace: ws.clone(),
                products: ProductSet::default(),
            },
            Change::SetMembership {
                workspace: ws.clone(),
                user: sam.clone(),
                membership: Membership::Owner,
            },
            Change::SetMembership {
                workspace: ws.clone(),
                user: sam.clone(),
                membership: Membership::Member,
            },
            Change::RegisterResource {
                workspace: ws.clone(),
                resource: ios.clone(),
                parent: None,
            },
            Change::RegisterResource {
                workspace: ws.clone(),
                resource: (destination, ResourceId::parse("amp").unwrap()),
                parent: Some(ios.clone()),
            },
            Change::AddGrant {
                workspace: ws.clone(),
                user: sam.clone(),
                grant: Grant {
                    role: catalog.role_id("source_admin").unwrap(),
                    scope: Scope::Instance(ios.0, ios.1.clone()),
                },
            },
            Change::RemoveGrant {
                workspace: ws.clone(),
                user: sam.clone(),
                grant: Grant {
                    role: catalog.role_id("warehouse_read").unwrap(),
                    scope: Scope::All,
                },
            },
            Change::DeleteResource {
                workspace: ws.clone(),
                resource: ios,
            },
            Change::RemoveMember {
                workspace: ws.clone(),
                user: sam,
            },
            Change::DeleteWorkspace { workspace: ws },
        ];
        changes.extend(grants(&catalog, 300));
        let lines = lines(&catalog, 7, 1000, "batch", &changes);
        assert!(lines.len() > 2, "{} lines", lines.len());
        let mut read = Vec::new();
        for (part, line) in lines.iter().enumerate() {
            let line = read_line(&catalog, line).unwrap();
            assert_eq!((line.revision, line.part), (7, part as u64));
            assert_eq!(line.parts, lines.len() as u64);
            read.extend(line.changes);
        }
        assert_eq!(read, changes);
    }

    /// A name the catalog does not have, or a line that is not an entry, is an error
    /// that says what is wrong, not a change guessed at.
    #[test]
    fn a_line_that_cannot_be_read_back_says_why() {
        let catalog = Catalog::built_in();
        let line = br#"{"revision":3,"part":0,"parts":1,"changes":[{"op":"add_grant","workspace":"a","user":"u","grant":{"role":"auditor","scope":"all"}}]}"#;
        let err = read_line(&catalog, line).unwrap_err();
        assert!(
            matches!(&err, ReadError::Unknown(why) if why.contains("unknown role `auditor`")),
            "{err:?}"
        );
        let err = read_line(&catalog, b"{\"revision\":3,\"pa\0\0\0}\n").unwrap_err();
        assert!(matches!(err, ReadError::Malformed(_)), "{err:?}");
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
            assert!(
                line.len() <= LINE_BYTES + 256,
                "line {i}: {} bytes",
                line.len()
            );
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
    fn a_line_names_its_revision_and_part_at_its_start() {
        let catalog = Catalog::built_in();
        let lines = lines(&catalog, 77, 1000, "grant", &grants(&catalog, 1000));
        for (part, line) in lines.iter().enumerate() {
            assert_eq!(line_position(line), Some((77, part as u64)));
        }
        assert_eq!(
            line_position(br#"{"revision":5,"unix_millis":1}"#),
            Some((5, 0))
        );
        assert_eq!(line_position(br#"{"revision":x}"#), None);
        assert_eq!(line_position(b"torn"), None);
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

    /// The store's behaviour on disk, read back from the files alone.
    mod on_disk {
        use std::{path::Path, sync::Arc};

        use super::*;
        use crate::{
            engine::Command,
            model::{Membership, ProductSet},
            store::{CHANGE_LOG_DIR, Store, StoreConfig, open_db},
        };

        /// What the change log holds: its files (name, bytes), every line as (revision,
        /// part, command), and what is left of it in sled.
        struct Contents {
            files: Vec<(String, u64)>,
            bytes: u64,
            lines: Vec<(u64, u64, String)>,
            in_sled: usize,
        }

        fn contents(dir: &Path) -> Contents {
            let mut contents = Contents {
                files: Vec::new(),
                bytes: 0,
                lines: Vec::new(),
                in_sled: 0,
            };
            let mut names: Vec<String> = fs::read_dir(dir.join(CHANGE_LOG_DIR))
                .unwrap()
                .map(|entry| entry.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            for name in names {
                let data = fs::read(dir.join(CHANGE_LOG_DIR).join(&name)).unwrap();
                contents.bytes += data.len() as u64;
                for (i, line) in data.split_inclusive(|b| *b == b'\n').enumerate() {
                    assert_eq!(line.last(), Some(&b'\n'));
                    let entry: serde_json::Value = serde_json::from_slice(line).unwrap();
                    let (revision, part) = (
                        entry["revision"].as_u64().unwrap(),
                        entry["part"].as_u64().unwrap_or(0),
                    );
                    if i == 0 {
                        assert_eq!(name, segment_name(revision), "named by its first line");
                    }
                    let command = entry["command"].as_str().unwrap().to_owned();
                    contents.lines.push((revision, part, command));
                }
                contents.files.push((name, data.len() as u64));
            }
            let db = open_db(dir, &StoreConfig::default()).unwrap();
            contents.in_sled = db.scan_prefix(keys::LEGACY_CHANGE_LOG).count()
                + usize::from(
                    db.tree_names()
                        .iter()
                        .any(|name| name.as_ref() == keys::CHANGE_LOG_TREE),
                );
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

        fn revisions(log: &Contents) -> Vec<u64> {
            log.lines.iter().map(|(r, _, _)| *r).collect()
        }

        #[tokio::test]
        async fn the_writer_keeps_the_newest_entries_within_the_budget_and_drops_the_oldest() {
            let dir = tempfile::tempdir().unwrap();
            let budget = 64 << 10;
            let last = write(dir.path(), &config(budget), commands(2000)).await;
            assert_eq!(last, 2001);
            let log = contents(dir.path());
            assert!(log.bytes <= budget, "{} bytes", log.bytes);
            assert!(log.bytes > budget / 2, "{} bytes", log.bytes);
            assert!(log.files.len() > 1, "{:?}", log.files);
            let kept = revisions(&log);
            let oldest = kept[0];
            assert!(oldest > 1000, "oldest kept: {oldest}");
            assert_eq!(kept, (oldest..=last).collect::<Vec<_>>());
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
            assert!(log.files.is_empty());
        }

        /// Entries in the default tree, as data directories of before the change log's
        /// tree have them, for revisions `revisions`, each of `changes` memberships.
        fn put_legacy(dir: &Path, revisions: std::ops::RangeInclusive<u64>, changes: usize) {
            let catalog = Catalog::built_in();
            let db = open_db(dir, &StoreConfig::default()).unwrap();
            for revision in revisions {
                let key = [keys::LEGACY_CHANGE_LOG, &revision.to_be_bytes()].concat();
                db.insert(
                    key,
                    legacy_entry(&catalog, revision, &memberships(revision, changes)),
                )
                .unwrap();
            }
            db.flush().unwrap();
        }

        fn memberships(revision: u64, count: usize) -> Vec<Change> {
            (0..count)
                .map(|i| Change::SetMembership {
                    workspace: WorkspaceId::parse("acme").unwrap(),
                    user: UserId::parse(&format!("user-{revision}-{i}")).unwrap(),
                    membership: Membership::Member,
                })
                .collect()
        }

        /// Entries in the `change_log` tree, as the release before the change log's
        /// files wrote them: the lines of each revision in a value keyed by revision
        /// and part, and the empty key holding their bytes.
        fn put_in_tree(dir: &Path, revisions: std::ops::RangeInclusive<u64>, command: &str) {
            let catalog = Catalog::built_in();
            let db = open_db(dir, &StoreConfig::default()).unwrap();
            let tree = db.open_tree(keys::CHANGE_LOG_TREE).unwrap();
            for revision in revisions {
                let lines = lines(&catalog, revision, 0, command, &memberships(revision, 3));
                let key = [revision.to_be_bytes().as_slice(), &0_u32.to_be_bytes()].concat();
                tree.insert(key, lines.concat()).unwrap();
            }
            tree.insert(b"", &0_u64.to_be_bytes()).unwrap();
            db.flush().unwrap();
        }

        #[tokio::test]
        async fn entries_kept_in_sled_move_to_a_file_the_newest_first() {
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
            assert_eq!(log.in_sled, 0);
            assert_eq!(log.files.len(), 1);
            let moved = revisions(&log);
            let mut expected: Vec<u64> = (1..=31).collect();
            let parts = moved.iter().filter(|r| **r == 12).count();
            assert!(parts > 1);
            expected.splice(11..12, std::iter::repeat_n(12, parts));
            assert_eq!(moved, expected);

            // With a budget for a few entries, only the newest are kept.
            let dir = tempfile::tempdir().unwrap();
            write(dir.path(), &config(0), commands(30)).await;
            put_legacy(dir.path(), 1..=31, 1);
            let budget = 1000;
            let log = reopened(dir.path(), &config(budget));
            assert_eq!(log.in_sled, 0);
            assert!(
                log.bytes <= budget && log.bytes > budget / 2,
                "{}",
                log.bytes
            );
            let kept = revisions(&log);
            assert_eq!(kept, (kept[0]..=31).collect::<Vec<_>>());

            // The change log tree of the previous release, and then new writes.
            let dir = tempfile::tempdir().unwrap();
            write(dir.path(), &config(0), commands(30)).await;
            put_in_tree(dir.path(), 1..=31, "set_membership");
            let last = write(
                dir.path(),
                &StoreConfig::default(),
                commands(35).split_off(31),
            )
            .await;
            let log = contents(dir.path());
            assert_eq!(log.in_sled, 0);
            assert_eq!(revisions(&log), (1..=last).collect::<Vec<_>>());
        }

        #[tokio::test]
        async fn an_interrupted_move_is_finished_at_the_next_open_without_an_entry_twice() {
            let dir = tempfile::tempdir().unwrap();
            write(dir.path(), &config(0), commands(30)).await;
            put_legacy(dir.path(), 1..=31, 3);
            // As if a move of the release before had copied the newest ten entries into
            // the tree and stopped; and as if this one had then written the file and
            // stopped before removing what it moved.
            put_in_tree(dir.path(), 22..=31, "batch");
            let first = reopened(dir.path(), &StoreConfig::default());
            put_legacy(dir.path(), 1..=31, 3);
            put_in_tree(dir.path(), 22..=31, "batch");
            let log = reopened(dir.path(), &StoreConfig::default());
            assert_eq!(log.in_sled, 0);
            assert_eq!(log.files, first.files);
            assert_eq!(revisions(&log), (1..=31).collect::<Vec<_>>());

            // As if it had stopped after removing the legacy entries but before dropping
            // the tree: the file still holds them, and is written again with them.
            put_in_tree(dir.path(), 22..=31, "batch");
            let log = reopened(dir.path(), &StoreConfig::default());
            assert_eq!(log.in_sled, 0);
            assert_eq!(log.files, first.files);
            assert_eq!(revisions(&log), (1..=31).collect::<Vec<_>>());
        }

        /// Entries past the state that cannot be redone (a name the catalog lacks), or a
        /// log that resumes after a gap, stop the open with the reason: serving without
        /// writes the log says were made would be serving stale access.
        #[tokio::test]
        async fn entries_past_the_state_that_cannot_be_redone_stop_the_open() {
            let catalog = Arc::new(Catalog::built_in());
            for (entry, reason) in [
                (
                    r#"{"op":"add_grant","workspace":"acme","user":"u","grant":{"role":"auditor","scope":"all"}}"#,
                    "unknown role `auditor`",
                ),
                ("", "resumes at"),
            ] {
                let dir = tempfile::tempdir().unwrap();
                let last = write(dir.path(), &config(4 << 10), commands(3)).await;
                let revision = if entry.is_empty() { last + 2 } else { last + 1 };
                let line = format!(
                    "{{\"revision\":{revision},\"part\":0,\"parts\":1,\"unix_millis\":0,\"command\":\"x\",\"changes\":[{entry}],\"end\":true}}\n"
                );
                let log = contents(dir.path());
                let (newest, _) = log.files.last().unwrap();
                let mut file = OpenOptions::new()
                    .append(true)
                    .open(dir.path().join(CHANGE_LOG_DIR).join(newest))
                    .unwrap();
                file.write_all(line.as_bytes()).unwrap();
                match Store::open(dir.path(), Arc::clone(&catalog), &config(4 << 10)) {
                    Err(StoreError::Corrupt(message)) => {
                        assert!(message.contains(reason), "{message}");
                    }
                    Err(other) => panic!("{other}"),
                    Ok(_) => panic!("opened"),
                }
            }
        }

        /// Opened with a budget of 0 after a crash, the log is still redone before it goes.
        #[tokio::test]
        async fn a_budget_of_zero_redoes_the_log_before_dropping_it() {
            let dir = tempfile::tempdir().unwrap();
            let last = write(dir.path(), &config(4 << 10), commands(3)).await;
            let mut group = lines(&Catalog::built_in(), last + 1, 0, "orphan", &[]).concat();
            mark_group_end(&mut group);
            let log = contents(dir.path());
            let (newest, _) = log.files.last().unwrap();
            let mut file = OpenOptions::new()
                .append(true)
                .open(dir.path().join(CHANGE_LOG_DIR).join(newest))
                .unwrap();
            file.write_all(&group).unwrap();
            let store = Store::open(dir.path(), Arc::new(Catalog::built_in()), &config(0)).unwrap();
            assert_eq!(store.snapshot().revision, last + 1);
            store.close();
            assert!(contents(dir.path()).files.is_empty());
        }

        /// A role the catalog lacks in a group left unfinished (never acknowledged) is
        /// cut off like any unfinished group: it does not stop the open.
        #[tokio::test]
        async fn an_unknown_name_in_an_unfinished_group_is_cut() {
            let dir = tempfile::tempdir().unwrap();
            let last = write(dir.path(), &config(4 << 10), commands(3)).await;
            let line = format!(
                "{{\"revision\":{},\"part\":0,\"parts\":1,\"unix_millis\":0,\"command\":\"x\",\"changes\":[{{\"op\":\"add_grant\",\"workspace\":\"acme\",\"user\":\"u\",\"grant\":{{\"role\":\"auditor\",\"scope\":\"all\"}}}}]}}\n",
                last + 1
            );
            let log = contents(dir.path());
            let (newest, _) = log.files.last().unwrap();
            let mut file = OpenOptions::new()
                .append(true)
                .open(dir.path().join(CHANGE_LOG_DIR).join(newest))
                .unwrap();
            file.write_all(line.as_bytes()).unwrap();
            let store =
                Store::open(dir.path(), Arc::new(Catalog::built_in()), &config(4 << 10)).unwrap();
            assert_eq!(store.snapshot().revision, last);
            store.close();
            assert_eq!(
                revisions(&contents(dir.path())),
                (1..=last).collect::<Vec<_>>()
            );
        }

        #[tokio::test]
        async fn entries_past_the_state_are_redone_at_open_and_what_cannot_follow_is_cut() {
            let dir = tempfile::tempdir().unwrap();
            let budget = 4 << 10;
            let last = write(dir.path(), &config(budget), commands(5)).await;
            // As if a crash had come between a group's log and its state: a whole group
            // of three entries in the last file; then, in a file of its own, a group left
            // unfinished (an entry, but not the line that ends the group) and a torn
            // line; and another file after them.
            let catalog = Catalog::built_in();
            let mut whole = Vec::new();
            for revision in last + 1..=last + 3 {
                whole.extend(lines(&catalog, revision, 0, "orphan", &[]).concat());
            }
            mark_group_end(&mut whole);
            let unfinished = lines(&catalog, last + 4, 0, "unfinished", &[]).concat();
            let log = contents(dir.path());
            let (newest, _) = log.files.last().unwrap();
            let path = dir.path().join(CHANGE_LOG_DIR);
            let mut file = OpenOptions::new()
                .append(true)
                .open(path.join(newest))
                .unwrap();
            file.write_all(&whole).unwrap();
            let mut own = unfinished;
            own.extend_from_slice(br#"{"revision":99,"part"#);
            fs::write(path.join(segment_name(last + 4)), own).unwrap();
            let later = lines(&catalog, last + 5, 0, "later", &[]).concat();
            fs::write(path.join(segment_name(last + 5)), later).unwrap();

            // The whole group is redone (the state reaches its revisions); what follows
            // it is cut, and the next write follows on.
            let after = write(dir.path(), &config(budget), commands(6).split_off(6)).await;
            assert_eq!(after, last + 4);
            let log = contents(dir.path());
            let lines: Vec<(u64, &str)> =
                log.lines.iter().map(|(r, _, c)| (*r, c.as_str())).collect();
            let mut expected = vec![(1, "create_workspace")];
            expected.extend((2..=last).map(|r| (r, "set_membership")));
            expected.extend((last + 1..=last + 3).map(|r| (r, "orphan")));
            expected.push((last + 4, "set_membership"));
            assert_eq!(lines, expected);
            assert!(!path.join(segment_name(last + 5)).exists());
        }

        /// Damage past the state that whole groups follow is not what a crash leaves:
        /// cutting there would drop acknowledged writes, so the open stops. Damage in the
        /// last group, even in its first line, is what a power loss leaves, and is cut.
        #[tokio::test]
        async fn damage_followed_by_whole_groups_stops_the_open() {
            let dir = tempfile::tempdir().unwrap();
            let budget = 4 << 10;
            let last = write(dir.path(), &config(budget), commands(3)).await;
            let catalog = Catalog::built_in();
            let mut tail = lines(&catalog, last + 1, 0, "first", &[]).concat();
            mark_group_end(&mut tail);
            tail.extend_from_slice(b"{\"revision\":\0\0\0\n");
            // The damage could be the start of the group after it, the last one, which a
            // power loss may leave half written; a group after that one was synced.
            for (revision, name) in [(last + 2, "second"), (last + 3, "third")] {
                let mut group = lines(&catalog, revision, 0, name, &[]).concat();
                mark_group_end(&mut group);
                tail.extend(group);
            }
            let log = contents(dir.path());
            let (newest, _) = log.files.last().unwrap();
            let mut file = OpenOptions::new()
                .append(true)
                .open(dir.path().join(CHANGE_LOG_DIR).join(newest))
                .unwrap();
            file.write_all(&tail).unwrap();
            match Store::open(dir.path(), Arc::new(catalog.clone()), &config(budget)) {
                Err(StoreError::Corrupt(message)) => {
                    assert!(message.contains("whole write groups follow"), "{message}");
                }
                Err(other) => panic!("{other}"),
                Ok(_) => panic!("opened"),
            }

            // A page never written reads back as zeros, without a newline: the last
            // group's first line runs into its second, then its end.
            let dir = tempfile::tempdir().unwrap();
            let last = write(dir.path(), &config(budget), commands(3)).await;
            let mut group = Vec::new();
            for revision in last + 1..=last + 2 {
                group.extend(lines(&catalog, revision, 0, "lost", &[]).concat());
            }
            mark_group_end(&mut group);
            let hole = group.iter().position(|b| *b == b'\n').unwrap() + 1;
            group[..hole].fill(0);
            let log = contents(dir.path());
            let (newest, _) = log.files.last().unwrap();
            let mut file = OpenOptions::new()
                .append(true)
                .open(dir.path().join(CHANGE_LOG_DIR).join(newest))
                .unwrap();
            file.write_all(&group).unwrap();
            let store = Store::open(dir.path(), Arc::new(catalog), &config(budget)).unwrap();
            assert_eq!(store.snapshot().revision, last);
            store.close();
            assert_eq!(
                revisions(&contents(dir.path())),
                (1..=last).collect::<Vec<_>>()
            );
        }
    }
}
