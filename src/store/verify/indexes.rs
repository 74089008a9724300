//! The state start-up builds (`load.rs`) held against the records it is built from: each
//! workspace's members, owners, instances and parents, the index of children and, in a
//! large workspace, the index of grant holders; and the same workspace built again change
//! by change, as writes build it, which must come out equal.

use std::collections::BTreeSet;

use super::{Verified, records::Stored};
use crate::{
    model::{Catalog, Change, InstanceKey, Membership, Scope, UserId, Workspace, WorkspaceId},
    store::load::Loaded,
};

/// Checks `loaded` against `stored`; what the catalog cannot represent is noted.
pub fn check(catalog: &Catalog, stored: &Stored, loaded: &Loaded, verified: &mut Verified) {
    let mut unknown: Vec<_> = loaded.report.unknown_roles.iter().collect();
    unknown.sort();
    for (role, count) in unknown {
        verified.note(
            "database",
            format!(
                "{count} grant(s) of role `{role}`, which the catalog does not have: denied, \
                 and kept for a catalog that has it"
            ),
        );
    }
    for skipped in &loaded.report.skipped {
        verified.note("database", format!("left out at start-up: {skipped}"));
    }
    for (name, records) in &stored.workspaces {
        let place = format!("workspace `{name}`");
        let Some((id, workspace)) = WorkspaceId::parse(name)
            .ok()
            .and_then(|id| loaded.workspaces.get_key_value(&id))
        else {
            verified.violation(place, "has a record, but start-up does not load it");
            continue;
        };
        let mut disagree = |what: String| {
            verified.violation(
                &place,
                format!("the state start-up builds disagrees: {what}"),
            )
        };

        let members: BTreeSet<(&str, bool)> = workspace
            .members()
            .map(|(user, m)| (user.as_str(), m.membership == Membership::Owner))
            .collect();
        let recorded: BTreeSet<(&str, bool)> = records
            .members
            .iter()
            .map(|(user, owner)| (user.as_str(), *owner))
            .collect();
        for (user, owner) in members.symmetric_difference(&recorded) {
            let role = if *owner { "owner" } else { "member" };
            disagree(format!(
                "{role} `{user}` is {} its records",
                if members.contains(&(*user, *owner)) {
                    "loaded but not in"
                } else {
                    "in but not loaded from"
                }
            ));
        }
        let owners: BTreeSet<&str> = workspace.owners().map(UserId::as_str).collect();
        let owner_records: BTreeSet<&str> = recorded
            .iter()
            .filter(|(_, owner)| *owner)
            .map(|(user, _)| *user)
            .collect();
        if owners != owner_records || workspace.owner_count() != owners.len() {
            disagree(format!(
                "the index of owners holds {owners:?}, the member records {owner_records:?}"
            ));
        }

        let instances: Vec<(InstanceKey, Option<InstanceKey>)> = workspace
            .instance_types()
            .flat_map(|ty| {
                workspace
                    .instances_of(ty, None)
                    .map(move |(id, instance)| ((ty, id.clone()), instance.parent.clone()))
            })
            .collect();
        let known = records
            .instances
            .keys()
            .filter(|(ty, _)| catalog.type_id(ty).is_some())
            .count();
        if instances.len() != known {
            disagree(format!(
                "{} instances loaded, {known} records of types the catalog has",
                instances.len()
            ));
        }
        for (key, parent) in &instances {
            let named = (
                catalog.type_name(key.0).to_owned(),
                key.1.as_str().to_owned(),
            );
            let stored_parent = records.instances.get(&named).cloned().flatten();
            let loaded_parent = parent
                .as_ref()
                .map(|(ty, id)| (catalog.type_name(*ty).to_owned(), id.as_str().to_owned()));
            let parent_known = stored_parent
                .as_ref()
                .is_none_or(|(ty, _)| catalog.type_id(ty).is_some());
            if !records.instances.contains_key(&named) {
                disagree(format!("instance `{}:{}` has no record", named.0, named.1));
            } else if parent_known && stored_parent != loaded_parent {
                disagree(format!(
                    "instance `{}:{}` has the parent {loaded_parent:?}, its record {stored_parent:?}",
                    named.0, named.1
                ));
            }
        }
        let mut children = 0;
        for (key, _) in &instances {
            for child in workspace.children(key) {
                children += 1;
                let parent = workspace.instance(child).and_then(|i| i.parent.as_ref());
                if parent != Some(key) {
                    disagree(format!(
                        "the index of children lists `{}:{}` under `{}:{}`, not its parent",
                        catalog.type_name(child.0),
                        child.1,
                        catalog.type_name(key.0),
                        key.1
                    ));
                }
            }
        }
        // An unregistered parent is a violation of the records, reported with them.
        let with_parent = instances
            .iter()
            .filter(|(_, p)| p.as_ref().is_some_and(|p| workspace.instance(p).is_some()))
            .count();
        if children != with_parent {
            disagree(format!(
                "the index of children lists {children} instances, {with_parent} have a parent"
            ));
        }
        holders(catalog, workspace, &mut disagree);

        if rebuilt(id, workspace).as_ref() != Some(workspace) {
            disagree(
                "built again change by change, as writes build it, the workspace comes out \
                 different"
                    .to_owned(),
            );
        }
    }
    let loaded_only = loaded
        .workspaces
        .keys()
        .filter(|id| !stored.workspaces.contains_key(id.as_str()))
        .count();
    if loaded_only > 0 {
        verified.violation(
            "database",
            format!("start-up loads {loaded_only} workspace(s) that have no record"),
        );
    }
}

