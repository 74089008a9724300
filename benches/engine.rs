//! The decision engine alone (`engine::check`) for typical decisions, in a small and in a
//! large workspace, and a BatchCheck-like loop of 1,000 checks; then, to account for a
//! call's server time, the AccessService handlers in process (parse, decide, render)
//! and the protobuf decoding and encoding around them. No network.
//!
//! `cargo bench --bench engine`. Under `cargo test` each bench runs once, on small data.

#![expect(
    clippy::expect_used,
    reason = "a benchmark's setup stops at its first failure"
)]

use std::{hint::black_box, sync::Arc, time::Duration};

use accessd::{
    api::AccessApi,
    engine::{self, Check, Command},
    model::{Catalog, Grant, Membership, ResourceId, Scope, UserId, Workspace, WorkspaceId},
    proto::{self, access_service_server::AccessService},
    store::{Store, StoreConfig},
};
use criterion::{BatchSize, Criterion};
use prost::Message as _;
use tonic::Request;

// accessd's allocator, so that allocations cost here what they cost in the server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Whether this is `cargo bench` (full sizes) rather than `cargo test`'s single pass.
fn measuring() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// A workspace of `members` members and `sources` sources (each with one destination),
/// three warehouses, and the users and instances the typical decisions are about.
struct Fixture {
    catalog: Arc<Catalog>,
    workspace: WorkspaceId,
    commands: Vec<Command>,
    state: Workspace,
    /// The typical decisions: a name and the check.
    cases: Vec<(&'static str, Check)>,
    /// 1,000 checks of many users, permissions and instances.
    batch: Vec<Check>,
}

fn user(name: &str) -> UserId {
    UserId::parse(name).expect("a valid user id")
}

fn id(kind: &str, index: usize) -> ResourceId {
    ResourceId::parse(&format!("{kind}_{index:020}")).expect("a valid resource id")
}

impl Fixture {
    fn new(members: usize, sources: usize) -> Self {
        let catalog = Arc::new(Catalog::built_in());
        let type_id = |name: &str| catalog.type_id(name).expect("a built-in type");
        let role = |name: &str| catalog.role_id(name).expect("a built-in role");
        let permission = |name: &str| catalog.permission_id(name).expect("a built-in permission");
        let (source, destination, warehouse) = (
            type_id("source"),
            type_id("destination"),
            type_id("warehouse"),
        );
        let workspace = WorkspaceId::parse("ws_2Qx8jK4vR7mZ0aLpT3nB9c").expect("a valid id");
        let products = ["protocols", "personas"]
            .into_iter()
            .filter_map(|p| catalog.product_id(p))
            .fold(catalog.always_enabled(), |set, p| set.with(p));
        let owner = user("usr_owner000000000000000000");
        let mut commands = vec![Command::CreateWorkspace {
            workspace: workspace.clone(),
            owner: owner.clone(),
            products,
        }];
        for s in 0..sources {
            commands.push(Command::RegisterResource {
                workspace: workspace.clone(),
                resource: (source, id("src", s)),
                parent: None,
            });
            commands.push(Command::RegisterResource {
                workspace: workspace.clone(),
                resource: (destination, id("dst", s)),
                parent: Some(id("src", s)),
            });
        }
        for w in 0..3 {
            commands.push(Command::RegisterResource {
                workspace: workspace.clone(),
                resource: (warehouse, id("wh", w)),
                parent: None,
            });
        }
        let mut grant = |user: &UserId, role_name: &str, scope: Scope| {
            commands.push(Command::Grant {
                workspace: workspace.clone(),
                user: user.clone(),
                grant: Grant {
                    role: role(role_name),
                    scope,
                },
                actor: None,
            });
        };
        let mut people = Vec::new();
        // A third of the members hold all-scope roles, the rest one or two sources.
        for m in 0..members {
            let member = user(&format!("usr_{m:020}"));
            people.push(member.clone());
            let grants: Vec<(&str, Scope)> = match m % 6 {
                0 => vec![("source_read", Scope::All)],
                3 => vec![
                    ("warehouse_read", Scope::All),
                    ("personas_user", Scope::All),
                ],
                1 | 4 => vec![(
                    "source_read",
                    Scope::Instance(source, id("src", m * 7 % sources)),
                )],
                _ => vec![
                    (
                        "source_read",
                        Scope::Instance(source, id("src", m * 7 % sources)),
                    ),
                    (
                        "source_admin",
                        Scope::Instance(source, id("src", (m * 13 + 1) % sources)),
                    ),
                ],
            };
            for (role_name, scope) in grants {
                grant(&member, role_name, scope);
            }
        }
        // The users of the typical decisions: three grants on sources, and an all grant.
        let sourcer = user("usr_typical_instance_grants");
        let all = user("usr_typical_all_scope_grant");
        for (name, scope) in [
            (
                "source_read",
                Scope::Instance(source, id("src", 1 % sources)),
            ),
            (
                "source_admin",
                Scope::Instance(source, id("src", 2 % sources)),
            ),
            (
                "source_read",
                Scope::Instance(source, id("src", 3 % sources)),
            ),
        ] {
            grant(&sourcer, name, scope);
        }
        grant(&all, "warehouse_read", Scope::All);
        grant(
            &all,
            "source_read",
            Scope::Instance(source, id("src", 1 % sources)),
        );
        let memberships = people
            .iter()
            .chain([&sourcer, &all])
            .map(|u| Command::SetMembership {
                workspace: workspace.clone(),
                user: u.clone(),
                membership: Membership::Member,
                actor: None,
            });
        // Memberships after the resources and before the grants.
        let grants_from = 1 + 2 * sources + 3;
        let tail = commands.split_off(grants_from);
        commands.extend(memberships);
        commands.extend(tail);

        let mut state = None;
        for command in &commands {
            let changes = engine::plan(&catalog, state.as_ref(), command).expect("a valid command");
            for change in &changes {
                Workspace::apply(&mut state, change);
            }
        }
        let state = state.expect("the workspace exists");

        let check = |who: &UserId, name: &str, resource: Option<ResourceId>| Check {
            user: who.clone(),
            permission: permission(name),
            resource,
        };
        let cases = vec![
            ("owner", check(&owner, "source.update", Some(id("src", 0)))),
            (
                "member_allowed_by_instance_grant",
                check(&sourcer, "source.update", Some(id("src", 2 % sources))),
            ),
            (
                "member_allowed_by_all_grant",
                check(&all, "warehouse.read", Some(id("wh", 0))),
            ),
            (
                "member_denied_no_grant",
                check(&sourcer, "source.update", Some(id("src", 4 % sources))),
            ),
            (
                "destination_via_parent",
                check(&sourcer, "destination.update", Some(id("dst", 2 % sources))),
            ),
        ];
        let kinds = [
            ("source.read", "src"),
            ("source.update", "src"),
            ("destination.read", "dst"),
            ("destination.update", "dst"),
            ("warehouse.read", "wh"),
            ("source.create", ""),
            ("audience.read", ""),
            ("workspace.read", ""),
        ];
        let batch = (0..1000)
            .map(|i| {
                let who = people.get(i * 7919 % people.len().max(1)).unwrap_or(&owner);
                let (name, kind) = kinds
                    .get(i % kinds.len())
                    .copied()
                    .unwrap_or(("workspace.read", ""));
                let resource = match kind {
                    "" => None,
                    "wh" => Some(id("wh", i % 3)),
                    _ => Some(id(kind, i * 31 % sources)),
                };
                // `audience.read` names an audience: ask a workspace-level one instead.
                let name = if name == "audience.read" {
                    "personas.read_settings"
                } else {
                    name
                };
                check(who, name, resource)
            })
            .collect();
        Self {
            catalog,
            workspace,
            commands,
            state,
            cases,
            batch,
        }
    }

