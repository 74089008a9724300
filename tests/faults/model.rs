//! The exact state a workspace must have, and the writes the workload makes: each planned
//! against this model so that it changes something, and applied to it once acknowledged.
//! It shares no code with the server's engine: it is the access model's rules, restated.

use std::collections::{BTreeMap, BTreeSet};

use accessd::proto::{self, record::Kind};

use crate::rng::Rng;

/// A grant's scope: one source, or every instance of the role's type.
pub type Scope = Option<(String, String)>;

/// One workspace's state, as an export shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Workspace {
    /// Its enabled add-on products (`connections`, always enabled, left out).
    pub products: BTreeSet<String>,
    /// Each user with their membership: `true` for an owner.
    pub members: BTreeMap<String, bool>,
    /// Each instance, (type, id), with its parent's id (empty for none).
    pub resources: BTreeMap<(String, String), String>,
    /// Each grant: (user, role, scope).
    pub grants: BTreeSet<(String, String, Scope)>,
}

/// The product a role belongs to.
fn product_of(role: &str) -> &'static str {
    match role {
        "protocols_read" | "protocols_admin" => "protocols",
        "personas_read" | "personas_admin" => "personas",
        _ => "connections",
    }
}

impl Workspace {
    fn enabled(&self, role: &str) -> bool {
        let product = product_of(role);
        product == "connections" || self.products.contains(product)
    }

    fn owners(&self) -> usize {
        self.members.values().filter(|owner| **owner).count()
    }

    /// Adds what one exported or imported record says.
    pub fn add(&mut self, kind: &Kind) {
        match kind {
            Kind::Workspace(record) => {
                self.products = add_ons(&record.products);
                for owner in &record.owner_user_ids {
                    self.members.insert(owner.clone(), true);
                }
            }
            Kind::Member(record) => {
                self.members
                    .insert(record.user_id.clone(), is_owner(record));
            }
            Kind::Resource(record) => {
                self.resources
                    .insert(instance_of(record), record.parent_id.clone());
            }
            Kind::Grant(record) => {
                self.grants.insert(grant_of(record));
            }
        }
    }

    /// Whether what `kind` says is in this state (a record of an import into a new
    /// workspace, so a workspace record is there as soon as the workspace is).
    pub fn holds(&self, kind: &Kind) -> bool {
        match kind {
            Kind::Workspace(_) => true,
            Kind::Member(record) => self.members.get(&record.user_id) == Some(&is_owner(record)),
            Kind::Resource(record) => {
                self.resources.get(&instance_of(record)) == Some(&record.parent_id)
            }
            Kind::Grant(record) => self.grants.contains(&grant_of(record)),
        }
    }
}

fn is_owner(record: &proto::MemberRecord) -> bool {
    record.membership() == proto::Membership::Owner
}

