//! The role catalog: products, resource types, permissions and roles, loaded from data
//! (the built-in `catalog.toml` or an operator's file) and validated once. Everything
//! the engine knows about names comes from here; it resolves names to small indexes so
//! that decisions compare integers, not strings.

mod parse;
#[cfg(test)]
mod tests;

pub use parse::CatalogError;

use std::collections::BTreeMap;

/// Name lookups happen on every check; names come from the catalog file and requests
/// are validated against them, so a fast seeded hash is enough.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use serde::Deserialize;

use super::membership::Membership;

/// The built-in catalog: the tables of the access model.
pub const BUILT_IN: &str = include_str!("catalog.toml");

/// Index of a product in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProductId(u8);

/// Index of a resource type in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(u8);

impl TypeId {
    /// The type's place in the catalog, from 0: an index for tables by type.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// The type at `index` in a catalog (whether the catalog has one or not): for
    /// tables by type to name their slots, not for ids from outside.
    pub(crate) fn at(index: usize) -> Option<Self> {
        u8::try_from(index).ok().map(Self)
    }
}

/// Index of a permission in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PermissionId(u16);

/// Index of a role in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleId(u16);

/// The most levels of resource types (an instance, its parent, its parent's parent...).
/// The catalog refuses deeper hierarchies, so walks up or down an instance's lineage
/// never need more steps than this.
pub const MAX_TYPE_DEPTH: usize = 16;

/// The most products a catalog may define: enabled products are a 64-bit set.
pub const MAX_PRODUCTS: usize = 64;

/// A set of products, such as the ones a workspace has enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ProductSet(u64);

impl ProductSet {
    /// Whether `product` is in the set.
    pub fn contains(self, product: ProductId) -> bool {
        self.0 & (1 << product.0) != 0
    }

    /// The set with `product` added.
    #[must_use]
    pub fn with(self, product: ProductId) -> Self {
        Self(self.0 | (1 << product.0))
    }

    /// The products in either set.
    #[must_use]
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The products in the set, in catalog order.
    pub fn iter(self) -> impl Iterator<Item = ProductId> {
        (0..MAX_PRODUCTS as u8)
            .map(ProductId)
            .filter(move |p| self.contains(*p))
    }
}

/// A product, such as `personas`.
#[derive(Debug, Clone)]
pub struct Product {
    /// Its name.
    pub name: String,
    /// Whether every workspace has it, whatever it asks for.
    pub always_enabled: bool,
}

/// A resource type, such as `destination`.
#[derive(Debug, Clone)]
pub struct ResourceType {
    /// Its name.
    pub name: String,
    /// The product its instances belong to.
    pub product: ProductId,
    /// The type of its parent instance, whose grants cover it.
    pub parent: Option<TypeId>,
}

/// What a check of a permission names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The workspace itself: no instance, and only all-scope grants cover it.
    Workspace,
    /// An instance of this type.
    Instance(TypeId),
}

/// A permission, such as `source.update`.
#[derive(Debug, Clone)]
pub struct Permission {
    /// Its name, `type.action`.
    pub name: String,
    /// The product it belongs to: it is denied to everyone where that product is disabled.
    pub product: ProductId,
    /// What a check of it names.
    pub target: Target,
    /// Whether every member of a workspace holds it.
    pub every_member: bool,
}

/// The scopes a grant can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeKind {
    /// One instance of the role's scope type.
    Instance,
    /// All current and future instances.
    All,
}

/// A role, such as `source_admin`.
#[derive(Debug, Clone)]
pub struct Role {
    /// Its name.
    pub name: String,
    /// The product it belongs to: it cannot be granted, and gives nothing, where that
    /// product is disabled.
    pub product: ProductId,
    /// The type a grant scoped to one instance names, if the role accepts that scope.
    pub scope_type: Option<TypeId>,
    /// Whether the role accepts the all-instances scope.
    pub accepts_all: bool,
    /// The permissions it allows, indexed by permission.
    allows: Vec<bool>,
}

impl Role {
    /// Whether the role allows `permission`.
    pub fn allows(&self, permission: PermissionId) -> bool {
        self.allows
            .get(usize::from(permission.0))
            .copied()
            .unwrap_or(false)
    }

    /// Whether the role accepts grants of this scope kind.
    pub fn accepts(&self, kind: ScopeKind) -> bool {
        match kind {
            ScopeKind::All => self.accepts_all,
            ScopeKind::Instance => self.scope_type.is_some(),
        }
    }
}

