//! How a workspace applies the changes a write is made of, keeping its indexes up.

use super::{
    Workspace,
    holders::{HOLDER_INDEX_FROM, HOLDER_INDEX_UNTIL},
};
use crate::model::{
    access::{Grant, Instance, InstanceKey, Member, Scope},
    change::Change,
    ids::UserId,
    membership::Membership,
    table::{Set, remove_from_set},
};

impl Workspace {
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
            holders.remove_instance(key);
        }
    }
}