fn instance_of(record: &proto::ResourceRecord) -> (String, String) {
    let resource = record.resource.clone().unwrap_or_default();
    (resource.r#type, resource.id)
}

fn grant_of(record: &proto::GrantRecord) -> (String, String, Scope) {
    let scope = match record.scope.as_ref().and_then(|s| s.kind.as_ref()) {
        Some(proto::scope::Kind::Instance(instance)) => {
            Some((instance.r#type.clone(), instance.id.clone()))
        }
        _ => None,
    };
    (record.user_id.clone(), record.role.clone(), scope)
}

/// The add-on products of a list, `connections` left out.
fn add_ons(products: &[String]) -> BTreeSet<String> {
    products
        .iter()
        .filter(|p| *p != "connections")
        .cloned()
        .collect()
}

/// One write of AdminService, on one workspace.
#[derive(Clone, Debug)]
pub enum Write {
    /// CreateWorkspace.
    CreateWorkspace {
        /// Its first owner.
        owner: String,
        /// Its add-on products.
        products: Vec<String>,
    },
    /// SetProducts.
    SetProducts(Vec<String>),
    /// SetMembership.
    SetMembership {
        /// The user.
        user: String,
        /// Owner rather than member.
        owner: bool,
    },
    /// RemoveMember.
    RemoveMember(String),
    /// RegisterResource, with its parent's id (empty for none).
    RegisterResource((String, String), String),
    /// DeleteResource.
    DeleteResource((String, String)),
    /// Grant.
    Grant(String, String, Scope),
    /// Revoke.
    Revoke(String, String, Scope),
    /// DeleteWorkspace.
    DeleteWorkspace,
    /// MigrateLegacyRoles: a new user as the collaborator of one source.
    MigrateCollaborator {
        /// The user.
        user: String,
        /// The source.
        source: String,
    },
}

/// The state after `write`, acknowledged, on `state` (`None`: no such workspace).
pub fn apply(state: &Option<Workspace>, write: &Write) -> Option<Workspace> {
    if let Write::CreateWorkspace { owner, products } = write {
        let mut created = Workspace {
            products: add_ons(products),
            ..Workspace::default()
        };
        created.members.insert(owner.clone(), true);
        return Some(created);
    }
    let mut ws = state.clone()?;
    match write {
        Write::CreateWorkspace { .. } | Write::DeleteWorkspace => return None,
        Write::SetProducts(products) => ws.products = add_ons(products),
        Write::SetMembership { user, owner } => {
            ws.members.insert(user.clone(), *owner);
        }
        Write::RemoveMember(user) => {
            ws.members.remove(user);
            ws.grants.retain(|(holder, _, _)| holder != user);
        }
        Write::RegisterResource(resource, parent) => {
            ws.resources.insert(resource.clone(), parent.clone());
        }
        Write::DeleteResource(resource) => {
            let mut gone = vec![resource.clone()];
            if resource.0 == "source" {
                gone.extend(
                    ws.resources
                        .iter()
                        .filter(|((kind, _), parent)| {
                            kind == "destination" && **parent == resource.1
                        })
                        .map(|(child, _)| child.clone()),
                );
            }
            for instance in &gone {
                ws.resources.remove(instance);
            }
            ws.grants
                .retain(|(_, _, scope)| scope.as_ref().is_none_or(|s| !gone.contains(s)));
        }
        Write::Grant(user, role, scope) => {
            ws.grants
                .insert((user.clone(), role.clone(), scope.clone()));
        }
        Write::Revoke(user, role, scope) => {
            ws.grants
                .remove(&(user.clone(), role.clone(), scope.clone()));
        }
        Write::MigrateCollaborator { user, source } => {
            ws.members.insert(user.clone(), false);
            ws.grants.insert((
                user.clone(),
                "source_admin".into(),
                Some(("source".into(), source.clone())),
            ));
        }
    }
    Some(ws)
}

/// The add-on products a workspace may have.
const ADD_ONS: [&str; 2] = ["protocols", "personas"];

/// The roles a member may be granted on every instance, with the product each needs.
const ALL_SCOPE_ROLES: [&str; 6] = [
    "source_read",
    "source_admin",
    "warehouse_read",
    "warehouse_admin",
    "protocols_read",
    "personas_read",
];

fn some_products(rng: &mut Rng) -> Vec<String> {
    ADD_ONS
        .iter()
        .filter(|_| rng.chance(50))
        .map(|p| (*p).to_owned())
        .collect()
}

fn pick<I: Iterator>(rng: &mut Rng, items: I) -> Option<I::Item> {
    let items: Vec<I::Item> = items.collect();
    let index = rng.below(items.len());
    items.into_iter().nth(index)
}

/// A write that changes `state`, chosen at random; `fresh` names a new id.
pub fn plan(
    rng: &mut Rng,
    state: &Option<Workspace>,
    fresh: &mut impl FnMut(&str) -> String,
) -> Write {
    let Some(ws) = state else {
        return Write::CreateWorkspace {
            owner: fresh("owner"),
            products: some_products(rng),
        };
    };
    let sources: Vec<&String> = ws
        .resources
        .keys()
        .filter(|(kind, _)| kind == "source")
        .map(|(_, id)| id)
        .collect();
    let members: Vec<&String> = ws
        .members
        .iter()
        .filter(|(_, owner)| !**owner)
        .map(|(user, _)| user)
        .collect();
    loop {
        let roll = rng.below(100);
        let write = match roll {
            0..20 => Write::SetMembership {
                user: fresh("user"),
                owner: rng.chance(10),
            },
            20..25 => {
                let Some((user, owner)) = pick(rng, ws.members.iter()) else {
                    continue;
                };
                if *owner && ws.owners() == 1 {
                    continue;
                }
                Write::SetMembership {
                    user: user.clone(),
                    owner: !owner,
                }
            }
            25..30 => {
                let Some((user, owner)) = pick(rng, ws.members.iter()) else {
                    continue;
                };
                if *owner && ws.owners() == 1 {
                    continue;
                }
                Write::RemoveMember(user.clone())
            }
            30..42 => Write::RegisterResource(("source".into(), fresh("src")), String::new()),
            42..50 => {
                let Some(source) = pick(rng, sources.iter()) else {
                    continue;
                };
                Write::RegisterResource(("destination".into(), fresh("dst")), (*source).clone())
            }
            50..53 => Write::RegisterResource(("warehouse".into(), fresh("wh")), String::new()),
            53..58 => {
                let Some(resource) = pick(rng, ws.resources.keys()) else {
                    continue;
                };
                Write::DeleteResource(resource.clone())
            }
            58..80 => {
                let Some(user) = pick(rng, members.iter()) else {
                    continue;
                };
                let (role, scope) = if rng.chance(60) {
                    let Some(source) = pick(rng, sources.iter()) else {
                        continue;
                    };
                    let role = if rng.chance(50) {
                        "source_admin"
                    } else {
                        "source_read"
                    };
                    (role, Some(("source".to_owned(), (*source).clone())))
                } else {
                    let role = ALL_SCOPE_ROLES[rng.below(ALL_SCOPE_ROLES.len())];
                    (role, None)
                };
                let grant = ((*user).clone(), role.to_owned(), scope);
                if !ws.enabled(role) || ws.grants.contains(&grant) {
                    continue;
                }
                Write::Grant(grant.0, grant.1, grant.2)
            }
            80..90 => {
                let Some((user, role, scope)) = pick(
                    rng,
                    ws.grants.iter().filter(|(user, role, _)| {
                        ws.enabled(role) && ws.members.get(user) == Some(&false)
                    }),
                ) else {
                    continue;
                };
                Write::Revoke(user.clone(), role.clone(), scope.clone())
            }
            90..94 => {
                let products = some_products(rng);
                if add_ons(&products) == ws.products {
                    continue;
                }
                Write::SetProducts(products)
            }
            94..99 => {
                let Some(source) = pick(rng, sources.iter()) else {
                    continue;
                };
                Write::MigrateCollaborator {
                    user: fresh("legacy"),
                    source: (*source).clone(),
                }
            }
            _ => {
                // Rarely: a workspace's life is long, so its deletion cascades over much.
                if !rng.chance(30) {
                    continue;
                }
                Write::DeleteWorkspace
            }
        };
        return write;
    }
}

/// The records of a new workspace `ws` for one import: the workspace, then its sources,
/// destinations, members and grants, each record adding one thing of its own.
pub fn import_records(rng: &mut Rng, ws: &str, count: usize) -> Vec<proto::Record> {
    let record = |kind| proto::Record { kind: Some(kind) };
    let mut records = vec![record(Kind::Workspace(proto::WorkspaceRecord {
        workspace_id: ws.into(),
        products: some_products(rng),
        owner_user_ids: vec!["owner".into()],
    }))];
    let rest = count.saturating_sub(1).max(4);
    let sources = (rest / 5).max(1);
    let destinations = rest / 5;
    let members = (rest - sources - destinations).div_ceil(2);
    let grants = rest - sources - destinations - members;
    for s in 0..sources {
        records.push(record(Kind::Resource(proto::ResourceRecord {
            workspace_id: ws.into(),
            resource: Some(resource_ref("source", &format!("src-{s}"))),
            parent_id: String::new(),
        })));
    }
    for d in 0..destinations {
        records.push(record(Kind::Resource(proto::ResourceRecord {
            workspace_id: ws.into(),
            resource: Some(resource_ref("destination", &format!("dst-{d}"))),
            parent_id: format!("src-{}", rng.below(sources)),
        })));
    }
    for m in 0..members {
        records.push(record(Kind::Member(proto::MemberRecord {
            workspace_id: ws.into(),
            user_id: format!("user-{m}"),
            membership: proto::Membership::Member.into(),
        })));
    }
    // No more grants than members, one each: distinct by construction.
    for g in 0..grants {
        let (role, scope) = if g % 2 == 0 {
            let source = format!("src-{}", rng.below(sources));
            ("source_admin", scope_of(Some(("source", source))))
        } else {
            ("warehouse_read", scope_of(None))
        };
        records.push(record(Kind::Grant(proto::GrantRecord {
            workspace_id: ws.into(),
            user_id: format!("user-{g}"),
            role: role.into(),
            scope: Some(scope),
        })));
    }
    records
}

fn resource_ref(kind: &str, id: &str) -> proto::ResourceRef {
    proto::ResourceRef {
        r#type: kind.into(),
        id: id.into(),
    }
}

fn scope_of(instance: Option<(&str, String)>) -> proto::Scope {
    proto::Scope {
        kind: Some(match instance {
            Some((kind, id)) => proto::scope::Kind::Instance(resource_ref(kind, &id)),
            None => proto::scope::Kind::All(proto::AllInstances {}),
        }),
    }
}

/// The state `records` leave, imported into a server without their workspace.
pub fn imported(records: &[proto::Record]) -> Option<Workspace> {
    if records.is_empty() {
        return None;
    }
    let mut ws = Workspace::default();
    for kind in records.iter().filter_map(|r| r.kind.as_ref()) {
        ws.add(kind);
    }
    Some(ws)
}

/// The request of `write` on workspace `ws`, sent to `admin`: its revision and whether
/// it changed anything.
pub async fn send(
    admin: &mut proto::admin_service_client::AdminServiceClient<tonic::transport::Channel>,
    ws: &str,
    write: &Write,
) -> Result<(u64, bool), tonic::Status> {
    let workspace_id = ws.to_owned();
    let reference = |(kind, id): &(String, String)| Some(resource_ref(kind, id));
    let scope = |scope: &Scope| {
        Some(scope_of(
            scope.as_ref().map(|(kind, id)| (kind.as_str(), id.clone())),
        ))
    };
    let answer = match write.clone() {
        Write::CreateWorkspace { owner, products } => {
            admin
                .create_workspace(proto::CreateWorkspaceRequest {
                    workspace_id,
                    owner_user_id: owner,
                    products,
                })
                .await?
        }
        Write::SetProducts(products) => {
            admin
                .set_products(proto::SetProductsRequest {
                    workspace_id,
                    products,
                })
                .await?
        }
        Write::SetMembership { user, owner } => {
            admin
                .set_membership(proto::SetMembershipRequest {
                    workspace_id,
                    user_id: user,
                    membership: if owner {
                        proto::Membership::Owner
                    } else {
                        proto::Membership::Member
                    }
                    .into(),
                    actor_user_id: String::new(),
                })
                .await?
        }
        Write::RemoveMember(user) => {
            admin
                .remove_member(proto::RemoveMemberRequest {
                    workspace_id,
                    user_id: user,
                    actor_user_id: String::new(),
                })
                .await?
        }
        Write::RegisterResource(resource, parent_id) => {
            admin
                .register_resource(proto::RegisterResourceRequest {
                    workspace_id,
                    resource: reference(&resource),
                    parent_id,
                })
                .await?
        }
        Write::DeleteResource(resource) => {
            admin
                .delete_resource(proto::DeleteResourceRequest {
                    workspace_id,
                    resource: reference(&resource),
                })
                .await?
        }
        Write::Grant(user, role, grant_scope) => {
            admin
                .grant(proto::GrantRequest {
                    workspace_id,
                    user_id: user,
                    role,
                    scope: scope(&grant_scope),
                    actor_user_id: String::new(),
                })
                .await?
        }
        Write::Revoke(user, role, grant_scope) => {
            admin
                .revoke(proto::RevokeRequest {
                    workspace_id,
                    user_id: user,
                    role,
                    scope: scope(&grant_scope),
                    actor_user_id: String::new(),
                })
                .await?
        }
        Write::DeleteWorkspace => {
            admin
                .delete_workspace(proto::DeleteWorkspaceRequest { workspace_id })
                .await?
        }
        Write::MigrateCollaborator { user, source } => {
            let report = admin
                .migrate_legacy_roles(proto::MigrateLegacyRolesRequest {
                    assignments: vec![proto::LegacyAssignment {
                        workspace_id,
                        user_id: user,
                        legacy_role: proto::LegacyRole::SourceCollaborator.into(),
                        source_id: source,
                    }],
                    dry_run: false,
                })
                .await?
                .into_inner();
            assert!(report.rejected.is_empty(), "{:?}", report.rejected);
            return Ok((report.revision, !report.changed.is_empty()));
        }
    };
    let answer = answer.into_inner();
    Ok((answer.revision, answer.changed))
}
