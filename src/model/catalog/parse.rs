//! Loading a catalog, the built-in one or an operator's: the shape of its TOML file, and
//! the checks that make the file a valid [`Catalog`] or say, in a [`CatalogError`], why not.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{
    BUILT_IN, Catalog, HashMap, LegacyGrant, LegacyRole, MAX_PRODUCTS, MAX_TYPE_DEPTH, Permission,
    PermissionId, Product, ProductId, ResourceType, Role, RoleId, ScopeKind, Target, TypeId,
};
use crate::model::membership::Membership;

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
