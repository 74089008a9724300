//! The names of accessd's built-in catalog (`src/model/catalog.toml`) that the data set
//! and the request mix use, as plain data in catalog order. The bench keeps its own copy
//! rather than accessd's parsed catalog, so that its expected answers cross-check the server.

use Target::{Instance, Workspace};

/// The product every workspace has.
pub const CONNECTIONS: &str = "connections";
/// An add-on product: tracking plans.
pub const PROTOCOLS: &str = "protocols";
/// An add-on product: audiences and traits.
pub const PERSONAS: &str = "personas";

/// A resource type of `connections`, the parent of destinations.
pub const SOURCE: &str = "source";
/// A resource type of `connections` whose instances have a source as parent, so that a
/// grant scoped to the source covers them.
pub const DESTINATION: &str = "destination";
/// A resource type of `connections`.
pub const WAREHOUSE: &str = "warehouse";
/// A resource type of `protocols`.
pub const TRACKING_PLAN: &str = "tracking_plan";
/// A resource type of `personas`.
pub const AUDIENCE: &str = "audience";
/// A resource type of `personas`.
pub const TRAIT: &str = "trait";

/// The role that reads a source and its destinations.
pub const SOURCE_READ: &str = "source_read";
/// The role that manages a source and its destinations.
pub const SOURCE_ADMIN: &str = "source_admin";

/// What a check of a permission names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The workspace itself: only all-scope grants cover it.
    Workspace,
    /// An instance of this resource type.
    Instance(&'static str),
}

/// A permission of the catalog.
#[derive(Debug, Clone, Copy)]
pub struct Permission {
    /// Its name, `type.action`.
    pub name: &'static str,
    /// Its product: where that product is disabled, it is denied to everyone.
    pub product: &'static str,
    /// What a check of it names.
    pub target: Target,
    /// Whether every member of a workspace holds it.
    pub every_member: bool,
}

/// A role of the catalog; every one accepts grants on all instances.
#[derive(Debug, Clone, Copy)]
pub struct Role {
    /// Its name.
    pub name: &'static str,
    /// Its product: where that product is disabled, its grants allow nothing.
    pub product: &'static str,
    /// The permissions it allows.
    pub permissions: &'static [&'static str],
}

impl Role {
    /// Whether the role allows the permission named `permission`.
    pub fn allows(&self, permission: &str) -> bool {
        self.permissions.contains(&permission)
    }
}

/// The role named `name`.
pub fn role(name: &str) -> Option<&'static Role> {
    ROLES.iter().find(|role| role.name == name)
}

const fn permission(name: &'static str, product: &'static str, target: Target) -> Permission {
    Permission {
        name,
        product,
        target,
        every_member: false,
    }
}

/// The permissions, in catalog order (the request mix asks about them in turn).
pub const PERMISSIONS: [Permission; 30] = [
    Permission {
        every_member: true,
        ..permission("workspace.read", CONNECTIONS, Workspace)
    },
    permission("workspace.update", CONNECTIONS, Workspace),
    permission("workspace.manage_access", CONNECTIONS, Workspace),
    permission("workspace.delete", CONNECTIONS, Workspace),
    permission("source.read", CONNECTIONS, Instance(SOURCE)),
    permission("source.update", CONNECTIONS, Instance(SOURCE)),
    permission("source.delete", CONNECTIONS, Instance(SOURCE)),
    permission("source.create", CONNECTIONS, Workspace),
    permission("destination.read", CONNECTIONS, Instance(DESTINATION)),
    permission("destination.update", CONNECTIONS, Instance(DESTINATION)),
    permission("destination.delete", CONNECTIONS, Instance(DESTINATION)),
    permission("destination.create", CONNECTIONS, Instance(SOURCE)),
    permission("warehouse.read", CONNECTIONS, Instance(WAREHOUSE)),
    permission("warehouse.update", CONNECTIONS, Instance(WAREHOUSE)),
    permission("warehouse.delete", CONNECTIONS, Instance(WAREHOUSE)),
    permission("warehouse.create", CONNECTIONS, Workspace),
    permission("tracking_plan.read", PROTOCOLS, Instance(TRACKING_PLAN)),
    permission("tracking_plan.update", PROTOCOLS, Instance(TRACKING_PLAN)),
    permission("tracking_plan.delete", PROTOCOLS, Instance(TRACKING_PLAN)),
    permission("tracking_plan.create", PROTOCOLS, Workspace),
    permission("audience.read", PERSONAS, Instance(AUDIENCE)),
    permission("audience.update", PERSONAS, Instance(AUDIENCE)),
    permission("audience.delete", PERSONAS, Instance(AUDIENCE)),
    permission("audience.create", PERSONAS, Workspace),
    permission("trait.read", PERSONAS, Instance(TRAIT)),
    permission("trait.update", PERSONAS, Instance(TRAIT)),
    permission("trait.delete", PERSONAS, Instance(TRAIT)),
    permission("trait.create", PERSONAS, Workspace),
    permission("personas.read_settings", PERSONAS, Workspace),
    permission("personas.update_settings", PERSONAS, Workspace),
];

/// The roles, in catalog order.
pub const ROLES: [Role; 9] = [
    Role {
        name: SOURCE_ADMIN,
        product: CONNECTIONS,
        permissions: &[
            "source.read",
            "source.update",
            "source.delete",
            "source.create",
            "destination.read",
            "destination.create",
            "destination.update",
            "destination.delete",
        ],
    },
    Role {
        name: SOURCE_READ,
        product: CONNECTIONS,
        permissions: &["source.read", "destination.read"],
    },
    Role {
        name: "warehouse_admin",
        product: CONNECTIONS,
        permissions: &[
            "warehouse.read",
            "warehouse.update",
            "warehouse.delete",
            "warehouse.create",
        ],
    },
    Role {
        name: "warehouse_read",
        product: CONNECTIONS,
        permissions: &["warehouse.read"],
    },
    Role {
        name: "protocols_admin",
        product: PROTOCOLS,
        permissions: &[
            "tracking_plan.read",
            "tracking_plan.update",
            "tracking_plan.delete",
            "tracking_plan.create",
        ],
    },
    Role {
        name: "protocols_read",
        product: PROTOCOLS,
        permissions: &["tracking_plan.read"],
    },
    Role {
        name: "personas_admin",
        product: PERSONAS,
        permissions: &[
            "audience.read",
            "audience.update",
            "audience.delete",
            "audience.create",
            "trait.read",
            "trait.update",
            "trait.delete",
            "trait.create",
            "personas.read_settings",
            "personas.update_settings",
        ],
    },
    Role {
        name: "personas_user",
        product: PERSONAS,
        permissions: &[
            "audience.read",
            "audience.update",
            "audience.delete",
            "audience.create",
            "trait.read",
            "trait.update",
            "trait.delete",
            "trait.create",
            "personas.read_settings",
        ],
    },
    Role {
        name: "personas_read",
        product: PERSONAS,
        permissions: &["audience.read", "trait.read", "personas.read_settings"],
    },
];
