//! The data set as Import records, in the order Import applies them.

use accessd::proto::{self, record::Kind};

use super::{Dataset, WorkspaceSpec};
use crate::catalog::DESTINATION;

impl Dataset {
    /// The data set as Import records, workspace after workspace, each in the order
    /// Import applies them: the workspace (with its products and every owner), its
    /// resources with parents before children, its members, then their grants.
    pub fn records(&self) -> impl Iterator<Item = proto::Record> + '_ {
        self.workspaces.iter().flat_map(WorkspaceSpec::records)
    }
}

impl WorkspaceSpec {
    /// This workspace's Import records, in the order [`Dataset::records`] describes.
    pub fn records(&self) -> Vec<proto::Record> {
        let record = |kind| proto::Record { kind: Some(kind) };
        let mut records = Vec::with_capacity(
            1 + self.destinations.len()
                + self
                    .instances
                    .iter()
                    .map(|(_, ids)| ids.len())
                    .sum::<usize>()
                + self.members.len() * 3
                + self.writers.len(),
        );
        records.push(record(Kind::Workspace(proto::WorkspaceRecord {
            workspace_id: self.id.clone(),
            products: self.products(),
            owner_user_ids: self.owners.clone(),
        })));
        let resource = |type_name: &str, id: &str, parent: &str| {
            record(Kind::Resource(proto::ResourceRecord {
                workspace_id: self.id.clone(),
                resource: Some(proto::ResourceRef {
                    r#type: type_name.to_owned(),
                    id: id.to_owned(),
                }),
                parent_id: parent.to_owned(),
            }))
        };
        for (type_name, ids) in &self.instances {
            records.extend(ids.iter().map(|id| resource(type_name, id, "")));
        }
        let sources = self.sources();
        for (id, source) in &self.destinations {
            let parent = sources.get(*source).map_or("", String::as_str);
            records.push(resource(DESTINATION, id, parent));
        }
        let members = self.members.iter().map(|m| &m.id).chain(&self.writers);
        records.extend(members.map(|user| {
            record(Kind::Member(proto::MemberRecord {
                workspace_id: self.id.clone(),
                user_id: user.clone(),
                membership: proto::Membership::Member.into(),
            }))
        }));
        for member in &self.members {
            for grant in &member.grants {
                records.push(record(Kind::Grant(proto::GrantRecord {
                    workspace_id: self.id.clone(),
                    user_id: member.id.clone(),
                    role: grant.role.to_owned(),
                    scope: Some(self.scope(grant.scope)),
                })));
            }
        }
        records
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::dataset::SMALL;

    #[test]
    fn records_put_a_workspace_first_then_its_resources_parents_first_then_members_then_grants() {
        let data = Dataset::generate(2, SMALL);
        let counts = data.counts();
        let mut workspaces = HashSet::new();
        let mut current = String::new();
        let mut resources = HashSet::new();
        let mut members = HashSet::new();
        let mut last_stage = 0;
        let mut grants = 0;
        let records: Vec<proto::Record> = data.records().collect();
        assert!(matches!(
            records.first().and_then(|r| r.kind.as_ref()),
            Some(Kind::Workspace(_))
        ));
        for record in &records {
            // Stages within a workspace: 0 workspace, 1 resources, 2 members, 3 grants.
            let (workspace, stage) = match record.kind.as_ref().unwrap() {
                Kind::Workspace(w) => {
                    assert!(workspaces.insert(w.workspace_id.clone()), "one record each");
                    assert!((1..=2).contains(&w.owner_user_ids.len()));
                    current = w.workspace_id.clone();
                    last_stage = 0;
                    (&w.workspace_id, 0)
                }
                Kind::Resource(r) => {
                    let id = r.resource.as_ref().unwrap().id.clone();
                    if !r.parent_id.is_empty() {
                        assert!(
                            resources.contains(&(r.workspace_id.clone(), r.parent_id.clone())),
                            "{id}'s parent comes first"
                        );
                    }
                    resources.insert((r.workspace_id.clone(), id));
                    (&r.workspace_id, 1)
                }
                Kind::Member(m) => {
                    members.insert((m.workspace_id.clone(), m.user_id.clone()));
                    (&m.workspace_id, 2)
                }
                Kind::Grant(g) => {
                    grants += 1;
                    assert!(members.contains(&(g.workspace_id.clone(), g.user_id.clone())));
                    if let Some(proto::scope::Kind::Instance(source)) =
                        g.scope.as_ref().and_then(|s| s.kind.as_ref())
                    {
                        assert!(resources.contains(&(g.workspace_id.clone(), source.id.clone())));
                    }
                    (&g.workspace_id, 3)
                }
            };
            assert_eq!(workspace, &current, "a workspace's records are contiguous");
            assert!(stage >= last_stage, "stage {stage} after {last_stage}");
            last_stage = stage;
        }
        assert_eq!(records.len(), counts.records());
        assert_eq!(grants, counts.grants);
        assert_eq!(workspaces.len(), SMALL.workspaces);
        assert_eq!(resources.len(), counts.instances);
        assert_eq!(members.len(), counts.members + counts.writers);
    }
}
