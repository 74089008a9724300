//! The reference model: the tables and rules of `ACCESS_MODEL.md` written out literally
//! over a plain state of names. It shares no code with the engine or the catalog, so a
//! disagreement between the two is a bug in one of them.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Catalog, Decision, DenialReason, Membership, Scope};

mod writes;

pub(super) use writes::{Op, apply};

/// What a row of the permissions table allows.
#[derive(Debug, Clone, Copy)]
pub(super) enum AllowedTo {
    /// Every owner and member.
    EveryMember,
    /// Owners only.
    Owners,
    /// Owners, and members holding one of these roles with a covering scope.
    Roles(&'static [&'static str]),
}

/// One row of the permissions table.
#[derive(Debug, Clone, Copy)]
pub(super) struct Row {
    pub(super) permission: &'static str,
    /// Its product: every permission is denied where its product is disabled.
    pub(super) product: &'static str,
    /// The type of the instance a check names; `None`: the workspace itself.
    pub(super) names: Option<&'static str>,
    pub(super) allowed_to: AllowedTo,
}

const fn row(
    permission: &'static str,
    product: &'static str,
    names: Option<&'static str>,
    allowed_to: AllowedTo,
) -> Row {
    Row {
        permission,
        product,
        names,
        allowed_to,
    }
}

const CONNECTIONS: &str = "connections";
const PROTOCOLS: &str = "protocols";
const PERSONAS: &str = "personas";
const WORKSPACE: Option<&str> = None;
const SOURCE: Option<&str> = Some("source");
const DESTINATION: Option<&str> = Some("destination");
const WAREHOUSE: Option<&str> = Some("warehouse");
const TRACKING_PLAN: Option<&str> = Some("tracking_plan");
const AUDIENCE: Option<&str> = Some("audience");
const TRAIT: Option<&str> = Some("trait");

use AllowedTo::{EveryMember, Owners, Roles};
const SOURCE_READERS: AllowedTo = Roles(&["source_admin", "source_read"]);
const SOURCE_EDITORS: AllowedTo = Roles(&["source_admin"]);
const WAREHOUSE_READERS: AllowedTo = Roles(&["warehouse_admin", "warehouse_read"]);
const WAREHOUSE_EDITORS: AllowedTo = Roles(&["warehouse_admin"]);
const PLAN_READERS: AllowedTo = Roles(&["protocols_admin", "protocols_read"]);
const PLAN_EDITORS: AllowedTo = Roles(&["protocols_admin"]);
const PERSONAS_READERS: AllowedTo = Roles(&["personas_admin", "personas_user", "personas_read"]);
const PERSONAS_EDITORS: AllowedTo = Roles(&["personas_admin", "personas_user"]);
const PERSONAS_SETTERS: AllowedTo = Roles(&["personas_admin"]);

/// The permissions table of the model, row by row. `*.create` names the workspace,
/// except `destination.create`, which names the source the destination attaches to.
pub(super) const PERMISSIONS: &[Row] = &[
    row("workspace.read", CONNECTIONS, WORKSPACE, EveryMember),
    row("workspace.update", CONNECTIONS, WORKSPACE, Owners),
    row("workspace.manage_access", CONNECTIONS, WORKSPACE, Owners),
    row("workspace.delete", CONNECTIONS, WORKSPACE, Owners),
    row("source.read", CONNECTIONS, SOURCE, SOURCE_READERS),
    row("source.update", CONNECTIONS, SOURCE, SOURCE_EDITORS),
    row("source.delete", CONNECTIONS, SOURCE, SOURCE_EDITORS),
    row("source.create", CONNECTIONS, WORKSPACE, SOURCE_EDITORS),
    row("destination.read", CONNECTIONS, DESTINATION, SOURCE_READERS),
    row("destination.create", CONNECTIONS, SOURCE, SOURCE_EDITORS),
    row(
        "destination.update",
        CONNECTIONS,
        DESTINATION,
        SOURCE_EDITORS,
    ),
    row(
        "destination.delete",
        CONNECTIONS,
        DESTINATION,
        SOURCE_EDITORS,
    ),
    row("warehouse.read", CONNECTIONS, WAREHOUSE, WAREHOUSE_READERS),
    row(
        "warehouse.create",
        CONNECTIONS,
        WORKSPACE,
        WAREHOUSE_EDITORS,
    ),
    row(
        "warehouse.update",
        CONNECTIONS,
        WAREHOUSE,
        WAREHOUSE_EDITORS,
    ),
    row(
        "warehouse.delete",
        CONNECTIONS,
        WAREHOUSE,
        WAREHOUSE_EDITORS,
    ),
    row("tracking_plan.read", PROTOCOLS, TRACKING_PLAN, PLAN_READERS),
    row("tracking_plan.create", PROTOCOLS, WORKSPACE, PLAN_EDITORS),
    row(
        "tracking_plan.update",
        PROTOCOLS,
        TRACKING_PLAN,
        PLAN_EDITORS,
    ),
    row(
        "tracking_plan.delete",
        PROTOCOLS,
        TRACKING_PLAN,
        PLAN_EDITORS,
    ),
    row("audience.read", PERSONAS, AUDIENCE, PERSONAS_READERS),
    row("audience.create", PERSONAS, WORKSPACE, PERSONAS_EDITORS),
    row("audience.update", PERSONAS, AUDIENCE, PERSONAS_EDITORS),
    row("audience.delete", PERSONAS, AUDIENCE, PERSONAS_EDITORS),
    row("trait.read", PERSONAS, TRAIT, PERSONAS_READERS),
    row("trait.create", PERSONAS, WORKSPACE, PERSONAS_EDITORS),
    row("trait.update", PERSONAS, TRAIT, PERSONAS_EDITORS),
    row("trait.delete", PERSONAS, TRAIT, PERSONAS_EDITORS),
    row(
        "personas.read_settings",
        PERSONAS,
        WORKSPACE,
        PERSONAS_READERS,
    ),
    row(
        "personas.update_settings",
        PERSONAS,
        WORKSPACE,
        PERSONAS_SETTERS,
    ),
];

