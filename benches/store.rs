//! The store: `Store::open` (reading the whole database into memory) at a small and a
//! larger size, durable writes (one grant; 1,000 grants with a revision each; 1,000 as
//! one bulk batch), the same with the change log over its budget (so every write also
//! trims it), 1,000 grants to members spread over a larger database (where sled's cache
//! matters), and `snapshot()`, the one thing a check asks of the store.
//!
//! `cargo bench --bench store`. Under `cargo test` each bench runs once, on small data.
//! Durable writes flush to the temporary directory's disk, so they measure that disk.
//! The store has `StoreConfig::default()`, but for `ACCESSD_CACHE_MB` and
//! `ACCESSD_CHANGE_LOG_MB` in the environment, read as `accessd serve` reads them.

#![expect(
    clippy::expect_used,
    reason = "a benchmark's setup stops at its first failure"
)]

use std::{hint::black_box, path::Path, sync::Arc, time::Duration};

use accessd::{
    engine::Command,
    model::{Catalog, Grant, Membership, ResourceId, Scope, UserId, WorkspaceId},
    store::{Store, StoreConfig},
};
use criterion::Criterion;

// accessd's allocator, so that allocations cost here what they cost in the server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Whether this is `cargo bench` (full sizes) rather than `cargo test`'s single pass.
fn measuring() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// `StoreConfig::default()`, but for the environment's `ACCESSD_CACHE_MB` and
/// `ACCESSD_CHANGE_LOG_MB`.
fn config_from_env() -> StoreConfig {
    let mib = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| v.parse::<u64>().expect("a number of MiB") << 20)
    };
    let default = StoreConfig::default();
    StoreConfig {
        cache_bytes: mib("ACCESSD_CACHE_MB").unwrap_or(default.cache_bytes),
        change_log_bytes: mib("ACCESSD_CHANGE_LOG_MB").unwrap_or(default.change_log_bytes),
        ..default
    }
}

fn open(dir: &Path, catalog: &Arc<Catalog>) -> Store {
    open_with(dir, catalog, &config_from_env())
}

fn open_with(dir: &Path, catalog: &Arc<Catalog>, config: &StoreConfig) -> Store {
    Store::open(dir, Arc::clone(catalog), config).expect("the store opens")
}

fn workspace_id(w: usize) -> WorkspaceId {
    WorkspaceId::parse(&format!("ws_{w:022}")).expect("a valid id")
}

fn user_id(w: usize, m: usize) -> UserId {
    UserId::parse(&format!("usr_{w:08}_{m:013}")).expect("a valid id")
}

fn source_id(s: usize) -> ResourceId {
    ResourceId::parse(&format!("src_{s:022}")).expect("a valid id")
}

/// The commands that build `workspaces` workspaces of `members` members with two grants
/// each (one all-scope, one on a source) over 20 sources.
fn population(catalog: &Catalog, workspaces: usize, members: usize) -> Vec<Command> {
    let source = catalog.type_id("source").expect("a built-in type");
    let role = |name| catalog.role_id(name).expect("a built-in role");
    let mut commands = Vec::new();
    for w in 0..workspaces {
        let workspace = workspace_id(w);
        commands.push(Command::CreateWorkspace {
            workspace: workspace.clone(),
            owner: user_id(w, 0),
            products: catalog.always_enabled(),
        });
        for s in 0..20 {
            commands.push(Command::RegisterResource {
                workspace: workspace.clone(),
                resource: (source, source_id(s)),
                parent: None,
            });
        }
        for m in 1..=members {
            commands.push(Command::SetMembership {
                workspace: workspace.clone(),
                user: user_id(w, m),
                membership: Membership::Member,
                actor: None,
            });
            for grant in [
                Grant {
                    role: role("warehouse_read"),
                    scope: Scope::All,
                },
                Grant {
                    role: role("source_admin"),
                    scope: Scope::Instance(source, source_id(m % 20)),
                },
            ] {
                commands.push(Command::Grant {
                    workspace: workspace.clone(),
                    user: user_id(w, m),
                    grant,
                    actor: None,
                });
            }
        }
    }
    commands
}

fn write(store: &Store, runtime: &tokio::runtime::Runtime, commands: Vec<Command>) {
    for chunk in commands.chunks(5000) {
        let results = runtime
            .block_on(store.write_all(chunk.to_vec()))
            .expect("the store writes");
        assert!(results.iter().all(Result::is_ok), "every command applies");
    }
}

/// `Store::open` of databases of these sizes: (name, workspaces, members each).
fn open_sizes() -> [(&'static str, usize, usize); 2] {
    if measuring() {
        [("1k_grants", 5, 100), ("100k_grants", 100, 500)]
    } else {
        [("1k_grants", 5, 100), ("10k_grants", 10, 500)]
    }
}

fn opening(c: &mut Criterion) {
    let catalog = Arc::new(Catalog::built_in());
    let runtime = runtime();
    let mut group = c.benchmark_group("store/open");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    for (name, workspaces, members) in open_sizes() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = open(dir.path(), &catalog);
        write(&store, &runtime, population(&catalog, workspaces, members));
        store.close();
        drop(store);
        group.bench_function(name, |b| {
            b.iter(|| {
                let store = open(dir.path(), &catalog);
                black_box(store.snapshot().revision);
                store.close();
            })
        });
    }
    group.finish();
}