/// A validated role catalog with name lookups.
#[derive(Debug, Clone)]
pub struct Catalog {
    products: Vec<Product>,
    types: Vec<ResourceType>,
    permissions: Vec<Permission>,
    roles: Vec<Role>,
    product_by_name: HashMap<String, ProductId>,
    type_by_name: HashMap<String, TypeId>,
    permission_by_name: HashMap<String, PermissionId>,
    role_by_name: HashMap<String, RoleId>,
    legacy: BTreeMap<String, LegacyRole>,
}

impl Catalog {
    /// The product named `name`.
    pub fn product_id(&self, name: &str) -> Option<ProductId> {
        self.product_by_name.get(name).copied()
    }

    /// The resource type named `name`.
    pub fn type_id(&self, name: &str) -> Option<TypeId> {
        self.type_by_name.get(name).copied()
    }

    /// The permission named `name`.
    pub fn permission_id(&self, name: &str) -> Option<PermissionId> {
        self.permission_by_name.get(name).copied()
    }

    /// The role named `name`.
    pub fn role_id(&self, name: &str) -> Option<RoleId> {
        self.role_by_name.get(name).copied()
    }

    /// The product with index `id`.
    pub fn product(&self, id: ProductId) -> Option<&Product> {
        self.products.get(usize::from(id.0))
    }

    /// The resource type with index `id`.
    pub fn resource_type(&self, id: TypeId) -> Option<&ResourceType> {
        self.types.get(usize::from(id.0))
    }

    /// The permission with index `id`.
    pub fn permission(&self, id: PermissionId) -> Option<&Permission> {
        self.permissions.get(usize::from(id.0))
    }

    /// The role with index `id`.
    pub fn role(&self, id: RoleId) -> Option<&Role> {
        self.roles.get(usize::from(id.0))
    }

    /// Every product with its index, in catalog order.
    pub fn products(&self) -> impl Iterator<Item = (ProductId, &Product)> {
        (0u8..).map(ProductId).zip(&self.products)
    }

    /// Every resource type with its index, in catalog order.
    pub fn resource_types(&self) -> impl Iterator<Item = (TypeId, &ResourceType)> {
        (0u8..).map(TypeId).zip(&self.types)
    }

    /// Every permission with its index, in catalog order.
    pub fn permissions(&self) -> impl Iterator<Item = (PermissionId, &Permission)> {
        (0u16..).map(PermissionId).zip(&self.permissions)
    }

    /// Every role with its index, in catalog order.
    pub fn roles(&self) -> impl Iterator<Item = (RoleId, &Role)> {
        (0u16..).map(RoleId).zip(&self.roles)
    }

    /// The products every workspace has.
    pub fn always_enabled(&self) -> ProductSet {
        self.products()
            .filter(|(_, p)| p.always_enabled)
            .fold(ProductSet::default(), |set, (id, _)| set.with(id))
    }

    /// The name of a product, for messages.
    pub fn product_name(&self, id: ProductId) -> &str {
        self.product(id).map_or("?", |p| p.name.as_str())
    }

    /// The name of a resource type, for messages.
    pub fn type_name(&self, id: TypeId) -> &str {
        self.resource_type(id).map_or("?", |t| t.name.as_str())
    }

    /// The name of a role, for messages and storage.
    pub fn role_name(&self, id: RoleId) -> &str {
        self.role(id).map_or("?", |r| r.name.as_str())
    }

    /// The name of a permission, for messages.
    pub fn permission_name(&self, id: PermissionId) -> &str {
        self.permission(id).map_or("?", |p| p.name.as_str())
    }

    /// The parent type of `id`, if instances of it have a parent.
    pub fn parent_type(&self, id: TypeId) -> Option<TypeId> {
        self.resource_type(id).and_then(|t| t.parent)
    }

    /// What each legacy role becomes, by legacy role name (empty if the catalog has no
    /// `[legacy]` table).
    pub fn legacy(&self) -> &BTreeMap<String, LegacyRole> {
        &self.legacy
    }
}

/// What a legacy role becomes: a membership and grants. Grants whose role's product a
/// workspace lacks are skipped when migrating it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyRole {
    /// The membership it gives.
    pub membership: Membership,
    /// The grants it gives; none for owners, who need none.
    pub grants: Vec<LegacyGrant>,
    /// The type of the instance an assignment of it names (a collaborator's source), if
    /// any of its grants is scoped to that instance.
    pub instance_type: Option<TypeId>,
}

/// A grant a legacy role becomes: a role, scoped to all instances or to the instance
/// the legacy assignment names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyGrant {
    /// The role.
    pub role: RoleId,
    /// All instances, or the assignment's instance.
    pub scope: ScopeKind,
}
