//! Every change reads back from its message; names a follower's catalog lacks are
//! refused by name; and the changes of an export's records rebuild what was exported.

use std::collections::BTreeMap;

use proptest::{prelude::*, sample::select};

use super::*;
use crate::{
    api::transfer::workspace_records,
    engine::{self, Command},
    model::{ResourceId, Scope, TypeId, Workspace, WorkspaceId},
};

fn workspace(id: &str) -> WorkspaceId {
    WorkspaceId::parse(id).unwrap()
}

fn user(id: &str) -> UserId {
    UserId::parse(id).unwrap()
}

fn key(ty: TypeId, id: &str) -> InstanceKey {
    (ty, ResourceId::parse(id).unwrap())
}

/// An id as `parse` accepts them: printable ASCII.
fn id() -> impl Strategy<Value = String> + Clone {
    "[!-~]{1,24}"
}

fn instance_key(catalog: &Catalog) -> impl Strategy<Value = InstanceKey> + use<> {
    let types: Vec<TypeId> = catalog.resource_types().map(|(ty, _)| ty).collect();
    (select(types), id()).prop_map(|(ty, id)| (ty, ResourceId::parse(&id).unwrap()))
}

fn grant_of(catalog: &Catalog) -> impl Strategy<Value = Grant> + use<> {
    let roles: Vec<_> = catalog.roles().map(|(role, _)| role).collect();
    (select(roles), proptest::option::of(instance_key(catalog))).prop_map(|(role, on)| Grant {
        role,
        scope: on.map_or(Scope::All, |(ty, id)| Scope::Instance(ty, id)),
    })
}

fn products_of(catalog: &Catalog) -> impl Strategy<Value = ProductSet> + use<> {
    let products: Vec<_> = catalog.products().map(|(product, _)| product).collect();
    proptest::sample::subsequence(products.clone(), 0..=products.len()).prop_map(|picked| {
        picked
            .into_iter()
            .fold(ProductSet::default(), ProductSet::with)
    })
}

/// Any change, of any ids and of any of the catalog's names.
fn change_of(catalog: &Catalog) -> impl Strategy<Value = Change> + use<> {
    let ws = id().prop_map(|id| workspace(&id));
    let who = id().prop_map(|id| user(&id));
    let membership = prop_oneof![Just(Membership::Owner), Just(Membership::Member)];
    prop_oneof![
        (ws.clone(), products_of(catalog)).prop_map(|(workspace, products)| {
            Change::CreateWorkspace {
                workspace,
                products,
            }
        }),
        (ws.clone(), products_of(catalog)).prop_map(|(workspace, products)| Change::SetProducts {
            workspace,
            products
        }),
        ws.clone()
            .prop_map(|workspace| Change::DeleteWorkspace { workspace }),
        (ws.clone(), who.clone(), membership).prop_map(|(workspace, user, membership)| {
            Change::SetMembership {
                workspace,
                user,
                membership,
            }
        }),
        (ws.clone(), who.clone())
            .prop_map(|(workspace, user)| Change::RemoveMember { workspace, user }),
        (ws.clone(), who.clone(), grant_of(catalog)).prop_map(|(workspace, user, grant)| {
            Change::AddGrant {
                workspace,
                user,
                grant,
            }
        }),
        (ws.clone(), who, grant_of(catalog)).prop_map(|(workspace, user, grant)| {
            Change::RemoveGrant {
                workspace,
                user,
                grant,
            }
        }),
        (
            ws.clone(),
            instance_key(catalog),
            proptest::option::of(instance_key(catalog))
        )
            .prop_map(|(workspace, resource, parent)| Change::RegisterResource {
                workspace,
                resource,
                parent,
            }),
        (ws, instance_key(catalog)).prop_map(|(workspace, resource)| Change::DeleteResource {
            workspace,
            resource
        }),
    ]
}

