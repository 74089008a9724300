//! Building a workspace whole from its records as storage holds them, at start-up.

use super::{Workspace, holders::HOLDER_INDEX_FROM};
use crate::model::{
    access::{Instance, InstanceKey, Member, Scope},
    by_type::ByType,
    catalog::{ProductSet, TypeId},
    id_table::IdTable,
    ids::{ResourceId, UserId},
    membership::Membership,
    table::{Set, Table},
};

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
    pub(super) links: Vec<(InstanceKey, InstanceKey)>,
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
}
