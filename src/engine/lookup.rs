//! The lookups: which instances a user holds a permission on, and which users hold a
//! permission on one instance. Both agree with [`check`] on every pair.
//!
//! Cost, and the index that bounds it (n: the workspace's size, p: the page size):
//! - Resources of an owner, or of a member with an allowing all-scope grant: the answer
//!   is every instance of the type, read in order from `instances`, keyed by (type, id):
//!   O(log n + p).
//! - Resources of any other member: only that member's grants (sorted in their member
//!   record), each giving its own instance, or for a child type that instance's children
//!   read by (type, id) from the `children` index: O(grants · (log n + p)). Hierarchies
//!   deeper than the built-in catalog's collect the covered subtree, all of it answer.
//! - Subjects of a workspace past `HOLDER_INDEX_FROM` members: `owners`, the all-scope
//!   holders of each allowing role (both sorted sets of users, entered at the page token)
//!   and the holders of grants on the target and its ancestors, merged in user order;
//!   each candidate is then confirmed by [`check`] for its exact basis:
//!   O(roles · log n + the resource's grants), plus per user listed O(roles + log n +
//!   that user's grants).
//! - Subjects of a smaller workspace, and of an `every_member` permission: every member
//!   from the page token on, each confirmed by [`check`]: O(members), at most a few
//!   hundred checks, which costs less than keeping the index in every small workspace.

use std::iter::Peekable;

use super::check::{Check, check};
use crate::model::{
    Catalog, Decision, Membership, PermissionId, ResourceId, Scope, TypeId, UserId, Workspace,
    catalog::MAX_TYPE_DEPTH, catalog::Target,
};

/// A page of the instances of the permission's type on which `user` holds
/// `permission`: up to `limit` ids after `after`, in id order, and whether more follow.
/// Empty for non-members, a disabled product, or a permission that names the workspace.
pub fn lookup_resources<'a>(
    catalog: &Catalog,
    workspace: Option<&'a Workspace>,
    user: &UserId,
    permission: PermissionId,
    after: Option<&'a ResourceId>,
    limit: usize,
) -> (Vec<&'a ResourceId>, bool) {
    let Some(workspace) = workspace else {
        return (Vec::new(), false);
    };
    let Some(member) = workspace.member(user) else {
        return (Vec::new(), false);
    };
    let Some(definition) = catalog.permission(permission) else {
        return (Vec::new(), false);
    };
    let Target::Instance(ty) = definition.target else {
        return (Vec::new(), false);
    };
    let products = workspace.products();
    if !products.contains(definition.product) {
        return (Vec::new(), false);
    }
    let allowing: Vec<&Scope> = member
        .grants
        .iter()
        .filter(|grant| {
            catalog
                .role(grant.role)
                .is_some_and(|role| products.contains(role.product) && role.allows(permission))
        })
        .map(|grant| &grant.scope)
        .collect();
    let everything = member.membership == Membership::Owner
        || definition.every_member
        || allowing.contains(&&Scope::All);
    let ids: Box<dyn Iterator<Item = &'a ResourceId> + 'a> = if everything {
        Box::new(workspace.instances_of(ty, after).map(|(id, _)| id))
    } else {
        Box::new(Union::new(
            allowing
                .into_iter()
                .filter_map(|scope| match scope {
                    Scope::Instance(scope_type, id) => Some((*scope_type, id)),
                    Scope::All => None,
                })
                .map(|scope| covered_of_type(catalog, workspace, scope, ty, after))
                .collect(),
        ))
    };
    page(ids.map(Some), limit)
}

