//! The engine's check at scale: the same mix of checks over 100 workspaces (about 10,000
//! grants, all in cache) and over 100,000 (about nine million grants, a state of about
//! 1.5 GB, nearly all out of cache; the process peaks at 2.7 GB while building it),
//! each check going where the server's does: the workspace looked up in the snapshot's
//! map by the request's id, then `engine::check::decide`. The difference
//! is what the data's size adds to a check, which the live scale benchmark
//! (`accessd-bench scale`) sees through the noise of the network stack around it.
//! `decide/…` runs the same checks with each workspace found beforehand: `check` less
//! `decide` is what finding the workspace in the snapshot's map costs.
//!
//! `cargo bench --bench scale`. Under `cargo test` each bench runs once, on 10 and 200
//! workspaces.

#![expect(
    clippy::expect_used,
    reason = "a benchmark's setup stops at its first failure"
)]

use std::{hint::black_box, ops::Range, time::Duration};

use accessd::{
    engine::check::{CheckRef, decide},
    model::{
        Catalog, Grant, Membership, PermissionId, ResourceId, Scope, TypeId, UserId, Workspace,
        WorkspaceId, access::Member, catalog::Target, workspace::Parts,
    },
    store::Workspaces,
};
use criterion::Criterion;

// accessd's allocator, so that the state is laid out as in the server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Whether this is `cargo bench` (full sizes) rather than `cargo test`'s single pass.
fn measuring() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// Checks precomputed per data set, cycled through: far more than the caches hold.
const REQUESTS: usize = 1 << 20;

/// SplitMix64: deterministic data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `range`.
    fn within(&mut self, range: Range<usize>) -> usize {
        let width = u64::try_from(range.len().max(1)).unwrap_or(u64::MAX);
        range.start + usize::try_from(self.next() % width).unwrap_or(0)
    }

    /// An id as products make them: a prefix, then 22 random base-62 characters.
    fn id(&mut self, prefix: &str) -> String {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut id = prefix.to_owned();
        for _ in 0..22 {
            let at = self.within(0..ALPHABET.len());
            id.push(char::from(ALPHABET.get(at).copied().unwrap_or(b'0')));
        }
        id
    }
}

/// One check: ranges of `Requests::text` and the permission.
struct Request {
    workspace: Range<usize>,
    user: Range<usize>,
    permission: PermissionId,
    resource: Option<Range<usize>>,
}

/// The checks of a data set, their ids packed in one string as a request buffer would
/// hold them: reading them costs no cache misses of the state's.
struct Requests {
    text: String,
    list: Vec<Request>,
}

impl Requests {
    fn push(&mut self, raw: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.push_str(raw);
        start..self.text.len()
    }
}

/// One workspace as the generator made it, kept to draw checks from.
struct Drawn {
    id: String,
    /// Its users: one owner, then the members with their grants.
    users: Vec<(String, Vec<Grant>)>,
    /// Its instances, with their parents.
    instances: Vec<(TypeId, String, Option<String>)>,
}

