//! End to end in this process: the loader, the request mix and the driver against a
//! real accessd and against the floor, both on `127.0.0.1:0`, bounded by count.

mod copies;
mod replication;
mod soak;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use accessd::{
    model::Catalog,
    server::{ServeOptions, serve},
    store::{Store, StoreConfig},
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use crate::{
    dataset::{Dataset, Sizes},
    driver::{DriveConfig, GrantPool, Outcome, Workload, drive},
    floor,
    load::{LoadMethod, load},
    mix,
    process::connect,
};

struct Running {
    addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
    store: Option<Arc<Store>>,
    _dir: Option<tempfile::TempDir>,
}

impl Running {
    async fn stop(self) {
        let _ = self.shutdown.send(());
        self.task.await.unwrap();
        if let Some(store) = self.store {
            tokio::task::spawn_blocking(move || store.close())
                .await
                .unwrap();
        }
    }
}

async fn start_accessd() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        Store::open(
            dir.path(),
            Arc::new(Catalog::built_in()),
            &StoreConfig::default(),
        )
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown, signal) = oneshot::channel::<()>();
    let server = serve(
        listener,
        Arc::clone(&store),
        ServeOptions::default(),
        async move {
            let _ = signal.await;
        },
    );
    let task = tokio::spawn(async move { server.await.unwrap() });
    Running {
        addr,
        shutdown,
        task,
        store: Some(store),
        _dir: Some(dir),
    }
}

async fn start_floor() -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown, signal) = oneshot::channel::<()>();
    let server = floor::serve(listener, async move {
        let _ = signal.await;
    });
    let task = tokio::spawn(async move { server.await.unwrap() });
    Running {
        addr,
        shutdown,
        task,
        store: None,
        _dir: None,
    }
}

fn data() -> Dataset {
    Dataset::generate(
        5,
        Sizes {
            workspaces: 12,
            members: 8,
            sources: 5,
            grant_pool: 40,
        },
    )
}

/// Every call once, by count; the duration is only a bound.
fn by_count(calls: usize, verify: bool) -> DriveConfig {
    DriveConfig {
        concurrency: 4,
        warmup: Duration::ZERO,
        duration: Duration::from_secs(120),
        max_calls: calls as u64,
        verify,
        server_pid: None,
        traceparent: false,
    }
}

fn assert_clean(outcome: &Outcome, calls: usize) {
    assert_eq!(outcome.errors, 0, "{:?}", outcome.first_problem);
    assert_eq!(outcome.mismatches, 0, "{:?}", outcome.first_problem);
    assert_eq!(outcome.calls, calls as u64);
    assert_eq!(outcome.latency.len(), calls as u64);
}

#[tokio::test]
async fn accessd_answers_every_check_of_the_mix_as_the_data_set_expects() {
    let server = start_accessd().await;
    let channels = connect(server.addr, 2).await.unwrap();
    let data = data();
    let loaded = load(LoadMethod::Rpc { concurrency: 32 }, &channels, &data)
        .await
        .unwrap();
    assert_eq!(
        loaded.writes,
        data.phases().iter().map(Vec::len).sum::<usize>()
    );

    let cases: Arc<[mix::CheckCase]> = mix::checks(&data, 620).into();
    let checks = Workload::Check(Arc::clone(&cases));
    let outcome = drive(&channels, &checks, &by_count(cases.len(), true))
        .await
        .unwrap();
    assert_clean(&outcome, cases.len());
    assert_eq!(outcome.items, cases.len() as u64);

    let batches: Arc<[mix::BatchCase]> = mix::batches(&cases, 100).into();
    let workload = Workload::Batch(Arc::clone(&batches));
    let outcome = drive(&channels, &workload, &by_count(batches.len(), true))
        .await
        .unwrap();
    assert_clean(&outcome, batches.len());
    assert_eq!(outcome.items, 600);

    let pool = Arc::new(GrantPool::new(data.grant_pool()));
    let grants = Workload::Grant(Arc::clone(&pool));
    let outcome = drive(&channels, &grants, &by_count(40, true))
        .await
        .unwrap();
    assert_clean(&outcome, 40);
    assert_eq!(pool.taken(), 40);

    // The writers' new grants changed no answer of the mix.
    let outcome = drive(&channels, &checks, &by_count(cases.len(), true))
        .await
        .unwrap();
    assert_clean(&outcome, cases.len());
    server.stop().await;
}

