//! `accessd-bench records`: a data set written as a records file, one JSON line per
//! Import record in the public format `accessd import` reads (README, "Bulk import and
//! export"), so that `accessd import` can be timed on the same data the benchmarks load.

use std::{
    fs::File,
    io::{BufWriter, Write},
    time::Instant,
};

use accessd::proto::{self, record::Kind};
use serde::Serialize;

use crate::{
    args::RecordsArgs,
    dataset::{Dataset, Sizes},
    report,
};

/// Writes the data set of `args` to its file and says how much it wrote on stderr.
pub fn write(args: &RecordsArgs) -> Result<(), String> {
    let data = Dataset::generate(
        args.seed,
        Sizes {
            workspaces: args.workspaces,
            members: args.members,
            sources: args.sources,
            grant_pool: 0,
        },
    );
    let started = Instant::now();
    let to_stdout = args.file.as_os_str() == "-";
    let sink: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            File::create(&args.file)
                .map_err(|e| format!("cannot create `{}`: {e}", args.file.display()))?,
        )
    };
    let mut out = BufWriter::with_capacity(1 << 20, sink);
    let lines = write_lines(&data, &mut out)?;
    out.flush()
        .map_err(|e| format!("cannot write `{}`: {e}", args.file.display()))?;
    let counts = data.counts();
    eprintln!(
        "wrote {} records ({} workspaces, {} members, {} grants, {} instances) to `{}` in {:.1} s",
        report::thousands(lines),
        report::thousands(counts.workspaces),
        report::thousands(counts.members),
        report::thousands(counts.grants),
        report::thousands(counts.instances),
        args.file.display(),
        started.elapsed().as_secs_f64(),
    );
    Ok(())
}

/// Writes the records of `data` to `out`, one line each; returns how many.
pub fn write_lines(data: &Dataset, out: &mut impl Write) -> Result<usize, String> {
    let mut lines = 0;
    for record in data.records() {
        let line = Line::of(&record)?;
        serde_json::to_writer(&mut *out, &line).map_err(|e| format!("cannot write: {e}"))?;
        out.write_all(b"\n")
            .map_err(|e| format!("cannot write: {e}"))?;
        lines += 1;
    }
    Ok(lines)
}

/// One line of a records file: an object whose one key names the kind of record.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum Line<'a> {
    /// A workspace with its enabled products and owners.
    Workspace {
        id: &'a str,
        products: &'a [String],
        owners: &'a [String],
    },
    /// A resource instance, with its parent's id if it has one.
    Resource {
        workspace: &'a str,
        #[serde(rename = "type")]
        type_name: &'a str,
        id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        parent: Option<&'a str>,
    },
    /// A membership, `owner` or `member`.
    Member {
        workspace: &'a str,
        user: &'a str,
        membership: &'static str,
    },
    /// A grant.
    Grant {
        workspace: &'a str,
        user: &'a str,
        role: &'a str,
        scope: Scope<'a>,
    },
}

/// A grant's scope in a records file: `"all"` or `{"type": TYPE, "id": ID}`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Scope<'a> {
    /// The keyword `all`: every current and future instance.
    All(&'static str),
    /// One instance.
    Instance {
        #[serde(rename = "type")]
        type_name: &'a str,
        id: &'a str,
    },
}

