//! Tests of a workspace's state: built from parts or record by record it is the same,
//! and its index of holders, kept up by changes, equals one built afresh.

use proptest::{prelude::*, sample::select};

use super::{HOLDER_INDEX_FROM, Parts, Workspace, holders::HOLDER_INDEX_UNTIL};
use crate::model::{
    Catalog, Change, Grant, InstanceKey, Membership, ProductSet, ResourceId, RoleId, Scope, UserId,
    WorkspaceId,
    access::{Instance, Member},
};

fn user(i: usize) -> UserId {
    UserId::parse(&format!("u{i:04}")).unwrap()
}

/// The changes the test draws from: a few users, sources and destinations, roles of
/// either scope.
fn change(catalog: &Catalog) -> impl Strategy<Value = Change> + use<> {
    let workspace = WorkspaceId::parse("w").unwrap();
    let source = catalog.type_id("source").unwrap();
    let destination = catalog.type_id("destination").unwrap();
    let roles =
        ["source_read", "source_admin", "warehouse_read"].map(|r| catalog.role_id(r).unwrap());
    let instance = (select(vec![source, destination]), 0..3usize)
        .prop_map(|(ty, i)| (ty, ResourceId::parse(&format!("r{i}")).unwrap()));
    let scope = prop_oneof![
        Just(Scope::All),
        instance.clone().prop_map(|(t, i)| Scope::Instance(t, i))
    ];
    let grant = (select(roles.to_vec()), scope).prop_map(|(role, scope)| Grant { role, scope });
    let who = (0..6usize).prop_map(user);
    let w = workspace;
    prop_oneof![
        (who.clone(), any::<bool>()).prop_map({
            let w = w.clone();
            move |(user, owner)| Change::SetMembership {
                workspace: w.clone(),
                user,
                membership: if owner {
                    Membership::Owner
                } else {
                    Membership::Member
                },
            }
        }),
        who.clone().prop_map({
            let w = w.clone();
            move |user| Change::RemoveMember {
                workspace: w.clone(),
                user,
            }
        }),
        (who.clone(), grant.clone()).prop_map({
            let w = w.clone();
            move |(user, grant)| Change::AddGrant {
                workspace: w.clone(),
                user,
                grant,
            }
        }),
        (who, grant).prop_map({
            let w = w.clone();
            move |(user, grant)| Change::RemoveGrant {
                workspace: w.clone(),
                user,
                grant,
            }
        }),
        (0..3usize).prop_map({
            let w = w.clone();
            move |i| Change::RegisterResource {
                workspace: w.clone(),
                resource: (source, ResourceId::parse(&format!("r{i}")).unwrap()),
                parent: None,
            }
        }),
        instance.prop_map(move |resource| Change::DeleteResource {
            workspace: w.clone(),
            resource
        }),
    ]
}

fn sorted_grants_on(ws: &Workspace, key: &InstanceKey) -> Vec<(UserId, RoleId)> {
    let mut found: Vec<_> = ws
        .grants_on(key)
        .into_iter()
        .map(|(u, r)| (u.clone(), r))
        .collect();
    found.sort();
    found
}

proptest! {
    #[test]
    fn an_index_kept_up_by_changes_equals_one_built_afresh_and_finds_what_members_hold(
        changes in prop::collection::vec(change(&Catalog::built_in()), 0..40),
    ) {
        let catalog = Catalog::built_in();
        let mut plain = Some(Workspace::new(catalog.always_enabled()));
        let mut indexed = plain.clone();
        if let Some(ws) = indexed.as_mut() {
            ws.index_holders();
        }
        for change in &changes {
            // As the engine plans a deletion: the grants on the instance go first.
            let mut cascade = Vec::new();
            if let (Change::DeleteResource { workspace, resource }, Some(ws)) = (change, &plain) {
                for (user, role) in ws.grants_on(resource) {
                    cascade.push(Change::RemoveGrant {
                        workspace: workspace.clone(),
                        user: user.clone(),
                        grant: Grant { role, scope: Scope::Instance(resource.0, resource.1.clone()) },
                    });
                }
            }
            for change in cascade.iter().chain([change]) {
                Workspace::apply(&mut plain, change);
                Workspace::apply(&mut indexed, change);
            }
            let (Some(plain), Some(indexed)) = (plain.as_ref(), indexed.as_mut()) else {
                continue;
            };
            prop_assert!(plain.holders().is_none());
            // A member leaving drops the index of a workspace this small: index
            // again, so that the next changes are kept up in an index too.
            if indexed.holders().is_none() {
                indexed.index_holders();
            }
            let mut afresh = indexed.clone();
            afresh.index_holders();
            prop_assert_eq!(indexed.holders(), afresh.holders());
            let indexed = &*indexed;
            for ty in ["source", "destination"] {
                for i in 0..3 {
                    let key = (catalog.type_id(ty).unwrap(), ResourceId::parse(&format!("r{i}")).unwrap());
                    prop_assert_eq!(sorted_grants_on(plain, &key), sorted_grants_on(indexed, &key));
                }
            }
        }
    }
}

