//! The change log's line format: a write's entry as JSON lines, and a line read back
//! into the changes it records. An entry follows the revision before it, or the one its
//! `"after"` names (a partial follower logs only its workspaces' revisions). Lines name everything by name (roles, types,
//! products), so they read the same under a reordered catalog, and are serialized
//! straight from borrowed views of the changes (a bulk import logs every record).

use std::io::Write as _;

use serde::{Deserialize, Serialize};

use crate::model::{
    Catalog, Change, Grant, InstanceKey, Membership, ProductSet, ResourceId, Scope, UserId,
    WorkspaceId,
};

/// The most bytes of changes on one line (a single larger change has a line of its own).
pub const LINE_BYTES: usize = 6 * 1024 - 256;

/// How the last line of a write group ends.
pub const GROUP_END: &[u8] = b",\"end\":true}\n";

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

/// Who made a change: the caller that sent it (with a callers file), and the user it
/// named as acting (`actor_user_id`), each when there is one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Author<'a> {
    /// The caller's name.
    pub caller: Option<&'a str>,
    /// The acting user.
    pub actor: Option<&'a str>,
}

/// The change log lines of one write group: formatted by the planner, appended and
/// made durable by the committer ([`super::ChangeLog::append`]).
#[derive(Debug, Default)]
pub struct GroupLines {
    /// The revision of the first entry.
    first: u64,
    /// When its newest entry was made, in milliseconds since the Unix epoch.
    newest_unix_millis: u64,
    /// Whole lines, each ending with a newline.
    bytes: Vec<u8>,
}

impl GroupLines {
    /// Appends the entry of a revision that follows the one before it, made by no one
    /// in particular.
    #[cfg(test)]
    pub fn push(
        &mut self,
        catalog: &Catalog,
        revision: u64,
        unix_millis: u128,
        command: &str,
        changes: &[Change],
    ) {
        let after = revision.saturating_sub(1);
        self.push_after(
            catalog,
            after,
            revision,
            unix_millis,
            command,
            Author::default(),
            changes,
        );
    }

    /// Appends the entry of one write: lines that are each a JSON object with the
    /// revision, the line's part number and their count, the revision it follows when
    /// that is not `revision - 1` (a partial follower logs only its workspaces'
    /// revisions), the time, the command, its author, and at most [`LINE_BYTES`] of its
    /// changes.
    #[expect(
        clippy::too_many_arguments,
        reason = "the fields of one entry, each written as it is"
    )]
    pub fn push_after(
        &mut self,
        catalog: &Catalog,
        after: u64,
        revision: u64,
        unix_millis: u128,
        command: &str,
        author: Author<'_>,
        changes: &[Change],
    ) {
        if self.bytes.is_empty() {
            self.first = revision;
        }
        // A follower logs its leader's times, which need not rise with the revisions.
        self.newest_unix_millis = self
            .newest_unix_millis
            .max(u64::try_from(unix_millis).unwrap_or(u64::MAX));
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
        let after = if after + 1 == revision {
            String::new()
        } else {
            format!(r#""after":{after},"#)
        };
        let mut rest = format!(r#"{after}"unix_millis":{unix_millis},"command":{command}"#);
        for (field, value) in [("caller", author.caller), ("actor", author.actor)] {
            if let Some(value) = value {
                let value = serde_json::to_string(value).unwrap_or_default();
                rest.push_str(&format!(r#","{field}":{value}"#));
            }
        }
        assemble(&mut self.bytes, revision, rest.as_bytes(), &changes);
    }

    /// Marks the group's last line as its end (`"end":true`). At open only whole groups
    /// are redone, so that the commands of a request stay all or nothing.
    pub fn end(&mut self) {
        mark_group_end(&mut self.bytes);
    }

    /// Whether the group has no lines.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The revision of the group's first entry.
    pub fn first_revision(&self) -> u64 {
        self.first
    }

    /// When the group's newest entry was made, in milliseconds since the Unix epoch.
    pub fn newest_unix_millis(&self) -> u64 {
        self.newest_unix_millis
    }

    /// The group's lines.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Marks the last of `lines` (whole lines) as the end of a write group.
pub fn mark_group_end(lines: &mut Vec<u8>) {
    if lines.ends_with(b"}\n") {
        lines.truncate(lines.len() - 2);
        lines.extend_from_slice(GROUP_END);
    }
}

/// Appends the lines of the entry of `revision` holding `changes` (each a serialized
/// JSON object) to `out`, with `rest`, the fields after the part
/// (`"unix_millis":..,"command":..`).
fn assemble(out: &mut Vec<u8>, revision: u64, rest: &[u8], changes: &[&[u8]]) {
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
    for (part, bounds) in bounds.into_iter().enumerate() {
        let changes = changes.get(bounds).unwrap_or_default();
        // Writing to a Vec cannot fail.
        let _ = write!(
            out,
            r#"{{"revision":{revision},"part":{part},"parts":{count},"#
        );
        out.extend_from_slice(rest);
        out.extend_from_slice(br#","changes":["#);
        for (i, change) in changes.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(change);
        }
        out.extend_from_slice(b"]}\n");
    }
}

/// A line of the log read back: the changes of one part of one revision's entry.
#[derive(Debug, PartialEq, Eq)]
pub struct ReadLine {
    /// The revision of the entry.
    pub revision: u64,
    /// The revision logged before this one: `revision - 1` unless the line says.
    pub after: u64,
    /// Which line of the entry this is, from 0.
    pub part: u64,
    /// How many lines the entry has.
    pub parts: u64,
    /// When the entry was written.
    pub unix_millis: u64,
    /// The command that wrote it, as the log names it.
    pub command: String,
    /// The caller that wrote it, when callers are named.
    pub caller: Option<String>,
    /// The user it named as acting.
    pub actor: Option<String>,
    /// The changes of this line.
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

#[derive(Deserialize)]
struct LineRecord {
    revision: u64,
    part: u64,
    parts: u64,
    #[serde(default)]
    after: Option<u64>,
    #[serde(default)]
    unix_millis: u64,
    #[serde(default)]
    command: String,
    #[serde(default)]
    caller: Option<String>,
    #[serde(default)]
    actor: Option<String>,
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
    let after = match record.after {
        Some(after) if after < record.revision => after,
        Some(after) => {
            return Err(malformed(format!(
                "revision {} follows revision {after}",
                record.revision
            )));
        }
        None => record
            .revision
            .checked_sub(1)
            .ok_or_else(|| malformed("revision 0".into()))?,
    };
    Ok(ReadLine {
        revision: record.revision,
        after,
        part: record.part,
        parts: record.parts,
        unix_millis: record.unix_millis,
        command: record.command,
        caller: record.caller,
        actor: record.actor,
        changes,
        end: record.end,
    })
}

/// The revision and part a line names, read from its start (`{"revision":R,"part":P,`);
/// part 0 if it names none.
pub fn line_position(line: &[u8]) -> Option<(u64, u64)> {
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

/// When the entry of a line was made (its `unix_millis`), if it is a line that says.
pub fn line_unix_millis(line: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct Dated {
        unix_millis: Option<u64>,
    }
    serde_json::from_slice::<Dated>(line).ok()?.unix_millis
}
