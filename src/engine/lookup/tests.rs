//! Tests of the lookups: on random workspaces both agree with `check` on every pair,
//! and on small fixed ones they find what the model says.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::model::{Change, Grant, ProductSet, RoleId, WorkspaceId};

const USERS: usize = 6;
const SOURCES: usize = 3;
const DESTINATIONS: usize = 5;
const OTHERS: usize = 2;

fn user(i: usize) -> UserId {
    UserId::parse(&format!("u{i}")).unwrap()
}

fn rid(prefix: &str, i: usize) -> ResourceId {
    ResourceId::parse(&format!("{prefix}{i}")).unwrap()
}

fn type_of(catalog: &Catalog, name: &str) -> TypeId {
    catalog.type_id(name).unwrap()
}

/// Every id of type `ty` that the generated workspaces may hold, registered or not.
fn pool(catalog: &Catalog, ty: TypeId) -> Vec<ResourceId> {
    let n = if ty == type_of(catalog, "source") {
        SOURCES + 1
    } else if ty == type_of(catalog, "destination") {
        DESTINATIONS
    } else {
        OTHERS + 1
    };
    (0..n).map(|i| rid("r", i)).collect()
}

/// A small workspace as the changes the engine could plan, grants of any role with
/// any scope included, so that lookups are tested beyond what `plan` accepts.
#[derive(Debug, Clone)]
struct Spec {
    protocols: bool,
    personas: bool,
    memberships: Vec<Option<bool>>,
    sources: Vec<bool>,
    destinations: Vec<Option<usize>>,
    others: Vec<Vec<bool>>,
    grants: Vec<GrantSpec>,
}

/// A grant: user, role and scope (all, or the indexes of a type and an id).
type GrantSpec = (usize, usize, Option<(usize, usize)>);

fn spec() -> impl Strategy<Value = Spec> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(prop::option::of(any::<bool>()), USERS),
        prop::collection::vec(any::<bool>(), SOURCES),
        prop::collection::vec(prop::option::of(0..SOURCES), DESTINATIONS),
        prop::collection::vec(prop::collection::vec(any::<bool>(), OTHERS), 4),
        prop::collection::vec(
            (
                0..USERS,
                0..9usize,
                prop::option::of((0..6usize, 0..DESTINATIONS)),
            ),
            0..14,
        ),
    )
        .prop_map(
            |(protocols, personas, memberships, sources, destinations, others, grants)| Spec {
                protocols,
                personas,
                memberships,
                sources,
                destinations,
                others,
                grants,
            },
        )
}

fn build(catalog: &Catalog, spec: &Spec) -> Workspace {
    let workspace = WorkspaceId::parse("w").unwrap();
    let mut products = catalog.always_enabled();
    for (on, name) in [(spec.protocols, "protocols"), (spec.personas, "personas")] {
        if on {
            products = products.with(catalog.product_id(name).unwrap());
        }
    }
    let mut changes = vec![Change::CreateWorkspace {
        workspace: workspace.clone(),
        products: ProductSet::default(),
    }];
    let source = type_of(catalog, "source");
    let destination = type_of(catalog, "destination");
    for (i, registered) in spec.sources.iter().enumerate() {
        if *registered {
            changes.push(Change::RegisterResource {
                workspace: workspace.clone(),
                resource: (source, rid("r", i)),
                parent: None,
            });
        }
    }
    for (i, parent) in spec.destinations.iter().enumerate() {
        // A destination's source is registered first, as `plan` requires.
        if let Some(parent) = parent.filter(|p| spec.sources.get(*p) == Some(&true)) {
            changes.push(Change::RegisterResource {
                workspace: workspace.clone(),
                resource: (destination, rid("r", i)),
                parent: Some((source, rid("r", parent))),
            });
        }
    }
    let others = ["warehouse", "tracking_plan", "audience", "trait"];
    for (name, registered) in others.iter().zip(&spec.others) {
        for (i, on) in registered.iter().enumerate() {
            if *on {
                changes.push(Change::RegisterResource {
                    workspace: workspace.clone(),
                    resource: (type_of(catalog, name), rid("r", i)),
                    parent: None,
                });
            }
        }
    }
    for (i, membership) in spec.memberships.iter().enumerate() {
        if let Some(owner) = membership {
            changes.push(Change::SetMembership {
                workspace: workspace.clone(),
                user: user(i),
                membership: if *owner {
                    Membership::Owner
                } else {
                    Membership::Member
                },
            });
        }
    }
    let roles: Vec<RoleId> = catalog.roles().map(|(id, _)| id).collect();
    let types = [
        "source",
        "destination",
        "warehouse",
        "tracking_plan",
        "audience",
        "trait",
    ];
    for (u, role, scope) in &spec.grants {
        let scope = match scope {
            None => Scope::All,
            Some((ty, id)) => Scope::Instance(type_of(catalog, types[*ty]), rid("r", *id)),
        };
        changes.push(Change::AddGrant {
            workspace: workspace.clone(),
            user: user(*u),
            grant: Grant {
                role: roles[*role],
                scope,
            },
        });
    }
    // Products last: grants of a disabled product stay stored, as rule 4 says.
    changes.push(Change::SetProducts {
        workspace,
        products,
    });
    let mut state = None;
    for change in &changes {
        Workspace::apply(&mut state, change);
    }
    state.unwrap()
}