/// One row of the roles table.
#[derive(Debug, Clone, Copy)]
pub(super) struct RoleRow {
    pub(super) name: &'static str,
    pub(super) product: &'static str,
    /// The type of the one instance a grant may be scoped to, if the role accepts that.
    pub(super) one: Option<&'static str>,
}

/// The roles table of the model. Every role accepts the all-instances scope.
pub(super) const ROLES: &[RoleRow] = &[
    role("source_admin", CONNECTIONS, SOURCE),
    role("source_read", CONNECTIONS, SOURCE),
    role("warehouse_admin", CONNECTIONS, None),
    role("warehouse_read", CONNECTIONS, None),
    role("protocols_admin", PROTOCOLS, None),
    role("protocols_read", PROTOCOLS, None),
    role("personas_admin", PERSONAS, None),
    role("personas_user", PERSONAS, None),
    role("personas_read", PERSONAS, None),
];

const fn role(name: &'static str, product: &'static str, one: Option<&'static str>) -> RoleRow {
    RoleRow { name, product, one }
}

/// The resource types table: (type, product, parent type).
pub(super) const TYPES: &[(&str, &str, Option<&str>)] = &[
    ("source", CONNECTIONS, None),
    ("destination", CONNECTIONS, SOURCE),
    ("warehouse", CONNECTIONS, None),
    ("tracking_plan", PROTOCOLS, None),
    ("audience", PERSONAS, None),
    ("trait", PERSONAS, None),
];

/// The add-on products; `connections` is always enabled.
pub(super) const ADD_ONS: &[&str] = &[PROTOCOLS, PERSONAS];

pub(super) fn row_of(permission: &str) -> Row {
    *PERMISSIONS
        .iter()
        .find(|row| row.permission == permission)
        .expect("a permission of the table")
}

pub(super) fn role_of(name: &str) -> RoleRow {
    *ROLES
        .iter()
        .find(|role| role.name == name)
        .expect("a role of the table")
}

fn parent_type(ty: &str) -> Option<&'static str> {
    TYPES
        .iter()
        .find(|(name, _, _)| *name == ty)
        .and_then(|(_, _, parent)| *parent)
}

/// A grant's scope, by names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum RefScope {
    /// All current and future instances of the role's type.
    All,
    /// One instance: its type and id.
    One(String, String),
}

/// A user of the reference workspace.
#[derive(Debug, Clone, Default)]
pub(super) struct RefMember {
    pub(super) owner: bool,
    /// (role, scope) pairs.
    pub(super) grants: BTreeSet<(String, RefScope)>,
}

/// The reference workspace: plain names, no indexes.
#[derive(Debug, Clone, Default)]
pub(super) struct World {
    /// The enabled add-on products.
    pub(super) add_ons: BTreeSet<String>,
    pub(super) members: BTreeMap<String, RefMember>,
    /// (type, id) to the parent's id.
    pub(super) instances: BTreeMap<(String, String), Option<String>>,
}