/// Checks the index of grant holders, if the workspace keeps one: every grant is in it,
/// and it holds no more than the grants.
fn holders(catalog: &Catalog, workspace: &Workspace, disagree: &mut impl FnMut(String)) {
    let Some(index) = workspace.holders() else {
        return;
    };
    let mut on_instances: BTreeSet<InstanceKey> = BTreeSet::new();
    let mut instance_grants = 0;
    for (user, member) in workspace.members() {
        for grant in &member.grants {
            let indexed = match &grant.scope {
                Scope::All => index
                    .all_scope_after(grant.role, None)
                    .any(|holder| holder == user),
                Scope::Instance(ty, id) => {
                    instance_grants += 1;
                    let key = (*ty, id.clone());
                    let found = index
                        .of_instance(&key)
                        .any(|(holder, role)| holder == user && *role == grant.role);
                    on_instances.insert(key);
                    found
                }
            };
            if !indexed {
                disagree(format!(
                    "the index of grant holders lacks `{user}`'s grant of `{}`",
                    catalog.role_name(grant.role)
                ));
            }
        }
    }
    let indexed: usize = on_instances
        .iter()
        .map(|key| index.of_instance(key).count())
        .sum();
    if indexed != instance_grants {
        disagree(format!(
            "the index of grant holders lists {indexed} grants on instances, the members hold \
             {instance_grants}"
        ));
    }
}

/// `workspace` built again from nothing by the changes that make it, applied one by one:
/// parents before their children, members before their grants.
fn rebuilt(id: &WorkspaceId, workspace: &Workspace) -> Option<Workspace> {
    let mut state = None;
    let mut apply = |change: Change| Workspace::apply(&mut state, &change);
    apply(Change::CreateWorkspace {
        workspace: id.clone(),
        products: workspace.products(),
    });
    let mut instances: Vec<(usize, InstanceKey, Option<InstanceKey>)> = workspace
        .instance_types()
        .flat_map(|ty| {
            workspace
                .instances_of(ty, None)
                .map(move |(rid, instance)| {
                    let key: InstanceKey = (ty, rid.clone());
                    (0, key, instance.parent.clone())
                })
        })
        .collect();
    for (depth, key, _) in &mut instances {
        *depth = workspace.lineage(key).count();
    }
    instances.sort_by_key(|(depth, _, _)| *depth);
    for (_, resource, parent) in instances {
        apply(Change::RegisterResource {
            workspace: id.clone(),
            resource,
            parent,
        });
    }
    for (user, member) in workspace.members() {
        apply(Change::SetMembership {
            workspace: id.clone(),
            user: user.clone(),
            membership: member.membership,
        });
        for grant in &member.grants {
            apply(Change::AddGrant {
                workspace: id.clone(),
                user: user.clone(),
                grant: grant.clone(),
            });
        }
    }
    state
}
