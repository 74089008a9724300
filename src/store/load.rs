//! Rebuilding the in-memory state from the database at start-up. Records the catalog
//! no longer knows (a removed role or type) are reported and left out, so they are denied.

use std::collections::HashMap;

use tracing::warn;

use super::{StoreError, keys};
use crate::model::{
    Catalog, Grant, Membership, ProductSet, ResourceId, Scope, UserId, Workspace, WorkspaceId,
    change::Change,
};

/// What loading found that the catalog in force cannot represent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Grants whose role is not in the catalog, by role name, with how many there are.
    pub unknown_roles: HashMap<String, usize>,
    /// Records of other kinds skipped, with why.
    pub skipped: Vec<String>,
}

fn text(bytes: &[u8]) -> Result<&str, StoreError> {
    std::str::from_utf8(bytes).map_err(|_| StoreError::Corrupt("non-UTF-8 key part".into()))
}

fn id<T>(
    bytes: &[u8],
    parse: fn(&str) -> Result<T, crate::model::ids::IdError>,
) -> Result<T, StoreError> {
    parse(text(bytes)?).map_err(|e| StoreError::Corrupt(format!("bad id in key: {e}")))
}

/// Reads every workspace from `db`, with the last revision written.
pub fn load(
    db: &sled::Db,
    catalog: &Catalog,
) -> Result<(u64, HashMap<WorkspaceId, Workspace>, LoadReport), StoreError> {
    let revision = match db.get(keys::REVISION)? {
        Some(bytes) => u64::from_be_bytes(
            bytes
                .as_ref()
                .try_into()
                .map_err(|_| StoreError::Corrupt("revision is not 8 bytes".into()))?,
        ),
        None => 0,
    };
    let mut report = LoadReport::default();
    let mut states: HashMap<WorkspaceId, Option<Workspace>> = HashMap::new();

    for item in db.scan_prefix(keys::WORKSPACES) {
        let (key, value) = item?;
        let [ws] = keys::parts(&key, keys::WORKSPACES)[..] else {
            return Err(StoreError::Corrupt("bad workspace key".into()));
        };
        let ws = id(ws, WorkspaceId::parse)?;
        let mut products = catalog.always_enabled();
        for name in text(&value)?.split(',').filter(|n| !n.is_empty()) {
            match catalog.product_id(name) {
                Some(product) => products = products.with(product),
                None => report.skipped.push(format!(
                    "workspace `{ws}`: product `{name}` is not in the catalog"
                )),
            }
        }
        states.insert(ws, Some(Workspace::new(products)));
    }

    let mut apply = |ws: WorkspaceId, change: Change| {
        if let Some(state) = states.get_mut(&ws) {
            Workspace::apply(state, &change);
        }
    };

    for item in db.scan_prefix(keys::MEMBERS) {
        let (key, value) = item?;
        let [ws, user] = keys::parts(&key, keys::MEMBERS)[..] else {
            return Err(StoreError::Corrupt("bad member key".into()));
        };
        let (workspace, user) = (id(ws, WorkspaceId::parse)?, id(user, UserId::parse)?);
        let membership = match value.as_ref() {
            b"owner" => Membership::Owner,
            b"member" => Membership::Member,
            _ => return Err(StoreError::Corrupt("bad membership value".into())),
        };
        apply(
            workspace.clone(),
            Change::SetMembership {
                workspace,
                user,
                membership,
            },
        );
    }

    for item in db.scan_prefix(keys::INSTANCES) {
        let (key, value) = item?;
        let [ws, ty, rid] = keys::parts(&key, keys::INSTANCES)[..] else {
            return Err(StoreError::Corrupt("bad instance key".into()));
        };
        let workspace = id(ws, WorkspaceId::parse)?;
        let Some(ty) = catalog.type_id(text(ty)?) else {
            report.skipped.push(format!(
                "workspace `{workspace}`: resource type `{}` is not in the catalog",
                text(ty)?
            ));
            continue;
        };
        let resource = (ty, id(rid, ResourceId::parse)?);
        let parent = match keys::parts(&value, b"")[..] {
            [b""] | [] => None,
            [pty, pid] => match catalog.type_id(text(pty)?) {
                Some(pty) => Some((pty, id(pid, ResourceId::parse)?)),
                None => continue,
            },
            _ => return Err(StoreError::Corrupt("bad instance value".into())),
        };
        apply(
            workspace.clone(),
            Change::RegisterResource {
                workspace,
                resource,
                parent,
            },
        );
    }

    for item in db.scan_prefix(keys::GRANTS) {
        let (key, _) = item?;
        let parts = keys::parts(&key, keys::GRANTS);
        let (ws, user, role, scope) = match parts[..] {
            [ws, user, role, b"a"] => (ws, user, role, None),
            [ws, user, role, tagged_type, rid] => (ws, user, role, Some((tagged_type, rid))),
            _ => return Err(StoreError::Corrupt("bad grant key".into())),
        };
        let workspace = id(ws, WorkspaceId::parse)?;
        let user = id(user, UserId::parse)?;
        let role_name = text(role)?;
        let Some(role) = catalog.role_id(role_name) else {
            *report
                .unknown_roles
                .entry(role_name.to_owned())
                .or_default() += 1;
            continue;
        };
        let scope = match scope {
            None => Scope::All,
            Some((tagged_type, rid)) => {
                let type_name = text(tagged_type.get(1..).unwrap_or_default())?;
                let Some(ty) = catalog.type_id(type_name) else {
                    report.skipped.push(format!(
                        "grant of `{role_name}` to `{user}`: resource type `{type_name}` is not in the catalog"
                    ));
                    continue;
                };
                Scope::Instance(ty, id(rid, ResourceId::parse)?)
            }
        };
        apply(
            workspace.clone(),
            Change::AddGrant {
                workspace,
                user,
                grant: Grant { role, scope },
            },
        );
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
    let workspaces = states
        .into_iter()
        .filter_map(|(id, state)| state.map(|ws| (id, ws)))
        .collect();
    Ok((revision, workspaces, report))
}

/// The product names stored for a set of products.
pub fn products_value(catalog: &Catalog, products: ProductSet) -> Vec<u8> {
    products
        .iter()
        .map(|p| catalog.product_name(p))
        .collect::<Vec<_>>()
        .join(",")
        .into_bytes()
}