/// The commands a control plane might send to workspace `w`, refused or not: a few
/// users, instances of a few types (destinations under sources or not), any role on
/// all instances or on a source, and products switched on and off.
fn command_of(catalog: &Catalog) -> impl Strategy<Value = Command> + use<> {
    let w = workspace("w");
    let types = ["source", "destination", "warehouse", "audience"]
        .map(|name| catalog.type_id(name).unwrap())
        .to_vec();
    let who = (0..5usize).prop_map(|i| user(&format!("u{i}")));
    let instance = (select(types), 0..3usize).prop_map(|(ty, i)| key(ty, &format!("r{i}")));
    // Only source roles accept an instance scope, and only of a source.
    let source = catalog.type_id("source").unwrap();
    let scope = prop_oneof![
        Just(Scope::All),
        (0..3usize).prop_map(move |i| Scope::Instance(
            source,
            ResourceId::parse(&format!("r{i}")).unwrap()
        )),
    ];
    let roles: Vec<_> = catalog.roles().map(|(role, _)| role).collect();
    let grant = (select(roles), scope).prop_map(|(role, scope)| Grant { role, scope });
    let membership = prop_oneof![Just(Membership::Owner), Just(Membership::Member)];
    let parent = proptest::option::of(
        (0..3usize).prop_map(|i| ResourceId::parse(&format!("r{i}")).unwrap()),
    );
    prop_oneof![
        1 => products_of(catalog).prop_map({
            let w = w.clone();
            move |products| Command::SetProducts {
                workspace: w.clone(),
                products,
            }
        }),
        3 => (who.clone(), membership).prop_map({
            let w = w.clone();
            move |(user, membership)| Command::SetMembership {
                workspace: w.clone(),
                user,
                membership,
                actor: None,
            }
        }),
        1 => who.clone().prop_map({
            let w = w.clone();
            move |user| Command::RemoveMember {
                workspace: w.clone(),
                user,
                actor: None,
            }
        }),
        3 => (instance.clone(), parent).prop_map({
            let w = w.clone();
            move |(resource, parent)| Command::RegisterResource {
                workspace: w.clone(),
                resource,
                parent,
            }
        }),
        1 => instance.prop_map({
            let w = w.clone();
            move |resource| Command::DeleteResource {
                workspace: w.clone(),
                resource,
            }
        }),
        6 => (who.clone(), grant.clone()).prop_map({
            let w = w.clone();
            move |(user, grant)| Command::Grant {
                workspace: w.clone(),
                user,
                grant,
                actor: None,
            }
        }),
        1 => (who, grant).prop_map(move |(user, grant)| Command::Revoke {
            workspace: w.clone(),
            user,
            grant,
            actor: None,
        }),
    ]
}

/// The workspaces `changes` build from nothing.
fn apply_all(changes: &[Change]) -> BTreeMap<WorkspaceId, Workspace> {
    let mut states: BTreeMap<WorkspaceId, Option<Workspace>> = BTreeMap::new();
    for change in changes {
        Workspace::apply(
            states.entry(change.workspace().clone()).or_default(),
            change,
        );
    }
    states
        .into_iter()
        .filter_map(|(id, state)| Some((id, state?)))
        .collect()
}

/// The records an export of `states` streams, in its order of workspaces.
fn export(catalog: &Catalog, states: &BTreeMap<WorkspaceId, Workspace>) -> Vec<proto::Record> {
    states
        .iter()
        .flat_map(|(id, ws)| workspace_records(catalog, id, ws))
        .collect()
}

proptest! {
    #[test]
    fn every_change_reads_back_from_its_message(change in change_of(&Catalog::built_in())) {
        let catalog = Catalog::built_in();
        let message = change_message(&catalog, &change);
        prop_assert_eq!(change_from_message(&catalog, "changes[0]", &message).unwrap(), change);
    }

    #[test]
    fn the_changes_of_an_export_rebuild_any_workspace_the_engine_built(
        commands in proptest::collection::vec(command_of(&Catalog::built_in()), 1..80),
    ) {
        let catalog = Catalog::built_in();
        let create = Command::CreateWorkspace {
            workspace: workspace("w"),
            owner: user("u0"),
            products: ProductSet::default(),
        };
        let mut state = None;
        for command in std::iter::once(&create).chain(&commands) {
            // Refused commands leave the state as it was, as they do on a leader.
            for change in engine::plan(&catalog, state.as_ref(), command).unwrap_or_default() {
                Workspace::apply(&mut state, &change);
            }
        }
        let states: BTreeMap<_, _> = state.map(|ws| (workspace("w"), ws)).into_iter().collect();
        let records = export(&catalog, &states);
        let rebuilt = apply_all(&snapshot_changes(&catalog, &records).unwrap());
        prop_assert_eq!(&rebuilt, &states);
        prop_assert_eq!(export(&catalog, &rebuilt), records);
    }
}

