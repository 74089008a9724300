//! The in-memory state of one workspace: its products, memberships, grants and resource
//! instances, with the indexes lookups need. A write changes a copy while checks keep
//! reading the published one: small tables are flat arrays, cheap to copy, and large ones
//! persistent B-trees, whose copy is O(1) (see `table`).

use super::{
    catalog::{MAX_TYPE_DEPTH, ProductSet, RoleId, TypeId},
    change::Change,
    ids::{ResourceId, UserId},
    table::{Set, Table},
};

/// A user's membership of a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Membership {
    /// Allowed every permission of the enabled products.
    Owner,
    /// Allowed `workspace.read` and what their grants give.
    Member,
}

/// What a grant covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// All current and future instances of the role's types.
    All,
    /// One instance of the role's scope type (and the instances whose parent it is).
    Instance(TypeId, ResourceId),
}

/// A role held by a member with its scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Grant {
    /// The role.
    pub role: RoleId,
    /// What it covers.
    pub scope: Scope,
}

/// A user of a workspace: membership and grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Owner or member.
    pub membership: Membership,
    /// Their grants, sorted and without duplicates.
    pub grants: Vec<Grant>,
}

/// A registered resource instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Its parent instance (a destination's source).
    pub parent: Option<InstanceKey>,
}

/// A resource instance's key within a workspace.
pub type InstanceKey = (TypeId, ResourceId);

/// One workspace's state.
#[derive(Debug, Clone, Default)]
pub struct Workspace {
    products: ProductSet,
    members: Table<UserId, Member>,
    owners: Set<UserId>,
    /// By type, then id: an instance is found by a borrowed id, without building a key.
    instances: Table<TypeId, Table<ResourceId, Instance>>,
    children: Table<InstanceKey, Set<InstanceKey>>,
    all_scope_holders: Table<RoleId, Set<UserId>>,
    instance_grant_holders: Table<InstanceKey, Set<(UserId, RoleId)>>,
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

