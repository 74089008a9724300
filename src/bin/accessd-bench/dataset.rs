//! The data set: a deterministic population of workspaces derived from a seed, and the
//! AdminService writes or Import records that build it. It knows everything it holds, so
//! that `mix` can say what each check must answer; it sends nothing itself (see `load`).

use accessd::proto::{self, record::Kind};

use crate::rng::{Ids, Rng, mix};

/// How big the data set is.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Number of workspaces.
    pub workspaces: usize,
    /// Average members (with grants) per workspace.
    pub members: usize,
    /// Average sources per workspace.
    pub sources: usize,
    /// Number of new grants the Grant scenario may write.
    pub grant_pool: usize,
}

/// What a grant covers: all instances, or one source (by index in its workspace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantScope {
    /// All current and future instances.
    All,
    /// The workspace's source at this index.
    Source(usize),
}

/// A grant held by a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantSpec {
    /// The role's name in the built-in catalog.
    pub role: &'static str,
    /// Its scope.
    pub scope: GrantScope,
}

/// A member and their grants.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    /// The user id.
    pub id: String,
    /// Their grants, distinct.
    pub grants: Vec<GrantSpec>,
}

/// One workspace of the data set.
#[derive(Debug, Clone)]
pub struct WorkspaceSpec {
    /// The workspace id.
    pub id: String,
    /// Whether it has the Protocols add-on.
    pub protocols: bool,
    /// Whether it has the Personas add-on.
    pub personas: bool,
    /// Its owners (one or two); the first creates it.
    pub owners: Vec<String>,
    /// Its members with grants, the users checks are asked about.
    pub members: Vec<MemberSpec>,
    /// Members without grants, used only by the Grant scenario so that its writes never
    /// change the answer to a precomputed check.
    pub writers: Vec<String>,
    /// Registered instances by type name, in registration order; destinations are
    /// in `destinations`.
    pub instances: Vec<(&'static str, Vec<String>)>,
    /// Registered destinations, each with the index of its source in `instances`.
    pub destinations: Vec<(String, usize)>,
}

impl WorkspaceSpec {
    /// The ids of the registered instances of `type_name` (destinations included).
    pub fn instance_count(&self, type_name: &str) -> usize {
        if type_name == "destination" {
            return self.destinations.len();
        }
        self.instances
            .iter()
            .find(|(ty, _)| *ty == type_name)
            .map_or(0, |(_, ids)| ids.len())
    }

    /// The id of the `index`th registered instance of `type_name`.
    pub fn instance_id(&self, type_name: &str, index: usize) -> Option<&str> {
        if type_name == "destination" {
            return self.destinations.get(index).map(|(id, _)| id.as_str());
        }
        self.instances
            .iter()
            .find(|(ty, _)| *ty == type_name)
            .and_then(|(_, ids)| ids.get(index))
            .map(String::as_str)
    }

    /// The sources, in registration order.
    pub fn sources(&self) -> &[String] {
        self.instances
            .iter()
            .find(|(ty, _)| *ty == "source")
            .map_or(&[], |(_, ids)| ids.as_slice())
    }

    /// Whether the workspace has the product named `product`.
    pub fn has_product(&self, product: &str) -> bool {
        match product {
            "connections" => true,
            "protocols" => self.protocols,
            "personas" => self.personas,
            _ => false,
        }
    }
}

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

/// The whole data set.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The seed it was derived from.
    pub seed: u64,
    /// Its workspaces.
    pub workspaces: Vec<WorkspaceSpec>,
    /// How many new grants the Grant scenario may write.
    pub grant_pool: usize,
}

/// Counts of what a data set holds, for reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    /// Workspaces.
    pub workspaces: usize,
    /// Owners.
    pub owners: usize,
    /// Members with grants.
    pub members: usize,
    /// Members without grants (for the Grant scenario).
    pub writers: usize,
    /// Grants.
    pub grants: usize,
    /// All-scope grants.
    pub all_scope_grants: usize,
    /// Registered instances.
    pub instances: usize,
    /// Workspaces with Protocols.
    pub with_protocols: usize,
    /// Workspaces with Personas.
    pub with_personas: usize,
}

impl Counts {
    /// How many Import records load the data set: one per workspace (with its owners),
    /// instance, member and grant.
    pub fn records(&self) -> usize {
        self.workspaces + self.instances + self.members + self.writers + self.grants
    }
}

