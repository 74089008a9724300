//! The index of a workspace's grant holders, kept only while the workspace has more than
//! [`HOLDER_INDEX_FROM`] members. Below that, reading every member costs less than keeping
//! the index, which was a quarter of the state of a typical workspace.

use crate::model::{
    access::{Grant, InstanceKey, Scope},
    catalog::RoleId,
    ids::UserId,
    table::{Set, Table, exclusive_from, remove_from_set},
};

/// Members past which a workspace indexes its grant holders.
pub const HOLDER_INDEX_FROM: usize = 256;
/// Members below which a workspace drops the index again (below `HOLDER_INDEX_FROM`, so
/// that a workspace at the boundary does not rebuild it on every write).
pub(super) const HOLDER_INDEX_UNTIL: usize = HOLDER_INDEX_FROM / 2;

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

    /// Indexes `user`'s `grant`.
    pub(super) fn add(&mut self, user: &UserId, grant: &Grant) {
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

    /// Forgets `user`'s `grant`.
    pub(super) fn remove(&mut self, user: &UserId, grant: &Grant) {
        match &grant.scope {
            Scope::All => remove_from_set(&mut self.all_scope, &grant.role, user),
            Scope::Instance(ty, id) => remove_from_set(
                &mut self.of_instance,
                &(*ty, id.clone()),
                &(user.clone(), grant.role),
            ),
        }
    }

    /// Forgets every grant scoped to instance `key`, which is deleted.
    pub(super) fn remove_instance(&mut self, key: &InstanceKey) {
        self.of_instance.remove(key);
    }
}
