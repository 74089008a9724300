//! Derives a data set from a seed: workspaces with their products, owners, resources and
//! members, and the members' grants.

use super::{Dataset, GrantScope, GrantSpec, MemberSpec, Sizes, WRITER_ROLES, WorkspaceSpec};
use crate::{
    catalog::{
        AUDIENCE, ROLES, SOURCE, SOURCE_ADMIN, SOURCE_READ, TRACKING_PLAN, TRAIT, WAREHOUSE,
    },
    rng::{Ids, Rng, mix},
};

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
    let mut instances = vec![(SOURCE, sources)];
    let mut add = |ty: &'static str, count: usize, prefix: &str| {
        instances.push((ty, (0..count).map(|_| ids.id(prefix)).collect()));
    };
    add(WAREHOUSE, rng.between(1, 3), "wh_");
    if protocols {
        add(TRACKING_PLAN, rng.between(2, 8), "tp_");
    }
    if personas {
        add(AUDIENCE, rng.between(3, 10), "aud_");
        add(TRAIT, rng.between(3, 10), "trt_");
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
/// products (every role of the catalog accepts that scope), the others hold
/// `source_read` or `source_admin` on a few sources.
fn member_grants(rng: &mut Rng, ws: &WorkspaceSpec) -> Vec<GrantSpec> {
    let count = match rng.below(10) {
        0..5 => 1,
        5..8 => 2,
        _ => 3,
    };
    let mut grants: Vec<GrantSpec> = Vec::with_capacity(count);
    let sources = ws.sources().len();
    let all_scope = rng.below(3) == 0 || sources == 0;
    let roles: Vec<&'static str> = ROLES
        .iter()
        .filter(|role| ws.has_product(role.product))
        .map(|role| role.name)
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
                    .unwrap_or(SOURCE_READ),
                scope: GrantScope::All,
            }
        } else {
            GrantSpec {
                role: if rng.chance(60) {
                    SOURCE_READ
                } else {
                    SOURCE_ADMIN
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::dataset::SMALL;

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
}