/// Every page of `lookup_resources`, checking that pages are in strict id order.
fn all_resources(
    catalog: &Catalog,
    ws: Option<&Workspace>,
    user: &UserId,
    permission: PermissionId,
    limit: usize,
) -> Vec<ResourceId> {
    let mut found: Vec<ResourceId> = Vec::new();
    loop {
        let (page, more) = lookup_resources(catalog, ws, user, permission, found.last(), limit);
        assert!(page.len() <= limit);
        assert!(!more || page.len() == limit);
        let page: Vec<ResourceId> = page.into_iter().cloned().collect();
        found.extend(page);
        assert!(found.windows(2).all(|w| w[0] < w[1]), "{found:?}");
        if !more {
            return found;
        }
    }
}

/// Every page of `lookup_subjects`, checking that pages are in strict user order.
fn all_subjects(
    catalog: &Catalog,
    ws: Option<&Workspace>,
    permission: PermissionId,
    resource: Option<&ResourceId>,
    limit: usize,
) -> BTreeMap<UserId, Decision> {
    let mut found: Vec<(UserId, Decision)> = Vec::new();
    loop {
        let after = found.last().map(|(user, _)| user);
        let (page, more) = lookup_subjects(catalog, ws, permission, resource, after, limit);
        assert!(page.len() <= limit);
        assert!(!more || page.len() == limit);
        let page: Vec<(UserId, Decision)> = page.into_iter().map(|(u, d)| (u.clone(), d)).collect();
        found.extend(page);
        assert!(found.windows(2).all(|w| w[0].0 < w[1].0), "{found:?}");
        if !more {
            return found.into_iter().collect();
        }
    }
}