/// Alternately grants and revokes `grant` to `users` (workspace, member), as
/// `granted` says was done last: every write changes something, so every write is flushed.
fn toggle(users: &[(usize, usize)], grant: &Grant, granted: bool) -> Vec<Command> {
    users
        .iter()
        .map(|&(w, m)| {
            let (workspace, user, grant) = (workspace_id(w), user_id(w, m), grant.clone());
            if granted {
                Command::Revoke {
                    workspace,
                    user,
                    grant,
                    actor: None,
                }
            } else {
                Command::Grant {
                    workspace,
                    user,
                    grant,
                    actor: None,
                }
            }
        })
        .collect()
}

fn writing(c: &mut Criterion) {
    writes(c, "store/write", &config_from_env());
    // A budget a third of what `write_all_1000_grants` logs: every write also trims.
    let trimming = StoreConfig {
        change_log_bytes: 100 << 10,
        ..config_from_env()
    };
    writes(c, "store/write_trimming", &trimming);
    spread_writes(c);
}

/// One grant, 1,000 grants with a revision each, and 1,000 as one batch, toggled on the
/// members of one workspace of 1,000, with the store in `config`.
fn writes(c: &mut Criterion, name: &str, config: &StoreConfig) {
    let catalog = Arc::new(Catalog::built_in());
    let runtime = runtime();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = open_with(dir.path(), &catalog, config);
    write(&store, &runtime, population(&catalog, 1, 1000));
    let source = catalog.type_id("source").expect("a built-in type");
    let role = |name| catalog.role_id(name).expect("a built-in role");
    let one_grant = Grant {
        role: role("warehouse_admin"),
        scope: Scope::All,
    };
    let one = [false, true].map(|granted| toggle(&[(0, 1)], &one_grant, granted));
    let thousand_grant = Grant {
        role: role("source_read"),
        scope: Scope::Instance(source, source_id(19)),
    };
    let members: Vec<(usize, usize)> = (1..=1000).map(|m| (0, m)).collect();
    let thousand = [false, true].map(|granted| toggle(&members, &thousand_grant, granted));
    let [grant_one, revoke_one] = &one;
    let [grant_thousand, revoke_thousand] = &thousand;
    let mut group = c.benchmark_group(name);
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    let mut one_granted = false;
    group.bench_function("one_grant_durable", |b| {
        b.iter(|| {
            let commands = if one_granted { revoke_one } else { grant_one };
            one_granted = !one_granted;
            let command = commands.first().cloned().expect("one command");
            runtime.block_on(store.write(command)).expect("written")
        })
    });
    let mut thousand_granted = false;
    group.bench_function("write_all_1000_grants", |b| {
        b.iter(|| {
            let commands = if thousand_granted {
                revoke_thousand
            } else {
                grant_thousand
            };
            thousand_granted = !thousand_granted;
            runtime
                .block_on(store.write_all(commands.clone()))
                .expect("written")
        })
    });
    group.bench_function("write_batch_1000_grants", |b| {
        b.iter(|| {
            let commands = if thousand_granted {
                revoke_thousand
            } else {
                grant_thousand
            };
            thousand_granted = !thousand_granted;
            runtime
                .block_on(store.write_batch(commands.clone()))
                .expect("written")
        })
    });
    group.finish();

    if name == "store/write" {
        c.bench_function("store/snapshot", |b| b.iter(|| black_box(store.snapshot())));
    }
    store.close();
}

/// 1,000 grants with a revision each, to members spread over a database of 200
/// workspaces of 500 members, a different thousand each time until every member had
/// one: the writer reads leaves from all over the database, as sled's cache allows.
fn spread_writes(c: &mut Criterion) {
    let (workspaces, members) = if measuring() { (200, 500) } else { (4, 250) };
    let catalog = Arc::new(Catalog::built_in());
    let runtime = runtime();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = open(dir.path(), &catalog);
    write(&store, &runtime, population(&catalog, workspaces, members));
    let grant = Grant {
        role: catalog.role_id("warehouse_admin").expect("a built-in role"),
        scope: Scope::All,
    };
    // Sets of 1,000 members, each spread over every workspace.
    let everyone: Vec<(usize, usize)> = (0..workspaces * members)
        .map(|i| (i % workspaces, 1 + (i / workspaces * 7) % members))
        .collect();
    let sets: Vec<&[(usize, usize)]> = everyone.chunks(1000).collect();
    let mut granted = vec![false; sets.len()];
    let mut next = 0;
    let mut group = c.benchmark_group("store/write_spread");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("write_all_1000_grants", |b| {
        b.iter(|| {
            let set = next % sets.len();
            next += 1;
            let flag = granted.get_mut(set).expect("a set");
            let commands = toggle(sets.get(set).expect("a set"), &grant, *flag);
            *flag = !*flag;
            runtime
                .block_on(store.write_all(commands))
                .expect("written")
        })
    });
    group.finish();
    store.close();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

fn main() {
    let mut criterion = config().configure_from_args();
    opening(&mut criterion);
    writing(&mut criterion);
    criterion.final_summary();
}