#[tokio::test]
async fn an_import_load_gives_every_check_of_the_mix_its_expected_answer() {
    let server = start_accessd().await;
    let channels = connect(server.addr, 2).await.unwrap();
    let data = data();
    // Messages of 7 records: workspaces straddle messages, and batches of them.
    let loaded = load(LoadMethod::Import { chunk: 7 }, &channels, &data)
        .await
        .unwrap();
    assert_eq!(loaded.writes, data.counts().records());
    assert_eq!(loaded.applied, Some(loaded.writes as u64));

    let cases: Arc<[mix::CheckCase]> = mix::checks(&data, 620).into();
    let outcome = drive(
        &channels,
        &Workload::Check(Arc::clone(&cases)),
        &by_count(cases.len(), true),
    )
    .await
    .unwrap();
    assert_clean(&outcome, cases.len());
    server.stop().await;
}

#[tokio::test]
async fn importing_what_one_call_per_write_loaded_changes_nothing() {
    let server = start_accessd().await;
    let channels = connect(server.addr, 2).await.unwrap();
    let data = data();
    load(LoadMethod::Rpc { concurrency: 16 }, &channels, &data)
        .await
        .unwrap();
    let again = load(LoadMethod::Import { chunk: 500 }, &channels, &data)
        .await
        .unwrap();
    assert_eq!(again.writes, data.counts().records());
    assert_eq!(again.applied, Some(0), "both ways build the same state");
    assert_eq!(again.batches, 0);
    server.stop().await;
}

#[tokio::test]
async fn an_import_that_rejects_a_record_fails_the_load_and_says_why() {
    let server = start_accessd().await;
    let channels = connect(server.addr, 1).await.unwrap();
    let mut data = data();
    let grant = data.workspaces[3].members[0].grants.first_mut().unwrap();
    grant.role = "no_such_role";
    let error = load(LoadMethod::Import { chunk: 100 }, &channels, &data)
        .await
        .unwrap_err();
    assert!(error.contains("rejected 1 of"), "{error}");
    assert!(error.contains("no_such_role"), "{error}");
    server.stop().await;
}

#[tokio::test]
async fn the_grant_scenario_stops_when_its_pool_runs_out() {
    let server = start_accessd().await;
    let channels = connect(server.addr, 1).await.unwrap();
    let data = data();
    load(LoadMethod::Rpc { concurrency: 16 }, &channels, &data)
        .await
        .unwrap();
    let pool = Arc::new(GrantPool::new(data.grant_pool()));
    let grants = Workload::Grant(Arc::clone(&pool));
    let outcome = drive(&channels, &grants, &by_count(1000, true))
        .await
        .unwrap();
    assert!(outcome.exhausted);
    assert_clean(&outcome, 40);
    server.stop().await;
}

#[tokio::test]
async fn wrong_answers_are_counted_as_mismatches() {
    let server = start_floor().await;
    let channels = connect(server.addr, 1).await.unwrap();
    let mut cases = mix::checks(&data(), 62);
    for case in &mut cases {
        case.allowed = false;
    }
    let cases: Arc<[mix::CheckCase]> = cases.into();
    let outcome = drive(&channels, &Workload::Check(cases), &by_count(62, true))
        .await
        .unwrap();
    // The floor allows everything, so every expected denial is a mismatch.
    assert_eq!(outcome.mismatches, 62);
    assert!(outcome.first_problem.is_some());
    server.stop().await;
}

#[tokio::test]
async fn the_floor_answers_checks_and_batches_of_any_size() {
    let server = start_floor().await;
    let channels = connect(server.addr, 2).await.unwrap();
    let cases: Arc<[mix::CheckCase]> = mix::checks(&data(), 300).into();
    let outcome = drive(
        &channels,
        &Workload::Check(Arc::clone(&cases)),
        &by_count(300, false),
    )
    .await
    .unwrap();
    assert_clean(&outcome, 300);

    let batches: Arc<[mix::BatchCase]> = mix::batches(&cases, 1000).into();
    let outcome = drive(&channels, &Workload::Batch(batches), &by_count(3, false))
        .await
        .unwrap();
    assert_clean(&outcome, 3);
    assert_eq!(outcome.items, 3000);
    server.stop().await;
}
