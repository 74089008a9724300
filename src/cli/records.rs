//! The records file of `accessd import` and `accessd export --format records`: one JSON
//! object per line, each a workspace (with products and owners), a resource, a member or
//! a grant. The lines map one to one onto the Import and Export RPCs' records.
//!
//! ```text
//! {"workspace":{"id":"acme","products":["connections","protocols"],"owners":["olivia"]}}
//! {"resource":{"workspace":"acme","type":"destination","id":"amplitude","parent":"ios"}}
//! {"member":{"workspace":"acme","user":"sam","membership":"member"}}
//! {"grant":{"workspace":"acme","user":"sam","role":"source_admin","scope":{"type":"source","id":"ios"}}}
//! {"grant":{"workspace":"acme","user":"ria","role":"warehouse_read","scope":"all"}}
//! ```

use serde::{Deserialize, Serialize};

use crate::proto::{self, record::Kind};

/// One line of a records file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RecordLine {
    /// A workspace with its enabled products and owners.
    Workspace {
        /// Its id.
        id: String,
        /// Its enabled products.
        #[serde(default)]
        products: Vec<String>,
        /// Its owners.
        owners: Vec<String>,
    },
    /// A resource instance.
    Resource {
        /// Its workspace.
        workspace: String,
        /// Its type.
        #[serde(rename = "type")]
        type_name: String,
        /// Its id.
        id: String,
        /// Its parent's id, for a destination.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<String>,
    },
    /// A membership.
    Member {
        /// Its workspace.
        workspace: String,
        /// The user.
        user: String,
        /// `owner` or `member`.
        membership: String,
    },
    /// A grant.
    Grant {
        /// Its workspace.
        workspace: String,
        /// The member holding it.
        user: String,
        /// The role.
        role: String,
        /// `"all"` or `{"type": ..., "id": ...}`.
        scope: ScopeLine,
    },
}

/// A grant's scope in a records file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    untagged,
    deny_unknown_fields,
    expecting = "a scope: \"all\" or {\"type\": TYPE, \"id\": ID}"
)]
pub enum ScopeLine {
    /// `"all"`: every current and future instance.
    Keyword(String),
    /// One instance.
    Instance {
        /// Its type.
        #[serde(rename = "type")]
        type_name: String,
        /// Its id.
        id: String,
    },
}

fn membership_value(name: &str) -> Result<i32, String> {
    match name {
        "owner" => Ok(proto::Membership::Owner.into()),
        "member" => Ok(proto::Membership::Member.into()),
        other => Err(format!(
            "`membership`: must be `owner` or `member`, not `{other}`"
        )),
    }
}

impl RecordLine {
    /// Parses one line of a records file.
    pub fn parse(line: &str) -> Result<Self, String> {
        serde_json::from_str(line).map_err(|e| {
            // serde_json counts lines within this one; the caller knows the file's line.
            let text = e.to_string();
            let position = format!(" at line {} column {}", e.line(), e.column());
            match text.strip_suffix(&position) {
                Some(message) => format!("{message} (column {})", e.column()),
                None => text,
            }
        })
    }

    /// The record the Import RPC takes.
    pub fn into_record(self) -> Result<proto::Record, String> {
        let kind = match self {
            Self::Workspace {
                id,
                products,
                owners,
            } => Kind::Workspace(proto::WorkspaceRecord {
                workspace_id: id,
                products,
                owner_user_ids: owners,
            }),
            Self::Resource {
                workspace,
                type_name,
                id,
                parent,
            } => Kind::Resource(proto::ResourceRecord {
                workspace_id: workspace,
                resource: Some(proto::ResourceRef {
                    r#type: type_name,
                    id,
                }),
                parent_id: parent.unwrap_or_default(),
            }),
            Self::Member {
                workspace,
                user,
                membership,
            } => Kind::Member(proto::MemberRecord {
                workspace_id: workspace,
                user_id: user,
                membership: membership_value(&membership)?,
            }),
            Self::Grant {
                workspace,
                user,
                role,
                scope,
            } => Kind::Grant(proto::GrantRecord {
                workspace_id: workspace,
                user_id: user,
                role,
                scope: Some(proto::Scope {
                    kind: Some(match scope {
                        ScopeLine::Keyword(word) if word == "all" => {
                            proto::scope::Kind::All(proto::AllInstances {})
                        }
                        ScopeLine::Keyword(word) => {
                            return Err(format!(
                                "`scope`: must be \"all\" or {{\"type\", \"id\"}}, not `{word}`"
                            ));
                        }
                        ScopeLine::Instance { type_name, id } => {
                            proto::scope::Kind::Instance(proto::ResourceRef {
                                r#type: type_name,
                                id,
                            })
                        }
                    }),
                }),
            }),
        };
        Ok(proto::Record { kind: Some(kind) })
    }

