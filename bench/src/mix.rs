//! The request mix: check requests drawn from the data set with the answer each must
//! get, about half allowed and half denied, every permission of the catalog in turn.
//! The answers come from a small reading of the access model written here, over the
//! bench's copy of the catalog, not from accessd's engine: a run cross-checks the server.

use accessd::proto;

use crate::{
    catalog::{self, DESTINATION, PERMISSIONS, Permission, SOURCE, Target},
    dataset::{Dataset, GrantScope, WorkspaceSpec},
    rng::Rng,
};

/// One check request and the answer it must get.
#[derive(Debug, Clone)]
pub struct CheckCase {
    /// The request, ready to send.
    pub request: proto::CheckRequest,
    /// Whether it must be allowed.
    pub allowed: bool,
}

/// A BatchCheck request and the answers it must get, in order.
#[derive(Debug, Clone)]
pub struct BatchCase {
    /// The request, ready to send.
    pub request: proto::BatchCheckRequest,
    /// Whether each check must be allowed.
    pub allowed: Vec<bool>,
}

/// Who a drawn check asks about.
#[derive(Debug, Clone, Copy)]
enum Who {
    Owner(usize),
    Member(usize),
    Stranger(u64),
}

/// What a drawn check names.
#[derive(Debug, Clone, Copy)]
enum What {
    Workspace,
    Instance(&'static str, usize),
    Unregistered(&'static str, u64),
}

/// How many draws may be made to find a check with the wanted answer.
const DRAWS: usize = 256;

/// `count` checks over `data`: permission `i % P` for the `i`th, with an allowed answer
/// wanted for even rounds and a denied one for odd rounds; a permission for which no
/// draw gives the wanted answer keeps its last draw, so the mix is only about even.
pub fn checks(data: &Dataset, count: usize) -> Vec<CheckCase> {
    let mut rng = Rng::new(data.seed ^ 0xC4EC);
    let mut cases = Vec::with_capacity(count);
    if data.workspaces.is_empty() {
        return cases;
    }
    for i in 0..count {
        let Some(permission) = PERMISSIONS.get(i % PERMISSIONS.len()) else {
            continue;
        };
        let want = (i / PERMISSIONS.len()) % 2 == 0;
        let mut drawn = None;
        for _ in 0..DRAWS {
            let draw = draw(&mut rng, data, permission);
            let done = draw.1 == want;
            drawn = Some(draw);
            if done {
                break;
            }
        }
        if let Some((request, allowed)) = drawn {
            cases.push(CheckCase { request, allowed });
        }
    }
    cases
}

/// Groups the checks into BatchCheck requests of `size`, cycling through them; at least
/// one batch, and as many as the checks fill.
pub fn batches(cases: &[CheckCase], size: usize) -> Vec<BatchCase> {
    let size = size.max(1);
    let count = (cases.len() / size).max(1);
    if cases.is_empty() {
        return Vec::new();
    }
    (0..count)
        .map(|k| {
            let items = (0..size).filter_map(|j| cases.get((k * size + j) % cases.len()));
            let (checks, allowed) = items.map(|c| (c.request.clone(), c.allowed)).unzip();
            BatchCase {
                request: proto::BatchCheckRequest {
                    checks,
                    ..Default::default()
                },
                allowed,
            }
        })
        .collect()
}

/// Whether the `member`th member of `ws` holds the permission named `permission` on the
/// `index`th registered instance of `type_name`, as the data set says.
pub fn member_holds(
    ws: &WorkspaceSpec,
    member: usize,
    permission: &str,
    type_name: &'static str,
    index: usize,
) -> bool {
    PERMISSIONS
        .iter()
        .find(|p| p.name == permission)
        .is_some_and(|p| expected(ws, Who::Member(member), p, What::Instance(type_name, index)))
}

fn draw(rng: &mut Rng, data: &Dataset, permission: &Permission) -> (proto::CheckRequest, bool) {
    let ws = data
        .workspaces
        .get(rng.below(data.workspaces.len()))
        .or(data.workspaces.first());
    let Some(ws) = ws else {
        return (proto::CheckRequest::default(), false);
    };
    let who = match rng.below(100) {
        0..10 => Who::Owner(rng.below(ws.owners.len())),
        10..95 if !ws.members.is_empty() => Who::Member(rng.below(ws.members.len())),
        _ => Who::Stranger(rng.next_u64()),
    };
    let what = match permission.target {
        Target::Workspace => What::Workspace,
        Target::Instance(ty) => {
            let count = ws.instance_count(ty);
            if count == 0 || rng.chance(3) {
                What::Unregistered(ty, rng.next_u64())
            } else {
                What::Instance(ty, rng.below(count))
            }
        }
    };
    let allowed = expected(ws, who, permission, what);
    (request(ws, who, permission, what), allowed)
}

fn request(
    ws: &WorkspaceSpec,
    who: Who,
    permission: &Permission,
    what: What,
) -> proto::CheckRequest {
    let user_id = match who {
        Who::Owner(i) => ws.owners.get(i).cloned().unwrap_or_default(),
        Who::Member(i) => ws.members.get(i).map(|m| m.id.clone()).unwrap_or_default(),
        Who::Stranger(n) => format!("usr_stranger{:016x}", n),
    };
    let resource = match what {
        What::Workspace => None,
        What::Instance(ty, i) => Some(proto::ResourceRef {
            r#type: ty.to_owned(),
            id: ws.instance_id(ty, i).unwrap_or_default().to_owned(),
        }),
        What::Unregistered(ty, n) => Some(proto::ResourceRef {
            r#type: ty.to_owned(),
            id: format!("gone_{:016x}", n),
        }),
    };
    proto::CheckRequest {
        workspace_id: ws.id.clone(),
        user_id,
        permission: permission.name.to_owned(),
        resource,
        at_least_revision: 0,
    }
}

/// The access model, read directly: strangers are denied; a disabled product denies
/// everyone; an unregistered instance is denied; owners hold everything; members hold
/// `every_member` permissions and what a grant of an enabled product allows on what its
/// scope covers (all instances, or one source and its destinations).
fn expected(ws: &WorkspaceSpec, who: Who, permission: &Permission, what: What) -> bool {
    let member = match who {
        Who::Stranger(_) => return false,
        Who::Owner(_) => None,
        Who::Member(i) => match ws.members.get(i) {
            Some(member) => Some(member),
            None => return false,
        },
    };
    if !ws.has_product(permission.product) {
        return false;
    }
    if matches!(what, What::Unregistered(..)) {
        return false;
    }
    let Some(member) = member else {
        return true;
    };
    if permission.every_member {
        return true;
    }
    member.grants.iter().any(|grant| {
        let Some(role) = catalog::role(grant.role) else {
            return false;
        };
        ws.has_product(role.product)
            && role.allows(permission.name)
            && match (grant.scope, what) {
                (GrantScope::All, _) => true,
                (GrantScope::Source(source), What::Instance(ty, i)) => match ty {
                    SOURCE => i == source,
                    DESTINATION => ws.destinations.get(i).is_some_and(|d| d.1 == source),
                    _ => false,
                },
                (GrantScope::Source(_), _) => false,
            }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::dataset::Sizes;

    fn data() -> Dataset {
        Dataset::generate(
            11,
            Sizes {
                workspaces: 30,
                members: 20,
                sources: 8,
                grant_pool: 0,
            },
        )
    }

    #[test]
    fn about_half_the_checks_are_allowed_across_every_permission() {
        let cases = checks(&data(), 6_200);
        assert_eq!(cases.len(), 6_200);
        let allowed = cases.iter().filter(|c| c.allowed).count();
        let share = allowed as f64 / cases.len() as f64;
        assert!((0.45..0.55).contains(&share), "allowed share {share}");
        let permissions: HashSet<&str> = cases
            .iter()
            .map(|c| c.request.permission.as_str())
            .collect();
        assert_eq!(permissions.len(), PERMISSIONS.len());
        for name in permissions {
            let of = |allowed: bool| {
                cases
                    .iter()
                    .any(|c| c.request.permission == name && c.allowed == allowed)
            };
            assert!(
                of(true) && of(false),
                "`{name}` lacks an allowed or a denied case"
            );
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_requests() {
        let a = checks(&data(), 500);
        let b = checks(&data(), 500);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }

    #[test]
    fn batches_cycle_through_the_checks_in_order() {
        let cases = checks(&data(), 250);
        let batches = batches(&cases, 100);
        assert_eq!(batches.len(), 2);
        for batch in &batches {
            assert_eq!(batch.request.checks.len(), 100);
            assert_eq!(batch.allowed.len(), 100);
        }
        let few = batches_of_more_than_there_are(&cases);
        assert_eq!(few.len(), 1);
        assert_eq!(few[0].request.checks.len(), 1000);
    }

    fn batches_of_more_than_there_are(cases: &[CheckCase]) -> Vec<BatchCase> {
        batches(cases, 1000)
    }
}