#[test]
fn the_changes_of_an_export_rebuild_its_workspaces() {
    let catalog = Catalog::built_in();
    let ty = |name| catalog.type_id(name).unwrap();
    let role = |name| catalog.role_id(name).unwrap();
    let product = |name| catalog.product_id(name).unwrap();
    let (acme, globex) = (workspace("acme"), workspace("globex"));
    let (source, destination) = (ty("source"), ty("destination"));
    let on = |role_name, (ty, id): InstanceKey| Grant {
        role: role(role_name),
        scope: Scope::Instance(ty, id),
    };
    let all = |role_name| Grant {
        role: role(role_name),
        scope: Scope::All,
    };
    let joins = |ws: &WorkspaceId, name, membership| Change::SetMembership {
        workspace: ws.clone(),
        user: user(name),
        membership,
    };
    let grants = |ws: &WorkspaceId, name, grant| Change::AddGrant {
        workspace: ws.clone(),
        user: user(name),
        grant,
    };
    let registers = |ws: &WorkspaceId, resource, parent| Change::RegisterResource {
        workspace: ws.clone(),
        resource,
        parent,
    };
    let changes = [
        Change::CreateWorkspace {
            workspace: acme.clone(),
            products: catalog
                .always_enabled()
                .with(product("protocols"))
                .with(product("personas")),
        },
        joins(&acme, "olivia", Membership::Owner),
        registers(&acme, key(source, "web"), None),
        registers(&acme, key(source, "app"), None),
        registers(
            &acme,
            key(destination, "web-to-s3"),
            Some(key(source, "web")),
        ),
        registers(
            &acme,
            key(destination, "app-to-bq"),
            Some(key(source, "app")),
        ),
        registers(&acme, key(ty("warehouse"), "wh"), None),
        registers(&acme, key(ty("audience"), "vip"), None),
        joins(&acme, "sam", Membership::Member),
        joins(&acme, "ria", Membership::Member),
        joins(&acme, "zed", Membership::Member),
        joins(&acme, "oscar", Membership::Member),
        grants(&acme, "sam", on("source_admin", key(source, "web"))),
        grants(&acme, "sam", all("source_read")),
        grants(&acme, "zed", all("personas_admin")),
        grants(&acme, "zed", all("protocols_read")),
        grants(&acme, "oscar", all("warehouse_read")),
        // Promoted with a grant kept: an owner holding a grant.
        joins(&acme, "oscar", Membership::Owner),
        // Disabling a product keeps its grants, which an export carries.
        Change::SetProducts {
            workspace: acme.clone(),
            products: catalog.always_enabled().with(product("protocols")),
        },
        Change::CreateWorkspace {
            workspace: globex.clone(),
            products: catalog.always_enabled(),
        },
        joins(&globex, "gina", Membership::Owner),
        registers(&globex, key(source, "s1"), None),
        joins(&globex, "sam", Membership::Member),
        grants(&globex, "sam", on("source_read", key(source, "s1"))),
    ];
    let states = apply_all(&changes);
    let acme_state = states.get(&acme).unwrap();
    assert!(!acme_state.products().contains(product("personas")));
    assert_eq!(acme_state.owner_count(), 2);
    assert!(acme_state.member("ria").unwrap().grants.is_empty());
    assert!(
        acme_state
            .member("zed")
            .unwrap()
            .grants
            .contains(&all("personas_admin"))
    );

    let records = export(&catalog, &states);
    let rebuilt = apply_all(&snapshot_changes(&catalog, &records).unwrap());
    assert_eq!(rebuilt, states);
    assert_eq!(
        rebuilt
            .get(&acme)
            .unwrap()
            .instance(&key(destination, "web-to-s3"))
            .unwrap()
            .parent,
        Some(key(source, "web"))
    );
}

/// A follower's catalog: the connections product with sources and destinations only.
const FOLLOWER: &str = r#"
[[products]]
name = "connections"
always_enabled = true

[[resource_types]]
name = "source"
product = "connections"

[[resource_types]]
name = "destination"
product = "connections"
parent = "source"

[[permissions]]
name = "workspace.read"
product = "connections"
names = "workspace"
every_member = true

[[permissions]]
name = "source.read"
product = "connections"
names = "source"

[[roles]]
name = "source_read"
product = "connections"
scope_type = "source"
scopes = ["instance", "all"]
permissions = ["source.read"]
"#;

