//! Change log entries: one per revision, saying what changed and when, in JSON so that
//! replicas and auditors can read them without this crate. Serialized straight from
//! borrowed views (no intermediate JSON tree): a bulk import logs every record.

use serde::Serialize;

use crate::model::{Catalog, Change, Grant, InstanceKey, Membership, Scope, UserId, WorkspaceId};

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

#[derive(Serialize)]
struct Entry<'a> {
    revision: u64,
    unix_millis: u128,
    command: &'a str,
    changes: Vec<ChangeView<'a>>,
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

/// The change log entry of one write.
pub fn entry(
    catalog: &Catalog,
    revision: u64,
    unix_millis: u128,
    command: &str,
    changes: &[Change],
) -> Vec<u8> {
    let entry = Entry {
        revision,
        unix_millis,
        command,
        changes: changes.iter().map(|c| view(catalog, c)).collect(),
    };
    // Serializing plain structs of strings and numbers to a Vec cannot fail.
    serde_json::to_vec(&entry).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ResourceId, UserId, WorkspaceId};

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
        let text = String::from_utf8(entry(&catalog, 7, 1000, "grant", &changes)).unwrap();
        assert_eq!(
            text,
            r#"{"revision":7,"unix_millis":1000,"command":"grant","changes":[{"op":"add_grant","workspace":"acme","user":"sam","grant":{"role":"source_admin","scope":{"type":"source","id":"ios"}}},{"op":"add_grant","workspace":"acme","user":"ria","grant":{"role":"warehouse_read","scope":"all"}}]}"#
        );
    }
}