/// `workspaces` workspaces shaped as the load generator's: 30 to 90 members with one or
/// two grants (a third all-scope, the rest on sources), one or two owners, 10 to 30
/// sources with up to two destinations each, and a few instances of every other type.
fn build(catalog: &Catalog, workspaces: usize, rng: &mut Rng) -> (Workspaces, Vec<Drawn>) {
    let products = catalog
        .products()
        .fold(catalog.always_enabled(), |set, (id, _)| set.with(id));
    let types: Vec<(TypeId, Option<TypeId>)> = catalog
        .resource_types()
        .map(|(id, t)| (id, t.parent))
        .collect();
    let source = catalog.type_id("source").expect("a built-in type");
    let all_roles: Vec<_> = catalog
        .roles()
        .filter(|(_, r)| r.accepts_all)
        .map(|(id, _)| id)
        .collect();
    let source_roles: Vec<_> = catalog
        .roles()
        .filter(|(_, r)| r.scope_type == Some(source))
        .map(|(id, _)| id)
        .collect();
    let pick = |rng: &mut Rng, from: &[accessd::model::RoleId]| {
        *from
            .get(rng.within(0..from.len()))
            .expect("roles to pick from")
    };

    let mut map = Workspaces::default();
    let mut drawn = Vec::with_capacity(workspaces);
    let mut parts = Parts::default();
    for _ in 0..workspaces {
        let id = rng.id("ws_");
        parts.products = products;
        let mut instances: Vec<(TypeId, String, Option<String>)> = Vec::new();
        for &(ty, parent) in &types {
            match parent {
                None => {
                    let count = if ty == source {
                        rng.within(10..31)
                    } else {
                        rng.within(1..6)
                    };
                    for _ in 0..count {
                        let instance = rng.id("res_");
                        parts.instances.push(((ty, rid(&instance)), None));
                        instances.push((ty, instance, None));
                    }
                }
                Some(parent) => {
                    let parents: Vec<String> = instances
                        .iter()
                        .filter(|(t, _, _)| *t == parent)
                        .map(|(_, i, _)| i.clone())
                        .collect();
                    for parent_id in parents {
                        for _ in 0..rng.within(0..3) {
                            let instance = rng.id("res_");
                            parts
                                .instances
                                .push(((ty, rid(&instance)), Some((parent, rid(&parent_id)))));
                            instances.push((ty, instance, Some(parent_id.clone())));
                        }
                    }
                }
            }
        }
        let sources: Vec<&String> = instances
            .iter()
            .filter(|(t, _, _)| *t == source)
            .map(|(_, i, _)| i)
            .collect();
        let mut users = Vec::new();
        for owner in 0..rng.within(1..3) {
            let user = rng.id("usr_");
            parts.members.push((
                UserId::parse(&user).expect("a valid id"),
                Member {
                    membership: Membership::Owner,
                    grants: Box::default(),
                },
            ));
            if owner == 0 {
                users.push((user, Vec::new()));
            }
        }
        for _ in 0..rng.within(30..91) {
            let user = rng.id("usr_");
            let mut grants: Vec<Grant> = (0..rng.within(1..3))
                .map(|_| {
                    if rng.within(0..3) == 0 {
                        Grant {
                            role: pick(rng, &all_roles),
                            scope: Scope::All,
                        }
                    } else {
                        let on = sources.get(rng.within(0..sources.len())).expect("sources");
                        Grant {
                            role: pick(rng, &source_roles),
                            scope: Scope::Instance(source, rid(on)),
                        }
                    }
                })
                .collect();
            grants.sort();
            grants.dedup();
            parts.members.push((
                UserId::parse(&user).expect("a valid id"),
                Member {
                    membership: Membership::Member,
                    grants: grants.clone().into_boxed_slice(),
                },
            ));
            users.push((user, grants));
        }
        let workspace = Workspace::from_parts(&mut parts);
        map.insert(&WorkspaceId::parse(&id).expect("a valid id"), workspace);
        drawn.push(Drawn {
            id,
            users,
            instances,
        });
    }
    (map, drawn)
}

fn rid(raw: &str) -> ResourceId {
    ResourceId::parse(raw).expect("a valid id")
}

/// Checks across every workspace, of every permission: half of them chosen to be
/// allowed by a grant (or, one in sixty, by ownership), the others of a random member and
/// permission on a random instance, now and then a stranger or an unregistered instance.
fn requests(catalog: &Catalog, drawn: &[Drawn], rng: &mut Rng) -> Requests {
    let permissions: Vec<(PermissionId, Target)> = catalog
        .permissions()
        .map(|(id, p)| (id, p.target))
        .collect();
    let mut requests = Requests {
        text: String::new(),
        list: Vec::with_capacity(REQUESTS),
    };
    while requests.list.len() < REQUESTS {
        let ws = drawn.get(rng.within(0..drawn.len())).expect("workspaces");
        let (user, grants) = ws.users.get(rng.within(0..ws.users.len())).expect("users");
        let instance_of = |rng: &mut Rng, ty: TypeId, under: Option<&str>| {
            let of_type: Vec<&String> = ws
                .instances
                .iter()
                .filter(|(t, id, parent)| {
                    *t == ty && under.is_none_or(|u| u == id || parent.as_deref() == Some(u))
                })
                .map(|(_, i, _)| i)
                .collect();
            of_type
                .get(rng.within(0..of_type.len()))
                .map(|id| (*id).clone())
        };
        let grant = grants.get(rng.within(0..grants.len().max(1)));
        let (permission, resource) = match grant {
            // Allowed: a permission of the grant's role, on what its scope covers.
            Some(grant) if rng.within(0..2) == 0 => {
                let allowed: Vec<&(PermissionId, Target)> = permissions
                    .iter()
                    .filter(|(p, _)| catalog.role(grant.role).is_some_and(|r| r.allows(*p)))
                    .collect();
                let &&(permission, target) = allowed
                    .get(rng.within(0..allowed.len()))
                    .expect("a role allows something");
                let resource = match (target, &grant.scope) {
                    (Target::Workspace, _) => None,
                    (Target::Instance(ty), Scope::All) => instance_of(rng, ty, None),
                    (Target::Instance(ty), Scope::Instance(_, on)) => {
                        instance_of(rng, ty, Some(on.as_str()))
                    }
                };
                (permission, resource)
            }
            _ => {
                let &(permission, target) = permissions
                    .get(rng.within(0..permissions.len()))
                    .expect("permissions");
                let resource = match target {
                    Target::Workspace => None,
                    Target::Instance(_) if rng.within(0..20) == 0 => Some(rng.id("res_")),
                    Target::Instance(ty) => instance_of(rng, ty, None),
                };
                (permission, resource)
            }
        };
        // A permission on an instance of a type the workspace has none of: draw again.
        let names_instance = permissions
            .iter()
            .any(|(p, t)| *p == permission && matches!(t, Target::Instance(_)));
        if names_instance && resource.is_none() {
            continue;
        }
        let user = if rng.within(0..20) == 0 {
            rng.id("usr_")
        } else {
            user.clone()
        };
        let workspace = requests.push(&ws.id);
        let user = requests.push(&user);
        let resource = resource.map(|r| requests.push(&r));
        requests.list.push(Request {
            workspace,
            user,
            permission,
            resource,
        });
    }
    requests
}