    /// The line for a record the Export RPC sent. A record this version cannot write
    /// whole is an error rather than a line that would import as something else (a
    /// grant without its scope must not come back as a grant on all instances).
    pub fn from_record(record: proto::Record) -> Result<Self, String> {
        Ok(match record.kind {
            None => {
                return Err(
                    "the server sent a record of a kind this `accessd` does not know; \
                            use the server's version of the CLI"
                        .to_owned(),
                );
            }
            Some(Kind::Workspace(w)) => Self::Workspace {
                id: w.workspace_id,
                products: w.products,
                owners: w.owner_user_ids,
            },
            Some(Kind::Resource(r)) => {
                let Some(resource) = r.resource else {
                    return Err(format!(
                        "the server sent a resource of workspace `{}` without its type and id",
                        r.workspace_id
                    ));
                };
                Self::Resource {
                    workspace: r.workspace_id,
                    type_name: resource.r#type,
                    id: resource.id,
                    parent: (!r.parent_id.is_empty()).then_some(r.parent_id),
                }
            }
            Some(Kind::Member(m)) => Self::Member {
                membership: match proto::Membership::try_from(m.membership) {
                    Ok(proto::Membership::Owner) => "owner",
                    Ok(proto::Membership::Member) => "member",
                    _ => {
                        return Err(format!(
                            "the server sent user `{}` of workspace `{}` without a membership",
                            m.user_id, m.workspace_id
                        ));
                    }
                }
                .to_owned(),
                workspace: m.workspace_id,
                user: m.user_id,
            },
            Some(Kind::Grant(g)) => Self::Grant {
                scope: match g.scope.and_then(|s| s.kind) {
                    Some(proto::scope::Kind::All(_)) => ScopeLine::Keyword("all".to_owned()),
                    Some(proto::scope::Kind::Instance(instance)) => ScopeLine::Instance {
                        type_name: instance.r#type,
                        id: instance.id,
                    },
                    None => {
                        return Err(format!(
                            "the server sent a grant of `{}` to `{}` in workspace `{}` \
                             without its scope",
                            g.role, g.user_id, g.workspace_id
                        ));
                    }
                },
                workspace: g.workspace_id,
                user: g.user_id,
                role: g.role,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_line_round_trips_through_a_record() {
        let lines = [
            r#"{"workspace":{"id":"acme","products":["connections","protocols"],"owners":["olivia"]}}"#,
            r#"{"resource":{"workspace":"acme","type":"destination","id":"amplitude","parent":"ios"}}"#,
            r#"{"resource":{"workspace":"acme","type":"source","id":"ios"}}"#,
            r#"{"member":{"workspace":"acme","user":"sam","membership":"member"}}"#,
            r#"{"grant":{"workspace":"acme","user":"sam","role":"source_admin","scope":{"type":"source","id":"ios"}}}"#,
            r#"{"grant":{"workspace":"acme","user":"ria","role":"warehouse_read","scope":"all"}}"#,
        ];
        for line in lines {
            let record = RecordLine::parse(line).unwrap().into_record().unwrap();
            let back = RecordLine::from_record(record).unwrap();
            assert_eq!(serde_json::to_string(&back).unwrap(), line);
        }
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        assert!(
            RecordLine::parse(r#"{"grant":{"workspace":"a"}}"#)
                .unwrap_err()
                .contains("missing field")
        );
        assert!(
            RecordLine::parse(r#"{"team":{}}"#)
                .unwrap_err()
                .contains("unknown variant")
        );
        let some = RecordLine::parse(
            r#"{"grant":{"workspace":"a","user":"u","role":"r","scope":"everything"}}"#,
        )
        .unwrap();
        assert!(some.into_record().unwrap_err().contains("`scope`"));
        let member =
            RecordLine::parse(r#"{"member":{"workspace":"a","user":"u","membership":"boss"}}"#)
                .unwrap();
        assert!(member.into_record().unwrap_err().contains("`membership`"));
    }

    #[test]
    fn a_parse_error_names_its_column_not_a_line_of_its_own() {
        assert_eq!(
            RecordLine::parse("not json").unwrap_err(),
            "expected value (column 1)"
        );
        let unknown = RecordLine::parse(r#"{"team":{}}"#).unwrap_err();
        assert!(
            unknown.starts_with("unknown variant `team`, expected one of"),
            "{unknown}"
        );
        assert!(!unknown.contains("line"), "{unknown}");
    }

    #[test]
    fn a_scope_is_all_or_exactly_a_type_and_an_id() {
        let grant = |scope: &str| {
            RecordLine::parse(&format!(
                r#"{{"grant":{{"workspace":"a","user":"u","role":"r","scope":{scope}}}}}"#
            ))
        };
        assert!(grant(r#""all""#).is_ok());
        assert!(grant(r#"{"type":"source","id":"ios"}"#).is_ok());
        for bad in [
            r#"{"type":"source"}"#,
            r#"{"type":"source","id":"ios","extra":1}"#,
            "7",
        ] {
            let error = grant(bad).unwrap_err();
            assert!(
                error.contains(r#"a scope: "all" or {"type": TYPE, "id": ID}"#),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let error = RecordLine::parse(
            r#"{"member":{"workspace":"a","user":"u","membership":"member","role":"x"}}"#,
        )
        .unwrap_err();
        assert!(error.starts_with("unknown field `role`"), "{error}");
    }

    #[test]
    fn a_record_that_cannot_be_written_whole_is_an_error_not_a_wider_line() {
        assert!(RecordLine::from_record(proto::Record { kind: None }).is_err());
        let no_scope = proto::Record {
            kind: Some(Kind::Grant(proto::GrantRecord {
                workspace_id: "acme".into(),
                user_id: "sam".into(),
                role: "source_admin".into(),
                scope: None,
            })),
        };
        let error = RecordLine::from_record(no_scope).unwrap_err();
        assert!(error.contains("without its scope"), "{error}");
        let no_membership = proto::Record {
            kind: Some(Kind::Member(proto::MemberRecord {
                workspace_id: "acme".into(),
                user_id: "sam".into(),
                membership: 0,
            })),
        };
        assert!(RecordLine::from_record(no_membership).is_err());
    }
}
