//! The in-memory state of one workspace: its products, memberships, grants and resource
//! instances, with the indexes lookups need. A write changes a copy while checks keep
//! reading the published one: small tables are flat arrays, cheap to copy, and large ones
//! persistent B-trees, whose copy is O(1) (see `table`).

mod apply;
mod holders;
mod parts;
#[cfg(test)]
mod tests;

pub use holders::{HOLDER_INDEX_FROM, Holders};
pub use parts::{Parts, registered_id};

use super::{
    access::{Instance, InstanceKey, Member, Scope},
    by_type::ByType,
    catalog::{MAX_TYPE_DEPTH, ProductSet, RoleId, TypeId},
    id_table::IdTable,
    ids::{ResourceId, UserId},
    table::{Set, Table, exclusive_from},
};

/// One workspace's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workspace {
    products: ProductSet,
    members: IdTable<UserId, Member>,
    owners: Set<UserId>,
    /// By type, then id: an instance is found by a borrowed id, without building a key.
    instances: ByType,
    children: Table<InstanceKey, Set<InstanceKey>>,
    /// Present while the workspace has more than `HOLDER_INDEX_FROM` members (and until
    /// it falls below `HOLDER_INDEX_UNTIL`).
    holders: Option<Box<Holders>>,
}

impl Workspace {
    /// A workspace with these enabled products and nothing else.
    pub fn new(products: ProductSet) -> Self {
        Self {
            products,
            ..Self::default()
        }
    }

    /// The enabled products (always-enabled ones included).
    pub fn products(&self) -> ProductSet {
        self.products
    }

    /// The user's membership and grants, if they are owner or member.
    pub fn member(&self, user: &(impl AsRef<str> + ?Sized)) -> Option<&Member> {
        self.members
            .get_key_value_str(user.as_ref())
            .map(|(_, member)| member)
    }

    /// Every user with their membership and grants, in user id order.
    pub fn members(&self) -> impl DoubleEndedIterator<Item = (&UserId, &Member)> {
        self.members.iter()
    }