/// Instances (sources, and destinations with or without a registered parent) and
/// members with grants, each once, in random order.
fn parts(catalog: &Catalog) -> impl Strategy<Value = Parts> + use<> {
    let source = catalog.type_id("source").unwrap();
    let destination = catalog.type_id("destination").unwrap();
    let roles =
        ["source_read", "source_admin", "warehouse_read"].map(|r| catalog.role_id(r).unwrap());
    let rid = |i: usize| ResourceId::parse(&format!("r{i}")).unwrap();
    let instances = prop::collection::btree_map(
        (select(vec![source, destination]), 0..6usize),
        prop::option::of(0..6usize),
        0..10,
    )
    .prop_map(move |found| {
        found
            .into_iter()
            .map(|((ty, i), parent)| {
                let parent = parent
                    .filter(|_| ty == destination)
                    .map(|p| (source, rid(p)));
                ((ty, rid(i)), parent)
            })
            .collect::<Vec<_>>()
    })
    .prop_shuffle();
    let scope = prop_oneof![
        Just(Scope::All),
        (select(vec![source, destination]), 0..6usize)
            .prop_map(move |(ty, i)| Scope::Instance(ty, rid(i))),
    ];
    let grant = (select(roles.to_vec()), scope).prop_map(|(role, scope)| Grant { role, scope });
    let members = prop::collection::btree_map(
        0..8usize,
        (any::<bool>(), prop::collection::vec(grant, 0..4)),
        0..8,
    )
    .prop_map(|found| {
        found
            .into_iter()
            .map(|(i, (owner, grants))| {
                let membership = if owner {
                    Membership::Owner
                } else {
                    Membership::Member
                };
                let grants = grants.into_boxed_slice();
                (user(i), Member { membership, grants })
            })
            .collect::<Vec<_>>()
    })
    .prop_shuffle();
    (instances, members).prop_map(|(instances, members)| Parts {
        products: ProductSet::default(),
        instances,
        members,
        ..Parts::default()
    })
}

/// What applying `parts` record by record gives.
fn applied(parts: &Parts) -> Workspace {
    let w = WorkspaceId::parse("w").unwrap();
    let mut state = Some(Workspace::new(parts.products));
    for (resource, parent) in &parts.instances {
        let change = Change::RegisterResource {
            workspace: w.clone(),
            resource: resource.clone(),
            parent: parent.clone(),
        };
        Workspace::apply(&mut state, &change);
    }
    for (user, member) in &parts.members {
        let join = Change::SetMembership {
            workspace: w.clone(),
            user: user.clone(),
            membership: member.membership,
        };
        Workspace::apply(&mut state, &join);
        for grant in &member.grants {
            let give = Change::AddGrant {
                workspace: w.clone(),
                user: user.clone(),
                grant: grant.clone(),
            };
            Workspace::apply(&mut state, &give);
        }
    }
    state.unwrap()
}

proptest! {
    #[test]
    fn a_workspace_built_from_parts_equals_one_built_record_by_record(
        parts in parts(&Catalog::built_in()),
        next in parts(&Catalog::built_in()),
    ) {
        let mut parts = parts;
        let expected = applied(&parts);
        let built = Workspace::from_parts(&mut parts);
        prop_assert_eq!(&built, &expected);
        prop_assert!(parts.instances.is_empty() && parts.members.is_empty());

        // The same buffers, again, for the next workspace.
        let expected = applied(&next);
        parts.products = next.products;
        parts.instances.extend(next.instances);
        parts.members.extend(next.members);
        prop_assert_eq!(&Workspace::from_parts(&mut parts), &expected);
    }
}

#[test]
fn deleting_every_instance_of_the_last_types_equals_a_workspace_that_never_had_them() {
    let catalog = Catalog::built_in();
    let ty = |name: &str| catalog.type_id(name).unwrap();
    let id = |raw: &str| ResourceId::parse(raw).unwrap();
    let (source, destination, last) = (ty("source"), ty("destination"), ty("trait"));
    assert!(
        last > destination && destination > source,
        "trait is the last slot"
    );
    let w = WorkspaceId::parse("w").unwrap();
    let kept = Parts {
        products: catalog.always_enabled(),
        instances: vec![((source, id("s1")), None)],
        ..Parts::default()
    };
    let mut state = Some(applied(&kept));
    let added = [
        ((destination, id("d1")), Some((source, id("s1")))),
        ((last, id("t1")), None),
        ((last, id("t2")), None),
    ];
    for (resource, parent) in &added {
        let change = Change::RegisterResource {
            workspace: w.clone(),
            resource: resource.clone(),
            parent: parent.clone(),
        };
        Workspace::apply(&mut state, &change);
    }
    assert_ne!(state.as_ref(), Some(&applied(&kept)));
    for (resource, _) in added.iter().rev() {
        let change = Change::DeleteResource {
            workspace: w.clone(),
            resource: resource.clone(),
        };
        Workspace::apply(&mut state, &change);
    }
    let mut parts = kept;
    assert_eq!(state, Some(Workspace::from_parts(&mut parts)));
    let state = state.unwrap();
    assert_eq!(state.instance_types().collect::<Vec<_>>(), [source]);
    assert!(state.instance_named(last, "t1").is_none());
}