    /// The registered instance of type `ty` with id `id`, with its id as stored.
    pub fn instance_named(&self, ty: TypeId, id: &str) -> Option<(&ResourceId, &Instance)> {
        self.instances.get(&ty)?.get_key_value_str(id)
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
            .get(&ty)
            .into_iter()
            .flat_map(move |of_type| of_type.range::<str, _>((start, std::ops::Bound::Unbounded)))
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

    /// The users holding `role` scoped to all instances, in user id order.
    pub fn all_scope_holders(&self, role: RoleId) -> impl Iterator<Item = &UserId> {
        self.all_scope_holders
            .get(&role)
            .into_iter()
            .flat_map(Set::keys)
    }

    /// The (user, role) pairs of the grants scoped to instance `key`.
    pub fn instance_grant_holders(
        &self,
        key: &InstanceKey,
    ) -> impl Iterator<Item = &(UserId, RoleId)> {
        self.instance_grant_holders
            .get(key)
            .into_iter()
            .flat_map(Set::keys)
    }

    /// How many grants the workspace holds.
    pub fn grant_count(&self) -> usize {
        self.members.values().map(|m| m.grants.len()).sum()
    }

    /// Applies one change that the engine planned against this state (`None`: the
    /// workspace does not exist). Changes that do not fit, such as a grant for a
    /// non-member, are ignored: the engine never plans them.
    pub fn apply(state: &mut Option<Self>, change: &Change) {
        match (change, state.as_mut()) {
            (Change::CreateWorkspace { products, .. }, _) => *state = Some(Self::new(*products)),
            (Change::DeleteWorkspace { .. }, _) => *state = None,
            (_, Some(workspace)) => workspace.apply_within(change),
            (_, None) => {}
        }
    }

    fn apply_within(&mut self, change: &Change) {
        match change {
            Change::CreateWorkspace { .. } | Change::DeleteWorkspace { .. } => {}
            Change::SetProducts { products, .. } => self.products = *products,
            Change::SetMembership {
                user, membership, ..
            } => self.set_membership(user, *membership),
            Change::RemoveMember { user, .. } => self.remove_member(user),
            Change::AddGrant { user, grant, .. } => self.add_grant(user, grant),
            Change::RemoveGrant { user, grant, .. } => self.remove_grant(user, grant),
            Change::RegisterResource {
                resource, parent, ..
            } => self.register(resource, parent.as_ref()),
            Change::DeleteResource { resource, .. } => self.delete_resource(resource),
        }
    }

    fn set_membership(&mut self, user: &UserId, membership: Membership) {
        match membership {
            Membership::Owner => {
                self.owners.add(user.clone());
            }
            Membership::Member => {
                self.owners.remove(user);
            }
        }
        match self.members.get_mut(user) {
            Some(member) => member.membership = membership,
            None => {
                self.members.insert(
                    user.clone(),
                    Member {
                        membership,
                        grants: Vec::new(),
                    },
                );
            }
        }
    }

    fn remove_member(&mut self, user: &UserId) {
        if let Some(member) = self.members.remove(user) {
            for grant in &member.grants {
                self.unindex_grant(user, grant);
            }
        }
        self.owners.remove(user);
    }

    fn add_grant(&mut self, user: &UserId, grant: &Grant) {
        // Share the id allocations the workspace already holds instead of keeping the
        // request's copies: at millions of grants, this is a third of the memory.
        let Some((user, _)) = self.members.get_key_value(user) else {
            return;
        };
        let user = user.clone();
        let grant = match &grant.scope {
            Scope::Instance(ty, id) => match self.instance_named(*ty, id.as_str()) {
                Some((stored, _)) => Grant {
                    role: grant.role,
                    scope: Scope::Instance(*ty, stored.clone()),
                },
                None => grant.clone(),
            },
            Scope::All => grant.clone(),
        };
        let Some(member) = self.members.get_mut(&user) else {
            return;
        };
        if let Err(at) = member.grants.binary_search(&grant) {
            // Grow by one: most members hold one to three grants, and a Vec starts at four.
            member.grants.reserve_exact(1);
            member.grants.insert(at, grant.clone());
            self.index_grant(&user, &grant);
        }
    }

    fn remove_grant(&mut self, user: &UserId, grant: &Grant) {
        let Some(member) = self.members.get_mut(user) else {
            return;
        };
        if let Ok(at) = member.grants.binary_search(grant) {
            member.grants.remove(at);
            self.unindex_grant(user, grant);
        }
    }

    fn index_grant(&mut self, user: &UserId, grant: &Grant) {
        match &grant.scope {
            Scope::All => self
                .all_scope_holders
                .update(grant.role, Set::default, |holders| {
                    holders.add(user.clone());
                }),
            Scope::Instance(ty, id) => {
                self.instance_grant_holders
                    .update((*ty, id.clone()), Set::default, |holders| {
                        holders.add((user.clone(), grant.role));
                    })
            }
        }
    }

    fn unindex_grant(&mut self, user: &UserId, grant: &Grant) {
        match &grant.scope {
            Scope::All => remove_from_set(&mut self.all_scope_holders, &grant.role, user),
            Scope::Instance(ty, id) => remove_from_set(
                &mut self.instance_grant_holders,
                &(*ty, id.clone()),
                &(user.clone(), grant.role),
            ),
        }
    }

    fn register(&mut self, key: &InstanceKey, parent: Option<&InstanceKey>) {
        let parent = parent.map(
            |parent| match self.instance_named(parent.0, parent.1.as_str()) {
                Some((stored, _)) => (parent.0, stored.clone()),
                None => parent.clone(),
            },
        );
        if let Some(parent) = &parent {
            self.children
                .update(parent.clone(), Set::default, |children| {
                    children.add(key.clone());
                });
        }
        self.instances.update(key.0, Table::default, |of_type| {
            of_type.insert(key.1.clone(), Instance { parent });
        });
    }

    fn delete_resource(&mut self, key: &InstanceKey) {
        let removed = self.instances.get_mut(&key.0).and_then(|of_type| {
            let removed = of_type.remove(&key.1);
            removed.map(|instance| (instance, of_type.is_empty()))
        });
        if let Some((instance, type_now_empty)) = removed {
            if type_now_empty {
                self.instances.remove(&key.0);
            }
            if let Some(parent) = instance.parent {
                remove_from_set(&mut self.children, &parent, key);
            }
        }
        self.children.remove(key);
        self.instance_grant_holders.remove(key);
    }
}

fn remove_from_set<K: Ord + Clone, V: Ord + Clone>(map: &mut Table<K, Set<V>>, key: &K, value: &V) {
    if let Some(set) = map.get_mut(key) {
        set.remove(value);
        if set.is_empty() {
            map.remove(key);
        }
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

    /// The users holding `role` scoped to all instances after `after` (exclusive), in
    /// user id order.
    pub fn all_scope_holders_after<'a>(
        &'a self,
        role: RoleId,
        after: Option<&UserId>,
    ) -> impl Iterator<Item = &'a UserId> + use<'a> {
        let range = exclusive_from(after);
        self.all_scope_holders
            .get(&role)
            .into_iter()
            .flat_map(move |holders| holders.range::<UserId, _>(range.clone()))
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

fn exclusive_from<T: Clone>(after: Option<&T>) -> (std::ops::Bound<T>, std::ops::Bound<T>) {
    match after {
        Some(after) => (
            std::ops::Bound::Excluded(after.clone()),
            std::ops::Bound::Unbounded,
        ),
        None => (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded),
    }
}
