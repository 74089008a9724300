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
    /// They are denied, and kept on disk for a catalog that has the role again.
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
pub fn load(db: &sled::Db, catalog: &Catalog) -> Result<Loaded, StoreError> {
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
    let mut retained = Retained::new();
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

    // Members after instances, so that grants share the instances' id allocations.
    for item in db.scan_prefix(keys::MEMBERS) {
        let (key, value) = item?;
        let [ws, user] = keys::parts(&key, keys::MEMBERS)[..] else {
            return Err(StoreError::Corrupt("bad member key".into()));
        };
        let (workspace, user) = (id(ws, WorkspaceId::parse)?, id(user, UserId::parse)?);
        let mut lines = value.split(|b| *b == b'\n');
        let membership = match lines.next() {
            Some(b"owner") => Membership::Owner,
            Some(b"member") => Membership::Member,
            _ => return Err(StoreError::Corrupt("bad membership value".into())),
        };
        apply(
            workspace.clone(),
            Change::SetMembership {
                workspace: workspace.clone(),
                user: user.clone(),
                membership,
            },
        );
        for line in lines {
            match grant(catalog, line, &mut report)? {
                Some(grant) => apply(
                    workspace.clone(),
                    Change::AddGrant {
                        workspace: workspace.clone(),
                        user: user.clone(),
                        grant,
                    },
                ),
                None => retained
                    .entry((workspace.clone(), user.clone()))
                    .or_default()
                    .push(line.to_vec()),
            }
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
    let workspaces = states
        .into_iter()
        .filter_map(|(id, state)| state.map(|ws| (id, ws)))
        .collect();
    Ok(Loaded {
        revision,
        workspaces,
        report,
        retained,
    })
}

/// One line of a member record as a grant; `None` (and a note in the report) if the
/// catalog in force does not know its role or type.
fn grant(
    catalog: &Catalog,
    line: &[u8],
    report: &mut LoadReport,
) -> Result<Option<Grant>, StoreError> {
    let (role_name, scope) = match keys::parts(line, b"")[..] {
        [role, b"a"] => (text(role)?, None),
        [role, tagged_type, rid] => (text(role)?, Some((tagged_type, rid))),
        _ => return Err(StoreError::Corrupt("bad grant in a member record".into())),
    };
    let Some(role) = catalog.role_id(role_name) else {
        *report
            .unknown_roles
            .entry(role_name.to_owned())
            .or_default() += 1;
        return Ok(None);
    };
    let scope = match scope {
        None => Scope::All,
        Some((tagged_type, rid)) => {
            let type_name = text(tagged_type.get(1..).unwrap_or_default())?;
            let Some(ty) = catalog.type_id(type_name) else {
                report.skipped.push(format!(
                    "grant of `{role_name}`: resource type `{type_name}` is not in the catalog"
                ));
                return Ok(None);
            };
            Scope::Instance(ty, id(rid, ResourceId::parse)?)
        }
    };
    Ok(Some(Grant { role, scope }))
}

/// Lines of member records the catalog in force cannot represent, by member, kept so
/// that rewriting a member record does not lose them.
pub type Retained = HashMap<(WorkspaceId, UserId), Vec<Vec<u8>>>;

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
