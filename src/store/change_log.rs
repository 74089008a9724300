//! Change log entries: one per revision, saying what changed and when, in JSON so that
//! replicas and auditors can read them without this crate.

use serde_json::{Value, json};

use crate::model::{Catalog, Change, Grant, InstanceKey, Membership, Scope};

fn scope(catalog: &Catalog, scope: &Scope) -> Value {
    match scope {
        Scope::All => json!("all"),
        Scope::Instance(ty, id) => json!({ "type": catalog.type_name(*ty), "id": id }),
    }
}

fn grant(catalog: &Catalog, grant: &Grant) -> Value {
    json!({ "role": catalog.role_name(grant.role), "scope": scope(catalog, &grant.scope) })
}

fn resource(catalog: &Catalog, key: &InstanceKey) -> Value {
    json!({ "type": catalog.type_name(key.0), "id": key.1 })
}

fn membership(membership: Membership) -> &'static str {
    match membership {
        Membership::Owner => "owner",
        Membership::Member => "member",
    }
}

/// One change as JSON.
pub fn change(catalog: &Catalog, change: &Change) -> Value {
    match change {
        Change::CreateWorkspace {
            workspace,
            products,
        }
        | Change::SetProducts {
            workspace,
            products,
        } => json!({
            "op": if matches!(change, Change::CreateWorkspace { .. }) { "create_workspace" } else { "set_products" },
            "workspace": workspace,
            "products": products.iter().map(|p| catalog.product_name(p)).collect::<Vec<_>>(),
        }),
        Change::DeleteWorkspace { workspace } => {
            json!({ "op": "delete_workspace", "workspace": workspace })
        }
        Change::SetMembership {
            workspace,
            user,
            membership: m,
        } => json!({
            "op": "set_membership", "workspace": workspace, "user": user,
            "membership": membership(*m),
        }),
        Change::RemoveMember { workspace, user } => {
            json!({ "op": "remove_member", "workspace": workspace, "user": user })
        }
        Change::AddGrant {
            workspace,
            user,
            grant: g,
        } => json!({
            "op": "add_grant", "workspace": workspace, "user": user, "grant": grant(catalog, g),
        }),
        Change::RemoveGrant {
            workspace,
            user,
            grant: g,
        } => json!({
            "op": "remove_grant", "workspace": workspace, "user": user, "grant": grant(catalog, g),
        }),
        Change::RegisterResource {
            workspace,
            resource: r,
            parent,
        } => json!({
            "op": "register_resource", "workspace": workspace, "resource": resource(catalog, r),
            "parent": parent.as_ref().map(|p| resource(catalog, p)),
        }),
        Change::DeleteResource {
            workspace,
            resource: r,
        } => json!({
            "op": "delete_resource", "workspace": workspace, "resource": resource(catalog, r),
        }),
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
    let value = json!({
        "revision": revision,
        "unix_millis": unix_millis,
        "command": command,
        "changes": changes.iter().map(|c| change(catalog, c)).collect::<Vec<_>>(),
    });
    value.to_string().into_bytes()
}
