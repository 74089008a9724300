//! The data set as AdminService writes: the phases that build it one call per write, and
//! the new grants of the Grant scenario.

use accessd::proto;

use super::{Dataset, WRITER_ROLES, scope_source};
use crate::catalog::DESTINATION;

/// One write of the load, as the AdminService request that makes it.
#[derive(Debug, Clone)]
pub enum Write {
    /// Creates a workspace with its first owner.
    CreateWorkspace(proto::CreateWorkspaceRequest),
    /// Adds an owner or a member.
    SetMembership(proto::SetMembershipRequest),
    /// Registers a resource instance.
    RegisterResource(proto::RegisterResourceRequest),
    /// Grants a role.
    Grant(proto::GrantRequest),
}

impl Dataset {
    /// The writes that build the data set, in phases: every write of a phase depends
    /// only on earlier phases, so a phase's writes may run concurrently in any order.
    pub fn phases(&self) -> Vec<Vec<Write>> {
        let mut create = Vec::new();
        let mut people_and_roots = Vec::new();
        let mut children_and_grants = Vec::new();
        for ws in &self.workspaces {
            create.push(Write::CreateWorkspace(proto::CreateWorkspaceRequest {
                workspace_id: ws.id.clone(),
                owner_user_id: ws.owners.first().cloned().unwrap_or_default(),
                products: ws.products(),
            }));
            let users = ws
                .owners
                .iter()
                .skip(1)
                .map(|u| (u, proto::Membership::Owner));
            let members = ws
                .members
                .iter()
                .map(|m| (&m.id, proto::Membership::Member));
            let writers = ws.writers.iter().map(|u| (u, proto::Membership::Member));
            for (user, membership) in users.chain(members).chain(writers) {
                people_and_roots.push(Write::SetMembership(proto::SetMembershipRequest {
                    workspace_id: ws.id.clone(),
                    user_id: user.clone(),
                    membership: membership.into(),
                    actor_user_id: String::new(),
                }));
            }
            for (type_name, instance_ids) in &ws.instances {
                for id in instance_ids {
                    people_and_roots.push(register(&ws.id, type_name, id, ""));
                }
            }
            let sources = ws.sources();
            for (id, source) in &ws.destinations {
                let parent = sources.get(*source).map_or("", String::as_str);
                children_and_grants.push(register(&ws.id, DESTINATION, id, parent));
            }
            for member in &ws.members {
                for grant in &member.grants {
                    children_and_grants.push(Write::Grant(grant_request(
                        &ws.id,
                        &member.id,
                        grant.role,
                        ws.scope(grant.scope),
                    )));
                }
            }
        }
        vec![create, people_and_roots, children_and_grants]
    }

    /// The new grants the Grant scenario writes, interleaved across workspaces: each
    /// writer member receives `source_read` and `source_admin` on each source, none of
    /// which they hold yet.
    pub fn grant_pool(&self) -> Vec<proto::GrantRequest> {
        let mut pool = Vec::with_capacity(self.grant_pool);
        let writers = self.workspaces.iter().map(|w| w.writers.len()).max();
        let sources = self.workspaces.iter().map(|w| w.sources().len()).max();
        for writer in 0..writers.unwrap_or(0) {
            for role in WRITER_ROLES {
                for source in 0..sources.unwrap_or(0) {
                    for ws in &self.workspaces {
                        if pool.len() >= self.grant_pool {
                            return pool;
                        }
                        if let (Some(user), Some(source)) =
                            (ws.writers.get(writer), ws.sources().get(source))
                        {
                            pool.push(grant_request(&ws.id, user, role, scope_source(source)));
                        }
                    }
                }
            }
        }
        pool
    }
}

fn register(workspace: &str, type_name: &str, id: &str, parent: &str) -> Write {
    Write::RegisterResource(proto::RegisterResourceRequest {
        workspace_id: workspace.to_owned(),
        resource: Some(proto::ResourceRef {
            r#type: type_name.to_owned(),
            id: id.to_owned(),
        }),
        parent_id: parent.to_owned(),
    })
}

fn grant_request(
    workspace: &str,
    user: &str,
    role: &str,
    scope: proto::Scope,
) -> proto::GrantRequest {
    proto::GrantRequest {
        workspace_id: workspace.to_owned(),
        user_id: user.to_owned(),
        role: role.to_owned(),
        scope: Some(scope),
        actor_user_id: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use accessd::proto::record::Kind;

    use super::*;
    use crate::dataset::SMALL;

    #[test]
    fn the_grant_pool_holds_distinct_new_grants_of_writers() {
        let data = Dataset::generate(1, SMALL);
        let pool = data.grant_pool();
        assert_eq!(pool.len(), SMALL.grant_pool);
        let distinct: HashSet<String> = pool.iter().map(|g| format!("{g:?}")).collect();
        assert_eq!(distinct.len(), pool.len());
        let writers: HashSet<&String> = data.workspaces.iter().flat_map(|w| &w.writers).collect();
        assert!(pool.iter().all(|g| writers.contains(&g.user_id)));
    }

    #[test]
    fn records_and_one_call_per_write_hold_the_same_grants_and_resources() {
        let data = Dataset::generate(4, SMALL);
        let mut from_records = HashSet::new();
        for record in data.records() {
            match record.kind.unwrap() {
                Kind::Grant(g) => from_records.insert(format!(
                    "grant {} {} {} {:?}",
                    g.workspace_id, g.user_id, g.role, g.scope
                )),
                Kind::Resource(r) => from_records.insert(format!(
                    "resource {} {:?} {}",
                    r.workspace_id, r.resource, r.parent_id
                )),
                _ => false,
            };
        }
        let mut from_writes = HashSet::new();
        for write in data.phases().into_iter().flatten() {
            match write {
                Write::Grant(g) => from_writes.insert(format!(
                    "grant {} {} {} {:?}",
                    g.workspace_id, g.user_id, g.role, g.scope
                )),
                Write::RegisterResource(r) => from_writes.insert(format!(
                    "resource {} {:?} {}",
                    r.workspace_id, r.resource, r.parent_id
                )),
                _ => false,
            };
        }
        assert_eq!(from_records, from_writes);
    }

    #[test]
    fn every_write_of_a_phase_depends_only_on_earlier_phases() {
        let data = Dataset::generate(1, SMALL);
        let phases = data.phases();
        assert_eq!(phases.len(), 3);
        let first = phases.first().unwrap();
        assert!(first.iter().all(|w| matches!(w, Write::CreateWorkspace(_))));
        assert_eq!(first.len(), SMALL.workspaces);
        let last = phases.last().unwrap();
        assert!(last.iter().all(|w| match w {
            Write::Grant(_) => true,
            Write::RegisterResource(r) => !r.parent_id.is_empty(),
            _ => false,
        }));
    }
}
