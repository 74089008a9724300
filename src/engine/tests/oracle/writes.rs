//! How the reference model applies writes: the model's rules on memberships, grants,
//! products and instances, over the plain state, with cascades spelled out.

use std::collections::BTreeSet;

use super::{RefMember, RefScope, World, parent_type, role_of};

/// A write, by names, as the model describes it.
#[derive(Debug, Clone)]
pub(in crate::engine::tests) enum Op {
    CreateWorkspace {
        owner: String,
        add_ons: Vec<&'static str>,
    },
    DeleteWorkspace,
    SetProducts {
        add_ons: Vec<&'static str>,
    },
    SetMembership {
        user: String,
        owner: bool,
    },
    RemoveMember {
        user: String,
    },
    Register {
        ty: &'static str,
        id: String,
        parent: Option<String>,
    },
    Delete {
        ty: &'static str,
        id: String,
    },
    Grant {
        user: String,
        role: &'static str,
        scope: RefScope,
    },
    Revoke {
        user: String,
        role: &'static str,
        scope: RefScope,
    },
}

/// Applies `op` as the model says: `Some(changed)`, or `None` when the model refuses it.
pub(in crate::engine::tests) fn apply(world: &mut Option<World>, op: &Op) -> Option<bool> {
    match op {
        Op::CreateWorkspace { owner, add_ons } => {
            if world.is_some() {
                return None;
            }
            let mut new = World {
                add_ons: add_ons.iter().map(|p| (*p).to_owned()).collect(),
                ..World::default()
            };
            new.members.insert(
                owner.clone(),
                RefMember {
                    owner: true,
                    grants: BTreeSet::new(),
                },
            );
            *world = Some(new);
            Some(true)
        }
        Op::DeleteWorkspace => Some(world.take().is_some()),
        _ => world.as_mut()?.apply(op),
    }
}

impl World {
    fn apply(&mut self, op: &Op) -> Option<bool> {
        match op {
            Op::CreateWorkspace { .. } => None,
            Op::DeleteWorkspace => Some(true),
            Op::SetProducts { add_ons } => {
                let add_ons: BTreeSet<String> = add_ons.iter().map(|p| (*p).to_owned()).collect();
                let changed = add_ons != self.add_ons;
                self.add_ons = add_ons;
                Some(changed)
            }
            Op::SetMembership { user, owner } => {
                let last_owner = self.owners() == 1;
                match self.members.get_mut(user) {
                    Some(member) if member.owner == *owner => Some(false),
                    // Rule 7: a workspace always has an owner.
                    Some(member) if member.owner && last_owner => None,
                    Some(member) => {
                        member.owner = *owner;
                        Some(true)
                    }
                    None => {
                        self.members.insert(
                            user.clone(),
                            RefMember {
                                owner: *owner,
                                grants: BTreeSet::new(),
                            },
                        );
                        Some(true)
                    }
                }
            }
            Op::RemoveMember { user } => {
                let last_owner = self.owners() == 1;
                match self.members.get(user) {
                    None => Some(false),
                    Some(member) if member.owner && last_owner => None,
                    // Rule 8: leaving removes the user's grants with the membership.
                    Some(_) => Some(self.members.remove(user).is_some()),
                }
            }
            Op::Register { ty, id, parent } => {
                match (parent_type(ty), parent) {
                    (Some(parent_ty), Some(parent)) if self.registered(parent_ty, parent) => {}
                    (None, None) => {}
                    _ => return None,
                }
                let key = ((*ty).to_owned(), id.clone());
                match self.instances.get(&key) {
                    Some(existing) if existing == parent => Some(false),
                    Some(_) => None,
                    None => {
                        self.instances.insert(key, parent.clone());
                        Some(true)
                    }
                }
            }
            Op::Delete { ty, id } => {
                if !self.registered(ty, id) {
                    return Some(false);
                }
                // The instance and the instances whose parent it is (a source's destinations).
                let doomed: Vec<(String, String)> = self
                    .instances
                    .iter()
                    .filter(|((child_ty, _), parent)| {
                        parent_type(child_ty) == Some(*ty) && parent.as_deref() == Some(id)
                    })
                    .map(|(key, _)| key.clone())
                    .chain([((*ty).to_owned(), id.clone())])
                    .collect();
                for member in self.members.values_mut() {
                    member.grants.retain(|(_, scope)| match scope {
                        RefScope::All => true,
                        RefScope::One(ty, id) => !doomed.contains(&(ty.clone(), id.clone())),
                    });
                }
                for key in &doomed {
                    self.instances.remove(key);
                }
                Some(true)
            }
            Op::Grant { user, role, scope } => {
                let role_row = role_of(role);
                // Rule 4: a role of a disabled product cannot be granted.
                if !self.enabled(role_row.product) {
                    return None;
                }
                if let RefScope::One(ty, id) = scope {
                    if role_row.one != Some(ty.as_str()) || !self.registered(ty, id) {
                        return None;
                    }
                }
                let member = self.members.get_mut(user)?;
                Some(member.grants.insert(((*role).to_owned(), scope.clone())))
            }
            Op::Revoke { user, role, scope } => Some(
                self.members
                    .get_mut(user)
                    .is_some_and(|m| m.grants.remove(&((*role).to_owned(), scope.clone()))),
            ),
        }
    }
}