/// A page of the users who hold `permission` on `resource` (absent for a permission
/// that names the workspace): up to `limit` users after `after`, in user id order,
/// each with the allowing decision [`check`] gives, and whether more follow. Empty when
/// the product is disabled or the instance is not registered.
pub fn lookup_subjects<'a>(
    catalog: &Catalog,
    workspace: Option<&'a Workspace>,
    permission: PermissionId,
    resource: Option<&ResourceId>,
    after: Option<&'a UserId>,
    limit: usize,
) -> (Vec<(&'a UserId, Decision)>, bool) {
    let Some(workspace) = workspace else {
        return (Vec::new(), false);
    };
    let Some(definition) = catalog.permission(permission) else {
        return (Vec::new(), false);
    };
    let products = workspace.products();
    if !products.contains(definition.product) {
        return (Vec::new(), false);
    }
    let target = match (definition.target, resource) {
        (Target::Workspace, None) => None,
        (Target::Instance(ty), Some(id)) => {
            let key = (ty, id.clone());
            if workspace.instance(&key).is_none() {
                return (Vec::new(), false);
            }
            Some(key)
        }
        _ => return (Vec::new(), false),
    };
    // Every candidate is checked below, so reading every member is right too: what a
    // workspace without an index of holders does.
    let holders = workspace.holders().filter(|_| !definition.every_member);
    let candidates: Box<dyn Iterator<Item = &'a UserId> + 'a> = if let Some(holders) = holders {
        let mut sources: Vec<Box<dyn Iterator<Item = &'a UserId> + 'a>> =
            vec![Box::new(workspace.owners_after(after))];
        let allowing: Vec<_> = catalog
            .roles()
            .filter(|(_, role)| products.contains(role.product) && role.allows(permission))
            .map(|(id, _)| id)
            .collect();
        for role in &allowing {
            sources.push(Box::new(holders.all_scope_after(*role, after)));
        }
        let mut of_instances: Vec<&'a UserId> = Vec::new();
        for key in target.iter().flat_map(|target| workspace.lineage(target)) {
            of_instances.extend(
                holders
                    .of_instance(key)
                    .filter(|(user, role)| {
                        allowing.contains(role) && after.is_none_or(|a| user > a)
                    })
                    .map(|(user, _)| user),
            );
        }
        of_instances.sort_unstable();
        of_instances.dedup();
        sources.push(Box::new(of_instances.into_iter()));
        Box::new(Union::new(sources))
    } else {
        Box::new(workspace.members_after(after).map(|(user, _)| user))
    };
    let decisions = candidates.map(|user| {
        let decision = check(
            catalog,
            Some(workspace),
            &Check {
                user: user.clone(),
                permission,
                resource: resource.cloned(),
            },
        );
        decision.allowed().then_some((user, decision))
    });
    page(decisions, limit)
}

/// Takes up to `limit` of the kept items (`Some`), and says whether another follows.
fn page<T>(items: impl Iterator<Item = Option<T>>, limit: usize) -> (Vec<T>, bool) {
    let mut kept = Vec::with_capacity(limit.min(64));
    for item in items.flatten() {
        if kept.len() == limit {
            return (kept, true);
        }
        kept.push(item);
    }
    (kept, false)
}

/// The ids of the instances of type `ty` that an instance grant on `scope` covers,
/// after `after`, in id order: the instance itself, or its descendants of that type.
fn covered_of_type<'a>(
    catalog: &Catalog,
    workspace: &'a Workspace,
    scope: (TypeId, &'a ResourceId),
    ty: TypeId,
    after: Option<&'a ResourceId>,
) -> Box<dyn Iterator<Item = &'a ResourceId> + 'a> {
    let (scope_type, scope_id) = scope;
    let scope = (scope_type, scope_id.clone());
    if scope_type == ty {
        let registered = workspace.instance(&scope).is_some();
        let fresh = after.is_none_or(|a| scope_id > a);
        return Box::new((registered && fresh).then_some(scope_id).into_iter());
    }
    if catalog.parent_type(ty) == Some(scope_type) {
        return Box::new(workspace.children_of_type(&scope, ty, after));
    }
    if !is_ancestor_type(catalog, scope_type, ty) {
        return Box::new(std::iter::empty());
    }
    // Deeper hierarchies are not in the built-in catalog: collect the subtree, which
    // the grant covers entirely, and sort it.
    let mut found = Vec::new();
    let mut stack = vec![(scope, 0)];
    while let Some((key, depth)) = stack.pop() {
        if depth >= MAX_TYPE_DEPTH {
            continue;
        }
        for child in workspace.children(&key) {
            if child.0 == ty {
                if after.is_none_or(|a| &child.1 > a) {
                    found.push(&child.1);
                }
            } else if is_ancestor_type(catalog, child.0, ty) {
                stack.push((child.clone(), depth + 1));
            }
        }
    }
    found.sort_unstable();
    Box::new(found.into_iter())
}

/// Whether `ancestor` is a proper ancestor type of `ty`.
fn is_ancestor_type(catalog: &Catalog, ancestor: TypeId, ty: TypeId) -> bool {
    let mut current = catalog.parent_type(ty);
    for _ in 0..MAX_TYPE_DEPTH {
        match current {
            Some(parent) if parent == ancestor => return true,
            Some(parent) => current = catalog.parent_type(parent),
            None => return false,
        }
    }
    false
}

/// The union of sorted iterators, sorted and without duplicates.
struct Union<'a, T> {
    sources: Vec<Peekable<Box<dyn Iterator<Item = &'a T> + 'a>>>,
}

impl<'a, T: Ord> Union<'a, T> {
    fn new(sources: Vec<Box<dyn Iterator<Item = &'a T> + 'a>>) -> Self {
        Self {
            sources: sources.into_iter().map(Iterator::peekable).collect(),
        }
    }
}

impl<'a, T: Ord> Iterator for Union<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        let least = self
            .sources
            .iter_mut()
            .filter_map(|source| source.peek().copied())
            .min()?;
        for source in &mut self.sources {
            while source.next_if(|item| *item == least).is_some() {}
        }
        Some(least)
    }
}

#[cfg(test)]
mod tests;
