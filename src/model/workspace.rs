//! The in-memory state of one workspace: its products, memberships, grants and resource
//! instances, with the indexes lookups need. A write changes a copy while checks keep
//! reading the published one: small tables are flat arrays, cheap to copy, and large ones
//! persistent B-trees, whose copy is O(1) (see `table`).
//!
//! The index of grant holders (by all-scope role and by instance) is kept only while a
//! workspace has more than [`HOLDER_INDEX_FROM`] members. Below that, reading every member
//! costs less than keeping the index, which was a quarter of the state of a typical
//! workspace.

use super::{
    by_type::ByType,
    catalog::{MAX_TYPE_DEPTH, ProductSet, RoleId, TypeId},
    change::Change,
    id_table::IdTable,
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
    /// Their grants, sorted and without duplicates. A boxed slice, not a `Vec`: the
    /// capacity it does not keep is 8 bytes of every one of millions of members.
    pub grants: Box<[Grant]>,
}

/// A registered resource instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Its parent instance (a destination's source).
    pub parent: Option<InstanceKey>,
}

/// A resource instance's key within a workspace.
pub type InstanceKey = (TypeId, ResourceId);

/// Members past which a workspace indexes its grant holders.
pub const HOLDER_INDEX_FROM: usize = 256;
/// Members below which a workspace drops the index again (below `HOLDER_INDEX_FROM`, so
/// that a workspace at the boundary does not rebuild it on every write).
const HOLDER_INDEX_UNTIL: usize = HOLDER_INDEX_FROM / 2;

/// Who holds which grants, by role for all-scope grants and by instance for the others:
/// what finds a large workspace's subjects without reading every member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holders {
    all_scope: Table<RoleId, Set<UserId>>,
    of_instance: Table<InstanceKey, Set<(UserId, RoleId)>>,
}

impl Holders {
    /// The users holding `role` scoped to all instances after `after` (exclusive), in
    /// user id order.
    pub fn all_scope_after<'a>(
        &'a self,
        role: RoleId,
        after: Option<&UserId>,
    ) -> impl Iterator<Item = &'a UserId> + use<'a> {
        let range = exclusive_from(after);
        self.all_scope
            .get(&role)
            .into_iter()
            .flat_map(move |holders| holders.range::<UserId, _>(range.clone()))
            .map(|(user, ())| user)
    }

    /// The (user, role) pairs of the grants scoped to instance `key`.
    pub fn of_instance(&self, key: &InstanceKey) -> impl Iterator<Item = &(UserId, RoleId)> {
        self.of_instance.get(key).into_iter().flat_map(Set::keys)
    }

    fn add(&mut self, user: &UserId, grant: &Grant) {
        match &grant.scope {
            Scope::All => self.all_scope.update(grant.role, Set::default, |holders| {
                holders.add(user.clone());
            }),
            Scope::Instance(ty, id) => {
                self.of_instance
                    .update((*ty, id.clone()), Set::default, |holders| {
                        holders.add((user.clone(), grant.role));
                    })
            }
        }
    }

    fn remove(&mut self, user: &UserId, grant: &Grant) {
        match &grant.scope {
            Scope::All => remove_from_set(&mut self.all_scope, &grant.role, user),
            Scope::Instance(ty, id) => remove_from_set(
                &mut self.of_instance,
                &(*ty, id.clone()),
                &(user.clone(), grant.role),
            ),
        }
    }
}

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

/// A workspace's records as storage holds them, to build the workspace from whole. Kept
/// from one workspace to the next, so that its buffers are allocated once per load.
#[derive(Debug, Default)]
pub struct Parts {
    /// Its enabled products.
    pub products: ProductSet,
    /// Its instances with their parents, in any order, each once.
    pub instances: Vec<(InstanceKey, Option<InstanceKey>)>,
    /// Its members with their membership and grants, in any order, each once.
    pub members: Vec<(UserId, Member)>,
    /// (parent, child) links, built while building.
    links: Vec<(InstanceKey, InstanceKey)>,
}

/// The id of instance (`ty`, `id`) as `instances`, sorted by key, hold it: for a grant or
/// a parent to share it rather than keep a copy.
pub fn registered_id<'a>(
    instances: &'a [(InstanceKey, Option<InstanceKey>)],
    ty: TypeId,
    id: &str,
) -> Option<&'a ResourceId> {
    instances
        .binary_search_by(|((t, i), _)| t.cmp(&ty).then_with(|| i.as_str().cmp(id)))
        .ok()
        .and_then(|at| instances.get(at))
        .map(|((_, stored), _)| stored)
}

