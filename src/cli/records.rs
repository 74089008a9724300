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

use crate::api::pb::{self, record::Kind};

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
#[serde(untagged)]
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
        "owner" => Ok(pb::Membership::Owner.into()),
        "member" => Ok(pb::Membership::Member.into()),
        other => Err(format!(
            "`membership`: must be `owner` or `member`, not `{other}`"
        )),
    }
}

impl RecordLine {
    /// Parses one line of a records file.
    pub fn parse(line: &str) -> Result<Self, String> {
        serde_json::from_str(line).map_err(|e| e.to_string())
    }

    /// The record the Import RPC takes.
    pub fn into_record(self) -> Result<pb::Record, String> {
        let kind = match self {
            Self::Workspace {
                id,
                products,
                owners,
            } => Kind::Workspace(pb::WorkspaceRecord {
                workspace_id: id,
                products,
                owner_user_ids: owners,
            }),
            Self::Resource {
                workspace,
                type_name,
                id,
                parent,
            } => Kind::Resource(pb::ResourceRecord {
                workspace_id: workspace,
                resource: Some(pb::ResourceRef {
                    r#type: type_name,
                    id,
                }),
                parent_id: parent.unwrap_or_default(),
            }),
            Self::Member {
                workspace,
                user,
                membership,
            } => Kind::Member(pb::MemberRecord {
                workspace_id: workspace,
                user_id: user,
                membership: membership_value(&membership)?,
            }),
            Self::Grant {
                workspace,
                user,
                role,
                scope,
            } => Kind::Grant(pb::GrantRecord {
                workspace_id: workspace,
                user_id: user,
                role,
                scope: Some(pb::Scope {
                    kind: Some(match scope {
                        ScopeLine::Keyword(word) if word == "all" => {
                            pb::scope::Kind::All(pb::AllInstances {})
                        }
                        ScopeLine::Keyword(word) => {
                            return Err(format!(
                                "`scope`: must be \"all\" or {{\"type\", \"id\"}}, not `{word}`"
                            ));
                        }
                        ScopeLine::Instance { type_name, id } => {
                            pb::scope::Kind::Instance(pb::ResourceRef {
                                r#type: type_name,
                                id,
                            })
                        }
                    }),
                }),
            }),
        };
        Ok(pb::Record { kind: Some(kind) })
    }

    /// The line for a record the Export RPC sent; `None` for an empty record.
    pub fn from_record(record: pb::Record) -> Option<Self> {
        Some(match record.kind? {
            Kind::Workspace(w) => Self::Workspace {
                id: w.workspace_id,
                products: w.products,
                owners: w.owner_user_ids,
            },
            Kind::Resource(r) => {
                let resource = r.resource.unwrap_or_default();
                Self::Resource {
                    workspace: r.workspace_id,
                    type_name: resource.r#type,
                    id: resource.id,
                    parent: (!r.parent_id.is_empty()).then_some(r.parent_id),
                }
            }
            Kind::Member(m) => Self::Member {
                workspace: m.workspace_id,
                user: m.user_id,
                membership: match pb::Membership::try_from(m.membership) {
                    Ok(pb::Membership::Owner) => "owner",
                    _ => "member",
                }
                .to_owned(),
            },
            Kind::Grant(g) => Self::Grant {
                workspace: g.workspace_id,
                user: g.user_id,
                role: g.role,
                scope: match g.scope.and_then(|s| s.kind) {
                    Some(pb::scope::Kind::Instance(instance)) => ScopeLine::Instance {
                        type_name: instance.r#type,
                        id: instance.id,
                    },
                    _ => ScopeLine::Keyword("all".to_owned()),
                },
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
}