impl World {
    pub(super) fn enabled(&self, product: &str) -> bool {
        product == CONNECTIONS || self.add_ons.contains(product)
    }

    pub(super) fn registered(&self, ty: &str, id: &str) -> bool {
        self.instances.contains_key(&(ty.to_owned(), id.to_owned()))
    }

    fn owners(&self) -> usize {
        self.members.values().filter(|m| m.owner).count()
    }

    /// Whether `scope` covers the instance a check of `row` names: an all-scope grant
    /// covers everything; a one-instance grant covers that instance and the instances
    /// whose access follows it (a source's destinations), and never the workspace.
    fn covers(&self, scope: &RefScope, row: &Row, instance: Option<&str>) -> bool {
        let (ty, id) = match scope {
            RefScope::All => return true,
            RefScope::One(ty, id) => (ty, id),
        };
        let (Some(names), Some(instance)) = (row.names, instance) else {
            return false;
        };
        if names == ty && instance == id {
            return true;
        }
        parent_type(names) == Some(ty.as_str())
            && self
                .instances
                .get(&(names.to_owned(), instance.to_owned()))
                .is_some_and(|parent| parent.as_deref() == Some(id.as_str()))
    }
}

/// What the model says a check answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Expected {
    /// Allowed: the user is an owner.
    Owner,
    /// Allowed: every member holds the permission.
    EveryMember,
    /// Allowed by any of these (role, scope) grants.
    Grants(Vec<(String, RefScope)>),
    /// Denied.
    Denied(DenialReason),
}

/// The model's answer to `user` asking `permission` on `instance` in `world`.
///
/// Reasons are tried in this order: not a member (learns nothing else), product not
/// enabled, instance not registered (both deny owners too), then membership and grants.
pub(super) fn expected(
    world: Option<&World>,
    user: &str,
    permission: &str,
    instance: Option<&str>,
) -> Expected {
    let row = row_of(permission);
    let Some(world) = world else {
        return Expected::Denied(DenialReason::NotAMember);
    };
    let Some(member) = world.members.get(user) else {
        return Expected::Denied(DenialReason::NotAMember);
    };
    if !world.enabled(row.product) {
        return Expected::Denied(DenialReason::ProductNotEnabled);
    }
    if let (Some(ty), Some(id)) = (row.names, instance) {
        if !world.registered(ty, id) {
            return Expected::Denied(DenialReason::ResourceNotRegistered);
        }
    }
    if member.owner {
        return Expected::Owner;
    }
    let roles = match row.allowed_to {
        EveryMember => return Expected::EveryMember,
        Owners => return Expected::Denied(DenialReason::NoCoveringGrant),
        Roles(roles) => roles,
    };
    let covering: Vec<(String, RefScope)> = member
        .grants
        .iter()
        .filter(|(role, scope)| {
            roles.contains(&role.as_str())
                && world.enabled(role_of(role).product)
                && world.covers(scope, &row, instance)
        })
        .cloned()
        .collect();
    if covering.is_empty() {
        Expected::Denied(DenialReason::NoCoveringGrant)
    } else {
        Expected::Grants(covering)
    }
}

/// Whether the engine's decision is one the model allows.
pub(super) fn agrees(catalog: &Catalog, decision: &Decision, expected: &Expected) -> bool {
    match (decision, expected) {
        (Decision::AllowedByMembership(Membership::Owner), Expected::Owner) => true,
        (Decision::AllowedByMembership(Membership::Member), Expected::EveryMember) => true,
        (Decision::AllowedByGrant(grant), Expected::Grants(grants)) => {
            let scope = match &grant.scope {
                Scope::All => RefScope::All,
                Scope::Instance(ty, id) => {
                    RefScope::One(catalog.type_name(*ty).to_owned(), id.as_str().to_owned())
                }
            };
            grants.contains(&(catalog.role_name(grant.role).to_owned(), scope))
        }
        (Decision::Denied(got), Expected::Denied(want)) => got == want,
        _ => false,
    }
}

/// Every check worth asking about `users` and the instance ids `ids`: each permission of
/// the table, on each id for permissions that name an instance.
pub(super) fn questions(
    users: &[&str],
    ids: &[&str],
) -> Vec<(String, &'static str, Option<String>)> {
    let mut out = Vec::new();
    for user in users {
        for row in PERMISSIONS {
            if row.names.is_some() {
                for id in ids {
                    out.push(((*user).to_owned(), row.permission, Some((*id).to_owned())));
                }
            } else {
                out.push(((*user).to_owned(), row.permission, None));
            }
        }
    }
    out
}