/// Decides `request` as the Check handler does, from the request's strings.
fn check(catalog: &Catalog, workspaces: &Workspaces, text: &str, request: &Request) -> bool {
    let id = text.get(request.workspace.clone()).unwrap_or_default();
    decide_in(catalog, workspaces.get(id), text, request)
}

/// Decides `request` in `workspace`, already found.
fn decide_in(
    catalog: &Catalog,
    workspace: Option<&Workspace>,
    text: &str,
    request: &Request,
) -> bool {
    let check = CheckRef {
        user: text.get(request.user.clone()).unwrap_or_default(),
        permission: request.permission,
        resource: request.resource.clone().and_then(|r| text.get(r)),
    };
    decide(catalog, workspace, check).allowed()
}

fn scale(c: &mut Criterion) {
    let catalog = Catalog::built_in();
    let sizes: [(&str, usize); 2] = if measuring() {
        [("small", 100), ("large", 100_000)]
    } else {
        [("small", 10), ("large", 200)]
    };
    let mut group = c.benchmark_group("scale");
    for (name, workspaces) in sizes {
        let mut rng = Rng(7);
        let (map, drawn) = build(&catalog, workspaces, &mut rng);
        let requests = requests(&catalog, &drawn, &mut rng);
        drop(drawn);
        let allowed = requests
            .list
            .iter()
            .filter(|r| check(&catalog, &map, &requests.text, r))
            .count();
        let grants: usize = map.iter().map(|(_, ws)| ws.grant_count()).sum();
        eprintln!(
            "scale/{name}: {workspaces} workspaces, {grants} grants; {:.0}% of the checks allowed",
            100.0 * allowed as f64 / requests.list.len() as f64
        );
        assert!(
            allowed > 0 && allowed < requests.list.len(),
            "a mix of answers"
        );
        let mut next = 0;
        group.bench_function(format!("check/{name}"), |b| {
            b.iter(|| {
                next = (next + 1) % requests.list.len();
                let request = requests.list.get(next).expect("in range");
                check(black_box(&catalog), &map, &requests.text, request)
            })
        });
        // The same checks with their workspaces found beforehand: what the decision costs
        // apart from the snapshot's map (its share is `check` less `decide`).
        let found: Vec<Option<&Workspace>> = requests
            .list
            .iter()
            .map(|r| map.get(requests.text.get(r.workspace.clone()).unwrap_or_default()))
            .collect();
        group.bench_function(format!("decide/{name}"), |b| {
            b.iter(|| {
                next = (next + 1) % requests.list.len();
                let request = requests.list.get(next).expect("in range");
                let workspace = found.get(next).copied().flatten();
                decide_in(black_box(&catalog), workspace, &requests.text, request)
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(50)
}

fn main() {
    let mut criterion = config().configure_from_args();
    scale(&mut criterion);
    criterion.final_summary();
}