    /// The fixture's checks as messages.
    fn message(&self, check: &Check) -> proto::CheckRequest {
        proto::CheckRequest {
            workspace_id: self.workspace.to_string(),
            user_id: check.user.to_string(),
            permission: self.catalog.permission_name(check.permission).to_owned(),
            at_least_revision: 0,
            resource: check.resource.as_ref().map(|id| {
                let type_name = self
                    .catalog
                    .permission(check.permission)
                    .and_then(|p| match p.target {
                        accessd::model::catalog::Target::Instance(ty) => Some(ty),
                        accessd::model::catalog::Target::Workspace => None,
                    })
                    .map_or("", |ty| self.catalog.type_name(ty));
                proto::ResourceRef {
                    r#type: type_name.to_owned(),
                    id: id.to_string(),
                }
            }),
        }
    }

    /// A store holding the fixture, and the runtime its writer answers on.
    fn store(&self, dir: &std::path::Path, runtime: &tokio::runtime::Runtime) -> Arc<Store> {
        let store = Store::open(dir, Arc::clone(&self.catalog), &StoreConfig::default())
            .expect("the store opens");
        for chunk in self.commands.chunks(5000) {
            let results = runtime
                .block_on(store.write_all(chunk.to_vec()))
                .expect("the store writes");
            assert!(results.iter().all(Result::is_ok), "every command applies");
        }
        Arc::new(store)
    }
}

fn sizes() -> [(&'static str, usize, usize); 2] {
    if measuring() {
        [("small", 10, 10), ("large", 10_000, 1_000)]
    } else {
        [("small", 10, 10), ("large", 300, 30)]
    }
}

fn engine_checks(c: &mut Criterion) {
    for (size, members, sources) in sizes() {
        let fixture = Fixture::new(members, sources);
        let mut group = c.benchmark_group(format!("engine/{size}"));
        for (name, check) in &fixture.cases {
            let decision = engine::check(&fixture.catalog, Some(&fixture.state), check);
            assert_eq!(decision.allowed(), !name.contains("denied"), "{name}");
            group.bench_function(*name, |b| {
                b.iter(|| {
                    engine::check(
                        black_box(&fixture.catalog),
                        black_box(Some(&fixture.state)),
                        black_box(check),
                    )
                })
            });
        }
        group.bench_function("batch_of_1000", |b| {
            b.iter(|| {
                fixture
                    .batch
                    .iter()
                    .filter(|check| {
                        engine::check(&fixture.catalog, Some(&fixture.state), check).allowed()
                    })
                    .count()
            })
        });
        group.finish();
    }
}

fn handlers(c: &mut Criterion) {
    let [_, (_, members, sources)] = sizes();
    let fixture = Fixture::new(members, sources);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = fixture.store(dir.path(), &runtime);
    let api = AccessApi::new(Arc::new(std::sync::OnceLock::from(Arc::clone(&store))));
    let mut group = c.benchmark_group("handler/large");
    for (name, check) in &fixture.cases {
        let request = fixture.message(check);
        group.bench_function(format!("check/{name}"), |b| {
            b.iter_batched(
                || Request::new(request.clone()),
                |request| runtime.block_on(api.check(request)).expect("an answer"),
                BatchSize::SmallInput,
            )
        });
    }
    let batch = proto::BatchCheckRequest {
        checks: fixture.batch.iter().map(|c| fixture.message(c)).collect(),
        ..Default::default()
    };
    group.bench_function("batch_check_of_1000", |b| {
        b.iter_batched(
            || Request::new(batch.clone()),
            |request| {
                runtime
                    .block_on(api.batch_check(request))
                    .expect("an answer")
            },
            BatchSize::SmallInput,
        )
    });
    // The same checks asked by one user, as a page listing what its user may do asks.
    let one_user = fixture
        .cases
        .get(1)
        .map(|(_, check)| check.user.clone())
        .expect("a typical case");
    let one_user_batch = proto::BatchCheckRequest {
        checks: fixture
            .batch
            .iter()
            .map(|c| {
                fixture.message(&Check {
                    user: one_user.clone(),
                    ..c.clone()
                })
            })
            .collect(),
        ..Default::default()
    };
    group.bench_function("batch_check_of_1000_one_user", |b| {
        b.iter_batched(
            || Request::new(one_user_batch.clone()),
            |request| {
                runtime
                    .block_on(api.batch_check(request))
                    .expect("an answer")
            },
            BatchSize::SmallInput,
        )
    });
    let response = runtime
        .block_on(api.batch_check(Request::new(batch.clone())))
        .expect("an answer")
        .into_inner();
    let encoded_request = batch.encode_to_vec();
    group.bench_function("batch_check_of_1000_decode_request", |b| {
        b.iter(|| proto::BatchCheckRequest::decode(black_box(encoded_request.as_slice())))
    });
    group.bench_function("batch_check_of_1000_encode_response", |b| {
        b.iter(|| black_box(&response).encode_to_vec())
    });
    group.finish();
    drop(api);
    store.close();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

fn main() {
    let mut criterion = config().configure_from_args();
    engine_checks(&mut criterion);
    handlers(&mut criterion);
    criterion.final_summary();
}
