//! Parsing request fields into the model's types (so an invalid value cannot get past
//! the edge) and rendering decisions and grants back as messages. Every error names
//! the field it is about, with its path inside the request.

use tonic::Status;

use super::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, pb, status::invalid};
use crate::{
    engine::Check,
    model::{
        Catalog, Decision, DenialReason, Grant, InstanceKey, Membership, PermissionId, ProductSet,
        ResourceId, Scope, TypeId, UserId, WorkspaceId, catalog::Target, ids::IdError,
    },
};

/// Joins a field path: `prefix` (maybe empty) and `field`.
pub fn path(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

fn id<T>(field: &str, raw: &str, parse: fn(&str) -> Result<T, IdError>) -> Result<T, Status> {
    parse(raw).map_err(|e| invalid(field, e))
}

/// Parses a required workspace id.
pub fn workspace_id(field: &str, raw: &str) -> Result<WorkspaceId, Status> {
    id(field, raw, WorkspaceId::parse)
}

/// Parses a required user id.
pub fn user_id(field: &str, raw: &str) -> Result<UserId, Status> {
    id(field, raw, UserId::parse)
}

/// Parses an optional user id: empty means none.
pub fn optional_user_id(field: &str, raw: &str) -> Result<Option<UserId>, Status> {
    if raw.is_empty() {
        Ok(None)
    } else {
        user_id(field, raw).map(Some)
    }
}

/// Parses a required resource instance id.
pub fn resource_id(field: &str, raw: &str) -> Result<ResourceId, Status> {
    id(field, raw, ResourceId::parse)
}

/// Parses a resource type name.
pub fn resource_type(catalog: &Catalog, field: &str, raw: &str) -> Result<TypeId, Status> {
    if raw.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    catalog
        .type_id(raw)
        .ok_or_else(|| invalid(field, format_args!("unknown resource type `{raw}`")))
}

/// Parses a required resource reference.
pub fn resource(
    catalog: &Catalog,
    field: &str,
    raw: Option<&pb::ResourceRef>,
) -> Result<InstanceKey, Status> {
    let raw = raw.ok_or_else(|| invalid(field, "is required"))?;
    Ok((
        resource_type(catalog, &path(field, "type"), &raw.r#type)?,
        resource_id(&path(field, "id"), &raw.id)?,
    ))
}

/// Parses a permission name.
pub fn permission(catalog: &Catalog, field: &str, raw: &str) -> Result<PermissionId, Status> {
    if raw.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    catalog
        .permission_id(raw)
        .ok_or_else(|| invalid(field, format_args!("unknown permission `{raw}`")))
}

/// Parses the resource a permission names: absent for permissions that name the
/// workspace, an instance of the permission's type otherwise.
pub fn target(
    catalog: &Catalog,
    prefix: &str,
    permission: PermissionId,
    raw: Option<&pb::ResourceRef>,
) -> Result<Option<ResourceId>, Status> {
    let name = catalog.permission_name(permission);
    let field = path(prefix, "resource");
    let target = catalog
        .permission(permission)
        .map_or(Target::Workspace, |p| p.target);
    match (target, raw) {
        (Target::Workspace, None) => Ok(None),
        (Target::Workspace, Some(_)) => Err(invalid(
            &field,
            format_args!("`{name}` names the workspace itself; omit `resource`"),
        )),
        (Target::Instance(ty), None) => Err(invalid(
            &field,
            format_args!("`{name}` needs a `{}` instance", catalog.type_name(ty)),
        )),
        (Target::Instance(ty), Some(raw)) => {
            let given = resource_type(catalog, &path(&field, "type"), &raw.r#type)?;
            if given != ty {
                return Err(invalid(
                    &path(&field, "type"),
                    format_args!(
                        "`{name}` applies to `{}`, not `{}`",
                        catalog.type_name(ty),
                        raw.r#type
                    ),
                ));
            }
            resource_id(&path(&field, "id"), &raw.id).map(Some)
        }
    }
}

/// Parses a check request; `item` is its index in a BatchCheck's `checks`, if it is one.
///
/// This is the hot path of every check, so the well-formed case builds no field path
/// and resolves no name twice; only a malformed request pays for its precise message.
pub fn check(
    catalog: &Catalog,
    item: Option<usize>,
    raw: &pb::CheckRequest,
) -> Result<(WorkspaceId, Check), Status> {
    let prefix = || item.map_or_else(String::new, |i| format!("checks[{i}]"));
    let at = |field: &str| path(&prefix(), field);
    let workspace =
        WorkspaceId::parse(&raw.workspace_id).map_err(|e| invalid(&at("workspace_id"), e))?;
    let user = UserId::parse(&raw.user_id).map_err(|e| invalid(&at("user_id"), e))?;
    let permission = match catalog.permission_id(&raw.permission) {
        Some(permission) => permission,
        None => permission(catalog, &at("permission"), &raw.permission)?,
    };
    let target_type = catalog.permission(permission).map(|p| p.target);
    let resource = match (target_type, raw.resource.as_ref()) {
        (Some(Target::Workspace), None) => None,
        (Some(Target::Instance(ty)), Some(given)) if catalog.type_id(&given.r#type) == Some(ty) => {
            match ResourceId::parse(&given.id) {
                Ok(id) => Some(id),
                Err(e) => return Err(invalid(&at("resource.id"), e)),
            }
        }
        _ => target(catalog, &prefix(), permission, raw.resource.as_ref())?,
    };
    Ok((
        workspace,
        Check {
            user,
            permission,
            resource,
        },
    ))
}

/// Parses a role name.
pub fn role(catalog: &Catalog, field: &str, raw: &str) -> Result<crate::model::RoleId, Status> {
    if raw.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    catalog
        .role_id(raw)
        .ok_or_else(|| invalid(field, format_args!("unknown role `{raw}`")))
}

/// Parses a grant's scope.
pub fn scope(catalog: &Catalog, field: &str, raw: Option<&pb::Scope>) -> Result<Scope, Status> {
    match raw.and_then(|s| s.kind.as_ref()) {
        None => Err(invalid(field, "is required: `all` or `instance`")),
        Some(pb::scope::Kind::All(_)) => Ok(Scope::All),
        Some(pb::scope::Kind::Instance(instance)) => {
            let (ty, id) = resource(catalog, &path(field, "instance"), Some(instance))?;
            Ok(Scope::Instance(ty, id))
        }
    }
}

/// Parses a membership.
pub fn membership(field: &str, raw: i32) -> Result<Membership, Status> {
    match pb::Membership::try_from(raw) {
        Ok(pb::Membership::Owner) => Ok(Membership::Owner),
        Ok(pb::Membership::Member) => Ok(Membership::Member),
        _ => Err(invalid(
            field,
            "must be `MEMBERSHIP_OWNER` or `MEMBERSHIP_MEMBER`",
        )),
    }
}

/// Parses product names.
pub fn products(catalog: &Catalog, field: &str, raw: &[String]) -> Result<ProductSet, Status> {
    raw.iter()
        .enumerate()
        .try_fold(ProductSet::default(), |set, (i, name)| {
            catalog
                .product_id(name)
                .map(|p| set.with(p))
                .ok_or_else(|| {
                    invalid(
                        &format!("{field}[{i}]"),
                        format_args!("unknown product `{name}`"),
                    )
                })
        })
}

/// Parses a page size: 0 means the default.
pub fn page_size(field: &str, raw: u32) -> Result<usize, Status> {
    match usize::try_from(raw) {
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(size) if size <= MAX_PAGE_SIZE => Ok(size),
        _ => Err(invalid(
            field,
            format_args!("must be at most {MAX_PAGE_SIZE}, got {raw}"),
        )),
    }
}

/// A membership as a message enum value.
pub fn membership_message(membership: Membership) -> pb::Membership {
    match membership {
        Membership::Owner => pb::Membership::Owner,
        Membership::Member => pb::Membership::Member,
    }
}

/// A scope as a message.
pub fn scope_message(catalog: &Catalog, scope: &Scope) -> pb::Scope {
    pb::Scope {
        kind: Some(match scope {
            Scope::All => pb::scope::Kind::All(pb::AllInstances {}),
            Scope::Instance(ty, id) => pb::scope::Kind::Instance(pb::ResourceRef {
                r#type: catalog.type_name(*ty).to_owned(),
                id: id.to_string(),
            }),
        }),
    }
}

/// A grant as a message.
pub fn grant_message(catalog: &Catalog, user: &UserId, grant: &Grant) -> pb::Grant {
    pb::Grant {
        user_id: user.to_string(),
        role: catalog.role_name(grant.role).to_owned(),
        scope: Some(scope_message(catalog, &grant.scope)),
    }
}

fn scope_text(catalog: &Catalog, scope: &Scope) -> String {
    match scope {
        Scope::All => "all instances".to_owned(),
        Scope::Instance(ty, id) => format!("{} `{id}`", catalog.type_name(*ty)),
    }
}

/// A decision as a message, with its explanation.
pub fn decision_message(
    catalog: &Catalog,
    workspace: &WorkspaceId,
    check: &Check,
    decision: &Decision,
) -> pb::Decision {
    use pb::decision::Basis;
    let user = &check.user;
    let permission = catalog.permission_name(check.permission);
    let (basis, explanation) = match decision {
        Decision::AllowedByMembership(Membership::Owner) => (
            Basis::Membership(pb::Membership::Owner.into()),
            format!("allowed: `{user}` owns workspace `{workspace}`"),
        ),
        Decision::AllowedByMembership(Membership::Member) => (
            Basis::Membership(pb::Membership::Member.into()),
            format!("allowed: every member of workspace `{workspace}` holds `{permission}`"),
        ),
        Decision::AllowedByGrant(grant) => (
            Basis::Grant(grant_message(catalog, user, grant)),
            format!(
                "allowed: `{user}` holds `{}` on {}",
                catalog.role_name(grant.role),
                scope_text(catalog, &grant.scope)
            ),
        ),
        Decision::Denied(reason) => {
            let (reason_message, text) = match reason {
                DenialReason::NotAMember => (
                    pb::DenialReason::NotAMember,
                    format!("denied: `{user}` is not a member of workspace `{workspace}`"),
                ),
                DenialReason::NoCoveringGrant => (
                    pb::DenialReason::NoCoveringGrant,
                    format!("denied: no grant of `{user}` covers `{permission}` here"),
                ),
                DenialReason::ProductNotEnabled => {
                    let product = catalog
                        .permission(check.permission)
                        .map_or("?", |p| catalog.product_name(p.product));
                    (
                        pb::DenialReason::ProductNotEnabled,
                        format!(
                            "denied: workspace `{workspace}` does not have product `{product}`"
                        ),
                    )
                }
                DenialReason::ResourceNotRegistered => (
                    pb::DenialReason::ResourceNotRegistered,
                    format!(
                        "denied: `{}` is not registered in workspace `{workspace}`",
                        check.resource.as_ref().map_or("?", |r| r.as_str())
                    ),
                ),
            };
            (Basis::Denial(reason_message.into()), text)
        }
    };
    pb::Decision {
        allowed: decision.allowed(),
        basis: Some(basis),
        explanation,
    }
}