const ALL_SCOPE_ROLES: [(&str, &str); 9] = [
    ("source_admin", "connections"),
    ("source_read", "connections"),
    ("warehouse_admin", "connections"),
    ("warehouse_read", "connections"),
    ("protocols_admin", "protocols"),
    ("protocols_read", "protocols"),
    ("personas_admin", "personas"),
    ("personas_user", "personas"),
    ("personas_read", "personas"),
];

/// The roles the Grant scenario grants on one source each.
const WRITER_ROLES: [&str; 2] = ["source_read", "source_admin"];

impl Dataset {
    /// Derives the data set of `sizes` from `seed`.
    pub fn generate(seed: u64, sizes: Sizes) -> Self {
        let mut rng = Rng::new(seed);
        let mut ids = Ids::new(mix(seed ^ 0x5EED));
        let mut workspaces: Vec<WorkspaceSpec> = (0..sizes.workspaces)
            .map(|_| workspace(&mut rng, &mut ids, sizes))
            .collect();
        let total_sources: usize = workspaces.iter().map(|ws| ws.sources().len()).sum();
        let per_writer = total_sources * WRITER_ROLES.len();
        if per_writer > 0 && sizes.grant_pool > 0 {
            let writers = sizes.grant_pool.div_ceil(per_writer);
            for ws in &mut workspaces {
                ws.writers = (0..writers).map(|_| ids.id("usr_")).collect();
            }
        }
        Self {
            seed,
            workspaces,
            grant_pool: sizes.grant_pool,
        }
    }

    /// What the data set holds.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts {
            workspaces: self.workspaces.len(),
            ..Counts::default()
        };
        for ws in &self.workspaces {
            counts.owners += ws.owners.len();
            counts.members += ws.members.len();
            counts.writers += ws.writers.len();
            for member in &ws.members {
                counts.grants += member.grants.len();
                counts.all_scope_grants += member
                    .grants
                    .iter()
                    .filter(|g| g.scope == GrantScope::All)
                    .count();
            }
            counts.instances += ws.destinations.len()
                + ws.instances.iter().map(|(_, ids)| ids.len()).sum::<usize>();
            counts.with_protocols += usize::from(ws.protocols);
            counts.with_personas += usize::from(ws.personas);
        }
        counts
    }

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
                children_and_grants.push(register(&ws.id, "destination", id, parent));
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

    /// The data set as Import records, workspace after workspace, each in the order
    /// Import applies them: the workspace (with its products and every owner), its
    /// resources with parents before children, its members, then their grants.
    pub fn records(&self) -> impl Iterator<Item = proto::Record> + '_ {
        self.workspaces.iter().flat_map(WorkspaceSpec::records)
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
            records.push(resource("destination", id, parent));
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

    /// The add-on products it has enabled (`connections` is always on, so not listed).
    fn products(&self) -> Vec<String> {
        [(self.protocols, "protocols"), (self.personas, "personas")]
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, name)| name.to_owned())
            .collect()
    }

    /// A grant's scope as the API takes it.
    fn scope(&self, scope: GrantScope) -> proto::Scope {
        match scope {
            GrantScope::All => scope_all(),
            GrantScope::Source(index) => {
                scope_source(self.sources().get(index).map_or("", String::as_str))
            }
        }
    }
}

fn workspace(rng: &mut Rng, ids: &mut Ids, sizes: Sizes) -> WorkspaceSpec {
    let id = ids.id("ws_");
    let protocols = rng.chance(40);
    let personas = rng.chance(30);
    let owners = (0..rng.between(1, 2)).map(|_| ids.id("usr_")).collect();

    let average = sizes.sources.max(1);
    let source_count = rng.between((average / 2).max(1), (average * 3 / 2).max(1));
    let sources: Vec<String> = (0..source_count).map(|_| ids.id("src_")).collect();
    let mut destinations = Vec::new();
    for source in 0..sources.len() {
        for _ in 0..rng.between(0, 3) {
            destinations.push((ids.id("dst_"), source));
        }
    }
    let mut instances = vec![("source", sources)];
    let mut add = |ty: &'static str, count: usize, prefix: &str| {
        instances.push((ty, (0..count).map(|_| ids.id(prefix)).collect()));
    };
    add("warehouse", rng.between(1, 3), "wh_");
    if protocols {
        add("tracking_plan", rng.between(2, 8), "tp_");
    }
    if personas {
        add("audience", rng.between(3, 10), "aud_");
        add("trait", rng.between(3, 10), "trt_");
    }

    let mut spec = WorkspaceSpec {
        id,
        protocols,
        personas,
        owners,
        members: Vec::new(),
        writers: Vec::new(),
        instances,
        destinations,
    };
    let average = sizes.members.max(1);
    let member_count = rng.between((average / 2).max(1), (average * 3 / 2).max(1));
    spec.members = (0..member_count)
        .map(|_| MemberSpec {
            id: ids.id("usr_"),
            grants: member_grants(rng, &spec),
        })
        .collect();
    spec
}

