//! The role catalog: products, resource types, permissions and roles, loaded from data
//! (the built-in `catalog.toml` or an operator's file) and validated once. Everything
//! the engine knows about names comes from here; it resolves names to small indexes so
//! that decisions compare integers, not strings.

use std::collections::BTreeMap;

/// Name lookups happen on every check; names come from the catalog file and requests
/// are validated against them, so a fast seeded hash is enough.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use serde::Deserialize;

use super::workspace::Membership;

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

/// Why a catalog file is not a valid catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file is not valid TOML of the catalog's shape.
    #[error("catalog is not valid: {0}")]
    Syntax(#[from] toml::de::Error),
    /// A name is defined twice.
    #[error("{kind} `{name}` is defined twice")]
    Duplicate {
        /// Product, resource type, permission or role.
        kind: &'static str,
        /// The duplicated name.
        name: String,
    },
    /// A name refers to nothing defined.
    #[error("{context}: unknown {kind} `{name}`")]
    Unknown {
        /// Where the name was used.
        context: String,
        /// What kind of name it should be.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// Some other rule of the catalog's shape is broken.
    #[error("{0}")]
    Invalid(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    products: Vec<ProductEntry>,
    resource_types: Vec<TypeEntry>,
    permissions: Vec<PermissionEntry>,
    roles: Vec<RoleEntry>,
    #[serde(default)]
    legacy: BTreeMap<String, LegacyEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductEntry {
    name: String,
    #[serde(default)]
    always_enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypeEntry {
    name: String,
    product: String,
    parent: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PermissionEntry {
    name: String,
    product: String,
    names: String,
    #[serde(default)]
    every_member: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleEntry {
    name: String,
    product: String,
    scope_type: Option<String>,
    scopes: Vec<ScopeKind>,
    permissions: Vec<String>,
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

fn index_names<'a, I, T>(
    kind: &'static str,
    names: impl Iterator<Item = &'a String>,
    make: impl Fn(I) -> T,
) -> Result<HashMap<String, T>, CatalogError>
where
    I: TryFrom<usize>,
{
    let mut map = HashMap::default();
    for (i, name) in names.enumerate() {
        // Names are stored in the database, between separators (NUL, newline, comma, and
        // 0x1E between records) that must never occur inside one.
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return Err(CatalogError::Invalid(format!(
                "{kind} `{}`: a name is printable ASCII, without spaces or commas",
                name.escape_debug()
            )));
        }
        let index = I::try_from(i)
            .map_err(|_| CatalogError::Invalid(format!("too many {kind}s in the catalog")))?;
        if map.insert(name.clone(), make(index)).is_some() {
            return Err(CatalogError::Duplicate {
                kind,
                name: name.clone(),
            });
        }
    }
    Ok(map)
}

fn resolve<T: Copy>(
    map: &HashMap<String, T>,
    kind: &'static str,
    name: &str,
    context: impl FnOnce() -> String,
) -> Result<T, CatalogError> {
    map.get(name).copied().ok_or_else(|| CatalogError::Unknown {
        context: context(),
        kind,
        name: name.to_owned(),
    })
}

impl Catalog {
    /// The built-in catalog of the access model.
    pub fn built_in() -> Self {
        // The built-in file is tested to parse; an empty catalog (which denies
        // everything but owners' and members' implicit rights) is the fail-closed fallback.
        Self::parse(BUILT_IN).unwrap_or_else(|_| Self::empty())
    }

    fn empty() -> Self {
        Self {
            products: Vec::new(),
            types: Vec::new(),
            permissions: Vec::new(),
            roles: Vec::new(),
            product_by_name: HashMap::default(),
            type_by_name: HashMap::default(),
            permission_by_name: HashMap::default(),
            role_by_name: HashMap::default(),
            legacy: BTreeMap::new(),
        }
    }

    /// Parses and validates a catalog written in the shape of the built-in `catalog.toml`.
    pub fn parse(text: &str) -> Result<Self, CatalogError> {
        let file: CatalogFile = toml::from_str(text)?;
        if file.products.len() > MAX_PRODUCTS {
            return Err(CatalogError::Invalid(format!(
                "a catalog has at most {MAX_PRODUCTS} products"
            )));
        }
        let product_by_name =
            index_names("product", file.products.iter().map(|p| &p.name), ProductId)?;
        let type_by_name = index_names(
            "resource type",
            file.resource_types.iter().map(|t| &t.name),
            TypeId,
        )?;
        if type_by_name.contains_key("workspace") {
            return Err(CatalogError::Invalid(
                "`workspace` is reserved and cannot be a resource type".into(),
            ));
        }
        let permission_by_name = index_names(
            "permission",
            file.permissions.iter().map(|p| &p.name),
            PermissionId,
        )?;
        let role_by_name = index_names("role", file.roles.iter().map(|r| &r.name), RoleId)?;

        let products = file
            .products
            .into_iter()
            .map(|p| Product {
                name: p.name,
                always_enabled: p.always_enabled,
            })
            .collect();

        let mut types = Vec::with_capacity(file.resource_types.len());
        for t in &file.resource_types {
            let context = || format!("resource type `{}`", t.name);
            let product = resolve(&product_by_name, "product", &t.product, context)?;
            let parent = match &t.parent {
                Some(parent) => Some(resolve(&type_by_name, "resource type", parent, context)?),
                None => None,
            };
            types.push(ResourceType {
                name: t.name.clone(),
                product,
                parent,
            });
        }
        check_parents_acyclic(&types)?;

        let mut permissions = Vec::with_capacity(file.permissions.len());
        for p in &file.permissions {
            let context = || format!("permission `{}`", p.name);
            let product = resolve(&product_by_name, "product", &p.product, context)?;
            let target = if p.names == "workspace" {
                Target::Workspace
            } else {
                Target::Instance(resolve(&type_by_name, "resource type", &p.names, context)?)
            };
            permissions.push(Permission {
                name: p.name.clone(),
                product,
                target,
                every_member: p.every_member,
            });
        }

        let mut roles = Vec::with_capacity(file.roles.len());
        for r in &file.roles {
            let context = || format!("role `{}`", r.name);
            let product = resolve(&product_by_name, "product", &r.product, context)?;
            let scope_type = match &r.scope_type {
                Some(name) => Some(resolve(&type_by_name, "resource type", name, context)?),
                None => None,
            };
            if r.scopes.is_empty() {
                return Err(CatalogError::Invalid(format!(
                    "role `{}` accepts no scope",
                    r.name
                )));
            }
            let accepts_instance = r.scopes.contains(&ScopeKind::Instance);
            if accepts_instance != scope_type.is_some() {
                return Err(CatalogError::Invalid(format!(
                    "role `{}` must have a `scope_type` exactly when it accepts the `instance` scope",
                    r.name
                )));
            }
            let mut allows = vec![false; permissions.len()];
            for name in &r.permissions {
                let id = resolve(&permission_by_name, "permission", name, context)?;
                let permission = permissions
                    .get(usize::from(id.0))
                    .ok_or_else(|| CatalogError::Invalid(format!("permission `{name}`")))?;
                if permission.product != product {
                    return Err(CatalogError::Invalid(format!(
                        "role `{}` lists permission `{name}` of another product",
                        r.name
                    )));
                }
                if permission.every_member {
                    return Err(CatalogError::Invalid(format!(
                        "role `{}` lists `{name}`, which every member already holds",
                        r.name
                    )));
                }
                if name.starts_with("workspace.") {
                    return Err(CatalogError::Invalid(format!(
                        "role `{}` lists `{name}`, which is reserved to owners",
                        r.name
                    )));
                }
                if let Some(flag) = allows.get_mut(usize::from(id.0)) {
                    *flag = true;
                }
            }
            roles.push(Role {
                name: r.name.clone(),
                product,
                scope_type,
                accepts_all: r.scopes.contains(&ScopeKind::All),
                allows,
            });
        }

        let legacy = parse_legacy(&file.legacy, &role_by_name, &roles)?;

        Ok(Self {
            products,
            types,
            permissions,
            roles,
            product_by_name,
            type_by_name,
            permission_by_name,
            role_by_name,
            legacy,
        })
    }

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyEntry {
    membership: LegacyMembership,
    #[serde(default)]
    grants: Vec<LegacyGrantEntry>,
}

#[derive(Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum LegacyMembership {
    Owner,
    Member,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyGrantEntry {
    role: String,
    scope: ScopeKind,
}

fn parse_legacy(
    entries: &BTreeMap<String, LegacyEntry>,
    role_by_name: &HashMap<String, RoleId>,
    roles: &[Role],
) -> Result<BTreeMap<String, LegacyRole>, CatalogError> {
    let mut legacy = BTreeMap::new();
    for (name, entry) in entries {
        let context = || format!("legacy role `{name}`");
        if entry.membership == LegacyMembership::Owner && !entry.grants.is_empty() {
            return Err(CatalogError::Invalid(format!(
                "legacy role `{name}` makes owners, who need no grants"
            )));
        }
        let mut grants = Vec::with_capacity(entry.grants.len());
        let mut instance_type = None;
        for grant in &entry.grants {
            let id = resolve(role_by_name, "role", &grant.role, context)?;
            let role = roles
                .get(usize::from(id.0))
                .ok_or_else(|| CatalogError::Invalid(format!("role `{}`", grant.role)))?;
            if !role.accepts(grant.scope) {
                let scope = match grant.scope {
                    ScopeKind::All => "all",
                    ScopeKind::Instance => "instance",
                };
                return Err(CatalogError::Invalid(format!(
                    "legacy role `{name}`: role `{}` does not accept the `{scope}` scope",
                    grant.role
                )));
            }
            if grant.scope == ScopeKind::Instance {
                if instance_type.is_some_and(|ty| Some(ty) != role.scope_type) {
                    return Err(CatalogError::Invalid(format!(
                        "legacy role `{name}` scopes grants to instances of two types"
                    )));
                }
                instance_type = role.scope_type;
            }
            grants.push(LegacyGrant {
                role: id,
                scope: grant.scope,
            });
        }
        let membership = match entry.membership {
            LegacyMembership::Owner => Membership::Owner,
            LegacyMembership::Member => Membership::Member,
        };
        legacy.insert(
            name.clone(),
            LegacyRole {
                membership,
                grants,
                instance_type,
            },
        );
    }
    Ok(legacy)
}

fn check_parents_acyclic(types: &[ResourceType]) -> Result<(), CatalogError> {
    for (start, t) in types.iter().enumerate() {
        let mut seen = 0;
        let mut parent = t.parent;
        while let Some(TypeId(p)) = parent {
            seen += 1;
            if seen > types.len() || usize::from(p) == start {
                return Err(CatalogError::Invalid(format!(
                    "resource type `{}` is its own ancestor",
                    t.name
                )));
            }
            if seen >= MAX_TYPE_DEPTH {
                return Err(CatalogError::Invalid(format!(
                    "resource type `{}` has more than {MAX_TYPE_DEPTH} levels of parents",
                    t.name
                )));
            }
            parent = types.get(usize::from(p)).and_then(|t| t.parent);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_catalog_parses() {
        let catalog = Catalog::parse(BUILT_IN).expect("built-in catalog");
        assert_eq!(catalog.roles().count(), 9);
        assert!(catalog.role_id("source_admin").is_some());
        assert_eq!(
            catalog.always_enabled().iter().count(),
            1,
            "only connections is always enabled"
        );
    }

    #[test]
    fn duplicate_roles_are_rejected() {
        let text = format!(
            "{BUILT_IN}\n[[roles]]\nname = \"source_read\"\nproduct = \"connections\"\nscopes = [\"all\"]\npermissions = []\n"
        );
        let err = Catalog::parse(&text).expect_err("duplicate");
        assert_eq!(err.to_string(), "role `source_read` is defined twice");
    }

    #[test]
    fn names_that_would_break_the_stored_records_are_rejected() {
        // As TOML strings.
        for bad in [
            r#""source admin""#,
            r#""source,admin""#,
            r#""source\u001Eadmin""#,
            r#""""#,
        ] {
            let text = BUILT_IN.replace("name = \"source_read\"", &format!("name = {bad}"));
            let err = Catalog::parse(&text).expect_err(bad);
            assert!(err.to_string().contains("printable ASCII"), "{err}");
        }
    }

    #[test]
    fn unknown_permissions_in_roles_are_rejected() {
        let text = BUILT_IN.replace("\"warehouse.read\"]", "\"warehouse.peek\"]");
        let err = Catalog::parse(&text).expect_err("unknown permission");
        assert_eq!(
            err.to_string(),
            "role `warehouse_read`: unknown permission `warehouse.peek`"
        );
    }

    #[test]
    fn roles_without_scopes_are_rejected() {
        let text = BUILT_IN.replace(
            "scopes = [\"all\"]\npermissions = [\"warehouse.read\"]",
            "scopes = []\npermissions = [\"warehouse.read\"]",
        );
        let err = Catalog::parse(&text).expect_err("no scope");
        assert_eq!(err.to_string(), "role `warehouse_read` accepts no scope");
    }

    #[test]
    fn owner_only_permissions_cannot_be_given_to_roles() {
        let text = BUILT_IN.replace(
            "permissions = [\"warehouse.read\"]",
            "permissions = [\"warehouse.read\", \"workspace.manage_access\"]",
        );
        let err = Catalog::parse(&text).expect_err("owner only");
        assert!(err.to_string().contains("reserved to owners"), "{err}");
    }

    #[test]
    fn hierarchies_deeper_than_the_bound_are_rejected() {
        let mut text = BUILT_IN.to_owned();
        for level in 0..MAX_TYPE_DEPTH {
            let parent = if level == 0 {
                "source".to_owned()
            } else {
                format!("level{}", level - 1)
            };
            text.push_str(&format!(
                "\n[[resource_types]]\nname = \"level{level}\"\nproduct = \"connections\"\nparent = \"{parent}\"\n"
            ));
        }
        let err = Catalog::parse(&text).expect_err("too deep");
        assert!(err.to_string().contains("levels of parents"), "{err}");
    }

    #[test]
    fn unknown_resource_types_are_rejected() {
        let text = BUILT_IN.replace("names = \"trait\"", "names = \"traits\"");
        let err = Catalog::parse(&text).expect_err("unknown type");
        assert!(
            err.to_string().contains("unknown resource type `traits`"),
            "{err}"
        );
    }

    #[test]
    fn the_built_in_legacy_table_maps_the_three_legacy_roles() {
        let catalog = Catalog::parse(BUILT_IN).expect("built-in catalog");
        let legacy = catalog.legacy();
        assert_eq!(
            legacy.keys().collect::<Vec<_>>(),
            [
                "source_collaborator",
                "workspace_owner",
                "workspace_read_only"
            ]
        );
        let collaborator = &legacy["source_collaborator"];
        assert_eq!(collaborator.membership, Membership::Member);
        assert_eq!(collaborator.instance_type, catalog.type_id("source"));
        assert_eq!(
            collaborator.grants,
            [LegacyGrant {
                role: catalog.role_id("source_admin").expect("role"),
                scope: ScopeKind::Instance,
            }]
        );
        assert_eq!(legacy["workspace_owner"].membership, Membership::Owner);
        assert_eq!(legacy["workspace_read_only"].grants.len(), 3);
        assert_eq!(legacy["workspace_read_only"].instance_type, None);
    }

    #[test]
    fn a_catalog_without_a_legacy_table_has_no_legacy_roles() {
        let end = BUILT_IN.find("[legacy.").expect("legacy table");
        let catalog = Catalog::parse(&BUILT_IN[..end]).expect("catalog");
        assert!(catalog.legacy().is_empty());
    }

    #[test]
    fn legacy_grants_of_unknown_roles_are_rejected() {
        let text = BUILT_IN.replace("{ role = \"warehouse_read\"", "{ role = \"warehouse_peek\"");
        let err = Catalog::parse(&text).expect_err("unknown role");
        assert_eq!(
            err.to_string(),
            "legacy role `workspace_read_only`: unknown role `warehouse_peek`"
        );
    }

    #[test]
    fn legacy_grants_in_a_scope_their_role_does_not_accept_are_rejected() {
        let text = BUILT_IN.replace(
            "{ role = \"warehouse_read\", scope = \"all\" }",
            "{ role = \"warehouse_read\", scope = \"instance\" }",
        );
        let err = Catalog::parse(&text).expect_err("scope");
        assert_eq!(
            err.to_string(),
            "legacy role `workspace_read_only`: role `warehouse_read` does not accept the `instance` scope"
        );
    }

    #[test]
    fn legacy_owners_with_grants_are_rejected() {
        let text = BUILT_IN.replace(
            "membership = \"owner\"\n",
            "membership = \"owner\"\ngrants = [{ role = \"source_read\", scope = \"all\" }]\n",
        );
        let err = Catalog::parse(&text).expect_err("owner grants");
        assert!(err.to_string().contains("need no grants"), "{err}");
    }

    #[test]
    fn legacy_memberships_other_than_owner_or_member_are_rejected() {
        let text = BUILT_IN.replace("membership = \"owner\"\n", "membership = \"admin\"\n");
        let err = Catalog::parse(&text).expect_err("membership");
        assert!(err.to_string().contains("unknown variant `admin`"), "{err}");
    }
}