#[test]
fn names_a_follower_catalog_lacks_are_refused_by_name() {
    let leader = Catalog::built_in();
    let follower = Catalog::parse(FOLLOWER).unwrap();
    let acme = workspace("acme");
    let ty = |name| leader.type_id(name).unwrap();
    let cases = [
        (
            Change::CreateWorkspace {
                workspace: acme.clone(),
                products: leader
                    .always_enabled()
                    .with(leader.product_id("personas").unwrap()),
            },
            "`changes[0].create_workspace.products[1]`: unknown product `personas`",
        ),
        (
            Change::AddGrant {
                workspace: acme.clone(),
                user: user("sam"),
                grant: Grant {
                    role: leader.role_id("personas_admin").unwrap(),
                    scope: Scope::All,
                },
            },
            "`changes[0].add_grant.role`: unknown role `personas_admin`",
        ),
        (
            Change::RemoveGrant {
                workspace: acme.clone(),
                user: user("sam"),
                grant: Grant {
                    role: leader.role_id("source_read").unwrap(),
                    scope: Scope::Instance(ty("warehouse"), ResourceId::parse("wh").unwrap()),
                },
            },
            "`changes[0].remove_grant.scope.instance.type`: unknown resource type `warehouse`",
        ),
        (
            Change::RegisterResource {
                workspace: acme.clone(),
                resource: key(ty("audience"), "vip"),
                parent: None,
            },
            "`changes[0].register_resource.resource.type`: unknown resource type `audience`",
        ),
        (
            Change::DeleteResource {
                workspace: acme,
                resource: key(ty("tracking_plan"), "plan"),
            },
            "`changes[0].delete_resource.type`: unknown resource type `tracking_plan`",
        ),
    ];
    for (change, want) in cases {
        let message = change_message(&leader, &change);
        let refused = change_from_message(&follower, "changes[0]", &message).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert_eq!(refused.message(), want);
    }
}

#[test]
fn malformed_change_messages_are_refused_naming_the_field() {
    let catalog = Catalog::built_in();
    let message = |workspace_id: &str, kind| proto::Change {
        workspace_id: workspace_id.to_owned(),
        kind,
    };
    let cases = [
        (message("acme", None), "`changes[2]`: is empty: set one of"),
        (
            message("", Some(Kind::DeleteWorkspace(proto::WorkspaceDeleted {}))),
            "`changes[2].workspace_id`: must not be empty",
        ),
        (
            message(
                "acme",
                Some(Kind::SetMembership(proto::MembershipChange {
                    user_id: "sam".to_owned(),
                    membership: proto::Membership::Unspecified.into(),
                })),
            ),
            "`changes[2].set_membership.membership`: must be `MEMBERSHIP_OWNER` or",
        ),
        (
            message(
                "acme",
                Some(Kind::AddGrant(proto::Grant {
                    user_id: "sam".to_owned(),
                    role: "source_read".to_owned(),
                    scope: None,
                })),
            ),
            "`changes[2].add_grant.scope`: is required",
        ),
        (
            message(
                "acme",
                Some(Kind::RegisterResource(proto::ResourceRegistered {
                    resource: None,
                    parent: None,
                })),
            ),
            "`changes[2].register_resource.resource`: is required",
        ),
    ];
    for (message, want) in cases {
        let refused = change_from_message(&catalog, "changes[2]", &message).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert!(refused.message().starts_with(want), "{}", refused.message());
    }
}

#[test]
fn malformed_records_are_refused_naming_the_record() {
    let catalog = Catalog::built_in();
    let resource = |r#type: &str, parent_id: &str| proto::Record {
        kind: Some(RecordKind::Resource(proto::ResourceRecord {
            workspace_id: "acme".to_owned(),
            resource: Some(proto::ResourceRef {
                r#type: r#type.to_owned(),
                id: "web".to_owned(),
            }),
            parent_id: parent_id.to_owned(),
        })),
    };
    let grant = proto::Record {
        kind: Some(RecordKind::Grant(proto::GrantRecord {
            workspace_id: "acme".to_owned(),
            user_id: "sam".to_owned(),
            role: "gone".to_owned(),
            scope: None,
        })),
    };
    let cases = [
        (
            vec![resource("source", ""), proto::Record { kind: None }],
            "`records[1]`: is empty: set one of workspace, member, resource, grant",
        ),
        (
            vec![resource("source", "app")],
            "`records[0].resource.parent_id`: a `source` has no parent",
        ),
        (
            vec![resource("source", ""), resource("destination", ""), grant],
            "`records[2].grant.role`: unknown role `gone`",
        ),
    ];
    for (records, want) in cases {
        let refused = snapshot_changes(&catalog, &records).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert_eq!(refused.message(), want);
    }
}