/// One to three grants: a third of the members hold all-scope roles of the workspace's
/// products, the others hold `source_read` or `source_admin` on a few sources.
fn member_grants(rng: &mut Rng, ws: &WorkspaceSpec) -> Vec<GrantSpec> {
    let count = match rng.below(10) {
        0..5 => 1,
        5..8 => 2,
        _ => 3,
    };
    let mut grants: Vec<GrantSpec> = Vec::with_capacity(count);
    let sources = ws.sources().len();
    let all_scope = rng.below(3) == 0 || sources == 0;
    let roles: Vec<&'static str> = ALL_SCOPE_ROLES
        .iter()
        .filter(|(_, product)| ws.has_product(product))
        .map(|(role, _)| *role)
        .collect();
    // Bounded: drawing a grant the member already holds just tries again, a few times.
    for _ in 0..count * 8 {
        if grants.len() == count {
            break;
        }
        let grant = if all_scope {
            GrantSpec {
                role: roles
                    .get(rng.below(roles.len()))
                    .copied()
                    .unwrap_or("source_read"),
                scope: GrantScope::All,
            }
        } else {
            GrantSpec {
                role: if rng.chance(60) {
                    "source_read"
                } else {
                    "source_admin"
                },
                scope: GrantScope::Source(rng.below(sources)),
            }
        };
        if !grants.contains(&grant) {
            grants.push(grant);
        }
    }
    grants
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

fn scope_all() -> proto::Scope {
    proto::Scope {
        kind: Some(proto::scope::Kind::All(proto::AllInstances {})),
    }
}

fn scope_source(id: &str) -> proto::Scope {
    proto::Scope {
        kind: Some(proto::scope::Kind::Instance(proto::ResourceRef {
            r#type: "source".to_owned(),
            id: id.to_owned(),
        })),
    }
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

    use super::*;

    const SMALL: Sizes = Sizes {
        workspaces: 20,
        members: 10,
        sources: 6,
        grant_pool: 500,
    };

    #[test]
    fn the_same_seed_gives_the_same_data_set() {
        let a = Dataset::generate(7, SMALL);
        let b = Dataset::generate(7, SMALL);
        let c = Dataset::generate(8, SMALL);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_ne!(format!("{a:?}"), format!("{c:?}"));
    }

    #[test]
    fn ids_are_unique_and_of_realistic_length() {
        let data = Dataset::generate(1, SMALL);
        let mut seen = HashSet::new();
        for ws in &data.workspaces {
            assert!(seen.insert(ws.id.clone()));
            assert_eq!(ws.id.len(), 3 + 22);
            for user in ws.owners.iter().chain(ws.writers.iter()) {
                assert!(seen.insert(user.clone()));
            }
            for member in &ws.members {
                assert!(seen.insert(member.id.clone()));
            }
        }
    }

    #[test]
    fn a_third_of_the_members_hold_all_scope_grants() {
        let data = Dataset::generate(
            3,
            Sizes {
                workspaces: 50,
                members: 40,
                ..SMALL
            },
        );
        let members: Vec<&MemberSpec> = data.workspaces.iter().flat_map(|w| &w.members).collect();
        let all_scope = members
            .iter()
            .filter(|m| m.grants.iter().any(|g| g.scope == GrantScope::All))
            .count();
        let share = all_scope as f64 / members.len() as f64;
        assert!((0.25..0.42).contains(&share), "share {share}");
        assert!(members.iter().all(|m| (1..=3).contains(&m.grants.len())));
    }

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