impl Workspace {
    /// The workspace `parts` describe: what registering every instance and then adding
    /// every member with their grants gives, with each table allocated once at its size.
    /// Leaves `parts` empty, its buffers kept for the next workspace.
    ///
    /// Start-up builds millions of tables: growing each by one entry per record copied
    /// them over and over, and every discarded copy is a hole in the allocator's pages.
    pub fn from_parts(parts: &mut Parts) -> Self {
        let Parts {
            products,
            instances,
            members,
            links,
        } = parts;
        instances.sort_by(|(a, _), (b, _)| a.cmp(b));
        // A reference to a registered instance shares its id, as `register` and
        // `add_grant` do.
        let shared =
            |instances: &[(InstanceKey, Option<InstanceKey>)], ty: TypeId, id: &ResourceId| {
                registered_id(instances, ty, id.as_str()).map_or_else(|| id.clone(), Clone::clone)
            };
        for at in 0..instances.len() {
            let parent = match instances.get(at) {
                Some((_, Some((ty, id)))) => Some((*ty, shared(instances, *ty, id))),
                _ => None,
            };
            if let (Some((ty, id)), Some((key, slot))) = (parent, instances.get_mut(at)) {
                links.push(((ty, id.clone()), key.clone()));
                *slot = Some((ty, id));
            }
        }

        links.sort();
        let children = Table::from_entries(
            links
                .chunk_by(|(a, _), (b, _)| a == b)
                .filter_map(|run| {
                    let (parent, _) = run.first()?;
                    let set = Set::from_entries(run.iter().map(|(_, c)| (c.clone(), ())).collect());
                    Some((parent.clone(), set))
                })
                .collect(),
        );
        links.clear();

        let instance_tables = ByType::from_tables(
            instances
                .chunk_by(|((a, _), _), ((b, _), _)| a == b)
                .filter_map(|run| {
                    let ((ty, _), _) = run.first()?;
                    let of_type = IdTable::from_entries(
                        run.iter()
                            .map(|((_, id), parent)| {
                                (
                                    id.clone(),
                                    Instance {
                                        parent: parent.clone(),
                                    },
                                )
                            })
                            .collect(),
                    );
                    Some((*ty, of_type))
                })
                .collect(),
        );

        let mut owners = Vec::new();
        for (user, member) in members.iter_mut() {
            for grant in member.grants.iter_mut() {
                if let Scope::Instance(ty, id) = &grant.scope {
                    grant.scope = Scope::Instance(*ty, shared(instances, *ty, id));
                }
            }
            if !member.grants.is_sorted_by(|a, b| a < b) {
                let mut grants = std::mem::take(&mut member.grants).into_vec();
                grants.sort();
                grants.dedup();
                member.grants = grants.into_boxed_slice();
            }
            if member.membership == Membership::Owner {
                owners.push((user.clone(), ()));
            }
        }
        instances.clear();
        #[expect(
            clippy::drain_collect,
            reason = "an exact copy for the table, the buffer kept for the next workspace"
        )]
        let members: Vec<(UserId, Member)> = members.drain(..).collect();
        let mut workspace = Self {
            products: *products,
            members: IdTable::from_entries(members),
            owners: Set::from_entries(owners),
            instances: instance_tables,
            children,
            holders: None,
        };
        if workspace.members.len() > HOLDER_INDEX_FROM {
            workspace.index_holders();
        }
        workspace
    }

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
                        grants: Box::default(),
                    },
                );
                if self.holders.is_none() && self.members.len() > HOLDER_INDEX_FROM {
                    self.index_holders();
                }
            }
        }
    }

    fn remove_member(&mut self, user: &UserId) {
        if let Some(member) = self.members.remove(user)
            && let Some(holders) = self.holders.as_deref_mut()
        {
            for grant in &member.grants {
                holders.remove(user, grant);
            }
        }
        self.owners.remove(user);
        if self.members.len() < HOLDER_INDEX_UNTIL {
            self.holders = None;
        }
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
            let mut grants = std::mem::take(&mut member.grants).into_vec();
            grants.insert(at, grant.clone());
            member.grants = grants.into_boxed_slice();
            if let Some(holders) = self.holders.as_deref_mut() {
                holders.add(&user, &grant);
            }
        }
    }

    fn remove_grant(&mut self, user: &UserId, grant: &Grant) {
        let Some(member) = self.members.get_mut(user) else {
            return;
        };
        if let Ok(at) = member.grants.binary_search(grant) {
            let mut grants = std::mem::take(&mut member.grants).into_vec();
            grants.remove(at);
            member.grants = grants.into_boxed_slice();
            if let Some(holders) = self.holders.as_deref_mut() {
                holders.remove(user, grant);
            }
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
        self.instances.change(key.0, |of_type| {
            of_type.insert(key.1.clone(), Instance { parent });
        });
    }

    fn delete_resource(&mut self, key: &InstanceKey) {
        if let Some(instance) = self.instances.remove(key.0, &key.1) {
            if let Some(parent) = instance.parent {
                remove_from_set(&mut self.children, &parent, key);
            }
        }
        self.children.remove(key);
        if let Some(holders) = self.holders.as_deref_mut() {
            holders.of_instance.remove(key);
        }
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

#[cfg(test)]
mod tests {
    use proptest::{prelude::*, sample::select};

    use super::*;
    use crate::model::{Catalog, WorkspaceId};

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
}