    /// The users after `after` (exclusive), in user id order.
    pub fn members_after<'a>(
        &'a self,
        after: Option<&'a UserId>,
    ) -> impl Iterator<Item = (&'a UserId, &'a Member)> {
        let start = match after {
            Some(after) => std::ops::Bound::Excluded(after.clone()),
            None => std::ops::Bound::Unbounded,
        };
        self.members
            .range::<UserId, _>((start, std::ops::Bound::Unbounded))
    }

    /// The members whose ids fall in `range`, in user id order (or reversed).
    pub fn members_in(
        &self,
        range: (std::ops::Bound<&str>, std::ops::Bound<&str>),
    ) -> impl DoubleEndedIterator<Item = (&UserId, &Member)> {
        self.members.range::<str, _>(range)
    }

    /// The owners, in user id order.
    pub fn owners(&self) -> impl Iterator<Item = &UserId> {
        self.owners.keys()
    }

    /// How many owners the workspace has.
    pub fn owner_count(&self) -> usize {
        self.owners.len()
    }

    /// The registered instance `key`, if any.
    pub fn instance(&self, key: &InstanceKey) -> Option<&Instance> {
        self.instance_named(key.0, key.1.as_str())
            .map(|(_, instance)| instance)
    }

    /// The member `user` and, if `target` names one, the registered instance (`ty`,
    /// `id`) with its id as stored: what a check needs, found together. With the state
    /// out of cache each lookup is a few reads from memory, each waiting on the one
    /// before; neither lookup depends on the other, so the first reads of both are made
    /// before the second reads of either, and the processor waits for them together.
    pub fn member_and_instance(
        &self,
        user: &str,
        target: Option<(TypeId, &str)>,
    ) -> (Option<&Member>, Option<(&ResourceId, &Instance)>) {
        let members = self.members.candidates(user);
        let instances =
            target.and_then(|(ty, id)| Some((self.instances.get(ty)?.candidates(id), id)));
        let member = members.confirm(user).map(|(_, member)| member);
        let instance = instances.and_then(|(candidates, id)| candidates.confirm(id));
        (member, instance)
    }

    /// The registered instance of type `ty` with id `id`, with its id as stored.
    pub fn instance_named(&self, ty: TypeId, id: &str) -> Option<(&ResourceId, &Instance)> {
        self.instances.get(ty)?.get_key_value_str(id)
    }

    /// The registered instances of type `ty` after `after` (exclusive), in id order.
    pub fn instances_of<'a>(
        &'a self,
        ty: TypeId,
        after: Option<&'a ResourceId>,
    ) -> impl Iterator<Item = (&'a ResourceId, &'a Instance)> {
        let start = match after {
            Some(after) => std::ops::Bound::Excluded(after.as_str()),
            None => std::ops::Bound::Unbounded,
        };
        self.instances
            .get(ty)
            .into_iter()
            .flat_map(move |of_type| of_type.range::<str, _>((start, std::ops::Bound::Unbounded)))
    }

    /// The registered instances of type `ty` whose ids fall in `range`, in id order (or
    /// reversed).
    pub fn instances_in<'a>(
        &'a self,
        ty: TypeId,
        range: (std::ops::Bound<&'a str>, std::ops::Bound<&'a str>),
    ) -> impl DoubleEndedIterator<Item = (&'a ResourceId, &'a Instance)> {
        self.instances
            .get(ty)
            .into_iter()
            .flat_map(move |of_type| of_type.range::<str, _>(range))
    }

    /// The types of which the workspace has registered instances.
    pub fn instance_types(&self) -> impl Iterator<Item = TypeId> + '_ {
        self.instances.iter().map(|(ty, _)| ty)
    }

    /// `key` and the instances above it: a destination, then its source.
    pub fn lineage<'a>(&'a self, key: &'a InstanceKey) -> impl Iterator<Item = &'a InstanceKey> {
        std::iter::successors(Some(key), move |key| {
            self.instance(key)
                .and_then(|instance| instance.parent.as_ref())
        })
        .take(MAX_TYPE_DEPTH)
    }

    /// The instances whose parent is `key` (a source's destinations).
    pub fn children(&self, key: &InstanceKey) -> impl Iterator<Item = &InstanceKey> {
        self.children.get(key).into_iter().flat_map(Set::keys)
    }

    /// The index of grant holders, if the workspace is large enough to keep one.
    pub fn holders(&self) -> Option<&Holders> {
        self.holders.as_deref()
    }

    /// The (user, role) pairs of the grants scoped to instance `key`, in no set order:
    /// from the index if there is one, else from every member.
    pub fn grants_on(&self, key: &InstanceKey) -> Vec<(&UserId, RoleId)> {
        if let Some(holders) = self.holders() {
            return holders.of_instance(key).map(|(u, r)| (u, *r)).collect();
        }
        let mut found = Vec::new();
        for (user, member) in self.members.iter() {
            for grant in &member.grants {
                if let Scope::Instance(ty, id) = &grant.scope
                    && *ty == key.0
                    && *id == key.1
                {
                    found.push((user, grant.role));
                }
            }
        }
        found
    }

    /// How many members (owners included) the workspace has.
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// How many resource instances are registered in the workspace.
    pub fn instance_count(&self) -> usize {
        self.instances
            .iter()
            .map(|(_, of_type)| of_type.len())
            .sum()
    }

    /// How many grants the workspace holds.
    pub fn grant_count(&self) -> usize {
        self.members.values().map(|m| m.grants.len()).sum()
    }

    /// Builds the index of grant holders from every member's grants: when the workspace
    /// passes `HOLDER_INDEX_FROM` members, and in tests of both ways of finding holders.
    pub(crate) fn index_holders(&mut self) {
        let mut holders = Holders::default();
        for (user, member) in self.members.iter() {
            for grant in &member.grants {
                holders.add(user, grant);
            }
        }
        self.holders = Some(Box::new(holders));
    }
}

/// Ranged reads of the indexes, for lookups that resume a page in the middle of a set.
impl Workspace {
    /// The owners after `after` (exclusive), in user id order.
    pub fn owners_after<'a>(
        &'a self,
        after: Option<&UserId>,
    ) -> impl Iterator<Item = &'a UserId> + use<'a> {
        self.owners
            .range::<UserId, _>(exclusive_from(after))
            .map(|(user, ())| user)
    }

    /// The ids of the children of `key` that have type `ty`, after `after` (exclusive),
    /// in id order.
    pub fn children_of_type<'a>(
        &'a self,
        key: &InstanceKey,
        ty: TypeId,
        after: Option<&ResourceId>,
    ) -> impl Iterator<Item = &'a ResourceId> + use<'a> {
        let range = (
            match after {
                Some(after) => std::ops::Bound::Excluded((ty, after.clone())),
                None => std::ops::Bound::Unbounded,
            },
            std::ops::Bound::Unbounded,
        );
        self.children
            .get(key)
            .into_iter()
            .flat_map(move |children| children.range::<InstanceKey, _>(range.clone()))
            .map(|(key, ())| key)
            .skip_while(move |(t, _)| *t < ty)
            .take_while(move |(t, _)| *t == ty)
            .map(|(_, id)| id)
    }
}