/// Asserts that both lookups agree with `check` on every (user, instance) pair.
fn assert_agrees_with_check(catalog: &Catalog, ws: Option<&Workspace>, limit: usize) {
    let users: Vec<UserId> = (0..=USERS).map(user).collect();
    for (permission, definition) in catalog.permissions() {
        let targets: Vec<Option<ResourceId>> = match definition.target {
            Target::Workspace => vec![None],
            Target::Instance(ty) => pool(catalog, ty).into_iter().map(Some).collect(),
        };
        let reachable: Vec<Vec<ResourceId>> = users
            .iter()
            .map(|u| all_resources(catalog, ws, u, permission, limit))
            .collect();
        for resource in &targets {
            let subjects = all_subjects(catalog, ws, permission, resource.as_ref(), limit);
            for (u, reached) in users.iter().zip(&reachable) {
                let request = Check {
                    user: u.clone(),
                    permission,
                    resource: resource.clone(),
                };
                let decision = check(catalog, ws, &request);
                let name = catalog.permission_name(permission);
                match resource {
                    Some(id) => assert_eq!(
                        reached.contains(id),
                        decision.allowed(),
                        "resources of {u} for {name}: {reached:?}; check: {decision:?}"
                    ),
                    None => assert!(reached.is_empty(), "{name} names the workspace"),
                }
                let expected = decision.allowed().then_some(&decision);
                assert_eq!(
                    subjects.get(u),
                    expected,
                    "subjects of {name} on {resource:?}: {subjects:?}"
                );
            }
            assert!(subjects.keys().all(|u| users.contains(u)));
        }
        for reached in &reachable {
            if let Target::Instance(ty) = definition.target {
                let known = pool(catalog, ty);
                assert!(reached.iter().all(|id| known.contains(id)), "{reached:?}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn lookups_agree_with_check_on_every_user_and_instance(
        spec in spec(),
        limit in 1..5usize,
    ) {
        let catalog = Catalog::built_in();
        let mut ws = build(&catalog, &spec);
        assert_agrees_with_check(&catalog, Some(&ws), limit);
        // Small workspaces read every member; large ones use the index of holders.
        ws.index_holders();
        assert_agrees_with_check(&catalog, Some(&ws), limit);
    }
}

#[test]
fn lookups_in_a_missing_workspace_find_nothing() {
    let catalog = Catalog::built_in();
    assert_agrees_with_check(&catalog, None, 3);
}

fn acme(catalog: &Catalog) -> Workspace {
    build(
        catalog,
        &Spec {
            protocols: false,
            personas: false,
            memberships: vec![Some(true), Some(false), Some(false), None, None, None],
            sources: vec![true, true, false],
            destinations: vec![Some(0), Some(1), Some(0), None, None],
            others: vec![vec![true, true]; 4],
            grants: vec![(1, 0, Some((0, 0))), (2, 1, None), (3, 0, None)],
        },
    )
}

#[test]
fn an_instance_grant_on_a_source_reaches_the_source_and_its_destinations() {
    let catalog = Catalog::built_in();
    let ws = acme(&catalog);
    let update = catalog.permission_id("destination.update").unwrap();
    let (ids, more) = lookup_resources(&catalog, Some(&ws), &user(1), update, None, 10);
    assert_eq!(ids, [&rid("r", 0), &rid("r", 2)]);
    assert!(!more);
    let source_update = catalog.permission_id("source.update").unwrap();
    let (ids, _) = lookup_resources(&catalog, Some(&ws), &user(1), source_update, None, 10);
    assert_eq!(ids, [&rid("r", 0)]);
}

#[test]
fn subjects_of_a_destination_come_from_its_source_grants_and_owners() {
    let catalog = Catalog::built_in();
    let ws = acme(&catalog);
    let read = catalog.permission_id("destination.read").unwrap();
    let (subjects, more) = lookup_subjects(&catalog, Some(&ws), read, Some(&rid("r", 2)), None, 10);
    assert!(!more);
    let users: Vec<_> = subjects.iter().map(|(u, _)| (*u).clone()).collect();
    assert_eq!(users, [user(0), user(1), user(2)]);
    assert_eq!(
        subjects.first().map(|(_, d)| d),
        Some(&Decision::AllowedByMembership(Membership::Owner))
    );
}

#[test]
fn grants_of_non_members_reach_nothing() {
    let catalog = Catalog::built_in();
    let ws = acme(&catalog);
    let read = catalog.permission_id("source.read").unwrap();
    let (ids, _) = lookup_resources(&catalog, Some(&ws), &user(3), read, None, 10);
    assert!(ids.is_empty());
}

const THREE_LEVELS: &str = r#"
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

[[resource_types]]
name = "mapping"
product = "connections"
parent = "destination"

[[permissions]]
name = "workspace.read"
product = "connections"
names = "workspace"
every_member = true

[[permissions]]
name = "mapping.read"
product = "connections"
names = "mapping"

[[roles]]
name = "source_read"
product = "connections"
scope_type = "source"
scopes = ["instance", "all"]
permissions = ["mapping.read"]
"#;

#[test]
fn a_source_grant_reaches_grandchildren_in_a_deeper_catalog() {
    let catalog = Catalog::parse(THREE_LEVELS).unwrap();
    let (source, destination, mapping) = (
        type_of(&catalog, "source"),
        type_of(&catalog, "destination"),
        type_of(&catalog, "mapping"),
    );
    let workspace = WorkspaceId::parse("w").unwrap();
    let key = |ty, name: &str| (ty, ResourceId::parse(name).unwrap());
    let tree = [
        (key(source, "s0"), None),
        (key(source, "s1"), None),
        (key(destination, "d0"), Some(key(source, "s0"))),
        (key(destination, "d1"), Some(key(source, "s0"))),
        (key(destination, "d2"), Some(key(source, "s1"))),
        (key(mapping, "m2"), Some(key(destination, "d0"))),
        (key(mapping, "m0"), Some(key(destination, "d1"))),
        (key(mapping, "m1"), Some(key(destination, "d0"))),
        (key(mapping, "m3"), Some(key(destination, "d2"))),
    ];
    let mut changes = vec![Change::CreateWorkspace {
        workspace: workspace.clone(),
        products: catalog.always_enabled(),
    }];
    for (resource, parent) in tree {
        changes.push(Change::RegisterResource {
            workspace: workspace.clone(),
            resource,
            parent,
        });
    }
    for (i, membership) in [Membership::Owner, Membership::Member]
        .into_iter()
        .enumerate()
    {
        changes.push(Change::SetMembership {
            workspace: workspace.clone(),
            user: user(i),
            membership,
        });
    }
    changes.push(Change::AddGrant {
        workspace,
        user: user(1),
        grant: Grant {
            role: catalog.role_id("source_read").unwrap(),
            scope: Scope::Instance(source, rid("s", 0)),
        },
    });
    let mut state = None;
    for change in &changes {
        Workspace::apply(&mut state, change);
    }
    let ws = state.unwrap();
    let read = catalog.permission_id("mapping.read").unwrap();

    let reached = all_resources(&catalog, Some(&ws), &user(1), read, 2);
    assert_eq!(reached, [rid("m", 0), rid("m", 1), rid("m", 2)]);
    for i in 0..4 {
        let subjects = all_subjects(&catalog, Some(&ws), read, Some(&rid("m", i)), 1);
        for u in [user(0), user(1), user(2)] {
            let decision = check(
                &catalog,
                Some(&ws),
                &Check {
                    user: u.clone(),
                    permission: read,
                    resource: Some(rid("m", i)),
                },
            );
            assert_eq!(subjects.get(&u), decision.allowed().then_some(&decision));
            if u == user(1) {
                assert_eq!(reached.contains(&rid("m", i)), decision.allowed());
            }
        }
    }
}

#[test]
fn the_union_of_sorted_sources_is_sorted_without_duplicates() {
    let (a, b, c) = (vec![1, 3, 3, 5], vec![2, 3, 6], Vec::<i32>::new());
    let merged: Vec<_> = Union::new(vec![
        Box::new(a.iter()),
        Box::new(b.iter()),
        Box::new(c.iter()),
    ])
    .copied()
    .collect();
    assert_eq!(merged, [1, 2, 3, 5, 6]);
}
