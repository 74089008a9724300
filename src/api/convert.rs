//! Parsing request fields into the model's types (so an invalid value cannot get past
//! the edge) and rendering decisions and grants back as messages. Every error names
//! the field it is about, with its path inside the request.

use tonic::Status;

use super::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, status::invalid};
use crate::proto;
use crate::{
    engine::check::CheckRef,
    model::{
        Catalog, DenialReason, Grant, InstanceKey, Membership, PermissionId, ProductSet,
        ResourceId, Scope, TypeId, UserId, WorkspaceId,
        catalog::Target,
        decision::DecisionRef,
        ids::{self, IdError},
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
    raw: Option<&proto::ResourceRef>,
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
    raw: Option<&proto::ResourceRef>,
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
/// The workspace id and the check borrow their ids from `raw`.
///
/// This is the hot path of every check, so the well-formed case builds no field path,
/// copies no id and resolves no name twice; only a malformed request pays for its
/// precise message.
pub fn check<'a>(
    catalog: &Catalog,
    item: Option<usize>,
    raw: &'a proto::CheckRequest,
) -> Result<(&'a str, CheckRef<'a>), Status> {
    let prefix = || item.map_or_else(String::new, |i| format!("checks[{i}]"));
    let at = |field: &str| path(&prefix(), field);
    ids::validate(&raw.workspace_id).map_err(|e| invalid(&at("workspace_id"), e))?;
    ids::validate(&raw.user_id).map_err(|e| invalid(&at("user_id"), e))?;
    let permission = match catalog.permission_id(&raw.permission) {
        Some(permission) => permission,
        None => permission(catalog, &at("permission"), &raw.permission)?,
    };
    let target_type = catalog.permission(permission).map(|p| p.target);
    let resource = match (target_type, raw.resource.as_ref()) {
        (Some(Target::Workspace), None) => None,
        (Some(Target::Instance(ty)), Some(given)) if is_type(catalog, ty, &given.r#type) => {
            match ids::validate(&given.id) {
                Ok(()) => Some(given.id.as_str()),
                Err(e) => return Err(invalid(&at("resource.id"), e)),
            }
        }
        // Every other combination is malformed and `target` says how (were one accepted,
        // its id would be the request's).
        _ => target(catalog, &prefix(), permission, raw.resource.as_ref())?
            .and(raw.resource.as_ref().map(|given| given.id.as_str())),
    };
    Ok((
        &raw.workspace_id,
        CheckRef {
            user: &raw.user_id,
            permission,
            resource,
        },
    ))
}

/// Whether `name` names the resource type `ty`: one comparison, where `type_id` hashes.
fn is_type(catalog: &Catalog, ty: TypeId, name: &str) -> bool {
    catalog.resource_type(ty).is_some_and(|t| t.name == name)
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
pub fn scope(catalog: &Catalog, field: &str, raw: Option<&proto::Scope>) -> Result<Scope, Status> {
    match raw.and_then(|s| s.kind.as_ref()) {
        None => Err(invalid(field, "is required: `all` or `instance`")),
        Some(proto::scope::Kind::All(_)) => Ok(Scope::All),
        Some(proto::scope::Kind::Instance(instance)) => {
            let (ty, id) = resource(catalog, &path(field, "instance"), Some(instance))?;
            Ok(Scope::Instance(ty, id))
        }
    }
}

/// Parses a membership.
pub fn membership(field: &str, raw: i32) -> Result<Membership, Status> {
    match proto::Membership::try_from(raw) {
        Ok(proto::Membership::Owner) => Ok(Membership::Owner),
        Ok(proto::Membership::Member) => Ok(Membership::Member),
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
pub fn membership_message(membership: Membership) -> proto::Membership {
    match membership {
        Membership::Owner => proto::Membership::Owner,
        Membership::Member => proto::Membership::Member,
    }
}

/// A resource instance as a message.
pub fn resource_message(catalog: &Catalog, ty: TypeId, id: &ResourceId) -> proto::ResourceRef {
    proto::ResourceRef {
        r#type: catalog.type_name(ty).to_owned(),
        id: id.as_str().to_owned(),
    }
}

/// A scope as a message.
pub fn scope_message(catalog: &Catalog, scope: &Scope) -> proto::Scope {
    proto::Scope {
        kind: Some(match scope {
            Scope::All => proto::scope::Kind::All(proto::AllInstances {}),
            Scope::Instance(ty, id) => {
                proto::scope::Kind::Instance(resource_message(catalog, *ty, id))
            }
        }),
    }
}

/// A grant as a message.
pub fn grant_message(catalog: &Catalog, user: &UserId, grant: &Grant) -> proto::Grant {
    user_grant_message(catalog, user.as_str(), grant)
}

fn user_grant_message(catalog: &Catalog, user: &str, grant: &Grant) -> proto::Grant {
    proto::Grant {
        user_id: user.to_owned(),
        role: catalog.role_name(grant.role).to_owned(),
        scope: Some(scope_message(catalog, &grant.scope)),
    }
}

/// `parts` joined into one string of exactly their length.
fn join(parts: &[&str]) -> String {
    let mut joined = String::with_capacity(parts.iter().map(|part| part.len()).sum());
    for part in parts {
        joined.push_str(part);
    }
    joined
}

/// A decision as a message, with its explanation. Every check renders one, so the
/// explanation is joined from its parts into one allocation of its length, without
/// `format!`.
pub fn decision_message(
    catalog: &Catalog,
    workspace: &str,
    check: CheckRef<'_>,
    decision: DecisionRef<'_>,
) -> proto::Decision {
    use proto::decision::Basis;
    let user = check.user;
    let permission = || catalog.permission_name(check.permission);
    let (basis, explanation) = match decision {
        DecisionRef::AllowedByMembership(Membership::Owner) => (
            Basis::Membership(proto::Membership::Owner.into()),
            join(&["allowed: `", user, "` owns workspace `", workspace, "`"]),
        ),
        DecisionRef::AllowedByMembership(Membership::Member) => (
            Basis::Membership(proto::Membership::Member.into()),
            join(&[
                "allowed: every member of workspace `",
                workspace,
                "` holds `",
                permission(),
                "`",
            ]),
        ),
        DecisionRef::AllowedByGrant(grant) => {
            let role = catalog.role_name(grant.role);
            let explanation = match &grant.scope {
                Scope::All => join(&["allowed: `", user, "` holds `", role, "` on all instances"]),
                Scope::Instance(ty, id) => join(&[
                    "allowed: `",
                    user,
                    "` holds `",
                    role,
                    "` on ",
                    catalog.type_name(*ty),
                    " `",
                    id.as_str(),
                    "`",
                ]),
            };
            (
                Basis::Grant(user_grant_message(catalog, user, grant)),
                explanation,
            )
        }
        DecisionRef::Denied(reason) => {
            let (reason_message, text) = match reason {
                DenialReason::NotAMember => (
                    proto::DenialReason::NotAMember,
                    join(&[
                        "denied: `",
                        user,
                        "` is not a member of workspace `",
                        workspace,
                        "`",
                    ]),
                ),
                DenialReason::NoCoveringGrant => (
                    proto::DenialReason::NoCoveringGrant,
                    join(&[
                        "denied: no grant of `",
                        user,
                        "` covers `",
                        permission(),
                        "` here",
                    ]),
                ),
                DenialReason::ProductNotEnabled => {
                    let product = catalog
                        .permission(check.permission)
                        .map_or("?", |p| catalog.product_name(p.product));
                    (
                        proto::DenialReason::ProductNotEnabled,
                        join(&[
                            "denied: workspace `",
                            workspace,
                            "` does not have product `",
                            product,
                            "`",
                        ]),
                    )
                }
                DenialReason::ResourceNotRegistered => (
                    proto::DenialReason::ResourceNotRegistered,
                    join(&[
                        "denied: `",
                        check.resource.unwrap_or("?"),
                        "` is not registered in workspace `",
                        workspace,
                        "`",
                    ]),
                ),
            };
            (Basis::Denial(reason_message.into()), text)
        }
    };
    proto::Decision {
        allowed: decision.allowed(),
        basis: Some(basis),
        explanation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The explanation of `decision` for `user` asking `permission` on `resource` in
    /// workspace `acme`.
    fn explanation(
        catalog: &Catalog,
        user: &str,
        permission: &str,
        resource: Option<&str>,
        decision: DecisionRef<'_>,
    ) -> String {
        let check = CheckRef {
            user,
            permission: catalog.permission_id(permission).unwrap(),
            resource,
        };
        decision_message(catalog, "acme", check, decision).explanation
    }

    #[test]
    fn explanations_read_as_they_did_when_formatted() {
        let catalog = Catalog::built_in();
        let source = catalog.type_id("source").unwrap();
        let on_web = Grant {
            role: catalog.role_id("source_read").unwrap(),
            scope: Scope::Instance(source, ResourceId::parse("web").unwrap()),
        };
        let on_all = Grant {
            role: catalog.role_id("warehouse_read").unwrap(),
            scope: Scope::All,
        };
        let cases = [
            (
                explanation(
                    &catalog,
                    "olivia",
                    "workspace.delete",
                    None,
                    DecisionRef::AllowedByMembership(Membership::Owner),
                ),
                "allowed: `olivia` owns workspace `acme`",
            ),
            (
                explanation(
                    &catalog,
                    "sam",
                    "workspace.read",
                    None,
                    DecisionRef::AllowedByMembership(Membership::Member),
                ),
                "allowed: every member of workspace `acme` holds `workspace.read`",
            ),
            (
                explanation(
                    &catalog,
                    "sam",
                    "source.read",
                    Some("web"),
                    DecisionRef::AllowedByGrant(&on_web),
                ),
                "allowed: `sam` holds `source_read` on source `web`",
            ),
            (
                explanation(
                    &catalog,
                    "sam",
                    "warehouse.read",
                    Some("wh"),
                    DecisionRef::AllowedByGrant(&on_all),
                ),
                "allowed: `sam` holds `warehouse_read` on all instances",
            ),
            (
                explanation(
                    &catalog,
                    "eve",
                    "workspace.read",
                    None,
                    DecisionRef::Denied(DenialReason::NotAMember),
                ),
                "denied: `eve` is not a member of workspace `acme`",
            ),
            (
                explanation(
                    &catalog,
                    "sam",
                    "source.update",
                    Some("web"),
                    DecisionRef::Denied(DenialReason::NoCoveringGrant),
                ),
                "denied: no grant of `sam` covers `source.update` here",
            ),
            (
                explanation(
                    &catalog,
                    "sam",
                    "audience.read",
                    Some("vip"),
                    DecisionRef::Denied(DenialReason::ProductNotEnabled),
                ),
                "denied: workspace `acme` does not have product `personas`",
            ),
            (
                explanation(
                    &catalog,
                    "sam",
                    "source.read",
                    Some("gone"),
                    DecisionRef::Denied(DenialReason::ResourceNotRegistered),
                ),
                "denied: `gone` is not registered in workspace `acme`",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn a_grant_decision_names_the_grant_as_grant_message_does() {
        let catalog = Catalog::built_in();
        let grant = Grant {
            role: catalog.role_id("source_admin").unwrap(),
            scope: Scope::Instance(
                catalog.type_id("source").unwrap(),
                ResourceId::parse("web").unwrap(),
            ),
        };
        let check = CheckRef {
            user: "sam",
            permission: catalog.permission_id("source.update").unwrap(),
            resource: Some("web"),
        };
        let message =
            decision_message(&catalog, "acme", check, DecisionRef::AllowedByGrant(&grant));
        let sam = UserId::parse("sam").unwrap();
        assert!(message.allowed);
        assert_eq!(
            message.basis,
            Some(proto::decision::Basis::Grant(grant_message(
                &catalog, &sam, &grant
            )))
        );
    }

    #[test]
    fn a_well_formed_check_borrows_its_ids_from_the_request() {
        let catalog = Catalog::built_in();
        let raw = proto::CheckRequest {
            workspace_id: "acme".to_owned(),
            user_id: "sam".to_owned(),
            permission: "destination.update".to_owned(),
            resource: Some(proto::ResourceRef {
                r#type: "destination".to_owned(),
                id: "web-to-s3".to_owned(),
            }),
            at_least_revision: 0,
        };
        let (workspace, parsed) = check(&catalog, Some(3), &raw).unwrap();
        assert_eq!(workspace, "acme");
        assert_eq!(
            parsed,
            CheckRef {
                user: "sam",
                permission: catalog.permission_id("destination.update").unwrap(),
                resource: Some("web-to-s3"),
            }
        );
        assert!(std::ptr::eq(parsed.user, raw.user_id.as_str()));
    }
}