impl<'a> Line<'a> {
    /// The line of `record`; a record the format cannot hold whole is an error rather
    /// than a line that would import as something else.
    fn of(record: &'a proto::Record) -> Result<Self, String> {
        Ok(match &record.kind {
            None => return Err("a record without its kind".to_owned()),
            Some(Kind::Workspace(w)) => Self::Workspace {
                id: &w.workspace_id,
                products: &w.products,
                owners: &w.owner_user_ids,
            },
            Some(Kind::Resource(r)) => {
                let Some(resource) = &r.resource else {
                    return Err(format!(
                        "a resource of workspace `{}` without its type and id",
                        r.workspace_id
                    ));
                };
                Self::Resource {
                    workspace: &r.workspace_id,
                    type_name: &resource.r#type,
                    id: &resource.id,
                    parent: (!r.parent_id.is_empty()).then_some(r.parent_id.as_str()),
                }
            }
            Some(Kind::Member(m)) => Self::Member {
                workspace: &m.workspace_id,
                user: &m.user_id,
                membership: match proto::Membership::try_from(m.membership) {
                    Ok(proto::Membership::Owner) => "owner",
                    Ok(proto::Membership::Member) => "member",
                    _ => {
                        return Err(format!(
                            "user `{}` of workspace `{}` without a membership",
                            m.user_id, m.workspace_id
                        ));
                    }
                },
            },
            Some(Kind::Grant(g)) => Self::Grant {
                workspace: &g.workspace_id,
                user: &g.user_id,
                role: &g.role,
                scope: match g.scope.as_ref().and_then(|s| s.kind.as_ref()) {
                    Some(proto::scope::Kind::All(_)) => Scope::All("all"),
                    Some(proto::scope::Kind::Instance(instance)) => Scope::Instance {
                        type_name: &instance.r#type,
                        id: &instance.id,
                    },
                    None => {
                        return Err(format!(
                            "a grant of `{}` to `{}` in workspace `{}` without its scope",
                            g.role, g.user_id, g.workspace_id
                        ));
                    }
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(kind: Kind) -> String {
        serde_json::to_string(&Line::of(&proto::Record { kind: Some(kind) }).unwrap()).unwrap()
    }

    fn instance(type_name: &str, id: &str) -> proto::ResourceRef {
        proto::ResourceRef {
            r#type: type_name.into(),
            id: id.into(),
        }
    }

    #[test]
    fn each_kind_of_record_is_the_line_the_readme_shows() {
        let workspace = Kind::Workspace(proto::WorkspaceRecord {
            workspace_id: "acme".into(),
            products: vec!["connections".into(), "protocols".into()],
            owner_user_ids: vec!["olivia".into()],
        });
        let destination = Kind::Resource(proto::ResourceRecord {
            workspace_id: "acme".into(),
            resource: Some(instance("destination", "amplitude")),
            parent_id: "ios".into(),
        });
        let source = Kind::Resource(proto::ResourceRecord {
            workspace_id: "acme".into(),
            resource: Some(instance("source", "ios")),
            parent_id: String::new(),
        });
        let member = Kind::Member(proto::MemberRecord {
            workspace_id: "acme".into(),
            user_id: "sam".into(),
            membership: proto::Membership::Member.into(),
        });
        let grant = |user: &str, role: &str, kind| {
            Kind::Grant(proto::GrantRecord {
                workspace_id: "acme".into(),
                user_id: user.into(),
                role: role.into(),
                scope: Some(proto::Scope { kind: Some(kind) }),
            })
        };
        let on_ios = proto::scope::Kind::Instance(instance("source", "ios"));
        let on_all = proto::scope::Kind::All(proto::AllInstances {});
        assert_eq!(
            line(workspace),
            r#"{"workspace":{"id":"acme","products":["connections","protocols"],"owners":["olivia"]}}"#
        );
        assert_eq!(
            line(destination),
            r#"{"resource":{"workspace":"acme","type":"destination","id":"amplitude","parent":"ios"}}"#
        );
        assert_eq!(
            line(source),
            r#"{"resource":{"workspace":"acme","type":"source","id":"ios"}}"#
        );
        assert_eq!(
            line(member),
            r#"{"member":{"workspace":"acme","user":"sam","membership":"member"}}"#
        );
        assert_eq!(
            line(grant("sam", "source_admin", on_ios)),
            r#"{"grant":{"workspace":"acme","user":"sam","role":"source_admin","scope":{"type":"source","id":"ios"}}}"#
        );
        assert_eq!(
            line(grant("ria", "warehouse_read", on_all)),
            r#"{"grant":{"workspace":"acme","user":"ria","role":"warehouse_read","scope":"all"}}"#
        );
    }

    #[test]
    fn a_record_that_cannot_be_written_whole_is_an_error_not_a_wider_line() {
        assert!(Line::of(&proto::Record { kind: None }).is_err());
        let no_scope = proto::Record {
            kind: Some(Kind::Grant(proto::GrantRecord {
                workspace_id: "acme".into(),
                user_id: "sam".into(),
                role: "source_admin".into(),
                scope: None,
            })),
        };
        let error = Line::of(&no_scope).unwrap_err();
        assert!(error.contains("without its scope"), "{error}");
        let no_membership = proto::Record {
            kind: Some(Kind::Member(proto::MemberRecord {
                workspace_id: "acme".into(),
                user_id: "sam".into(),
                membership: 0,
            })),
        };
        assert!(Line::of(&no_membership).is_err());
    }
}