#[test]
fn a_workspace_built_from_parts_shares_ids_and_indexes_holders_past_the_threshold() {
    let catalog = Catalog::built_in();
    let source = catalog.type_id("source").unwrap();
    let destination = catalog.type_id("destination").unwrap();
    let role = catalog.role_id("source_read").unwrap();
    let s1 = || ResourceId::parse("s1").unwrap();
    let mut parts = Parts {
        products: catalog.always_enabled(),
        instances: vec![
            (
                (destination, ResourceId::parse("d1").unwrap()),
                Some((source, s1())),
            ),
            ((source, s1()), None),
        ],
        members: (0..=HOLDER_INDEX_FROM)
            .map(|i| {
                let grant = Grant {
                    role,
                    scope: Scope::Instance(source, s1()),
                };
                let grants = Box::new([grant]) as Box<[Grant]>;
                (
                    user(i),
                    Member {
                        membership: Membership::Member,
                        grants,
                    },
                )
            })
            .collect(),
        ..Parts::default()
    };
    let expected = applied(&parts);
    let built = Workspace::from_parts(&mut parts);
    assert_eq!(built, expected);
    assert!(built.holders().is_some());

    let (stored, _) = built.instance_named(source, "s1").unwrap();
    let destination_parent = built.instance(&(destination, ResourceId::parse("d1").unwrap()));
    let Some(Instance {
        parent: Some((_, parent)),
    }) = destination_parent
    else {
        panic!("the destination keeps its parent");
    };
    assert!(
        std::ptr::eq(parent.as_str(), stored.as_str()),
        "the parent shares the source's id"
    );
    let member = built.member(&user(3)).unwrap();
    let Some(Grant {
        scope: Scope::Instance(_, granted),
        ..
    }) = member.grants.first()
    else {
        panic!("the member keeps their grant");
    };
    assert!(
        std::ptr::eq(granted.as_str(), stored.as_str()),
        "the grant shares the source's id"
    );
}

#[test]
fn a_workspace_indexes_holders_past_the_threshold_and_drops_the_index_well_below_it() {
    let catalog = Catalog::built_in();
    let workspace = WorkspaceId::parse("w").unwrap();
    let role = catalog.role_id("source_read").unwrap();
    let mut state = Some(Workspace::new(catalog.always_enabled()));
    let join = |state: &mut Option<Workspace>, i| {
        for change in [
            Change::SetMembership {
                workspace: workspace.clone(),
                user: user(i),
                membership: Membership::Member,
            },
            Change::AddGrant {
                workspace: workspace.clone(),
                user: user(i),
                grant: Grant {
                    role,
                    scope: Scope::All,
                },
            },
        ] {
            Workspace::apply(state, &change);
        }
    };
    for i in 0..HOLDER_INDEX_FROM {
        join(&mut state, i);
    }
    let ws = state.as_ref().unwrap();
    assert!(
        ws.holders().is_none(),
        "{HOLDER_INDEX_FROM} members: no index yet"
    );

    join(&mut state, HOLDER_INDEX_FROM);
    let holders = state
        .as_ref()
        .unwrap()
        .holders()
        .expect("an index past the threshold");
    assert_eq!(
        holders.all_scope_after(role, None).count(),
        HOLDER_INDEX_FROM + 1
    );
    assert_eq!(
        holders.all_scope_after(role, Some(&user(9))).next(),
        Some(&user(10))
    );

    let leave = |state: &mut Option<Workspace>, i| {
        Workspace::apply(
            state,
            &Change::RemoveMember {
                workspace: workspace.clone(),
                user: user(i),
            },
        );
    };
    for i in 0..=HOLDER_INDEX_FROM - HOLDER_INDEX_UNTIL {
        leave(&mut state, i);
    }
    let ws = state.as_ref().unwrap();
    assert_eq!(ws.members().count(), HOLDER_INDEX_UNTIL);
    assert!(
        ws.holders().is_some(),
        "kept down to {HOLDER_INDEX_UNTIL} members"
    );
    assert_eq!(
        ws.holders().unwrap().all_scope_after(role, None).count(),
        HOLDER_INDEX_UNTIL
    );
    leave(&mut state, HOLDER_INDEX_FROM);
    assert!(
        state.as_ref().unwrap().holders().is_none(),
        "dropped below {HOLDER_INDEX_UNTIL}"
    );
}
