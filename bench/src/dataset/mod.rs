//! The data set: a deterministic population of workspaces derived from a seed, which
//! knows everything it holds so that `mix` can say what each check must answer. It sends
//! nothing itself (see `load`); its parts derive it and turn it into writes or records.

mod generate;
mod import;
mod writes;

use accessd::proto;

use crate::catalog::{
    CONNECTIONS, DESTINATION, PERSONAS, PROTOCOLS, SOURCE, SOURCE_ADMIN, SOURCE_READ,
};

pub use writes::Write;

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
        if type_name == DESTINATION {
            return self.destinations.len();
        }
        self.instances
            .iter()
            .find(|(ty, _)| *ty == type_name)
            .map_or(0, |(_, ids)| ids.len())
    }

    /// The id of the `index`th registered instance of `type_name`.
    pub fn instance_id(&self, type_name: &str, index: usize) -> Option<&str> {
        if type_name == DESTINATION {
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
            .find(|(ty, _)| *ty == SOURCE)
            .map_or(&[], |(_, ids)| ids.as_slice())
    }

    /// Whether the workspace has the product named `product`.
    pub fn has_product(&self, product: &str) -> bool {
        match product {
            CONNECTIONS => true,
            PROTOCOLS => self.protocols,
            PERSONAS => self.personas,
            _ => false,
        }
    }
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

/// The roles the Grant scenario grants on one source each.
const WRITER_ROLES: [&str; 2] = [SOURCE_READ, SOURCE_ADMIN];

impl Dataset {
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
}

impl WorkspaceSpec {
    /// The add-on products it has enabled (`connections` is always on, so not listed).
    fn products(&self) -> Vec<String> {
        [(self.protocols, PROTOCOLS), (self.personas, PERSONAS)]
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

fn scope_all() -> proto::Scope {
    proto::Scope {
        kind: Some(proto::scope::Kind::All(proto::AllInstances {})),
    }
}

fn scope_source(id: &str) -> proto::Scope {
    proto::Scope {
        kind: Some(proto::scope::Kind::Instance(proto::ResourceRef {
            r#type: SOURCE.to_owned(),
            id: id.to_owned(),
        })),
    }
}

/// A small data set for the tests of each part.
#[cfg(test)]
const SMALL: Sizes = Sizes {
    workspaces: 20,
    members: 10,
    sources: 6,
    grant_pool: 500,
};
